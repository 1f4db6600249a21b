package network

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

// TestEnginesEndToEnd runs the core flows on every database engine.
func TestEnginesEndToEnd(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		a := newTestAPIOn(t, d, Config{NetworkVLANRanges: []string{"physnet1:10:12"}})
		nid, sid := a.netWithSubnet("alice", "10.0.0.0/24")
		p := a.create("alice", "ports", "port", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid, "ip_address": "10.0.0.9"}}})
		a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}}), 409, "IpAddressAlreadyAllocated")
		a.must(a.do("alice", "GET", "/ports?limit=1&sort_key=admin_state_up&marker="+p["id"].(string), nil), 200)
		a.must(a.do("alice", "GET", "/networks?limit=1&sort_key=shared&sort_key=mtu&sort_dir=desc&sort_dir=asc", nil), 200)
		a.must(a.do("alice", "PUT", "/ports/"+p["id"].(string)+"/tags/x", nil), 201)
		a.must(a.do("alice", "GET", "/ports?tags=x&not-tags-any=y", nil), 200)
		g := a.create("alice", "security-groups", "security_group", map[string]any{"name": "g"})
		a.create("alice", "security-group-rules", "security_group_rule", map[string]any{"security_group_id": g["id"], "direction": "ingress", "protocol": "icmp"})
		a.expectErr(a.do("alice", "POST", "/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": g["id"], "direction": "ingress", "protocol": "1"}}), 409, "SecurityGroupRuleExists")
		ext := a.create("admin", "networks", "network", map[string]any{"router:external": true})
		a.create("admin", "subnets", "subnet", map[string]any{"network_id": ext["id"], "cidr": "198.51.100.0/24", "ip_version": 4})
		rt := a.create("alice", "routers", "router", map[string]any{"external_gateway_info": map[string]any{"network_id": ext["id"]}})
		a.must(a.do("alice", "PUT", "/routers/"+rt["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": sid}), 200)
		a.create("alice", "floatingips", "floatingip", map[string]any{"floating_network_id": ext["id"], "port_id": p["id"]})
		a.must(a.do("admin", "GET", "/network-ip-availabilities", nil), 200)
	})
}

// TestSegmentAllocation checks VLAN and VXLAN allocation, reuse and
// exhaustion on every engine.
func TestSegmentAllocation(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		s, err := New(testDeps(d), Config{NetworkVLANRanges: []string{"p1:5:7"}, VNIRanges: []string{"100:101"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		alloc := func(typ string) (Segment, error) {
			var seg Segment
			err := s.withTx(ctx, func(tx *txn) error {
				var err error
				if typ == "" {
					seg, err = tx.allocateTenantSegment(ctx)
				} else {
					seg = Segment{NetworkType: typ, PhysicalNetwork: map[string]string{"vlan": "p1"}[typ]}
					err = tx.reserveSegment(ctx, &seg)
				}
				if err != nil {
					return err
				}
				id := newID()
				if _, err := tx.ExecContext(ctx, `INSERT INTO net_networks (id, project_id, status, mtu, created_at, updated_at) VALUES ($1, 'p', 'ACTIVE', 1500, 'x', 'x')`, id); err != nil {
					return err
				}
				return tx.insertSegment(ctx, seg, id)
			})
			return seg, err
		}
		for _, want := range []int{5, 6, 7} {
			seg, err := alloc("")
			if err != nil || seg.NetworkType != "vlan" || seg.SegmentationID != want {
				t.Fatalf("vlan: %+v %v, want %d", seg, err, want)
			}
		}
		if _, err := alloc(""); errCode(err) != "NoNetworkAvailable" {
			t.Fatalf("exhaustion: %v", err)
		}
		if _, err := d.Reader().ExecContext(ctx, `DELETE FROM net_segment_allocations WHERE segmentation_id = 6`); err != nil {
			t.Fatal(err)
		}
		if seg, err := alloc(""); err != nil || seg.SegmentationID != 6 {
			t.Fatalf("reuse: %+v %v", seg, err)
		}
		for _, want := range []int{100, 101} {
			if seg, err := alloc("vxlan"); err != nil || seg.SegmentationID != want {
				t.Fatalf("vxlan: %+v %v", seg, err)
			}
		}
	})
}

// TestConcurrentPortCreates: 200 concurrent creates on a /24 whose pool
// holds 150 addresses: 150 succeed with distinct addresses, 50 fail with
// IpAddressGenerationFailure, nothing else.
func TestConcurrentPortCreates(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		a := newTestAPIOn(t, d, Config{})
		a.must(a.do("admin", "PUT", "/quotas/p-alice", map[string]any{"quota": map[string]any{"port": -1}}), 200)
		n := a.create("alice", "networks", "network", map[string]any{})
		a.create("alice", "subnets", "subnet", map[string]any{"network_id": n["id"], "cidr": "10.1.0.0/24", "ip_version": 4,
			"allocation_pools": []any{map[string]any{"start": "10.1.0.10", "end": "10.1.0.159"}}})
		var mu sync.Mutex
		ips := map[string]bool{}
		codes := map[string]int{}
		var wg sync.WaitGroup
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": n["id"]}})
				mu.Lock()
				defer mu.Unlock()
				switch r.status {
				case 201:
					ip := r.json(t)["port"].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
					if ips[ip] {
						t.Errorf("duplicate IP %s", ip)
					}
					ips[ip] = true
					codes["201"]++
				default:
					codes[fmt.Sprintf("%d %s", r.status, r.errType(t))]++
				}
			}()
		}
		wg.Wait()
		if codes["201"] != 150 || codes["409 IpAddressGenerationFailure"] != 50 {
			t.Fatalf("outcomes: %v", codes)
		}
		var allocs int
		if err := d.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM net_ip_allocations`).Scan(&allocs); err != nil || allocs != 150 {
			t.Fatalf("allocations %d %v", allocs, err)
		}
		for ip := range ips {
			if a := netip.MustParseAddr(ip); a.Compare(netip.MustParseAddr("10.1.0.10")) < 0 || a.Compare(netip.MustParseAddr("10.1.0.159")) > 0 {
				t.Fatalf("ip %s outside the pool", ip)
			}
		}
	})
}
