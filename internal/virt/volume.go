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
	// QoS is the front-end QoS spec of the volume (Cinder's qos_specs:
	// total_bytes_sec, read_iops_sec, ...), I/O limits the driver applies
	// to the disk; keys a driver does not know are ignored.
	QoS map[string]string `json:"qos_specs,omitempty"`
}

// VolumeDriver is implemented by drivers that can hot-plug volumes into
// running guests. Both calls are idempotent: attaching a plugged volume
// or detaching a missing one succeeds.
type VolumeDriver interface {
	AttachVolume(ctx context.Context, uuid string, v Volume) error
	DetachVolume(ctx context.Context, uuid, volumeID string) error
}
