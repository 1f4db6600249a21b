package l3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/kumo-cloud/kumo/internal/network/linux/nft"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routeProto tags the routes Apply owns in a router namespace ("kumo" in
// /etc/iproute2/rt_protos terms), so it can find and remove its own.
const routeProto = 75

// RouterError is a problem with one router; others are still converged.
type RouterError struct {
	RouterID string
	Err      error
}

func (e *RouterError) Error() string { return "router " + e.RouterID + ": " + e.Err.Error() }
func (e *RouterError) Unwrap() error { return e.Err }

// Manager converges the routers of one host.
type Manager struct {
	log    *slog.Logger
	prefix string
	hostNS netns.NsHandle

	mu      sync.Mutex
	routers map[string]*routerState // namespace → state
}

type routerState struct {
	ns     netns.NsHandle
	syncer *nft.Syncer
}

// Options configure a Manager.
type Options struct {
	// HostNetNS is the path of the namespace holding the host ends of
	// router ports (and their bridges); empty: the process's namespace.
	HostNetNS string
	// NamespacePrefix replaces "qrouter-" (tests keep their routers apart
	// from a real agent's with it). Apply removes every namespace with this
	// prefix that is not desired.
	NamespacePrefix string
}

// New returns a Manager.
func New(log *slog.Logger, o Options) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: log, prefix: o.NamespacePrefix, routers: map[string]*routerState{}}
	if m.prefix == "" {
		m.prefix = "qrouter-"
	}
	var err error
	if o.HostNetNS != "" {
		m.hostNS, err = netns.GetFromPath(o.HostNetNS)
	} else {
		m.hostNS, err = netns.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("host network namespace: %w", err)
	}
	return m, nil
}

// Close releases namespace handles (routers keep running).
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, st := range m.routers {
		st.ns.Close()
		delete(m.routers, name)
	}
	m.hostNS.Close()
}

// Apply converges every router in d and removes routers not in it. It is
// idempotent. Problems of single routers come back as *RouterError values
// (errors.Join); the other routers are converged regardless.
func (m *Manager) Apply(ctx context.Context, d Desired) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	want := map[string]bool{}
	for _, r := range d.Routers {
		if err := ctx.Err(); err != nil {
			return err
		}
		plan, perr := Render(r)
		plan.Namespace = m.prefix + r.ID
		want[plan.Namespace] = true
		if perr != nil {
			errs = append(errs, &RouterError{r.ID, perr})
		}
		if err := m.applyRouter(ctx, plan); err != nil {
			m.log.Error("router not converged", "router", r.ID, "err", err)
			errs = append(errs, &RouterError{r.ID, err})
		}
	}
	if err := m.collect(want); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// collect deletes router namespaces that are not wanted.
func (m *Manager) collect(want map[string]bool) error {
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, m.prefix) || want[name] {
			continue
		}
		if st := m.routers[name]; st != nil {
			st.ns.Close()
			delete(m.routers, name)
		}
		if err := netns.DeleteNamed(name); err != nil {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", name, err))
			continue
		}
		m.log.Info("router namespace removed", "netns", name)
	}
	return errors.Join(errs...)
}

func (m *Manager) state(name string) (*routerState, error) {
	if st := m.routers[name]; st != nil {
		return st, nil
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		if h, err = newNamedNS(name); err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", name, err)
		}
	}
	st := &routerState{ns: h}
	fd := int(h)
	st.syncer = nft.NewSyncer(func() (*nftables.Conn, error) { return nftables.New(nftables.WithNetNSFd(fd)) })
	m.routers[name] = st
	return st, nil
}

// newNamedNS creates a named namespace without moving the calling
// goroutine: the creating thread switches back before it is released.
func newNamedNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// The thread is stuck in the wrong namespace: keep it locked so
		// the runtime retires it with this goroutine.
		return h, errors.Join(err, serr)
	}
	runtime.UnlockOSThread()
	return h, err
}

// inNS runs fn on a thread in ns (for /proc/sys/net, which follows the
// calling thread's namespace).
func inNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func writeSysctl(path, val string) error {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == val {
		return nil
	}
	return os.WriteFile(path, []byte(val+"\n"), 0o644)
}

func (m *Manager) applyRouter(ctx context.Context, p *Plan) error {
	st, err := m.state(p.Namespace)
	if err != nil {
		return err
	}
	err = inNS(st.ns, func() error {
		if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		// IPv6 may be disabled on the host; forwarding for it is best effort.
		_ = writeSysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")
		return nil
	})
	if err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	nsH, err := netlink.NewHandleAt(st.ns)
	if err != nil {
		return err
	}
	defer nsH.Close()
	hostH, err := netlink.NewHandleAt(m.hostNS)
	if err != nil {
		return err
	}
	defer hostH.Close()
	if lo, err := nsH.LinkByName("lo"); err == nil {
		_ = nsH.LinkSetUp(lo)
	}
	var errs []error
	wantLinks := map[string]bool{}
	for _, l := range p.Links {
		wantLinks[l.Name] = true
		if err := ensureLink(nsH, hostH, st.ns, l); err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", l.PortID, err))
		}
	}
	links, err := nsH.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		name := l.Attrs().Name
		if (strings.HasPrefix(name, "qr-") || strings.HasPrefix(name, "qg-")) && !wantLinks[name] {
			if err := nsH.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
			}
		}
	}
	if err := syncRoutes(nsH, p.Routes); err != nil {
		errs = append(errs, err)
	}
	if _, err := st.syncer.Sync(ctx, p.NAT); err != nil {
		errs = append(errs, fmt.Errorf("nat: %w", err))
	}
	return errors.Join(errs...)
}

func ensureLink(nsH, hostH *netlink.Handle, ns netns.NsHandle, l LinkPlan) error {
	in, err := nsH.LinkByName(l.Name)
	if err != nil {
		// A host end without its peer is a leftover of a crash: replace it.
		if old, err := hostH.LinkByName(l.HostName); err == nil {
			if err := hostH.LinkDel(old); err != nil {
				return fmt.Errorf("remove leftover %s: %w", l.HostName, err)
			}
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.HostName, MTU: l.MTU},
			PeerName: l.Name, PeerNamespace: netlink.NsFd(int(ns)), PeerHardwareAddr: l.MAC}
		if l.MTU > 0 {
			veth.PeerMTU = uint32(l.MTU)
		}
		if err := hostH.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s/%s: %w", l.HostName, l.Name, err)
		}
		if in, err = nsH.LinkByName(l.Name); err != nil {
			return err
		}
	}
	host, err := hostH.LinkByName(l.HostName)
	if err != nil {
		return fmt.Errorf("host end %s: %w", l.HostName, err)
	}
	if l.MAC != nil && in.Attrs().HardwareAddr.String() != l.MAC.String() {
		if err := nsH.LinkSetHardwareAddr(in, l.MAC); err != nil {
			return fmt.Errorf("set mac: %w", err)
		}
	}
	if l.MTU > 0 {
		for _, x := range []struct {
			h *netlink.Handle
			l netlink.Link
		}{{nsH, in}, {hostH, host}} {
			if x.l.Attrs().MTU != l.MTU {
				if err := x.h.LinkSetMTU(x.l, l.MTU); err != nil {
					return fmt.Errorf("set mtu: %w", err)
				}
			}
		}
	}
	if l.Bridge != "" {
		br, err := hostH.LinkByName(l.Bridge)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", l.Bridge, err)
		}
		if host.Attrs().MasterIndex != br.Attrs().Index {
			if err := hostH.LinkSetMaster(host, br); err != nil {
				return fmt.Errorf("plug into %s: %w", l.Bridge, err)
			}
		}
	}
	if err := hostH.LinkSetUp(host); err != nil {
		return err
	}
	if err := nsH.LinkSetUp(in); err != nil {
		return err
	}
	return syncAddrs(nsH, in, l.Addrs)
}

func syncAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	have, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	var errs []error
	present := map[netip.Prefix]bool{}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			continue
		}
		if !slices.Contains(want, p) {
			if err := h.AddrDel(link, &a); err != nil {
				errs = append(errs, fmt.Errorf("remove address %s: %w", p, err))
			}
			continue
		}
		present[p] = true
	}
	for _, p := range want {
		if present[p] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add address %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func syncRoutes(h *netlink.Handle, want []RoutePlan) error {
	var errs []error
	key := func(dst netip.Prefix, via netip.Addr) string { return dst.String() + " via " + via.String() }
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[key(r.Dst, r.Via)] = true
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		have, err := h.RouteListFiltered(fam, &netlink.Route{Protocol: routeProto}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		for _, r := range have {
			dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if fam == netlink.FAMILY_V6 {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			if r.Dst != nil {
				ip, _ := netip.AddrFromSlice(r.Dst.IP)
				ones, _ := r.Dst.Mask.Size()
				dst = netip.PrefixFrom(ip.Unmap(), ones)
			}
			via, _ := netip.AddrFromSlice(r.Gw)
			if !wanted[key(dst, via.Unmap())] {
				if err := h.RouteDel(&r); err != nil {
					errs = append(errs, fmt.Errorf("remove route %s: %w", key(dst, via), err))
				}
			}
		}
	}
	for _, r := range want {
		dst := &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
		rt := &netlink.Route{Dst: dst, Gw: r.Via.AsSlice(), Protocol: routeProto}
		if err := h.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}
