package fake_test

import (
	"context"
	"errors"
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
