package compute_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

// TestAggregatesAndZones: aggregate CRUD, hosts and metadata, zones they
// define, placement aggregates mirrored, and booting into a zone.
func TestAggregatesAndZones(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) { testAggregatesAndZones(t, d) })
}

func testAggregatesAndZones(t *testing.T, d *db.DB) {
	e := newServerEnv(t, d, 2, nil)
	ctx := context.Background()
	// Policy and bad input.
	e.do("alice", "GET", v21+"/os-aggregates", "2.41", "").Expect(t, 403, "forbidden")
	e.do("admin", "POST", v21+"/os-aggregates", "2.41", `{"aggregate": {}}`).Expect(t, 400, "badRequest")
	r := e.do("admin", "POST", v21+"/os-aggregates", "2.41", `{"aggregate": {"name": "fast", "availability_zone": "az1"}}`).Expect(t, 200, "")
	agg := obj(t, r.Body, "aggregate")
	if agg["availability_zone"] != "az1" || agg["uuid"] == nil || agg["deleted"] != false {
		t.Fatalf("created %v", agg)
	}
	id := fmt.Sprint(int(agg["id"].(float64)))
	e.do("admin", "POST", v21+"/os-aggregates", "2.41", `{"aggregate": {"name": "fast"}}`).Expect(t, 409, "conflictingRequest")
	e.do("admin", "GET", v21+"/os-aggregates/999", "2.41", "").Expect(t, 404, "itemNotFound")
	e.do("admin", "POST", v21+"/os-aggregates/"+id+"/action", "2.41", `{"add_host": {"host": "nohost"}}`).Expect(t, 404, "itemNotFound")
	r = e.do("admin", "POST", v21+"/os-aggregates/"+id+"/action", "2.41", `{"add_host": {"host": "compute2"}}`).Expect(t, 200, "")
	if hosts := obj(t, r.Body, "aggregate")["hosts"].([]any); len(hosts) != 1 || hosts[0] != "compute2" {
		t.Fatalf("hosts %v", hosts)
	}
	e.do("admin", "POST", v21+"/os-aggregates/"+id+"/action", "2.41", `{"add_host": {"host": "compute2"}}`).Expect(t, 409, "conflictingRequest")
	r = e.do("admin", "POST", v21+"/os-aggregates/"+id+"/action", "2.41", `{"set_metadata": {"metadata": {"ssd": "true", "x": null}}}`).Expect(t, 200, "")
	if md := obj(t, r.Body, "aggregate")["metadata"].(map[string]any); md["ssd"] != "true" || md["availability_zone"] != "az1" {
		t.Fatalf("metadata %v", md)
	}
	// A host in az1 cannot join another zone's aggregate.
	r = e.do("admin", "POST", v21+"/os-aggregates", "2.41", `{"aggregate": {"name": "other", "availability_zone": "az2"}}`).Expect(t, 200, "")
	other := fmt.Sprint(int(obj(t, r.Body, "aggregate")["id"].(float64)))
	e.do("admin", "POST", v21+"/os-aggregates/"+other+"/action", "2.41", `{"add_host": {"host": "compute2"}}`).Expect(t, 409, "conflictingRequest")
	e.do("admin", "DELETE", v21+"/os-aggregates/"+other, "2.41", "").Expect(t, 200, "")

	// Placement sees the aggregate on compute2's provider.
	aggs, err := e.pl.Aggregates(ctx, e.nodeOf("compute2"))
	if err != nil || len(aggs) != 1 || aggs[0] != agg["uuid"] {
		t.Fatalf("placement aggregates %v %v", aggs, err)
	}
	// Zones.
	zones := list(t, e.do("alice", "GET", v21+"/os-availability-zone", "2.1", "").Body, "availabilityZoneInfo")
	names := []string{}
	for _, z := range zones {
		names = append(names, z.(map[string]any)["zoneName"].(string))
	}
	if strings.Join(names, ",") != "nova,az1" {
		t.Fatalf("zones %v", names)
	}
	detail := list(t, e.do("admin", "GET", v21+"/os-availability-zone/detail", "2.1", "").Body, "availabilityZoneInfo")
	found := false
	for _, z := range detail {
		z := z.(map[string]any)
		if z["zoneName"] == "az1" {
			hosts := z["hosts"].(map[string]any)
			svc := hosts["compute2"].(map[string]any)["nova-compute"].(map[string]any)
			found = svc["available"] == true && svc["active"] == true
		}
	}
	if !found {
		t.Fatalf("detail %v", detail)
	}
	// Booting into az1 lands on compute2; into nova on compute1; an
	// unknown zone is a 400.
	bootIn := func(zone string) string {
		id := e.boot("alice", `{"server": {"name": "z", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "availability_zone": "`+zone+`"}}`)
		return e.waitStatus(id, "ACTIVE")["OS-EXT-SRV-ATTR:host"].(string)
	}
	if h := bootIn("az1"); h != "compute2" {
		t.Fatalf("az1 -> %s", h)
	}
	if h := bootIn("nova"); h != "compute1" {
		t.Fatalf("nova -> %s", h)
	}
	e.do("alice", "POST", v21+"/servers", "2.96", `{"server": {"name": "z", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "availability_zone": "nope"}}`).Expect(t, 400, "badRequest")
	// Forcing a host is for admins.
	e.do("alice", "POST", v21+"/servers", "2.96", `{"server": {"name": "z", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "availability_zone": "nova:compute1"}}`).Expect(t, 403, "forbidden")
	fid := e.boot("admin", `{"server": {"name": "f", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "availability_zone": "az1:compute2"}}`)
	if h := e.waitStatus(fid, "ACTIVE")["OS-EXT-SRV-ATTR:host"]; h != "compute2" {
		t.Fatalf("forced -> %v", h)
	}
	// Delete needs an empty aggregate.
	e.do("admin", "DELETE", v21+"/os-aggregates/"+id, "2.41", "").Expect(t, 400, "badRequest")
	e.do("admin", "POST", v21+"/os-aggregates/"+id+"/action", "2.41", `{"remove_host": {"host": "compute2"}}`).Expect(t, 200, "")
	e.do("admin", "POST", v21+"/os-aggregates/"+id+"/action", "2.41", `{"remove_host": {"host": "compute2"}}`).Expect(t, 404, "itemNotFound")
	if aggs, _ := e.pl.Aggregates(ctx, e.nodeOf("compute2")); len(aggs) != 0 {
		t.Fatalf("placement aggregates after remove %v", aggs)
	}
	e.do("admin", "DELETE", v21+"/os-aggregates/"+id, "2.41", "").Expect(t, 200, "")
}

// TestServerGroupsAndHints: groups per microversion, quotas, hard
// anti-affinity and affinity, same/different host hints, and the
// no-valid-host fault naming the filter.
func TestServerGroupsAndHints(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) { testServerGroupsAndHints(t, d) })
}

func testServerGroupsAndHints(t *testing.T, d *db.DB) {
	e := newServerEnv(t, d, 2, nil)
	e.do("alice", "POST", v21+"/os-server-groups", "2.1", `{"server_group": {"name": "g", "policies": ["soft-affinity"]}}`).Expect(t, 400, "badRequest")
	e.do("alice", "POST", v21+"/os-server-groups", "2.64", `{"server_group": {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}}`).Expect(t, 400, "badRequest")
	r := e.do("alice", "POST", v21+"/os-server-groups", "2.64", `{"server_group": {"name": "anti", "policy": "anti-affinity", "rules": {"max_server_per_host": 1}}}`).Expect(t, 200, "")
	g := obj(t, r.Body, "server_group")
	if g["policy"] != "anti-affinity" || g["rules"].(map[string]any)["max_server_per_host"] != float64(1) || g["project_id"] != "p1" {
		t.Fatalf("group %v", g)
	}
	anti := g["id"].(string)
	old := obj(t, e.do("alice", "GET", v21+"/os-server-groups/"+anti, "2.1", "").Expect(t, 200, "").Body, "server_group")
	if p := old["policies"].([]any); len(p) != 1 || p[0] != "anti-affinity" || old["metadata"] == nil {
		t.Fatalf("old view %v", old)
	}
	e.do("bob", "GET", v21+"/os-server-groups/"+anti, "2.64", "").Expect(t, 404, "itemNotFound")

	boot := func(name, hints string) string {
		return e.boot("alice", `{"server": {"name": "`+name+`", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none"}, "os:scheduler_hints": `+hints+`}`)
	}
	a1 := boot("a1", `{"group": "`+anti+`"}`)
	a2 := boot("a2", `{"group": "`+anti+`"}`)
	h1 := e.waitStatus(a1, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
	h2 := e.waitStatus(a2, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
	if h1 == h2 {
		t.Fatalf("anti-affinity put both on %v", h1)
	}
	a3 := boot("a3", `{"group": "`+anti+`"}`)
	v := e.waitStatus(a3, "ERROR")
	if msg := v["fault"].(map[string]any)["message"].(string); !strings.Contains(msg, "ServerGroupAntiAffinityFilter eliminated 2") {
		t.Fatalf("fault %s", msg)
	}
	members := obj(t, e.do("alice", "GET", v21+"/os-server-groups/"+anti, "2.64", "").Body, "server_group")["members"].([]any)
	if len(members) != 3 {
		t.Fatalf("members %v", members)
	}
	if sg := e.server(a1)["server_groups"].([]any); len(sg) != 1 || sg[0] != anti {
		t.Fatalf("server_groups %v", sg)
	}
	// Hints.
	s1 := boot("s1", `{"same_host": "`+a2+`"}`)
	if h := e.waitStatus(s1, "ACTIVE")["OS-EXT-SRV-ATTR:host"]; h != h2 {
		t.Fatalf("same_host -> %v, want %v", h, h2)
	}
	d1 := boot("d1", `{"different_host": ["`+a2+`"]}`)
	if h := e.waitStatus(d1, "ACTIVE")["OS-EXT-SRV-ATTR:host"]; h != h1 {
		t.Fatalf("different_host -> %v, want %v", h, h1)
	}
	e.do("alice", "POST", v21+"/servers", "2.96", `{"server": {"name": "x", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none"}, "os:scheduler_hints": {"group": "00000000-0000-4000-8000-000000000000"}}`).Expect(t, 400, "badRequest")
	e.do("alice", "POST", v21+"/servers", "2.96", `{"server": {"name": "x", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none"}, "os:scheduler_hints": {"same_host": "nope"}}`).Expect(t, 400, "badRequest")
	// Affinity: every member on the first one's host.
	r = e.do("alice", "POST", v21+"/os-server-groups", "2.15", `{"server_group": {"name": "aff", "policies": ["affinity"]}}`).Expect(t, 200, "")
	aff := obj(t, r.Body, "server_group")["id"].(string)
	f1, f2 := boot("f1", `{"group": "`+aff+`"}`), boot("f2", `{"group": "`+aff+`"}`)
	if x, y := e.waitStatus(f1, "ACTIVE")["OS-EXT-SRV-ATTR:host"], e.waitStatus(f2, "ACTIVE")["OS-EXT-SRV-ATTR:host"]; x != y {
		t.Fatalf("affinity split %v %v", x, y)
	}
	// Quota: server_groups.
	e.do("admin", "PUT", v21+"/os-quota-sets/p1", "2.64", `{"quota_set": {"server_groups": 2}}`).Expect(t, 200, "")
	e.do("alice", "POST", v21+"/os-server-groups", "2.64", `{"server_group": {"name": "third", "policy": "affinity"}}`).Expect(t, 403, "forbidden")
	e.do("alice", "DELETE", v21+"/os-server-groups/"+aff, "2.64", "").Expect(t, 204, "")
	if l := list(t, e.do("alice", "GET", v21+"/os-server-groups", "2.64", "").Body, "server_groups"); len(l) != 1 {
		t.Fatalf("groups %v", l)
	}
}

// TestMigrationsList: os-migrations records a cold migration and
// filters it per microversion.
func TestMigrationsList(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) { testMigrationsList(t, d) })
}

func testMigrationsList(t *testing.T, d *db.DB) {
	e := newServerEnv(t, d, 2, nil)
	id := e.boot("alice", "")
	src := e.waitStatus(id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
	e.action("admin", id, `{"migrate": null}`, 202)
	e.waitStatus(id, "VERIFY_RESIZE")
	e.do("alice", "GET", v21+"/os-migrations", "2.80", "").Expect(t, 403, "forbidden")
	l := list(t, e.do("admin", "GET", v21+"/os-migrations", "2.80", "").Expect(t, 200, "").Body, "migrations")
	if len(l) != 1 {
		t.Fatalf("migrations %v", l)
	}
	m := l[0].(map[string]any)
	if m["instance_uuid"] != id || m["source_compute"] != src || m["status"] != "finished" || m["migration_type"] != "migration" ||
		m["uuid"] == nil || m["project_id"] != "p1" {
		t.Fatalf("migration %v", m)
	}
	old := list(t, e.do("admin", "GET", v21+"/os-migrations", "2.1", "").Body, "migrations")[0].(map[string]any)
	if _, ok := old["migration_type"]; ok {
		t.Fatalf("2.1 view %v", old)
	}
	e.action("alice", id, `{"confirmResize": null}`, 204)
	e.waitStatus(id, "ACTIVE")
	if l := list(t, e.do("admin", "GET", v21+"/os-migrations?status=confirmed&migration_type=migration", "2.59", "").Body, "migrations"); len(l) != 1 {
		t.Fatalf("filtered %v", l)
	}
	if l := list(t, e.do("admin", "GET", v21+"/os-migrations?status=finished", "2.59", "").Body, "migrations"); len(l) != 0 {
		t.Fatalf("filtered %v", l)
	}
	// host matches either end of a migration, source_compute its source.
	dst := e.server(id)["OS-EXT-SRV-ATTR:host"].(string)
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"host=" + dst, 1}, {"host=" + src.(string), 1}, {"source_compute=" + src.(string), 1}, {"source_compute=" + dst, 0},
		{"host=" + dst + "&source_compute=" + src.(string), 1}, {"host=" + dst + "&source_compute=" + dst, 0},
	} {
		if l := list(t, e.do("admin", "GET", v21+"/os-migrations?"+tc.query, "2.59", "").Expect(t, 200, "").Body, "migrations"); len(l) != tc.want {
			t.Errorf("?%s: %d migrations, want %d", tc.query, len(l), tc.want)
		}
	}
	e.do("admin", "GET", v21+"/os-migrations?user_id=x", "2.59", "").Expect(t, 400, "badRequest")
	e.do("admin", "GET", v21+"/os-migrations?marker=nope", "2.59", "").Expect(t, 400, "badRequest")
	r := e.do("admin", "GET", v21+"/os-migrations?limit=1", "2.59", "").Expect(t, 200, "")
	if _, ok := r.Body["migrations_links"]; !ok {
		t.Fatalf("no next link %v", r.Raw)
	}
	// The server's in-progress live migrations: none now; a finished
	// cold migration is not one of them.
	if l := list(t, e.do("admin", "GET", v21+"/servers/"+id+"/migrations", "2.80", "").Expect(t, 200, "").Body, "migrations"); len(l) != 0 {
		t.Fatalf("in progress %v", l)
	}
	e.do("admin", "GET", v21+"/servers/"+id+"/migrations/"+fmt.Sprint(int(m["id"].(float64))), "2.80", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "GET", v21+"/servers/"+id+"/migrations", "2.80", "").Expect(t, 403, "forbidden")
	// A live migration shows while it runs.
	e.driver(0).SetDelay("spawn", time.Second)
	e.driver(1).SetDelay("spawn", time.Second)
	e.action("admin", id, `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`, 202)
	var lm []any
	e.eventually(func() bool {
		lm = list(t, e.do("admin", "GET", v21+"/servers/"+id+"/migrations", "2.80", "").Body, "migrations")
		return len(lm) == 1
	}, "live migration in progress")
	if x := lm[0].(map[string]any); x["server_uuid"] != id || x["status"] != "preparing" || x["uuid"] == nil {
		t.Fatalf("in progress %v", x)
	}
	e.waitStatus(id, "ACTIVE")
}
