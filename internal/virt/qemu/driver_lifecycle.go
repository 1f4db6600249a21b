package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

const gib = 1 << 30

// Spawn creates the instance's disks and config drive and starts it. On
// failure the instance directory is removed again.
func (d *Driver) Spawn(ctx context.Context, inst *virt.Instance) error {
	return d.spawn(ctx, inst, false, func() error {
		if inst.RootVolume == nil { // a volume-backed guest boots from its volume
			if err := d.createRoot(ctx, inst); err != nil {
				return err
			}
		}
		for n, e := range inst.EphemeralDisks() {
			if err := d.createEphemeral(ctx, inst.UUID, n, e.SizeGB); err != nil {
				return fmt.Errorf("qemu spawn %s: %w", inst.UUID, err)
			}
		}
		return nil
	})
}

// createEphemeral makes the instance's n-th ephemeral disk, blank.
func (d *Driver) createEphemeral(ctx context.Context, uuid string, n, sizeGB int) error {
	if n >= maxEphemerals {
		return fmt.Errorf("ephemeral disk %d: at most %d", n, maxEphemerals)
	}
	if _, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", d.path(uuid, ephemeralFile(n)), strconv.Itoa(sizeGB)+"G"); err != nil {
		return fmt.Errorf("ephemeral disk %d: %w", n, err)
	}
	return nil
}

// maxEphemerals bounds the ephemeral disks of one instance (the API
// allows 3 local disks, Nova's max_local_block_devices).
const maxEphemerals = 8

// ephemeralFile is the file of the n-th ephemeral disk: disk.eph0.qcow2
// (also the flavor's single ephemeral disk), disk.eph1.qcow2, ...
func ephemeralFile(n int) string { return "disk.eph" + strconv.Itoa(n) + ".qcow2" }

// spawn creates the instance directory, lets disks make the root and
// ephemeral disks in it, adds swap and the config drive, and starts the
// guest (or leaves it shut down when stopped is set).
func (d *Driver) spawn(ctx context.Context, inst *virt.Instance, stopped bool, disks func() error) (err error) {
	if inst == nil || !validUUID(inst.UUID) {
		return fmt.Errorf("qemu spawn: instance needs a uuid")
	}
	if inst.VCPUs <= 0 || inst.MemoryMB <= 0 {
		return fmt.Errorf("qemu spawn %s: needs vcpus and memory", inst.UUID)
	}
	uuid := inst.UUID
	if n := len(d.path(uuid, "qmp.sock")); n > 107 {
		return fmt.Errorf("qemu spawn %s: state dir too long for a unix socket (%d bytes)", uuid, n)
	}
	h := d.handle(uuid)
	h.mu.Lock()
	defer h.unlock()
	if err := os.Mkdir(d.dir(uuid), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", uuid, virt.ErrExists)
		}
		return fmt.Errorf("qemu spawn %s: %w", uuid, err)
	}
	defer func() {
		if err != nil {
			_ = d.kill(context.Background(), h, uuid)
			_ = os.RemoveAll(d.dir(uuid))
		}
	}()

	if err := disks(); err != nil {
		return err
	}
	if inst.SwapMB > 0 {
		if _, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", d.path(uuid, "disk.swap.qcow2"), strconv.Itoa(inst.SwapMB)+"M"); err != nil {
			return fmt.Errorf("qemu spawn %s: swap disk: %w", uuid, err)
		}
	}
	if inst.ConfigDrive {
		files, err := ConfigDriveFiles(inst)
		if err != nil {
			return fmt.Errorf("qemu spawn %s: %w", uuid, err)
		}
		if err := WriteConfigDrive(d.path(uuid, "config.iso"), files); err != nil {
			return fmt.Errorf("qemu spawn %s: %w", uuid, err)
		}
	}
	rec := &record{Instance: *inst}
	if len(inst.Volumes) > hotplugPorts {
		return fmt.Errorf("qemu spawn %s: %d volumes, at most %d", uuid, len(inst.Volumes), hotplugPorts)
	}
	for i, v := range inst.Volumes {
		// Volumes of the block device mapping sit on hot-plug ports like
		// attached ones, so that they can be detached later.
		rec.Volumes = append(rec.Volumes, pluggedVolume{Volume: v, Port: i})
	}
	rec.Instance.Volumes = nil
	if err := d.save(rec); err != nil {
		return err
	}
	if stopped {
		return nil
	}
	return d.start(ctx, h, rec, false)
}

// createRoot makes the root disk: a qcow2 overlay on the image (grown to
// the flavor's root size), or a blank disk when there is no image file.
func (d *Driver) createRoot(ctx context.Context, inst *virt.Instance) error {
	dst := d.path(inst.UUID, "disk.qcow2")
	img := inst.Image
	if img.Path == "" {
		if inst.RootGB <= 0 {
			if img.KernelPath == "" {
				return fmt.Errorf("qemu spawn %s: %w", inst.UUID, errNoImage)
			}
			inst.RootGB = 1
		}
		_, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", dst, strconv.Itoa(inst.RootGB)+"G")
		return err
	}
	return d.overlay(ctx, img, dst, int64(inst.RootGB)*gib)
}

// backingImage is the absolute path and disk format (qcow2 by default) of
// a cached image that overlays are made on; other formats are refused.
func backingImage(img virt.Image) (path, format string, err error) {
	if path, err = filepath.Abs(img.Path); err != nil {
		return "", "", err
	}
	format = img.DiskFormat
	if format == "" {
		format = "qcow2"
	}
	if format != "qcow2" && format != "raw" {
		return "", "", fmt.Errorf("image %s: disk format %q: %w", img.ID, format, virt.ErrUnsupported)
	}
	return path, format, nil
}

// overlay creates a qcow2 overlay of img at dst, at least size bytes.
func (d *Driver) overlay(ctx context.Context, img virt.Image, dst string, size int64) error {
	base, format, err := backingImage(img)
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	out, err := d.qemuImg(ctx, "info", "--output=json", "-f", format, base)
	if err != nil {
		return fmt.Errorf("qemu: image %s: %w", img.ID, err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("qemu: image %s: qemu-img info: %w", img.ID, err)
	}
	args := []string{"create", "-q", "-f", "qcow2", "-F", format, "-b", base, dst}
	switch {
	case size > 0 && size < info.VirtualSize:
		return fmt.Errorf("qemu: image %s (%d bytes) is larger than the root disk (%d bytes)", img.ID, info.VirtualSize, size)
	case size > info.VirtualSize:
		args = append(args, strconv.FormatInt(size, 10))
	}
	_, err = d.qemuImg(ctx, args...)
	return err
}

// Destroy stops the instance and removes everything it owns.
func (d *Driver) Destroy(ctx context.Context, uuid string) error {
	if !validUUID(uuid) {
		return nil
	}
	h := d.handle(uuid)
	h.mu.Lock()
	defer h.unlock()
	if _, err := os.Stat(d.dir(uuid)); errors.Is(err, os.ErrNotExist) {
		h.closeQMP()
		return nil
	}
	if err := d.kill(ctx, h, uuid); err != nil {
		return err
	}
	if rec, err := d.load(uuid); err == nil {
		d.unplugTaps(ctx, rec.Instance.NICs)
	}
	if err := os.RemoveAll(d.dir(uuid)); err != nil {
		return fmt.Errorf("qemu destroy %s: %w", uuid, err)
	}
	d.mu.Lock()
	delete(d.insts, uuid)
	d.mu.Unlock()
	d.log.Info("destroyed", "instance", uuid)
	return nil
}

// PowerOff asks the guest to power off (ACPI) and waits up to timeout,
// then stops it hard. timeout 0 stops it at once.
func (d *Driver) PowerOff(ctx context.Context, uuid string, timeout time.Duration) error {
	h, _, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	switch st {
	case virt.Shutdown:
		return nil
	case virt.Suspended:
		return errState("power off", uuid, st)
	}
	if timeout > 0 && st == virt.Running && d.acpiShutdown(ctx, h, uuid, timeout) {
		return d.kill(ctx, h, uuid) // tidy the socket and pid file
	}
	return d.kill(ctx, h, uuid)
}

// PowerOn starts a stopped or crashed instance.
func (d *Driver) PowerOn(ctx context.Context, uuid string) error {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	switch st {
	case virt.Running:
		return nil
	case virt.Shutdown:
	case virt.Crashed:
		if err := d.kill(ctx, h, uuid); err != nil {
			return err
		}
	default:
		return errState("power on", uuid, st)
	}
	return d.start(ctx, h, rec, false)
}

// Reboot: soft asks the guest to power off by ACPI and starts it again,
// resetting hard if it does not comply within SoftRebootTimeout (only from
// Running). Hard restarts the process from any state, dropping paused or
// suspended state, so it also picks up a changed configuration.
func (d *Driver) Reboot(ctx context.Context, uuid string, hard bool) error {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if !hard {
		if st != virt.Running {
			return errState("soft reboot", uuid, st)
		}
		if !d.acpiShutdown(ctx, h, uuid, d.cfg.SoftRebootTimeout) {
			d.log.Info("guest ignored ACPI shutdown, resetting", "instance", uuid)
		}
	}
	if err := d.kill(ctx, h, uuid); err != nil {
		return err
	}
	_ = os.Remove(d.path(uuid, "state.sav"))
	return d.start(ctx, h, rec, false)
}

// Pause stops the vCPUs.
func (d *Driver) Pause(ctx context.Context, uuid string) error {
	return d.qmpTransition(ctx, uuid, "pause", virt.Running, func(ctx context.Context, h *handle) error {
		c, err := d.qmp(ctx, h, uuid)
		if err != nil {
			return err
		}
		return c.Stop(ctx)
	})
}

// Unpause resumes the vCPUs.
func (d *Driver) Unpause(ctx context.Context, uuid string) error {
	return d.qmpTransition(ctx, uuid, "unpause", virt.Paused, func(ctx context.Context, h *handle) error {
		c, err := d.qmp(ctx, h, uuid)
		if err != nil {
			return err
		}
		return c.Cont(ctx)
	})
}

// qmpTransition runs fn if the instance is in state from.
func (d *Driver) qmpTransition(ctx context.Context, uuid, op string, from virt.PowerState, fn func(context.Context, *handle) error) error {
	h, _, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if st != from {
		return errState(op, uuid, st)
	}
	if err := fn(ctx, h); err != nil {
		return fmt.Errorf("qemu %s %s: %w", op, uuid, err)
	}
	return nil
}
