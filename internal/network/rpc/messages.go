// Package rpc is the bus contract between the networking control plane
// (internal/network) and the network agents (internal/network/agent):
// subjects, message types, their payloads and their version history. It
// is the one file to read (and the one to change) when the conversation
// between them changes; the rules for changing it are those of
// internal/bus.
//
// Agents never open the database. The control plane sends each network's
// full desired state (never a delta), so an agent that missed a message
// converges at the next one, and a restarted agent asks for everything
// once (network.sync) and converges without touching what is already
// right.
//
// # Subjects
//
//	kumo.network.server        control plane, queue group "network-server" (requests)
//	kumo.network.reports       control plane, every process (agent heartbeats, fan-out)
//	kumo.network.agents        every agent (desired state, fan-out)
//	kumo.compute.metadata      compute control plane, queue group "metadata"
//
// # Messages and version history
//
// network.state (event, server -> agents): one network's full desired
// state: its segment, subnets, every port with its binding host, the
// hosts (with their tunnel addresses) that have ports on it, and the
// security groups its ports use. Deleted=true tells agents to tear the
// network down. Generation orders states of one network: agents drop a
// state older than the one they hold.
//
//	1.0  NetworkState
//	1.1  adds Rule.RemoteAddressGroupID and NetworkState.AddressGroups (the
//	     addresses of every address group the rules name). A 1.0 receiver
//	     would read such a rule as "from anywhere", so a sender capped at
//	     1.0 sends ForVersion's rewrite instead: one remote_ip_prefix rule
//	     per address of the group (none for an empty group).
//
// network.router.state (event, server -> agents): one router's desired
// state for the L3 agent: interfaces, gateway, SNAT, routes, floating IPs.
//
//	1.0  RouterState
//
// network.sync (request, agent -> server): everything the agent's host
// needs: every network (agents filter by relevance) and router.
//
//	1.0  request SyncRequest; reply SyncReply
//	1.1  the reply's networks are NetworkState 1.1. Agents fall back to 1.0
//	     when the server answers unsupported_version.
//
// network.agent.report (event, agent -> server): heartbeat. Registers the
// agent (visible at GET /v2.0/agents) and carries its tunnel address,
// which the server puts into network.state for the other hosts' VXLAN
// forwarding entries.
//
//	1.0  AgentReport
//
// network.port.status (request, agent -> server): ports the agent wired
// (ACTIVE) or failed to wire or unplugged (DOWN, with the reason).
//
//	1.0  request PortStatusRequest; reply {}
//
// network.dhcp.port (request, agent -> server): the DHCP port of a
// network on the agent's host, created on first request (device_owner
// "network:dhcp", device_id "dhcp-<host>"); repeating the request returns
// the same port.
//
//	1.0  request DHCPPortRequest; reply Port
//
// compute.instance.metadata (request, network agent -> compute): what the
// metadata service tells an instance about itself. Error "not_found" when
// the instance does not exist.
//
//	1.0  request MetadataRequest; reply InstanceMetadata. The reply's
//	     "local_devices" (the EC2 block-device-mapping names of the
//	     instance's ephemeral and swap disks: "ephemeral0": "/dev/vdb",
//	     "swap": ...) was added later without a version step: an agent
//	     that does not know it ignores it and lists root and ami only.
//
// compute.instance.password (request, network agent -> compute): store the
// encrypted password a guest posts to /openstack/latest/password (once;
// "conflict" when one is already set) or read it (Password empty, Get).
//
//	1.0  request PasswordRequest; reply PasswordReply
package rpc

import (
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/bus"
)

// Subjects and queue groups.
const (
	SubjectServer   = "kumo.network.server"
	QueueServer     = "network-server"
	SubjectReports  = "kumo.network.reports"
	SubjectAgents   = "kumo.network.agents"
	SubjectMetadata = "kumo.compute.metadata"
	QueueMetadata   = "metadata"
)

// Message types.
const (
	MsgNetworkState  = "network.state"
	MsgRouterState   = "network.router.state"
	MsgSync          = "network.sync"
	MsgAgentReport   = "network.agent.report"
	MsgPortStatus    = "network.port.status"
	MsgDHCPPort      = "network.dhcp.port"
	MsgMetadata      = "compute.instance.metadata"
	MsgPassword      = "compute.instance.password"
	DeviceOwnerDHCP  = "network:dhcp"
	DeviceOwnerRIntf = "network:router_interface"
	DeviceOwnerRGW   = "network:router_gateway"
	DeviceOwnerFIP   = "network:floatingip"
)

// Versions this code speaks.
var (
	NetworkStateVersion = bus.V(1, 1)
	RouterStateVersion  = bus.V(1, 0)
	SyncVersion         = bus.V(1, 1)
	ReportVersion       = bus.V(1, 0)
	PortStatusVersion   = bus.V(1, 0)
	DHCPPortVersion     = bus.V(1, 0)
	MetadataVersion     = bus.V(1, 0)
	PasswordVersion     = bus.V(1, 0)
)

// Port statuses an agent reports.
const (
	StatusActive = "ACTIVE"
	StatusDown   = "DOWN"
	StatusBuild  = "BUILD"
)

// NetworkState is network.state 1.0.
type NetworkState struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id,omitempty"`
	Name      string `json:"name,omitempty"`
	// Generation increases with every state the server computes for this
	// network; agents ignore states older than the one they applied.
	Generation   int64  `json:"generation"`
	Deleted      bool   `json:"deleted,omitempty"`
	AdminStateUp bool   `json:"admin_state_up"`
	MTU          int    `json:"mtu"`
	External     bool   `json:"external,omitempty"`
	DNSDomain    string `json:"dns_domain,omitempty"`
	// NetworkType is flat, vlan, vxlan or local.
	NetworkType     string `json:"network_type"`
	PhysicalNetwork string `json:"physical_network,omitempty"`
	SegmentationID  int    `json:"segmentation_id,omitempty"`

	Subnets []Subnet `json:"subnets,omitempty"`
	Ports   []Port   `json:"ports,omitempty"`
	// Hosts are the hosts with a bound port on the network, with the
	// address their VXLAN tunnels end on ("" when not yet reported).
	Hosts          []Host          `json:"hosts,omitempty"`
	SecurityGroups []SecurityGroup `json:"security_groups,omitempty"`
	// AddressGroups (1.1) are the address groups the rules of
	// SecurityGroups name as remote address group.
	AddressGroups []AddressGroup `json:"address_groups,omitempty"`
}

// AddressGroup is an address group: CIDRs that rules naming it match
// (1.1).
type AddressGroup struct {
	ID        string   `json:"id"`
	Addresses []string `json:"addresses,omitempty"`
}

// Subnet is a subnet as agents need it.
type Subnet struct {
	ID             string      `json:"id"`
	IPVersion      int         `json:"ip_version"`
	CIDR           string      `json:"cidr"`
	GatewayIP      string      `json:"gateway_ip,omitempty"`
	EnableDHCP     bool        `json:"enable_dhcp"`
	DNSNameservers []string    `json:"dns_nameservers,omitempty"`
	HostRoutes     []HostRoute `json:"host_routes,omitempty"`
	IPv6RAMode     string      `json:"ipv6_ra_mode,omitempty"`
	IPv6AddrMode   string      `json:"ipv6_address_mode,omitempty"`
}

// HostRoute is a static route handed out by DHCP.
type HostRoute struct {
	Destination string `json:"destination"`
	Nexthop     string `json:"nexthop"`
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// AddressPair is an allowed address pair.
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address,omitempty"`
}

// Port is a port as agents need it.
type Port struct {
	ID           string `json:"id"`
	NetworkID    string `json:"network_id"`
	ProjectID    string `json:"project_id,omitempty"`
	MAC          string `json:"mac_address"`
	DeviceID     string `json:"device_id,omitempty"`
	DeviceOwner  string `json:"device_owner,omitempty"`
	Host         string `json:"host,omitempty"`
	VIFType      string `json:"vif_type,omitempty"`
	AdminStateUp bool   `json:"admin_state_up"`
	Status       string `json:"status,omitempty"`
	DNSName      string `json:"dns_name,omitempty"`
	// Device is the host-side interface name (tap…).
	Device         string        `json:"device,omitempty"`
	PortSecurity   bool          `json:"port_security_enabled"`
	FixedIPs       []FixedIP     `json:"fixed_ips,omitempty"`
	AddressPairs   []AddressPair `json:"allowed_address_pairs,omitempty"`
	SecurityGroups []string      `json:"security_groups,omitempty"`
}

// Host is a host taking part in a network.
type Host struct {
	Host     string `json:"host"`
	TunnelIP string `json:"tunnel_ip,omitempty"`
}

// SecurityGroup is a group with its rules and the addresses of its
// members (for rules naming it as remote group).
type SecurityGroup struct {
	ID        string   `json:"id"`
	Stateful  bool     `json:"stateful"`
	Rules     []Rule   `json:"rules,omitempty"`
	MemberIPs []string `json:"member_ips,omitempty"`
}

// Rule is a security group rule.
type Rule struct {
	ID             string `json:"id"`
	Direction      string `json:"direction"` // ingress or egress
	Ethertype      string `json:"ethertype"` // IPv4 or IPv6
	Protocol       string `json:"protocol,omitempty"`
	PortRangeMin   *int   `json:"port_range_min,omitempty"` // ICMP: the type
	PortRangeMax   *int   `json:"port_range_max,omitempty"` // ICMP: the code
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID  string `json:"remote_group_id,omitempty"`
	// RemoteAddressGroupID (1.1) names an entry of
	// NetworkState.AddressGroups.
	RemoteAddressGroupID string `json:"remote_address_group_id,omitempty"`
}

// RouterState is network.router.state 1.0.
type RouterState struct {
	ID           string `json:"id"`
	ProjectID    string `json:"project_id,omitempty"`
	Generation   int64  `json:"generation"`
	Deleted      bool   `json:"deleted,omitempty"`
	AdminStateUp bool   `json:"admin_state_up"`
	EnableSNAT   bool   `json:"enable_snat"`
	// Gateway is the port on the external network, nil without one.
	Gateway         *Port            `json:"gateway,omitempty"`
	Interfaces      []Port           `json:"interfaces,omitempty"`
	Routes          []HostRoute      `json:"routes,omitempty"`
	FloatingIPs     []FloatingIP     `json:"floating_ips,omitempty"`
	PortForwardings []PortForwarding `json:"port_forwardings,omitempty"`
}

// PortForwarding maps a floating IP's port to an internal address's port.
type PortForwarding struct {
	FloatingIP   string `json:"floating_ip_address"`
	Protocol     string `json:"protocol"`
	ExternalPort int    `json:"external_port"`
	InternalIP   string `json:"internal_ip_address"`
	InternalPort int    `json:"internal_port"`
}

// FloatingIP is a floating address mapped 1:1 to a fixed one.
type FloatingIP struct {
	ID         string `json:"id"`
	FloatingIP string `json:"floating_ip_address"`
	FixedIP    string `json:"fixed_ip_address"`
	PortID     string `json:"port_id"`
}

// SyncRequest is the request of network.sync 1.0.
type SyncRequest struct {
	Host string `json:"host"`
}

// SyncReply is the reply of network.sync 1.0.
type SyncReply struct {
	Networks []NetworkState `json:"networks"`
	Routers  []RouterState  `json:"routers,omitempty"`
}

// AgentReport is network.agent.report 1.0.
type AgentReport struct {
	Host      string `json:"host"`
	AgentType string `json:"agent_type"` // "Linux bridge agent", "DHCP agent", "Metadata agent", "L3 agent"
	Binary    string `json:"binary"`
	TunnelIP  string `json:"tunnel_ip,omitempty"`
	// StartedAt is when the agent process started (RFC 3339).
	StartedAt string `json:"started_at"`
	// Configurations is shown as the agent's "configurations".
	Configurations map[string]any `json:"configurations,omitempty"`
	// Ports and Networks count what the agent wired.
	Ports    int `json:"ports"`
	Networks int `json:"networks"`
	// Start marks the first report since the agent started.
	Start bool `json:"start_flag,omitempty"`
}

// PortStatus is one port's status as the agent sees it.
type PortStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Error says why a port is DOWN when wiring failed.
	Error string `json:"error,omitempty"`
}

// PortStatusRequest is the request of network.port.status 1.0.
type PortStatusRequest struct {
	Host  string       `json:"host"`
	Ports []PortStatus `json:"ports"`
}

// DHCPPortRequest is the request of network.dhcp.port 1.0.
type DHCPPortRequest struct {
	Host      string `json:"host"`
	NetworkID string `json:"network_id"`
}

// MetadataRequest is the request of compute.instance.metadata 1.0.
type MetadataRequest struct {
	InstanceID string `json:"instance_id"`
}

// InstanceMetadata is the reply of compute.instance.metadata 1.0.
type InstanceMetadata struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	ProjectID        string            `json:"project_id"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	LaunchIndex      int               `json:"launch_index"`
	ReservationID    string            `json:"reservation_id,omitempty"`
	InstanceType     string            `json:"instance_type,omitempty"`
	ImageID          string            `json:"image_id,omitempty"`
	KeyName          string            `json:"key_name,omitempty"`
	PublicKeys       map[string]string `json:"public_keys,omitempty"`
	UserData         []byte            `json:"user_data,omitempty"`
	Meta             map[string]string `json:"meta,omitempty"`
	InstanceName     string            `json:"instance_name,omitempty"`
	Host             string            `json:"host,omitempty"`
	// LocalDevices names the ephemeral and swap disks for the EC2
	// block-device-mapping ("ephemeral0", "swap" -> "/dev/vdb", ...).
	LocalDevices map[string]string `json:"local_devices,omitempty"`
}

// PasswordRequest is the request of compute.instance.password 1.0.
type PasswordRequest struct {
	InstanceID string `json:"instance_id"`
	// Password to store; empty with Get to read it.
	Password string `json:"password,omitempty"`
	Get      bool   `json:"get,omitempty"`
}

// PasswordReply is the reply of compute.instance.password 1.0.
type PasswordReply struct {
	Password string `json:"password"`
}

// ForVersion returns n as a receiver of version v understands it: n itself
// for 1.1 and later; for 1.0, a copy whose address-group rules are
// rewritten into one remote_ip_prefix rule per address of the rule's
// family (rule ids suffixed "/<n>"), without AddressGroups.
func (n *NetworkState) ForVersion(v bus.Version) *NetworkState {
	if v.Major != 1 || v.Minor >= 1 || len(n.AddressGroups) == 0 && !n.namesAddressGroup() {
		return n
	}
	addrs := map[string][]string{}
	for _, g := range n.AddressGroups {
		addrs[g.ID] = g.Addresses
	}
	out := *n
	out.AddressGroups = nil
	out.SecurityGroups = make([]SecurityGroup, len(n.SecurityGroups))
	for i, g := range n.SecurityGroups {
		g2 := g
		g2.Rules = nil
		for _, r := range g.Rules {
			if r.RemoteAddressGroupID == "" {
				g2.Rules = append(g2.Rules, r)
				continue
			}
			k := 0
			for _, a := range addrs[r.RemoteAddressGroupID] {
				if strings.Contains(a, ":") != (r.Ethertype == "IPv6") {
					continue
				}
				r2 := r
				r2.RemoteAddressGroupID, r2.RemoteIPPrefix = "", a
				r2.ID = r.ID + "/" + strconv.Itoa(k)
				k++
				g2.Rules = append(g2.Rules, r2)
			}
		}
		out.SecurityGroups[i] = g2
	}
	return &out
}

func (n *NetworkState) namesAddressGroup() bool {
	for _, g := range n.SecurityGroups {
		for _, r := range g.Rules {
			if r.RemoteAddressGroupID != "" {
				return true
			}
		}
	}
	return false
}
