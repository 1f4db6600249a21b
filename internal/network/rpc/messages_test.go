package rpc

import (
	"reflect"
	"testing"

	"github.com/kumo-cloud/kumo/internal/bus"
)

func TestNetworkStateForVersion(t *testing.T) {
	tcp, p22 := "tcp", 22
	n := &NetworkState{ID: "n", SecurityGroups: []SecurityGroup{{ID: "g", Rules: []Rule{
		{ID: "e4", Direction: "egress", Ethertype: "IPv4"},
		{ID: "ssh", Direction: "ingress", Ethertype: "IPv4", Protocol: tcp, PortRangeMin: &p22, PortRangeMax: &p22, RemoteAddressGroupID: "ag"},
		{ID: "v6", Direction: "ingress", Ethertype: "IPv6", RemoteAddressGroupID: "ag"},
		{ID: "empty", Direction: "ingress", Ethertype: "IPv4", RemoteAddressGroupID: "none"},
	}}}, AddressGroups: []AddressGroup{{ID: "ag", Addresses: []string{"192.0.2.0/24", "198.51.100.7/32", "2001:db8::/64"}}, {ID: "none"}}}
	tests := []struct {
		name string
		v    bus.Version
		want []Rule
	}{
		{"1.1 unchanged", bus.V(1, 1), n.SecurityGroups[0].Rules},
		{"1.0 expanded", bus.V(1, 0), []Rule{
			{ID: "e4", Direction: "egress", Ethertype: "IPv4"},
			{ID: "ssh/0", Direction: "ingress", Ethertype: "IPv4", Protocol: tcp, PortRangeMin: &p22, PortRangeMax: &p22, RemoteIPPrefix: "192.0.2.0/24"},
			{ID: "ssh/1", Direction: "ingress", Ethertype: "IPv4", Protocol: tcp, PortRangeMin: &p22, PortRangeMax: &p22, RemoteIPPrefix: "198.51.100.7/32"},
			{ID: "v6/0", Direction: "ingress", Ethertype: "IPv6", RemoteIPPrefix: "2001:db8::/64"},
			// An empty group matches nothing: no rule, never "from anywhere".
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := n.ForVersion(tc.v)
			if !reflect.DeepEqual(got.SecurityGroups[0].Rules, tc.want) {
				t.Fatalf("rules\n got %+v\nwant %+v", got.SecurityGroups[0].Rules, tc.want)
			}
			if tc.v.Minor == 0 && got.AddressGroups != nil {
				t.Fatalf("1.0 state carries address groups: %+v", got.AddressGroups)
			}
		})
	}
	if len(n.SecurityGroups[0].Rules) != 4 || n.AddressGroups == nil {
		t.Fatal("ForVersion changed its receiver")
	}
}
