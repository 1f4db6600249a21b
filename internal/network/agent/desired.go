package agent

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// MetadataIP is the address the metadata service answers on.
var MetadataIP = netip.MustParseAddr("169.254.169.254")

// hostSet lists the host names whose ports live on this machine.
type hostSet []string

func (s hostSet) has(h string) bool { return h != "" && slices.Contains(s, h) }

// localPorts are the ports of a network bound to the local hosts that the
// agent wires into the bridge (VM and other device ports, not its own
// DHCP port).
func localPorts(n *rpc.NetworkState, local hostSet) []rpc.Port {
	var out []rpc.Port
	for _, p := range n.Ports {
		if local.has(p.Host) && p.DeviceOwner != rpc.DeviceOwnerDHCP {
			out = append(out, p)
		}
	}
	return out
}

// dhcpPort is the network's DHCP port on host, if the server made one.
func dhcpPort(n *rpc.NetworkState, host string) *rpc.Port {
	for i := range n.Ports {
		p := &n.Ports[i]
		if p.DeviceOwner == rpc.DeviceOwnerDHCP && p.Host == host {
			return p
		}
	}
	return nil
}

// wantsDHCP reports whether a network needs the DHCP service: an IPv4
// subnet with DHCP on, or an IPv6 one served by DHCPv6.
func wantsDHCP(n *rpc.NetworkState) bool {
	if n.Deleted || !n.AdminStateUp {
		return false
	}
	for _, s := range n.Subnets {
		if s.EnableDHCP && s.IPVersion == 4 || dhcp6Subnet(s) {
			return true
		}
	}
	return false
}

// wantsDHCP6 reports whether a network needs a DHCPv6 server.
func wantsDHCP6(n *rpc.NetworkState) bool {
	return !n.Deleted && n.AdminStateUp && slices.ContainsFunc(n.Subnets, dhcp6Subnet)
}

// dhcp6Subnet reports whether DHCPv6 serves a subnet: dhcpv6-stateful
// (addresses and options) or dhcpv6-stateless (options). As in Neutron,
// slaac subnets get nothing from DHCP.
func dhcp6Subnet(s rpc.Subnet) bool {
	return s.EnableDHCP && s.IPVersion == 6 && (s.IPv6AddrMode == addrModeStateful || s.IPv6AddrMode == addrModeStateless)
}

// Neutron's ipv6_address_mode values served by DHCPv6.
const (
	addrModeStateful  = "dhcpv6-stateful"
	addrModeStateless = "dhcpv6-stateless"
)

// dhcp6Table renders the DHCPv6 answers of a network: every port with an
// address on a DHCPv6 subnet gets its dhcpv6-stateful fixed addresses and
// the DNS servers of those subnets (dns_nameservers; like DHCPv4, no
// default), the network's dns_domain as search list.
func dhcp6Table(n *rpc.NetworkState, server *rpc.Port, leaseTime time.Duration) *linux.DHCP6Table {
	t := &linux.DHCP6Table{ByMAC: map[string]linux.Lease6{}, LeaseTime: leaseTime}
	if server != nil {
		t.ServerMAC, _ = net.ParseMAC(server.MAC)
	}
	subnets := map[string]rpc.Subnet{}
	for _, s := range n.Subnets {
		if pfx, err := netip.ParsePrefix(s.CIDR); err == nil && s.IPVersion == 6 {
			t.OnLink = append(t.OnLink, pfx.Masked())
		}
		if dhcp6Subnet(s) {
			subnets[s.ID] = s
		}
	}
	for _, p := range n.Ports {
		if server != nil && p.ID == server.ID || p.DeviceOwner == rpc.DeviceOwnerDHCP {
			continue
		}
		l := linux.Lease6{MAC: strings.ToLower(p.MAC), Domain: n.DNSDomain}
		served := false
		for _, f := range p.FixedIPs {
			s, ok := subnets[f.SubnetID]
			ip, err := netip.ParseAddr(f.IPAddress)
			if !ok || err != nil || !ip.Is6() {
				continue
			}
			served = true
			if s.IPv6AddrMode == addrModeStateful {
				l.Addrs = append(l.Addrs, ip)
			}
			for _, d := range s.DNSNameservers {
				if a, err := netip.ParseAddr(d); err == nil && a.Is6() && !slices.Contains(l.DNS, a) {
					l.DNS = append(l.DNS, a)
				}
			}
		}
		if served {
			t.ByMAC[l.MAC] = l
		}
	}
	return t
}

// networkSpec renders a network's state for this host's L2: peers are the
// other hosts with ports on it, with the MACs of their ports.
func networkSpec(n *rpc.NetworkState, local hostSet) linux.NetworkSpec {
	spec := linux.NetworkSpec{ID: n.ID, MTU: n.MTU,
		Segment: linux.Segment{Type: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork, SegmentationID: n.SegmentationID}}
	if n.NetworkType != "vxlan" {
		return spec
	}
	macs := map[string][]string{}
	for _, p := range n.Ports {
		if p.Host != "" && !local.has(p.Host) && p.MAC != "" {
			macs[p.Host] = append(macs[p.Host], strings.ToLower(p.MAC))
		}
	}
	for _, h := range n.Hosts {
		if local.has(h.Host) || h.TunnelIP == "" {
			continue
		}
		ip, err := netip.ParseAddr(h.TunnelIP)
		if err != nil {
			continue
		}
		m := macs[h.Host]
		slices.Sort(m)
		spec.Peers = append(spec.Peers, linux.Peer{IP: ip, MACs: m})
	}
	slices.SortFunc(spec.Peers, func(a, b linux.Peer) int { return a.IP.Compare(b.IP) })
	return spec
}

// dhcpTable renders the DHCP answers of a network: every port's IPv4
// fixed address on a DHCP-enabled subnet, with the subnet's options.
func dhcpTable(n *rpc.NetworkState, server *rpc.Port, leaseTime time.Duration, metadata bool) *linux.DHCPTable {
	t := &linux.DHCPTable{ByMAC: map[string]linux.Lease{}, LeaseTime: leaseTime}
	serverIPs := map[string]netip.Addr{} // subnet -> DHCP port address
	if server != nil {
		for _, f := range server.FixedIPs {
			if a, err := netip.ParseAddr(f.IPAddress); err == nil && a.Is4() {
				serverIPs[f.SubnetID] = a
				if !t.ServerIP.IsValid() {
					t.ServerIP = a
				}
			}
		}
	}
	subnets := map[string]rpc.Subnet{}
	for _, s := range n.Subnets {
		if s.EnableDHCP && s.IPVersion == 4 {
			subnets[s.ID] = s
		}
	}
	for _, p := range n.Ports {
		if server != nil && p.ID == server.ID || p.DeviceOwner == rpc.DeviceOwnerDHCP {
			continue
		}
		for _, f := range p.FixedIPs {
			s, ok := subnets[f.SubnetID]
			if !ok {
				continue
			}
			ip, err1 := netip.ParseAddr(f.IPAddress)
			pfx, err2 := netip.ParsePrefix(s.CIDR)
			if err1 != nil || err2 != nil || !ip.Is4() {
				continue
			}
			l := linux.Lease{MAC: strings.ToLower(p.MAC), IP: ip, Subnet: pfx, MTU: n.MTU, Domain: n.DNSDomain}
			if gw, err := netip.ParseAddr(s.GatewayIP); err == nil {
				l.Gateway = gw
			}
			for _, d := range s.DNSNameservers {
				if a, err := netip.ParseAddr(d); err == nil && a.Is4() {
					l.DNS = append(l.DNS, a)
				}
			}
			for _, r := range s.HostRoutes {
				dst, err1 := netip.ParsePrefix(r.Destination)
				via, err2 := netip.ParseAddr(r.Nexthop)
				if err1 == nil && err2 == nil && dst.Addr().Is4() {
					l.Routes = append(l.Routes, linux.Route{Dst: dst, Via: via})
				}
			}
			if sip, ok := serverIPs[s.ID]; ok && metadata {
				// Like Neutron's isolated metadata: the guest reaches
				// 169.254.169.254 through the DHCP port.
				l.Routes = append(l.Routes, linux.Route{Dst: netip.PrefixFrom(MetadataIP, 32), Via: sip})
			}
			if p.DNSName != "" {
				l.Hostname = p.DNSName
			} else {
				l.Hostname = "host-" + strings.ReplaceAll(ip.String(), ".", "-")
			}
			t.ByMAC[l.MAC] = l
			break // one IPv4 lease per port
		}
	}
	return t
}

// servicePort renders the DHCP port as a port in the network's namespace.
func servicePort(n *rpc.NetworkState, p *rpc.Port, nsName string, metadata bool) linux.ServicePort {
	sp := linux.ServicePort{Namespace: nsName, PortID: p.ID, MAC: p.MAC, Bridge: linux.BridgeName(n.ID), MTU: n.MTU}
	cidrs := map[string]netip.Prefix{}
	for _, s := range n.Subnets {
		if pfx, err := netip.ParsePrefix(s.CIDR); err == nil {
			cidrs[s.ID] = pfx
		}
	}
	for _, f := range p.FixedIPs {
		ip, err := netip.ParseAddr(f.IPAddress)
		pfx, ok := cidrs[f.SubnetID]
		if err != nil || !ok {
			continue
		}
		sp.Addrs = append(sp.Addrs, netip.PrefixFrom(ip, pfx.Bits()))
	}
	if metadata {
		sp.Addrs = append(sp.Addrs, netip.PrefixFrom(MetadataIP, 32))
	}
	return sp
}
