package network

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// onEngines runs an API test on SQLite and, when KUMO_TEST_POSTGRES_DSN
// is set, on PostgreSQL.
func onEngines(t *testing.T, f func(*testing.T, *testAPI)) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) { f(t, newTestAPIOn(t, d, Config{})) })
}

func agBody(m map[string]any) map[string]any { return map[string]any{"address_group": m} }

func TestAddressGroupsAPI(t *testing.T) { onEngines(t, addressGroupsAPI) }

func addressGroupsAPI(t *testing.T, a *testAPI) {
	g := a.create("alice", "address-groups", "address_group", map[string]any{"name": "office", "description": "d",
		"addresses": []string{"10.0.1.34", "192.168.100.7/24", "2001:db8::1/64", "10.0.1.34/32"}})
	want := []any{"10.0.1.34/32", "192.168.100.0/24", "2001:db8::/64"}
	if !reflect.DeepEqual(g["addresses"], want) || g["project_id"] != "p-alice" || g["tenant_id"] != "p-alice" || g["name"] != "office" || g["description"] != "d" {
		t.Fatalf("created: %v", g)
	}
	id := g["id"].(string)
	path := "/address-groups/" + id

	tests := []struct {
		name, token, method, path string
		body                      any
		status                    int
		errType                   string
	}{
		{"bad address", "alice", "POST", "/address-groups", agBody(map[string]any{"addresses": []string{"10.0.0.300"}}), 400, "HTTPBadRequest"},
		{"addresses not a list", "alice", "POST", "/address-groups", agBody(map[string]any{"addresses": "10.0.0.1"}), 400, "HTTPBadRequest"},
		{"unknown attribute", "alice", "POST", "/address-groups", agBody(map[string]any{"shared": true}), 400, "HTTPBadRequest"},
		{"other project hidden", "bob", "GET", path, nil, 404, "AddressGroupNotFound"},
		{"missing", "alice", "GET", "/address-groups/00000000-0000-0000-0000-000000000000", nil, 404, "AddressGroupNotFound"},
		{"addresses not in PUT", "alice", "PUT", path, agBody(map[string]any{"addresses": []string{"10.0.0.1"}}), 400, "HTTPBadRequest"},
		{"add existing", "alice", "PUT", path + "/add_addresses", agBody(map[string]any{"addresses": []string{"10.0.1.34", "10.9.9.9"}}), 400, "AddressesAlreadyExist"},
		{"remove absent", "alice", "PUT", path + "/remove_addresses", agBody(map[string]any{"addresses": []string{"10.9.9.9/32"}}), 404, "AddressesNotFound"},
		{"unwrapped with extra keys", "alice", "PUT", path + "/add_addresses", map[string]any{"addresses": []string{"10.9.9.9"}, "name": "x"}, 400, "HTTPBadRequest"},
		{"malformed body", "alice", "PUT", path + "/add_addresses", "{", 400, "HTTPBadRequest"},
		{"add without addresses", "alice", "PUT", path + "/add_addresses", agBody(map[string]any{}), 400, "HTTPBadRequest"},
		{"add bad address", "alice", "PUT", path + "/add_addresses", agBody(map[string]any{"addresses": []string{"nope"}}), 400, "HTTPBadRequest"},
		{"add other project", "bob", "PUT", path + "/add_addresses", agBody(map[string]any{"addresses": []string{"10.9.9.9"}}), 404, "AddressGroupNotFound"},
		{"reader cannot add", "aliceread", "PUT", path + "/add_addresses", agBody(map[string]any{"addresses": []string{"10.9.9.9"}}), 403, "PolicyNotAuthorized"},
		{"reader cannot create", "aliceread", "POST", "/address-groups", agBody(map[string]any{}), 403, "PolicyNotAuthorized"},
		{"stale revision", "alice", "PUT", path + "/add_addresses", agBody(map[string]any{"addresses": []string{"10.9.9.9"}}), 412, "RevisionNumberConstraintFailed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.status == 412 {
				hdr = []string{"If-Match", "revision_number=99"}
			}
			a.expectErr(a.do(tc.token, tc.method, tc.path, tc.body, hdr...), tc.status, tc.errType)
		})
	}
	// Failed actions changed nothing.
	if got := a.must(a.do("alice", "GET", path, nil), 200).json(t)["address_group"].(map[string]any); !reflect.DeepEqual(got["addresses"], want) {
		t.Fatalf("after failed changes: %v", got)
	}

	// add_addresses and remove_addresses, on both spellings of the path.
	r := a.must(a.do("alice", "PUT", path+"/add_addresses", agBody(map[string]any{"addresses": []string{"10.0.2.100"}})), 200).json(t)["address_group"].(map[string]any)
	if !slices.Contains(r["addresses"].([]any), "10.0.2.100/32") || r["revision_number"].(float64) != 1 {
		t.Fatalf("add_addresses: %v", r)
	}
	// openstacksdk (like Neutron) sends the addresses unwrapped.
	r = a.must(a.do("alice", "PUT", "/address-group/"+id+"/remove_addresses", map[string]any{"addresses": []string{"10.0.1.34/32", "2001:db8::/64"}}), 200).json(t)["address_group"].(map[string]any)
	if !reflect.DeepEqual(r["addresses"], []any{"10.0.2.100/32", "192.168.100.0/24"}) {
		t.Fatalf("remove_addresses: %v", r)
	}
	r = a.must(a.do("alice", "PUT", path, agBody(map[string]any{"name": "office2"})), 200).json(t)["address_group"].(map[string]any)
	if r["name"] != "office2" || len(r["addresses"].([]any)) != 2 {
		t.Fatalf("update: %v", r)
	}

	// Lists: own groups only, filters, fields, pagination.
	a.create("bob", "address-groups", "address_group", map[string]any{"name": "bobs"})
	a.create("alice", "address-groups", "address_group", map[string]any{"name": "second"})
	if got := a.must(a.do("alice", "GET", "/address-groups", nil), 200).json(t)["address_groups"].([]any); len(got) != 2 {
		t.Fatalf("alice lists %d groups", len(got))
	}
	if got := a.must(a.do("admin", "GET", "/address-groups", nil), 200).json(t)["address_groups"].([]any); len(got) != 3 {
		t.Fatalf("admin lists %d groups", len(got))
	}
	got := a.must(a.do("alice", "GET", "/address-groups?name=office2&fields=id&fields=addresses", nil), 200).json(t)["address_groups"].([]any)
	if len(got) != 1 || len(got[0].(map[string]any)) != 2 {
		t.Fatalf("filtered list: %v", got)
	}
	page := a.must(a.do("alice", "GET", "/address-groups?limit=1&sort_key=name&sort_dir=asc", nil), 200).json(t)
	if l := page["address_groups"].([]any); len(l) != 1 || l[0].(map[string]any)["name"] != "office2" || page["address_groups_links"] == nil {
		t.Fatalf("page: %v", page)
	}
	a.expectErr(a.do("alice", "GET", "/address-groups?bogus=1", nil), 400, "HTTPBadRequest")

	// Rules refer to it; a group in use cannot be deleted.
	sg := a.create("alice", "security-groups", "security_group", map[string]any{"name": "web"})
	rule := a.create("alice", "security-group-rules", "security_group_rule", map[string]any{"security_group_id": sg["id"],
		"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_address_group_id": id})
	if rule["remote_address_group_id"] != id || rule["remote_ip_prefix"] != nil || rule["remote_group_id"] != nil {
		t.Fatalf("rule: %v", rule)
	}
	if got := a.must(a.do("alice", "GET", "/security-group-rules?remote_address_group_id="+id, nil), 200).json(t)["security_group_rules"].([]any); len(got) != 1 {
		t.Fatalf("rules filtered by address group: %v", got)
	}
	shown := a.must(a.do("alice", "GET", "/security-groups/"+sg["id"].(string), nil), 200).json(t)["security_group"].(map[string]any)
	found := false
	for _, x := range shown["security_group_rules"].([]any) {
		found = found || x.(map[string]any)["remote_address_group_id"] == id
	}
	if !found {
		t.Fatalf("group view lacks the rule's remote_address_group_id: %v", shown)
	}
	a.expectErr(a.do("alice", "DELETE", path, nil), 409, "AddressGroupInUse")
	a.must(a.do("alice", "DELETE", "/security-group-rules/"+rule["id"].(string), nil), 204)
	a.must(a.do("alice", "DELETE", path, nil), 204)
	a.expectErr(a.do("alice", "DELETE", path, nil), 404, "AddressGroupNotFound")
}

func TestRemoteAddressGroupRuleErrors(t *testing.T) { onEngines(t, remoteAddressGroupRuleErrors) }

func remoteAddressGroupRuleErrors(t *testing.T, a *testAPI) {
	ag := a.create("alice", "address-groups", "address_group", map[string]any{"addresses": []string{"192.0.2.0/24"}})["id"].(string)
	bobs := a.create("bob", "address-groups", "address_group", map[string]any{})["id"].(string)
	sg := a.create("alice", "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	rule := func(extra map[string]any) map[string]any {
		m := map[string]any{"security_group_id": sg, "direction": "ingress"}
		for k, v := range extra {
			m[k] = v
		}
		return map[string]any{"security_group_rule": m}
	}
	tests := []struct {
		name    string
		extra   map[string]any
		status  int
		errType string
	}{
		{"with remote_ip_prefix", map[string]any{"remote_address_group_id": ag, "remote_ip_prefix": "10.0.0.0/8"}, 400, "SecurityGroupMultipleRemoteEntites"},
		{"with remote_group_id", map[string]any{"remote_address_group_id": ag, "remote_group_id": sg}, 400, "SecurityGroupMultipleRemoteEntites"},
		{"not a uuid", map[string]any{"remote_address_group_id": "x"}, 400, "HTTPBadRequest"},
		{"missing group", map[string]any{"remote_address_group_id": "00000000-0000-0000-0000-000000000000"}, 404, "AddressGroupNotFound"},
		{"other project's group", map[string]any{"remote_address_group_id": bobs}, 404, "AddressGroupNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.expectErr(a.do("alice", "POST", "/security-group-rules", rule(tc.extra)), tc.status, tc.errType)
		})
	}
	a.must(a.do("alice", "POST", "/security-group-rules", rule(map[string]any{"remote_address_group_id": ag})), 201)
	a.expectErr(a.do("alice", "POST", "/security-group-rules", rule(map[string]any{"remote_address_group_id": ag})), 409, "SecurityGroupRuleExists")
	// The same match without the address group is another rule.
	a.must(a.do("alice", "POST", "/security-group-rules", rule(map[string]any{})), 201)
	// Bulk: one bad rule stores none.
	before := len(a.must(a.do("alice", "GET", "/security-group-rules?security_group_id="+sg, nil), 200).json(t)["security_group_rules"].([]any))
	a.expectErr(a.do("alice", "POST", "/security-group-rules", map[string]any{"security_group_rules": []any{
		map[string]any{"security_group_id": sg, "direction": "egress", "protocol": "udp", "remote_address_group_id": ag},
		map[string]any{"security_group_id": sg, "direction": "egress", "remote_address_group_id": bobs},
	}}), 404, "AddressGroupNotFound")
	if after := len(a.must(a.do("alice", "GET", "/security-group-rules?security_group_id="+sg, nil), 200).json(t)["security_group_rules"].([]any)); after != before {
		t.Fatalf("half-stored bulk: %d rules, was %d", after, before)
	}
	// Deleting the security group releases the address group.
	a.must(a.do("alice", "DELETE", "/security-groups/"+sg, nil), 204)
	a.must(a.do("alice", "DELETE", "/address-groups/"+ag, nil), 204)
}

func TestAddressScopesAPI(t *testing.T) { onEngines(t, addressScopesAPI) }

func addressScopesAPI(t *testing.T, a *testAPI) {
	sc := a.create("alice", "address-scopes", "address_scope", map[string]any{"name": "s4", "ip_version": 4})
	if sc["ip_version"].(float64) != 4 || sc["shared"] != false || sc["project_id"] != "p-alice" || sc["tenant_id"] != "p-alice" || sc["name"] != "s4" {
		t.Fatalf("scope: %v", sc)
	}
	id := sc["id"].(string)
	s6 := a.create("alice", "address-scopes", "address_scope", map[string]any{"name": "s6", "ip_version": 6})["id"].(string)
	shared := a.create("admin", "address-scopes", "address_scope", map[string]any{"name": "pub", "ip_version": 4, "shared": true})["id"].(string)
	bobs := a.create("bob", "address-scopes", "address_scope", map[string]any{"name": "b", "ip_version": 4})["id"].(string)
	scopeBody := func(m map[string]any) map[string]any { return map[string]any{"address_scope": m} }
	poolBody := func(m map[string]any) map[string]any { return map[string]any{"subnetpool": m} }
	tests := []struct {
		name, token, method, path string
		body                      any
		status                    int
		errType                   string
	}{
		{"no ip_version", "alice", "POST", "/address-scopes", scopeBody(map[string]any{"name": "x"}), 400, "HTTPBadRequest"},
		{"ip_version 5", "alice", "POST", "/address-scopes", scopeBody(map[string]any{"ip_version": 5}), 400, "HTTPBadRequest"},
		{"member shares", "alice", "POST", "/address-scopes", scopeBody(map[string]any{"ip_version": 4, "shared": true}), 403, "PolicyNotAuthorized"},
		{"ip_version in PUT", "alice", "PUT", "/address-scopes/" + id, scopeBody(map[string]any{"ip_version": 6}), 400, "HTTPBadRequest"},
		{"member shares on update", "alice", "PUT", "/address-scopes/" + id, scopeBody(map[string]any{"shared": true}), 403, "PolicyNotAuthorized"},
		{"unshare", "admin", "PUT", "/address-scopes/" + shared, scopeBody(map[string]any{"shared": false}), 400, "AddressScopeUpdateError"},
		{"hidden", "bob", "GET", "/address-scopes/" + id, nil, 404, "AddressScopeNotFound"},
		{"shared is read-only", "bob", "PUT", "/address-scopes/" + shared, scopeBody(map[string]any{"name": "x"}), 403, "PolicyNotAuthorized"},
		{"pool: missing scope", "alice", "POST", "/subnetpools", poolBody(map[string]any{"prefixes": []string{"10.10.0.0/16"}, "address_scope_id": "00000000-0000-0000-0000-000000000000"}), 404, "AddressScopeNotFound"},
		{"pool: bad uuid", "alice", "POST", "/subnetpools", poolBody(map[string]any{"prefixes": []string{"10.10.0.0/16"}, "address_scope_id": "x"}), 400, "HTTPBadRequest"},
		{"pool: other project's scope", "alice", "POST", "/subnetpools", poolBody(map[string]any{"prefixes": []string{"10.10.0.0/16"}, "address_scope_id": bobs}), 404, "AddressScopeNotFound"},
		{"pool: wrong ip_version", "alice", "POST", "/subnetpools", poolBody(map[string]any{"prefixes": []string{"10.10.0.0/16"}, "address_scope_id": s6}), 400, "IllegalSubnetPoolIpVersionAssociationToAddressScope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.expectErr(a.do(tc.token, tc.method, tc.path, tc.body), tc.status, tc.errType)
		})
	}
	if got := a.must(a.do("bob", "GET", "/address-scopes", nil), 200).json(t)["address_scopes"].([]any); len(got) != 2 {
		t.Fatalf("bob sees %d scopes, want his own and the shared one", len(got))
	}
	if got := a.must(a.do("alice", "GET", "/address-scopes?ip_version=6&fields=name", nil), 200).json(t)["address_scopes"].([]any); len(got) != 1 || got[0].(map[string]any)["name"] != "s6" {
		t.Fatalf("filtered scopes: %v", got)
	}
	// Pools in a scope: stored, shown, and keeping their prefixes apart.
	p := a.create("alice", "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.10.0.0/16"}, "address_scope_id": id})
	if p["address_scope_id"] != id {
		t.Fatalf("pool: %v", p)
	}
	a.expectErr(a.do("alice", "POST", "/subnetpools", poolBody(map[string]any{"prefixes": []string{"10.10.5.0/24"}, "address_scope_id": id})), 409, "AddressScopePrefixConflict")
	a.must(a.do("alice", "POST", "/subnetpools", poolBody(map[string]any{"prefixes": []string{"10.10.5.0/24"}, "address_scope_id": shared})), 201)
	a.expectErr(a.do("alice", "DELETE", "/address-scopes/"+id, nil), 409, "AddressScopeInUse")
	pid := p["id"].(string)
	// A network's ipv4_address_scope is the scope of its IPv4 subnets' pool.
	n := a.create("alice", "networks", "network", map[string]any{"name": "scoped"})["id"].(string)
	a.create("alice", "subnets", "subnet", map[string]any{"network_id": n, "subnetpool_id": pid, "ip_version": 4, "prefixlen": 24})
	netView := func() map[string]any {
		return a.must(a.do("alice", "GET", "/networks/"+n, nil), 200).json(t)["network"].(map[string]any)
	}
	if v := netView(); v["ipv4_address_scope"] != id || v["ipv6_address_scope"] != nil {
		t.Fatalf("network in a scope: %v", v)
	}
	a.create("alice", "subnets", "subnet", map[string]any{"network_id": n, "cidr": "10.99.0.0/24", "ip_version": 4})
	if v := netView(); v["ipv4_address_scope"] != nil {
		t.Fatalf("network with subnets in and out of a scope: %v", v)
	}
	r := a.must(a.do("alice", "PUT", "/subnetpools/"+pid, poolBody(map[string]any{"address_scope_id": nil})), 200).json(t)["subnetpool"].(map[string]any)
	if r["address_scope_id"] != nil {
		t.Fatalf("pool after unsetting its scope: %v", r)
	}
	a.expectErr(a.do("alice", "PUT", "/subnetpools/"+pid, poolBody(map[string]any{"address_scope_id": s6})), 400, "IllegalSubnetPoolIpVersionAssociationToAddressScope")
	a.must(a.do("alice", "DELETE", "/address-scopes/"+id, nil), 204)
	a.expectErr(a.do("alice", "DELETE", "/address-scopes/"+id, nil), 404, "AddressScopeNotFound")
	a.must(a.do("admin", "PUT", "/address-scopes/"+bobs, scopeBody(map[string]any{"shared": true, "name": "now shared"})), 200)
	a.must(a.do("alice", "GET", "/address-scopes/"+bobs, nil), 200)
}

func TestAddressExtensionsListed(t *testing.T) {
	a := newTestAPI(t, Config{})
	for _, alias := range []string{"address-group", "security-groups-remote-address-group", "address-scope"} {
		ext := a.must(a.do("alice", "GET", "/extensions/"+alias, nil), 200).json(t)["extension"].(map[string]any)
		if ext["alias"] != alias || ext["name"] == "" {
			t.Errorf("extension %s: %v", alias, ext)
		}
	}
}

// TestAddressGroupReachesAgents checks that a rule naming an address group
// and every change of the group's addresses reach the agents in
// network.state, and that a sender capped at 1.0 sends the rule rewritten
// into remote_ip_prefix rules.
func TestAddressGroupReachesAgents(t *testing.T) {
	api, b, ag := newDataPlaneAPI(t)
	netID, _ := api.netWithSubnet("alice", "10.2.0.0/24")
	sg := api.create("alice", "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	api.create("admin", "ports", "port", map[string]any{"network_id": netID, "binding:host_id": "h1", "device_owner": "compute:nova",
		"device_id": "vm1", "security_groups": []string{sg}, "project_id": "p-alice"})
	g := api.create("alice", "address-groups", "address_group", map[string]any{"addresses": []string{"192.0.2.0/24"}})["id"].(string)
	api.create("alice", "security-group-rules", "security_group_rule", map[string]any{"security_group_id": sg, "direction": "ingress",
		"remote_address_group_id": g})
	addrsSeen := func(want ...string) func() bool {
		return func() bool {
			st, ok := ag.net(netID)
			if !ok || len(st.AddressGroups) != 1 {
				return false
			}
			return st.AddressGroups[0].ID == g && reflect.DeepEqual(st.AddressGroups[0].Addresses, want)
		}
	}
	waitFor(t, "address group in the network state", addrsSeen("192.0.2.0/24"))
	st, _ := ag.net(netID)
	found := false
	for _, s := range st.SecurityGroups {
		for _, r := range s.Rules {
			found = found || r.RemoteAddressGroupID == g
		}
	}
	if !found {
		t.Fatalf("no rule names the address group: %+v", st.SecurityGroups)
	}
	api.must(api.do("alice", "PUT", "/address-groups/"+g+"/add_addresses", agBody(map[string]any{"addresses": []string{"198.51.100.7"}})), 200)
	waitFor(t, "added address published", addrsSeen("192.0.2.0/24", "198.51.100.7/32"))
	api.must(api.do("alice", "PUT", "/address-groups/"+g+"/remove_addresses", agBody(map[string]any{"addresses": []string{"192.0.2.0/24"}})), 200)
	waitFor(t, "removed address published", addrsSeen("198.51.100.7/32"))

	// An old agent's sync (1.0) gets the rule as a remote_ip_prefix rule.
	var rep rpc.SyncReply
	if err := b.Request(context.Background(), rpc.SubjectServer, rpc.MsgSync, bus.V(1, 0), rpc.SyncRequest{Host: "old"}, &rep); err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, n := range rep.Networks {
		if n.ID != netID {
			continue
		}
		if len(n.AddressGroups) != 0 {
			t.Fatalf("1.0 reply carries address groups: %+v", n.AddressGroups)
		}
		for _, s := range n.SecurityGroups {
			for _, r := range s.Rules {
				if r.RemoteAddressGroupID != "" {
					t.Fatalf("1.0 reply names an address group: %+v", r)
				}
				if r.RemoteIPPrefix != "" {
					prefixes = append(prefixes, fmt.Sprint(r.Direction, " ", r.RemoteIPPrefix))
				}
			}
		}
	}
	if !reflect.DeepEqual(prefixes, []string{"ingress 198.51.100.7/32"}) {
		t.Fatalf("1.0 rules with prefixes: %v", prefixes)
	}
}
