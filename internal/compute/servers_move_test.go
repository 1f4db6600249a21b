package compute_test

import (
	"context"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// TestColdMoveKeepsSourceUntilConfirmed: a migration to another host
// leaves the guest on its source, powered off, while the server awaits
// confirmation (heartbeats do not take it for a stale guest); a revert
// starts that same guest again, and a confirm or a delete removes it.
func TestColdMoveKeepsSourceUntilConfirmed(t *testing.T) {
	e := newServerEnv(t, nil, 2, nil)
	ctx := context.Background()
	id := e.boot("alice", "")
	v := e.waitStatus(id, "ACTIVE")
	src := v["OS-EXT-SRV-ATTR:host"].(string)
	agents := e.svc.Agents()
	drv := map[string]virt.Driver{}
	for _, a := range agents {
		drv[a.Host()] = a.Driver()
	}
	power := func(host string) virt.PowerState {
		info, err := drv[host].Info(ctx, id)
		if err != nil {
			return virt.NoState
		}
		return info.State
	}

	e.action("admin", id, `{"migrate": null}`, 202)
	v = e.waitStatus(id, "VERIFY_RESIZE")
	dst := v["OS-EXT-SRV-ATTR:host"].(string)
	if dst == src {
		t.Fatalf("migrated onto its own host %s", src)
	}
	time.Sleep(500 * time.Millisecond) // several heartbeats of both hosts
	if p := power(src); p != virt.Shutdown {
		t.Fatalf("source guest %v during VERIFY_RESIZE, want shutdown and kept", p)
	}
	if p := power(dst); p != virt.Running {
		t.Fatalf("destination guest %v", p)
	}

	e.action("admin", id, `{"revertResize": null}`, 202)
	v = e.waitStatus(id, "ACTIVE")
	if v["OS-EXT-SRV-ATTR:host"] != src {
		t.Fatalf("reverted to %v, want %s", v["OS-EXT-SRV-ATTR:host"], src)
	}
	if p := power(dst); p != virt.NoState {
		t.Fatalf("destination still has the guest after the revert: %v", p)
	}
	if p := power(src); p != virt.Running {
		t.Fatalf("source guest %v after the revert", p)
	}

	e.action("admin", id, `{"migrate": null}`, 202)
	e.waitStatus(id, "VERIFY_RESIZE")
	e.action("admin", id, `{"confirmResize": null}`, 204)
	e.waitStatus(id, "ACTIVE")
	if p := power(src); p != virt.NoState {
		t.Fatalf("source still has the guest after the confirm: %v", p)
	}

	// A server deleted while awaiting confirmation leaves no guest on either host.
	e.action("admin", id, `{"migrate": null}`, 202)
	v = e.waitStatus(id, "VERIFY_RESIZE")
	from, to := dst, v["OS-EXT-SRV-ATTR:host"].(string)
	e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
	e.waitGone(id)
	if p, q := power(from), power(to); p != virt.NoState || q != virt.NoState {
		t.Fatalf("after delete: source %v, destination %v", p, q)
	}
}
