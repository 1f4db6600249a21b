package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/network/linux/l3"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// L3 runs this host's routers in namespaces (internal/network/linux/l3):
// the routers whose ports the control plane put on this host.
type L3 struct {
	M *l3.Manager
}

// NewL3 returns the router manager of the process's namespace; its
// router namespaces are named prefix + "qrouter-<id>".
func NewL3(log *slog.Logger, prefix string) (*L3, error) {
	m, err := l3.New(log, l3.Options{NamespacePrefix: prefix + "qrouter-"})
	if err != nil {
		return nil, err
	}
	return &L3{M: m}, nil
}

// Apply implements Routers.
func (l *L3) Apply(ctx context.Context, host string, routers []*rpc.RouterState, nets map[string]*rpc.NetworkState) error {
	return l.M.Apply(ctx, routerDesired(host, routers, nets))
}

// Close releases the manager's handles; routers keep running.
func (l *L3) Close() { l.M.Close() }

// routerDesired renders the routers with a port on host: interfaces with
// their subnets' prefix lengths and MTU, the gateway with the external
// subnets' gateways as next hops, routes, floating IPs, port forwardings.
func routerDesired(host string, routers []*rpc.RouterState, nets map[string]*rpc.NetworkState) l3.Desired {
	var d l3.Desired
	iface := func(p rpc.Port) (l3.Interface, *rpc.NetworkState) {
		n := nets[p.NetworkID]
		out := l3.Interface{PortID: p.ID, MACAddress: strings.ToLower(p.MAC)}
		if n == nil {
			return out, nil
		}
		out.MTU = n.MTU
		for _, f := range p.FixedIPs {
			for _, s := range n.Subnets {
				pfx, err := netip.ParsePrefix(s.CIDR)
				ip, err2 := netip.ParseAddr(f.IPAddress)
				if s.ID == f.SubnetID && err == nil && err2 == nil {
					out.IPs = append(out.IPs, netip.PrefixFrom(ip, pfx.Bits()).String())
				}
			}
		}
		return out, n
	}
	for _, r := range routers {
		if r == nil || r.Deleted || !r.AdminStateUp {
			continue
		}
		here := r.Gateway != nil && r.Gateway.Host == host
		for _, p := range r.Interfaces {
			here = here || p.Host == host
		}
		if !here {
			continue
		}
		lr := l3.Router{ID: r.ID, EnableSNAT: r.EnableSNAT}
		for _, p := range r.Interfaces {
			i, _ := iface(p)
			lr.Interfaces = append(lr.Interfaces, i)
		}
		if r.Gateway != nil {
			i, n := iface(*r.Gateway)
			gw := &l3.Gateway{Interface: i}
			if n != nil {
				for _, s := range n.Subnets {
					if s.GatewayIP != "" {
						gw.NextHops = append(gw.NextHops, s.GatewayIP)
					}
				}
			}
			lr.Gateway = gw
		}
		for _, rt := range r.Routes {
			lr.Routes = append(lr.Routes, l3.Route{Destination: rt.Destination, NextHop: rt.Nexthop})
		}
		for _, f := range r.FloatingIPs {
			lr.FloatingIPs = append(lr.FloatingIPs, l3.FloatingIP{FloatingIP: f.FloatingIP, FixedIP: f.FixedIP})
		}
		for _, pf := range r.PortForwardings {
			lr.PortForwardings = append(lr.PortForwardings, l3.PortForwarding{FloatingIP: pf.FloatingIP, Protocol: pf.Protocol,
				ExternalPort: pf.ExternalPort, InternalIP: pf.InternalIP, InternalPort: pf.InternalPort})
		}
		d.Routers = append(d.Routers, lr)
	}
	slices.SortFunc(d.Routers, func(a, b l3.Router) int { return strings.Compare(a.ID, b.ID) })
	return d
}
