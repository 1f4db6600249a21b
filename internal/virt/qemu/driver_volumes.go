package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/qmp"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// hotplugPorts is how many PCIe root ports every q35 guest gets, so that
// up to that many volumes can be plugged into a running guest.
const hotplugPorts = 8

// pluggedVolume is an attached volume in instance.json: it is plugged
// again, into the same port, whenever QEMU starts.
type pluggedVolume struct {
	virt.Volume
	Port int `json:"port"`
}

func volumeNode(id string) string {
	id = strings.ReplaceAll(id, "-", "")
	if len(id) > 20 {
		id = id[:20]
	}
	return "vol" + id
}

// serial is what the guest sees as the disk's serial (QEMU keeps 20
// characters), /dev/disk/by-id/virtio-<serial>.
func serial(id string) string {
	if len(id) > 20 {
		return id[:20]
	}
	return id
}

func (p pluggedVolume) disk() Disk {
	f := p.Format
	if f == "" {
		f = "raw"
	}
	return Disk{ID: volumeNode(p.ID), Path: p.Path, Format: f, ReadOnly: p.ReadOnly, Serial: serial(p.ID),
		Bus: fmt.Sprintf("hotplug%d", p.Port), Throttle: throttleOf(p.QoS)}
}

// AttachVolume hot-plugs a volume into a running (or paused) guest as a
// virtio-blk disk on a free PCIe root port: blockdev-add, then
// device_add. The volume is recorded so that it is plugged again when
// QEMU next starts.
func (d *Driver) AttachVolume(ctx context.Context, uuid string, v virt.Volume) error {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if slices.ContainsFunc(rec.Volumes, func(p pluggedVolume) bool { return p.ID == v.ID }) {
		return nil
	}
	if st != virt.Running && st != virt.Paused {
		return errState("attach volume to", uuid, st)
	}
	used := map[int]bool{}
	for _, p := range rec.Volumes {
		used[p.Port] = true
	}
	port := -1
	for i := 0; i < hotplugPorts; i++ {
		if !used[i] {
			port = i
			break
		}
	}
	if port < 0 {
		return fmt.Errorf("qemu: %s has no free hot-plug port (%d volumes attached)", uuid, hotplugPorts)
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return err
	}
	pv := pluggedVolume{Volume: v, Port: port}
	disk := pv.disk()
	if err := disk.Throttle.validate(); err != nil {
		return fmt.Errorf("qemu: %s: plug volume %s: %w", uuid, v.ID, err)
	}
	node := disk.ID
	undo, err := plugNodes(ctx, c, disk)
	if err != nil {
		return fmt.Errorf("qemu: %s: plug volume %s: %w", uuid, v.ID, err)
	}
	err = c.Execute(ctx, "device_add", map[string]any{
		"driver": "virtio-blk-pci", "drive": node, "id": node, "serial": disk.Serial, "bus": disk.Bus,
	}, nil)
	if err != nil {
		undo()
		return fmt.Errorf("qemu: %s: plug volume %s: %w", uuid, v.ID, err)
	}
	rec.Volumes = append(rec.Volumes, pv)
	if err := d.save(rec); err != nil {
		return err
	}
	d.log.Info("volume attached", "instance", uuid, "volume", v.ID, "port", port)
	return nil
}

// DetachVolume unplugs a volume: device_del, then (once the guest has
// released the device, DEVICE_DELETED) blockdev-del. A stopped guest only
// forgets it. Detaching a volume that is not attached succeeds.
func (d *Driver) DetachVolume(ctx context.Context, uuid, volumeID string) error {
	h, rec, st, err := d.lockState(ctx, uuid)
	if errors.Is(err, virt.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.unlock()
	i := slices.IndexFunc(rec.Volumes, func(p pluggedVolume) bool { return p.ID == volumeID })
	if i < 0 {
		return nil
	}
	node := volumeNode(volumeID)
	if st == virt.Running || st == virt.Paused {
		c, err := d.qmp(ctx, h, uuid)
		if err != nil {
			return err
		}
		events, cancel := c.Subscribe(16)
		defer cancel()
		if err := c.Execute(ctx, "device_del", map[string]any{"id": node}, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("qemu: %s: unplug volume %s: %w", uuid, volumeID, err)
		}
		if err := waitDeviceDeleted(ctx, c, events, node, 60*time.Second); err != nil {
			return fmt.Errorf("qemu: %s: unplug volume %s: %w", uuid, volumeID, err)
		}
		if err := unplugNodes(ctx, c, rec.Volumes[i].disk()); err != nil {
			return fmt.Errorf("qemu: %s: release volume %s: %w", uuid, volumeID, err)
		}
	}
	rec.Volumes = slices.Delete(rec.Volumes, i, i+1)
	if err := d.save(rec); err != nil {
		return err
	}
	d.log.Info("volume detached", "instance", uuid, "volume", volumeID)
	return nil
}

func isNotFound(err error) bool {
	var qe *qmp.Error
	return errors.As(err, &qe) && (qe.Class == "DeviceNotFound" || strings.Contains(qe.Desc, "not found") || strings.Contains(qe.Desc, "No such"))
}

// waitDeviceDeleted waits for the guest to release a device; the device
// being already gone (query-pci no longer lists it) also counts.
func waitDeviceDeleted(ctx context.Context, c *qmp.Client, events <-chan qmp.Event, id string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return qmp.ErrClosed
			}
			if ev.Name == "DEVICE_DELETED" {
				var data struct {
					Device string `json:"device"`
				}
				if json.Unmarshal(ev.Data, &data) == nil && data.Device == id {
					return nil
				}
			}
		case <-tick.C:
			var out any
			if err := c.Execute(ctx, "qom-get", map[string]any{"path": "/machine/peripheral/" + id, "property": "type"}, &out); err != nil {
				return nil // the device is gone
			}
		case <-t.C:
			return fmt.Errorf("guest did not release device %s within %s", id, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var _ virt.VolumeDriver = (*Driver)(nil)
