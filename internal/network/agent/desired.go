package agent

import (
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

// wantsDHCP reports whether a network has an IPv4 subnet with DHCP on.
func wantsDHCP(n *rpc.NetworkState) bool {
	if n.Deleted || !n.AdminStateUp {
		return false
	}
	for _, s := range n.Subnets {
		if s.EnableDHCP && s.IPVersion == 4 {
			return true
		}
	}
	return false
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
