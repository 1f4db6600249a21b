package compute_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/virt"
)

func TestSoftDeleteRestoreForceDelete(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newServerEnv(t, d, 1, func(c *compute.Config) { c.ReclaimInterval = time.Hour })
		id := e.boot("alice", "")
		e.waitStatus(id, "ACTIVE")

		// DELETE soft-deletes: the guest is powered off, the server stays.
		e.do("alice", "DELETE", v21+"/servers/"+id, "2.96", "").Expect(t, 204, "")
		s := e.waitStatus(id, "SOFT_DELETED")
		if s["OS-EXT-STS:vm_state"] != "soft-delete" || s["OS-EXT-STS:power_state"] != float64(virt.Shutdown) {
			t.Fatalf("soft-deleted view %v", s)
		}
		if info, err := e.driver(0).Info(t.Context(), id); err != nil || info.State != virt.Shutdown {
			t.Fatalf("guest %v %v", info, err)
		}
		l := list(t, e.do("alice", "GET", v21+"/servers?status=SOFT_DELETED", "2.96", "").Expect(t, 200, "").Body, "servers")
		if len(l) != 1 {
			t.Fatalf("status filter: %v", l)
		}
		// It does not count towards the quota while soft-deleted.
		lim := obj(t, e.do("alice", "GET", v21+"/limits", "2.96", "").Expect(t, 200, "").Body, "limits")
		if used := lim["absolute"].(map[string]any)["totalInstancesUsed"]; used != float64(0) {
			t.Fatalf("totalInstancesUsed = %v", used)
		}
		// Only restore and forceDelete act on it.
		e.action("alice", id, `{"os-start": null}`, 409)
		e.action("rob", id, `{"restore": null}`, 403)
		e.action("bob", id, `{"restore": null}`, 404)
		e.action("alice", id, `{"restore": null}`, 202)
		s = e.waitStatus(id, "ACTIVE")
		if s["OS-EXT-STS:power_state"] != float64(virt.Running) {
			t.Fatalf("restored view %v", s)
		}
		e.action("alice", id, `{"restore": null}`, 409)
		if got := actionNames(t, e, id); !strings.HasPrefix(got, "restore,delete,create") {
			t.Fatalf("instance actions %s", got)
		}

		// Restore needs quota room again.
		e.do("alice", "DELETE", v21+"/servers/"+id, "2.96", "").Expect(t, 204, "")
		e.waitStatus(id, "SOFT_DELETED")
		e.do("admin", "PUT", v21+"/os-quota-sets/p1", "2.96", `{"quota_set": {"instances": 1}}`).Expect(t, 200, "")
		other := e.boot("alice", "")
		e.waitStatus(other, "ACTIVE")
		e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", `{"restore": null}`).Expect(t, 403, "forbidden")
		if s := e.server(id); s["status"] != "SOFT_DELETED" || s["OS-EXT-STS:task_state"] != nil {
			t.Fatalf("after refused restore %v", s)
		}

		// forceDelete deletes at once, soft-deleted or not; a lock stops it.
		e.action("alice", id, `{"forceDelete": null}`, 202)
		e.waitGone(id)
		e.action("alice", other, `{"lock": null}`, 202)
		e.do("alice", "POST", v21+"/servers/"+other+"/action", "2.96", `{"forceDelete": null}`).Expect(t, 409, "conflictingRequest")
		e.action("alice", other, `{"unlock": null}`, 202)
		e.action("alice", other, `{"forceDelete": null}`, 202)
		e.waitGone(other)
	})
}

func TestSoftDeleteReclaim(t *testing.T) {
	e := newServerEnv(t, nil, 1, func(c *compute.Config) { c.ReclaimInterval = 300 * time.Millisecond })
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	// A server that never launched (its spawn failed) is deleted at once.
	e.driver(0).FailNext("spawn", errors.New("no luck"))
	failed := e.boot("alice", "")
	e.waitStatus(failed, "ERROR")
	e.do("alice", "DELETE", v21+"/servers/"+failed, "2.96", "").Expect(t, 204, "")
	e.waitGone(failed)

	e.do("alice", "DELETE", v21+"/servers/"+id, "2.96", "").Expect(t, 204, "")
	e.waitStatus(id, "SOFT_DELETED")
	// The conductor's reclaim deletes it for good after the interval.
	e.waitGone(id)
	if _, err := e.driver(0).Info(t.Context(), id); err == nil {
		t.Fatal("guest left on the host after reclaim")
	}
}
