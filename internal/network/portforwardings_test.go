package network

import "testing"

func TestPortForwardings(t *testing.T) {
	a := newTestAPI(t, Config{})
	ext := a.create("admin", "networks", "network", map[string]any{"name": "public", "router:external": true})
	a.create("admin", "subnets", "subnet", map[string]any{"network_id": ext["id"], "cidr": "198.51.100.0/24", "ip_version": 4})
	netID, subID := a.netWithSubnet("alice", "10.70.0.0/24")
	rt := a.create("alice", "routers", "router", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext["id"]}})
	a.must(a.do("alice", "PUT", "/routers/"+rt["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": subID}), 200)
	port := a.create("alice", "ports", "port", map[string]any{"network_id": netID, "fixed_ips": []any{map[string]any{"ip_address": "10.70.0.10"}}})
	pid := port["id"].(string)
	fip := a.create("alice", "floatingips", "floatingip", map[string]any{"floating_network_id": ext["id"]})
	base := "/floatingips/" + fip["id"].(string) + "/port_forwardings"
	pf := func(body map[string]any) map[string]any { return map[string]any{"port_forwarding": body} }

	created := a.must(a.do("alice", "POST", base, pf(map[string]any{"protocol": "tcp", "internal_port": 22, "external_port": 2222,
		"internal_port_id": pid, "description": "ssh"})), 201).json(t)["port_forwarding"].(map[string]any)
	if created["internal_ip_address"] != "10.70.0.10" || created["external_port"] != 2222.0 || created["description"] != "ssh" {
		t.Fatalf("created: %v", created)
	}
	id := created["id"].(string)
	f := a.must(a.do("alice", "GET", "/floatingips/"+fip["id"].(string), nil), 200).json(t)["floatingip"].(map[string]any)
	if f["router_id"] != rt["id"] || len(f["port_forwardings"].([]any)) != 1 || f["port_id"] != nil {
		t.Fatalf("floating IP with a forwarding: %v", f)
	}
	cases := []struct {
		name   string
		token  string
		body   map[string]any
		status int
		typ    string
	}{
		{"same external port", "alice", map[string]any{"protocol": "tcp", "internal_port": 23, "external_port": 2222, "internal_port_id": pid}, 400, "BadRequest"},
		{"same internal port", "alice", map[string]any{"protocol": "tcp", "internal_port": 22, "external_port": 2223, "internal_port_id": pid}, 400, "BadRequest"},
		{"ip not on port", "alice", map[string]any{"protocol": "tcp", "internal_port": 80, "external_port": 80, "internal_port_id": pid, "internal_ip_address": "10.70.0.99"}, 400, "BadRequest"},
		{"bad protocol", "alice", map[string]any{"protocol": "xyz", "internal_port": 80, "external_port": 80, "internal_port_id": pid}, 400, "HTTPBadRequest"},
		{"port out of range", "alice", map[string]any{"protocol": "tcp", "internal_port": 70000, "external_port": 80, "internal_port_id": pid}, 400, "HTTPBadRequest"},
		{"missing internal port", "alice", map[string]any{"protocol": "tcp", "external_port": 80, "internal_port_id": pid}, 400, "HTTPBadRequest"},
		{"unknown port", "alice", map[string]any{"protocol": "tcp", "internal_port": 80, "external_port": 80, "internal_port_id": "00000000-0000-4000-8000-000000000000"}, 404, "PortNotFound"},
		{"other project", "bob", map[string]any{"protocol": "tcp", "internal_port": 80, "external_port": 80, "internal_port_id": pid}, 404, "FloatingIPNotFound"},
		{"reader", "aliceread", map[string]any{"protocol": "tcp", "internal_port": 80, "external_port": 80, "internal_port_id": pid}, 403, "PolicyNotAuthorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { a.expectErr(a.do(c.token, "POST", base, pf(c.body)), c.status, c.typ) })
	}
	// Unreachable: a port on a network without a router.
	lone, _ := a.netWithSubnet("alice", "10.71.0.0/24")
	lp := a.create("alice", "ports", "port", map[string]any{"network_id": lone})
	a.expectErr(a.do("alice", "POST", base, pf(map[string]any{"protocol": "udp", "internal_port": 53, "external_port": 53, "internal_port_id": lp["id"]})), 400, "BadRequest")
	// A floating IP with forwardings cannot be associated with a port.
	a.expectErr(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"port_id": pid}}), 409, "FipInUseByPortForwarding")

	l := a.must(a.do("alice", "GET", base+"?protocol=tcp", nil), 200).json(t)["port_forwardings"].([]any)
	if len(l) != 1 {
		t.Fatalf("list: %v", l)
	}
	if l := a.must(a.do("alice", "GET", base+"?protocol=udp", nil), 200).json(t)["port_forwardings"].([]any); len(l) != 0 {
		t.Fatalf("filtered list: %v", l)
	}
	up := a.must(a.do("alice", "PUT", base+"/"+id, pf(map[string]any{"external_port": 2022})), 200).json(t)["port_forwarding"].(map[string]any)
	if up["external_port"] != 2022.0 || up["internal_port"] != 22.0 {
		t.Fatalf("updated: %v", up)
	}
	a.expectErr(a.do("alice", "PUT", base+"/"+id, pf(map[string]any{"floatingip_id": "x"})), 400, "HTTPBadRequest")
	a.must(a.do("alice", "GET", base+"/"+id, nil), 200)
	// Deleting the internal port deletes its forwardings and frees the
	// floating IP's router.
	a.must(a.do("alice", "DELETE", "/ports/"+pid, nil), 204)
	a.expectErr(a.do("alice", "GET", base+"/"+id, nil), 404, "PortForwardingNotFound")
	f = a.must(a.do("alice", "GET", "/floatingips/"+fip["id"].(string), nil), 200).json(t)["floatingip"].(map[string]any)
	if f["router_id"] != nil || len(f["port_forwardings"].([]any)) != 0 {
		t.Fatalf("floating IP after its forwarding's port went: %v", f)
	}
	// A floating IP associated with a port takes no forwardings.
	p2 := a.create("alice", "ports", "port", map[string]any{"network_id": netID})
	a.must(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"port_id": p2["id"]}}), 200)
	a.expectErr(a.do("alice", "POST", base, pf(map[string]any{"protocol": "tcp", "internal_port": 22, "external_port": 22, "internal_port_id": p2["id"]})), 409, "FloatingIPPortAlreadyAssociated")
	// Deleting a floating IP deletes its forwardings.
	a.must(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"port_id": nil}}), 200)
	a.must(a.do("alice", "POST", base, pf(map[string]any{"protocol": "tcp", "internal_port": 22, "external_port": 22, "internal_port_id": p2["id"]})), 201)
	a.must(a.do("alice", "DELETE", "/floatingips/"+fip["id"].(string), nil), 204)
	a.must(a.do("alice", "DELETE", "/ports/"+p2["id"].(string), nil), 204)
}
