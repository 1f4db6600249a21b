package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ServicePort is a port of the agent's own (the DHCP port) living in a
// namespace: a veth pair whose host side ("tap…") is in the network's
// bridge and whose other side ("ns-…") carries the port's MAC and
// addresses inside the namespace.
type ServicePort struct {
	Namespace string
	PortID    string
	MAC       string
	Addrs     []netip.Prefix
	Bridge    string
	MTU       int
}

// EnsureServicePort creates or repairs a service port; a correct one is
// left as it is. It returns the namespace, open (the caller closes it).
func (l *L2) EnsureServicePort(sp ServicePort) (netns.NsHandle, error) {
	ns, err := EnsureNamedNetns(sp.Namespace)
	if err != nil {
		return ns, err
	}
	fail := func(err error) (netns.NsHandle, error) {
		ns.Close()
		return netns.None(), err
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fail(fmt.Errorf("netlink in %s: %w", sp.Namespace, err))
	}
	defer nh.Close()
	host, inner := TapName(sp.PortID), NSDevName(sp.PortID)
	_, herr := l.h.LinkByName(host)
	in, ierr := nh.LinkByName(inner)
	if herr != nil || ierr != nil {
		// Half a pair (a crash between steps) is rebuilt from scratch.
		_ = l.DeleteLink(host)
		if ierr == nil {
			_ = nh.LinkDel(in)
		}
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU = host, sp.MTU
		v := &netlink.Veth{LinkAttrs: la, PeerName: inner, PeerNamespace: netlink.NsFd(int(ns))}
		if hw, err := net.ParseMAC(sp.MAC); err == nil {
			v.PeerHardwareAddr = hw
		}
		if err := l.h.LinkAdd(v); err != nil {
			return fail(fmt.Errorf("create veth %s/%s: %w", host, inner, err))
		}
		if in, err = nh.LinkByName(inner); err != nil {
			return fail(fmt.Errorf("veth peer %s in %s: %w", inner, sp.Namespace, err))
		}
	}
	if hw, err := net.ParseMAC(sp.MAC); err == nil && in.Attrs().HardwareAddr.String() != hw.String() {
		if err := nh.LinkSetHardwareAddr(in, hw); err != nil {
			return fail(fmt.Errorf("set mac of %s: %w", inner, err))
		}
	}
	if sp.MTU > 0 && in.Attrs().MTU != sp.MTU {
		if err := nh.LinkSetMTU(in, sp.MTU); err != nil {
			return fail(err)
		}
	}
	if err := syncAddrs(nh, in, sp.Addrs); err != nil {
		return fail(fmt.Errorf("addresses of %s: %w", inner, err))
	}
	if in.Attrs().Flags&net.FlagUp == 0 {
		if err := nh.LinkSetUp(in); err != nil {
			return fail(err)
		}
	}
	if lo, err := nh.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
		_ = nh.LinkSetUp(lo)
	}
	if err := l.Plug(host, sp.Bridge, sp.MTU); err != nil {
		return fail(err)
	}
	return ns, nil
}

// syncAddrs makes the link's global addresses exactly want.
func syncAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	have, err := h.AddrList(link, unix.AF_UNSPEC)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, p := range want {
		wanted[p.String()] = true
	}
	present := map[string]bool{}
	for _, a := range have {
		if a.IPNet == nil || a.IP.IsLinkLocalUnicast() {
			continue
		}
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if wanted[p.String()] {
			present[p.String()] = true
			continue
		}
		del := a
		if err := h.AddrDel(link, &del); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return err
		}
	}
	for _, p := range want {
		if present[p.String()] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
	}
	return nil
}

// DeleteServicePort removes a service port's veth pair and its namespace.
func (l *L2) DeleteServicePort(namespace, portID string) error {
	return errors.Join(l.DeleteLink(TapName(portID)), DeleteNamedNetns(namespace))
}
