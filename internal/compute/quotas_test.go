package compute_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func keys(m map[string]any) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestQuotaSetViewsPerVersion(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	all := "cores,fixed_ips,floating_ips,id,injected_file_content_bytes,injected_file_path_bytes,injected_files,instances,key_pairs,metadata_items,ram,security_group_rules,security_groups,server_group_members,server_groups"
	v236 := "cores,id,injected_file_content_bytes,injected_file_path_bytes,injected_files,instances,key_pairs,metadata_items,ram,server_group_members,server_groups"
	v257 := "cores,id,instances,key_pairs,metadata_items,ram,server_group_members,server_groups"
	for _, tc := range []struct{ version, want string }{{"2.1", all}, {"2.35", all}, {"2.36", v236}, {"2.56", v236}, {"2.57", v257}, {"2.96", v257}} {
		for _, path := range []string{"/os-quota-sets/p1", "/os-quota-sets/p1/defaults", "/os-quota-sets/p1/detail"} {
			r := e.do("alice", "GET", v21+path, tc.version, "").Expect(t, 200, "")
			if got := keys(obj(t, r.Body, "quota_set")); got != tc.want {
				t.Errorf("%s at %s: %s", path, tc.version, got)
			}
		}
	}
	qs := obj(t, e.do("alice", "GET", v21+"/os-quota-sets/p1", "", "").Body, "quota_set")
	if qs["id"] != "p1" || qs["key_pairs"] != float64(100) || qs["fixed_ips"] != float64(-1) || qs["ram"] != float64(51200) {
		t.Fatalf("defaults %v", qs)
	}
	// Quota classes: server groups appear and network quotas leave at 2.50.
	for _, tc := range []struct{ version, want string }{
		{"2.1", "cores,fixed_ips,floating_ips,id,injected_file_content_bytes,injected_file_path_bytes,injected_files,instances,key_pairs,metadata_items,ram,security_group_rules,security_groups"},
		{"2.50", "cores,id,injected_file_content_bytes,injected_file_path_bytes,injected_files,instances,key_pairs,metadata_items,ram,server_group_members,server_groups"},
		{"2.57", "cores,id,instances,key_pairs,metadata_items,ram,server_group_members,server_groups"},
	} {
		r := e.do("admin", "GET", v21+"/os-quota-class-sets/default", tc.version, "").Expect(t, 200, "")
		if got := keys(obj(t, r.Body, "quota_class_set")); got != tc.want {
			t.Errorf("class at %s: %s", tc.version, got)
		}
	}
}

func TestQuotaUpdateAndPolicy(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	pub, _ := sshKey(t)
	for i := 0; i < 3; i++ {
		e.do("alice", "POST", v21+"/os-keypairs", "2.2", kpBody(fmt.Sprint("k", i), pub)).Expect(t, 201, "")
	}
	// Detail counts alice's key pairs.
	d := obj(t, e.do("admin", "GET", v21+"/os-quota-sets/p1/detail?user_id=alice", "", "").Expect(t, 200, "").Body, "quota_set")
	if kp := d["key_pairs"].(map[string]any); kp["in_use"] != float64(3) || kp["limit"] != float64(100) || kp["reserved"] != float64(0) {
		t.Fatalf("detail %v", kp)
	}
	// Policy: readers of the project read; others and members cannot write.
	e.do("rob", "GET", v21+"/os-quota-sets/p1", "", "").Expect(t, 200, "")
	e.do("bob", "GET", v21+"/os-quota-sets/p1", "", "").Expect(t, 403, "forbidden")
	e.do("bob", "GET", v21+"/os-quota-sets/p1/detail", "", "").Expect(t, 403, "forbidden")
	e.do("bob", "GET", v21+"/os-quota-sets/p1/defaults", "", "").Expect(t, 200, "")
	e.do("alice", "PUT", v21+"/os-quota-sets/p1", "", `{"quota_set": {"cores": 1}}`).Expect(t, 403, "forbidden")
	e.do("alice", "DELETE", v21+"/os-quota-sets/p1", "", "").Expect(t, 403, "forbidden")
	e.do("alice", "GET", v21+"/os-quota-class-sets/default", "", "").Expect(t, 403, "forbidden")
	e.do("alice", "PUT", v21+"/os-quota-class-sets/default", "", `{"quota_class_set": {"cores": 1}}`).Expect(t, 403, "forbidden")
	// Update: answer has no id; values may be numeric strings.
	r := e.do("admin", "PUT", v21+"/os-quota-sets/p1", "2.57", `{"quota_set": {"cores": "30", "instances": 5}}`).Expect(t, 200, "")
	qs := obj(t, r.Body, "quota_set")
	if _, ok := qs["id"]; ok || qs["cores"] != float64(30) || qs["instances"] != float64(5) {
		t.Fatalf("update %v", qs)
	}
	// Below usage: 400 unless forced.
	e.do("admin", "PUT", v21+"/os-quota-sets/p1?user_id=alice", "", `{"quota_set": {"key_pairs": 2}}`).Expect(t, 400, "badRequest")
	e.do("admin", "PUT", v21+"/os-quota-sets/p1?user_id=alice", "", `{"quota_set": {"key_pairs": 2, "force": true}}`).Expect(t, 200, "")
	// User above project: 400.
	e.do("admin", "PUT", v21+"/os-quota-sets/p1?user_id=alice", "", `{"quota_set": {"cores": 31}}`).Expect(t, 400, "badRequest")
	e.do("admin", "PUT", v21+"/os-quota-sets/p1?user_id=alice", "", `{"quota_set": {"cores": 30}}`).Expect(t, 200, "")
	// Now over quota: key pair create fails with Nova's message.
	r = e.do("alice", "POST", v21+"/os-keypairs", "2.2", kpBody("over", pub)).Expect(t, 403, "forbidden")
	if !strings.Contains(r.Raw, "Maximum number of key pairs exceeded") {
		t.Fatalf("over quota %s", r.Raw)
	}
	// Bad bodies per version.
	for _, tc := range []struct{ version, body string }{
		{"2.1", `{"quota_set": {"cores": -2}}`},
		{"2.1", `{"quota_set": {"cores": "x"}}`},
		{"2.1", `{"quota_set": {"cores": 1.5}}`},
		{"2.1", `{"quota_set": {"bogus": 1}}`},
		{"2.1", `{"quota_set": {"cores": 4294967296}}`},
		{"2.36", `{"quota_set": {"floating_ips": 1}}`},
		{"2.57", `{"quota_set": {"injected_files": 1}}`},
		{"2.1", `{"quota": {}}`},
		{"2.1", `{"quota_set": {"force": "maybe"}}`},
	} {
		e.do("admin", "PUT", v21+"/os-quota-sets/p1", tc.version, tc.body).Expect(t, 400, "badRequest")
	}
	e.do("admin", "PUT", v21+"/os-quota-sets/p1", "2.35", `{"quota_set": {"floating_ips": -1}}`).Expect(t, 200, "")
	// 2.75: unknown query parameters.
	e.do("admin", "GET", v21+"/os-quota-sets/p1?x=1", "2.75", "").Expect(t, 400, "badRequest")
	// Reset restores the defaults.
	e.do("admin", "DELETE", v21+"/os-quota-sets/p1", "", "").Expect(t, 202, "")
	if obj(t, e.do("admin", "GET", v21+"/os-quota-sets/p1?user_id=alice", "", "").Body, "quota_set")["key_pairs"] != float64(100) {
		t.Fatal("reset")
	}
	// Class update changes every project's defaults.
	r = e.do("admin", "PUT", v21+"/os-quota-class-sets/default", "2.57", `{"quota_class_set": {"instances": 50}}`).Expect(t, 200, "")
	if qc := obj(t, r.Body, "quota_class_set"); qc["instances"] != float64(50) {
		t.Fatalf("class %v", qc)
	}
	if obj(t, e.do("bob", "GET", v21+"/os-quota-sets/p2", "", "").Body, "quota_set")["instances"] != float64(50) {
		t.Fatal("class default not applied")
	}
	e.do("admin", "PUT", v21+"/os-quota-class-sets/default", "2.50", `{"quota_class_set": {"floating_ips": 1}}`).Expect(t, 400, "badRequest")
	e.do("admin", "PUT", v21+"/os-quota-class-sets/default", "", `{"quota_class_set": {"force": true}}`).Expect(t, 400, "badRequest")
}

func TestLimits(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	base := "maxServerGroupMembers,maxServerGroups,maxServerMeta,maxTotalCores,maxTotalInstances,maxTotalKeypairs,maxTotalRAMSize,totalCoresUsed,totalInstancesUsed,totalRAMUsed,totalServerGroupsUsed"
	for _, tc := range []struct{ version, want string }{
		{"2.1", "maxImageMeta,maxPersonality,maxPersonalitySize,maxSecurityGroupRules,maxSecurityGroups," + base[:strings.Index(base, "maxTotalCores")] + "maxTotalCores,maxTotalFloatingIps," + base[strings.Index(base, "maxTotalInstances"):strings.Index(base, "totalCoresUsed")] + "totalCoresUsed,totalFloatingIpsUsed,totalInstancesUsed,totalRAMUsed,totalSecurityGroupsUsed,totalServerGroupsUsed"},
		{"2.36", "maxImageMeta,maxPersonality,maxPersonalitySize," + base},
		{"2.39", "maxPersonality,maxPersonalitySize," + base},
		{"2.57", base},
	} {
		r := e.do("alice", "GET", v21+"/limits", tc.version, "").Expect(t, 200, "")
		l := obj(t, r.Body, "limits")
		if got := keys(l["absolute"].(map[string]any)); got != tc.want {
			t.Errorf("%s: %s", tc.version, got)
		}
		if rate, ok := l["rate"].([]any); !ok || len(rate) != 0 {
			t.Errorf("rate %v", l["rate"])
		}
	}
	e.do("admin", "PUT", v21+"/os-quota-sets/p2", "", `{"quota_set": {"cores": 7}}`).Expect(t, 200, "")
	abs := func(tok, q string) map[string]any {
		return obj(t, e.do(tok, "GET", v21+"/limits"+q, "", "").Expect(t, 200, "").Body, "limits")["absolute"].(map[string]any)
	}
	if abs("bob", "")["maxTotalCores"] != float64(7) || abs("admin", "?tenant_id=p2")["maxTotalCores"] != float64(7) {
		t.Fatal("project limits")
	}
	if abs("alice", "?tenant_id=p2")["maxTotalCores"] != float64(20) {
		t.Fatal("non-admin saw another project's limits")
	}
	e.do("alice", "GET", v21+"/limits?foo=1", "2.75", "").Expect(t, 400, "badRequest")
}

func TestAvailabilityZones(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	r := e.do("rob", "GET", v21+"/os-availability-zone", "", "").Expect(t, 200, "")
	z := list(t, r.Body, "availabilityZoneInfo")
	if len(z) != 1 || fmt.Sprint(z[0]) != "map[hosts:<nil> zoneName:nova zoneState:map[available:true]]" {
		t.Fatalf("zones %v", z)
	}
	e.do("alice", "GET", v21+"/os-availability-zone/detail", "", "").Expect(t, 403, "forbidden")
	r = e.do("admin", "GET", v21+"/os-availability-zone/detail", "", "").Expect(t, 200, "")
	if z := list(t, r.Body, "availabilityZoneInfo")[0].(map[string]any); z["zoneName"] != "nova" || z["hosts"] == nil {
		t.Fatalf("detail %v", z)
	}
}

// TestKeypairQuotaConcurrency: with a quota of 10, 30 concurrent creates
// give exactly 10 key pairs and 20 over-quota answers, on every engine.
func TestKeypairQuotaConcurrency(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, compute.Config{DefaultQuotas: map[string]int64{"key_pairs": 10}})
		pub, _ := sshKey(t)
		var wg sync.WaitGroup
		codes := make([]int, 30)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = e.do("alice", "POST", v21+"/os-keypairs", "2.2", kpBody(fmt.Sprint("k", i), pub)).Status
			}()
		}
		wg.Wait()
		count := map[int]int{}
		for _, c := range codes {
			count[c]++
		}
		if count[http.StatusCreated] != 10 || count[http.StatusForbidden] != 20 {
			t.Fatalf("statuses %v", count)
		}
		if n := len(list(t, e.do("alice", "GET", v21+"/os-keypairs", "", "").Body, "keypairs")); n != 10 {
			t.Fatalf("%d key pairs stored", n)
		}
	})
}
