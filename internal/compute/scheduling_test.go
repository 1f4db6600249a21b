package compute_test

import (
	"context"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
)

// allocs returns every allocation on the cloud: consumer -> provider ->
// class -> amount.
func (e *env) allocs() map[string]map[string]map[string]int64 {
	e.t.Helper()
	a, err := e.pl.AllAllocations(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// nodeOf returns the resource provider (hypervisor id) of host.
func (e *env) nodeOf(host string) string {
	e.t.Helper()
	for _, h := range list(e.t, e.do("admin", "GET", v21+"/os-hypervisors/detail", "2.53", "").Body, "hypervisors") {
		hv := h.(map[string]any)
		if hv["service"].(map[string]any)["host"] == host {
			return hv["id"].(string)
		}
	}
	e.t.Fatalf("no hypervisor of %s", host)
	return ""
}

// TestAllocationsFollowServers: placement holds what the servers use,
// through build, resize with revert and confirm, cold migration, delete
// and the audit's repairs.
func TestAllocationsFollowServers(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, testAllocationsFollowServers)
}

func testAllocationsFollowServers(t *testing.T, d *db.DB) {
	e := newServerEnv(t, d, 2, nil)
	ctx := context.Background()
	// The resource tracker's provider: Nova's ratios, the fake host's size.
	prov := e.nodeOf("compute1")
	var invs map[string]placement.Inventory
	e.eventually(func() bool {
		invs, _ = e.pl.Inventories(ctx, prov)
		traits, _ := e.pl.Traits(ctx, prov)
		return len(invs) == 3 && len(traits) > 0
	}, "provider inventories and traits")
	if v := invs["VCPU"]; v.Total != 16 || v.AllocationRatio != 16 || invs["MEMORY_MB"].AllocationRatio != 1.5 || invs["DISK_GB"].Total != 1024 {
		t.Fatalf("inventories %+v", invs)
	}
	traits, _ := e.pl.Traits(ctx, prov)
	if !contains(traits, "CUSTOM_KUMO_FAKE") || !contains(traits, "COMPUTE_NET_ATTACH_INTERFACE") || !contains(traits, "HW_ARCH_X86_64") {
		t.Fatalf("traits %v", traits)
	}

	id := e.boot("alice", "")
	v := e.waitStatus(id, "ACTIVE")
	src := v["OS-EXT-SRV-ATTR:host"].(string)
	want := map[string]int64{"VCPU": 1, "MEMORY_MB": 128, "DISK_GB": 1}
	checkAlloc := func(consumer, host string, want map[string]int64) {
		t.Helper()
		got := e.allocs()[consumer]
		p := e.nodeOf(host)
		if len(got) != 1 || len(got[p]) != len(want) {
			t.Fatalf("allocations of %s: %v, want %v on %s", consumer, got, want, host)
		}
		for rc, n := range want {
			if got[p][rc] != n {
				t.Fatalf("allocations of %s: %v, want %v on %s", consumer, got, want, host)
			}
		}
	}
	checkAlloc(id, src, want)

	// Resize: the source moves to the migration consumer.
	e.action("alice", id, `{"resize": {"flavorRef": "84"}}`, 202)
	v = e.waitStatus(id, "VERIFY_RESIZE")
	all := e.allocs()
	if len(all) != 2 {
		t.Fatalf("during resize: %v", all)
	}
	var mig string
	for c := range all {
		if c != id {
			mig = c
		}
	}
	checkAlloc(mig, src, want)
	checkAlloc(id, v["OS-EXT-SRV-ATTR:host"].(string), map[string]int64{"VCPU": 1, "MEMORY_MB": 192, "DISK_GB": 1})
	// Revert: back to the source, the migration holds nothing.
	e.action("alice", id, `{"revertResize": null}`, 202)
	e.waitStatus(id, "ACTIVE")
	if all := e.allocs(); len(all) != 1 {
		t.Fatalf("after revert: %v", all)
	}
	checkAlloc(id, src, want)

	// Cold migration to the other host, confirmed.
	e.action("admin", id, `{"migrate": null}`, 202)
	v = e.waitStatus(id, "VERIFY_RESIZE")
	dst := v["OS-EXT-SRV-ATTR:host"].(string)
	if dst == src {
		t.Fatalf("migrated to the same host %s", dst)
	}
	e.action("alice", id, `{"confirmResize": null}`, 204)
	e.waitStatus(id, "ACTIVE")
	if all := e.allocs(); len(all) != 1 {
		t.Fatalf("after confirm: %v", all)
	}
	checkAlloc(id, dst, want)

	// The audit restores a lost allocation and removes a dead one.
	if err := e.pl.DeleteAllocations(ctx, id); err != nil {
		t.Fatal(err)
	}
	rep, err := e.svc.Conductor().Audit(ctx)
	if err != nil || rep.Missing != 1 {
		t.Fatalf("audit %+v %v", rep, err)
	}
	checkAlloc(id, dst, want)

	// Live migration and evacuation leave only the instance's allocation
	// on its new host.
	e.action("admin", id, `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`, 202)
	v = e.waitStatus(id, "ACTIVE")
	e.eventually(func() bool { return e.server(id)["OS-EXT-SRV-ATTR:host"] != dst }, "live migration")
	live := e.server(id)["OS-EXT-SRV-ATTR:host"].(string)
	e.eventually(func() bool { return len(e.allocs()) == 1 }, "migration allocations dropped")
	checkAlloc(id, live, want)
	var svcID string
	for _, s := range list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-compute&host="+live, "2.53", "").Body, "services") {
		svcID = s.(map[string]any)["id"].(string)
	}
	e.do("admin", "PUT", v21+"/os-services/"+svcID, "2.53", `{"forced_down": true}`).Expect(t, 200, "")
	if st := e.server(id)["host_status"]; st != "DOWN" {
		t.Fatalf("host_status %v", st)
	}
	e.action("admin", id, `{"evacuate": {}}`, 200)
	e.eventually(func() bool { return e.server(id)["OS-EXT-SRV-ATTR:host"] != live && e.server(id)["status"] == "ACTIVE" }, "evacuation")
	evac := e.server(id)["OS-EXT-SRV-ATTR:host"].(string)
	// As in Nova, the instance holds the source and the destination while
	// the source is down; the evacuation is "done", not "completed".
	both := func(src, dst string) {
		t.Helper()
		all := e.allocs()
		got := all[id]
		if len(all) != 1 || len(got) != 2 || got[e.nodeOf(src)]["VCPU"] != 1 || got[e.nodeOf(dst)]["VCPU"] != 1 {
			t.Fatalf("during evacuation from %s to %s: %v", src, dst, all)
		}
	}
	evacStatus := func() string {
		t.Helper()
		l := list(t, e.do("admin", "GET", v21+"/os-migrations?instance_uuid="+id+"&migration_type=evacuation", "2.59", "").Expect(t, 200, "").Body, "migrations")
		if len(l) == 0 {
			return ""
		}
		return l[0].(map[string]any)["status"].(string)
	}
	both(live, evac)
	if st := evacStatus(); st != "done" {
		t.Fatalf("evacuation status %q", st)
	}
	// The source comes back: its guest goes, then its allocation.
	e.do("admin", "PUT", v21+"/os-services/"+svcID, "2.53", `{"forced_down": false}`).Expect(t, 200, "")
	e.eventually(func() bool { return len(e.allocs()[id]) == 1 && evacStatus() == "completed" }, "source allocation released")
	checkAlloc(id, evac, want)

	// Evacuated again, and the source's service deleted instead of coming
	// back: the delete releases the source allocation.
	for _, s := range list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-compute&host="+evac, "2.53", "").Body, "services") {
		svcID = s.(map[string]any)["id"].(string)
	}
	e.do("admin", "PUT", v21+"/os-services/"+svcID, "2.53", `{"forced_down": true}`).Expect(t, 200, "")
	e.action("admin", id, `{"evacuate": {}}`, 200)
	e.eventually(func() bool { return e.server(id)["OS-EXT-SRV-ATTR:host"] == live && e.server(id)["status"] == "ACTIVE" }, "second evacuation")
	srcProv := e.nodeOf(evac)
	both(evac, live)
	e.do("admin", "DELETE", v21+"/os-services/"+svcID, "2.53", "").Expect(t, 204, "")
	if got := e.allocs()[id]; len(got) != 1 || got[srcProv] != nil || evacStatus() != "completed" {
		t.Fatalf("after the source's service was deleted: %v, %q", got, evacStatus())
	}
	checkAlloc(id, live, want)

	// Delete releases everything.
	e.do("alice", "DELETE", v21+"/servers/"+id, "", "").Expect(t, 204, "")
	e.waitGone(id)
	if all := e.allocs(); len(all) != 0 {
		t.Fatalf("after delete: %v", all)
	}
	// A deleted server's allocation left behind is an orphan the audit
	// removes; an unknown consumer (another placement user) stays.
	for _, c := range []string{id, "99999999-0000-4000-8000-000000000000"} {
		if err := e.pl.Claim(ctx, placement.ConsumerAllocations{Consumer: c, ProjectID: "p1", UserID: "alice",
			Allocations: map[string]map[string]int64{prov: {"VCPU": 1}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = e.svc.Conductor().Audit(ctx)
	if err != nil || rep.Orphans != 1 {
		t.Fatalf("audit %+v %v", rep, err)
	}
	if all := e.allocs(); len(all) != 1 || all["99999999-0000-4000-8000-000000000000"] == nil {
		t.Fatalf("after audit: %v", all)
	}
}

// TestMultiCreateOneRequest: min_count servers are scheduled together,
// spread over the hosts.
func TestMultiCreateOneRequest(t *testing.T) {
	e := newServerEnv(t, nil, 2, nil)
	r := e.do("alice", "POST", v21+"/servers", "2.96", `{"server": {"name": "m", "imageRef": "`+imageID+`", "flavorRef": "42",
		"networks": "none", "min_count": 4, "return_reservation_id": true}}`).Expect(t, 202, "")
	res := r.Body["reservation_id"].(string)
	var hosts = map[string]int{}
	e.eventually(func() bool {
		l := list(t, e.do("admin", "GET", v21+"/servers/detail?all_tenants=1&reservation_id="+res, "2.96", "").Body, "servers")
		clear(hosts)
		for _, s := range l {
			s := s.(map[string]any)
			if s["status"] != "ACTIVE" {
				return false
			}
			hosts[s["OS-EXT-SRV-ATTR:host"].(string)]++
		}
		return len(l) == 4
	}, "4 servers active")
	if hosts["compute1"] != 2 || hosts["compute2"] != 2 {
		t.Fatalf("spread %v", hosts)
	}
	if n := len(e.allocs()); n != 4 {
		t.Fatalf("%d consumers", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
