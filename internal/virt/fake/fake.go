// Package fake is a virt.Driver that keeps instances in memory. It exists
// for scale tests (thousands of simulated hosts in one process) and for
// exercising the control plane's failure handling: every operation can be
// given a delay and made to fail. It is never a stand-in for the QEMU
// driver in tests of real behaviour.
package fake

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// Config sets the host size and per-operation behaviour.
type Config struct {
	Resources virt.Resources
	// Delays by operation name ("spawn", "destroy", "power_off", ...).
	Delays map[string]time.Duration
}

type instance struct {
	spec    virt.Instance
	state   virt.PowerState
	rescued bool
	started time.Time
	console strings.Builder
	// adminPass is the last password set; nmis counts injected NMIs.
	adminPass string
	nmis      int
	// ran is the running time before started (diagnostics.go);
	// snapshotBytes counts root disk bytes read by snapshots.
	ran           time.Duration
	snapshotBytes int64
}

// Driver is the fake hypervisor.
type Driver struct {
	cfg Config

	mu       sync.Mutex
	insts    map[string]*instance
	failures map[string][]error                // queued failures by operation
	vols     map[string]map[string]virt.Volume // plugged volumes by instance (volumes.go)
}

// New returns a fake driver; a zero Config gets a 16 VCPU, 64 GiB, 1 TiB host.
func New(cfg Config) *Driver {
	if cfg.Resources.VCPUs == 0 {
		cfg.Resources = virt.Resources{VCPUs: 16, MemoryMB: 65536, DiskGB: 1024,
			Traits: []string{"COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_VOLUME_ATTACH_WITH_TAG", "COMPUTE_VOLUME_EXTEND", "COMPUTE_RESCUE_BFV", "CUSTOM_KUMO_FAKE"}}
	}
	return &Driver{cfg: cfg, insts: map[string]*instance{}, failures: map[string][]error{}}
}

// FailNext makes the next call of op return err (queued; each call
// consumes one).
func (d *Driver) FailNext(op string, err error) {
	d.mu.Lock()
	d.failures[op] = append(d.failures[op], err)
	d.mu.Unlock()
}

// SetDelay changes the delay of op.
func (d *Driver) SetDelay(op string, delay time.Duration) {
	d.mu.Lock()
	if d.cfg.Delays == nil {
		d.cfg.Delays = map[string]time.Duration{}
	}
	d.cfg.Delays[op] = delay
	d.mu.Unlock()
}

// Crash marks an instance as crashed, as if the guest died outside Kumo.
func (d *Driver) Crash(uuid string) {
	d.mu.Lock()
	if in, ok := d.insts[uuid]; ok {
		in.state = virt.Crashed
	}
	d.mu.Unlock()
}

func (d *Driver) Name() string { return "fake" }

// begin applies the operation's delay and any queued failure.
func (d *Driver) begin(ctx context.Context, op string) error {
	d.mu.Lock()
	delay := d.cfg.Delays[op]
	var err error
	if q := d.failures[op]; len(q) > 0 {
		err, d.failures[op] = q[0], q[1:]
	}
	d.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// The context's own timer may not have fired yet on a busy host.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	if err != nil {
		return fmt.Errorf("fake %s: %w", op, err)
	}
	return ctx.Err()
}

func (d *Driver) Resources(ctx context.Context) (virt.Resources, error) {
	return d.cfg.Resources, nil
}

func (d *Driver) List(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.insts))
	for id := range d.insts {
		out = append(out, id)
	}
	return out, nil
}

func (d *Driver) Info(ctx context.Context, uuid string) (virt.Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return virt.Info{}, fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	return virt.Info{State: in.state, Rescued: in.rescued, VCPUs: in.spec.VCPUs, MemoryMB: in.spec.MemoryMB, StartedAt: in.started}, nil
}

func (d *Driver) Spawn(ctx context.Context, inst *virt.Instance) error {
	if inst == nil || inst.UUID == "" {
		return fmt.Errorf("fake spawn: instance without uuid")
	}
	if err := d.begin(ctx, "spawn"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.insts[inst.UUID]; ok {
		return fmt.Errorf("%s: %w", inst.UUID, virt.ErrExists)
	}
	// A volume's disk must exist, as a real hypervisor would need it.
	disks := inst.Volumes
	if inst.RootVolume != nil {
		disks = append([]virt.Volume{*inst.RootVolume}, disks...)
	}
	for _, v := range disks {
		if _, err := os.Stat(v.Path); err != nil {
			return fmt.Errorf("fake spawn: volume %s: %w", v.ID, err)
		}
	}
	in := &instance{spec: *inst, state: virt.Running, started: time.Now()}
	if inst.RootVolume != nil {
		fmt.Fprintf(&in.console, "fake: booting %s (%s) from volume %s\n", inst.Name, inst.UUID, inst.RootVolume.ID)
	}
	fmt.Fprintf(&in.console, "fake: booting %s (%s)\nkumo-guest: instance-id=%s ready\n", inst.Name, inst.UUID, inst.UUID)
	d.insts[inst.UUID] = in
	delete(d.vols, inst.UUID)
	for _, v := range inst.Volumes {
		d.plug(inst.UUID, v)
	}
	return nil
}

// Spec returns the instance as it was spawned (tests): its image, root
// volume and volumes plugged at spawn.
func (d *Driver) Spec(uuid string) (virt.Instance, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return virt.Instance{}, false
	}
	return in.spec, true
}

func (d *Driver) Destroy(ctx context.Context, uuid string) error {
	if err := d.begin(ctx, "destroy"); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.insts, uuid)
	d.mu.Unlock()
	return nil
}

// transition moves an instance from one of the allowed states to next.
func (d *Driver) transition(ctx context.Context, op, uuid string, next virt.PowerState, allowed ...virt.PowerState) error {
	if err := d.begin(ctx, op); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	for _, a := range allowed {
		if in.state == a {
			if next == virt.Running && in.state != virt.Running {
				in.started = time.Now()
			}
			if in.state == virt.Running && next != virt.Running {
				in.ran += time.Since(in.started)
			}
			in.state = next
			fmt.Fprintf(&in.console, "fake: %s -> %s\n", op, next)
			return nil
		}
	}
	return fmt.Errorf("%s %s while %s: %w", op, uuid, in.state, virt.ErrInvalidState)
}

func (d *Driver) PowerOff(ctx context.Context, uuid string, _ time.Duration) error {
	return d.transition(ctx, "power_off", uuid, virt.Shutdown, virt.Running, virt.Paused, virt.Crashed, virt.Shutdown)
}

func (d *Driver) PowerOn(ctx context.Context, uuid string) error {
	return d.transition(ctx, "power_on", uuid, virt.Running, virt.Shutdown, virt.Crashed, virt.Running)
}

func (d *Driver) Reboot(ctx context.Context, uuid string, hard bool) error {
	if hard {
		return d.transition(ctx, "reboot", uuid, virt.Running, virt.Running, virt.Shutdown, virt.Crashed, virt.Paused, virt.Suspended)
	}
	return d.transition(ctx, "reboot", uuid, virt.Running, virt.Running)
}

func (d *Driver) Pause(ctx context.Context, uuid string) error {
	return d.transition(ctx, "pause", uuid, virt.Paused, virt.Running)
}

func (d *Driver) Unpause(ctx context.Context, uuid string) error {
	return d.transition(ctx, "unpause", uuid, virt.Running, virt.Paused)
}

func (d *Driver) Suspend(ctx context.Context, uuid string) error {
	return d.transition(ctx, "suspend", uuid, virt.Suspended, virt.Running)
}

func (d *Driver) Resume(ctx context.Context, uuid string) error {
	return d.transition(ctx, "resume", uuid, virt.Running, virt.Suspended)
}

func (d *Driver) Rescue(ctx context.Context, uuid string, _ virt.Image) error {
	if err := d.begin(ctx, "rescue"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if in.rescued || (in.state != virt.Running && in.state != virt.Shutdown) {
		return fmt.Errorf("rescue %s while %s: %w", uuid, in.state, virt.ErrInvalidState)
	}
	in.rescued, in.state = true, virt.Running
	return nil
}

func (d *Driver) Unrescue(ctx context.Context, uuid string) error {
	if err := d.begin(ctx, "unrescue"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if !in.rescued {
		return fmt.Errorf("unrescue %s: not rescued: %w", uuid, virt.ErrInvalidState)
	}
	in.rescued, in.state = false, virt.Running
	return nil
}

func (d *Driver) Snapshot(ctx context.Context, uuid, format string, w io.Writer) error {
	if err := d.begin(ctx, "snapshot"); err != nil {
		return err
	}
	d.mu.Lock()
	in, ok := d.insts[uuid]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if format != "raw" && format != "qcow2" {
		return fmt.Errorf("snapshot format %q: %w", format, virt.ErrUnsupported)
	}
	// A small disk whose first bytes name its origin; as qcow2, an empty
	// image of 1 GiB with that name after its header.
	block := make([]byte, 4096)
	off := 0
	if format == "qcow2" {
		copy(block, "QFI\xfb")
		binary.BigEndian.PutUint32(block[4:], 2)      // version
		binary.BigEndian.PutUint32(block[20:], 16)    // cluster bits
		binary.BigEndian.PutUint64(block[24:], 1<<30) // virtual size
		off = 512
	}
	copy(block[off:], fmt.Sprintf("KUMO-FAKE-SNAPSHOT %s\n", uuid))
	n, err := w.Write(block)
	d.mu.Lock()
	in.snapshotBytes += int64(n)
	d.mu.Unlock()
	return err
}

func (d *Driver) ConsoleOutput(ctx context.Context, uuid string, maxBytes int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return nil, fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	s := in.console.String()
	if maxBytes > 0 && len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	return []byte(s), nil
}

// SetAdminPassword records the password (see AdminPassword); the guest
// must be running, as a guest agent must be to answer.
func (d *Driver) SetAdminPassword(ctx context.Context, uuid, password string) error {
	if err := d.begin(ctx, "set_password"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if in.state != virt.Running {
		return fmt.Errorf("set password of %s while %s: %w", uuid, in.state, virt.ErrInvalidState)
	}
	in.adminPass = password
	fmt.Fprintf(&in.console, "fake: admin password changed\n")
	return nil
}

// InjectNMI counts the NMI (see NMIs) of a running or paused guest.
func (d *Driver) InjectNMI(ctx context.Context, uuid string) error {
	if err := d.begin(ctx, "inject_nmi"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	if in.state != virt.Running && in.state != virt.Paused {
		return fmt.Errorf("inject NMI into %s while %s: %w", uuid, in.state, virt.ErrInvalidState)
	}
	in.nmis++
	fmt.Fprintf(&in.console, "fake: NMI received\n")
	return nil
}

// AdminPassword returns the password last set on an instance.
func (d *Driver) AdminPassword(uuid string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in, ok := d.insts[uuid]; ok {
		return in.adminPass
	}
	return ""
}

// NMIs returns how many NMIs an instance received.
func (d *Driver) NMIs(uuid string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in, ok := d.insts[uuid]; ok {
		return in.nmis
	}
	return 0
}

var _ virt.Driver = (*Driver)(nil)
