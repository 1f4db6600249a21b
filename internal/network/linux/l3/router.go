// Package l3 runs Neutron routers on a Linux host: one network namespace per
// router ("qrouter-<id>") with IP forwarding on, a veth pair per router port
// — "qr-…" (subnet interface) or "qg-…" (external gateway) inside the
// namespace, "tap…" on the host for the L2 agent to plug into the network's
// bridge — the port's addresses, the default route through the external
// gateway, extra routes, and NAT in an nftables table of the namespace:
// SNAT of outbound traffic to the gateway address (enable_snat), floating
// IPs as 1:1 DNAT + SNAT (the floating addresses live on the qg- device, so
// the router answers ARP for them), and port forwardings (floating IP and
// port → internal address and port).
//
// Apply converges the host to a Desired state and removes routers, devices,
// addresses, routes and NAT rules that are no longer desired, including
// leftovers of a crashed agent (any "qrouter-" namespace not desired).
package l3

import (
	"fmt"
	"net"
	"net/netip"
)

// Desired is every router on this host.
type Desired struct {
	Routers []Router
}

// Router is one Neutron router as it should be.
type Router struct {
	ID         string
	Interfaces []Interface // router interfaces on subnets (qr-)
	Gateway    *Gateway    // external gateway (qg-), nil: none
	EnableSNAT bool
	Routes     []Route // extra routes
	// FloatingIPs with a fixed IP (associated); unassociated ones are not
	// listed.
	FloatingIPs     []FloatingIP
	PortForwardings []PortForwarding
}

// Interface is a router port on an internal subnet.
type Interface struct {
	PortID     string
	MACAddress string
	IPs        []string // CIDR notation: the port's address and the subnet's prefix length
	MTU        int      // 0: leave the kernel's default
	// Bridge, when set, is the host bridge the host end is enslaved to;
	// empty leaves plugging to the L2 agent (see DeviceNames).
	Bridge string
}

// Gateway is the router's port on the external network.
type Gateway struct {
	Interface
	NextHops []string // the external subnets' gateway IPs (default routes)
}

// Route is an extra route.
type Route struct {
	Destination string // CIDR
	NextHop     string
}

// FloatingIP maps a public address 1:1 to an internal one.
type FloatingIP struct {
	FloatingIP string
	FixedIP    string
}

// PortForwarding maps a floating IP's port to an internal address's port.
type PortForwarding struct {
	FloatingIP   string
	Protocol     string // "tcp" or "udp"
	ExternalPort int
	InternalIP   string
	InternalPort int
}

// Namespace is the router's namespace name.
func Namespace(routerID string) string { return "qrouter-" + routerID }

// DeviceNames returns the device names of a router port: inside the
// router's namespace ("qr-" or "qg-" and 11 characters of the port id) and
// on the host ("tap" and the same 11 characters), where the L2 agent plugs
// it into the network's bridge like any other port.
func DeviceNames(portID string, gateway bool) (inNS, host string) {
	short := portID
	if len(short) > 11 {
		short = short[:11]
	}
	if gateway {
		return "qg-" + short, "tap" + short
	}
	return "qr-" + short, "tap" + short
}

// HostDevices lists the host-side devices of every router port in d with
// the port they belong to, for the L2 agent.
func HostDevices(d Desired) map[string]string {
	out := map[string]string{}
	for _, r := range d.Routers {
		for _, i := range r.Interfaces {
			_, h := DeviceNames(i.PortID, false)
			out[h] = i.PortID
		}
		if g := r.Gateway; g != nil {
			_, h := DeviceNames(g.PortID, true)
			out[h] = g.PortID
		}
	}
	return out
}

func parseCIDRs(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid address %q (want CIDR)", s)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("invalid mac_address %q", s)
	}
	return m, nil
}
