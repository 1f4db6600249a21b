package compute_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/server_views.json from the current code")

// viewsNet is a network allocator with fixed interfaces.
type viewsNet struct {
	conductor.NoNetwork
	vifs map[string][]conductor.VIF
}

func (n viewsNet) Interfaces(_ context.Context, uuids []string) (map[string][]conductor.VIF, error) {
	out := map[string][]conductor.VIF{}
	for _, u := range uuids {
		if v, ok := n.vifs[u]; ok {
			out[u] = v
		}
	}
	return out, nil
}

// Fixed ids of the servers TestServerViewsGolden renders.
const (
	gvActive   = "aaaaaaaa-0000-4000-8000-000000000001" // p1: everything set
	gvError500 = "aaaaaaaa-0000-4000-8000-000000000002" // p1: ERROR, fault 500, no image, no host
	gvBuilding = "aaaaaaaa-0000-4000-8000-000000000003" // p1: BUILD with progress, fault 400 (not shown)
	gvError400 = "aaaaaaaa-0000-4000-8000-000000000004" // p1: ERROR, fault 400 with details
	gvOther    = "aaaaaaaa-0000-4000-8000-000000000005" // p2
	gvDeleted  = "aaaaaaaa-0000-4000-8000-000000000006" // p1, deleted
	gvGroup    = "bbbbbbbb-0000-4000-8000-000000000001"
)

// seedServerViews inserts servers covering the optional parts of a
// server view, with fixed ids and times.
func seedServerViews(t testing.TB, e *env) {
	t.Helper()
	st := store.New(e.db)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	host, zone := "h1", "zone-a"
	desc, key, ud, reason := "web <server> & more", "key1", "IyEvYmluL3NoCg==", "maintenance"
	fl := store.InstanceFlavor{ID: "42", Name: "m1.nano", VCPUs: 1, MemoryMB: 128, RootGB: 1, Swap: 0}
	flSpecs := store.InstanceFlavor{ID: "84", Name: "m1.pinned", VCPUs: 2, MemoryMB: 256, RootGB: 2, EphemeralGB: 1, Swap: 512,
		ExtraSpecs: map[string]string{"hw:cpu_policy": "dedicated"}}
	type seed struct {
		inst *store.Instance
		set  store.Set
	}
	ts := "scheduling"
	seeds := []seed{
		{&store.Instance{UUID: gvActive, ProjectID: "p1", UserID: "alice", Name: "web-1", Description: &desc, Hostname: "web-1",
			Flavor: flSpecs, ImageRef: imageID, KeyName: &key, UserData: &ud, ConfigDrive: "True", AvailabilityZone: &zone,
			Host: &host, Node: &host, VMState: "active", PowerState: 1, ReservationID: "r-00000001",
			Metadata: map[string]string{"role": "web", "tier": "front"}, Tags: []string{"prod", "blue"}},
			store.Set{"locked": true, "locked_by": "owner", "locked_reason": reason, "access_ip_v4": "192.0.2.10",
				"access_ip_v6": "2001:db8::10", "launched_at": "2026-01-02T03:05:06.123456Z", "progress": 0}},
		{&store.Instance{UUID: gvError500, ProjectID: "p1", UserID: "alice", Name: "broken", Hostname: "broken",
			Flavor: fl, VMState: "error", ReservationID: "r-00000002"},
			store.Set{"fault": &store.Fault{Code: 500, Message: "No valid host was found.", Details: "Traceback: ...", Created: t0.Add(time.Minute)}}},
		{&store.Instance{UUID: gvBuilding, ProjectID: "p1", UserID: "rob", Name: "new", Hostname: "new",
			Flavor: fl, ImageRef: imageID, VMState: "building", TaskState: &ts, ReservationID: "r-00000003", LaunchIndex: 2},
			store.Set{"progress": 40, "fault": &store.Fault{Code: 400, Message: "ignored while building", Created: t0}}},
		{&store.Instance{UUID: gvError400, ProjectID: "p1", UserID: "alice", Name: "bad-request", Hostname: "bad-request",
			Flavor: fl, ImageRef: imageID, Host: &host, Node: &host, VMState: "error", ReservationID: "r-00000004",
			Metadata: map[string]string{"a": "1"}},
			store.Set{"fault": &store.Fault{Code: 400, Message: "Bad thing", Details: "details of the bad thing", Created: t0.Add(2 * time.Minute)},
				"terminated_at": "2026-01-02T04:00:00Z"}},
		{&store.Instance{UUID: gvOther, ProjectID: "p2", UserID: "bob", Name: "other", Hostname: "other",
			Flavor: fl, ImageRef: imageID, Host: &host, Node: &host, VMState: "stopped", PowerState: 4, ReservationID: "r-00000005",
			Tags: []string{"x"}}, nil},
		{&store.Instance{UUID: gvDeleted, ProjectID: "p1", UserID: "alice", Name: "gone", Hostname: "gone",
			Flavor: fl, ImageRef: imageID, VMState: "deleted", ReservationID: "r-00000006"},
			store.Set{"deleted": true, "deleted_at": "2026-01-02T05:00:00Z", "terminated_at": "2026-01-02T05:00:00Z"}},
	}
	err := st.WithTx(ctx, func(tx *sql.Tx) error {
		for n, s := range seeds {
			s.inst.CreatedAt = t0.Add(time.Duration(n) * time.Second)
			if err := st.InsertInstance(ctx, tx, s.inst); err != nil {
				return err
			}
			set := store.Set{"updated_at": fmt.Sprintf("2026-01-02T06:00:%02dZ", n)}
			for k, v := range s.set {
				set[k] = v
			}
			if err := st.UpdateInstance(ctx, tx, s.inst.UUID, store.Cond{}, set); err != nil {
				return err
			}
		}
		g := &store.ServerGroup{UUID: gvGroup, Name: "g", ProjectID: "p1", UserID: "alice", Policy: "anti-affinity"}
		if err := st.CreateServerGroup(ctx, tx, g); err != nil {
			return err
		}
		return st.AddGroupMember(ctx, tx, g.ID, gvActive)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serverViewsNet are the interfaces of the seeded servers.
func serverViewsNet() viewsNet {
	return viewsNet{vifs: map[string][]conductor.VIF{
		gvActive: {
			{PortID: "p-1", NetworkID: "n-1", NetworkLabel: "private", MAC: "fa:16:3e:00:00:01", Addresses: []conductor.Address{
				{Addr: "10.0.0.5", Version: 4, Type: "fixed"}, {Addr: "fd00::5", Version: 6, Type: "fixed"},
				{Addr: "203.0.113.7", Version: 4, Type: "floating"}}},
			{PortID: "p-2", NetworkID: "n-2", MAC: "fa:16:3e:00:00:02", Addresses: []conductor.Address{{Addr: "10.1.0.5", Version: 4, Type: "fixed"}}},
			{PortID: "p-3", NetworkID: "n-3", NetworkLabel: "empty", MAC: "fa:16:3e:00:00:03"},
		},
		gvError400: {{PortID: "p-4", NetworkID: "n-1", NetworkLabel: "private", MAC: "fa:16:3e:00:00:04",
			Addresses: []conductor.Address{{Addr: "10.0.0.6", Version: 4, Type: "fixed"}}}},
		gvDeleted: {{PortID: "p-5", NetworkID: "n-1", NetworkLabel: "private", MAC: "fa:16:3e:00:00:05",
			Addresses: []conductor.Address{{Addr: "10.0.0.7", Version: 4, Type: "fixed"}}}},
	}}
}

// TestServerViewsGolden renders servers (show, list, detail, update) at
// the microversions where the server view changes, for an admin and a
// project member, and compares the decoded bodies with
// testdata/server_views.json. The golden file was written by the
// map-based views before the typed views replaced them; the JSON each
// microversion returns must not change. `go test -run
// TestServerViewsGolden -update` rewrites it (review the diff).
func TestServerViewsGolden(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) { serverViewsGolden(t, d) })
}

func serverViewsGolden(t *testing.T, d *db.DB) {
	e := newServerEnv(t, d, 0, func(c *compute.Config) {
		c.ConductorConfig.ScanInterval = time.Hour
		c.Network = serverViewsNet()
	})
	seedServerViews(t, e)
	versions := []string{"2.1", "2.3", "2.9", "2.16", "2.19", "2.26", "2.47", "2.63", "2.71", "2.73", "2.75", "2.90", "2.96"}
	type req struct{ who, method, path, body string }
	var reqs []req
	add := func(who, path string) { reqs = append(reqs, req{who, "GET", path, ""}) }
	add("admin", "/servers/detail?all_tenants=1")
	add("admin", "/servers/detail?all_tenants=1&deleted=true")
	add("admin", "/servers?all_tenants=1")
	add("alice", "/servers/detail")
	add("alice", "/servers")
	add("alice", "/servers/detail?limit=2")
	add("alice", "/servers/detail?changes-since=2020-01-01T00:00:00Z")
	add("rob", "/servers/detail?limit=1&marker="+gvError400)
	for _, id := range []string{gvActive, gvError500, gvBuilding, gvError400, gvOther} {
		add("admin", "/servers/"+id)
	}
	for _, id := range []string{gvActive, gvError500, gvError400} {
		add("alice", "/servers/"+id)
	}
	add("alice", "/p1/servers/detail") // legacy URL with the project id
	add("alice", "/p1/servers/"+gvActive)
	// Updates last: they change updated_at (normalized below).
	reqs = append(reqs, req{"admin", "PUT", "/servers/" + gvActive, `{"server": {"accessIPv4": "192.0.2.10"}}`},
		req{"alice", "PUT", "/servers/" + gvActive, `{"server": {"accessIPv4": "192.0.2.10"}}`})
	got := map[string]any{}
	for _, q := range reqs {
		for _, v := range versions {
			r := e.do(q.who, q.method, v21+q.path, v, q.body)
			if r.Status != 200 {
				t.Fatalf("%s %s %s at %s: status %d: %s", q.who, q.method, q.path, v, r.Status, r.Raw)
			}
			if q.method == "PUT" {
				s := r.Body["server"].(map[string]any)
				if _, ok := s["updated"].(string); !ok {
					t.Fatalf("PUT at %s: updated %v", v, s["updated"])
				}
				s["updated"] = "(now)"
			}
			got[fmt.Sprintf("%s %s %s @%s", q.who, q.method, q.path, v)] = r.Body
		}
	}
	path := filepath.Join("testdata", "server_views.json")
	if *updateGolden && d.Dialect() == db.SQLite {
		b, err := json.MarshalIndent(got, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if *updateGolden {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[k]; !ok {
			t.Errorf("%s: not requested any more", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s:\n%s", k, jsonDiff(want[k], got[k]))
		}
	}
}

// jsonDiff lists the paths where two decoded JSON values differ.
func jsonDiff(want, got any) string {
	var out []string
	var walk func(path string, w, g any)
	walk = func(path string, w, g any) {
		wm, wok := w.(map[string]any)
		gm, gok := g.(map[string]any)
		if wok && gok {
			for k, wv := range wm {
				gv, ok := gm[k]
				if !ok {
					out = append(out, fmt.Sprintf("%s.%s: missing (want %v)", path, k, wv))
					continue
				}
				walk(path+"."+k, wv, gv)
			}
			for k, gv := range gm {
				if _, ok := wm[k]; !ok {
					out = append(out, fmt.Sprintf("%s.%s: unexpected %v", path, k, gv))
				}
			}
			return
		}
		wl, wok := w.([]any)
		gl, gok := g.([]any)
		if wok && gok && len(wl) == len(gl) {
			for i := range wl {
				walk(fmt.Sprintf("%s[%d]", path, i), wl[i], gl[i])
			}
			return
		}
		if !reflect.DeepEqual(w, g) {
			out = append(out, fmt.Sprintf("%s: want %#v, got %#v", path, w, g))
		}
	}
	walk("", want, got)
	slices.Sort(out)
	return strings.Join(out, "\n")
}
