package linux

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// L2 applies network plans to one host's network namespace through
// netlink. Every method is idempotent and leaves alone what is already
// right, so a restarted agent re-applies everything without a flap: a
// bridge, VXLAN device or tap that exists with the right settings is not
// touched.
type L2 struct {
	h   *netlink.Handle
	ns  netns.NsHandle // the host namespace; None() for the current one
	log *slog.Logger
}

// NewL2 works on the namespace ns (netns.None() for the process's own).
func NewL2(ns netns.NsHandle, log *slog.Logger) (*L2, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &L2{h: h, ns: ns, log: log}, nil
}

// Handle is the netlink handle of the host namespace.
func (l *L2) Handle() *netlink.Handle { return l.h }

// Close releases the netlink sockets.
func (l *L2) Close() { l.h.Close() }

func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// EnsureNetwork makes the bridge, the uplink and the forwarding entries of
// a plan exist as planned.
func (l *L2) EnsureNetwork(p NetworkPlan) error {
	br, err := l.ensureBridge(p.Bridge)
	if err != nil {
		return err
	}
	if p.Uplink == nil {
		return nil
	}
	up, err := l.ensureUplink(*p.Uplink, br)
	if err != nil {
		return err
	}
	if p.Uplink.Kind == KindVXLAN {
		return l.syncFDB(up, p.FDB)
	}
	return nil
}

func (l *L2) ensureBridge(spec Link) (netlink.Link, error) {
	link, err := l.h.LinkByName(spec.Name)
	if notFound(err) {
		la := netlink.NewLinkAttrs()
		la.Name = spec.Name
		la.MTU = spec.MTU
		if err := l.h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", spec.Name, err)
		}
		l.log.Info("bridge created", "bridge", spec.Name, "mtu", spec.MTU)
		link, err = l.h.LinkByName(spec.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", spec.Name, err)
	}
	if link.Type() != "bridge" {
		return nil, fmt.Errorf("bridge %s: %w (%s)", spec.Name, ErrWrongLinkType, link.Type())
	}
	return link, l.settle(link, spec.MTU, nil)
}

// settle sets MTU, master and up state where they differ.
func (l *L2) settle(link netlink.Link, mtu int, master netlink.Link) error {
	a := link.Attrs()
	if mtu > 0 && a.MTU != mtu {
		if err := l.h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set mtu %d on %s: %w", mtu, a.Name, err)
		}
	}
	if master != nil && a.MasterIndex != master.Attrs().Index {
		if err := l.h.LinkSetMaster(link, master); err != nil {
			return fmt.Errorf("add %s to %s: %w", a.Name, master.Attrs().Name, err)
		}
	}
	if a.Flags&net.FlagUp == 0 {
		if err := l.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", a.Name, err)
		}
	}
	return nil
}

func (l *L2) ensureUplink(spec Link, br netlink.Link) (netlink.Link, error) {
	link, err := l.h.LinkByName(spec.Name)
	if err != nil && !notFound(err) {
		return nil, fmt.Errorf("link %s: %w", spec.Name, err)
	}
	if link != nil && !l.uplinkMatches(spec, link) {
		l.log.Warn("replacing link with other settings", "link", spec.Name, "type", link.Type())
		if err := l.h.LinkDel(link); err != nil {
			return nil, fmt.Errorf("delete stale %s: %w", spec.Name, err)
		}
		link = nil
	}
	if link == nil {
		if err := l.createUplink(spec, br); err != nil {
			return nil, err
		}
		if link, err = l.h.LinkByName(spec.Name); err != nil {
			return nil, fmt.Errorf("link %s: %w", spec.Name, err)
		}
	}
	return link, l.settle(link, spec.MTU, br)
}

func (l *L2) uplinkMatches(spec Link, link netlink.Link) bool {
	switch spec.Kind {
	case KindPhysical:
		return true
	case KindVXLAN:
		v, ok := link.(*netlink.Vxlan)
		if !ok {
			return false
		}
		src, _ := netip.AddrFromSlice(v.SrcAddr)
		return v.VxlanId == spec.VNI && src.Unmap() == spec.Local && v.Port == spec.DstPort
	case KindVLAN:
		v, ok := link.(*netlink.Vlan)
		if !ok || v.VlanId != spec.VLANID {
			return false
		}
		parent, err := l.h.LinkByName(spec.Parent)
		return err == nil && parent.Attrs().Index == v.ParentIndex
	}
	return false
}

func (l *L2) createUplink(spec Link, br netlink.Link) error {
	switch spec.Kind {
	case KindPhysical:
		return fmt.Errorf("interface %s: %w", spec.Name, ErrNoDevice)
	case KindVXLAN:
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.MasterIndex = spec.Name, spec.MTU, br.Attrs().Index
		vx := &netlink.Vxlan{LinkAttrs: la, VxlanId: spec.VNI, SrcAddr: net.IP(spec.Local.AsSlice()), Port: spec.DstPort, Learning: false}
		if err := l.h.LinkAdd(vx); err != nil {
			return fmt.Errorf("create vxlan %s (vni %d): %w", spec.Name, spec.VNI, err)
		}
		l.log.Info("vxlan created", "link", spec.Name, "vni", spec.VNI, "local", spec.Local)
		return nil
	case KindVLAN:
		parent, err := l.h.LinkByName(spec.Parent)
		if err != nil {
			return fmt.Errorf("interface %s for VLAN %d: %w", spec.Parent, spec.VLANID, ErrNoDevice)
		}
		if err := l.execute(vlanAddRequest(spec.Name, parent.Attrs().Index, spec.VLANID, spec.MTU)); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
				return fmt.Errorf("create VLAN %s: %w (802.1Q/8021q module missing): %v", spec.Name, ErrNotSupported, err)
			}
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("create VLAN %s: VLAN %d already exists on %s under another name: %w", spec.Name, spec.VLANID, spec.Parent, ErrUplinkInUse)
			}
			return fmt.Errorf("create VLAN %s: %w", spec.Name, err)
		}
		l.log.Info("vlan created", "link", spec.Name, "vlan", spec.VLANID, "parent", spec.Parent)
		return nil
	}
	return fmt.Errorf("link %s: %w %q", spec.Name, ErrUnknownType, spec.Kind)
}

// execute sends a request built by hand on a socket in the host namespace.
func (l *L2) execute(req *nl.NetlinkRequest) error {
	ns := l.ns
	if !ns.IsOpen() {
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer s.Close()
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	_, err = req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// syncFDB makes the remote (dst-carrying) forwarding entries of a VXLAN
// device exactly want; entries learned locally are left alone.
func (l *L2) syncFDB(vx netlink.Link, want []FDB) error {
	have, err := l.h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list fdb of %s: %w", vx.Attrs().Name, err)
	}
	type key struct {
		mac string
		dst netip.Addr
	}
	wanted := map[key]bool{}
	for _, e := range want {
		wanted[key{strings.ToLower(e.MAC), e.Dst}] = true
	}
	present := map[key]bool{}
	for _, n := range have {
		if n.IP == nil || n.Flags&netlink.NTF_SELF == 0 {
			continue
		}
		dst, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		k := key{n.HardwareAddr.String(), dst.Unmap()}
		if wanted[k] && n.State&netlink.NUD_PERMANENT != 0 {
			present[k] = true
			continue
		}
		if n.State&netlink.NUD_PERMANENT == 0 {
			continue // learned: the kernel ages it
		}
		del := n
		if err := l.h.NeighDel(&del); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete fdb %s dst %s: %w", k.mac, k.dst, err)
		}
	}
	for _, e := range want {
		k := key{strings.ToLower(e.MAC), e.Dst}
		if present[k] {
			continue
		}
		hw, err := net.ParseMAC(e.MAC)
		if err != nil {
			return fmt.Errorf("fdb mac %q: %w", e.MAC, err)
		}
		n := &netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT | netlink.NUD_NOARP, HardwareAddr: hw, IP: net.IP(e.Dst.AsSlice())}
		if err := l.h.NeighAppend(n); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add fdb %s dst %s on %s: %w", e.MAC, e.Dst, e.Device, err)
		}
		present[k] = true
	}
	return nil
}

// DeleteNetwork removes a network's bridge and its created uplink (a
// physical interface is released, not deleted). Missing links are fine.
func (l *L2) DeleteNetwork(networkID string, uplink *Link) error {
	var errs []error
	br, brErr := l.h.LinkByName(BridgeName(networkID))
	if uplink != nil {
		// Only an uplink in this network's bridge (or, for a device of its
		// own, in none yet) is this network's: a network that failed
		// because another one holds its interface must not take it away.
		if link, err := l.h.LinkByName(uplink.Name); err == nil {
			master := link.Attrs().MasterIndex
			ours := brErr == nil && master == br.Attrs().Index
			switch {
			case uplink.Kind == KindPhysical && ours:
				errs = append(errs, l.h.LinkSetNoMaster(link))
			case uplink.Kind != KindPhysical && (ours || master == 0):
				errs = append(errs, l.h.LinkDel(link))
			}
		}
	}
	if brErr == nil {
		errs = append(errs, l.h.LinkDel(br))
	} else if !notFound(brErr) {
		errs = append(errs, brErr)
	}
	return errors.Join(errs...)
}

// Plug puts an existing device (a VM's tap, a service port's veth) into
// a bridge with the network's MTU and brings it up. A missing device is
// ErrNoDevice: the VM has not started yet.
func (l *L2) Plug(device, bridge string, mtu int) error {
	link, err := l.h.LinkByName(device)
	if notFound(err) {
		return fmt.Errorf("%s: %w", device, ErrNoDevice)
	}
	if err != nil {
		return err
	}
	br, err := l.h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	return l.settle(link, mtu, br)
}

// Unplug takes a device out of its bridge (a port that was deleted or
// moved while its VM still runs); a missing device is fine.
func (l *L2) Unplug(device string) error {
	link, err := l.h.LinkByName(device)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if link.Attrs().MasterIndex == 0 {
		return nil
	}
	return l.h.LinkSetNoMaster(link)
}

// Managed lists the bridges and VXLAN devices the agent created.
func (l *L2) Managed() ([]netlink.Link, error) {
	links, err := l.h.LinkList()
	if err != nil {
		return nil, err
	}
	var out []netlink.Link
	for _, link := range links {
		if IsManaged(link.Attrs().Name) {
			out = append(out, link)
		}
	}
	return out, nil
}

// DeleteLink deletes a link by name; a missing one is fine.
func (l *L2) DeleteLink(name string) error {
	link, err := l.h.LinkByName(name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return l.h.LinkDel(link)
}

// LinkExists reports whether a link exists.
func (l *L2) LinkExists(name string) bool {
	_, err := l.h.LinkByName(name)
	return err == nil
}

// Links is a dump of the host's links by name, taken once per pass so
// that re-checking a thousand ports costs one netlink round trip instead
// of two per port.
type Links map[string]netlink.Link

// Snapshot dumps the host's links.
func (l *L2) Snapshot() (Links, error) {
	links, err := l.h.LinkList()
	if err != nil {
		return nil, err
	}
	out := make(Links, len(links))
	for _, link := range links {
		out[link.Attrs().Name] = link
	}
	return out, nil
}

// PlugCached is Plug deciding from a snapshot: a device already in its
// bridge, up, with the MTU costs no netlink call. Devices or bridges the
// snapshot does not know are looked up afresh.
func (l *L2) PlugCached(c Links, device, bridge string, mtu int) error {
	link, br := c[device], c[bridge]
	if link == nil || br == nil {
		return l.Plug(device, bridge, mtu)
	}
	return l.settle(link, mtu, br)
}
