package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

func TestUptimeLine(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 32, 11, 0, time.UTC)
	for _, c := range []struct {
		name, up, load, want string
		err                  bool
	}{
		{"minutes", "125.33 200.1", "0.20 0.12 0.14 1/100 42", " 08:32:11 up 2 min,  load average: 0.20, 0.12, 0.14", false},
		{"hours", "3725.0 1", "1.00 2.00 3.00 1/1 1", " 08:32:11 up  1:02,  load average: 1.00, 2.00, 3.00", false},
		{"one day", "86460 1", "0 0 0 1/1 1", " 08:32:11 up 1 day, 1 min,  load average: 0, 0, 0", false},
		{"days", "8103900.5 1", "0.5 0.5 0.5 1/1 1", " 08:32:11 up 93 days, 19:05,  load average: 0.5, 0.5, 0.5", false},
		{"garbage uptime", "x y", "0 0 0", "", true},
		{"short loadavg", "1 1", "0 0", "", true},
		{"empty", "", "", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := uptimeLine(now, c.up, c.load)
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

// The diagnostics op reports the driver's counters; host_uptime needs
// no instance; an agent speaking 1.5 rejects 1.6 requests cleanly.
func TestDiagnosticsAndUptimeOps(t *testing.T) {
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
	// Serve the agent's subject as Run does, without heartbeats.
	sub, err := b.Subscribe(rpc.SubjectAgent("h"), "", map[string]bus.Version{rpc.MsgOp: rpc.OpVersion}, a.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	call := func(req rpc.OpRequest) (rpc.OpReply, error) {
		var rep rpc.OpReply
		err := b.Request(ctx, rpc.SubjectAgent("h"), rpc.MsgOp, rpc.OpVersion, req, &rep)
		return rep, err
	}
	const id = "00000000-0000-4000-8000-000000000001"
	if _, err := call(rpc.OpRequest{Op: rpc.OpDiagnostics, Instance: rpc.Instance{UUID: id}}); !isCode(err, rpc.CodeNotFound) {
		t.Fatalf("diagnostics of a missing instance: %v", err)
	}
	spawn := rpc.OpRequest{Op: rpc.OpSpawn, Instance: rpc.Instance{UUID: id, VCPUs: 2, MemoryMB: 256, RootGB: 1, SwapMB: 64,
		VIFs: []rpc.VIF{{PortID: "p1", MAC: "fa:16:3e:00:00:01"}}}}
	if _, err := call(spawn); err != nil {
		t.Fatal(err)
	}
	out, err := call(rpc.OpRequest{Op: rpc.OpDiagnostics, Instance: rpc.Instance{UUID: id}})
	if err != nil {
		t.Fatal(err)
	}
	dg := out.Diagnostics
	if dg == nil || dg.State != "running" || dg.Driver != "fake" || len(dg.CPUs) != 2 || *dg.MemoryMaxMB != 256 || *dg.MemoryUsedMB != 256 ||
		len(dg.Disks) != 2 || dg.Disks[1].Name != "vdb" || len(dg.NICs) != 1 || dg.NICs[0].MAC != "fa:16:3e:00:00:01" || dg.NICs[0].Name != rpc.TapName("p1") ||
		dg.Uptime == nil || dg.NICs[0].RxRate != nil {
		t.Fatalf("diagnostics: %+v", dg)
	}
	d.FailNext("diagnostics", errors.New("boom"))
	if _, err := call(rpc.OpRequest{Op: rpc.OpDiagnostics, Instance: rpc.Instance{UUID: id}}); !isCode(err, rpc.CodeFailed) {
		t.Fatalf("failing driver: %v", err)
	}
	d.FailNext("diagnostics", virt.ErrUnsupported)
	if _, err := call(rpc.OpRequest{Op: rpc.OpDiagnostics, Instance: rpc.Instance{UUID: id}}); !isCode(err, rpc.CodeUnsupported) {
		t.Fatalf("unsupported: %v", err)
	}

	out, err = call(rpc.OpRequest{Op: rpc.OpHostUptime})
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if up := out.Uptime; !strings.Contains(up, " up ") {
		t.Fatalf("uptime %q", up)
	}

	// Over the bus: this agent answers 1.6; one that speaks 1.5 refuses.
	var rep rpc.OpReply
	if err := b.Request(ctx, rpc.SubjectAgent("h"), rpc.MsgOp, rpc.OpVersion, rpc.OpRequest{Op: rpc.OpHostUptime}, &rep); err != nil || rep.Uptime == "" {
		t.Fatalf("uptime over the bus: %v %+v", err, rep)
	}
	old, err := b.Subscribe(rpc.SubjectAgent("old"), "", map[string]bus.Version{rpc.MsgOp: bus.V(1, 5)}, func(context.Context, *bus.Message) (any, error) {
		return rpc.OpReply{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Unsubscribe()
	err = b.Request(ctx, rpc.SubjectAgent("old"), rpc.MsgOp, rpc.OpVersion, rpc.OpRequest{Op: rpc.OpHostUptime}, &rep)
	if !isCode(err, bus.CodeUnsupportedVersion) {
		t.Fatalf("1.6 request to a 1.5 agent: %v", err)
	}
}

func isCode(err error, code string) bool {
	var be *bus.Error
	return errors.As(err, &be) && be.Code == code
}
