package e2e

import (
	"strings"
	"testing"
)

// TestAddressGroupsOpenStackCLI drives address groups (with a security
// group rule naming one) and address scopes (with a subnet pool in one)
// through Debian's `openstack` CLI against the real binary: gophercloud v2
// has neither resource.
func TestAddressGroupsOpenStackCLI(t *testing.T) {
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
	joined := func(v any) string { return strings.Join(strs(v), ",") }

	// Address groups.
	g := obj("address", "group", "create", "--description", "office", "--address", "192.0.2.0/24", "--address", "198.51.100.7", "cli-ag")
	if got := joined(g["addresses"]); got != "192.0.2.0/24,198.51.100.7/32" || g["description"] != "office" {
		t.Errorf("address group create: %v", g)
	}
	oc("address", "group", "set", "--name", "cli-ag2", "--address", "203.0.113.9", "cli-ag")
	g = obj("address", "group", "show", "cli-ag2")
	if got := joined(g["addresses"]); got != "192.0.2.0/24,198.51.100.7/32,203.0.113.9/32" {
		t.Errorf("address group after set --address: %v", g)
	}
	oc("address", "group", "unset", "--address", "198.51.100.7", "cli-ag2")
	if got := joined(obj("address", "group", "show", "cli-ag2")["addresses"]); got != "192.0.2.0/24,203.0.113.9/32" {
		t.Errorf("address group after unset --address: %s", got)
	}
	fails("not found", "address", "group", "unset", "--address", "10.1.1.1", "cli-ag2")
	if out := oc("address", "group", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "cli-ag2") {
		t.Errorf("address group list:\n%s", out)
	}

	// A rule naming it; the group cannot go while the rule exists.
	oc("security", "group", "create", "cli-ag-sg")
	r := obj("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22", "--remote-address-group", "cli-ag2", "cli-ag-sg")
	if r["remote_address_group_id"] != g["id"] || r["remote_ip_prefix"] != nil {
		t.Errorf("rule with a remote address group: %v", r)
	}
	fails("in use", "address", "group", "delete", "cli-ag2")
	oc("security", "group", "rule", "delete", r["id"].(string))
	oc("address", "group", "delete", "cli-ag2")
	fails("", "address", "group", "show", "cli-ag2")

	// Address scopes and a subnet pool in one.
	sc := obj("address", "scope", "create", "--ip-version", "4", "cli-scope")
	if sc["ip_version"] != float64(4) || sc["shared"] != false {
		t.Errorf("address scope create: %v", sc)
	}
	pool := obj("subnet", "pool", "create", "--pool-prefix", "10.70.0.0/16", "--address-scope", "cli-scope", "cli-pool")
	if pool["address_scope_id"] != sc["id"] {
		t.Errorf("subnet pool in the scope: %v", pool)
	}
	oc("address", "scope", "create", "--ip-version", "6", "cli-scope6")
	fails("ip_version", "subnet", "pool", "create", "--pool-prefix", "10.71.0.0/16", "--address-scope", "cli-scope6", "cli-pool-bad")
	fails("in use", "address", "scope", "delete", "cli-scope")
	oc("address", "scope", "set", "--name", "cli-scope2", "cli-scope")
	if out := oc("address", "scope", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "cli-scope2") || !strings.Contains(out, "cli-scope6") {
		t.Errorf("address scope list:\n%s", out)
	}
	oc("subnet", "pool", "delete", "cli-pool")
	oc("address", "scope", "delete", "cli-scope2", "cli-scope6")
}
