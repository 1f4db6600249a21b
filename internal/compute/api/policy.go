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
		projectMember = "role:admin or (role:member and project_id:%(project_id)s)"
	)
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	rules := []policy.Rule{
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

		r(ruleAggIndex, admin, "List host aggregates."),
		r(ruleAggCreate, admin, "Create a host aggregate."),
		r(ruleAggShow, admin, "Show a host aggregate."),
		r(ruleAggUpdate, admin, "Rename a host aggregate or change its availability zone."),
		r(ruleAggDelete, admin, "Delete an empty host aggregate."),
		r(ruleAggAddHost, admin, "Add a host to an aggregate."),
		r(ruleAggRemoveHost, admin, "Remove a host from an aggregate."),
		r(ruleAggSetMetadata, admin, "Set or remove metadata of an aggregate."),
		r(ruleGroupIndex, projectReader, "List the server groups of a project."),
		r(ruleGroupIndexAll, admin, "List the server groups of every project (all_projects)."),
		r(ruleGroupCreate, projectMember, "Create a server group."),
		r(ruleGroupShow, projectReader, "Show a server group."),
		r(ruleGroupDelete, projectMember, "Delete a server group."),
		r(ruleMigrationsIndex, admin, "List migrations (os-migrations)."),
		r(ruleServerMigrationsIndex, admin, "List a server's live migrations in progress."),
		r(ruleServerMigrationsShow, admin, "Show a server's live migration in progress."),
		r(ruleServerMigrationsDelete, admin, "Abort a server's live migration in progress."),
		r(ruleServerMigrationsForce, admin, "Force a server's live migration in progress to complete."),
		r(ruleForcedHost, admin, "Force a server onto a host with availability_zone \"zone:host[:node]\"."),
	}
	for _, x := range []struct{ name, check, desc string }{
		{ruleServersIndex, projectReader, "List the servers of a project."},
		{ruleServersDetail, projectReader, "List the servers of a project with details."},
		{ruleServersIndexAll, admin, "List the servers of all projects (all_tenants)."},
		{ruleServersDetailAll, admin, "List the servers of all projects with details (all_tenants)."},
		{ruleServersAllFilters, admin, "Use every server list filter (host, deleted, ...)."},
		{ruleServersShow, projectReader, "Show a server."},
		{ruleServersHostStatus, admin, "Show host_status in server views."},
		{ruleServersCreate, projectMember, "Create a server."},
		{ruleServersUpdate, projectMember, "Update a server."},
		{ruleServersDelete, projectMember, "Delete a server."},
		{ruleExtendedAttrs, admin, "Show the OS-EXT-SRV-ATTR attributes of servers."},
		{ruleForceDelete, projectMember, "Force-delete a soft-deleted server."},
		{ruleRestore, projectMember, "Restore a soft-deleted server."},
		{ruleServerMetaIndex, projectReader, "List server metadata."},
		{ruleServerMetaShow, projectReader, "Show a server metadata item."},
		{ruleServerMetaCreate, projectMember, "Create server metadata items."},
		{ruleServerMetaUpdate, projectMember, "Update a server metadata item."},
		{ruleServerMetaUpdateAll, projectMember, "Replace server metadata."},
		{ruleServerMetaDelete, projectMember, "Delete a server metadata item."},
		{ruleTagsIndex, projectReader, "List server tags."},
		{ruleTagsShow, projectReader, "Check a server tag."},
		{ruleTagsUpdate, projectMember, "Add a server tag."},
		{ruleTagsUpdateAll, projectMember, "Replace server tags."},
		{ruleTagsDelete, projectMember, "Delete a server tag."},
		{ruleTagsDeleteAll, projectMember, "Delete all server tags."},
		{ruleActionsList, projectReader, "List the actions of a server."},
		{ruleActionsShow, projectReader, "Show an action of a server."},
		{ruleActionsEvents, admin, "Show action events (before 2.51) and their tracebacks."},
		{ruleActionsDetails, projectReader, "Show action event details (2.84)."},
		{ruleIPsIndex, projectReader, "List server addresses."},
		{ruleIPsShow, projectReader, "Show server addresses of a network."},
		{ruleIfaceList, projectReader, "List a server's interfaces."},
		{ruleIfaceShow, projectReader, "Show an interface of a server."},
		{ruleIfaceCreate, projectMember, "Attach an interface to a server."},
		{ruleIfaceDelete, projectMember, "Detach an interface from a server."},
		{ruleExternalEvents, "role:admin or role:service", "Send external events about servers (the networking service)."},
		{ruleStart, projectMember, "Start a server."},
		{ruleStop, projectMember, "Stop a server."},
		{ruleReboot, projectMember, "Reboot a server."},
		{ruleResize, projectMember, "Resize a server."},
		{ruleConfirmResize, projectMember, "Confirm a resize."},
		{ruleRevertResize, projectMember, "Revert a resize."},
		{ruleRebuild, projectMember, "Rebuild a server."},
		{ruleCreateImage, projectMember, "Snapshot a server."},
		{rulePause, projectMember, "Pause a server."},
		{ruleUnpause, projectMember, "Unpause a server."},
		{ruleSuspend, projectMember, "Suspend a server."},
		{ruleResume, projectMember, "Resume a server."},
		{ruleLock, projectMember, "Lock a server."},
		{ruleUnlock, projectMember, "Unlock a server."},
		{ruleUnlockOverride, admin, "Unlock a server locked by an admin."},
		{ruleRescue, projectMember, "Rescue a server."},
		{ruleUnrescue, projectMember, "Unrescue a server."},
		{ruleShelve, projectMember, "Shelve a server."},
		{ruleShelveOffload, admin, "Offload a shelved server."},
		{ruleUnshelve, projectMember, "Unshelve a server."},
		{ruleConsoleOutput, projectMember, "Show a server's console output."},
		{ruleRemoteConsoles, projectMember, "Get a URL to a server's serial or VNC console."},
		{ruleAdminPassword, projectMember, "Change a server's admin password."},
		{ruleCrashDump, projectMember, "Trigger a crash dump of a server."},
		{ruleResetState, admin, "Reset a server's state."},
		{ruleMigrate, admin, "Cold-migrate a server."},
		{ruleMigrateLive, admin, "Live-migrate a server."},
		{ruleEvacuate, admin, "Evacuate a server from a failed host."},
		{ruleServicesList, admin, "List compute services."},
		{ruleServicesUpdate, admin, "Enable, disable or force down a compute service."},
		{ruleServicesDelete, admin, "Delete a compute service."},
		{ruleHypList, admin, "List hypervisors."},
		{ruleHypDetail, admin, "List hypervisors with details."},
		{ruleHypShow, admin, "Show a hypervisor."},
		{ruleHypStats, admin, "Show hypervisor statistics."},
		{ruleHypServers, admin, "List the servers of hypervisors."},
		{ruleHypSearch, admin, "Search hypervisors."},
	} {
		rules = append(rules, r(x.name, x.check, x.desc))
	}
	for _, x := range append(secGroupRules(), extraRules()...) {
		rules = append(rules, r(x[0], x[1], x[2]))
	}
	return append(rules, volumeAttachmentRules()...)
}
