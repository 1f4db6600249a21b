// Package virttest is the conformance harness every virt.Driver passes:
// the same lifecycle, state rules, idempotency and errors, whatever the
// hypervisor. A driver's own test calls Run with a factory.
package virttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// Harness tells Run how to get a driver and a bootable instance.
type Harness struct {
	// NewDriver returns a driver on a clean host.
	NewDriver func(t *testing.T) virt.Driver
	// Instance returns a bootable instance with the given uuid.
	Instance func(t *testing.T, uuid string) *virt.Instance
	// Rescue returns the image to rescue with.
	Rescue func(t *testing.T) virt.Image
	// Timeout bounds each step (a real guest needs seconds); default 30s.
	Timeout time.Duration
	// Serial runs the subtests one after another (real VMs on small hosts).
	Serial bool
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 30 * time.Second
	}
	n := 0
	uuid := func() string {
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, d virt.Driver, id string)
	}{
		{"SpawnInfoListDestroy", spawnInfoListDestroy},
		{"PowerCycle", powerCycle},
		{"PauseSuspend", pauseSuspend},
		{"Reboot", reboot},
		{"Rescue", func(t *testing.T, ctx context.Context, d virt.Driver, id string) { rescue(t, ctx, d, id, h) }},
		{"InvalidStates", invalidStates},
		{"UnknownInstance", unknownInstance},
		{"SnapshotAndConsole", snapshotAndConsole},
		{"GuestOps", guestOps},
		{"Resources", resources},
	}
	for _, tc := range tests {
		id := uuid()
		t.Run(tc.name, func(t *testing.T) {
			if !h.Serial {
				t.Parallel()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*h.Timeout)
			defer cancel()
			d := h.NewDriver(t)
			if tc.name != "UnknownInstance" && tc.name != "Resources" {
				must(t, d.Spawn(ctx, h.Instance(t, id)), "spawn")
				t.Cleanup(func() { _ = d.Destroy(context.Background(), id) })
			}
			tc.fn(t, ctx, d, id)
		})
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantState(t *testing.T, ctx context.Context, d virt.Driver, id string, want virt.PowerState) virt.Info {
	t.Helper()
	info, err := d.Info(ctx, id)
	must(t, err, "info")
	if info.State != want {
		t.Fatalf("state %s, want %s", info.State, want)
	}
	return info
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
}

func spawnInfoListDestroy(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	info := wantState(t, ctx, d, id, virt.Running)
	if info.VCPUs <= 0 || info.MemoryMB <= 0 {
		t.Fatalf("info without size: %+v", info)
	}
	ids, err := d.List(ctx)
	must(t, err, "list")
	if !slices.Contains(ids, id) {
		t.Fatalf("list %v misses %s", ids, id)
	}
	must(t, d.Destroy(ctx, id), "destroy")
	_, err = d.Info(ctx, id)
	wantErr(t, err, virt.ErrNotFound, "info after destroy")
	must(t, d.Destroy(ctx, id), "destroy is idempotent")
	ids, _ = d.List(ctx)
	if slices.Contains(ids, id) {
		t.Fatalf("list after destroy still has %s", id)
	}
}

func powerCycle(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	must(t, d.PowerOff(ctx, id, 5*time.Second), "power off")
	wantState(t, ctx, d, id, virt.Shutdown)
	must(t, d.PowerOff(ctx, id, 5*time.Second), "power off is idempotent")
	must(t, d.PowerOn(ctx, id), "power on")
	wantState(t, ctx, d, id, virt.Running)
}

func pauseSuspend(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	must(t, d.Pause(ctx, id), "pause")
	wantState(t, ctx, d, id, virt.Paused)
	must(t, d.Unpause(ctx, id), "unpause")
	wantState(t, ctx, d, id, virt.Running)
	must(t, d.Suspend(ctx, id), "suspend")
	wantState(t, ctx, d, id, virt.Suspended)
	must(t, d.Resume(ctx, id), "resume")
	wantState(t, ctx, d, id, virt.Running)
}

func reboot(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	must(t, d.Reboot(ctx, id, false), "soft reboot")
	wantState(t, ctx, d, id, virt.Running)
	must(t, d.Reboot(ctx, id, true), "hard reboot")
	wantState(t, ctx, d, id, virt.Running)
	must(t, d.PowerOff(ctx, id, 5*time.Second), "power off")
	must(t, d.Reboot(ctx, id, true), "hard reboot of a stopped instance starts it")
	wantState(t, ctx, d, id, virt.Running)
}

func rescue(t *testing.T, ctx context.Context, d virt.Driver, id string, h Harness) {
	var img virt.Image
	if h.Rescue != nil {
		img = h.Rescue(t)
	}
	must(t, d.Rescue(ctx, id, img), "rescue")
	if info := wantState(t, ctx, d, id, virt.Running); !info.Rescued {
		t.Fatal("not rescued")
	}
	wantErr(t, d.Rescue(ctx, id, img), virt.ErrInvalidState, "rescue twice")
	must(t, d.Unrescue(ctx, id), "unrescue")
	if info := wantState(t, ctx, d, id, virt.Running); info.Rescued {
		t.Fatal("still rescued")
	}
	wantErr(t, d.Unrescue(ctx, id), virt.ErrInvalidState, "unrescue twice")
}

func invalidStates(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	wantErr(t, d.Unpause(ctx, id), virt.ErrInvalidState, "unpause running")
	wantErr(t, d.Resume(ctx, id), virt.ErrInvalidState, "resume running")
	must(t, d.PowerOff(ctx, id, 5*time.Second), "power off")
	wantErr(t, d.Pause(ctx, id), virt.ErrInvalidState, "pause stopped")
	wantErr(t, d.Suspend(ctx, id), virt.ErrInvalidState, "suspend stopped")
	wantErr(t, d.Reboot(ctx, id, false), virt.ErrInvalidState, "soft reboot stopped")
	wantState(t, ctx, d, id, virt.Shutdown)
}

func unknownInstance(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	for name, op := range map[string]func() error{
		"power off": func() error { return d.PowerOff(ctx, id, time.Second) },
		"power on":  func() error { return d.PowerOn(ctx, id) },
		"reboot":    func() error { return d.Reboot(ctx, id, true) },
		"pause":     func() error { return d.Pause(ctx, id) },
		"suspend":   func() error { return d.Suspend(ctx, id) },
		"snapshot":  func() error { return d.Snapshot(ctx, id, "raw", &bytes.Buffer{}) },
		"console": func() error {
			_, err := d.ConsoleOutput(ctx, id, 100)
			return err
		},
	} {
		wantErr(t, op(), virt.ErrNotFound, name)
	}
	must(t, d.Destroy(ctx, id), "destroy unknown")
}

func snapshotAndConsole(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	var buf bytes.Buffer
	must(t, d.Snapshot(ctx, id, "raw", &buf), "snapshot")
	if buf.Len() == 0 {
		t.Fatal("empty snapshot")
	}
	out, err := d.ConsoleOutput(ctx, id, 64)
	must(t, err, "console")
	if len(out) > 64 {
		t.Fatalf("console output %d bytes over the limit", len(out))
	}
}

func resources(t *testing.T, ctx context.Context, d virt.Driver, _ string) {
	r, err := d.Resources(ctx)
	must(t, err, "resources")
	if r.VCPUs <= 0 || r.MemoryMB <= 0 || r.DiskGB <= 0 {
		t.Fatalf("resources: %+v", r)
	}
}
