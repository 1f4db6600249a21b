package virt

import (
	"context"
	"io"
)

// DiskFile is one disk of an instance that a cold migration copies.
type DiskFile struct {
	// Name is the disk's name in the driver's layout (e.g. disk.qcow2).
	Name   string
	Size   int64
	SHA256 string // hex
	// BackingImage is the image the disk is a copy-on-write overlay of;
	// empty for a standalone disk.
	BackingImage string
}

// DiskMigrator is implemented by drivers whose instances keep their disks
// on the host, so that a cold migration (or a resize to another host)
// moves the disks instead of booting a fresh copy of the image.
//
// The source side exports the disks of a stopped instance and serves
// reads of them; the destination creates the instance from copies,
// rebasing overlays onto its own copy of the backing image (Image.Path
// of the instance it is given, which must be the same image).
type DiskMigrator interface {
	// ExportDisks lists the disks of a stopped instance a destination
	// needs (ErrInvalidState unless it is shut down).
	ExportDisks(ctx context.Context, uuid string) ([]DiskFile, error)
	// OpenDisk opens one exported disk for reading.
	OpenDisk(ctx context.Context, uuid, name string) (DiskReader, error)
	// SpawnMigrated creates and starts an instance (powered off when
	// stopped is set) from copies of disks: fetch fills w with the content
	// of one of them. Disks the instance has but disks lacks (swap, config
	// drive) are made afresh; disks grow to the instance's flavor. On
	// failure nothing is left.
	SpawnMigrated(ctx context.Context, inst *Instance, disks []DiskFile, fetch func(ctx context.Context, f DiskFile, w io.WriterAt) error, stopped bool) error
}

// DiskReader reads an exported disk.
type DiskReader interface {
	io.ReaderAt
	io.Closer
}

// ExitWatcher is implemented by drivers that notice guests ending on
// their own (the guest powered off, the hypervisor process crashed or was
// killed) as it happens. Exits the driver causes itself are not reported.
type ExitWatcher interface {
	// WatchExits calls fn with the instance's uuid each time one of its
	// guests ends without the driver having asked, until ctx is done.
	WatchExits(ctx context.Context, fn func(uuid string))
}
