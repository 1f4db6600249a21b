package virt

import "context"

// Volume is a block storage volume plugged into a guest: a local file or
// block device.
type Volume struct {
	ID       string // the volume id, also the disk's serial in the guest
	Path     string
	Format   string // raw or qcow2
	Device   string // requested guest device name, e.g. /dev/vdb (a hint)
	ReadOnly bool
}

// VolumeDriver is implemented by drivers that can hot-plug volumes into
// running guests. Both calls are idempotent: attaching a plugged volume
// or detaching a missing one succeeds.
type VolumeDriver interface {
	AttachVolume(ctx context.Context, uuid string, v Volume) error
	DetachVolume(ctx context.Context, uuid, volumeID string) error
}
