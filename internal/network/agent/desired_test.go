package agent

import (
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

func sampleNetwork() *rpc.NetworkState {
	return &rpc.NetworkState{ID: "net-1", AdminStateUp: true, MTU: 1450, NetworkType: "vxlan", SegmentationID: 77, DNSDomain: "openstacklocal.",
		Subnets: []rpc.Subnet{
			{ID: "sub-4", IPVersion: 4, CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1", EnableDHCP: true, DNSNameservers: []string{"9.9.9.9"},
				HostRoutes: []rpc.HostRoute{{Destination: "172.16.0.0/16", Nexthop: "10.0.0.254"}}},
			{ID: "sub-6", IPVersion: 6, CIDR: "fd00::/64", EnableDHCP: true},
		},
		Ports: []rpc.Port{
			{ID: "p-a", MAC: "FA:16:3E:00:00:0A", Host: "hostA", DeviceOwner: "compute:nova", DeviceID: "vm-a", AdminStateUp: true,
				FixedIPs: []rpc.FixedIP{{SubnetID: "sub-6", IPAddress: "fd00::a"}, {SubnetID: "sub-4", IPAddress: "10.0.0.10"}}},
			{ID: "p-b", MAC: "fa:16:3e:00:00:0b", Host: "hostB", DeviceOwner: "compute:nova", DeviceID: "vm-b", AdminStateUp: true, DNSName: "web",
				FixedIPs: []rpc.FixedIP{{SubnetID: "sub-4", IPAddress: "10.0.0.11"}}},
			{ID: "p-c", MAC: "fa:16:3e:00:00:0c", Host: "hostC", AdminStateUp: true},
			{ID: "p-dhcp", MAC: "fa:16:3e:00:00:02", Host: "hostA", DeviceOwner: rpc.DeviceOwnerDHCP, AdminStateUp: true,
				FixedIPs: []rpc.FixedIP{{SubnetID: "sub-4", IPAddress: "10.0.0.2"}}},
		},
		Hosts: []rpc.Host{{Host: "hostA", TunnelIP: "192.0.2.1"}, {Host: "hostB", TunnelIP: "192.0.2.2"}, {Host: "hostC"}},
	}
}

func TestNetworkSpecPeers(t *testing.T) {
	got := networkSpec(sampleNetwork(), hostSet{"hostA"})
	want := linux.NetworkSpec{ID: "net-1", MTU: 1450, Segment: linux.Segment{Type: "vxlan", SegmentationID: 77},
		// hostC has not reported a tunnel address yet: no entry for it.
		Peers: []linux.Peer{{IP: netip.MustParseAddr("192.0.2.2"), MACs: []string{"fa:16:3e:00:00:0b"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spec\n got %+v\nwant %+v", got, want)
	}
	if ports := localPorts(sampleNetwork(), hostSet{"hostA"}); len(ports) != 1 || ports[0].ID != "p-a" {
		t.Fatalf("local ports of hostA: %+v", ports)
	}
	if p := dhcpPort(sampleNetwork(), "hostA"); p == nil || p.ID != "p-dhcp" {
		t.Fatalf("dhcp port: %+v", p)
	}
	if p := dhcpPort(sampleNetwork(), "hostB"); p != nil {
		t.Fatalf("dhcp port on hostB: %+v", p)
	}
}

func TestDHCPTable(t *testing.T) {
	n := sampleNetwork()
	tbl := dhcpTable(n, dhcpPort(n, "hostA"), time.Hour, true)
	if tbl.ServerIP != netip.MustParseAddr("10.0.0.2") || tbl.LeaseTime != time.Hour || len(tbl.ByMAC) != 2 {
		t.Fatalf("table: %+v", tbl)
	}
	a := tbl.ByMAC["fa:16:3e:00:00:0a"]
	want := linux.Lease{MAC: "fa:16:3e:00:00:0a", IP: netip.MustParseAddr("10.0.0.10"), Subnet: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: netip.MustParseAddr("10.0.0.1"), DNS: []netip.Addr{netip.MustParseAddr("9.9.9.9")}, MTU: 1450,
		Routes: []linux.Route{{Dst: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("10.0.0.254")},
			{Dst: netip.MustParsePrefix("169.254.169.254/32"), Via: netip.MustParseAddr("10.0.0.2")}},
		Hostname: "host-10-0-0-10", Domain: "openstacklocal."}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("lease\n got %+v\nwant %+v", a, want)
	}
	if b := tbl.ByMAC["fa:16:3e:00:00:0b"]; b.Hostname != "web" || b.IP.String() != "10.0.0.11" {
		t.Fatalf("lease b: %+v", b)
	}
	// Without metadata no route to 169.254.169.254 is handed out.
	if r := dhcpTable(n, dhcpPort(n, "hostA"), time.Hour, false).ByMAC["fa:16:3e:00:00:0a"].Routes; len(r) != 1 {
		t.Fatalf("routes without metadata: %v", r)
	}
	// A DHCP-disabled subnet serves nobody.
	n.Subnets[0].EnableDHCP = false
	if tbl := dhcpTable(n, dhcpPort(n, "hostA"), time.Hour, true); len(tbl.ByMAC) != 0 || wantsDHCP(n) {
		t.Fatalf("dhcp off: %+v", tbl.ByMAC)
	}
}

func TestServicePort(t *testing.T) {
	n := sampleNetwork()
	sp := servicePort(n, dhcpPort(n, "hostA"), "qdhcp-net-1", true)
	want := linux.ServicePort{Namespace: "qdhcp-net-1", PortID: "p-dhcp", MAC: "fa:16:3e:00:00:02", Bridge: "brqnet-1", MTU: 1450,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("169.254.169.254/32")}}
	if !reflect.DeepEqual(sp, want) {
		t.Fatalf("service port\n got %+v\nwant %+v", sp, want)
	}
}

func TestDHCP6Table(t *testing.T) {
	n := sampleNetwork()
	n.Subnets = append(n.Subnets,
		rpc.Subnet{ID: "sub-st", IPVersion: 6, CIDR: "2001:db8:1::/64", EnableDHCP: true, IPv6AddrMode: "dhcpv6-stateful", IPv6RAMode: "dhcpv6-stateful",
			DNSNameservers: []string{"2001:db8::53", "9.9.9.9"}},
		rpc.Subnet{ID: "sub-st2", IPVersion: 6, CIDR: "2001:db8:2::/64", EnableDHCP: true, IPv6AddrMode: "dhcpv6-stateful",
			DNSNameservers: []string{"2001:db8::53", "2001:db8::54"}},
		rpc.Subnet{ID: "sub-sl", IPVersion: 6, CIDR: "2001:db8:3::/64", EnableDHCP: true, IPv6AddrMode: "dhcpv6-stateless", DNSNameservers: []string{"2001:db8:3::53"}},
		rpc.Subnet{ID: "sub-slaac", IPVersion: 6, CIDR: "2001:db8:4::/64", EnableDHCP: true, IPv6AddrMode: "slaac", DNSNameservers: []string{"2001:db8:4::53"}},
		rpc.Subnet{ID: "sub-off", IPVersion: 6, CIDR: "2001:db8:5::/64", EnableDHCP: false, IPv6AddrMode: "dhcpv6-stateful"})
	n.Ports[0].FixedIPs = append(n.Ports[0].FixedIPs, rpc.FixedIP{SubnetID: "sub-st", IPAddress: "2001:db8:1::a"},
		rpc.FixedIP{SubnetID: "sub-st2", IPAddress: "2001:db8:2::a"}, rpc.FixedIP{SubnetID: "sub-off", IPAddress: "2001:db8:5::a"})
	n.Ports[1].FixedIPs = append(n.Ports[1].FixedIPs, rpc.FixedIP{SubnetID: "sub-sl", IPAddress: "2001:db8:3::b"})
	n.Ports[2].FixedIPs = []rpc.FixedIP{{SubnetID: "sub-slaac", IPAddress: "2001:db8:4::c"}}
	n.Ports[3].FixedIPs = append(n.Ports[3].FixedIPs, rpc.FixedIP{SubnetID: "sub-st", IPAddress: "2001:db8:1::2"})
	if !wantsDHCP6(n) {
		t.Fatal("wantsDHCP6 = false")
	}
	got := dhcp6Table(n, dhcpPort(n, "hostA"), time.Hour)
	want := &linux.DHCP6Table{ServerMAC: net.HardwareAddr{0xfa, 0x16, 0x3e, 0, 0, 2}, LeaseTime: time.Hour,
		OnLink: []netip.Prefix{netip.MustParsePrefix("fd00::/64"), netip.MustParsePrefix("2001:db8:1::/64"), netip.MustParsePrefix("2001:db8:2::/64"),
			netip.MustParsePrefix("2001:db8:3::/64"), netip.MustParsePrefix("2001:db8:4::/64"), netip.MustParsePrefix("2001:db8:5::/64")},
		ByMAC: map[string]linux.Lease6{
			// Two stateful subnets: both addresses, DNS servers merged; v4 servers left out.
			"fa:16:3e:00:00:0a": {MAC: "fa:16:3e:00:00:0a", Addrs: []netip.Addr{netip.MustParseAddr("2001:db8:1::a"), netip.MustParseAddr("2001:db8:2::a")},
				DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")}, Domain: "openstacklocal."},
			// Stateless: options only.
			"fa:16:3e:00:00:0b": {MAC: "fa:16:3e:00:00:0b", DNS: []netip.Addr{netip.MustParseAddr("2001:db8:3::53")}, Domain: "openstacklocal."},
			// p-c is on a slaac subnet only: no entry, and no entry for the DHCP port.
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("table\n got %+v\nwant %+v", got, want)
	}
	// Only slaac (and DHCP-disabled) IPv6 subnets left: no DHCPv6 server.
	n.Subnets = slices.DeleteFunc(n.Subnets, func(s rpc.Subnet) bool { return s.ID == "sub-st" || s.ID == "sub-st2" || s.ID == "sub-sl" })
	if wantsDHCP6(n) {
		t.Fatal("wantsDHCP6 with slaac subnets only")
	}
	n.Subnets[0].EnableDHCP = false // the IPv4 subnet
	if wantsDHCP(n) {
		t.Fatal("wantsDHCP with slaac subnets only")
	}
	n.Subnets = append(n.Subnets, rpc.Subnet{ID: "sub-sl", IPVersion: 6, CIDR: "2001:db8:3::/64", EnableDHCP: true, IPv6AddrMode: "dhcpv6-stateless"})
	if !wantsDHCP(n) || !wantsDHCP6(n) {
		t.Fatal("an IPv6-only network with a stateless subnet wants DHCP")
	}
}
