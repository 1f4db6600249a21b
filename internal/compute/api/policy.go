package api

import "github.com/kumo-cloud/kumo/internal/policy"

// PolicyDefaults are Nova's secure-RBAC defaults for the compute APIs
// served so far, under Nova's rule names. Check strings are written out
// rather than referring to Nova's base rules (context_is_admin,
// project_reader_api, ...) because every service shares one policy
// namespace and those base names are also used by other services.
//
// One deliberate difference: Nova lets any user of a key pair manage it;
// here creating and deleting key pairs needs the member role, so that
// readers only read.
func PolicyDefaults() []policy.Rule {
	const (
		admin         = "role:admin"
		anyone        = ""
		projectReader = "role:admin or (role:reader and project_id:%(project_id)s)"
		ownerReader   = "role:admin or user_id:%(user_id)s"
		ownerMember   = "role:admin or (role:member and user_id:%(user_id)s)"
	)
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	return []policy.Rule{
		r(ruleFlavorCreate, admin, "Create a flavor."),
		r(ruleFlavorUpdate, admin, "Update a flavor's description."),
		r(ruleFlavorDelete, admin, "Delete a flavor."),
		r(ruleFlavorAccess, admin, "List flavor access; see private flavors in flavor lists."),
		r(ruleFlavorAddAccess, admin, "Give a project access to a private flavor."),
		r(ruleFlavorDelAccess, admin, "Remove a project's access to a private flavor."),
		r(ruleExtraSpecsIndex, anyone, "List a flavor's extra specs (also shown in flavor views from 2.61)."),
		r(ruleExtraSpecsShow, anyone, "Show one extra spec of a flavor."),
		r(ruleExtraSpecsCreate, admin, "Create or update extra specs of a flavor."),
		r(ruleExtraSpecsUpdate, admin, "Update one extra spec of a flavor."),
		r(ruleExtraSpecsDelete, admin, "Delete an extra spec of a flavor."),

		r(ruleKeypairIndex, ownerReader, "List the key pairs of a user."),
		r(ruleKeypairShow, ownerReader, "Show a key pair."),
		r(ruleKeypairCreate, ownerMember, "Create or import a key pair."),
		r(ruleKeypairDelete, ownerMember, "Delete a key pair."),

		r(ruleQuotaShow, projectReader, "Show the quotas of a project."),
		r(ruleQuotaDetail, projectReader, "Show the quotas of a project with their usage."),
		r(ruleQuotaDefaults, anyone, "Show the default quotas."),
		r(ruleQuotaUpdate, admin, "Update the quotas of a project or user."),
		r(ruleQuotaDelete, admin, "Reset the quotas of a project or user to the defaults."),
		r(ruleQuotaClassShow, admin, "Show a quota class."),
		r(ruleQuotaClassUpdate, admin, "Update a quota class."),
		r(ruleLimits, anyone, "Show the rate and absolute limits of the caller's project."),
		r(ruleLimitsOtherProjec, admin, "Show the limits of another project (tenant_id)."),

		r(ruleZoneList, anyone, "List availability zones."),
		r(ruleZoneDetail, admin, "List availability zones with their hosts and services."),
	}
}
