package network

import (
	"fmt"
	"strings"
	"testing"
)

func TestVersionsAndExtensions(t *testing.T) {
	a := newTestAPI(t, Config{})
	r := a.must(a.do("", "GET", "/networking/", nil), 200)
	if !strings.Contains(string(r.body), `"id":"v2.0"`) || !strings.Contains(string(r.body), "http://kumo.test:5000/networking/v2.0/") {
		t.Fatalf("versions: %s", r.body)
	}
	a.must(a.do("", "GET", "/networking/v2.0/", nil), 200)
	r = a.must(a.do("alice", "GET", "/extensions", nil), 200)
	exts := r.json(t)["extensions"].([]any)
	for _, e := range exts {
		m := e.(map[string]any)
		for _, k := range []string{"alias", "name", "description", "updated", "links"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("extension %v lacks %s", m, k)
			}
		}
	}
	a.must(a.do("alice", "GET", "/extensions/router", nil), 200)
	a.expectErr(a.do("alice", "GET", "/extensions/nope", nil), 404, "HTTPNotFound")
	a.expectErr(a.do("", "GET", "/networks", nil), 401, "HTTPUnauthorized")
	a.expectErr(a.do("alice", "GET", "/nothing", nil), 404, "HTTPNotFound")
	a.expectErr(a.do("alice", "PATCH", "/networks", nil), 405, "HTTPMethodNotAllowed")
}

func TestNetworksCRUDAndPolicy(t *testing.T) {
	a := newTestAPI(t, Config{NetworkVLANRanges: []string{"physnet1:100:101"}})
	n := a.create("alice", "networks", "network", map[string]any{"name": "net1", "description": "d"})
	if n["project_id"] != "p-alice" || n["tenant_id"] != "p-alice" || n["status"] != "ACTIVE" || n["mtu"].(float64) != 1500 {
		t.Fatalf("network: %v", n)
	}
	if _, ok := n["provider:network_type"]; ok {
		t.Fatalf("non-admin sees provider attributes: %v", n)
	}
	id := n["id"].(string)
	// Admin sees the VLAN segment from the tenant range.
	r := a.must(a.do("admin", "GET", "/networks/"+id, nil), 200)
	an := r.json(t)["network"].(map[string]any)
	if an["provider:network_type"] != "vlan" || an["provider:physical_network"] != "physnet1" || an["provider:segmentation_id"].(float64) != 100 {
		t.Fatalf("admin view: %v", an)
	}
	// Bob cannot see it; shared makes it visible.
	a.expectErr(a.do("bob", "GET", "/networks/"+id, nil), 404, "NetworkNotFound")
	a.expectErr(a.do("alice", "PUT", "/networks/"+id, map[string]any{"network": map[string]any{"shared": true}}), 403, "PolicyNotAuthorized")
	a.must(a.do("admin", "PUT", "/networks/"+id, map[string]any{"network": map[string]any{"shared": true}}), 200)
	a.must(a.do("bob", "GET", "/networks/"+id, nil), 200)
	a.expectErr(a.do("bob", "PUT", "/networks/"+id, map[string]any{"network": map[string]any{"name": "x"}}), 403, "PolicyNotAuthorized")
	// Non-admins cannot create provider or external networks.
	a.expectErr(a.do("alice", "POST", "/networks", map[string]any{"network": map[string]any{"provider:network_type": "vlan"}}), 403, "PolicyNotAuthorized")
	a.expectErr(a.do("alice", "POST", "/networks", map[string]any{"network": map[string]any{"router:external": true}}), 403, "PolicyNotAuthorized")
	// VLAN range exhaustion and taken ids.
	a.create("alice", "networks", "network", map[string]any{})
	a.expectErr(a.do("alice", "POST", "/networks", map[string]any{"network": map[string]any{}}), 503, "NoNetworkAvailable")
	a.expectErr(a.do("admin", "POST", "/networks", map[string]any{"network": map[string]any{"provider:network_type": "vlan",
		"provider:physical_network": "physnet1", "provider:segmentation_id": 100}}), 409, "VlanIdInUse")
	a.expectErr(a.do("admin", "POST", "/networks", map[string]any{"network": map[string]any{"provider:network_type": "vlan",
		"provider:physical_network": "physnet1", "provider:segmentation_id": 5000}}), 400, "InvalidInput")
	a.expectErr(a.do("admin", "POST", "/networks", map[string]any{"network": map[string]any{"provider:network_type": "vlan",
		"provider:physical_network": "nope", "provider:segmentation_id": 5}}), 400, "InvalidInput")
	a.expectErr(a.do("admin", "POST", "/networks", map[string]any{"network": map[string]any{"provider:network_type": "gre"}}), 400, "InvalidInput")
	flat := map[string]any{"network": map[string]any{"provider:network_type": "flat", "provider:physical_network": "ext", "router:external": true}}
	a.must(a.do("admin", "POST", "/networks", flat), 201)
	a.expectErr(a.do("admin", "POST", "/networks", flat), 409, "FlatNetworkInUse")
	vx := a.create("admin", "networks", "network", map[string]any{"provider:network_type": "vxlan", "provider:segmentation_id": 77})
	if vx["mtu"].(float64) != 1450 || vx["provider:segmentation_id"].(float64) != 77 {
		t.Fatalf("vxlan: %v", vx)
	}
	// External networks are visible to everyone.
	r = a.must(a.do("bob", "GET", "/networks?router:external=true", nil), 200)
	if got := len(r.json(t)["networks"].([]any)); got != 1 {
		t.Fatalf("bob sees %d external networks", got)
	}
	// Bad input.
	a.expectErr(a.do("alice", "POST", "/networks", `{"network": {`), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "POST", "/networks", `{"network": {"admin_state_up": "maybe"}}`), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "POST", "/networks", `{"network": {"bogus": 1}}`), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "POST", "/networks", `{"network": {"id": "x"}}`), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "POST", "/networks", `{"nothing": {}}`), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "GET", "/networks/not-a-uuid", nil), 404, "NetworkNotFound")
	a.expectErr(a.do("alice", "PUT", "/networks/"+id, `{"network": {"provider:network_type": "flat"}}`), 403, "PolicyNotAuthorized")
	// If-Match.
	rev := int(an["revision_number"].(float64)) + 1 // the share bumped it
	a.expectErr(a.do("alice", "PUT", "/networks/"+id, map[string]any{"network": map[string]any{"name": "y"}}, "If-Match", "revision_number=999"), 412, "RevisionNumberConstraintFailed")
	r = a.must(a.do("alice", "PUT", "/networks/"+id, map[string]any{"network": map[string]any{"name": "y"}}, "If-Match", fmt.Sprintf("revision_number=%d", rev)), 200)
	if got := r.json(t)["network"].(map[string]any)["revision_number"].(float64); int(got) != rev+1 {
		t.Fatalf("revision %v, want %d", got, rev+1)
	}
	// Delete, with a port in the way first.
	a.create("alice", "ports", "port", map[string]any{"network_id": id})
	a.expectErr(a.do("alice", "DELETE", "/networks/"+id, nil), 409, "NetworkInUse")
	a.expectErr(a.do("bob", "DELETE", "/networks/"+vx["id"].(string), nil), 404, "NetworkNotFound")
	a.must(a.do("admin", "DELETE", "/networks/"+vx["id"].(string), nil), 204)
	a.expectErr(a.do("admin", "GET", "/networks/"+vx["id"].(string), nil), 404, "NetworkNotFound")
}

func TestBulkCreateAllOrNothing(t *testing.T) {
	a := newTestAPI(t, Config{})
	r := a.must(a.do("alice", "POST", "/networks", map[string]any{"networks": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}}), 201)
	if len(r.json(t)["networks"].([]any)) != 2 {
		t.Fatal(string(r.body))
	}
	a.must(a.do("admin", "PUT", "/quotas/p-alice", map[string]any{"quota": map[string]any{"network": 3}}), 200)
	a.expectErr(a.do("alice", "POST", "/networks", map[string]any{"networks": []any{map[string]any{"name": "c"}, map[string]any{"name": "d"}}}), 409, "OverQuota")
	r = a.must(a.do("alice", "GET", "/networks", nil), 200)
	if n := len(r.json(t)["networks"].([]any)); n != 2 {
		t.Fatalf("half-created bulk: %d networks", n)
	}
}

func TestListFiltersSortPaginationFieldsTags(t *testing.T) {
	a := newTestAPI(t, Config{})
	var ids []string
	for i := range 5 {
		n := a.create("alice", "networks", "network", map[string]any{"name": fmt.Sprintf("n%d", i%3), "admin_state_up": i%2 == 0})
		ids = append(ids, n["id"].(string))
	}
	list := func(q string) []map[string]any {
		r := a.must(a.do("alice", "GET", "/networks?"+q, nil), 200)
		var out []map[string]any
		for _, x := range r.json(t)["networks"].([]any) {
			out = append(out, x.(map[string]any))
		}
		return out
	}
	for _, tc := range []struct {
		q    string
		want int
	}{{"name=n0", 2}, {"name=n0&name=n1", 4}, {"admin_state_up=false", 2}, {"admin_state_up=True&name=n0", 1},
		{"id=" + ids[0] + "&id=" + ids[1], 2}, {"shared=false", 5}, {"name=zzz", 0}} {
		if got := len(list(tc.q)); got != tc.want {
			t.Errorf("%s: %d results, want %d", tc.q, got, tc.want)
		}
	}
	a.expectErr(a.do("alice", "GET", "/networks?bogus=1", nil), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "GET", "/networks?admin_state_up=perhaps", nil), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "GET", "/networks?sort_key=bogus", nil), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "GET", "/networks?limit=-1", nil), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "GET", "/networks?limit=1&marker=00000000-0000-0000-0000-000000000000", nil), 404, "NetworkNotFound")
	// Sorting on several keys.
	got := list("sort_key=name&sort_dir=desc&sort_key=id&sort_dir=asc")
	for i := 1; i < len(got); i++ {
		p, c := got[i-1], got[i]
		if p["name"].(string) < c["name"].(string) || p["name"] == c["name"] && p["id"].(string) > c["id"].(string) {
			t.Fatalf("bad order at %d: %v then %v", i, p["name"], c["name"])
		}
	}
	// Pagination walks every network once, forwards and backwards.
	seen := map[string]bool{}
	path := "/networks?limit=2&sort_key=name"
	var last []any
	for path != "" {
		r := a.must(a.do("alice", "GET", path, nil), 200)
		m := r.json(t)
		for _, x := range m["networks"].([]any) {
			id := x.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("id %s twice", id)
			}
			seen[id] = true
		}
		path = ""
		links, _ := m["networks_links"].([]any)
		last = links
		for _, l := range links {
			lm := l.(map[string]any)
			if lm["rel"] == "next" {
				path = strings.TrimPrefix(lm["href"].(string), "http://kumo.test:5000")
			}
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged %d of 5", len(seen))
	}
	var prev string
	for _, l := range last {
		if lm := l.(map[string]any); lm["rel"] == "previous" {
			prev = strings.TrimPrefix(lm["href"].(string), "http://kumo.test:5000")
		}
	}
	if prev == "" {
		t.Fatal("no previous link on the last page")
	}
	r := a.must(a.do("alice", "GET", prev, nil), 200)
	if n := len(r.json(t)["networks"].([]any)); n != 2 {
		t.Fatalf("previous page has %d", n)
	}
	// Fields.
	got = list("fields=id&fields=name")
	if len(got[0]) != 2 {
		t.Fatalf("fields: %v", got[0])
	}
	// Tags.
	a.must(a.do("alice", "PUT", "/networks/"+ids[0]+"/tags", map[string]any{"tags": []string{"red", "blue"}}), 200)
	a.must(a.do("alice", "PUT", "/networks/"+ids[1]+"/tags/red", nil), 201)
	a.must(a.do("alice", "GET", "/networks/"+ids[1]+"/tags/red", nil), 204)
	a.expectErr(a.do("alice", "GET", "/networks/"+ids[1]+"/tags/blue", nil), 404, "TagNotFound")
	a.expectErr(a.do("alice", "DELETE", "/networks/"+ids[1]+"/tags/blue", nil), 404, "TagNotFound")
	a.expectErr(a.do("bob", "PUT", "/networks/"+ids[1]+"/tags/x", nil), 404, "NetworkNotFound")
	for _, tc := range []struct {
		q    string
		want int
	}{{"tags=red", 2}, {"tags=red,blue", 1}, {"tags-any=blue,green", 1}, {"not-tags=red,blue", 4}, {"not-tags-any=red", 3}} {
		if got := len(list(tc.q)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.q, got, tc.want)
		}
	}
	r = a.must(a.do("alice", "GET", "/networks/"+ids[0]+"/tags", nil), 200)
	if !strings.Contains(string(r.body), `["blue","red"]`) {
		t.Fatalf("tags: %s", r.body)
	}
	a.must(a.do("alice", "DELETE", "/networks/"+ids[0]+"/tags/red", nil), 204)
	a.must(a.do("alice", "DELETE", "/networks/"+ids[0]+"/tags", nil), 204)
	r = a.must(a.do("alice", "GET", "/networks/"+ids[0], nil), 200)
	if !strings.Contains(string(r.body), `"tags":[]`) {
		t.Fatalf("tags after clear: %s", r.body)
	}
}

func TestSubnets(t *testing.T) {
	a := newTestAPI(t, Config{})
	n := a.create("alice", "networks", "network", map[string]any{})
	nid := n["id"].(string)
	sub := func(body map[string]any) resp {
		body["network_id"] = nid
		if _, ok := body["ip_version"]; !ok {
			body["ip_version"] = 4
		}
		return a.do("alice", "POST", "/subnets", map[string]any{"subnet": body})
	}
	s1 := a.must(sub(map[string]any{"cidr": "10.0.0.0/24", "dns_nameservers": []string{"8.8.8.8"}, "host_routes": []any{map[string]any{"destination": "192.168.0.0/24", "nexthop": "10.0.0.5"}}}), 201).json(t)["subnet"].(map[string]any)
	if s1["gateway_ip"] != "10.0.0.1" {
		t.Fatalf("subnet: %v", s1)
	}
	a.expectErr(sub(map[string]any{"cidr": "10.0.0.128/25"}), 400, "InvalidInput")
	a.expectErr(sub(map[string]any{"cidr": "10.0.1.5/24"}), 400, "HTTPBadRequest")
	a.expectErr(sub(map[string]any{"cidr": "garbage"}), 400, "HTTPBadRequest")
	a.expectErr(sub(map[string]any{"cidr": "2001:db8::/64"}), 400, "InvalidInput")
	a.expectErr(sub(map[string]any{"cidr": "10.0.2.0/24", "allocation_pools": []any{map[string]any{"start": "10.0.3.1", "end": "10.0.3.9"}}}), 400, "OutOfBoundsAllocationPool")
	a.expectErr(sub(map[string]any{"cidr": "10.0.2.0/24", "allocation_pools": []any{map[string]any{"start": "10.0.2.1", "end": "10.0.2.9"}}}), 409, "GatewayConflictWithAllocationPools")
	a.expectErr(sub(map[string]any{"cidr": "10.0.2.0/24", "allocation_pools": []any{map[string]any{"start": "10.0.2.5", "end": "10.0.2.9"}, map[string]any{"start": "10.0.2.8", "end": "10.0.2.20"}}}), 400, "OverlappingAllocationPools")
	a.expectErr(sub(map[string]any{"cidr": "10.0.2.0/24", "ip_version": 5}), 400, "HTTPBadRequest")
	a.expectErr(sub(map[string]any{"cidr": "10.0.2.0/24", "dns_nameservers": []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6"}}), 400, "DNSNameServersExhausted")
	a.expectErr(a.do("alice", "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": "nope", "cidr": "10.9.0.0/24", "ip_version": 4}}), 400, "HTTPBadRequest")
	a.expectErr(a.do("bob", "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4}}), 404, "NetworkNotFound")
	// gateway null, IPv6 SLAAC.
	s2 := a.must(sub(map[string]any{"cidr": "10.0.5.0/24", "gateway_ip": nil}), 201).json(t)["subnet"].(map[string]any)
	if s2["gateway_ip"] != nil || s2["allocation_pools"].([]any)[0].(map[string]any)["start"] != "10.0.5.1" {
		t.Fatalf("no-gateway subnet: %v", s2)
	}
	s6 := a.must(sub(map[string]any{"cidr": "2001:db8::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}), 201).json(t)["subnet"].(map[string]any)
	a.expectErr(sub(map[string]any{"cidr": "2001:db9::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}), 400, "InvalidInput")
	a.expectErr(sub(map[string]any{"cidr": "2001:dba::/80", "ip_version": 6, "ipv6_address_mode": "slaac"}), 400, "InvalidInput")
	a.expectErr(sub(map[string]any{"cidr": "10.0.9.0/24", "ipv6_address_mode": "slaac"}), 400, "InvalidInput")
	p := a.create("alice", "ports", "port", map[string]any{"network_id": nid})
	if fips := p["fixed_ips"].([]any); len(fips) != 2 {
		t.Fatalf("port on v4+slaac: %v", fips)
	}
	// Explicit fixed_ips on the IPv4 subnet: the SLAAC address comes too
	// (Neutron includes auto-address subnets implicitly), but not for a
	// router interface.
	for _, tc := range []struct {
		owner string
		want  int
	}{{"", 2}, {"compute:nova", 2}, {"network:router_interface", 1}} {
		px := a.create("admin", "ports", "port", map[string]any{"network_id": nid, "device_owner": tc.owner,
			"fixed_ips": []any{map[string]any{"subnet_id": s1["id"]}}})
		fips := px["fixed_ips"].([]any)
		if len(fips) != tc.want || (tc.want == 2 && !strings.HasPrefix(fips[1].(map[string]any)["ip_address"].(string), "2001:db8::")) {
			t.Errorf("explicit v4 port (owner %q): %v", tc.owner, fips)
		}
		a.must(a.do("admin", "DELETE", "/ports/"+px["id"].(string), nil), 204)
	}
	// Update.
	r := a.must(a.do("alice", "PUT", "/subnets/"+s2["id"].(string), map[string]any{"subnet": map[string]any{"name": "x", "gateway_ip": "10.0.5.254",
		"allocation_pools": []any{map[string]any{"start": "10.0.5.10", "end": "10.0.5.20"}}}}), 200)
	if !strings.Contains(string(r.body), `"gateway_ip":"10.0.5.254"`) {
		t.Fatal(string(r.body))
	}
	a.expectErr(a.do("alice", "PUT", "/subnets/"+s2["id"].(string), map[string]any{"subnet": map[string]any{"cidr": "10.0.6.0/24"}}), 400, "HTTPBadRequest")
	// Delete: in use, then free.
	a.expectErr(a.do("alice", "DELETE", "/subnets/"+s1["id"].(string), nil), 409, "SubnetInUse")
	a.must(a.do("alice", "DELETE", "/subnets/"+s6["id"].(string), nil), 204) // SLAAC addresses go with it
	a.must(a.do("alice", "DELETE", "/ports/"+p["id"].(string), nil), 204)
	a.must(a.do("alice", "DELETE", "/subnets/"+s1["id"].(string), nil), 204)
	a.expectErr(a.do("alice", "GET", "/subnets/"+s1["id"].(string), nil), 404, "SubnetNotFound")
	r = a.must(a.do("alice", "GET", "/subnets?ip_version=4&fields=cidr", nil), 200)
	if !strings.Contains(string(r.body), `"subnets":[{"cidr":"10.0.5.0/24"}]`) {
		t.Fatal(string(r.body))
	}
}

func TestPortsIPAM(t *testing.T) {
	a := newTestAPI(t, Config{BaseMAC: "fa:16:3f:00:00:00"})
	nid, sid := a.netWithSubnet("alice", "10.0.0.0/29") // .2-.6 usable
	p := a.create("alice", "ports", "port", map[string]any{"network_id": nid, "name": "p1", "device_owner": "compute:nova", "device_id": "vm1"})
	if !strings.HasPrefix(p["mac_address"].(string), "fa:16:3f:") || p["status"] != "DOWN" {
		t.Fatalf("port: %v", p)
	}
	if ip := p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "10.0.0.2" {
		t.Fatalf("first ip %v", ip)
	}
	if _, ok := p["binding:vif_type"]; ok {
		t.Fatal("non-admin sees binding details")
	}
	fixed := func(ip string) map[string]any {
		return map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid, "ip_address": ip}}}
	}
	a.create("alice", "ports", "port", fixed("10.0.0.5"))
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": fixed("10.0.0.5")}), 409, "IpAddressAlreadyAllocated")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": fixed("10.0.0.1")}), 409, "IpAddressAlreadyAllocated")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": fixed("10.0.1.5")}), 400, "InvalidIpForSubnet")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": fixed("10.0.0.7")}), 400, "InvalidIpForSubnet")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "192.168.0.1"}}}}), 400, "InvalidIpForNetwork")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "bad"}}}}), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "mac_address": p["mac_address"]}}), 409, "MacAddressInUse")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "mac_address": "01:00:00:00:00:01"}}), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "binding:host_id": "h1"}}), 403, "PolicyNotAuthorized")
	a.expectErr(a.do("bob", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid}}), 404, "NetworkNotFound")
	// Exhaust: .3, .4, .6 left.
	for range 3 {
		a.create("alice", "ports", "port", map[string]any{"network_id": nid})
	}
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid}}), 409, "IpAddressGenerationFailure")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid}}}}), 409, "IpAddressGenerationFailure")
	// Update: change IP, name; admin binds it.
	id := p["id"].(string)
	a.must(a.do("alice", "DELETE", "/ports/"+a.create("admin", "ports", "port", map[string]any{"network_id": nid, "fixed_ips": []any{}})["id"].(string), nil), 204)
	r := a.must(a.do("admin", "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"binding:host_id": "host1", "name": "bound"}}), 200)
	bp := r.json(t)["port"].(map[string]any)
	if bp["binding:vif_type"] != "bridge" || bp["binding:host_id"] != "host1" || bp["binding:vif_details"].(map[string]any)["bridge_name"] == nil {
		t.Fatalf("binding: %v", bp)
	}
	a.expectErr(a.do("alice", "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"network_id": nid}}), 400, "HTTPBadRequest")
	a.expectErr(a.do("alice", "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.1.0.0/24"}, map[string]any{"ip_address": "10.1.0.0/24"}}}}), 400, "DuplicateAddressPairInRequest")
	r = a.must(a.do("alice", "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.1.0.0/24"}}}}), 200)
	if !strings.Contains(string(r.body), `"allowed_address_pairs":[{"ip_address":"10.1.0.0/24","mac_address":""}]`) {
		t.Fatal(string(r.body))
	}
	a.expectErr(a.do("alice", "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"port_security_enabled": false}}), 409, "AddressPairAndPortSecurityRequired")
	a.must(a.do("alice", "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []string{}, "allowed_address_pairs": []any{}}}), 200)
	// Filters on fixed_ips and device.
	r = a.must(a.do("alice", "GET", "/ports?fixed_ips=ip_address%3D10.0.0.5", nil), 200)
	if n := len(r.json(t)["ports"].([]any)); n != 1 {
		t.Fatalf("fixed_ips filter: %d", n)
	}
	r = a.must(a.do("alice", "GET", "/ports?device_id=vm1&device_owner=compute:nova", nil), 200)
	if n := len(r.json(t)["ports"].([]any)); n != 1 {
		t.Fatalf("device filter: %d", n)
	}
	// Freed addresses are reused.
	a.must(a.do("alice", "DELETE", "/ports/"+id, nil), 204)
	a.expectErr(a.do("alice", "DELETE", "/ports/"+id, nil), 404, "PortNotFound")
	p2 := a.create("alice", "ports", "port", map[string]any{"network_id": nid})
	if ip := p2["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "10.0.0.2" {
		t.Fatalf("reuse: %v", ip)
	}
}

func TestSecurityGroups(t *testing.T) {
	a := newTestAPI(t, Config{})
	g := a.create("alice", "security-groups", "security_group", map[string]any{"name": "web"})
	gid := g["id"].(string)
	if len(g["security_group_rules"].([]any)) != 2 {
		t.Fatalf("new group rules: %v", g["security_group_rules"])
	}
	rule := map[string]any{"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}
	rr := a.create("alice", "security-group-rules", "security_group_rule", rule)
	a.expectErr(a.do("alice", "POST", "/security-group-rules", map[string]any{"security_group_rule": rule}), 409, "SecurityGroupRuleExists")
	bad := func(over map[string]any, status int, typ string) {
		t.Helper()
		b := map[string]any{"security_group_id": gid, "direction": "ingress"}
		for k, v := range over {
			b[k] = v
		}
		a.expectErr(a.do("alice", "POST", "/security-group-rules", map[string]any{"security_group_rule": b}), status, typ)
	}
	bad(map[string]any{"direction": "sideways"}, 400, "HTTPBadRequest")
	bad(map[string]any{"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType")
	bad(map[string]any{"protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol")
	bad(map[string]any{"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400, "SecurityGroupInvalidPortRange")
	bad(map[string]any{"protocol": "tcp", "port_range_min": 0, "port_range_max": 80}, 400, "SecurityGroupInvalidPortValue")
	bad(map[string]any{"protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType")
	bad(map[string]any{"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, 400, "SecurityGroupInvalidProtocolForPortRange")
	bad(map[string]any{"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": gid}, 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix")
	bad(map[string]any{"remote_ip_prefix": "2001:db8::/64"}, 400, "SecurityGroupRuleParameterConflict")
	bad(map[string]any{"remote_group_id": "00000000-0000-0000-0000-000000000000"}, 404, "SecurityGroupNotFound")
	bad(map[string]any{"security_group_id": "00000000-0000-0000-0000-000000000000"}, 404, "SecurityGroupNotFound")
	a.expectErr(a.do("bob", "POST", "/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": gid, "direction": "ingress"}}), 404, "SecurityGroupNotFound")
	a.must(a.do("alice", "GET", "/security-group-rules/"+rr["id"].(string), nil), 200)
	a.expectErr(a.do("bob", "GET", "/security-group-rules/"+rr["id"].(string), nil), 404, "SecurityGroupRuleNotFound")
	// Ports use the default group; the group in use cannot be deleted.
	nid, _ := a.netWithSubnet("alice", "10.0.0.0/24")
	p := a.create("alice", "ports", "port", map[string]any{"network_id": nid, "security_groups": []string{gid}})
	a.expectErr(a.do("alice", "DELETE", "/security-groups/"+gid, nil), 409, "SecurityGroupInUse")
	r := a.must(a.do("alice", "GET", "/security-groups?name=default", nil), 200)
	def := r.json(t)["security_groups"].([]any)[0].(map[string]any)
	a.expectErr(a.do("alice", "DELETE", "/security-groups/"+def["id"].(string), nil), 409, "SecurityGroupCannotRemoveDefault")
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "security_groups": []string{"00000000-0000-0000-0000-000000000000"}}}), 404, "SecurityGroupNotFound")
	a.must(a.do("alice", "PUT", "/ports/"+p["id"].(string), map[string]any{"port": map[string]any{"security_groups": []string{}}}), 200)
	a.must(a.do("alice", "PUT", "/security-groups/"+gid, map[string]any{"security_group": map[string]any{"name": "web2", "stateful": false}}), 200)
	a.must(a.do("alice", "DELETE", "/security-group-rules/"+rr["id"].(string), nil), 204)
	a.must(a.do("alice", "DELETE", "/security-groups/"+gid, nil), 204)
	a.expectErr(a.do("alice", "GET", "/security-groups/"+gid, nil), 404, "SecurityGroupNotFound")
}

func TestRoutersAndFloatingIPs(t *testing.T) {
	a := newTestAPI(t, Config{})
	ext := a.create("admin", "networks", "network", map[string]any{"router:external": true, "provider:network_type": "flat", "provider:physical_network": "public"})
	extID := ext["id"].(string)
	a.create("admin", "subnets", "subnet", map[string]any{"network_id": extID, "cidr": "203.0.113.0/24", "ip_version": 4})
	nid, sid := a.netWithSubnet("alice", "10.0.0.0/24")
	rt := a.create("alice", "routers", "router", map[string]any{"name": "r1", "external_gateway_info": map[string]any{"network_id": extID}})
	rid := rt["id"].(string)
	gw := rt["external_gateway_info"].(map[string]any)
	if gw["enable_snat"] != true || len(gw["external_fixed_ips"].([]any)) != 1 {
		t.Fatalf("gateway: %v", gw)
	}
	a.expectErr(a.do("alice", "POST", "/routers", map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": extID, "enable_snat": false}}}), 403, "PolicyNotAuthorized")
	a.expectErr(a.do("alice", "POST", "/routers", map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": nid}}}), 400, "BadRequest")
	r := a.must(a.do("alice", "PUT", "/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sid}), 200)
	iface := r.json(t)
	if iface["subnet_id"] != sid || iface["port_id"] == "" {
		t.Fatalf("interface: %v", iface)
	}
	a.expectErr(a.do("alice", "PUT", "/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sid}), 400, "BadRequest")
	a.expectErr(a.do("alice", "PUT", "/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sid, "port_id": sid}), 400, "BadRequest")
	a.expectErr(a.do("alice", "DELETE", "/ports/"+iface["port_id"].(string), nil), 409, "L3PortInUse")
	// Extra routes must go through a connected subnet.
	a.expectErr(a.do("alice", "PUT", "/routers/"+rid, map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "192.168.0.0/24", "nexthop": "172.16.0.1"}}}}), 400, "InvalidRoutes")
	a.must(a.do("alice", "PUT", "/routers/"+rid+"/add_extraroutes", map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "192.168.0.0/24", "nexthop": "10.0.0.50"}}}}), 200)
	a.expectErr(a.do("alice", "PUT", "/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sid}), 409, "RouterInterfaceInUse")
	a.must(a.do("alice", "PUT", "/routers/"+rid+"/remove_extraroutes", map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "192.168.0.0/24", "nexthop": "10.0.0.50"}}}}), 200)
	// Floating IP.
	vm := a.create("alice", "ports", "port", map[string]any{"network_id": nid})
	fip := a.create("alice", "floatingips", "floatingip", map[string]any{"floating_network_id": extID, "port_id": vm["id"]})
	if fip["router_id"] != rid || fip["status"] != "ACTIVE" || !strings.HasPrefix(fip["floating_ip_address"].(string), "203.0.113.") {
		t.Fatalf("fip: %v", fip)
	}
	a.expectErr(a.do("alice", "POST", "/floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": nid}}), 400, "BadRequest")
	a.expectErr(a.do("alice", "POST", "/floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": extID, "port_id": vm["id"]}}), 409, "FloatingIPPortAlreadyAssociated")
	a.expectErr(a.do("alice", "PUT", "/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sid}), 409, "RouterInterfaceInUseByFloatingIP")
	a.expectErr(a.do("alice", "DELETE", "/routers/"+rid, nil), 409, "RouterInUse")
	a.must(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"port_id": nil}}), 200)
	a.must(a.do("alice", "PUT", "/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sid}), 200)
	a.expectErr(a.do("alice", "PUT", "/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sid}), 404, "RouterInterfaceNotFoundForSubnet")
	a.expectErr(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"port_id": vm["id"]}}), 404, "ExternalGatewayForFloatingIPNotFound")
	a.must(a.do("alice", "DELETE", "/floatingips/"+fip["id"].(string), nil), 204)
	a.expectErr(a.do("admin", "DELETE", "/networks/"+nid, nil), 409, "NetworkInUse")
	a.must(a.do("alice", "DELETE", "/routers/"+rid, nil), 204)
	a.expectErr(a.do("alice", "GET", "/routers/"+rid, nil), 404, "RouterNotFound")
	// The gateway port went with the router.
	r = a.must(a.do("admin", "GET", "/ports?network_id="+extID, nil), 200)
	if n := len(r.json(t)["ports"].([]any)); n != 0 {
		t.Fatalf("%d ports left on the external network", n)
	}
}

func TestQuotasSubnetPoolsAndMore(t *testing.T) {
	a := newTestAPI(t, Config{})
	r := a.must(a.do("alice", "GET", "/quotas/p-alice", nil), 200)
	if r.json(t)["quota"].(map[string]any)["network"].(float64) != 100 {
		t.Fatal(string(r.body))
	}
	a.expectErr(a.do("alice", "PUT", "/quotas/p-alice", map[string]any{"quota": map[string]any{"network": 1}}), 403, "PolicyNotAuthorized")
	a.expectErr(a.do("bob", "GET", "/quotas/p-alice", nil), 403, "PolicyNotAuthorized")
	a.must(a.do("admin", "PUT", "/quotas/p-alice", map[string]any{"quota": map[string]any{"port": 1}}), 200)
	nid, _ := a.netWithSubnet("alice", "10.0.0.0/24")
	a.create("alice", "ports", "port", map[string]any{"network_id": nid})
	a.expectErr(a.do("alice", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid}}), 409, "OverQuota")
	r = a.must(a.do("alice", "GET", "/quotas/p-alice/details.json", nil), 200)
	if !strings.Contains(string(r.body), `"port":{"limit":1,"reserved":0,"used":1}`) {
		t.Fatal(string(r.body))
	}
	a.must(a.do("admin", "GET", "/quotas", nil), 200)
	a.must(a.do("admin", "DELETE", "/quotas/p-alice", nil), 204)
	// Subnet pools.
	pool := a.create("alice", "subnetpools", "subnetpool", map[string]any{"name": "pool", "prefixes": []string{"10.100.0.0/16"}, "default_prefixlen": 24})
	s := a.create("alice", "subnets", "subnet", map[string]any{"network_id": nid, "ip_version": 4, "subnetpool_id": pool["id"]})
	if s["cidr"] != "10.100.0.0/24" {
		t.Fatalf("pool subnet %v", s["cidr"])
	}
	s2 := a.create("alice", "subnets", "subnet", map[string]any{"network_id": nid, "ip_version": 4, "subnetpool_id": pool["id"], "prefixlen": 26})
	if s2["cidr"] != "10.100.1.0/26" {
		t.Fatalf("pool subnet %v", s2["cidr"])
	}
	a.expectErr(a.do("alice", "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": nid, "ip_version": 4, "subnetpool_id": pool["id"], "prefixlen": 4}}), 400, "IllegalSubnetPoolPrefixBounds")
	a.expectErr(a.do("alice", "POST", "/subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.0.0.0/8"}, "shared": true}}), 403, "PolicyNotAuthorized")
	a.expectErr(a.do("alice", "DELETE", "/subnetpools/"+pool["id"].(string), nil), 409, "SubnetPoolInUse")
	// IP availability, AZs, agents.
	r = a.must(a.do("admin", "GET", "/network-ip-availabilities/"+nid, nil), 200)
	if !strings.Contains(string(r.body), `"used_ips":1`) {
		t.Fatal(string(r.body))
	}
	a.expectErr(a.do("alice", "GET", "/network-ip-availabilities", nil), 403, "PolicyNotAuthorized")
	a.must(a.do("alice", "GET", "/availability_zones", nil), 200)
	a.must(a.do("admin", "GET", "/agents", nil), 200)
	a.expectErr(a.do("alice", "GET", "/agents", nil), 403, "PolicyNotAuthorized")
}
