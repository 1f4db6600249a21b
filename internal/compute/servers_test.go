package compute_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func TestServerLifecycle(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newServerEnv(t, d, 1, nil)
		r := e.do("alice", "POST", v21+"/servers", "2.96", `{"server": {"name": "web 1", "imageRef": "`+imageID+`", "flavorRef": "42",
			"networks": "auto", "metadata": {"a": "b"}, "description": "d", "tags": ["x", "y"]}}`).Expect(t, 202, "")
		s := obj(t, r.Body, "server")
		id := s["id"].(string)
		if s["adminPass"] == "" || r.Header.Get("Location") == "" || s["OS-DCF:diskConfig"] != "MANUAL" {
			t.Fatalf("create response %s", r.Raw)
		}
		v := e.waitStatus(id, "ACTIVE")
		host := v["OS-EXT-SRV-ATTR:host"].(string)
		sum := sha256.Sum224([]byte("p1" + host))
		if v["hostId"] != hex.EncodeToString(sum[:]) || v["OS-EXT-STS:vm_state"] != "active" || v["OS-EXT-STS:power_state"] != float64(1) ||
			v["description"] != "d" || v["OS-EXT-AZ:availability_zone"] != "nova" || v["OS-SRV-USG:launched_at"] == nil ||
			v["OS-EXT-SRV-ATTR:hostname"] != "web-1" || len(v["tags"].([]any)) != 2 || v["metadata"].(map[string]any)["a"] != "b" {
			t.Fatalf("view %v", v)
		}
		if f := v["flavor"].(map[string]any); f["original_name"] != "m1.nano" || f["ram"] != float64(128) {
			t.Fatalf("flavor %v", f)
		}
		// Member view hides the admin attributes; old versions link the flavor.
		mv := obj(t, e.do("alice", "GET", v21+"/servers/"+id, "2.1", "").Expect(t, 200, "").Body, "server")
		if _, ok := mv["OS-EXT-SRV-ATTR:host"]; ok {
			t.Fatalf("member sees host: %v", mv)
		}
		if _, ok := mv["flavor"].(map[string]any)["links"]; !ok {
			t.Fatalf("2.1 flavor %v", mv["flavor"])
		}
		// Lists.
		l := list(t, e.do("alice", "GET", v21+"/servers", "", "").Expect(t, 200, "").Body, "servers")
		if len(l) != 1 || len(l[0].(map[string]any)) != 3 {
			t.Fatalf("list %v", l)
		}
		if l := list(t, e.do("bob", "GET", v21+"/servers/detail", "", "").Expect(t, 200, "").Body, "servers"); len(l) != 0 {
			t.Fatalf("other project sees %v", l)
		}
		// State machine through the conductor and the agent.
		for _, step := range []struct{ body, status string }{
			{`{"os-stop": null}`, "SHUTOFF"},
			{`{"os-start": null}`, "ACTIVE"},
			{`{"reboot": {"type": "SOFT"}}`, "ACTIVE"},
			{`{"reboot": {"type": "HARD"}}`, "ACTIVE"},
			{`{"pause": null}`, "PAUSED"},
			{`{"unpause": null}`, "ACTIVE"},
			{`{"suspend": null}`, "SUSPENDED"},
			{`{"resume": null}`, "ACTIVE"},
			{`{"rescue": null}`, "RESCUE"},
			{`{"unrescue": null}`, "ACTIVE"},
		} {
			e.action("alice", id, step.body, map[bool]int{true: 200, false: 202}[strings.Contains(step.body, `"rescue"`)])
			e.waitStatus(id, step.status)
		}
		if got := actionNames(t, e, id); got != "unrescue,rescue,resume,suspend,unpause,pause,reboot,reboot,start,stop,create" {
			t.Fatalf("actions %s", got)
		}
		// Action detail with its event.
		r = e.do("alice", "GET", v21+"/servers/"+id+"/os-instance-actions", "2.96", "").Expect(t, 200, "")
		req := list(t, r.Body, "instanceActions")[10].(map[string]any)["request_id"].(string)
		ev := obj(t, e.do("alice", "GET", v21+"/servers/"+id+"/os-instance-actions/"+req, "2.96", "").Expect(t, 200, "").Body, "instanceAction")
		evs := ev["events"].([]any)
		if len(evs) != 1 || evs[0].(map[string]any)["result"] != "Success" || evs[0].(map[string]any)["event"] != "compute__do_build_and_run_instance" {
			t.Fatalf("events %v", ev)
		}
		// Console output.
		out := e.action("alice", id, `{"os-getConsoleOutput": {"length": 1}}`, 200).Body["output"].(string)
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("console %q", out)
		}
		// Update.
		u := obj(t, e.do("alice", "PUT", v21+"/servers/"+id, "2.96", `{"server": {"name": "renamed", "description": null}}`).Expect(t, 200, "").Body, "server")
		if u["name"] != "renamed" || u["description"] != nil {
			t.Fatalf("update %v", u)
		}
		// Lock: the owner's actions are refused, an admin's are not.
		e.action("alice", id, `{"lock": {"locked_reason": "maint"}}`, 202)
		if v := e.server(id); v["locked"] != true || v["locked_reason"] != "maint" {
			t.Fatalf("lock %v", v)
		}
		e.action("alice", id, `{"os-stop": null}`, 409)
		e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 409, "conflictingRequest")
		e.action("alice", id, `{"unlock": null}`, 202)
		// Wrong state.
		r = e.action("alice", id, `{"os-start": null}`, 409)
		if msg := r.Body["conflictingRequest"].(map[string]any)["message"]; msg != "Cannot 'start' instance "+id+" while it is in vm_state active" {
			t.Fatalf("conflict %v", msg)
		}
		// Delete; the fake host no longer has it.
		e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
		e.waitGone(id)
		if ids, _ := e.driver(0).List(t.Context()); len(ids) != 0 {
			t.Fatalf("left on host: %v", ids)
		}
		// Deleted servers are listed with changes-since and to admins with deleted.
		r = e.do("admin", "GET", v21+"/servers/detail?all_tenants=1&deleted=true", "2.96", "").Expect(t, 200, "")
		if l := list(t, r.Body, "servers"); len(l) != 1 || l[0].(map[string]any)["status"] != "DELETED" {
			t.Fatalf("deleted list %v", l)
		}
	})
}

func TestServerCreateErrors(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		token, version, body string
		status               int
		fault                string
	}{
		{"alice", "2.96", `{"server": `, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "nope", "networks": "none"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + queuedImg + `", "flavorRef": "42", "networks": "none"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "99999999-2222-4333-8444-555555555555", "flavorRef": "42", "networks": "none"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "not-a-uuid", "flavorRef": "42", "networks": "none"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "` + long + `", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none", "bogus": 1}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none", "key_name": "nokey"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none", "availability_zone": "mars"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": [{"uuid": "` + imageID + `"}]}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none", "user_data": "%%%"}}`, 400, "badRequest"},
		{"alice", "2.18", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "description": "x"}}`, 400, "badRequest"},
		{"alice", "2.96", `{"server": {"name": "a", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none", "min_count": 3, "max_count": 2}}`, 400, "badRequest"},
		{"rob", "2.96", bootBody, 403, "forbidden"},
	} {
		e.do(tc.token, "POST", v21+"/servers", tc.version, tc.body).Expect(t, tc.status, tc.fault)
	}
	// Nothing half-created.
	if l := list(t, e.do("admin", "GET", v21+"/servers?all_tenants=1", "", "").Body, "servers"); len(l) != 0 {
		t.Fatalf("created %v", l)
	}
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	for _, tc := range []struct {
		token, method, path, body string
		status                    int
		fault                     string
	}{
		{"alice", "GET", "/servers/00000000-0000-4000-8000-000000000000", "", 404, "itemNotFound"},
		{"alice", "GET", "/servers/not-a-uuid", "", 404, "itemNotFound"},
		{"bob", "GET", "/servers/" + id, "", 404, "itemNotFound"},
		{"bob", "DELETE", "/servers/" + id, "", 404, "itemNotFound"},
		{"bob", "POST", "/servers/" + id + "/action", `{"os-stop": null}`, 404, "itemNotFound"},
		{"rob", "POST", "/servers/" + id + "/action", `{"os-stop": null}`, 403, "forbidden"},
		{"rob", "DELETE", "/servers/" + id, "", 403, "forbidden"},
		{"alice", "POST", "/servers/" + id + "/action", `{"fly": null}`, 400, "badRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"reboot": {"type": "GENTLE"}}`, 400, "badRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `not json`, 400, "badRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"os-resetState": {"state": "error"}}`, 403, "forbidden"},
		{"alice", "POST", "/servers/" + id + "/action", `{"migrate": null}`, 403, "forbidden"},
		{"alice", "POST", "/servers/" + id + "/action", `{"resize": {"flavorRef": "42"}}`, 400, "badRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"resize": {"flavorRef": "nope"}}`, 400, "badRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"confirmResize": null}`, 409, "conflictingRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"unpause": null}`, 409, "conflictingRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"restore": null}`, 409, "conflictingRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"changePassword": {}}`, 400, "badRequest"},
		{"alice", "POST", "/servers/" + id + "/action", `{"createImage": {"name": "snap"}}`, 501, "notImplemented"},
		{"alice", "PUT", "/servers/" + id, `{"server": {"name": ""}}`, 400, "badRequest"},
		{"alice", "PUT", "/servers/" + id, `{"server": {"bogus": "x"}}`, 400, "badRequest"},
		{"alice", "GET", "/servers?status=WHATEVER", "", 400, "badRequest"},
		{"alice", "GET", "/servers?sort_key=bogus", "", 400, "badRequest"},
		{"alice", "GET", "/servers?marker=00000000-0000-4000-8000-000000000000", "", 400, "badRequest"},
		{"alice", "GET", "/servers?changes-since=yesterday", "", 400, "badRequest"},
		{"alice", "GET", "/os-services", "", 403, "forbidden"},
		{"alice", "GET", "/os-hypervisors", "", 403, "forbidden"},
		{"alice", "GET", "/servers/" + id + "/metadata/nokey", "", 404, "itemNotFound"},
		{"alice", "GET", "/servers/" + id + "/tags/nokey", "", 404, "itemNotFound"},
		{"alice", "GET", "/servers/" + id + "/os-instance-actions/req-nope", "", 404, "itemNotFound"},
	} {
		e.do(tc.token, tc.method, v21+tc.path, "2.96", tc.body).Expect(t, tc.status, tc.fault)
	}
}

func TestServerQuota(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newServerEnv(t, d, 1, nil)
		e.do("admin", "PUT", v21+"/os-quota-sets/p1", "", `{"quota_set": {"instances": 5}}`).Expect(t, 200, "")
		var mu sync.Mutex
		ok, over := 0, 0
		var wg sync.WaitGroup
		for n := 0; n < 12; n++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("alice", "POST", v21+"/servers", "2.96", fmt.Sprintf(`{"server": {"name": "q%d", "imageRef": "%s", "flavorRef": "42", "networks": "none"}}`, n, imageID))
				mu.Lock()
				defer mu.Unlock()
				switch r.Status {
				case 202:
					ok++
				case 403:
					over++
					if msg := r.Body["forbidden"].(map[string]any)["message"].(string); !strings.HasPrefix(msg, "Quota exceeded for instances: Requested 1, but already used 5 of 5 instances") {
						errorsf(t, "message %q", msg)
					}
				default:
					errorsf(t, "status %d: %s", r.Status, r.Raw)
				}
			}()
		}
		wg.Wait()
		if ok != 5 || over != 7 {
			t.Fatalf("created %d, refused %d", ok, over)
		}
		q := obj(t, e.do("alice", "GET", v21+"/os-quota-sets/p1/detail", "", "").Expect(t, 200, "").Body, "quota_set")
		if q["instances"].(map[string]any)["in_use"] != float64(5) || q["cores"].(map[string]any)["in_use"] != float64(5) {
			t.Fatalf("usage %v", q)
		}
		// min/max count: as many as fit, at least min.
		e.do("admin", "PUT", v21+"/os-quota-sets/p2", "", `{"quota_set": {"instances": 3}}`).Expect(t, 200, "")
		r := e.do("bob", "POST", v21+"/servers", "2.96", `{"server": {"name": "m", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "min_count": 2, "max_count": 5, "return_reservation_id": true}}`).Expect(t, 202, "")
		rid := r.Body["reservation_id"].(string)
		l := list(t, e.do("bob", "GET", v21+"/servers?reservation_id="+rid, "", "").Body, "servers")
		if len(l) != 3 {
			t.Fatalf("multi create made %d", len(l))
		}
		e.do("bob", "POST", v21+"/servers", "2.96", bootBody).Expect(t, 403, "forbidden")
	})
}

// TestServerQuotaUnlimitedRace: creates within unlimited quotas lock the
// project's quota scope shared (PostgreSQL), so they do not queue on each
// other, yet a limit set while they run must hold: when the update is
// accepted (the usage then was within it), no create may end above it.
func TestServerQuotaUnlimitedRace(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newServerEnv(t, d, 1, nil)
		for _, tc := range []struct{ token, project string }{{"alice", "p1"}, {"bob", "p2"}} {
			e.do("admin", "PUT", v21+"/os-quota-sets/"+tc.project, "", `{"quota_set": {"instances": -1, "cores": -1, "ram": -1}}`).Expect(t, 200, "")
			var wg sync.WaitGroup
			codes := make([]int, 12)
			var update int
			for n := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[n] = e.do(tc.token, "POST", v21+"/servers", "2.96", fmt.Sprintf(`{"server": {"name": "u%d", "imageRef": "%s", "flavorRef": "42", "networks": "none"}}`, n, imageID)).Status
				}()
				if n == 3 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						update = e.do("admin", "PUT", v21+"/os-quota-sets/"+tc.project, "", `{"quota_set": {"instances": 6}}`).Status
					}()
				}
			}
			wg.Wait()
			count := map[int]int{}
			for _, c := range codes {
				count[c]++
			}
			if count[202]+count[403] != len(codes) {
				t.Fatalf("%s: statuses %v", tc.project, count)
			}
			q := obj(t, e.do(tc.token, "GET", v21+"/os-quota-sets/"+tc.project+"/detail", "", "").Expect(t, 200, "").Body, "quota_set")
			inUse := q["instances"].(map[string]any)["in_use"].(float64)
			if int(inUse) != count[202] {
				t.Fatalf("%s: %v in use after %d creates", tc.project, inUse, count[202])
			}
			switch update {
			case 200:
				if inUse > 6 {
					t.Fatalf("%s: limit 6 accepted, %v instances in use", tc.project, inUse)
				}
			case 400: // the usage was already above 6
				if count[202] <= 6 {
					t.Fatalf("%s: limit refused with %d created", tc.project, count[202])
				}
			default:
				t.Fatalf("%s: quota update %d", tc.project, update)
			}
			t.Logf("%s: update %d, %v created", tc.project, update, count)
		}
	})
}

var errMu sync.Mutex

func errorsf(t *testing.T, f string, args ...any) {
	errMu.Lock()
	defer errMu.Unlock()
	t.Error(errors.New(fmt.Sprintf(f, args...)))
}
