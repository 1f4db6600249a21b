package network

import "github.com/kumo-cloud/kumo/internal/db"

// Migrations returns the schema of the networking service (component
// "network").
//
// Every resource table carries the standard attributes (description,
// revision_number, created_at, updated_at); tags live in one table keyed by
// resource type and id. IP allocations have a unique (subnet_id,
// ip_address) key, which is what makes concurrent port creates safe on
// both engines; segment allocations have a unique (network_type,
// physical_network, segmentation_id) key for the same reason.
func Migrations() db.Set {
	return db.Set{
		Component: "network",
		Expand: []db.Migration{
			{Version: 1, Name: "networks, subnets, ports, ipam, segments, tags", SQL: `
CREATE TABLE net_networks (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	admin_state_up BOOLEAN NOT NULL DEFAULT TRUE,
	status TEXT NOT NULL,
	shared BOOLEAN NOT NULL DEFAULT FALSE,
	external BOOLEAN NOT NULL DEFAULT FALSE,
	is_default BOOLEAN NOT NULL DEFAULT FALSE,
	mtu INTEGER NOT NULL,
	port_security_enabled BOOLEAN NOT NULL DEFAULT TRUE,
	network_type TEXT NOT NULL DEFAULT '',
	physical_network TEXT,
	segmentation_id INTEGER,
	dns_domain TEXT NOT NULL DEFAULT '',
	az_hints TEXT NOT NULL DEFAULT '[]',
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX net_networks_project_idx ON net_networks (project_id);
CREATE TABLE net_segment_allocations (
	network_type TEXT NOT NULL,
	physical_network TEXT NOT NULL,
	segmentation_id INTEGER NOT NULL,
	network_id TEXT NOT NULL REFERENCES net_networks (id) ON DELETE CASCADE,
	PRIMARY KEY (network_type, physical_network, segmentation_id)
);
CREATE INDEX net_segment_allocations_net_idx ON net_segment_allocations (network_id);
CREATE TABLE net_subnetpools (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	ip_version INTEGER NOT NULL,
	prefixes TEXT NOT NULL,
	default_prefixlen INTEGER NOT NULL,
	min_prefixlen INTEGER NOT NULL,
	max_prefixlen INTEGER NOT NULL,
	default_quota INTEGER,
	shared BOOLEAN NOT NULL DEFAULT FALSE,
	is_default BOOLEAN NOT NULL DEFAULT FALSE,
	address_scope_id TEXT,
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE net_subnets (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	network_id TEXT NOT NULL REFERENCES net_networks (id),
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	ip_version INTEGER NOT NULL,
	cidr TEXT NOT NULL,
	gateway_ip TEXT,
	enable_dhcp BOOLEAN NOT NULL DEFAULT TRUE,
	ipv6_ra_mode TEXT,
	ipv6_address_mode TEXT,
	subnetpool_id TEXT REFERENCES net_subnetpools (id),
	segment_id TEXT,
	allocation_pools TEXT NOT NULL DEFAULT '[]',
	dns_nameservers TEXT NOT NULL DEFAULT '[]',
	host_routes TEXT NOT NULL DEFAULT '[]',
	dns_publish_fixed_ip BOOLEAN NOT NULL DEFAULT FALSE,
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX net_subnets_network_idx ON net_subnets (network_id);
CREATE INDEX net_subnets_project_idx ON net_subnets (project_id);
CREATE INDEX net_subnets_pool_idx ON net_subnets (subnetpool_id);
CREATE TABLE net_ports (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	network_id TEXT NOT NULL REFERENCES net_networks (id),
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	mac_address TEXT NOT NULL,
	admin_state_up BOOLEAN NOT NULL DEFAULT TRUE,
	status TEXT NOT NULL,
	device_id TEXT NOT NULL DEFAULT '',
	device_owner TEXT NOT NULL DEFAULT '',
	port_security_enabled BOOLEAN NOT NULL DEFAULT TRUE,
	allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
	binding_host_id TEXT NOT NULL DEFAULT '',
	binding_vnic_type TEXT NOT NULL DEFAULT 'normal',
	binding_vif_type TEXT NOT NULL DEFAULT 'unbound',
	binding_vif_details TEXT NOT NULL DEFAULT '{}',
	binding_profile TEXT NOT NULL DEFAULT '{}',
	dns_name TEXT NOT NULL DEFAULT '',
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	UNIQUE (network_id, mac_address)
);
CREATE INDEX net_ports_project_idx ON net_ports (project_id);
CREATE INDEX net_ports_device_idx ON net_ports (device_id);
CREATE TABLE net_ip_allocations (
	subnet_id TEXT NOT NULL REFERENCES net_subnets (id),
	ip_address TEXT NOT NULL,
	network_id TEXT NOT NULL,
	port_id TEXT REFERENCES net_ports (id) ON DELETE CASCADE,
	PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX net_ip_allocations_port_idx ON net_ip_allocations (port_id);
CREATE INDEX net_ip_allocations_network_idx ON net_ip_allocations (network_id);
CREATE TABLE net_tags (
	resource_type TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	tag TEXT NOT NULL,
	PRIMARY KEY (resource_type, resource_id, tag)
);
CREATE INDEX net_tags_tag_idx ON net_tags (resource_type, tag);
CREATE TABLE net_security_groups (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	stateful BOOLEAN NOT NULL DEFAULT TRUE,
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX net_security_groups_project_idx ON net_security_groups (project_id);
CREATE TABLE net_default_security_groups (
	project_id TEXT PRIMARY KEY,
	security_group_id TEXT NOT NULL REFERENCES net_security_groups (id) ON DELETE CASCADE
);
CREATE TABLE net_security_group_rules (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	security_group_id TEXT NOT NULL REFERENCES net_security_groups (id) ON DELETE CASCADE,
	direction TEXT NOT NULL,
	ethertype TEXT NOT NULL,
	protocol TEXT,
	port_range_min INTEGER,
	port_range_max INTEGER,
	remote_ip_prefix TEXT,
	remote_group_id TEXT REFERENCES net_security_groups (id) ON DELETE CASCADE,
	fingerprint TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	UNIQUE (security_group_id, fingerprint)
);
CREATE INDEX net_security_group_rules_project_idx ON net_security_group_rules (project_id);
CREATE TABLE net_port_security_groups (
	port_id TEXT NOT NULL REFERENCES net_ports (id) ON DELETE CASCADE,
	security_group_id TEXT NOT NULL REFERENCES net_security_groups (id),
	PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX net_port_security_groups_sg_idx ON net_port_security_groups (security_group_id);
CREATE TABLE net_routers (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	admin_state_up BOOLEAN NOT NULL DEFAULT TRUE,
	status TEXT NOT NULL,
	gw_port_id TEXT REFERENCES net_ports (id),
	gw_network_id TEXT REFERENCES net_networks (id),
	enable_snat BOOLEAN NOT NULL DEFAULT TRUE,
	routes TEXT NOT NULL DEFAULT '[]',
	az_hints TEXT NOT NULL DEFAULT '[]',
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX net_routers_project_idx ON net_routers (project_id);
CREATE TABLE net_floatingips (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	floating_network_id TEXT NOT NULL REFERENCES net_networks (id),
	floating_ip_address TEXT NOT NULL,
	floating_port_id TEXT NOT NULL REFERENCES net_ports (id),
	port_id TEXT REFERENCES net_ports (id),
	fixed_ip_address TEXT,
	router_id TEXT REFERENCES net_routers (id),
	status TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	dns_name TEXT NOT NULL DEFAULT '',
	dns_domain TEXT NOT NULL DEFAULT '',
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX net_floatingips_project_idx ON net_floatingips (project_id);
CREATE INDEX net_floatingips_port_idx ON net_floatingips (port_id);
CREATE TABLE net_quotas (
	project_id TEXT NOT NULL,
	resource TEXT NOT NULL,
	hard_limit INTEGER NOT NULL,
	PRIMARY KEY (project_id, resource)
);
`},
			{Version: 2, Name: "compute ports, agents, auto-allocated topologies, port forwardings", SQL: `
ALTER TABLE net_ports ADD COLUMN compute_created BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE net_ports ADD COLUMN compute_tag TEXT NOT NULL DEFAULT '';
CREATE TABLE net_agents (
	id TEXT PRIMARY KEY,
	agent_type TEXT NOT NULL,
	agent_binary TEXT NOT NULL,
	topic TEXT NOT NULL,
	host TEXT NOT NULL,
	admin_state_up BOOLEAN NOT NULL DEFAULT TRUE,
	availability_zone TEXT,
	description TEXT NOT NULL DEFAULT '',
	configurations TEXT NOT NULL DEFAULT '{}',
	started_at TEXT NOT NULL,
	created_at TEXT NOT NULL,
	heartbeat_at TEXT NOT NULL,
	UNIQUE (agent_type, host)
);
CREATE TABLE net_auto_allocated (
	project_id TEXT PRIMARY KEY,
	network_id TEXT NOT NULL REFERENCES net_networks (id),
	router_id TEXT REFERENCES net_routers (id)
);
CREATE TABLE net_port_forwardings (
	id TEXT PRIMARY KEY,
	floatingip_id TEXT NOT NULL REFERENCES net_floatingips (id),
	internal_port_id TEXT NOT NULL REFERENCES net_ports (id),
	internal_ip_address TEXT NOT NULL,
	internal_port INTEGER NOT NULL,
	internal_port_end INTEGER NOT NULL,
	external_port INTEGER NOT NULL,
	external_port_end INTEGER NOT NULL,
	protocol TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX net_port_forwardings_fip_idx ON net_port_forwardings (floatingip_id);
CREATE INDEX net_port_forwardings_port_idx ON net_port_forwardings (internal_port_id);
`},
			{Version: 3, Name: "address groups, address scopes, remote_address_group_id on rules", SQL: `
CREATE TABLE net_address_groups (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	revision_number BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX net_address_groups_project_idx ON net_address_groups (project_id);
CREATE TABLE net_address_group_addresses (
	address_group_id TEXT NOT NULL REFERENCES net_address_groups (id) ON DELETE CASCADE,
	address TEXT NOT NULL,
	PRIMARY KEY (address_group_id, address)
);
ALTER TABLE net_security_group_rules ADD COLUMN remote_address_group_id TEXT REFERENCES net_address_groups (id);
CREATE INDEX net_security_group_rules_ag_idx ON net_security_group_rules (remote_address_group_id);
CREATE TABLE net_address_scopes (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	ip_version INTEGER NOT NULL,
	shared BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX net_address_scopes_project_idx ON net_address_scopes (project_id);
CREATE INDEX net_subnetpools_scope_idx ON net_subnetpools (address_scope_id);
`},
			{Version: 4, Name: "subnet service types", SQL: `
ALTER TABLE net_subnets ADD COLUMN service_types TEXT NOT NULL DEFAULT '[]';
`},
		},
	}
}
