package compute_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

// TestLiveMigrationSteps drives os-migrateLive through the conductor's
// live-migration state machine on two fake hosts: the guest is prepared
// on the destination and moved (not booted again there), a paused server
// stays paused, a failure at any step leaves the guest running on its
// source with the destination cleaned up and the migration record in
// "error", and hosts that cannot (a driver without it, the bus capped
// below compute.instance.op 1.7) get the old recreate-from-image path.
func TestLiveMigrationSteps(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup runs before the migration, with the drivers of the
		// source and the destination.
		setup     func(e *env, src, dst *fake.Driver)
		pause     bool
		wantMoved bool
		// wantRecreated: the destination booted the guest afresh.
		wantRecreated bool
		wantMigration string
		wantSrcState  virt.PowerState
	}{
		{name: "moves live", wantMoved: true, wantMigration: "completed"},
		{name: "paused stays paused", pause: true, wantMoved: true, wantMigration: "completed"},
		{name: "destination cannot prepare", wantMigration: "error", wantSrcState: virt.Running,
			setup: func(e *env, src, dst *fake.Driver) { dst.FailNext("live_prepare", errors.New("no NBD for you")) }},
		{name: "copy fails: source runs on", wantMigration: "error", wantSrcState: virt.Running,
			setup: func(e *env, src, dst *fake.Driver) { src.FailNext("live_migrate", errors.New("connection reset")) }},
		{name: "destination cannot resume: source runs again", wantMigration: "error", wantSrcState: virt.Running,
			setup: func(e *env, src, dst *fake.Driver) { dst.FailNext("live_finish", errors.New("cont failed")) }},
		{name: "driver cannot: recreated", wantMoved: true, wantRecreated: true, wantMigration: "completed",
			setup: func(e *env, src, dst *fake.Driver) {
				src.FailNext("live_disks", fmt.Errorf("nope: %w", virt.ErrUnsupported))
			}},
		{name: "bus capped at 1.6: recreated", wantMoved: true, wantRecreated: true, wantMigration: "completed",
			setup: func(e *env, src, dst *fake.Driver) { e.bus.SetVersionCap(rpc.MsgOp, bus.V(1, 6)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newServerEnv(t, nil, 2, nil)
			id := e.boot("alice", "")
			want := "ACTIVE"
			srcHost := e.waitStatus(id, want)["OS-EXT-SRV-ATTR:host"].(string)
			if tc.pause {
				e.action("alice", id, `{"pause": null}`, 202)
				want = "PAUSED"
				e.waitStatus(id, want)
			}
			var src, dst *fake.Driver
			for i, a := range e.svc.Agents() {
				if a.Host() == srcHost {
					src = e.driver(i)
				} else {
					dst = e.driver(i)
				}
			}
			if tc.setup != nil {
				tc.setup(e, src, dst)
			}
			e.action("admin", id, `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`, 202)
			s := e.waitStatus(id, want)
			host := s["OS-EXT-SRV-ATTR:host"].(string)
			if moved := host != srcHost; moved != tc.wantMoved {
				t.Fatalf("on %s after the migration (source %s), want moved %v", host, srcHost, tc.wantMoved)
			}
			ctx := context.Background()
			on, gone := dst, src
			if !tc.wantMoved {
				on, gone = src, dst
			}
			if ids, _ := gone.List(ctx); len(ids) != 0 {
				t.Errorf("guest left on the host it is not on: %v", ids)
			}
			info, err := on.Info(ctx, id)
			wantState := virt.Running
			if tc.pause {
				wantState = virt.Paused
			}
			if tc.wantSrcState != 0 {
				wantState = tc.wantSrcState
			}
			if err != nil || info.State != wantState {
				t.Errorf("guest %+v %v, want %s", info, err, wantState)
			}
			out, _ := on.ConsoleOutput(ctx, id, 4096)
			if tc.wantMoved && strings.Contains(string(out), "booting") != tc.wantRecreated {
				t.Errorf("destination console (recreated %v):\n%s", tc.wantRecreated, out)
			}
			var status string
			for _, m := range list(t, e.do("admin", "GET", v21+"/os-migrations?instance_uuid="+id, "2.80", "").Expect(t, 200, "").Body, "migrations") {
				status = m.(map[string]any)["status"].(string)
			}
			if status != tc.wantMigration {
				t.Errorf("migration status %q, want %q", status, tc.wantMigration)
			}
		})
	}
}

// TestLiveMigrationAbortAndForceComplete: DELETE …/migrations/{id} (2.24)
// aborts a copying live migration (the guest stays on its source, the
// record ends "cancelled"); force_complete (2.22) ends the copy at once
// and the migration completes; both are refused in other states.
func TestLiveMigrationAbortAndForceComplete(t *testing.T) {
	for _, tc := range []struct {
		name       string
		do         func(e *env, path string)
		wantMoved  bool
		wantStatus string
	}{
		{name: "abort", wantStatus: "cancelled", do: func(e *env, path string) {
			e.do("admin", "DELETE", path, "2.23", "").Expect(e.t, 404, "itemNotFound")
			e.do("alice", "DELETE", path, "2.24", "").Expect(e.t, 403, "forbidden")
			e.do("admin", "DELETE", path+"0", "2.24", "").Expect(e.t, 404, "itemNotFound")
			e.do("admin", "DELETE", path, "2.24", "").Expect(e.t, 202, "")
		}},
		{name: "force complete", wantMoved: true, wantStatus: "completed", do: func(e *env, path string) {
			e.do("admin", "POST", path+"/action", "2.21", `{"force_complete": null}`).Expect(e.t, 404, "itemNotFound")
			e.do("admin", "POST", path+"/action", "2.22", `{"force_complete": {}}`).Expect(e.t, 400, "badRequest")
			e.do("admin", "POST", path+"0/action", "2.22", `{"force_complete": null}`).Expect(e.t, 400, "badRequest")
			e.do("admin", "POST", path+"/action", "2.22", `{"force_complete": null}`).Expect(e.t, 202, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newServerEnv(t, nil, 2, nil)
			id := e.boot("alice", "")
			srcHost := e.waitStatus(id, "ACTIVE")["OS-EXT-SRV-ATTR:host"].(string)
			// Not migrating: 409.
			e.do("admin", "DELETE", v21+"/servers/"+id+"/migrations/1", "2.24", "").Expect(t, 409, "conflictingRequest")
			for i, a := range e.svc.Agents() {
				if a.Host() == srcHost {
					e.driver(i).SetDelay("live_migrate", time.Minute)
				}
			}
			e.action("admin", id, `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`, 202)
			var mid string
			e.eventuallyf(func() bool {
				for _, m := range list(t, e.do("admin", "GET", v21+"/servers/"+id+"/migrations", "2.24", "").Expect(t, 200, "").Body, "migrations") {
					if mm := m.(map[string]any); mm["status"] == "running" {
						mid = fmt.Sprint(mm["id"])
					}
				}
				return mid != ""
			}, func() string { return "a running live migration" })
			tc.do(e, v21+"/servers/"+id+"/migrations/"+mid)
			host := e.waitStatus(id, "ACTIVE")["OS-EXT-SRV-ATTR:host"].(string)
			if moved := host != srcHost; moved != tc.wantMoved {
				t.Fatalf("on %s (source %s), want moved %v", host, srcHost, tc.wantMoved)
			}
			var status string
			for _, m := range list(t, e.do("admin", "GET", v21+"/os-migrations?instance_uuid="+id, "2.80", "").Expect(t, 200, "").Body, "migrations") {
				status = m.(map[string]any)["status"].(string)
			}
			if status != tc.wantStatus {
				t.Errorf("migration status %q, want %q", status, tc.wantStatus)
			}
			// Over: nothing left to act on.
			e.do("admin", "DELETE", v21+"/servers/"+id+"/migrations/"+mid, "2.24", "").Expect(t, 409, "conflictingRequest")
		})
	}
}
