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

// LiveDisk is one local disk of a running instance that a live migration
// copies while the guest runs.
type LiveDisk struct {
	// Name is the disk's name in the driver's layout (e.g. disk.qcow2).
	Name string
	// VirtualSize is the size the guest sees, in bytes: the destination's
	// disk must have exactly this size.
	VirtualSize int64
	// BackingImage, when set, is the image the disk is an overlay of: the
	// destination makes its disk an overlay of its own copy of the image
	// and only what the guest wrote is copied.
	BackingImage string
}

// Incoming is where a destination prepared for a live migration
// receives: the guest's memory on MigrationPort and the disks on an NBD
// server at NBDPort, both on Host (the destination's migration address).
type Incoming struct {
	Host          string
	NBDPort       int
	MigrationPort int
}

// LiveOptions tune one MigrateLive.
type LiveOptions struct {
	// Progress, when set, is called as the copy goes.
	Progress func(MigrationProgress)
	// ForceComplete, once closed, makes the migration finish by pausing
	// the guest for the rest of the memory copy.
	ForceComplete <-chan struct{}
}

// MigrationProgress is how far a live migration is, in bytes.
type MigrationProgress struct {
	MemoryTotal, MemoryProcessed, MemoryRemaining int64
	DiskTotal, DiskProcessed, DiskRemaining       int64
}

// LiveMigrator is implemented by drivers that move a running guest to
// another host without stopping it and without shared storage: the
// destination starts the guest waiting for its state and serves its empty
// disks; the source copies the disks while the guest runs, then the
// memory; the destination resumes the guest where it was.
//
//	source:      LiveDisks ─────────────▶ MigrateLive ──▶ (Destroy)
//	destination:            PrepareIncoming ───────────▶ FinishIncoming
//
// A failed MigrateLive leaves the source guest as it was (running or
// paused); the destination is then destroyed. After a successful
// MigrateLive the source guest stays, stopped, until it is destroyed (or
// powered on again if the destination cannot finish).
type LiveMigrator interface {
	// LiveDisks lists the local disks of a running or paused instance
	// that a destination must prepare (ErrInvalidState otherwise).
	LiveDisks(ctx context.Context, uuid string) ([]LiveDisk, error)
	// PrepareIncoming creates the instance with empty disks of the given
	// sizes (overlays on inst.Image where the source's are) and starts it
	// waiting for the migration on the address host. On failure nothing
	// is left.
	PrepareIncoming(ctx context.Context, inst *Instance, disks []LiveDisk, host string) (Incoming, error)
	// MigrateLive copies the instance's disks and memory to a prepared
	// destination. Cancelling ctx aborts it (the source runs on).
	MigrateLive(ctx context.Context, uuid string, to Incoming, disks []LiveDisk, opts LiveOptions) error
	// FinishIncoming ends a received migration: the disk server stops and
	// the guest runs (or stays paused when paused is set).
	FinishIncoming(ctx context.Context, uuid string, paused bool) error
}
