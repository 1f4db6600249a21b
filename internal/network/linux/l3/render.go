package l3

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/kumo-cloud/kumo/internal/network/linux/nft"
	"golang.org/x/sys/unix"
)

// NATTable is the nftables table (family ip) in each router namespace.
const NATTable = "kumo_router"

// Plan is a router rendered to kernel objects: what Apply makes true.
type Plan struct {
	Namespace string
	Links     []LinkPlan
	Routes    []RoutePlan
	NAT       *nft.Ruleset
}

// LinkPlan is one veth pair.
type LinkPlan struct {
	Name     string // in the router namespace
	HostName string
	PortID   string
	MAC      net.HardwareAddr
	Addrs    []netip.Prefix
	MTU      int
	Bridge   string
}

// RoutePlan is one route in the router namespace.
type RoutePlan struct {
	Dst netip.Prefix
	Via netip.Addr
}

func (r RoutePlan) String() string { return r.Dst.String() + " via " + r.Via.String() }

// Render turns one router into its plan. Invalid pieces (an unparsable
// address, a port forwarding to nowhere) are reported and left out; the
// rest is still planned.
func Render(r Router) (*Plan, error) {
	p := &Plan{Namespace: Namespace(r.ID)}
	var errs []error
	link := func(i Interface, gw bool, extra []netip.Prefix) *LinkPlan {
		name, host := DeviceNames(i.PortID, gw)
		l := LinkPlan{Name: name, HostName: host, PortID: i.PortID, MTU: i.MTU, Bridge: i.Bridge}
		var err error
		if l.MAC, err = parseMAC(i.MACAddress); err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", i.PortID, err))
		}
		addrs, err := parseCIDRs(i.IPs)
		if err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", i.PortID, err))
		}
		for _, a := range append(addrs, extra...) {
			if !slices.Contains(l.Addrs, a) {
				l.Addrs = append(l.Addrs, a)
			}
		}
		p.Links = append(p.Links, l)
		return &p.Links[len(p.Links)-1]
	}
	for _, i := range r.Interfaces {
		link(i, false, nil)
	}
	nat := &nft.Table{Family: nftables.TableFamilyIPv4, Name: NATTable}
	pre := &nft.Chain{Name: "prerouting", Hook: &nft.Hook{Type: nftables.ChainTypeNAT, Hooknum: *nftables.ChainHookPrerouting, Priority: -100, Policy: nftables.ChainPolicyAccept}}
	post := &nft.Chain{Name: "postrouting", Hook: &nft.Hook{Type: nftables.ChainTypeNAT, Hooknum: *nftables.ChainHookPostrouting, Priority: 100, Policy: nftables.ChainPolicyAccept}}
	nat.Chains = []*nft.Chain{pre, post}
	p.NAT = &nft.Ruleset{Tables: []*nft.Table{nat}}

	if g := r.Gateway; g != nil {
		qg, _ := DeviceNames(g.PortID, true)
		// Floating addresses live on the gateway device.
		var fips []netip.Prefix
		type fip struct{ pub, priv netip.Addr }
		var fs []fip
		for _, f := range r.FloatingIPs {
			pub, err1 := netip.ParseAddr(f.FloatingIP)
			priv, err2 := netip.ParseAddr(f.FixedIP)
			if err1 != nil || err2 != nil || !pub.Is4() || !priv.Is4() {
				errs = append(errs, fmt.Errorf("floating ip %q → %q: invalid IPv4 addresses", f.FloatingIP, f.FixedIP))
				continue
			}
			fs = append(fs, fip{pub, priv})
			fips = append(fips, netip.PrefixFrom(pub, 32))
		}
		sort.Slice(fs, func(i, j int) bool { return fs[i].pub.Less(fs[j].pub) })
		var pfRules []nft.Rule
		for _, pf := range r.PortForwardings {
			rule, pub, err := portForward(pf)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			pfRules = append(pfRules, rule)
			fips = append(fips, netip.PrefixFrom(pub, 32))
		}
		sort.Slice(pfRules, func(i, j int) bool { return pfRules[i].Text < pfRules[j].Text })
		gl := link(g.Interface, true, fips)
		var gw4 netip.Addr
		for _, a := range gl.Addrs {
			if a.Addr().Is4() && a.Bits() < 32 {
				gw4 = a.Addr()
				break
			}
		}
		for _, nh := range g.NextHops {
			a, err := netip.ParseAddr(nh)
			if err != nil {
				errs = append(errs, fmt.Errorf("invalid gateway next hop %q", nh))
				continue
			}
			dst := netip.MustParsePrefix("0.0.0.0/0")
			if a.Is6() {
				dst = netip.MustParsePrefix("::/0")
			}
			p.Routes = append(p.Routes, RoutePlan{Dst: dst, Via: a})
		}
		pre.Rules = append(pre.Rules, pfRules...)
		for _, f := range fs {
			pre.Rules = append(pre.Rules, nft.NewRule().Addr(false, netip.PrefixFrom(f.pub, 32)).NAT(true, f.priv, 0).Rule())
		}
		for _, f := range fs {
			post.Rules = append(post.Rules, nft.NewRule().Ifname(true, qg).Addr(true, netip.PrefixFrom(f.priv, 32)).NAT(false, f.pub, 0).Rule())
		}
		if r.EnableSNAT {
			if gw4.IsValid() {
				post.Rules = append(post.Rules, nft.NewRule().Ifname(true, qg).NAT(false, gw4, 0).Rule())
			} else {
				errs = append(errs, fmt.Errorf("router %s: enable_snat without an IPv4 gateway address", r.ID))
			}
		}
	} else if len(r.FloatingIPs)+len(r.PortForwardings) > 0 {
		errs = append(errs, fmt.Errorf("router %s: floating IPs need an external gateway", r.ID))
	}
	for _, rt := range r.Routes {
		dst, err1 := netip.ParsePrefix(rt.Destination)
		via, err2 := netip.ParseAddr(rt.NextHop)
		if err1 != nil || err2 != nil || dst.Addr().Is4() != via.Is4() {
			errs = append(errs, fmt.Errorf("invalid route %s via %s", rt.Destination, rt.NextHop))
			continue
		}
		p.Routes = append(p.Routes, RoutePlan{Dst: dst.Masked(), Via: via})
	}
	sort.Slice(p.Links, func(i, j int) bool { return p.Links[i].Name < p.Links[j].Name })
	sort.Slice(p.Routes, func(i, j int) bool { return p.Routes[i].String() < p.Routes[j].String() })
	return p, errors.Join(errs...)
}

func portForward(pf PortForwarding) (nft.Rule, netip.Addr, error) {
	pub, err1 := netip.ParseAddr(pf.FloatingIP)
	priv, err2 := netip.ParseAddr(pf.InternalIP)
	bad := func(why string) (nft.Rule, netip.Addr, error) {
		return nft.Rule{}, netip.Addr{}, fmt.Errorf("port forwarding %s:%d → %s:%d: %s", pf.FloatingIP, pf.ExternalPort, pf.InternalIP, pf.InternalPort, why)
	}
	if err1 != nil || err2 != nil || !pub.Is4() || !priv.Is4() {
		return bad("invalid IPv4 addresses")
	}
	var proto uint8
	switch strings.ToLower(pf.Protocol) {
	case "tcp":
		proto = unix.IPPROTO_TCP
	case "udp":
		proto = unix.IPPROTO_UDP
	default:
		return bad(fmt.Sprintf("invalid protocol %q", pf.Protocol))
	}
	if pf.ExternalPort < 1 || pf.ExternalPort > 65535 || pf.InternalPort < 1 || pf.InternalPort > 65535 {
		return bad("ports must be 1-65535")
	}
	r := nft.NewRule().Addr(false, netip.PrefixFrom(pub, 32)).L4Proto(proto).
		Port(true, uint16(pf.ExternalPort), uint16(pf.ExternalPort)).NAT(true, priv, uint16(pf.InternalPort)).Rule()
	return r, pub, nil
}

// String prints the plan for golden tests.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "netns %s\n", p.Namespace)
	b.WriteString("sysctl net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1\n")
	for _, l := range p.Links {
		fmt.Fprintf(&b, "link %s peer %s port %s mac %s", l.Name, l.HostName, l.PortID, l.MAC)
		if l.MTU > 0 {
			fmt.Fprintf(&b, " mtu %d", l.MTU)
		}
		if l.Bridge != "" {
			fmt.Fprintf(&b, " bridge %s", l.Bridge)
		}
		b.WriteString("\n")
		for _, a := range l.Addrs {
			fmt.Fprintf(&b, "  addr %s\n", a)
		}
	}
	for _, r := range p.Routes {
		fmt.Fprintf(&b, "route %s\n", r)
	}
	b.WriteString(p.NAT.String())
	return b.String()
}
