// Package qemu is the QEMU driver of virt.Driver: one QEMU process per
// instance, configured by a pure function (Args), controlled over QMP
// (internal/qmp), and found again from its state directory after an agent
// restart.
//
// On disk, per instance, under Config.StateDir/<uuid>/:
//
//	instance.json   the desired instance (virt.Instance) + rescue state
//	disk.qcow2      root disk: qcow2 overlay on the cached image (none for a
//	                volume-backed instance, which boots from its volume's
//	                file or logical volume)
//	disk.eph0.qcow2, disk.swap.qcow2   flavor ephemeral and swap disks
//	disk.eph1.qcow2 ...                 further ephemeral disks of block
//	                device mappings (eph0 is then the mapping's first)
//	disk.rescue.qcow2                  overlay on the rescue image, while rescued
//	config.iso      config drive (label config-2)
//	qmp.sock        QMP socket; qemu.pid the process
//	serial.sock, vnc.sock  interactive consoles (serial port, VNC display)
//	console.log     serial console (rotated to console.log.0)
//	state.sav       saved memory while suspended
//
// Power states map onto the process like this: no process = Shutdown (or
// Suspended when state.sav exists); a process = what query-status says
// (running → Running, paused → Paused, guest-panicked → Crashed). QEMU is
// started with -daemonize, so guests outlive the agent; a guest powering
// itself off ends its process, which the driver notices at once through a
// pidfd (driver_watch.go). Cold migrations move the root overlay and the
// ephemeral disks between hosts (driver_migrate.go).
package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kumo-cloud/kumo/internal/qmp"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// Config configures the driver.
type Config struct {
	// StateDir holds one directory per instance (default /var/lib/kumo/qemu).
	// Keep it short: QMP socket paths must fit in 107 bytes.
	StateDir string
	// QEMU and QEMUImg are the binaries (default qemu-system-x86_64, qemu-img).
	QEMU, QEMUImg string
	// Accel is auto, kvm or tcg (default auto: KVM only if a probe VM
	// really runs under it).
	Accel string
	// ProbeKernel is booted under KVM by the auto probe (a stronger check
	// than firmware alone: some hosts run firmware under KVM and then fail
	// a real kernel with emulation errors). Default: the host's own kernel
	// from /boot when readable; "none" probes with firmware only.
	ProbeKernel string
	// Machine is the QEMU machine type (default q35); CPU the CPU model
	// (default host under KVM, qemu64 under TCG: a migration-safe model).
	Machine, CPU string
	// UserNetworking gives every NIC QEMU's user-mode network instead of
	// its tap. For tests and hosts without a network agent.
	UserNetworking bool
	// NoConsoles leaves out the interactive consoles (serial socket and
	// VNC); the serial log is kept either way.
	NoConsoles bool
	// SoftRebootTimeout bounds how long a soft reboot waits for the guest
	// to power off before resetting it (default 60s).
	SoftRebootTimeout time.Duration
	// ConsoleLogMax bounds the console log (default 1 MiB); older output is
	// rotated out.
	ConsoleLogMax int64
	Logger        *slog.Logger
}

// Driver is the QEMU hypervisor driver.
type Driver struct {
	cfg Config
	log *slog.Logger

	accelOnce sync.Once
	accel     string
	accelErr  error

	mu       sync.Mutex
	insts    map[string]*handle
	exitFn   func(uuid string) // WatchExits (driver_watch.go)
	watchCtx context.Context
}

// handle is the in-memory side of one instance: a lock and the QMP
// connection of the operation holding it. Everything else is read from disk, so a new Driver sees the
// same instances.
type handle struct {
	mu  sync.Mutex
	qmp *qmp.Client
	// expected is the pid of a process the driver is ending itself.
	expected atomic.Int64
}

// record is instance.json.
type record struct {
	Instance virt.Instance `json:"instance"`
	Rescue   *virt.Image   `json:"rescue,omitempty"`
	// Volumes are the attached volumes (driver_volumes.go).
	Volumes   []pluggedVolume `json:"volumes,omitempty"`
	StartedAt time.Time       `json:"started_at"`
}

// New returns a driver. It creates StateDir but starts nothing: running
// instances from an earlier agent are adopted as they are.
func New(cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/kumo/qemu"
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.QEMUImg == "" {
		cfg.QEMUImg = "qemu-img"
	}
	if cfg.Accel == "" {
		cfg.Accel = "auto"
	}
	switch cfg.ProbeKernel {
	case "":
		cfg.ProbeKernel = hostKernel()
	case "none":
		cfg.ProbeKernel = ""
	}
	if cfg.SoftRebootTimeout == 0 {
		cfg.SoftRebootTimeout = 60 * time.Second
	}
	if cfg.ConsoleLogMax == 0 {
		cfg.ConsoleLogMax = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.Accel {
	case "auto", "kvm", "tcg":
	default:
		return nil, fmt.Errorf("qemu: accel %q: want auto, kvm or tcg", cfg.Accel)
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("qemu: state dir: %w", err)
	}
	cfg.StateDir = abs
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("qemu: state dir: %w", err)
	}
	return &Driver{cfg: cfg, log: cfg.Logger.With("driver", "qemu"), insts: map[string]*handle{}}, nil
}

func (d *Driver) Name() string { return "qemu" }

func (d *Driver) dir(uuid string) string { return filepath.Join(d.cfg.StateDir, uuid) }

func (d *Driver) path(uuid, name string) string { return filepath.Join(d.cfg.StateDir, uuid, name) }

// lock takes the instance's lock and loads its record; ErrNotFound if the
// instance does not exist.
func (d *Driver) lock(uuid string) (*handle, *record, error) {
	if !validUUID(uuid) {
		return nil, nil, fmt.Errorf("%q: %w", uuid, virt.ErrNotFound)
	}
	h := d.handle(uuid)
	h.mu.Lock()
	rec, err := d.load(uuid)
	if err != nil {
		h.mu.Unlock()
		return nil, nil, err
	}
	return h, rec, nil
}

// lockState is lock followed by reading the instance's power state; on
// error nothing stays locked.
func (d *Driver) lockState(ctx context.Context, uuid string) (*handle, *record, virt.PowerState, error) {
	h, rec, err := d.lock(uuid)
	if err != nil {
		return nil, nil, virt.NoState, err
	}
	st, err := d.state(ctx, h, uuid)
	if err != nil {
		h.unlock()
		return nil, nil, virt.NoState, err
	}
	return h, rec, st, nil
}

func (d *Driver) handle(uuid string) *handle {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.insts[uuid]
	if !ok {
		h = &handle{}
		d.insts[uuid] = h
	}
	return h
}

// validUUID keeps instance ids from escaping the state directory.
func validUUID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (d *Driver) load(uuid string) (*record, error) {
	b, err := os.ReadFile(d.path(uuid, "instance.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("qemu: load %s: %w", uuid, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("qemu: load %s: %w", uuid, err)
	}
	return &rec, nil
}

func (d *Driver) save(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("qemu: save: %w", err)
	}
	p := d.path(rec.Instance.UUID, "instance.json")
	// It carries user data and the admin password: owner only.
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("qemu: save: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("qemu: save: %w", err)
	}
	return nil
}

// List names the instances in the state directory, running or not.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(d.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("qemu: list: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || !validUUID(e.Name()) {
			continue
		}
		if _, err := os.Stat(d.path(e.Name(), "instance.json")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Info reports the instance's state.
func (d *Driver) Info(ctx context.Context, uuid string) (virt.Info, error) {
	h, rec, err := d.lock(uuid)
	if err != nil {
		return virt.Info{}, err
	}
	defer h.unlock()
	st, err := d.state(ctx, h, uuid)
	if err != nil {
		return virt.Info{}, err
	}
	d.rotateConsole(uuid)
	info := virt.Info{State: st, Rescued: rec.Rescue != nil, VCPUs: rec.Instance.VCPUs, MemoryMB: rec.Instance.MemoryMB}
	if st == virt.Running || st == virt.Paused || st == virt.Crashed {
		info.StartedAt = rec.StartedAt
	}
	return info, nil
}

// state derives the power state from the process and QMP.
func (d *Driver) state(ctx context.Context, h *handle, uuid string) (virt.PowerState, error) {
	if _, ok := d.pid(uuid); !ok {
		if _, err := os.Stat(d.path(uuid, "state.sav")); err == nil {
			return virt.Suspended, nil
		}
		return virt.Shutdown, nil
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		// The process is going away (or wedged); a second look decides.
		if _, ok := d.pid(uuid); !ok {
			return virt.Shutdown, nil
		}
		return virt.NoState, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := c.QueryStatus(cctx)
	if err != nil {
		if _, ok := d.pid(uuid); !ok {
			return virt.Shutdown, nil
		}
		return virt.NoState, fmt.Errorf("qemu: %s: %w", uuid, err)
	}
	switch s.Status {
	case qmp.StatusRunning:
		return virt.Running, nil
	case qmp.StatusGuestPanicked, qmp.StatusInternalError:
		return virt.Crashed, nil
	case qmp.StatusShutdown:
		return virt.Shutdown, nil
	default: // paused, inmigrate, prelaunch, postmigrate, ...
		return virt.Paused, nil
	}
}

// qmp returns the instance's QMP connection, dialling if needed.
func (d *Driver) qmp(ctx context.Context, h *handle, uuid string) (*qmp.Client, error) {
	if h.qmp != nil {
		select {
		case <-h.qmp.Done():
			h.qmp = nil
		default:
			return h.qmp, nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := qmp.Dial(cctx, d.path(uuid, "qmp.sock"))
	if err != nil {
		return nil, fmt.Errorf("qemu: %s: %w", uuid, err)
	}
	h.qmp = c
	go d.watch(uuid, c)
	return c, nil
}

// watch logs the guest's events while the connection lasts.
func (d *Driver) watch(uuid string, c *qmp.Client) {
	evs, cancel := c.Subscribe(32)
	defer cancel()
	log := d.log.With("instance", uuid)
	for ev := range evs {
		log.Debug("qmp event", "event", ev.Name, "data", string(ev.Data))
	}
}

// unlock ends an operation. The QMP connection ends with it: QEMU serves
// one QMP client at a time, and another driver (a restarted agent) must be
// able to connect between operations.
func (h *handle) unlock() {
	h.closeQMP()
	h.mu.Unlock()
}

func (h *handle) closeQMP() {
	if h.qmp != nil {
		h.qmp.Close()
		h.qmp = nil
	}
}

var _ virt.Driver = (*Driver)(nil)
