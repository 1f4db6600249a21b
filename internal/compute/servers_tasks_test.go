package compute_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func TestSpawnFailureLeavesNothing(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	e.driver(0).FailNext("spawn", errors.New("disk on fire"))
	id := e.boot("alice", "")
	v := e.waitStatus(id, "ERROR")
	f := v["fault"].(map[string]any)
	if f["code"] != float64(500) || f["message"] == "" || v["OS-EXT-SRV-ATTR:host"] != nil {
		t.Fatalf("error view %v", v)
	}
	if ids, _ := e.driver(0).List(t.Context()); len(ids) != 0 {
		t.Fatalf("left on host %v", ids)
	}
	h := obj(t, e.do("admin", "GET", v21+"/os-hypervisors/statistics", "2.87", "").Expect(t, 200, "").Body, "hypervisor_statistics")
	if h["running_vms"] != float64(0) {
		t.Fatalf("usage after failure %v", h)
	}
	e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
	e.waitGone(id)
}

func TestNoValidHost(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	svc := list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-compute", "2.53", "").Body, "services")[0].(map[string]any)
	e.do("admin", "PUT", v21+"/os-services/"+svc["id"].(string), "2.53", `{"status": "disabled", "disabled_reason": "maint"}`).Expect(t, 200, "")
	id := e.boot("alice", "")
	v := e.waitStatus(id, "ERROR")
	if msg, _ := v["fault"].(map[string]any)["message"].(string); !strings.HasPrefix(msg, "No valid host was found. There are not enough hosts available.") ||
		!strings.Contains(msg, "ComputeFilter eliminated 1") {
		t.Fatalf("fault %v", v["fault"])
	}
	s := obj(t, e.do("admin", "PUT", v21+"/os-services/"+svc["id"].(string), "2.53", `{"status": "enabled"}`).Expect(t, 200, "").Body, "service")
	if s["status"] != "enabled" || s["state"] != "up" || s["disabled_reason"] != nil {
		t.Fatalf("service %v", s)
	}
}

func TestPowerSyncAndAdoption(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	e.driver(0).Crash(id)
	v := e.waitStatus(id, "SHUTOFF")
	if v["OS-EXT-STS:power_state"] != float64(6) {
		t.Fatalf("power state %v", v["OS-EXT-STS:power_state"])
	}
	if got := actionNames(t, e, id); got != "stop,create" {
		t.Fatalf("actions %s", got)
	}
	e.action("alice", id, `{"os-start": null}`, 202)
	e.waitStatus(id, "ACTIVE")
}

// TestConductorRestart covers the two ways a task outlives a conductor:
// created while no conductor runs (picked up by the next one's scan), and
// interrupted in the middle of a step (resumed by another conductor once
// the lease of the stopped one has run out).
func TestConductorRestart(t *testing.T) {
	d := dbtest.OpenSQLite(t, compute.Migrations())
	e1 := newServerEnv(t, d, 0, func(c *compute.Config) { c.Conductor = false })
	id := e1.boot("alice", "")
	if s := e1.server(id); s["status"] != "BUILD" {
		t.Fatalf("without a conductor: %v", s["status"])
	}
	e2 := newServerEnv(t, d, 1, nil)
	e2.waitStatus(id, "ACTIVE")

	e2.driver(0).SetDelay("destroy", time.Hour)
	e2.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
	time.Sleep(200 * time.Millisecond)
	if s := e2.server(id); s["OS-EXT-STS:task_state"] != "deleting" {
		t.Fatalf("not deleting: %v", s["OS-EXT-STS:task_state"])
	}
	e2.stop()
	e3 := newServerEnv(t, d, 1, nil)
	e3.waitGone(id)
}

func TestMoveActionsBetweenHosts(t *testing.T) {
	e := newServerEnv(t, nil, 2, nil)
	id := e.boot("alice", "")
	v := e.waitStatus(id, "ACTIVE")
	src := v["OS-EXT-SRV-ATTR:host"].(string)
	// Resize to m1.micro, revert, resize again and confirm.
	e.action("alice", id, `{"resize": {"flavorRef": "84"}}`, 202)
	v = e.waitStatus(id, "VERIFY_RESIZE")
	if v["flavor"].(map[string]any)["original_name"] != "m1.micro" {
		t.Fatalf("resized flavor %v", v["flavor"])
	}
	e.action("alice", id, `{"revertResize": null}`, 202)
	v = e.waitStatus(id, "ACTIVE")
	if v["flavor"].(map[string]any)["original_name"] != "m1.nano" || v["OS-EXT-SRV-ATTR:host"] != src {
		t.Fatalf("reverted %v %v", v["flavor"], v["OS-EXT-SRV-ATTR:host"])
	}
	e.action("alice", id, `{"resize": {"flavorRef": "84"}}`, 202)
	e.waitStatus(id, "VERIFY_RESIZE")
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", `{"confirmResize": null}`).Expect(t, 204, "")
	e.waitStatus(id, "ACTIVE")
	// Cold migration goes to the other host.
	host := func() string { return e.server(id)["OS-EXT-SRV-ATTR:host"].(string) }
	before := host()
	e.action("admin", id, `{"migrate": null}`, 202)
	e.waitStatus(id, "VERIFY_RESIZE")
	e.action("admin", id, `{"confirmResize": null}`, 204)
	e.waitStatus(id, "ACTIVE")
	if host() == before {
		t.Fatalf("migrate stayed on %s", before)
	}
	// Live migration back.
	before = host()
	e.action("admin", id, `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`, 202)
	e.waitStatus(id, "ACTIVE")
	if host() == before {
		t.Fatalf("live migrate stayed on %s", before)
	}
	// Shelve (offloaded at once) and unshelve.
	e.action("alice", id, `{"shelve": null}`, 202)
	v = e.waitStatus(id, "SHELVED_OFFLOADED")
	if v["OS-EXT-SRV-ATTR:host"] != nil {
		t.Fatalf("offloaded on %v", v["OS-EXT-SRV-ATTR:host"])
	}
	e.action("alice", id, `{"unshelve": null}`, 202)
	e.waitStatus(id, "ACTIVE")
	// Rebuild keeps the host, stopped stays stopped.
	e.action("alice", id, `{"os-stop": null}`, 202)
	e.waitStatus(id, "SHUTOFF")
	r := e.action("alice", id, `{"rebuild": {"imageRef": "`+imageID+`", "name": "rebuilt"}}`, 202)
	if s := obj(t, r.Body, "server"); s["name"] != "rebuilt" || s["adminPass"] == nil || s["adminPass"] == "" || s["status"] != "REBUILD" {
		t.Fatalf("rebuild response %v", s)
	}
	e.waitStatus(id, "SHUTOFF")
	e.action("alice", id, `{"os-start": null}`, 202)
	e.waitStatus(id, "ACTIVE")
	// Evacuate needs the host down: refused while up, done when forced down.
	cur := host()
	e.action("admin", id, `{"evacuate": {}}`, 400)
	var svcID string
	for _, s := range list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-compute&host="+cur, "2.53", "").Body, "services") {
		svcID = s.(map[string]any)["id"].(string)
	}
	e.do("admin", "PUT", v21+"/os-services/"+svcID, "2.53", `{"forced_down": true}`).Expect(t, 200, "")
	e.action("admin", id, `{"evacuate": {}}`, 200)
	e.waitStatus(id, "ACTIVE")
	if host() == cur {
		t.Fatalf("evacuated onto the same host")
	}
	// Reset state (admin) and the action list.
	e.action("admin", id, `{"os-resetState": {"state": "error"}}`, 202)
	e.waitStatus(id, "ERROR")
	want := "resetState,evacuate,start,rebuild,stop,unshelve,shelve,live-migration,confirmResize,migrate,confirmResize,resize,revertResize,resize,create"
	if got := actionNames(t, e, id); got != want {
		t.Fatalf("actions\n got %s\nwant %s", got, want)
	}
	e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
	e.waitGone(id)
}

func TestMetadataTagsAndListFilters(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	a := e.boot("alice", `{"server": {"name": "alpha", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "tags": ["red"]}}`)
	b := e.boot("alice", `{"server": {"name": "beta", "imageRef": "`+imageID+`", "flavorRef": "84", "networks": "none", "tags": ["red", "blue"]}}`)
	e.waitStatus(a, "ACTIVE")
	e.waitStatus(b, "ACTIVE")
	e.do("alice", "PUT", v21+"/servers/"+a+"/metadata", "", `{"metadata": {"k1": "v1"}}`).Expect(t, 200, "")
	e.do("alice", "POST", v21+"/servers/"+a+"/metadata", "", `{"metadata": {"k2": "v2"}}`).Expect(t, 200, "")
	e.do("alice", "PUT", v21+"/servers/"+a+"/metadata/k3", "", `{"meta": {"k3": "v3"}}`).Expect(t, 200, "")
	e.do("alice", "PUT", v21+"/servers/"+a+"/metadata/k3", "", `{"meta": {"k4": "v3"}}`).Expect(t, 400, "badRequest")
	e.do("alice", "DELETE", v21+"/servers/"+a+"/metadata/k1", "", "").Expect(t, 204, "")
	md := e.do("rob", "GET", v21+"/servers/"+a+"/metadata", "", "").Expect(t, 200, "").Body["metadata"].(map[string]any)
	if len(md) != 2 || md["k2"] != "v2" {
		t.Fatalf("metadata %v", md)
	}
	e.do("rob", "PUT", v21+"/servers/"+a+"/metadata", "", `{"metadata": {}}`).Expect(t, 403, "forbidden")
	e.do("alice", "PUT", v21+"/servers/"+a+"/tags/green", "2.26", "").Expect(t, 201, "")
	e.do("alice", "GET", v21+"/servers/"+a+"/tags/green", "2.26", "").Expect(t, 204, "")
	e.do("alice", "GET", v21+"/servers/"+a+"/tags", "2.25", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "PUT", v21+"/servers/"+a+"/tags/bad,tag", "2.26", "").Expect(t, 400, "badRequest")
	names := func(q string) string {
		r := e.do("alice", "GET", v21+"/servers"+q, "2.96", "").Expect(t, 200, "")
		var out []string
		for _, s := range list(t, r.Body, "servers") {
			out = append(out, s.(map[string]any)["name"].(string))
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	for q, want := range map[string]string{
		"?name=^al":                  "[alpha]",
		"?tags=red,blue":             "[beta]",
		"?tags-any=green,blue":       "[alpha beta]",
		"?not-tags=red":              "[]",
		"?not-tags-any=blue":         "[alpha]",
		"?flavor=84":                 "[beta]",
		"?image=" + imageID:          "[alpha beta]",
		"?status=ACTIVE":             "[alpha beta]",
		"?status=SHUTOFF":            "[]",
		"?sort_key=display_name":     "[alpha beta]",
		"?changes-before=2000-01-01": "[]",
	} {
		if got := names(q); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	// Pagination with servers_links.
	r := e.do("alice", "GET", v21+"/servers?limit=1&sort_key=display_name&sort_dir=asc", "", "").Expect(t, 200, "")
	l := list(t, r.Body, "servers")
	if len(l) != 1 || l[0].(map[string]any)["name"] != "alpha" {
		t.Fatalf("page 1 %v", l)
	}
	next := list(t, r.Body, "servers_links")[0].(map[string]any)["href"].(string)
	r = e.do("alice", "GET", next[len(publicURL):], "", "").Expect(t, 200, "")
	if l := list(t, r.Body, "servers"); len(l) != 1 || l[0].(map[string]any)["name"] != "beta" {
		t.Fatalf("page 2 %v", l)
	}
	// Admin-only host filter is ignored for members, honoured for admins.
	if got := names("?host=nowhere"); got != "[alpha beta]" {
		t.Fatalf("member host filter: %s", got)
	}
	if l := list(t, e.do("admin", "GET", v21+"/servers?all_tenants=1&host=nowhere", "", "").Body, "servers"); len(l) != 0 {
		t.Fatalf("admin host filter %v", l)
	}
	// Hypervisor views.
	h := list(t, e.do("admin", "GET", v21+"/os-hypervisors/detail", "2.87", "").Expect(t, 200, "").Body, "hypervisors")[0].(map[string]any)
	if h["running_vms"] != float64(2) || h["vcpus_used"] != float64(2) || h["hypervisor_type"] != "fake" || h["state"] != "up" {
		t.Fatalf("hypervisor %v", h)
	}
	hid := h["id"].(string)
	hv := obj(t, e.do("admin", "GET", v21+"/os-hypervisors/"+hid+"?with_servers=true", "2.53", "").Expect(t, 200, "").Body, "hypervisor")
	if len(hv["servers"].([]any)) != 2 {
		t.Fatalf("hypervisor servers %v", hv)
	}
	e.do("admin", "GET", v21+"/os-hypervisors/00000000-0000-4000-8000-000000000000", "2.53", "").Expect(t, 404, "itemNotFound")
}

func TestServicesGoDown(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	svcs := list(t, e.do("admin", "GET", v21+"/os-services", "2.53", "").Expect(t, 200, "").Body, "services")
	bins := map[string]bool{}
	for _, s := range svcs {
		bins[s.(map[string]any)["binary"].(string)] = true
	}
	if !bins["nova-compute"] || !bins["nova-conductor"] || !bins["nova-scheduler"] {
		t.Fatalf("services %v", svcs)
	}
	// Stop heartbeats by backdating the row: the service shows down.
	_, err := e.db.Reader().ExecContext(t.Context(), `UPDATE compute_services SET last_seen_up = '2000-01-01T00:00:00.000000Z' WHERE binary_name = 'nova-scheduler'`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-scheduler", "2.53", "").Body, "services") {
		if st := s.(map[string]any)["state"]; st != "down" && st != "up" {
			t.Fatalf("state %v", st)
		}
	}
	e.do("admin", "PUT", v21+"/os-services/not-a-uuid", "2.53", `{"status": "disabled"}`).Expect(t, 400, "badRequest")
	e.do("admin", "PUT", v21+"/os-services/00000000-0000-4000-8000-000000000000", "2.53", `{"status": "disabled"}`).Expect(t, 404, "itemNotFound")
}

// BenchmarkBootDelete boots and deletes servers through the API on four
// fake hosts at concurrency 50 and reports servers/s (boot+delete), the
// p95 of POST→ACTIVE, and the store's statements per boot+delete. The
// conductor's task-end hook tells when a server is ACTIVE or gone, so no
// polling load distorts the numbers.
func BenchmarkBootDelete(b *testing.B) {
	var mu sync.Mutex
	waiters := map[string]chan error{}
	wait := func(id string) chan error {
		mu.Lock()
		defer mu.Unlock()
		ch, ok := waiters[id]
		if !ok {
			ch = make(chan error, 2)
			waiters[id] = ch
		}
		return ch
	}
	e := newServerEnv(b, nil, 4, func(c *compute.Config) {
		c.DefaultQuotas = map[string]int64{"instances": -1, "cores": -1, "ram": -1}
		c.ConductorConfig.OnTaskEnd = func(uuid, kind string, failure error) { wait(uuid) <- failure }
	})
	const conc = 50
	var lat []time.Duration
	q0 := store.Queries()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				t0 := time.Now()
				id := e.boot("alice", "")
				ch := wait(id)
				if err := <-ch; err != nil {
					b.Errorf("boot: %v", err)
				}
				d := time.Since(t0)
				e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(b, 204, "")
				if err := <-ch; err != nil {
					b.Errorf("delete: %v", err)
				}
				mu.Lock()
				lat = append(lat, d)
				delete(waiters, id)
				mu.Unlock()
			}
		}()
	}
	for n := 0; n < b.N; n++ {
		work <- n
	}
	close(work)
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p95 := lat[min(len(lat)*95/100, len(lat)-1)]
	b.ReportMetric(float64(b.N)/el.Seconds(), "servers/s")
	b.ReportMetric(float64(p95.Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(store.Queries()-q0)/float64(b.N), "queries/server")
}

// Steady host reports are handled in batches: the compute service's
// last_seen_up keeps advancing, and a service deleted through the API
// registers again with the host's next report.
func TestComputeHeartbeatsBatched(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	seen := func() (string, string) {
		var id, at string
		err := e.db.Reader().QueryRowContext(t.Context(), `SELECT uuid, COALESCE(last_seen_up, '') FROM compute_services WHERE binary_name = 'nova-compute'`).Scan(&id, &at)
		if err != nil {
			return "", ""
		}
		return id, at
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	id, first := seen()
	if id == "" {
		t.Fatal("no compute service")
	}
	for range 3 { // several batches, not just the registering report
		prev := first
		waitFor("last_seen_up to advance", func() bool { _, at := seen(); first = at; return at > prev })
	}
	e.do("admin", "DELETE", v21+"/os-services/"+id, "2.53", "").Expect(t, 204, "")
	waitFor("the host to register again", func() bool { nid, _ := seen(); return nid != "" && nid != id })
	nid, _ := seen()
	svcs := list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-compute", "2.53", "").Expect(t, 200, "").Body, "services")
	if len(svcs) != 1 || svcs[0].(map[string]any)["id"] != nid || svcs[0].(map[string]any)["state"] != "up" {
		t.Fatalf("services after re-registration: %v", svcs)
	}
	// The node is registered again with the service.
	hv := list(t, e.do("admin", "GET", v21+"/os-hypervisors/detail", "2.53", "").Expect(t, 200, "").Body, "hypervisors")
	if len(hv) != 1 || hv[0].(map[string]any)["service"].(map[string]any)["id"] != nid {
		t.Fatalf("hypervisors after re-registration: %v", hv)
	}
}

// The statements of a boot and delete (fake driver, no network, no
// volumes) stay bounded: the quota check counts nothing under unlimited
// quotas and only the limited resources otherwise, and the conductor
// writes no progress after steps with nothing to do. Every statement of
// the database counts (placement's and networking's too): ~42–45 per
// cycle here since placement's claim and delete no longer cost statements
// per resource class (~52 before that, 82–85 before the earlier changes);
// the bounds leave ~20 % for noise.
func TestBootDeleteStatements(t *testing.T) {
	for _, tc := range []struct {
		name   string
		quotas map[string]int64
		max    float64 // all statements per boot+delete
	}{
		{"unlimited", map[string]int64{"instances": -1, "cores": -1, "ram": -1}, 50},
		{"limited", map[string]int64{"instances": 1000, "cores": 1000, "ram": -1}, 52},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			ended := map[string]chan error{}
			ch := func(id string) chan error {
				mu.Lock()
				defer mu.Unlock()
				if ended[id] == nil {
					ended[id] = make(chan error, 2)
				}
				return ended[id]
			}
			e := newServerEnv(t, nil, 1, func(c *compute.Config) {
				c.DefaultQuotas = tc.quotas
				c.ConductorConfig.OnTaskEnd = func(uuid, kind string, failure error) { ch(uuid) <- failure }
				// No scans or heartbeats in the count.
				c.ConductorConfig.ScanInterval = time.Hour
				c.AgentReportInterval = time.Hour
			})
			const n = 10
			q0 := e.db.Queries()
			for range n {
				id := e.boot("alice", "")
				if err := <-ch(id); err != nil {
					t.Fatalf("boot: %v", err)
				}
				e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
				if err := <-ch(id); err != nil {
					t.Fatalf("delete: %v", err)
				}
			}
			per := float64(e.db.Queries()-q0) / n
			t.Logf("%.1f statements per boot+delete", per)
			if per > tc.max {
				t.Errorf("%.1f statements per boot+delete, want at most %.0f", per, tc.max)
			}
		})
	}
}
