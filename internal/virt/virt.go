// Package virt is the hypervisor interface of the compute agent: the narrow
// set of operations Kumo needs from a driver, the types they take, and the
// errors they return. Drivers live in subpackages (virt/fake now, virt/qemu
// next); every driver passes the same conformance harness in virt/virttest.
//
// Power states and transitions, as every driver must implement them:
//
//	            Spawn                 PowerOff
//	(none) ──────────────▶ Running ───────────▶ Shutdown
//	                        │  ▲  ◀───────────
//	                  Pause │  │ Unpause   PowerOn
//	                        ▼  │
//	                       Paused
//	Running ──Suspend──▶ Suspended ──Resume──▶ Running
//	Running|Shutdown ──Rescue──▶ Running (rescued) ──Unrescue──▶ Running
//	Reboot: Running ▶ Running (soft: guest asked first; hard: reset)
//	Destroy: any ▶ (none), idempotent, leaves nothing behind
//
// An operation in a state that forbids it returns ErrInvalidState; an
// unknown instance ErrNotFound. Drivers are safe for concurrent use on
// different instances; callers serialise operations on one instance.
package virt

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors every driver uses, wrapped with %w.
var (
	ErrNotFound     = errors.New("instance not found")
	ErrInvalidState = errors.New("invalid power state for this operation")
	ErrExists       = errors.New("instance already exists")
	ErrUnsupported  = errors.New("operation not supported by this driver")
	// ErrNoGuestAgent: the operation needs a guest agent the instance
	// does not run (or the driver cannot reach).
	ErrNoGuestAgent = errors.New("guest agent is not enabled")
)

// PowerState is Nova's power state, with the same numbers.
type PowerState int

const (
	NoState   PowerState = 0
	Running   PowerState = 1
	Paused    PowerState = 3
	Shutdown  PowerState = 4
	Crashed   PowerState = 6
	Suspended PowerState = 7
)

func (p PowerState) String() string {
	switch p {
	case Running:
		return "running"
	case Paused:
		return "paused"
	case Shutdown:
		return "shutdown"
	case Crashed:
		return "crashed"
	case Suspended:
		return "suspended"
	}
	return "pending"
}

// Instance is the desired shape of a guest, as the agent hands it over.
type Instance struct {
	UUID        string
	Name        string // host-visible name, e.g. instance-0000002a
	VCPUs       int
	MemoryMB    int
	RootGB      int
	EphemeralGB int
	// Ephemerals, when set, are the ephemeral disks the server's block
	// device mappings define (blank, local), each its own disk, in the
	// order the guest sees them after the root disk; EphemeralGB is then
	// their sum. Unset: one ephemeral disk of EphemeralGB (the flavor's).
	Ephemerals  []Ephemeral
	SwapMB      int
	Image       Image
	NICs        []NIC
	ConfigDrive bool
	Metadata    Metadata
	// RootVolume, when set, is the boot disk (a volume-backed instance):
	// the driver creates no root disk and Image gives only the boot
	// properties (kernel, ramdisk, command line), no disk file.
	RootVolume *Volume
	// Volumes are plugged at spawn (block device mappings), as if
	// attached right after; they can be detached later.
	Volumes []Volume
}

// Ephemeral is one ephemeral disk of an instance.
type Ephemeral struct {
	SizeGB int `json:"size_gb"`
	// GuestFormat is the file system the mapping asked for ("" none);
	// recorded, not made: the guest formats its ephemeral disks itself.
	GuestFormat string `json:"guest_format,omitempty"`
}

// EphemeralDisks lists the instance's ephemeral disks in guest order:
// Ephemerals, or the flavor's single disk of EphemeralGB (none if 0).
func (i *Instance) EphemeralDisks() []Ephemeral {
	if len(i.Ephemerals) > 0 {
		return i.Ephemerals
	}
	if i.EphemeralGB > 0 {
		return []Ephemeral{{SizeGB: i.EphemeralGB}}
	}
	return nil
}

// Image is a disk image already present in the host's image cache.
type Image struct {
	ID          string
	Path        string // local file in the image cache
	DiskFormat  string // qcow2, raw, iso, ...
	Properties  map[string]string
	KernelPath  string // direct kernel boot when set
	RamdiskPath string
	KernelArgs  string
}

// NIC is one virtual interface, plugged into the host network by the
// network agent.
type NIC struct {
	PortID string
	MAC    string
	Tap    string // host device name, e.g. tap1234abcd-12
	Bridge string
	MTU    int
}

// Metadata is what the guest reads from its config drive.
type Metadata struct {
	Hostname    string
	UserData    []byte
	PublicKeys  map[string]string
	AdminPass   string
	NetworkData []byte // network_data.json
	VendorData  []byte
	Extra       map[string]string // server metadata
}

// Info is a driver's view of one instance.
type Info struct {
	State     PowerState
	Rescued   bool
	VCPUs     int
	MemoryMB  int
	StartedAt time.Time
}

// Resources is what the host offers to instances.
type Resources struct {
	VCPUs    int
	MemoryMB int
	DiskGB   int
	// Traits are capability names as Placement knows them (COMPUTE_*,
	// HW_CPU_X86_*), including the accelerator in use.
	Traits []string
}

// Driver is a hypervisor.
type Driver interface {
	// Name is the driver's configuration name ("fake", "qemu").
	Name() string
	// Resources reports the host's capacity and capabilities.
	Resources(ctx context.Context) (Resources, error)
	// List names the instances the driver finds on the host, so an agent
	// restarted next to running guests adopts them instead of losing them.
	List(ctx context.Context) ([]string, error)
	// Info reports an instance's state.
	Info(ctx context.Context, uuid string) (Info, error)

	// Spawn creates and starts an instance; on failure nothing is left.
	Spawn(ctx context.Context, inst *Instance) error
	// Destroy stops and removes an instance and everything it owns; an
	// unknown instance is not an error.
	Destroy(ctx context.Context, uuid string) error

	PowerOff(ctx context.Context, uuid string, timeout time.Duration) error
	PowerOn(ctx context.Context, uuid string) error
	Reboot(ctx context.Context, uuid string, hard bool) error
	Pause(ctx context.Context, uuid string) error
	Unpause(ctx context.Context, uuid string) error
	Suspend(ctx context.Context, uuid string) error
	Resume(ctx context.Context, uuid string) error
	Rescue(ctx context.Context, uuid string, rescue Image) error
	Unrescue(ctx context.Context, uuid string) error

	// Snapshot writes the instance's root disk as a standalone image in
	// the given format to w.
	Snapshot(ctx context.Context, uuid, format string, w io.Writer) error
	// ConsoleOutput returns up to the last maxBytes of the serial console.
	ConsoleOutput(ctx context.Context, uuid string, maxBytes int) ([]byte, error)

	// SetAdminPassword sets the guest's administrator password through a
	// guest agent (Nova's changePassword); ErrNoGuestAgent when there is
	// none to ask.
	SetAdminPassword(ctx context.Context, uuid, password string) error
	// InjectNMI sends a non-maskable interrupt to a running or paused
	// guest, which makes a prepared kernel dump its memory (Nova's
	// trigger_crash_dump); ErrInvalidState in other states.
	InjectNMI(ctx context.Context, uuid string) error
}

// Consoler is implemented by drivers whose guests have interactive
// consoles reachable on the host.
type Consoler interface {
	// ConsoleSocket returns the host-local unix socket of the instance's
	// console of the given type ("serial": the raw serial port; "vnc": an
	// RFB server). ErrUnsupported for other types.
	ConsoleSocket(ctx context.Context, uuid, kind string) (string, error)
}

// Resizer is implemented by drivers that can change an instance's flavor
// in place, keeping its disks: the root and ephemeral disks grow (never
// shrink), swap is recreated, vCPUs and memory change at the next start.
// The instance ends in the power state it had (a running guest is shut
// down and started again).
type Resizer interface {
	Resize(ctx context.Context, inst *Instance) error
}

// Diagnostics is what a driver measures of one instance for Nova's
// server diagnostics; nil counters are unknown to the driver.
type Diagnostics struct {
	Hypervisor   string // e.g. "kvm", "qemu"; "" unknown
	HypervisorOS string // e.g. "linux"; "" unknown
	ConfigDrive  bool
	// CPUs are the vCPUs in order; Time is nanoseconds of CPU time.
	CPUs         []CPUStats
	MemoryUsedMB *int64
	Disks        []DiskStats
	NICs         []NICStats
}

// CPUStats is one vCPU.
type CPUStats struct {
	Time        *int64
	Utilisation *int64 // percent
}

// DiskStats is one disk's I/O counters.
type DiskStats struct {
	Name                                                       string
	ReadBytes, ReadRequests, WriteBytes, WriteRequests, Errors *int64
}

// NICStats is one interface's counters, from the guest's side.
type NICStats struct {
	MAC, Tap                              string
	RxOctets, RxPackets, RxErrors, RxDrop *int64
	TxOctets, TxPackets, TxErrors, TxDrop *int64
}

// Diagnoser is implemented by drivers that can report an instance's
// diagnostics (ErrNotFound for an unknown instance).
type Diagnoser interface {
	Diagnostics(ctx context.Context, uuid string) (Diagnostics, error)
}
