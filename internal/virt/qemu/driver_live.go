package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/qmp"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// Live migration (virt.LiveMigrator), without shared storage, the way
// libvirt does it: the destination starts QEMU with -incoming defer and
// the guest's disks created empty (the root an overlay on the
// destination's own copy of the image, the same size), exports them
// writable over NBD, and listens for the migration stream; the source
// mirrors each disk into those exports (sync=top for the overlay: only
// what the guest wrote travels), then migrates memory, pausing before the
// switch-over to end the mirrors (qmp.MigrateLive). Swap is mirrored
// like any disk; the config drive is made again on the destination (same
// content); volumes are reached at the same paths by both hosts and are
// not copied.

// liveNodes are the disks a live migration mirrors, by file, with their
// QEMU node names (Args's disk ids).
var liveNodes = []struct{ file, node string }{
	{"disk.qcow2", "root"}, {"disk.eph0.qcow2", "eph0"}, {"disk.swap.qcow2", "swap"},
}

func liveNode(file string) (string, bool) {
	for _, n := range liveNodes {
		if n.file == file {
			return n.node, true
		}
	}
	return "", false
}

// LiveDisks lists the root, ephemeral and swap disks of a running or
// paused instance with their virtual sizes.
func (d *Driver) LiveDisks(ctx context.Context, uuid string) ([]virt.LiveDisk, error) {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return nil, err
	}
	defer h.unlock()
	if (st != virt.Running && st != virt.Paused) || rec.Rescue != nil {
		return nil, errState("live-migrate", uuid, st)
	}
	out := []virt.LiveDisk{}
	for _, n := range liveNodes {
		if n.node == "root" && rec.Instance.RootVolume != nil {
			continue // the volume is shared
		}
		p := d.path(uuid, n.file)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		size, err := d.virtualSize(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("qemu live-migrate %s: %w", uuid, err)
		}
		ld := virt.LiveDisk{Name: n.file, VirtualSize: size}
		if n.node == "root" && rec.Instance.Image.Path != "" {
			if rec.Instance.Image.ID == "" {
				return nil, fmt.Errorf("qemu live-migrate %s: the root disk's backing image has no id", uuid)
			}
			ld.BackingImage = rec.Instance.Image.ID
		}
		out = append(out, ld)
	}
	return out, nil
}

// PrepareIncoming creates the instance with empty disks and starts it
// waiting for the migration, its disks exported over NBD.
func (d *Driver) PrepareIncoming(ctx context.Context, inst *virt.Instance, disks []virt.LiveDisk, host string) (virt.Incoming, error) {
	if inst == nil || !validUUID(inst.UUID) {
		return virt.Incoming{}, fmt.Errorf("qemu live-migrate: instance needs a uuid")
	}
	uuid := inst.UUID
	var nodes []string
	err := d.spawn(ctx, inst, true, func() error {
		for _, ld := range disks {
			node, ok := liveNode(ld.Name)
			if !ok {
				return fmt.Errorf("qemu live-migrate %s: unexpected disk %q", uuid, ld.Name)
			}
			nodes = append(nodes, node)
			p := d.path(uuid, ld.Name)
			switch {
			case node == "swap":
				// spawn makes swap from the flavor, as on the source.
				continue
			case ld.BackingImage != "":
				if ld.BackingImage != inst.Image.ID || inst.Image.Path == "" {
					return fmt.Errorf("qemu live-migrate %s: %s is an overlay of image %s, but the instance's image here is %q",
						uuid, ld.Name, ld.BackingImage, inst.Image.ID)
				}
				if err := d.overlay(ctx, inst.Image, p, ld.VirtualSize); err != nil {
					return err
				}
			default:
				if _, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", p, strconv.FormatInt(ld.VirtualSize, 10)); err != nil {
					return fmt.Errorf("qemu live-migrate %s: %s: %w", uuid, ld.Name, err)
				}
			}
			if node == "eph0" && inst.EphemeralGB == 0 {
				inst.EphemeralGB = int((ld.VirtualSize + gib - 1) / gib) // the disk is attached as on the source
			}
		}
		return nil
	})
	if err != nil {
		return virt.Incoming{}, err
	}
	in, err := d.startIncoming(ctx, uuid, host, nodes)
	if err != nil {
		_ = d.Destroy(context.WithoutCancel(ctx), uuid)
		return virt.Incoming{}, fmt.Errorf("qemu live-migrate %s: %w", uuid, err)
	}
	d.log.Info("waiting for a live migration", "instance", uuid, "nbd", in.NBDPort, "migration", in.MigrationPort)
	return in, nil
}

func (d *Driver) startIncoming(ctx context.Context, uuid, host string, nodes []string) (virt.Incoming, error) {
	h, rec, err := d.lock(uuid)
	if err != nil {
		return virt.Incoming{}, err
	}
	defer h.unlock()
	if err := d.start(ctx, h, rec, true); err != nil {
		return virt.Incoming{}, err
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return virt.Incoming{}, err
	}
	ports, err := freePorts(host, 2)
	if err != nil {
		return virt.Incoming{}, err
	}
	in := virt.Incoming{Host: host, NBDPort: ports[0], MigrationPort: ports[1]}
	if err := c.PrepareIncoming(ctx, host, in.NBDPort, in.MigrationPort, nodes); err != nil {
		return virt.Incoming{}, err
	}
	return in, nil
}

// freePorts finds n TCP ports free on host (QEMU is then told to listen on
// them; another program taking one in between fails the migration, which
// rolls back).
func freePorts(host string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("migration address %s: %w", host, err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// MigrateLive mirrors the disks and migrates the memory to a prepared
// destination. The source guest stays (stopped) after success; after a
// failure it runs on as before.
func (d *Driver) MigrateLive(ctx context.Context, uuid string, to virt.Incoming, disks []virt.LiveDisk, opts virt.LiveOptions) error {
	h, _, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if st != virt.Running && st != virt.Paused {
		return errState("live-migrate", uuid, st)
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return err
	}
	m := qmp.LiveMigration{Host: to.Host, NBDPort: to.NBDPort, MigrationPort: to.MigrationPort, ForceComplete: opts.ForceComplete}
	for _, ld := range disks {
		node, ok := liveNode(ld.Name)
		if !ok {
			return fmt.Errorf("qemu live-migrate %s: unexpected disk %q", uuid, ld.Name)
		}
		sync := "full"
		if ld.BackingImage != "" {
			sync = "top"
		}
		m.Disks = append(m.Disks, qmp.MirrorDisk{Node: node, Sync: sync})
	}
	if opts.Progress != nil {
		m.Progress = func(p qmp.Progress) { opts.Progress(virt.MigrationProgress(p)) }
	}
	if err := c.MigrateLive(ctx, m); err != nil {
		if st == virt.Running {
			if s, serr := c.QueryStatus(context.WithoutCancel(ctx)); serr == nil && s.Status != qmp.StatusRunning {
				_ = c.Cont(context.WithoutCancel(ctx))
			}
		}
		return fmt.Errorf("qemu live-migrate %s to %s: %w", uuid, to.Host, err)
	}
	d.log.Info("live-migrated out", "instance", uuid, "to", to.Host)
	return nil
}

// FinishIncoming waits for the received state, stops the NBD server and
// resumes the guest (unless paused).
func (d *Driver) FinishIncoming(ctx context.Context, uuid string, paused bool) error {
	h, _, err := d.lock(uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if _, ok := d.pid(uuid); !ok {
		return fmt.Errorf("qemu live-migrate %s: no process waiting for the migration: %w", uuid, virt.ErrInvalidState)
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return err
	}
	if err := c.FinishIncoming(ctx, paused, 0); err != nil {
		return fmt.Errorf("qemu live-migrate %s: %w", uuid, err)
	}
	d.log.Info("live-migrated in", "instance", uuid)
	return nil
}

var _ virt.LiveMigrator = (*Driver)(nil)
