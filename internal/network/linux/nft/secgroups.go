// Package nft enforces Neutron security groups and port anti-spoofing on a
// Linux host with nftables, and holds the small nftables toolkit (rule
// builder, ruleset model, incremental Syncer) the router code shares.
//
// # Packet path
//
// VM ports are taps in a Linux bridge. This kernel has no bridge-family
// conntrack (CONFIG_NF_CONNTRACK_BRIDGE is off), so stateful filtering uses
// br_netfilter (bridge-nf-call-iptables/ip6tables = 1), which runs bridged
// IP packets through the inet hooks, where conntrack works. The inet hooks
// see the bridge, not the tap, so the bridge table tags each packet with its
// port's mark first:
//
//	bridge kumo_sg prerouting (-300)  mark = ports[iifname]            (0x01000000|id)
//	                                  iifname vmap → s-<port>          anti-spoofing: drop or return
//	inet   kumo_sg prerouting (0)     mark vmap → o-<port>             egress security groups
//	bridge kumo_sg forward (-300)     mark = ports[oifname] ^ 0x03000000 (0x02000000|id)
//	inet   kumo_sg forward (0)        mark vmap → i-<port>             ingress security groups
//
// A port chain (o-/i-) drops invalid packets, accepts established and
// related ones (stateful groups), lets DHCP and IPv6 neighbour discovery
// through, jumps to one chain per security group and direction (ge-/gi-),
// whose rules accept, and drops the rest. Bridged traffic of each network
// bridge gets its own conntrack zone (inet prerouting at -300, before
// conntrack). Remote-group rules look addresses
// up in per-group sets (r4-/r6-) whose elements change one by one when
// membership changes; remote-address-group rules likewise in per-address-
// group sets (a4-/a6-) whose elements follow the group's addresses. Ports with port security disabled have no entries.
package nft

// Desired is the security-group state of one host: every port on it with
// port security, and every group those ports use or whose membership their
// rules refer to (remote groups).
type Desired struct {
	Ports  []Port
	Groups []Group
	// AddressGroups are the address groups the rules of Groups name as
	// remote address group.
	AddressGroups []AddressGroup
	// Bridges are the network bridges whose bridged traffic gets a
	// conntrack zone of its own, so tenants with the same addresses on one
	// host never share connection-tracking entries. They must carry no host
	// address (Kumo's network bridges do not): host-local traffic on them
	// would be tracked in the bridge's zone one way and zone 0 the other.
	Bridges []string
}

// Port is one VM port as Neutron describes it.
type Port struct {
	ID                  string
	Device              string // the tap's name in the bridge
	MACAddress          string
	FixedIPs            []string // addresses (no prefix length)
	AllowedAddressPairs []AddressPair
	PortSecurityEnabled bool
	SecurityGroups      []string // group ids
}

// AddressPair is an allowed address pair: an address or CIDR, and the MAC
// it may be sent from (empty: the port's MAC).
type AddressPair struct {
	IPAddress  string
	MACAddress string
}

// Group is a security group.
type Group struct {
	ID       string
	Stateful bool // false: Neutron's stateless groups, no conntrack
	Rules    []SGRule
	// Members are the addresses (or CIDRs) of every port in the group on
	// any host: fixed IPs and allowed address pairs. Rules of other groups
	// with remote_group_id = ID match them.
	Members []string
}

// AddressGroup is a Neutron address group: CIDRs that rules with
// remote_address_group_id = ID match.
type AddressGroup struct {
	ID        string
	Addresses []string
}

// SGRule is a security group rule with Neutron's fields and meanings.
type SGRule struct {
	ID             string
	Direction      string // "ingress" or "egress"
	EtherType      string // "IPv4" or "IPv6"
	Protocol       string // "", "any", a name ("tcp", "icmp", …) or a number
	PortRangeMin   *int   // ports; for ICMP the type
	PortRangeMax   *int   // ports; for ICMP the code
	RemoteIPPrefix string
	RemoteGroupID  string
	// RemoteAddressGroupID names an entry of Desired.AddressGroups.
	RemoteAddressGroupID string
}

// PortError is a problem with one port (or one of its groups' rules); the
// rest of the host is still converged.
type PortError struct {
	PortID string
	Err    error
}

func (e *PortError) Error() string { return "port " + e.PortID + ": " + e.Err.Error() }
func (e *PortError) Unwrap() error { return e.Err }
