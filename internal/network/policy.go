package network

import "github.com/kumo-cloud/kumo/internal/policy"

// PolicyDefaults are Neutron's secure-RBAC defaults under Neutron's rule
// names (create_network, get_port:binding:vif_type, ...). The helper rules
// carry a "network:" prefix so that one enforcer can hold every service's
// rules.
//
// Targets carry project_id/tenant_id (the resource owner) and, for
// subnets and ports, network:project_id (the owner of the network).
// Neutron's field checks (field:networks:shared=True) have no equivalent
// in Kumo's policy language: the service applies the visibility of shared
// and external networks itself before consulting the get_* rules.
func PolicyDefaults() []policy.Rule {
	const (
		admin         = "rule:network:admin_only"
		member        = "rule:network:admin_only or rule:network:project_member"
		reader        = "rule:network:admin_only or rule:network:project_reader"
		netOwner      = "rule:network:admin_only or (role:member and project_id:%(network:project_id)s)"
		memberOrNet   = "rule:network:admin_only or rule:network:project_member or (role:member and project_id:%(network:project_id)s)"
		readerOrNet   = "rule:network:admin_only or rule:network:project_reader or (role:reader and project_id:%(network:project_id)s)"
		authenticated = ""
	)
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := []policy.Rule{
		r("network:admin_only", "role:admin", "Cloud administrator."),
		r("network:project_member", "role:member and project_id:%(project_id)s", "Member of the owning project."),
		r("network:project_reader", "role:reader and project_id:%(project_id)s", "Reader of the owning project."),

		r("create_network", member, "Create a network."),
		r("get_network", reader, "Show a network (shared and external networks are visible to every project)."),
		r("update_network", member, "Update a network."),
		r("delete_network", member, "Delete a network."),
		r("create_subnet", netOwner, "Create a subnet on a network the caller owns."),
		r("get_subnet", reader, "Show a subnet (subnets of shared networks are visible to every project)."),
		r("update_subnet", netOwner, "Update a subnet."),
		r("delete_subnet", netOwner, "Delete a subnet."),
		r("create_port", member, "Create a port."),
		r("get_port", readerOrNet, "Show a port."),
		r("update_port", memberOrNet, "Update a port."),
		r("delete_port", memberOrNet, "Delete a port."),
		r("create_subnetpool", member, "Create a subnet pool."),
		r("get_subnetpool", reader, "Show a subnet pool (shared pools are visible to every project)."),
		r("update_subnetpool", member, "Update a subnet pool."),
		r("delete_subnetpool", member, "Delete a subnet pool."),
		r("add_prefixes", member, "Add prefixes to a subnet pool (subnetpool-prefix-ops)."),
		r("remove_prefixes", member, "Remove prefixes from a subnet pool (subnetpool-prefix-ops)."),
		r("create_subnetpool:shared", admin, "Create a shared subnet pool."),
		r("create_subnetpool:is_default", admin, "Create a default subnet pool."),
		r("update_subnetpool:is_default", admin, "Make a subnet pool the default."),

		r("create_security_group", member, "Create a security group."),
		r("get_security_group", reader, "Show a security group."),
		r("update_security_group", member, "Update a security group."),
		r("delete_security_group", member, "Delete a security group."),
		r("create_security_group_rule", member, "Create a security group rule."),
		r("get_security_group_rule", reader, "Show a security group rule."),
		r("delete_security_group_rule", member, "Delete a security group rule."),

		r("create_address_group", member, "Create an address group."),
		r("get_address_group", reader, "Show an address group."),
		r("update_address_group", member, "Update an address group's name or description."),
		r("delete_address_group", member, "Delete an address group."),
		r("add_addresses", member, "Add addresses to an address group."),
		r("remove_addresses", member, "Remove addresses from an address group."),
		r("create_address_scope", member, "Create an address scope."),
		r("create_address_scope:shared", admin, "Create a shared address scope."),
		r("get_address_scope", reader, "Show an address scope (shared scopes are visible to every project)."),
		r("update_address_scope", member, "Update an address scope."),
		r("update_address_scope:shared", admin, "Share an address scope."),
		r("delete_address_scope", member, "Delete an address scope."),

		r("create_router", member, "Create a router."),
		r("get_router", reader, "Show a router."),
		r("update_router", member, "Update a router."),
		r("delete_router", member, "Delete a router."),
		r("add_router_interface", member, "Attach a subnet or port to a router."),
		r("remove_router_interface", member, "Detach a subnet or port from a router."),
		r("add_extraroutes", member, "Add static routes to a router."),
		r("remove_extraroutes", member, "Remove static routes from a router."),
		r("create_router:external_gateway_info:enable_snat", admin, "Set SNAT on a new router's gateway."),
		r("create_router:external_gateway_info:external_fixed_ips", admin, "Choose a new router's gateway addresses."),
		r("update_router:external_gateway_info:enable_snat", admin, "Change SNAT on a router's gateway."),
		r("update_router:external_gateway_info:external_fixed_ips", admin, "Choose a router's gateway addresses."),

		r("create_floatingip", member, "Create a floating IP."),
		r("create_floatingip:floating_ip_address", admin, "Choose a floating IP's address."),
		r("get_floatingip", reader, "Show a floating IP."),
		r("update_floatingip", member, "Associate or update a floating IP."),
		r("delete_floatingip", member, "Delete a floating IP."),

		r("get_quota", reader, "Show a project's quotas."),
		r("update_quota", admin, "Set a project's quotas."),
		r("delete_quota", admin, "Reset a project's quotas."),
		r("get_network_ip_availability", admin, "Show the IP availability of networks."),
		r("get_availability_zone", authenticated, "List availability zones."),
		r("get_agent", admin, "Show network agents."),
		r("update_agent", admin, "Update a network agent (admin_state_up, description)."),
		r("delete_agent", admin, "Delete a network agent."),
		r("get_auto_allocated_topology", reader, "Show (and create) a project's auto-allocated topology."),
		r("delete_auto_allocated_topology", member, "Delete a project's auto-allocated topology."),
		r("create_floatingip_port_forwarding", member, "Create a port forwarding on a floating IP."),
		r("get_floatingip_port_forwarding", reader, "Show the port forwardings of a floating IP."),
		r("update_floatingip_port_forwarding", member, "Update a port forwarding."),
		r("delete_floatingip_port_forwarding", member, "Delete a port forwarding."),
	}
	for _, a := range []string{"shared", "router:external", "is_default", "provider:network_type",
		"provider:physical_network", "provider:segmentation_id"} {
		rules = append(rules,
			r("create_network:"+a, admin, "Set "+a+" on a new network."),
			r("update_network:"+a, admin, "Change "+a+" of a network."))
	}
	for _, a := range []string{"admin_state_up", "port_security_enabled"} {
		rules = append(rules,
			r("create_network:"+a, member, "Set "+a+" on a new network."),
			r("update_network:"+a, member, "Change "+a+" of a network."))
	}
	for _, a := range []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"} {
		rules = append(rules, r("get_network:"+a, admin, "See "+a+" of a network."))
	}
	rules = append(rules,
		r("create_subnet:segment_id", admin, "Place a subnet on a segment."),
		r("create_subnet:service_types", admin, "Set the service types of a subnet."),
		r("update_subnet:service_types", admin, "Change the service types of a subnet."),
	)
	for _, act := range []string{"create", "update"} {
		rules = append(rules,
			r(act+"_port:device_owner", netOwner, "Give a port a network: device owner."),
			r(act+"_port:mac_address", map[string]string{"create": netOwner, "update": admin}[act], "Choose a port's MAC address."),
			r(act+"_port:fixed_ips:ip_address", netOwner, "Choose a port's IP address."),
			r(act+"_port:fixed_ips:subnet_id", netOwner+" or rule:network:project_member", "Choose a port's subnet."),
			r(act+"_port:port_security_enabled", netOwner+" or rule:network:project_member", "Turn port security on or off."),
			r(act+"_port:allowed_address_pairs", netOwner+" or rule:network:project_member", "Set a port's allowed address pairs."),
			r(act+"_port:binding:host_id", admin, "Bind a port to a host."),
			r(act+"_port:binding:profile", admin, "Set a port's binding profile."),
			r(act+"_port:binding:vnic_type", memberOrNet, "Set a port's VNIC type."),
		)
	}
	for _, a := range []string{"binding:vif_type", "binding:vif_details", "binding:host_id", "binding:profile"} {
		rules = append(rules, r("get_port:"+a, admin, "See "+a+" of a port."))
	}
	return rules
}
