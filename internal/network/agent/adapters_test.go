package agent

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/kumo-cloud/kumo/internal/network/linux/l3"
	"github.com/kumo-cloud/kumo/internal/network/linux/nft"
	"github.com/kumo-cloud/kumo/internal/network/linux/ra"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

func TestFirewallDesired(t *testing.T) {
	n := sampleNetwork()
	icmp := 8
	n.Ports[0].PortSecurity = true
	n.Ports[0].SecurityGroups = []string{"sg-web"}
	n.Ports[0].AddressPairs = []rpc.AddressPair{{IPAddress: "10.0.0.100"}}
	n.SecurityGroups = []rpc.SecurityGroup{
		{ID: "sg-web", Stateful: true, MemberIPs: []string{"10.0.0.10"}, Rules: []rpc.Rule{
			{ID: "r1", Direction: "ingress", Ethertype: "IPv4", Protocol: "icmp", PortRangeMin: &icmp, RemoteGroupID: "sg-admin"},
			{ID: "r2", Direction: "ingress", Ethertype: "IPv4", RemoteAddressGroupID: "ag-office"},
		}},
		{ID: "sg-admin", Stateful: true, MemberIPs: []string{"10.9.9.9"}},
		{ID: "sg-unused", Stateful: true},
	}
	n.AddressGroups = []rpc.AddressGroup{{ID: "ag-office", Addresses: []string{"192.0.2.0/24"}}, {ID: "ag-unused", Addresses: []string{"198.51.100.0/24"}}}
	d := firewallDesired(hostSet{"hostA"}, []*rpc.NetworkState{n})
	want := nft.Desired{
		// The DHCP port on hostA is the network's own: not filtered.
		Ports: []nft.Port{{ID: "p-a", Device: "tapp-a", MACAddress: "fa:16:3e:00:00:0a", FixedIPs: []string{"fd00::a", "10.0.0.10"},
			AllowedAddressPairs: []nft.AddressPair{{IPAddress: "10.0.0.100"}}, PortSecurityEnabled: true, SecurityGroups: []string{"sg-web"}}},
		Groups: []nft.Group{
			{ID: "sg-admin", Stateful: true, Members: []string{"10.9.9.9"}},
			{ID: "sg-web", Stateful: true, Members: []string{"10.0.0.10"}, Rules: []nft.SGRule{
				{ID: "r1", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortRangeMin: &icmp, RemoteGroupID: "sg-admin"},
				{ID: "r2", Direction: "ingress", EtherType: "IPv4", RemoteAddressGroupID: "ag-office"}}},
		},
		AddressGroups: []nft.AddressGroup{{ID: "ag-office", Addresses: []string{"192.0.2.0/24"}}},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("firewall\n got %+v\nwant %+v", d, want)
	}
}

func TestRouterDesired(t *testing.T) {
	inner := sampleNetwork()
	ext := &rpc.NetworkState{ID: "ext", MTU: 1500, External: true, Subnets: []rpc.Subnet{{ID: "ext-sub", IPVersion: 4, CIDR: "203.0.113.0/24", GatewayIP: "203.0.113.1"}}}
	nets := map[string]*rpc.NetworkState{"net-1": inner, "ext": ext}
	r := &rpc.RouterState{ID: "r1", AdminStateUp: true, EnableSNAT: true,
		Interfaces:      []rpc.Port{{ID: "rp-1", NetworkID: "net-1", MAC: "FA:16:3E:00:00:01", Host: "net1host", FixedIPs: []rpc.FixedIP{{SubnetID: "sub-4", IPAddress: "10.0.0.1"}}}},
		Gateway:         &rpc.Port{ID: "gw-1", NetworkID: "ext", MAC: "fa:16:3e:00:00:fe", Host: "net1host", FixedIPs: []rpc.FixedIP{{SubnetID: "ext-sub", IPAddress: "203.0.113.10"}}},
		Routes:          []rpc.HostRoute{{Destination: "192.168.0.0/16", Nexthop: "10.0.0.254"}},
		FloatingIPs:     []rpc.FloatingIP{{FloatingIP: "203.0.113.20", FixedIP: "10.0.0.10"}},
		PortForwardings: []rpc.PortForwarding{{FloatingIP: "203.0.113.21", Protocol: "tcp", ExternalPort: 2222, InternalIP: "10.0.0.11", InternalPort: 22}}}
	elsewhere := &rpc.RouterState{ID: "r2", AdminStateUp: true, Interfaces: []rpc.Port{{ID: "rp-2", NetworkID: "net-1", Host: "other"}}}
	d := routerDesired("net1host", []*rpc.RouterState{elsewhere, r}, nets)
	want := l3.Desired{Routers: []l3.Router{{ID: "r1", EnableSNAT: true,
		Interfaces: []l3.Interface{{PortID: "rp-1", MACAddress: "fa:16:3e:00:00:01", IPs: []string{"10.0.0.1/24"}, MTU: 1450}},
		Gateway: &l3.Gateway{Interface: l3.Interface{PortID: "gw-1", MACAddress: "fa:16:3e:00:00:fe", IPs: []string{"203.0.113.10/24"}, MTU: 1500},
			NextHops: []string{"203.0.113.1"}},
		Routes:          []l3.Route{{Destination: "192.168.0.0/16", NextHop: "10.0.0.254"}},
		FloatingIPs:     []l3.FloatingIP{{FloatingIP: "203.0.113.20", FixedIP: "10.0.0.10"}},
		PortForwardings: []l3.PortForwarding{{FloatingIP: "203.0.113.21", Protocol: "tcp", ExternalPort: 2222, InternalIP: "10.0.0.11", InternalPort: 22}},
	}}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("routers\n got %+v\nwant %+v", d, want)
	}
}

func TestRouterAdverts(t *testing.T) {
	v6 := &rpc.NetworkState{ID: "net-6", MTU: 1450, Subnets: []rpc.Subnet{
		{ID: "s-slaac", IPVersion: 6, CIDR: "2001:db8:1::/64", IPv6RAMode: "slaac", IPv6AddrMode: "slaac"},
		{ID: "s-ext", IPVersion: 6, CIDR: "2001:db8:2::/64", IPv6AddrMode: "slaac"}, // an outside router advertises
		{ID: "s-4", IPVersion: 4, CIDR: "10.0.0.0/24"}}}
	nets := map[string]*rpc.NetworkState{"net-6": v6}
	r := &rpc.RouterState{ID: "r1", AdminStateUp: true, Interfaces: []rpc.Port{
		{ID: "rp-slaac-0001", NetworkID: "net-6", Host: "h", FixedIPs: []rpc.FixedIP{{SubnetID: "s-slaac", IPAddress: "2001:db8:1::1"}, {SubnetID: "s-4", IPAddress: "10.0.0.1"}}},
		{ID: "rp-ext-000002", NetworkID: "net-6", Host: "h", FixedIPs: []rpc.FixedIP{{SubnetID: "s-ext", IPAddress: "2001:db8:2::1"}}}}}
	down := &rpc.RouterState{ID: "r2", Interfaces: r.Interfaces}
	got := routerAdverts("h", []*rpc.RouterState{r, down}, nets)
	want := map[string]advert{"r1/rp-slaac-0001": {router: "r1", cfg: ra.Config{Interface: "qr-rp-slaac-00", MTU: 1450,
		Prefixes: []ra.Prefix{{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Mode: "slaac"}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("adverts\n got %+v\nwant %+v", got, want)
	}
	if got := routerAdverts("elsewhere", []*rpc.RouterState{r}, nets); len(got) != 0 {
		t.Fatalf("adverts of a router on another host: %+v", got)
	}
}
