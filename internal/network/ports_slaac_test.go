package network

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A port update that changes fixed_ips keeps the port's address on each
// IPv6 SLAAC and DHCPv6-stateless subnet of the network, as Neutron does
// (an auto-address subnet's address goes only with the subnet), whether
// the request names it, names its subnet, or leaves it out; a router
// interface gets none.
func TestPortUpdateKeepsSLAACAddresses(t *testing.T) {
	a := newTestAPI(t, Config{})
	nid := a.create("alice", "networks", "network", map[string]any{})["id"].(string)
	sub := func(body map[string]any) map[string]any {
		body["network_id"] = nid
		return a.create("alice", "subnets", "subnet", body)
	}
	v4 := sub(map[string]any{"cidr": "10.0.0.0/24", "ip_version": 4})["id"].(string)
	slaac := sub(map[string]any{"cidr": "2001:db8:1::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})["id"].(string)
	stateless := sub(map[string]any{"cidr": "2001:db8:2::/64", "ip_version": 6, "ipv6_ra_mode": "dhcpv6-stateless",
		"ipv6_address_mode": "dhcpv6-stateless"})["id"].(string)
	const mac = "fa:16:3e:11:22:33"
	eui1, eui2 := "2001:db8:1:0:f816:3eff:fe11:2233", "2001:db8:2:0:f816:3eff:fe11:2233"
	// addrs renders fixed_ips as "subnet=ip" sorted, with the subnets
	// named v4, slaac and stateless.
	names := map[string]string{v4: "v4", slaac: "slaac", stateless: "stateless"}
	addrs := func(p map[string]any) string {
		var out []string
		for _, f := range p["fixed_ips"].([]any) {
			m := f.(map[string]any)
			out = append(out, names[m["subnet_id"].(string)]+"="+m["ip_address"].(string))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	auto := "slaac=" + eui1 + " stateless=" + eui2
	for _, tc := range []struct {
		name     string
		owner    string
		fixedIPs []any
		want     string
	}{
		{"new address on the IPv4 subnet", "", []any{map[string]any{"ip_address": "10.0.0.50"}}, auto + " v4=10.0.0.50"},
		{"the IPv4 subnet only", "compute:nova", []any{map[string]any{"subnet_id": v4}}, auto + " v4=10.0.0.%d"},
		{"every subnet named", "", []any{map[string]any{"subnet_id": v4}, map[string]any{"subnet_id": slaac}, map[string]any{"subnet_id": stateless}},
			auto + " v4=10.0.0.%d"},
		{"the SLAAC address named", "", []any{map[string]any{"ip_address": "10.0.0.60"}, map[string]any{"ip_address": eui1}},
			auto + " v4=10.0.0.60"},
		{"none", "", []any{}, auto},
		{"router interface", "network:router_interface", []any{map[string]any{"ip_address": "10.0.0.70"}}, "v4=10.0.0.70"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := a.create("admin", "ports", "port", map[string]any{"network_id": nid, "mac_address": mac, "device_owner": tc.owner})
			first := ""
			for _, f := range p["fixed_ips"].([]any) {
				if m := f.(map[string]any); m["subnet_id"] == v4 {
					first = m["ip_address"].(string)
				}
			}
			want := tc.want
			if strings.Contains(want, "%d") {
				var n int
				fmt.Sscanf(first, "10.0.0.%d", &n)
				want = fmt.Sprintf(want, n)
			}
			r := a.do("admin", "PUT", "/ports/"+p["id"].(string), map[string]any{"port": map[string]any{"fixed_ips": tc.fixedIPs}})
			if r.status != 200 {
				t.Fatalf("update: %d %s", r.status, r.body)
			}
			if got := addrs(r.json(t)["port"].(map[string]any)); got != want {
				t.Errorf("fixed_ips after update\n got %s\nwant %s", got, want)
			}
			shown := a.must(a.do("admin", "GET", "/ports/"+p["id"].(string), nil), 200).json(t)["port"].(map[string]any)
			if got := addrs(shown); got != want {
				t.Errorf("fixed_ips read back\n got %s\nwant %s", got, want)
			}
			a.must(a.do("admin", "DELETE", "/ports/"+p["id"].(string), nil), 204)
		})
	}

	// A SLAAC subnet added after the port: the port has its address there
	// (TestNewSLAACSubnetReachesExistingPorts) and an update keeps it.
	p := a.create("admin", "ports", "port", map[string]any{"network_id": nid, "mac_address": mac, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.80"}}})
	late := sub(map[string]any{"cidr": "2001:db8:3::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})["id"].(string)
	names[late] = "late"
	r := a.must(a.do("admin", "PUT", "/ports/"+p["id"].(string), map[string]any{"port": map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.81"}}}}), 200)
	if got, want := addrs(r.json(t)["port"].(map[string]any)), "late=2001:db8:3:0:f816:3eff:fe11:2233 "+auto+" v4=10.0.0.81"; got != want {
		t.Errorf("after a SLAAC subnet was added\n got %s\nwant %s", got, want)
	}
}

// A SLAAC or DHCPv6-stateless subnet added to a network gives the ports
// already there their EUI-64 address on it (a new revision), router
// interfaces aside, as Neutron does.
func TestNewSLAACSubnetReachesExistingPorts(t *testing.T) {
	a := newTestAPI(t, Config{})
	nid := a.create("alice", "networks", "network", map[string]any{})["id"].(string)
	v4 := a.create("alice", "subnets", "subnet", map[string]any{"network_id": nid, "cidr": "10.1.0.0/24", "ip_version": 4})["id"].(string)
	type port struct {
		owner, mac string
		want       int // addresses after the IPv6 subnets
	}
	ports := map[string]port{}
	revs := map[string]float64{}
	for i, p := range []port{{"", "fa:16:3e:00:00:01", 3}, {"compute:nova", "fa:16:3e:00:00:02", 3}, {"network:dhcp", "fa:16:3e:00:00:03", 3},
		{"network:router_interface", "fa:16:3e:00:00:04", 1}} {
		body := map[string]any{"network_id": nid, "mac_address": p.mac, "device_owner": p.owner,
			"fixed_ips": []any{map[string]any{"ip_address": fmt.Sprintf("10.1.0.%d", 10+i)}}}
		created := a.create("admin", "ports", "port", body)
		ports[created["id"].(string)] = p
		revs[created["id"].(string)] = created["revision_number"].(float64)
	}
	for _, modes := range [][2]string{{"slaac", "slaac"}, {"dhcpv6-stateless", "dhcpv6-stateless"}} {
		a.create("alice", "subnets", "subnet", map[string]any{"network_id": nid, "cidr": "2001:db8:" + map[string]string{"slaac": "a", "dhcpv6-stateless": "b"}[modes[0]] + "::/64",
			"ip_version": 6, "ipv6_ra_mode": modes[0], "ipv6_address_mode": modes[1]})
	}
	for id, p := range ports {
		got := a.must(a.do("admin", "GET", "/ports/"+id, nil), 200).json(t)["port"].(map[string]any)
		fips := got["fixed_ips"].([]any)
		var v6 []string
		for _, f := range fips {
			m := f.(map[string]any)
			if m["subnet_id"] != v4 {
				v6 = append(v6, m["ip_address"].(string))
			}
		}
		if len(fips) != p.want {
			t.Errorf("port %q: fixed_ips %v, want %d addresses", p.owner, fips, p.want)
		}
		eui := ":f816:3eff:fe00:" + strings.TrimLeft(p.mac[len(p.mac)-2:], "0") // the MAC's EUI-64 interface id
		for _, ip := range v6 {
			if !strings.HasSuffix(ip, eui) {
				t.Errorf("port %q: %s is not its EUI-64 address", p.owner, ip)
			}
		}
		if p.want > 1 && got["revision_number"].(float64) <= revs[id] {
			t.Errorf("port %q: revision %v after the new subnets, was %v", p.owner, got["revision_number"], revs[id])
		}
	}
}
