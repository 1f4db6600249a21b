package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// DefaultVXLANPort is the IANA VXLAN port.
const DefaultVXLANPort = 4789

// Config is what the host knows about its own wiring.
type Config struct {
	// LocalIP is this host's VXLAN underlay address (tunnels start here).
	LocalIP netip.Addr
	// InterfaceMappings maps physical networks to host interfaces, for
	// flat and VLAN networks ("physnet1" -> "eth1").
	InterfaceMappings map[string]string
	// VXLANPort is the UDP port of VXLAN; DefaultVXLANPort when 0.
	VXLANPort int
}

// ParseMappings reads "physnet:iface" pairs.
func ParseMappings(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		for _, item := range strings.Split(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			pn, ifc, ok := strings.Cut(item, ":")
			if !ok || pn == "" || ifc == "" || len(ifc) > maxIfName {
				return nil, fmt.Errorf("interface mapping %q: want physnet:interface", item)
			}
			if _, dup := out[pn]; dup {
				return nil, fmt.Errorf("interface mapping %q: physical network %s mapped twice", item, pn)
			}
			out[pn] = ifc
		}
	}
	return out, nil
}

// Errors of rendering; the agent puts them on the ports of the network.
var (
	ErrNoMapping     = errors.New("no interface mapping for physical network")
	ErrNoLocalIP     = errors.New("no local VXLAN address configured")
	ErrUnknownType   = errors.New("unsupported network type")
	ErrUplinkInUse   = errors.New("uplink already used by another network")
	ErrNoDevice      = errors.New("device does not exist")
	ErrNotSupported  = errors.New("not supported by this kernel")
	ErrWrongLinkType = errors.New("existing link has another type")
)

// Segment is a network's L2 identity.
type Segment struct {
	Type            string // flat, vlan, vxlan, local
	PhysicalNetwork string
	SegmentationID  int
}

// Peer is another host with ports on a network: its tunnel address and
// the MACs of its ports there (programmed as unicast forwarding entries).
type Peer struct {
	IP   netip.Addr
	MACs []string
}

// NetworkSpec is one network as this host must carry it.
type NetworkSpec struct {
	ID      string
	Segment Segment
	MTU     int
	// Peers matter for VXLAN only.
	Peers []Peer
}

// Link kinds of a plan.
const (
	KindBridge   = "bridge"
	KindVXLAN    = "vxlan"
	KindVLAN     = "vlan"
	KindPhysical = "physical" // an existing interface, enslaved as is
)

// Link is a link the host should have.
type Link struct {
	Name   string
	Kind   string
	MTU    int    // 0: leave as is
	Master string // bridge the link is a port of
	// VXLAN
	VNI     int
	Local   netip.Addr
	DstPort int
	// VLAN
	Parent string
	VLANID int
}

// FDB is a VXLAN forwarding entry: frames for MAC (all zeros: flooded
// broadcast and unknown unicast) go to the VTEP at Dst.
type FDB struct {
	Device string
	MAC    string
	Dst    netip.Addr
}

// ZeroMAC is the flooding entry's MAC.
const ZeroMAC = "00:00:00:00:00:00"

// NetworkPlan is a network's rendered host state.
type NetworkPlan struct {
	Network string
	Bridge  Link
	Uplink  *Link // nil for local networks
	FDB     []FDB
}

// Render turns a network's desired state into links and forwarding
// entries. It is pure: the same spec renders the same plan.
func Render(cfg Config, n NetworkSpec) (NetworkPlan, error) {
	p := NetworkPlan{Network: n.ID, Bridge: Link{Name: BridgeName(n.ID), Kind: KindBridge, MTU: n.MTU}}
	switch n.Segment.Type {
	case "local":
		return p, nil
	case "flat", "vlan":
		ifc, ok := cfg.InterfaceMappings[n.Segment.PhysicalNetwork]
		if !ok {
			return p, fmt.Errorf("network %s: %w %q", n.ID, ErrNoMapping, n.Segment.PhysicalNetwork)
		}
		if n.Segment.Type == "flat" {
			p.Uplink = &Link{Name: ifc, Kind: KindPhysical, Master: p.Bridge.Name}
			return p, nil
		}
		vid := n.Segment.SegmentationID
		if vid < 1 || vid > 4094 {
			return p, fmt.Errorf("network %s: VLAN id %d out of range", n.ID, vid)
		}
		p.Uplink = &Link{Name: VLANName(ifc, vid), Kind: KindVLAN, MTU: n.MTU, Master: p.Bridge.Name, Parent: ifc, VLANID: vid}
		return p, nil
	case "vxlan":
		if !cfg.LocalIP.IsValid() {
			// A host without an underlay address carries VXLAN networks
			// on its own (all-in-one): the bridge alone, until another
			// host joins the network.
			for _, peer := range n.Peers {
				if peer.IP.IsValid() {
					return p, fmt.Errorf("network %s: %w (host %s has ports on it)", n.ID, ErrNoLocalIP, peer.IP)
				}
			}
			return p, nil
		}
		port := cfg.VXLANPort
		if port == 0 {
			port = DefaultVXLANPort
		}
		vni := n.Segment.SegmentationID
		if vni < 1 || vni > 1<<24-1 {
			return p, fmt.Errorf("network %s: VNI %d out of range", n.ID, vni)
		}
		up := &Link{Name: VXLANName(vni), Kind: KindVXLAN, MTU: n.MTU, Master: p.Bridge.Name, VNI: vni, Local: cfg.LocalIP, DstPort: port}
		p.Uplink = up
		seen := map[FDB]bool{}
		for _, peer := range n.Peers {
			if !peer.IP.IsValid() || peer.IP == cfg.LocalIP {
				continue
			}
			for _, mac := range append([]string{ZeroMAC}, peer.MACs...) {
				if hw, err := net.ParseMAC(mac); err == nil {
					mac = hw.String()
				}
				e := FDB{Device: up.Name, MAC: mac, Dst: peer.IP}
				if !seen[e] {
					seen[e] = true
					p.FDB = append(p.FDB, e)
				}
			}
		}
		slices.SortFunc(p.FDB, func(a, b FDB) int {
			if c := strings.Compare(a.MAC, b.MAC); c != 0 {
				return c
			}
			return a.Dst.Compare(b.Dst)
		})
		return p, nil
	}
	return p, fmt.Errorf("network %s: %w %q", n.ID, ErrUnknownType, n.Segment.Type)
}

// RenderAll renders every network and rejects a second network on an
// uplink another one already uses (a VLAN id taken twice on an interface,
// two flat networks on one interface); errors are per network.
func RenderAll(cfg Config, nets []NetworkSpec) ([]NetworkPlan, map[string]error) {
	errs := map[string]error{}
	owner := map[string]string{}
	var plans []NetworkPlan
	sorted := slices.Clone(nets)
	slices.SortFunc(sorted, func(a, b NetworkSpec) int { return strings.Compare(a.ID, b.ID) })
	for _, n := range sorted {
		p, err := Render(cfg, n)
		if err != nil {
			errs[n.ID] = err
			continue
		}
		if p.Uplink != nil {
			if o, ok := owner[p.Uplink.Name]; ok {
				errs[n.ID] = fmt.Errorf("network %s: %w: %s carries network %s", n.ID, ErrUplinkInUse, p.Uplink.Name, o)
				continue
			}
			owner[p.Uplink.Name] = n.ID
		}
		plans = append(plans, p)
	}
	return plans, errs
}
