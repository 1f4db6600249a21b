// Package linux is the Linux data plane of the network agent: one bridge
// per network, VXLAN, VLAN and flat segments, tap devices of VMs, network
// namespaces, and the DHCP and metadata services that run inside them.
//
// The code is layered so that most of it is tested without root:
// Render turns desired state into the links and forwarding entries a host
// should have (pure); the request builders produce exact netlink messages
// (vlan.go); L2 applies a rendering through a netlink handle, which the
// kernel tests point at throwaway network namespaces.
package linux

import (
	"strconv"
	"strings"
)

// Interface names are limited to 15 bytes (IFNAMSIZ-1); like Neutron's
// Linux bridge agent, names carry the first 11 characters of an id.
const (
	maxIfName = 15
	idLen     = 11
)

// Name prefixes of everything the agent creates; leftovers with these
// prefixes that no desired network claims are removed after a full sync.
const (
	BridgePrefix = "brq"
	VXLANPrefix  = "vxlan-"
	TapPrefix    = "tap"
	NSDevPrefix  = "ns-"
	DHCPNSPrefix = "qdhcp-"
)

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// BridgeName is the bridge of a network: "brq" and the start of its id
// (the name the control plane puts into binding:vif_details).
func BridgeName(networkID string) string { return BridgePrefix + trunc(networkID, idLen) }

// TapName is the host-side device of a port: "tap" and the start of its id.
func TapName(portID string) string { return TapPrefix + trunc(portID, idLen) }

// NSDevName is the namespace side of a service port's veth pair.
func NSDevName(portID string) string { return NSDevPrefix + trunc(portID, idLen) }

// VXLANName is the VXLAN device of a VNI.
func VXLANName(vni int) string { return VXLANPrefix + strconv.Itoa(vni) }

// VLANName is the 802.1Q sub-interface of a VLAN on a physical interface:
// "eth1.100", the interface name shortened so the whole fits.
func VLANName(iface string, vid int) string {
	suffix := "." + strconv.Itoa(vid)
	return trunc(iface, maxIfName-len(suffix)) + suffix
}

// DHCPNamespace is the namespace serving DHCP and metadata of a network.
func DHCPNamespace(prefix, networkID string) string { return prefix + DHCPNSPrefix + networkID }

// IsManaged reports whether a link name is one the agent creates for
// networks (bridges and VXLAN devices).
func IsManaged(name string) bool {
	return strings.HasPrefix(name, BridgePrefix) || strings.HasPrefix(name, VXLANPrefix)
}
