// Package backend holds the storage drivers of the block storage service:
// the interface every backend implements, the file backend (sparse raw or
// qcow2 files under the data directory, the embedded default) and the LVM
// backend (logical volumes in an existing volume group, thin when the
// group has a thin pool).
//
// Every operation is idempotent so the volume service can simply run a
// step again after a restart: creating a volume that exists recreates it
// from scratch, deleting a missing one succeeds.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Errors backends wrap with %w.
var (
	ErrNoSpace     = errors.New("not enough free space on the backend")
	ErrUnsupported = errors.New("operation not supported by this backend")
)

// Source is what a new volume is filled from: a local file or device in
// the given format (raw or qcow2). A nil source makes a blank volume.
type Source struct {
	Path   string
	Format string
}

// Connection is how a hypervisor on this host reaches a volume; it is
// rendered as Cinder's connection_info ({"driver_volume_type": "local",
// "data": {"device_path", "format"}}).
type Connection struct {
	Type   string // "local"
	Path   string // file or block device
	Format string // raw or qcow2
}

// Info maps the connection to Cinder's connection_info body.
func (c Connection) Info(readonly bool) map[string]any {
	mode := "rw"
	if readonly {
		mode = "ro"
	}
	return map[string]any{"driver_volume_type": c.Type, "data": map[string]any{
		"device_path": c.Path, "format": c.Format, "access_mode": mode,
	}}
}

// Capacity is a backend's space in GiB.
type Capacity struct {
	TotalGB int64
	FreeGB  int64
	// Thin is set when volumes take space only as they are written;
	// FreeGB then counts provisioned, not written, space.
	Thin bool
}

// Backend is one storage pool.
type Backend interface {
	// Name is the backend's volume_backend_name.
	Name() string
	// Driver names the implementation ("file", "lvm").
	Driver() string
	Capacity(ctx context.Context) (Capacity, error)
	// Create makes volume id of sizeGB, filled from src when not nil,
	// and returns its location (opaque to the caller).
	Create(ctx context.Context, id string, sizeGB int, src *Source) (string, error)
	// Delete removes a volume; a missing one is not an error.
	Delete(ctx context.Context, location string) error
	// Extend grows a volume to sizeGB.
	Extend(ctx context.Context, location string, sizeGB int) error
	// Snapshot makes a point-in-time copy of a volume and returns the
	// snapshot's location.
	Snapshot(ctx context.Context, location, snapID string) (string, error)
	// DeleteSnapshot removes a snapshot; a missing one is not an error.
	DeleteSnapshot(ctx context.Context, snapLocation string) error
	// Connect returns how to reach a volume (or, for a snapshot
	// location, its data, for creating volumes from it).
	Connect(ctx context.Context, location string) (Connection, error)
}

// run executes a command and returns its trimmed output, wrapping the
// command's stderr into the error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// GiB is one gibibyte, Cinder's size unit.
const GiB = int64(1) << 30
