package identity

import "github.com/kumo-cloud/kumo/internal/policy"

// PolicyDefaults are the identity rules, following Keystone's secure RBAC
// defaults with scope enforcement off: admin on any scope is cloud admin,
// readers of a domain see that domain's contents, and users see and manage
// their own credentials.
func PolicyDefaults() []policy.Rule {
	const (
		admin        = "role:admin"
		domainReader = "(role:reader and domain_id:%(target.domain_id)s)"
		owner        = "user_id:%(target.user_id)s"
		systemReader = "(role:reader and system_scope:all)"
	)
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	return []policy.Rule{
		r("admin_required", admin, "Cloud administrator."),
		r("identity:get_domain", "rule:admin_required or (role:reader and domain_id:%(target.domain_id)s) or project_domain_id:%(target.domain_id)s", "Show a domain."),
		r("identity:list_domains", "rule:admin_required", "List domains."),
		r("identity:create_domain", "rule:admin_required", "Create a domain."),
		r("identity:update_domain", "rule:admin_required", "Update a domain."),
		r("identity:delete_domain", "rule:admin_required", "Delete a domain."),

		r("identity:get_project", "rule:admin_required or "+domainReader+" or project_id:%(target.project_id)s", "Show a project."),
		r("identity:list_projects", "rule:admin_required or "+domainReader, "List projects."),
		r("identity:list_user_projects", "rule:admin_required or "+domainReader+" or "+owner, "List the projects of a user."),
		r("identity:create_project", "rule:admin_required", "Create a project."),
		r("identity:update_project", "rule:admin_required", "Update a project."),
		r("identity:delete_project", "rule:admin_required", "Delete a project."),

		r("identity:get_user", "rule:admin_required or "+domainReader+" or "+owner, "Show a user."),
		r("identity:list_users", "rule:admin_required or "+domainReader, "List users."),
		r("identity:create_user", "rule:admin_required", "Create a user."),
		r("identity:update_user", "rule:admin_required", "Update a user."),
		r("identity:delete_user", "rule:admin_required", "Delete a user."),

		r("identity:get_group", "rule:admin_required or "+domainReader, "Show a group."),
		r("identity:list_groups", "rule:admin_required or "+domainReader, "List groups."),
		r("identity:list_groups_for_user", "rule:admin_required or "+domainReader+" or "+owner, "List the groups of a user."),
		r("identity:list_users_in_group", "rule:admin_required or "+domainReader, "List the users of a group."),
		r("identity:check_user_in_group", "rule:admin_required or "+domainReader, "Check group membership."),
		r("identity:create_group", "rule:admin_required", "Create a group."),
		r("identity:update_group", "rule:admin_required", "Update a group."),
		r("identity:delete_group", "rule:admin_required", "Delete a group."),
		r("identity:add_user_to_group", "rule:admin_required", "Add a user to a group."),
		r("identity:remove_user_from_group", "rule:admin_required", "Remove a user from a group."),

		r("identity:get_role", "rule:admin_required or (role:reader and system_scope:all)", "Show a role."),
		r("identity:list_roles", "rule:admin_required or (role:reader and system_scope:all)", "List roles."),
		r("identity:create_role", "rule:admin_required", "Create a role."),
		r("identity:update_role", "rule:admin_required", "Update a role."),
		r("identity:delete_role", "rule:admin_required", "Delete a role."),
		r("identity:list_implied_roles", "rule:admin_required or (role:reader and system_scope:all)", "List implied roles."),
		r("identity:create_implied_role", "rule:admin_required", "Create a role inference rule."),
		r("identity:delete_implied_role", "rule:admin_required", "Delete a role inference rule."),

		r("identity:check_grant", "rule:admin_required or "+domainReader, "Check a role grant."),
		r("identity:list_grants", "rule:admin_required or "+domainReader, "List role grants."),
		r("identity:create_grant", "rule:admin_required", "Grant a role."),
		r("identity:revoke_grant", "rule:admin_required", "Revoke a role."),
		r("identity:list_role_assignments", "rule:admin_required or "+domainReader, "List role assignments."),

		r("identity:get_region", "", "Show a region."),
		r("identity:list_regions", "", "List regions."),
		r("identity:create_region", "rule:admin_required", "Create a region."),
		r("identity:update_region", "rule:admin_required", "Update a region."),
		r("identity:delete_region", "rule:admin_required", "Delete a region."),
		r("identity:get_service", "rule:admin_required or (role:reader and system_scope:all)", "Show a service."),
		r("identity:list_services", "rule:admin_required or (role:reader and system_scope:all)", "List services."),
		r("identity:create_service", "rule:admin_required", "Create a service."),
		r("identity:update_service", "rule:admin_required", "Update a service."),
		r("identity:delete_service", "rule:admin_required", "Delete a service."),
		r("identity:get_endpoint", "rule:admin_required or (role:reader and system_scope:all)", "Show an endpoint."),
		r("identity:list_endpoints", "rule:admin_required or (role:reader and system_scope:all)", "List endpoints."),
		r("identity:create_endpoint", "rule:admin_required", "Create an endpoint."),
		r("identity:update_endpoint", "rule:admin_required", "Update an endpoint."),
		r("identity:delete_endpoint", "rule:admin_required", "Delete an endpoint."),

		r("identity:get_application_credential", "rule:admin_required or "+owner, "Show an application credential."),
		r("identity:list_application_credentials", "rule:admin_required or "+owner, "List application credentials."),
		r("identity:create_application_credential", owner, "Create an application credential."),
		r("identity:delete_application_credential", "rule:admin_required or "+owner, "Delete an application credential."),

		r("identity:get_access_rule", "rule:admin_required or "+owner, "Show an access rule."),
		r("identity:list_access_rules", "rule:admin_required or "+owner, "List access rules."),
		r("identity:delete_access_rule", "rule:admin_required or "+owner, "Delete an access rule."),

		r("identity:get_credential", "rule:admin_required or "+systemReader+" or "+owner, "Show a credential."),
		r("identity:list_credentials", "rule:admin_required or "+systemReader+" or "+owner, "List credentials (each filtered by identity:get_credential)."),
		r("identity:create_credential", "rule:admin_required or "+owner, "Create a credential."),
		r("identity:update_credential", "rule:admin_required or "+owner, "Update a credential."),
		r("identity:delete_credential", "rule:admin_required or "+owner, "Delete a credential."),
		r("identity:ec2_get_credential", "rule:admin_required or "+systemReader+" or "+owner, "Show an EC2 credential."),
		r("identity:ec2_list_credentials", "rule:admin_required or "+systemReader+" or "+owner, "List EC2 credentials."),
		r("identity:ec2_create_credential", "rule:admin_required or "+owner, "Create an EC2 credential."),
		r("identity:ec2_delete_credential", "rule:admin_required or "+owner, "Delete an EC2 credential."),

		r("identity:get_limit_model", "", "Show the limit enforcement model."),
		r("identity:get_registered_limit", "", "Show a registered limit."),
		r("identity:list_registered_limits", "", "List registered limits."),
		r("identity:create_registered_limits", "rule:admin_required", "Create registered limits."),
		r("identity:update_registered_limit", "rule:admin_required", "Update a registered limit."),
		r("identity:delete_registered_limit", "rule:admin_required", "Delete a registered limit."),
		r("identity:get_limit", "rule:admin_required or "+systemReader+" or project_id:%(target.project_id)s or domain_id:%(target.domain_id)s", "Show a limit."),
		r("identity:list_limits", "", "List limits (each filtered by identity:get_limit)."),
		r("identity:create_limits", "rule:admin_required", "Create limits."),
		r("identity:update_limit", "rule:admin_required", "Update a limit."),
		r("identity:delete_limit", "rule:admin_required", "Delete a limit."),

		r("identity:get_policy", "rule:admin_required or "+systemReader, "Show a policy blob."),
		r("identity:list_policies", "rule:admin_required or "+systemReader, "List policy blobs."),
		r("identity:create_policy", "rule:admin_required", "Create a policy blob."),
		r("identity:update_policy", "rule:admin_required", "Update a policy blob."),
		r("identity:delete_policy", "rule:admin_required", "Delete a policy blob."),

		r("identity:add_endpoint_to_project", "rule:admin_required", "Associate an endpoint with a project."),
		r("identity:remove_endpoint_from_project", "rule:admin_required", "Remove an endpoint from a project."),
		r("identity:check_endpoint_in_project", "rule:admin_required or "+systemReader, "Check an endpoint-project association."),
		r("identity:list_endpoints_for_project", "rule:admin_required or "+systemReader, "List the endpoints associated with a project."),
		r("identity:list_projects_for_endpoint", "rule:admin_required or "+systemReader, "List the projects associated with an endpoint."),

		r("identity:get_mapping", "rule:admin_required or "+systemReader, "Show a federation mapping."),
		r("identity:list_mappings", "rule:admin_required or "+systemReader, "List federation mappings."),
		r("identity:create_mapping", "rule:admin_required", "Create a federation mapping."),
		r("identity:update_mapping", "rule:admin_required", "Update a federation mapping."),
		r("identity:delete_mapping", "rule:admin_required", "Delete a federation mapping."),

		r("identity:create_trust", "user_id:%(target.trustor_user_id)s", "Create a trust (only as its trustor)."),
		r("identity:list_trusts", "rule:admin_required or "+systemReader, "List every trust."),
		r("identity:list_trusts_for_trustor", "rule:admin_required or user_id:%(target.trustor_user_id)s", "List the trusts of a trustor."),
		r("identity:list_trusts_for_trustee", "rule:admin_required or user_id:%(target.trustee_user_id)s", "List the trusts of a trustee."),
		r("identity:get_trust", "rule:admin_required or user_id:%(target.trustor_user_id)s or user_id:%(target.trustee_user_id)s", "Show a trust."),
		r("identity:delete_trust", "rule:admin_required or user_id:%(target.trustor_user_id)s", "Delete a trust."),
		r("identity:list_roles_for_trust", "rule:admin_required or user_id:%(target.trustor_user_id)s or user_id:%(target.trustee_user_id)s", "List the roles of a trust."),
		r("identity:get_role_for_trust", "rule:admin_required or user_id:%(target.trustor_user_id)s or user_id:%(target.trustee_user_id)s", "Show a role of a trust."),

		r("identity:validate_token", "rule:admin_required or (role:reader and system_scope:all) or "+owner, "Validate a token."),
		r("identity:check_token", "rule:admin_required or (role:reader and system_scope:all) or "+owner, "Check a token."),
		r("identity:revoke_token", "rule:admin_required or "+owner, "Revoke a token."),
	}
}
