package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestNetworkOpenStackCLI drives the networking API with Debian's
// `openstack` CLI: create, list, show, set and delete of networks,
// subnets, ports, routers, floating IPs and security groups, and the
// errors a user sees for bad input.
func TestNetworkOpenStackCLI(t *testing.T) {
	t.Parallel()
	cli := newCLI(t, openstackCLI(t), Start(t, Options{}))
	adm := []string{"--os-cloud", "kumo"}
	oc := func(args ...string) string { return cli.run(append(adm, args...)...) }
	obj := func(args ...string) map[string]any { return cli.object(append(adm, args...)...) }
	fails := func(want string, args ...string) {
		t.Helper()
		out, err := cli.try(append(adm, args...)...)
		if err == nil {
			t.Errorf("openstack %s succeeded, want an error containing %q:\n%s", strings.Join(args, " "), want, out)
		} else if !strings.Contains(out, want) {
			t.Errorf("openstack %s: error does not say %q:\n%s", strings.Join(args, " "), want, out)
		}
	}

	// Networks.
	n := obj("network", "create", "--description", "first", "--mtu", "1400", "cli-net")
	if n["mtu"] != float64(1400) || n["description"] != "first" || n["status"] != "ACTIVE" {
		t.Errorf("network create: %v", n)
	}
	oc("network", "set", "--name", "cli-net2", "--description", "renamed", "--tag", "blue", "cli-net")
	n = obj("network", "show", "cli-net2")
	if n["description"] != "renamed" || !strings.Contains(strings.Join(strs(n["tags"]), ","), "blue") {
		t.Errorf("network after set: %v", n)
	}
	if out := oc("network", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "cli-net2") {
		t.Errorf("network list:\n%s", out)
	}
	oc("network", "unset", "--tag", "blue", "cli-net2")

	// Subnets.
	s := obj("subnet", "create", "--network", "cli-net2", "--subnet-range", "10.60.0.0/24",
		"--allocation-pool", "start=10.60.0.10,end=10.60.0.200", "--dns-nameserver", "10.60.0.2", "cli-sub")
	if s["gateway_ip"] != "10.60.0.1" || s["cidr"] != "10.60.0.0/24" {
		t.Errorf("subnet create: %v", s)
	}
	fails("overlaps", "subnet", "create", "--network", "cli-net2", "--subnet-range", "10.60.0.128/25", "cli-sub-overlap")
	fails("", "subnet", "create", "--network", "cli-net2", "--subnet-range", "10.61.0.0/33", "cli-sub-bad")
	oc("subnet", "set", "--name", "cli-sub2", "--description", "s", "--host-route", "destination=10.99.0.0/16,gateway=10.60.0.5", "cli-sub")
	s = obj("subnet", "show", "cli-sub2")
	if s["description"] != "s" || !strings.Contains(strings.Join(strs(s["host_routes"]), " "), "10.99.0.0/16") {
		t.Errorf("subnet after set: %v", s)
	}
	if out := oc("subnet", "list", "--network", "cli-net2", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "cli-sub2" {
		t.Errorf("subnet list --network:\n%s", out)
	}

	// Ports: a fixed address, then the same address again is refused.
	p := obj("port", "create", "--network", "cli-net2", "--fixed-ip", "subnet=cli-sub2,ip-address=10.60.0.50", "cli-port")
	if !strings.Contains(strings.Join(strs(p["fixed_ips"]), " "), "10.60.0.50") || p["mac_address"] == "" {
		t.Errorf("port create: %v", p)
	}
	fails("10.60.0.50", "port", "create", "--network", "cli-net2", "--fixed-ip", "subnet=cli-sub2,ip-address=10.60.0.50", "cli-port-dup")
	oc("port", "set", "--name", "cli-port2", "--description", "p", "--allowed-address", "ip-address=10.60.0.77", "cli-port")
	p = obj("port", "show", "cli-port2")
	if p["description"] != "p" || !strings.Contains(strings.Join(strs(p["allowed_address_pairs"]), " "), "10.60.0.77") {
		t.Errorf("port after set: %v", p)
	}
	if out := oc("port", "list", "--network", "cli-net2", "-f", "value", "-c", "Name"); !strings.Contains(out, "cli-port2") {
		t.Errorf("port list:\n%s", out)
	}
	fails("", "network", "delete", "cli-net2") // it has a port

	// Security groups.
	if g := obj("security", "group", "create", "--description", "web", "cli-sg"); g["description"] != "web" || len(strs(g["rules"])) == 0 {
		t.Errorf("security group create (with its default egress rules): %v", g)
	}
	oc("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80:81", "--remote-ip", "10.0.0.0/8", "cli-sg")
	fails("", "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80:81", "--remote-ip", "10.0.0.0/8", "cli-sg")
	oc("security", "group", "set", "--name", "cli-sg2", "--description", "web2", "cli-sg")
	g := obj("security", "group", "show", "cli-sg2")
	if g["description"] != "web2" {
		t.Errorf("security group after set: %v", g)
	}
	rules := oc("security", "group", "rule", "list", "cli-sg2", "-f", "value", "-c", "ID", "-c", "Port Range")
	var ruleID string
	for _, line := range strings.Split(strings.TrimSpace(rules), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "80:81" {
			ruleID = f[0]
		}
	}
	if ruleID == "" {
		t.Fatalf("security group rule list has no 80:81 rule:\n%s", rules)
	}
	oc("security", "group", "rule", "show", ruleID)
	oc("port", "set", "--security-group", "cli-sg2", "cli-port2")
	oc("security", "group", "rule", "delete", ruleID)
	if out := oc("security", "group", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "cli-sg2") || !strings.Contains(out, "default") {
		t.Errorf("security group list:\n%s", out)
	}
	fails("in use", "security", "group", "delete", "cli-sg2") // cli-port2 uses it

	// Routers, an external network and a floating IP.
	oc("network", "create", "--external", "cli-ext")
	oc("subnet", "create", "--network", "cli-ext", "--subnet-range", "172.24.50.0/24", "--no-dhcp", "cli-ext-sub")
	oc("router", "create", "cli-router")
	oc("router", "set", "--external-gateway", "cli-ext", "--description", "r", "cli-router")
	oc("router", "add", "subnet", "cli-router", "cli-sub2")
	r := obj("router", "show", "cli-router")
	if r["description"] != "r" || !strings.Contains(strings.Join(strs(r["external_gateway_info"]), " "), "172.24.50.") {
		t.Errorf("router show: %v", r)
	}
	fip := obj("floating", "ip", "create", "--port", "cli-port2", "cli-ext")
	addr, _ := fip["floating_ip_address"].(string)
	if !strings.HasPrefix(addr, "172.24.50.") || fip["fixed_ip_address"] != "10.60.0.50" {
		t.Errorf("floating ip create: %v", fip)
	}
	if out := oc("floating", "ip", "list", "-f", "value", "-c", "Floating IP Address", "-c", "Fixed IP Address"); !strings.Contains(out, addr+" 10.60.0.50") {
		t.Errorf("floating ip list:\n%s", out)
	}
	fails("", "router", "remove", "subnet", "cli-router", "cli-sub2") // the floating IP needs it
	oc("floating", "ip", "unset", "--port", addr)
	if f := obj("floating", "ip", "show", addr); f["port_id"] != nil {
		t.Errorf("floating ip after unset: %v", f)
	}
	oc("floating", "ip", "delete", addr)
	oc("router", "remove", "subnet", "cli-router", "cli-sub2")
	oc("router", "unset", "--external-gateway", "cli-router")
	oc("router", "delete", "cli-router")

	// Cleanup in dependency order; every resource is gone afterwards.
	oc("port", "delete", "cli-port2")
	oc("security", "group", "delete", "cli-sg2")
	oc("subnet", "delete", "cli-sub2")
	oc("network", "delete", "cli-net2", "cli-ext")
	if out := oc("network", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "cli-") {
		t.Errorf("networks left:\n%s", out)
	}
	if out := oc("port", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "cli-") {
		t.Errorf("ports left:\n%s", out)
	}
}

// strs flattens a CLI JSON value (string, list or object) to strings.
func strs(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, strs(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range x {
			for _, s := range strs(e) {
				out = append(out, k+"="+s)
			}
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}
