package fake

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// AttachVolume records a plugged volume; the volume's path must exist,
// as a real hypervisor would need it to.
func (d *Driver) AttachVolume(ctx context.Context, uuid string, v virt.Volume) error {
	if err := d.begin(ctx, "attach_volume"); err != nil {
		return err
	}
	if _, err := os.Stat(v.Path); err != nil {
		return fmt.Errorf("fake attach_volume: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("fake attach_volume %s: %w", uuid, virt.ErrNotFound)
	}
	if in.state != virt.Running && in.state != virt.Paused {
		return fmt.Errorf("fake attach_volume: guest is %s: %w", in.state, virt.ErrInvalidState)
	}
	d.plug(uuid, v)
	fmt.Fprintf(&in.console, "virtio_blk: new disk %s (serial %s)\n", strings.TrimPrefix(v.Device, "/dev/"), v.ID)
	return nil
}

// plug records a plugged volume; d.mu is held.
func (d *Driver) plug(uuid string, v virt.Volume) {
	if d.vols == nil {
		d.vols = map[string]map[string]virt.Volume{}
	}
	if d.vols[uuid] == nil {
		d.vols[uuid] = map[string]virt.Volume{}
	}
	d.vols[uuid][v.ID] = v
}

// DetachVolume forgets a plugged volume.
func (d *Driver) DetachVolume(ctx context.Context, uuid, volumeID string) error {
	if err := d.begin(ctx, "detach_volume"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.insts[uuid]; !ok {
		return nil
	}
	delete(d.vols[uuid], volumeID)
	return nil
}

// Volumes lists the volume ids plugged into an instance (tests).
func (d *Driver) Volumes(uuid string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.insts[uuid]; !ok {
		return nil
	}
	var out []string
	for id := range d.vols[uuid] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

var _ virt.VolumeDriver = (*Driver)(nil)
