package qemu

import (
	"context"
	"fmt"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// SetAdminPassword needs a guest agent, and the driver starts guests
// without a virtio-serial channel to one: it answers ErrNoGuestAgent for
// every existing instance, as Nova's libvirt driver does for images
// without hw_qemu_guest_agent.
func (d *Driver) SetAdminPassword(ctx context.Context, uuid, _ string) error {
	h, _, err := d.lock(uuid)
	if err != nil {
		return err
	}
	h.unlock()
	return fmt.Errorf("qemu: set password of %s: QEMU %w", uuid, virt.ErrNoGuestAgent)
}

// InjectNMI sends an NMI to a running or paused guest over QMP.
func (d *Driver) InjectNMI(ctx context.Context, uuid string) error {
	h, _, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return err
	}
	defer h.unlock()
	if st != virt.Running && st != virt.Paused {
		return errState("inject-nmi", uuid, st)
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return err
	}
	if err := c.Execute(ctx, "inject-nmi", nil, nil); err != nil {
		return fmt.Errorf("qemu inject-nmi %s: %w", uuid, err)
	}
	return nil
}
