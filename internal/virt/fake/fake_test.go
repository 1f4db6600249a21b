package fake_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
	"github.com/kumo-cloud/kumo/internal/virt/virttest"
)

func TestConformance(t *testing.T) {
	virttest.Run(t, virttest.Harness{
		NewDriver: func(t *testing.T) virt.Driver { return fake.New(fake.Config{}) },
		Instance: func(t *testing.T, uuid string) *virt.Instance {
			return &virt.Instance{UUID: uuid, Name: "instance-" + uuid[len(uuid)-4:], VCPUs: 1, MemoryMB: 128, RootGB: 1}
		},
	})
}

func TestFailureInjectionAndDelay(t *testing.T) {
	d := fake.New(fake.Config{})
	ctx := context.Background()
	boom := errors.New("boom")
	d.FailNext("spawn", boom)
	inst := &virt.Instance{UUID: "u1", VCPUs: 1, MemoryMB: 64}
	if err := d.Spawn(ctx, inst); !errors.Is(err, boom) {
		t.Fatalf("want injected failure, got %v", err)
	}
	if ids, _ := d.List(ctx); len(ids) != 0 {
		t.Fatalf("failed spawn left %v", ids)
	}
	if err := d.Spawn(ctx, inst); err != nil {
		t.Fatalf("second spawn: %v", err)
	}
	if err := d.Spawn(ctx, inst); !errors.Is(err, virt.ErrExists) {
		t.Fatalf("duplicate spawn: %v", err)
	}
	d.SetDelay("power_off", 50*time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := d.PowerOff(cctx, "u1", time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delay must honour ctx: %v", err)
	}
	d.Crash("u1")
	if info, _ := d.Info(ctx, "u1"); info.State != virt.Crashed {
		t.Fatalf("crash: %v", info.State)
	}
	if err := d.PowerOn(ctx, "u1"); err != nil {
		t.Fatalf("power on crashed: %v", err)
	}
}

// TestEphemeralDisks: the fake driver models each ephemeral disk of the
// instance as its own disk in diagnostics (vdb, vdc, ... before swap).
func TestEphemeralDisks(t *testing.T) {
	for name, tc := range map[string]struct {
		inst virt.Instance
		want string
	}{
		"none":             {virt.Instance{}, "vda"},
		"flavor ephemeral": {virt.Instance{EphemeralGB: 2, SwapMB: 64}, "vda,vdb,vdc"},
		"two mappings and swap": {virt.Instance{EphemeralGB: 3, SwapMB: 64,
			Ephemerals: []virt.Ephemeral{{SizeGB: 1}, {SizeGB: 2}}}, "vda,vdb,vdc,vdd"},
	} {
		t.Run(name, func(t *testing.T) {
			d := fake.New(fake.Config{})
			inst := tc.inst
			inst.UUID, inst.VCPUs, inst.MemoryMB = "11111111-2222-4333-8444-555555555555", 1, 64
			if err := d.Spawn(t.Context(), &inst); err != nil {
				t.Fatal(err)
			}
			dg, err := d.Diagnostics(t.Context(), inst.UUID)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, dk := range dg.Disks {
				got = append(got, dk.Name)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("disks %v, want %s", got, tc.want)
			}
		})
	}
}
