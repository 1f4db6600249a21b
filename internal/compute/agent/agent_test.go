package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

// Operations are idempotent, and failures map to typed bus errors.
func TestOpsIdempotentAndTyped(t *testing.T) {
	b, err := bus.Open(context.Background(), bus.Config{Name: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := fake.New(fake.Config{})
	a, err := New(b, d, nil, Config{Host: "h"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	op := func(name string) (rpc.OpReply, error) {
		req := rpc.OpRequest{Op: name, Instance: rpc.Instance{UUID: "00000000-0000-4000-8000-000000000001", VCPUs: 1, MemoryMB: 64}}
		return a.do(ctx, &req)
	}
	for _, name := range []string{rpc.OpSpawn, rpc.OpSpawn, rpc.OpPowerOff, rpc.OpPowerOff, rpc.OpPowerOn, rpc.OpPowerOn,
		rpc.OpPause, rpc.OpPause, rpc.OpUnpause, rpc.OpRescue, rpc.OpRescue, rpc.OpUnrescue, rpc.OpDestroy, rpc.OpDestroy} {
		if _, err := op(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := op(rpc.OpPowerOn); toBusError(err).Code != rpc.CodeNotFound {
		t.Fatalf("missing instance: %v", err)
	}
	d.FailNext("spawn", errors.New("boom"))
	_, err = op(rpc.OpSpawn)
	if toBusError(err).Code != rpc.CodeFailed {
		t.Fatalf("spawn failure: %v", err)
	}
	if ids, _ := d.List(ctx); len(ids) != 0 {
		t.Fatalf("failed spawn left %v", ids)
	}
	if _, err := op(rpc.OpSpawn); err != nil {
		t.Fatal(err)
	}
	if _, err := op(rpc.OpPause); err != nil {
		t.Fatal(err)
	}
	if _, err := op(rpc.OpSuspend); toBusError(err).Code != rpc.CodeConflict {
		t.Fatalf("wrong state: %v", err)
	}
	if info, _ := d.Info(ctx, "00000000-0000-4000-8000-000000000001"); info.State != virt.Paused {
		t.Fatalf("state %v", info.State)
	}
}
