package api

import (
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// GET /extensions: Nova v2.1 still answers the fixed list of descriptors
// of the v2 extensions its API covers, all with the same namespace and
// date. Kumo lists the ones whose APIs it serves (sorted by alias, as
// Nova's list is).

const (
	ruleExtensions = "os_compute_api:extensions"

	extNamespace = "http://docs.openstack.org/compute/ext/fake_xml"
	extUpdated   = "2014-12-03T00:00:00Z"
)

// extensionList is alias, name, description.
var extensionList = [][3]string{
	{"OS-DCF", "DiskConfig", "Disk Management Extension."},
	{"OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."},
	{"OS-EXT-IMG-SIZE", "ImageSize", "Adds image size to image listings."},
	{"OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."},
	{"OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."},
	{"OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."},
	{"OS-EXT-STS", "ExtendedStatus", "Extended Status support."},
	{"OS-FLV-DISABLED", "FlavorDisabled", "Support to show the disabled status of a flavor."},
	{"OS-FLV-EXT-DATA", "FlavorExtraData", "Provide additional data for flavors."},
	{"OS-SCH-HNT", "SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."},
	{"OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."},
	{"os-access-ips", "AccessIPs", "Access IPs support."},
	{"os-admin-actions", "AdminActions", "Enable admin-only server actions\n\n    Actions include: resetNetwork, injectNetworkInfo, os-resetState\n    "},
	{"os-admin-password", "AdminPassword", "Admin password management support."},
	{"os-aggregates", "Aggregates", "Admin-only aggregate administration."},
	{"os-attach-interfaces", "AttachInterfaces", "Attach interface support."},
	{"os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create Server API.\n       2. Add availability zones describing.\n    "},
	{"os-config-drive", "ConfigDrive", "Config Drive Extension."},
	{"os-console-output", "ConsoleOutput", "Console log output support, with tailing ability."},
	{"os-consoles", "Consoles", "Interactive Console support."},
	{"os-deferred-delete", "DeferredDelete", "Instance deferred delete."},
	{"os-evacuate", "Evacuate", "Enables server evacuation."},
	{"os-extended-evacuate-find-host", "ExtendedEvacuateFindHost", "Enables server evacuation without target host. Scheduler will select one to target."},
	{"os-extended-hypervisors", "ExtendedHypervisors", "Extended hypervisors support."},
	{"os-extended-quotas", "ExtendedQuotas", "Adds ability for admins to delete quota and optionally force the update Quota command."},
	{"os-extended-rescue-with-image", "ExtendedRescueWithImage", "Allow the user to specify the image to use for rescue."},
	{"os-extended-services", "ExtendedServices", "Extended services support."},
	{"os-extended-services-delete", "ExtendedServicesDelete", "Extended services deletion support."},
	{"os-extended-status", "ExtendedStatus", "Extended Status support."},
	{"os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."},
	{"os-flavor-access", "FlavorAccess", "Flavor access support."},
	{"os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."},
	{"os-flavor-manage", "FlavorManage", "Flavor create/delete API support."},
	{"os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."},
	{"os-flavor-swap", "FlavorSwap", "Support to show the swap status of a flavor."},
	{"os-hypervisor-status", "HypervisorStatus", "Show hypervisor status."},
	{"os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."},
	{"os-instance-actions", "InstanceActions", "View a log of actions and events taken on an instance."},
	{"os-keypairs", "Keypairs", "Keypair Support."},
	{"os-lock-server", "LockServer", "Enable lock/unlock server actions."},
	{"os-migrate-server", "MigrateServer", "Enable migrate and live-migrate server actions."},
	{"os-migrations", "Migrations", "Provide data on migrations."},
	{"os-multiple-create", "MultipleCreate", "Allow multiple create in the Create Server v2.1 API."},
	{"os-pause-server", "PauseServer", "Enable pause/unpause server actions."},
	{"os-personality", "Personality", "Personality support."},
	{"os-quota-class-sets", "QuotaClasses", "Quota classes management support."},
	{"os-quota-sets", "Quotas", "Quotas management support."},
	{"os-rescue", "Rescue", "Instance rescue mode."},
	{"os-security-groups", "SecurityGroups", "Security group support."},
	{"os-server-diagnostics", "ServerDiagnostics", "Allow Admins to view server diagnostics through server action."},
	{"os-server-external-events", "ServerExternalEvents", "Server External Event Triggers."},
	{"os-server-group-quotas", "ServerGroupQuotas", "Adds quota support to server groups."},
	{"os-server-groups", "ServerGroups", "Server group support."},
	{"os-server-list-multi-status", "ServerListMultiStatus", "Allow to filter the servers by a set of status values."},
	{"os-server-sort-keys", "ServerSortKeys", "Add sorting support in get Server v2 API."},
	{"os-server-start-stop", "ServerStartStop", "Start/Stop instance compute API support."},
	{"os-services", "Services", "Services support."},
	{"os-shelve", "Shelve", "Instance shelve mode."},
	{"os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."},
	{"os-used-limits", "UsedLimits", "Provide data on limited resources that are being used."},
	{"os-used-limits-for-admin", "UsedLimitsForAdmin", "Provide data to admin on limited resources used by other tenants."},
	{"os-user-data", "UserData", "Add user_data to the Create Server API."},
	{"os-user-quotas", "UserQuotas", "Project user quota support."},
	{"os-volumes", "Volumes", "Volumes support."},
}

func extensionView(e [3]string) map[string]any {
	return map[string]any{"alias": e[0], "name": e[1], "description": e[2], "namespace": extNamespace,
		"updated": extUpdated, "links": []any{}}
}

func (a *API) listExtensions(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtensions, map[string]string{}); err != nil {
		return nil, err
	}
	out := make([]any, 0, len(extensionList))
	for _, e := range extensionList {
		out = append(out, extensionView(e))
	}
	return apiutil.JSON(200, map[string]any{"extensions": out}), nil
}

func (a *API) showExtension(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtensions, map[string]string{}); err != nil {
		return nil, err
	}
	alias := r.PathValue("alias")
	for _, e := range extensionList {
		if e[0] == alias {
			return apiutil.JSON(200, map[string]any{"extension": extensionView(e)}), nil
		}
	}
	return nil, apiutil.NotFound("The resource could not be found.")
}
