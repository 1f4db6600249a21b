package network

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestCompactPrefixes(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"10.0.0.0/24"}, []string{"10.0.0.0/24"}},
		{[]string{"10.0.1.0/24", "10.0.0.0/24"}, []string{"10.0.0.0/23"}},
		{[]string{"10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/23"}, []string{"10.0.0.0/22"}},
		{[]string{"10.0.1.0/24", "10.0.2.0/24"}, []string{"10.0.1.0/24", "10.0.2.0/24"}}, // not siblings
		{[]string{"10.0.0.0/16", "10.0.5.0/24", "10.0.0.0/16"}, []string{"10.0.0.0/16"}},
		{[]string{"10.0.0.7/24"}, []string{"10.0.0.0/24"}}, // host bits dropped
		{[]string{"192.168.0.0/24", "10.0.0.0/8"}, []string{"10.0.0.0/8", "192.168.0.0/24"}},
		{[]string{"2001:db8::/33", "2001:db8:8000::/33"}, []string{"2001:db8::/32"}},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, []string{"0.0.0.0/0"}},
	} {
		got := prefixStrings(compactPrefixes(prefixes(t, tc.in...)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("compact(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSubtractPrefixes(t *testing.T) {
	for _, tc := range []struct {
		from, rm, want []string
	}{
		{[]string{"10.0.0.0/23"}, []string{"10.0.1.0/24"}, []string{"10.0.0.0/24"}},
		{[]string{"10.0.0.0/22"}, []string{"10.0.0.0/24"}, []string{"10.0.1.0/24", "10.0.2.0/23"}},
		{[]string{"10.0.0.0/24", "10.1.0.0/24"}, []string{"10.1.0.0/16"}, []string{"10.0.0.0/24"}},
		{[]string{"10.0.0.0/24"}, []string{"10.9.0.0/24"}, []string{"10.0.0.0/24"}},
		{[]string{"10.0.0.0/24"}, []string{"10.0.0.0/24"}, nil},
		{[]string{"10.0.0.0/30"}, []string{"10.0.0.1/32"}, []string{"10.0.0.0/32", "10.0.0.2/31"}},
		{[]string{"2001:db8::/32"}, []string{"2001:db8:8000::/33"}, []string{"2001:db8::/33"}},
	} {
		got := prefixStrings(subtractPrefixes(prefixes(t, tc.from...), prefixes(t, tc.rm...)))
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%v - %v = %v, want %v", tc.from, tc.rm, got, tc.want)
		}
	}
}

func TestSubnetPoolPrefixOps(t *testing.T) {
	a := newTestAPI(t, Config{})
	pool := a.create("alice", "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.10.0.0/24"}, "default_prefixlen": 26})
	id := pool["id"].(string)
	prefixesOf := func(r resp) string {
		a.t.Helper()
		var out []string
		for _, p := range r.json(t)["prefixes"].([]any) {
			out = append(out, p.(string))
		}
		return strings.Join(out, ",")
	}
	// Adding the sibling /24 and an unrelated /24: compacted.
	r := a.must(a.do("alice", "PUT", "/subnetpools/"+id+"/add_prefixes", map[string]any{"prefixes": []string{"10.10.1.0/24", "192.168.7.0/24"}}), 200)
	if got := prefixesOf(r); got != "10.10.0.0/23,192.168.7.0/24" {
		t.Fatalf("after add: %s", got)
	}
	show := a.must(a.do("alice", "GET", "/subnetpools/"+id, nil), 200).json(t)["subnetpool"].(map[string]any)
	if show["revision_number"].(float64) != 1 || len(show["prefixes"].([]any)) != 2 {
		t.Fatalf("pool after add: %v", show)
	}
	// A subnet allocated from the pool pins its prefix.
	n := a.create("alice", "networks", "network", map[string]any{"name": "n"})
	s := a.create("alice", "subnets", "subnet", map[string]any{"network_id": n["id"], "ip_version": 4, "subnetpool_id": id})
	if s["cidr"] != "10.10.0.0/26" {
		t.Fatalf("allocated %v", s["cidr"])
	}
	a.expectErr(a.do("alice", "PUT", "/subnetpools/"+id+"/remove_prefixes", map[string]any{"prefixes": []string{"10.10.0.0/24"}}), 400, "IllegalSubnetPoolPrefixUpdate")
	r = a.must(a.do("alice", "PUT", "/subnetpools/"+id+"/remove_prefixes", map[string]any{"prefixes": []string{"10.10.1.0/24", "192.168.7.0/24"}}), 200)
	if got := prefixesOf(r); got != "10.10.0.0/24" {
		t.Fatalf("after remove: %s", got)
	}
	// Bad input.
	for _, tc := range []struct {
		body   any
		status int
		typ    string
	}{
		{map[string]any{"prefixes": []string{"2001:db8::/64"}}, 400, "PrefixVersionMismatch"},
		{map[string]any{"prefixes": []string{"10.0.0.0/33"}}, 400, "HTTPBadRequest"},
		{map[string]any{"prefixes": "10.0.0.0/8"}, 400, "HTTPBadRequest"},
		{map[string]any{"prefix": []string{"10.0.0.0/8"}}, 400, "HTTPBadRequest"},
		{map[string]any{}, 400, "HTTPBadRequest"},
		{"[1]", 400, "HTTPBadRequest"},
	} {
		a.expectErr(a.do("alice", "PUT", "/subnetpools/"+id+"/add_prefixes", tc.body), tc.status, tc.typ)
	}
	a.expectErr(a.do("alice", "PUT", "/subnetpools/"+id+"/remove_prefixes", map[string]any{"prefixes": []string{"10.10.0.0/16"}}), 400, "IllegalSubnetPoolPrefixUpdate")
	// Another project's private pool is not found; an unknown one neither.
	a.expectErr(a.do("bob", "PUT", "/subnetpools/"+id+"/add_prefixes", map[string]any{"prefixes": []string{"10.20.0.0/24"}}), 404, "SubnetPoolNotFound")
	a.expectErr(a.do("alice", "PUT", "/subnetpools/nope/add_prefixes", map[string]any{"prefixes": []string{"10.20.0.0/24"}}), 404, "SubnetPoolNotFound")
	// A shared pool: others see it but may not change it.
	shared := a.create("admin", "subnetpools", "subnetpool", map[string]any{"name": "s", "prefixes": []string{"10.30.0.0/24"}, "shared": true})
	a.expectErr(a.do("bob", "PUT", "/subnetpools/"+shared["id"].(string)+"/add_prefixes", map[string]any{"prefixes": []string{"10.31.0.0/24"}}), 403, "PolicyNotAuthorized")
	a.must(a.do("admin", "PUT", "/subnetpools/"+shared["id"].(string)+"/add_prefixes", map[string]any{"prefixes": []string{"10.31.0.0/24"}}), 200)
	// Within an address scope, pools may not grow into each other.
	scope := a.create("alice", "address-scopes", "address_scope", map[string]any{"name": "sc", "ip_version": 4})
	p1 := a.create("alice", "subnetpools", "subnetpool", map[string]any{"name": "p1", "prefixes": []string{"10.60.0.0/24"}, "address_scope_id": scope["id"]})
	a.create("alice", "subnetpools", "subnetpool", map[string]any{"name": "p2", "prefixes": []string{"10.61.0.0/24"}, "address_scope_id": scope["id"]})
	a.expectErr(a.do("alice", "PUT", "/subnetpools/"+p1["id"].(string)+"/add_prefixes", map[string]any{"prefixes": []string{"10.61.0.0/25"}}), 409, "AddressScopePrefixConflict")
	a.must(a.do("alice", "PUT", "/subnetpools/"+p1["id"].(string)+"/add_prefixes", map[string]any{"prefixes": []string{"10.62.0.0/24"}}), 200)
	// The extension is advertised.
	a.must(a.do("alice", "GET", "/extensions/subnetpool-prefix-ops", nil), 200)
}
