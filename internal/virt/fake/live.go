package fake

import (
	"context"
	"fmt"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// Live migration (virt.LiveMigrator), simulated: the destination's
// instance waits paused, the source's stops once "copied" and the
// destination's then runs. Each step can fail (FailNext with
// "live_disks", "live_prepare", "live_migrate", "live_finish"), which is
// what the conductor's rollback is tested with. Nothing is copied: the
// fake hosts share nothing.

// LiveDisks reports one root disk of the flavor's size.
func (d *Driver) LiveDisks(ctx context.Context, uuid string) ([]virt.LiveDisk, error) {
	if err := d.begin(ctx, "live_disks"); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return nil, fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if in.state != virt.Running && in.state != virt.Paused {
		return nil, fmt.Errorf("live-migrate %s while %s: %w", uuid, in.state, virt.ErrInvalidState)
	}
	if in.spec.RootVolume != nil {
		return []virt.LiveDisk{}, nil
	}
	return []virt.LiveDisk{{Name: "disk", VirtualSize: int64(max(in.spec.RootGB, 1)) << 30, BackingImage: in.spec.Image.ID}}, nil
}

// PrepareIncoming creates the instance paused, waiting.
func (d *Driver) PrepareIncoming(ctx context.Context, inst *virt.Instance, disks []virt.LiveDisk, host string) (virt.Incoming, error) {
	if err := d.Spawn(ctx, inst); err != nil {
		return virt.Incoming{}, err
	}
	if err := d.begin(ctx, "live_prepare"); err != nil {
		_ = d.Destroy(context.WithoutCancel(ctx), inst.UUID)
		return virt.Incoming{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in := d.insts[inst.UUID]
	in.state = virt.Paused
	in.console.Reset()
	fmt.Fprintf(&in.console, "fake: %s waiting for a live migration with %d disks\n", inst.UUID, len(disks))
	return virt.Incoming{Host: host, NBDPort: 10809, MigrationPort: 49152}, nil
}

// MigrateLive stops the source instance, as if its state had gone. Its
// delay ("live_migrate") is the copy: a force-complete ends it early,
// cancelling ctx aborts it.
func (d *Driver) MigrateLive(ctx context.Context, uuid string, to virt.Incoming, disks []virt.LiveDisk, opts virt.LiveOptions) error {
	d.mu.Lock()
	delay := d.cfg.Delays["live_migrate"]
	d.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("fake live_migrate: %w", ctx.Err())
		case <-t.C:
		case <-opts.ForceComplete:
		}
	}
	d.mu.Lock()
	var err error
	if q := d.failures["live_migrate"]; len(q) > 0 {
		err, d.failures["live_migrate"] = q[0], q[1:]
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fake live_migrate: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if in.state != virt.Running && in.state != virt.Paused {
		return fmt.Errorf("live-migrate %s while %s: %w", uuid, in.state, virt.ErrInvalidState)
	}
	if in.state == virt.Running {
		in.ran += time.Since(in.started)
	}
	in.state = virt.Paused
	fmt.Fprintf(&in.console, "fake: live-migrated to %s\n", to.Host)
	if progress := opts.Progress; progress != nil {
		mem := int64(in.spec.MemoryMB) << 20
		var disk int64
		for _, ld := range disks {
			disk += ld.VirtualSize
		}
		progress(virt.MigrationProgress{MemoryTotal: mem, MemoryProcessed: mem, DiskTotal: disk, DiskProcessed: disk})
	}
	return nil
}

// FinishIncoming runs the received instance (or leaves it paused).
func (d *Driver) FinishIncoming(ctx context.Context, uuid string, paused bool) error {
	if paused {
		if err := d.begin(ctx, "live_finish"); err != nil {
			return err
		}
		_, err := d.Info(ctx, uuid)
		return err
	}
	return d.transition(ctx, "live_finish", uuid, virt.Running, virt.Paused, virt.Running)
}

var _ virt.LiveMigrator = (*Driver)(nil)
