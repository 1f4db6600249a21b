package nft

import (
	"context"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
)

// TestRenderAddressGroup checks that a rule with remote_address_group_id
// becomes a lookup in the group's interval set of the rule's family, and
// that the set holds exactly the group's addresses of that family.
func TestRenderAddressGroup(t *testing.T) {
	base := func(rules ...SGRule) Desired {
		return Desired{
			Ports: []Port{{ID: "p1", Device: "tapp1", MACAddress: "fa:16:3e:00:00:01", FixedIPs: []string{"10.0.0.5"},
				PortSecurityEnabled: true, SecurityGroups: []string{"g"}}},
			Groups:        []Group{{ID: "g", Stateful: true, Rules: rules}},
			AddressGroups: []AddressGroup{{ID: "ag", Addresses: []string{"192.0.2.0/24", "198.51.100.7/32", "2001:db8::/64"}}},
		}
	}
	tests := []struct {
		name    string
		rule    SGRule
		want    []string // lines the ruleset must contain
		notWant []string
		wantErr string
	}{
		{name: "ingress v4", rule: SGRule{ID: "r", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(22), PortRangeMax: intp(22), RemoteAddressGroupID: "ag"},
			want: []string{"set a4-ag { type ipv4_addr; flags interval; elements = { 192.0.2.0-192.0.2.255, 198.51.100.7 }; }",
				"meta nfproto ipv4 meta l4proto tcp th dport 22 ip saddr @a4-ag accept"},
			notWant: []string{"set a6-ag"}},
		{name: "egress v6", rule: SGRule{ID: "r", Direction: "egress", EtherType: "IPv6", RemoteAddressGroupID: "ag"},
			want:    []string{"set a6-ag { type ipv6_addr; flags interval; elements = { 2001:db8::-2001:db8::ffff:ffff:ffff:ffff }; }", "ip6 daddr @a6-ag accept"},
			notWant: []string{"set a4-ag"}},
		{name: "with remote_group_id", rule: SGRule{ID: "r", Direction: "ingress", EtherType: "IPv4", RemoteAddressGroupID: "ag", RemoteGroupID: "g"},
			wantErr: "exclusive", notWant: []string{"@a4-ag"}},
		{name: "with remote_ip_prefix", rule: SGRule{ID: "r", Direction: "ingress", EtherType: "IPv4", RemoteAddressGroupID: "ag", RemoteIPPrefix: "10.0.0.0/8"},
			wantErr: "exclusive", notWant: []string{"@a4-ag"}},
		{name: "unknown group matches nothing", rule: SGRule{ID: "r", Direction: "ingress", EtherType: "IPv4", RemoteAddressGroupID: "nope"},
			want: []string{"set a4-nope { type ipv4_addr; flags interval; }", "ip saddr @a4-nope accept"}, wantErr: "address group nope not in the desired state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Render(base(tc.rule))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			text := rs.String()
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("ruleset lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) {
					t.Errorf("ruleset has %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestKernelRemoteAddressGroup shows traffic from an address of the group
// passing, traffic from outside it dropped, and address changes applied as
// set elements without rewriting a chain.
func TestKernelRemoteAddressGroup(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:02:0a", "10.9.2.1")
	c := l.vm("c", "fa:16:3e:00:02:0c", "10.9.2.3")
	b := l.vm("b", "fa:16:3e:00:02:0b", "10.9.2.2")
	netnstest.Listen(t, b.ns, 22)
	fw := l.firewall()
	ctx := context.Background()
	clients := Group{ID: "clients", Stateful: true, Rules: egressAll}
	servers := Group{ID: "servers", Stateful: true, Rules: append([]SGRule{
		{ID: "ssh", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(22), PortRangeMax: intp(22), RemoteAddressGroupID: "admins"},
	}, egressAll...)}
	d := Desired{Ports: []Port{port(a, "pa", "clients"), port(c, "pc", "clients"), port(b, "pb", "servers")},
		Groups: []Group{clients, servers}, AddressGroups: []AddressGroup{{ID: "admins", Addresses: []string{a.ip + "/32", "192.0.2.0/24"}}}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, b.ip, 22) {
		t.Fatal("address in the group cannot reach ssh")
	}
	if netnstest.Reach(c.ns, b.ip, 22) {
		t.Fatal("address outside the group reaches ssh")
	}
	d.AddressGroups[0].Addresses = []string{"10.9.2.3/32", "192.0.2.0/24"}
	st, err := fw.Apply(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if st.ChainsWritten != 0 || st.ElemsAdded != 1 || st.ElemsDeleted != 1 {
		t.Fatalf("address change: %+v, want one element in, one out, no chain", st)
	}
	if !netnstest.Reach(c.ns, b.ip, 22) {
		t.Fatal("added address cannot reach ssh")
	}
	if netnstest.Reach(a.ns, b.ip, 22) {
		t.Fatal("removed address still reaches ssh")
	}
	if st, err := l.firewall().Apply(ctx, d); err != nil || st.Changed() {
		t.Fatalf("restart resync: %+v, %v", st, err)
	}
}
