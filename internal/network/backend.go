package network

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The backend follows Neutron's ML2 split: type drivers own segment kinds
// (which ids exist, which are free, the MTU they leave), mechanism drivers
// bind ports to hosts, and together they decide which API extensions the
// deployment advertises.

// Segment is the L2 identity of a network.
type Segment struct {
	NetworkType     string
	PhysicalNetwork string // "" when the type has none
	SegmentationID  int    // 0 when the type has none
}

// segRange is a span of segmentation ids available for tenant networks.
type segRange struct {
	physnet  string
	min, max int
}

// TypeDriver validates and allocates segments of one network type.
type TypeDriver interface {
	Type() string
	// Validate checks an admin's provider request and fills defaults.
	Validate(seg *Segment) error
	// TenantRanges are the ranges tenant networks are allocated from, in
	// order of preference; empty when the type cannot be a tenant type.
	TenantRanges() []segRange
	// Allocated reports whether segments of this type are recorded in
	// the allocation table (local networks are not).
	Allocated() bool
	// MTU is the largest MTU a network of the segment can carry.
	MTU(seg Segment, physMTU int) int
}

type flatDriver struct{ physnets []string } // "*" allows any

func (flatDriver) Type() string { return "flat" }
func (d flatDriver) Validate(seg *Segment) error {
	if seg.SegmentationID != 0 {
		return invalidInput("segmentation_id prohibited for flat provider network")
	}
	if seg.PhysicalNetwork == "" {
		return invalidInput("physical_network required for flat provider network")
	}
	if !slices.Contains(d.physnets, "*") && !slices.Contains(d.physnets, seg.PhysicalNetwork) {
		return invalidInput("physical_network '%s' unknown for flat provider network", seg.PhysicalNetwork)
	}
	return nil
}
func (flatDriver) TenantRanges() []segRange     { return nil }
func (flatDriver) Allocated() bool              { return true }
func (flatDriver) MTU(_ Segment, phys int) int  { return phys }
func (localDriver) MTU(_ Segment, phys int) int { return phys }
func (localDriver) Type() string                { return "local" }
func (localDriver) TenantRanges() []segRange    { return nil }
func (localDriver) Allocated() bool             { return false }
func (vlanDriver) Type() string                 { return "vlan" }
func (vlanDriver) Allocated() bool              { return true }
func (vlanDriver) MTU(_ Segment, phys int) int  { return phys }
func (d vlanDriver) TenantRanges() []segRange   { return d.ranges }
func (vxlanDriver) Type() string                { return "vxlan" }
func (vxlanDriver) Allocated() bool             { return true }
func (d vxlanDriver) TenantRanges() []segRange  { return d.ranges }
func (vxlanDriver) MTU(_ Segment, phys int) int { return phys - vxlanOverhead }
func (localDriver) Validate(seg *Segment) error {
	if seg.PhysicalNetwork != "" || seg.SegmentationID != 0 {
		return invalidInput("provider:physical_network and provider:segmentation_id prohibited for local provider network")
	}
	return nil
}

// vxlanOverhead is the IPv4 VXLAN encapsulation: outer IP (20), UDP (8),
// VXLAN header (8) and inner Ethernet (14).
const vxlanOverhead = 50

type localDriver struct{}

type vlanDriver struct {
	physnets []string   // every configured physical network
	ranges   []segRange // tenant ranges
}

func (d vlanDriver) Validate(seg *Segment) error {
	if seg.PhysicalNetwork == "" {
		if len(d.ranges) == 0 {
			return invalidInput("physical_network required for VLAN provider network")
		}
		// Neutron accepts a segmentation id without a physical network only
		// when a single one is configured.
		seg.PhysicalNetwork = d.ranges[0].physnet
	}
	if !slices.Contains(d.physnets, seg.PhysicalNetwork) {
		return invalidInput("physical_network '%s' unknown for VLAN provider network", seg.PhysicalNetwork)
	}
	if seg.SegmentationID != 0 && (seg.SegmentationID < 1 || seg.SegmentationID > 4094) {
		return invalidInput("segmentation_id out of range (1 through 4094)")
	}
	return nil
}

type vxlanDriver struct{ ranges []segRange }

func (d vxlanDriver) Validate(seg *Segment) error {
	if seg.PhysicalNetwork != "" {
		return invalidInput("provider:physical_network specified for vxlan network")
	}
	if seg.SegmentationID != 0 && (seg.SegmentationID < 1 || seg.SegmentationID > 1<<24-1) {
		return invalidInput("segmentation_id out of range (1 through 16777215)")
	}
	return nil
}

// Binding is the outcome of binding a port to a host.
type Binding struct {
	VIFType    string
	VIFDetails map[string]any
}

// PortBinding is what a mechanism driver sees of a port to bind.
type PortBinding struct {
	PortID, NetworkID, Host, VNICType, DeviceOwner string
	Segment                                        Segment
	PortSecurity                                   bool
}

// MechanismDriver binds ports on hosts for the segment types it handles.
type MechanismDriver interface {
	Name() string
	// Bind returns the binding, or false when the driver cannot bind it.
	Bind(p PortBinding) (Binding, bool)
	// Extensions lists extension aliases the driver supports beyond the
	// core ones (for example "binding").
	Extensions() []string
}

// linuxBridge is the native driver: Linux bridges per network, tap
// devices for VMs. The data plane comes with the network agent.
type linuxBridge struct{}

func (linuxBridge) Name() string { return "linuxbridge" }

func (linuxBridge) Extensions() []string { return []string{"binding"} }

func (linuxBridge) Bind(p PortBinding) (Binding, bool) {
	switch p.Segment.NetworkType {
	case "flat", "vlan", "vxlan", "local":
	default:
		return Binding{}, false
	}
	switch p.VNICType {
	case "normal":
		return Binding{VIFType: "bridge", VIFDetails: map[string]any{
			"port_filter": p.PortSecurity, "connectivity": "l2",
			"bridge_name": bridgeName(p.NetworkID),
		}}, true
	case "virtio-forwarder", "remote-managed":
		return Binding{}, false
	}
	return Binding{}, false
}

// bridgeName is the Linux bridge of a network: "brq" and the start of the
// network id, within the 15-byte interface name limit.
func bridgeName(networkID string) string {
	if len(networkID) > 11 {
		networkID = networkID[:11]
	}
	return "brq" + networkID
}

// TapName is the tap device of a port, "tap" and the start of its id.
func TapName(portID string) string {
	if len(portID) > 11 {
		portID = portID[:11]
	}
	return "tap" + portID
}

// ml2 is the backend assembled from the configuration.
type ml2 struct {
	types       map[string]TypeDriver
	tenantTypes []string
	mechs       []MechanismDriver
	physMTU     int
}

func newML2(cfg Config) (*ml2, error) {
	m := &ml2{types: map[string]TypeDriver{}, physMTU: cfg.GlobalPhysnetMTU}
	vlan := vlanDriver{}
	for _, spec := range cfg.NetworkVLANRanges {
		parts := strings.Split(strings.TrimSpace(spec), ":")
		switch len(parts) {
		case 1:
			if parts[0] == "" {
				return nil, fmt.Errorf("network: empty vlan range")
			}
		case 3:
			lo, err1 := strconv.Atoi(parts[1])
			hi, err2 := strconv.Atoi(parts[2])
			if err1 != nil || err2 != nil || lo < 1 || hi > 4094 || lo > hi {
				return nil, fmt.Errorf("network: invalid vlan range %q", spec)
			}
			vlan.ranges = append(vlan.ranges, segRange{parts[0], lo, hi})
		default:
			return nil, fmt.Errorf("network: invalid vlan range %q (want physnet or physnet:min:max)", spec)
		}
		if !slices.Contains(vlan.physnets, parts[0]) {
			vlan.physnets = append(vlan.physnets, parts[0])
		}
	}
	vx := vxlanDriver{}
	vni := cfg.VNIRanges
	if len(vni) == 0 {
		vni = []string{"1:16777215"}
	}
	for _, spec := range vni {
		a, b, ok := strings.Cut(strings.TrimSpace(spec), ":")
		lo, err1 := strconv.Atoi(a)
		hi, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 1<<24-1 || lo > hi {
			return nil, fmt.Errorf("network: invalid vni range %q", spec)
		}
		vx.ranges = append(vx.ranges, segRange{"", lo, hi})
	}
	flat := cfg.FlatNetworks
	if flat == nil {
		flat = []string{"*"}
	}
	for _, d := range []TypeDriver{flatDriver{physnets: flat}, vlan, vx, localDriver{}} {
		m.types[d.Type()] = d
	}
	m.tenantTypes = cfg.TenantNetworkTypes
	if len(m.tenantTypes) == 0 {
		if len(vlan.ranges) > 0 {
			m.tenantTypes = []string{"vlan"}
		} else {
			m.tenantTypes = []string{"vxlan"}
		}
	}
	for _, t := range m.tenantTypes {
		if m.types[t] == nil {
			return nil, fmt.Errorf("network: unknown tenant network type %q", t)
		}
	}
	names := cfg.MechanismDrivers
	if len(names) == 0 {
		names = []string{"linuxbridge"}
	}
	for _, n := range names {
		switch n {
		case "linuxbridge":
			m.mechs = append(m.mechs, linuxBridge{})
		default:
			return nil, fmt.Errorf("network: unknown mechanism driver %q", n)
		}
	}
	return m, nil
}

// bind asks each mechanism driver in turn.
func (m *ml2) bind(p PortBinding) Binding {
	for _, d := range m.mechs {
		if b, ok := d.Bind(p); ok {
			return b
		}
	}
	return Binding{VIFType: "binding_failed", VIFDetails: map[string]any{}}
}

// extensionAliases is what the backend supports, in the order listed.
func (m *ml2) extensionAliases() []string {
	out := []string{
		"standard-attr-description", "standard-attr-timestamp", "standard-attr-revisions",
		"standard-attr-tag", "tag-ext", "fields", "filter-validation", "pagination", "sorting",
		"project-id", "revision-if-match", "network-ip-availability",
		"provider", "external-net", "network-mtu", "net-mtu-writable", "network_availability_zone",
		"availability_zone", "security-group", "stateful-security-group", "address-group",
		"security-groups-remote-address-group", "port-security", "allowed-address-pairs",
		"router", "ext-gw-mode", "extraroute", "extraroute-atomic", "router_availability_zone",
		"quotas", "quota_details", "subnet_allocation", "subnetpool-prefix-ops", "subnet-service-types", "address-scope",
		"dns-integration", "agent", "auto-allocated-topology", "floating-ip-port-forwarding",
		"floating-ip-port-forwarding-description", "expose-port-forwarding-in-fip",
	}
	for _, d := range m.mechs {
		for _, a := range d.Extensions() {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
