package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// pid returns the instance's QEMU process if it is alive. A pid file left
// behind by a dead process, a zombie, or a pid reused by another program
// all count as no process.
func (d *Driver) pid(uuid string) (int, bool) {
	b, err := os.ReadFile(d.path(uuid, "qemu.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, alive(pid, d.path(uuid, "qmp.sock"))
}

// alive reports whether pid runs and is the QEMU that owns marker (its
// command line names the instance's QMP socket).
func alive(pid int, marker string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	if marker == "" {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(marker))
}

// waitGone polls until the instance's process is gone or d passes.
func (d *Driver) waitGone(ctx context.Context, uuid string, pid int, wait time.Duration) bool {
	marker := d.path(uuid, "qmp.sock")
	deadline := time.Now().Add(wait)
	for alive(pid, marker) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// vm renders the instance's QEMU configuration.
func (d *Driver) vm(rec *record, accel string, incoming bool) VM {
	inst := &rec.Instance
	uuid := inst.UUID
	vm := VM{
		Name: inst.Name, UUID: uuid,
		Machine: d.cfg.Machine, Accel: accel, CPU: d.cfg.CPU,
		VCPUs: inst.VCPUs, MemoryMB: inst.MemoryMB,
		QMPSocket:  d.path(uuid, "qmp.sock"),
		PIDFile:    d.path(uuid, "qemu.pid"),
		ConsoleLog: d.path(uuid, "console.log"),
		Daemonize:  true,
	}
	if !d.cfg.NoConsoles {
		vm.SerialSocket, vm.VNCSocket = d.path(uuid, "serial.sock"), d.path(uuid, "vnc.sock")
	}
	if vm.Name == "" {
		vm.Name = "instance-" + uuid
	}
	boot := inst.Image
	if rec.Rescue != nil {
		boot = *rec.Rescue
		vm.Disks = append(vm.Disks, Disk{ID: "rescue", Path: d.path(uuid, "disk.rescue.qcow2"), Format: "qcow2", Serial: "rescue", BootIndex: 1})
	}
	if boot.KernelPath != "" {
		vm.Kernel, vm.Initrd, vm.Append = boot.KernelPath, boot.RamdiskPath, boot.KernelArgs
		if vm.Append == "" {
			vm.Append = "console=ttyS0"
		}
	}
	root := Disk{ID: "root", Path: d.path(uuid, "disk.qcow2"), Format: "qcow2", Serial: "root"}
	if rv := inst.RootVolume; rv != nil {
		// A volume-backed instance boots from its volume, whose id is the
		// disk's serial as for any volume.
		root = Disk{ID: "root", Path: rv.Path, Format: rv.Format, ReadOnly: rv.ReadOnly, Serial: serial(rv.ID), Throttle: throttleOf(rv.QoS)}
		if root.Format == "" {
			root.Format = "raw"
		}
	}
	if rec.Rescue == nil {
		root.BootIndex = 1
	}
	vm.Disks = append(vm.Disks, root)
	// Ephemeral disks follow the root in order (vdb, vdc, ...), then swap
	// and the config drive, as Nova's libvirt driver lays them out.
	for n := range inst.EphemeralDisks() {
		vm.Disks = append(vm.Disks, Disk{ID: fmt.Sprintf("eph%d", n), Path: d.path(uuid, ephemeralFile(n)), Format: "qcow2",
			Serial: fmt.Sprintf("ephemeral%d", n)})
	}
	if inst.SwapMB > 0 {
		vm.Disks = append(vm.Disks, Disk{ID: "swap", Path: d.path(uuid, "disk.swap.qcow2"), Format: "qcow2", Serial: "swap"})
	}
	if inst.ConfigDrive {
		vm.Disks = append(vm.Disks, Disk{ID: "config", Path: d.path(uuid, "config.iso"), Format: "raw", ReadOnly: true, Serial: "config-2"})
	}
	vm.HotplugPorts = hotplugPorts
	for _, v := range rec.Volumes {
		vm.Disks = append(vm.Disks, v.disk())
	}
	for i, n := range inst.NICs {
		vm.NICs = append(vm.NICs, NetDev{ID: fmt.Sprintf("net%d", i), MAC: n.MAC, Tap: n.Tap, MTU: n.MTU, User: d.cfg.UserNetworking})
	}
	if incoming {
		vm.Incoming, vm.Paused = "defer", true
	}
	return vm
}

// start launches QEMU for the instance and waits until its QMP socket
// answers. incoming starts it waiting for saved state (Resume).
func (d *Driver) start(ctx context.Context, h *handle, rec *record, incoming bool) error {
	uuid := rec.Instance.UUID
	accel, err := d.accelerator(ctx)
	if err != nil {
		return err
	}
	h.closeQMP()
	for _, f := range runFiles {
		_ = os.Remove(d.path(uuid, f))
	}
	if err := d.plugTaps(ctx, rec.Instance.NICs); err != nil {
		return err
	}
	args, err := Args(d.vm(rec, accel, incoming))
	if err != nil {
		return err
	}
	errf, err := os.CreateTemp(d.dir(uuid), ".qemu-start-*")
	if err != nil {
		return fmt.Errorf("qemu: start %s: %w", uuid, err)
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	// With -daemonize the command returns once the guest is set up; the
	// guest process belongs to init, not to us.
	cmd := exec.CommandContext(ctx, d.cfg.QEMU, args...)
	cmd.Stdout, cmd.Stderr = errf, errf
	cmd.Dir = d.dir(uuid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(errf.Name())
		return fmt.Errorf("qemu: start %s: %w: %s", uuid, err, bytes.TrimSpace(out))
	}
	if _, ok := d.pid(uuid); !ok {
		out, _ := os.ReadFile(errf.Name())
		return fmt.Errorf("qemu: start %s: no process after start: %s", uuid, bytes.TrimSpace(out))
	}
	if _, err := d.qmp(ctx, h, uuid); err != nil {
		_ = d.kill(context.Background(), h, uuid)
		return err
	}
	rec.StartedAt = time.Now().UTC()
	if err := d.save(rec); err != nil {
		_ = d.kill(context.Background(), h, uuid)
		return err
	}
	if pid, ok := d.pid(uuid); ok {
		d.watchPID(uuid, pid)
	}
	d.log.Info("started", "instance", uuid, "accel", accel, "rescue", rec.Rescue != nil, "incoming", incoming)
	return nil
}

// kill ends the process at once: QMP quit, then SIGKILL.
func (d *Driver) kill(ctx context.Context, h *handle, uuid string) error {
	pid, ok := d.pid(uuid)
	if ok {
		h.expectExit(pid)
		if c, err := d.qmp(ctx, h, uuid); err == nil {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = c.Quit(qctx)
			cancel()
		}
		if !d.waitGone(ctx, uuid, pid, 3*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !d.waitGone(context.Background(), uuid, pid, 5*time.Second) {
				return fmt.Errorf("qemu: %s: process %d does not die", uuid, pid)
			}
		}
	}
	h.closeQMP()
	for _, f := range runFiles {
		_ = os.Remove(d.path(uuid, f))
	}
	return nil
}

// runFiles live only while the process does.
var runFiles = []string{"qmp.sock", "qemu.pid", "serial.sock", "vnc.sock"}

const acpiRetry = 2 * time.Second

// acpiShutdown presses the power button and waits up to timeout for the
// guest to power off; false if it did not.
func (d *Driver) acpiShutdown(ctx context.Context, h *handle, uuid string, timeout time.Duration) bool {
	pid, ok := d.pid(uuid)
	if !ok {
		return true
	}
	h.expectExit(pid)
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return false
	}
	// A press the guest is not yet listening for (early in boot) is lost,
	// so press again every acpiRetry, as a person would.
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if err := c.SystemPowerdown(ctx); err != nil {
			return !alive(pid, d.path(uuid, "qmp.sock"))
		}
		select {
		case <-c.Done(): // QEMU closes the socket as it exits
			return d.waitGone(ctx, uuid, pid, 5*time.Second)
		case <-time.After(acpiRetry):
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// qemuImg runs qemu-img.
func (d *Driver) qemuImg(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, d.cfg.QEMUImg, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("qemu-img %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return out, nil
}

// errState wraps ErrInvalidState.
func errState(op, uuid string, st virt.PowerState) error {
	return fmt.Errorf("%s %s while %s: %w", op, uuid, st, virt.ErrInvalidState)
}

var errNoImage = errors.New("instance has neither an image nor a root disk size")
