package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// resizeShutdownTimeout bounds the ACPI shutdown before a resize; a guest
// that does not comply is stopped hard (its disk is what is kept).
const resizeShutdownTimeout = 30

// Resize implements virt.Resizer: the guest is shut down, its disks grow
// to the new flavor (root and ephemeral by qemu-img resize, swap
// recreated; the ephemeral disks of block device mappings are kept as
// they are), and it starts again with the new vCPUs and memory if it was
// running.
func (d *Driver) Resize(ctx context.Context, inst *virt.Instance) error {
	if inst == nil {
		return fmt.Errorf("qemu resize: no instance")
	}
	uuid := inst.UUID
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if rec.Rescue != nil || (st != virt.Running && st != virt.Shutdown) {
		return errState("resize", uuid, st)
	}
	if inst.VCPUs <= 0 || inst.MemoryMB <= 0 {
		return fmt.Errorf("qemu resize %s: needs vcpus and memory", uuid)
	}
	old := rec.Instance
	if st == virt.Running {
		d.acpiShutdown(ctx, h, uuid, resizeShutdownTimeout*time.Second)
	}
	if err := d.kill(ctx, h, uuid); err != nil {
		return err
	}
	if inst.RootGB > 0 && old.RootVolume == nil { // a boot volume keeps its size
		size, err := d.virtualSize(ctx, d.path(uuid, "disk.qcow2"))
		if err != nil {
			return fmt.Errorf("qemu resize %s: %w", uuid, err)
		}
		if want := int64(inst.RootGB) * gib; want > size {
			if _, err := d.qemuImg(ctx, "resize", "-q", d.path(uuid, "disk.qcow2"), strconv.FormatInt(want, 10)); err != nil {
				return fmt.Errorf("qemu resize %s: root disk: %w", uuid, err)
			}
		}
	}
	eph := d.path(uuid, ephemeralFile(0))
	switch {
	case len(old.Ephemerals) > 0:
		// The ephemeral disks of block device mappings stay as they are.
		inst.Ephemerals, inst.EphemeralGB = old.Ephemerals, old.EphemeralGB
	case inst.EphemeralGB > 0 && old.EphemeralGB == 0:
		if _, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", eph, strconv.Itoa(inst.EphemeralGB)+"G"); err != nil {
			return fmt.Errorf("qemu resize %s: ephemeral disk: %w", uuid, err)
		}
	case inst.EphemeralGB > old.EphemeralGB:
		if _, err := d.qemuImg(ctx, "resize", "-q", eph, strconv.Itoa(inst.EphemeralGB)+"G"); err != nil {
			return fmt.Errorf("qemu resize %s: ephemeral disk: %w", uuid, err)
		}
	case inst.EphemeralGB < old.EphemeralGB:
		inst.EphemeralGB = old.EphemeralGB // disks never shrink
	}
	swap := d.path(uuid, "disk.swap.qcow2")
	if inst.SwapMB != old.SwapMB {
		_ = os.Remove(swap)
		if inst.SwapMB > 0 {
			if _, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", swap, strconv.Itoa(inst.SwapMB)+"M"); err != nil {
				return fmt.Errorf("qemu resize %s: swap disk: %w", uuid, err)
			}
		}
	}
	rec.Instance.VCPUs, rec.Instance.MemoryMB = inst.VCPUs, inst.MemoryMB
	rec.Instance.RootGB = max(inst.RootGB, old.RootGB)
	rec.Instance.EphemeralGB, rec.Instance.Ephemerals, rec.Instance.SwapMB = inst.EphemeralGB, inst.Ephemerals, inst.SwapMB
	if err := d.save(rec); err != nil {
		return err
	}
	d.log.Info("resized", "instance", uuid, "vcpus", inst.VCPUs, "memory_mb", inst.MemoryMB, "root_gb", rec.Instance.RootGB)
	if st == virt.Running {
		return d.start(ctx, h, rec, false)
	}
	return nil
}

// virtualSize reads a disk's virtual size.
func (d *Driver) virtualSize(ctx context.Context, path string) (int64, error) {
	out, err := d.qemuImg(ctx, "info", "-U", "--output=json", path)
	if err != nil {
		return 0, err
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info.VirtualSize, nil
}

var _ virt.Resizer = (*Driver)(nil)
