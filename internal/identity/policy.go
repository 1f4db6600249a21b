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

		r("identity:validate_token", "rule:admin_required or (role:reader and system_scope:all) or "+owner, "Validate a token."),
		r("identity:check_token", "rule:admin_required or (role:reader and system_scope:all) or "+owner, "Check a token."),
		r("identity:revoke_token", "rule:admin_required or "+owner, "Revoke a token."),
	}
}
