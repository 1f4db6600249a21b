package qemu

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/qmp"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// shellQuote quotes s for /bin/sh (QEMU runs exec: migration URIs by sh).
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Suspend saves the guest's memory and device state to state.sav (a QEMU
// migration stream) and ends the process, like libvirt's managed save.
func (d *Driver) Suspend(ctx context.Context, uuid string) error {
	h, _, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if st != virt.Running {
		return errState("suspend", uuid, st)
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return err
	}
	sav, tmp := d.path(uuid, "state.sav"), d.path(uuid, "state.sav.tmp")
	fail := func(err error) error {
		_ = os.Remove(tmp)
		_ = c.Cont(context.Background())
		return fmt.Errorf("qemu suspend %s: %w", uuid, err)
	}
	// The default migration bandwidth (32 MiB/s) is meant for networks.
	if err := c.Execute(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(8) << 30}, nil); err != nil {
		return fail(err)
	}
	if err := c.Stop(ctx); err != nil {
		return fail(err)
	}
	if err := c.Migrate(ctx, "exec:cat > "+shellQuote(tmp)); err != nil {
		return fail(err)
	}
	if err := waitMigration(ctx, c); err != nil {
		return fail(err)
	}
	if err := d.kill(ctx, h, uuid); err != nil {
		return err
	}
	if err := os.Rename(tmp, sav); err != nil {
		return fmt.Errorf("qemu suspend %s: %w", uuid, err)
	}
	return nil
}

// waitMigration polls until the current migration completes.
func waitMigration(ctx context.Context, c *qmp.Client) error {
	for {
		m, err := c.QueryMigrate(ctx)
		if err != nil {
			return err
		}
		switch m.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", m.Status, m.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Resume starts QEMU waiting for the saved state, loads it and continues.
func (d *Driver) Resume(ctx context.Context, uuid string) error {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if st != virt.Suspended {
		return errState("resume", uuid, st)
	}
	sav := d.path(uuid, "state.sav")
	if err := d.start(ctx, h, rec, true); err != nil {
		return err
	}
	c, err := d.qmp(ctx, h, uuid)
	fail := func(err error) error {
		_ = d.kill(context.Background(), h, uuid) // state.sav stays: still suspended
		return fmt.Errorf("qemu resume %s: %w", uuid, err)
	}
	if err != nil {
		return fail(err)
	}
	if err := c.MigrateIncoming(ctx, "exec:cat "+shellQuote(sav)); err != nil {
		return fail(err)
	}
	for {
		s, err := c.QueryStatus(ctx)
		if err != nil {
			return fail(err)
		}
		if s.Status != qmp.StatusInMigrate {
			break
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if m, err := c.QueryMigrate(ctx); err != nil || m.Status != "completed" {
		return fail(fmt.Errorf("incoming migration %s %s: %v", m.Status, m.ErrorDesc, err))
	}
	if err := c.Cont(ctx); err != nil {
		return fail(err)
	}
	_ = os.Remove(sav)
	return nil
}

// Rescue restarts the instance from the rescue image (the instance's own
// image when rescue has no file) with its root disk attached second.
func (d *Driver) Rescue(ctx context.Context, uuid string, rescue virt.Image) error {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if rec.Rescue != nil || (st != virt.Running && st != virt.Shutdown) {
		return errState("rescue", uuid, st)
	}
	if rescue.Path == "" && rescue.KernelPath == "" {
		rescue = rec.Instance.Image
	}
	if err := d.kill(ctx, h, uuid); err != nil {
		return err
	}
	disk := d.path(uuid, "disk.rescue.qcow2")
	if rescue.Path != "" {
		err = d.overlay(ctx, rescue, disk, 0)
	} else {
		_, err = d.qemuImg(ctx, "create", "-q", "-f", "qcow2", disk, "1G")
	}
	if err != nil {
		return fmt.Errorf("qemu rescue %s: %w", uuid, err)
	}
	rec.Rescue = &rescue
	if err := d.start(ctx, h, rec, false); err != nil {
		rec.Rescue = nil
		_ = os.Remove(disk)
		_ = d.save(rec)
		return err
	}
	return nil
}

// Unrescue restarts the instance from its own root disk.
func (d *Driver) Unrescue(ctx context.Context, uuid string) error {
	h, rec, err := d.lock(uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if rec.Rescue == nil {
		return fmt.Errorf("unrescue %s: not rescued: %w", uuid, virt.ErrInvalidState)
	}
	if err := d.kill(ctx, h, uuid); err != nil {
		return err
	}
	_ = os.Remove(d.path(uuid, "disk.rescue.qcow2"))
	rec.Rescue = nil
	if err := d.save(rec); err != nil {
		return err
	}
	return d.start(ctx, h, rec, false)
}

// Snapshot converts the root disk (overlay and image) into a standalone
// image. A running guest is paused for the copy so the disk is consistent
// as far as the host can make it; guest caches are not flushed.
func (d *Driver) Snapshot(ctx context.Context, uuid, format string, w io.Writer) error {
	h, rec, err := d.lock(uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if rec.Instance.RootVolume != nil {
		// Volume-backed: the block storage service snapshots the volume.
		return fmt.Errorf("qemu snapshot %s: the root disk is volume %s: %w", uuid, rec.Instance.RootVolume.ID, virt.ErrUnsupported)
	}
	if format != "raw" && format != "qcow2" {
		return fmt.Errorf("snapshot format %q: %w", format, virt.ErrUnsupported)
	}
	st, err := d.state(ctx, h, uuid)
	if err != nil {
		return err
	}
	// The guest runs again as soon as the copy is taken, before the upload.
	resume := func() {}
	if st == virt.Running {
		c, err := d.qmp(ctx, h, uuid)
		if err != nil {
			return err
		}
		if err := c.Stop(ctx); err != nil {
			return fmt.Errorf("qemu snapshot %s: pause: %w", uuid, err)
		}
		var once sync.Once
		resume = func() { once.Do(func() { _ = c.Cont(context.Background()) }) }
		defer resume()
	}
	tmp, err := os.CreateTemp(d.dir(uuid), ".snapshot-*")
	if err != nil {
		return fmt.Errorf("qemu snapshot %s: %w", uuid, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	// -U: QEMU holds the image lock; the guest is paused, so sharing is safe.
	if _, err := d.qemuImg(ctx, "convert", "-U", "-f", "qcow2", "-O", format, d.path(uuid, "disk.qcow2"), tmp.Name()); err != nil {
		return fmt.Errorf("qemu snapshot %s: %w", uuid, err)
	}
	resume()
	f, err := os.Open(tmp.Name())
	if err != nil {
		return fmt.Errorf("qemu snapshot %s: %w", uuid, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("qemu snapshot %s: %w", uuid, err)
	}
	return nil
}
