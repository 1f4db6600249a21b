package placement

import "github.com/kumo-cloud/kumo/internal/policy"

// PolicyDefaults are Placement's default rules: administrators and the
// service role (other OpenStack services: nova, neutron, cyborg) may do
// everything; system-scoped readers may read.
func PolicyDefaults() []policy.Rule {
	const (
		adminOrService = "rule:placement:admin_or_service"
		reader         = "rule:placement:admin_or_service or (role:reader and system_scope:all)"
	)
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := []policy.Rule{
		r("placement:admin_or_service", "role:admin or role:service", "Cloud administrator or an OpenStack service."),
	}
	add := func(check string, names ...string) {
		for _, n := range names {
			rules = append(rules, r(n, check, "Placement API: "+n+"."))
		}
	}
	add(reader,
		"placement:resource_providers:list", "placement:resource_providers:show",
		"placement:resource_providers:inventories:list", "placement:resource_providers:inventories:show",
		"placement:resource_providers:aggregates:list", "placement:resource_providers:usages",
		"placement:resource_providers:traits:list", "placement:resource_providers:allocations:list",
		"placement:usages", "placement:allocations:list", "placement:allocation_candidates:list",
		"placement:resource_classes:list", "placement:resource_classes:show",
		"placement:traits:list", "placement:traits:show")
	add(adminOrService,
		"placement:resource_providers:create", "placement:resource_providers:update",
		"placement:resource_providers:delete",
		"placement:resource_providers:inventories:create", "placement:resource_providers:inventories:update",
		"placement:resource_providers:inventories:delete",
		"placement:resource_providers:aggregates:update",
		"placement:resource_providers:traits:update", "placement:resource_providers:traits:delete",
		"placement:allocations:manage", "placement:allocations:update", "placement:allocations:delete",
		"placement:reshaper:reshape",
		"placement:resource_classes:create", "placement:resource_classes:update",
		"placement:resource_classes:delete",
		"placement:traits:update", "placement:traits:delete")
	return rules
}
