package api

import (
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// The compute API's microversion history, as far as Kumo implements it.
// This file is the one place it lives: every behaviour that depends on the
// negotiated version compares against one of these constants.
//
// Versions not listed here change APIs Kumo does not serve yet (volume
// attachments, migrations, server groups, ...); they are accepted and
// behave like their predecessor for the resources that exist.
var (
	// V2_1 is the base version: the v2.0 API with strict input validation.
	V2_1 = apiutil.Version{Major: 2, Minor: 1}

	// V2_2: key pairs get a "type" (ssh, default, or x509) in requests and
	// views; key pair create answers 201 instead of 200 and delete 204
	// instead of 202.
	V2_2 = apiutil.Version{Major: 2, Minor: 2}

	// V2_3: admins see more OS-EXT-SRV-ATTR fields in server views
	// (reservation_id, launch_index, hostname, kernel_id, ramdisk_id,
	// root_device_name, user_data).
	V2_3 = apiutil.Version{Major: 2, Minor: 3}

	// V2_6: POST /servers/{id}/remote-consoles.
	V2_6 = apiutil.Version{Major: 2, Minor: 6}

	// V2_9: server views show "locked".
	V2_9 = apiutil.Version{Major: 2, Minor: 9}

	// V2_11: os-services shows forced_down.
	V2_11 = apiutil.Version{Major: 2, Minor: 11}

	// V2_14: evacuate answers without adminPass.
	V2_14 = apiutil.Version{Major: 2, Minor: 14}

	// V2_16: server views show host_status (policy permitting).
	V2_16 = apiutil.Version{Major: 2, Minor: 16}

	// V2_17: the trigger_crash_dump server action exists.
	V2_17 = apiutil.Version{Major: 2, Minor: 17}

	// V2_19: servers have a description (create, update, rebuild, views).
	V2_19 = apiutil.Version{Major: 2, Minor: 19}

	// V2_21: instance actions of deleted servers can be listed.
	V2_21 = apiutil.Version{Major: 2, Minor: 21}

	// V2_26: server tags (the /tags API, views and list filters).
	V2_26 = apiutil.Version{Major: 2, Minor: 26}

	// V2_37: server create requires "networks" ("auto", "none" or a list).
	V2_37 = apiutil.Version{Major: 2, Minor: 37}

	// V2_38: an unknown status filter on server lists is a 400.
	V2_38 = apiutil.Version{Major: 2, Minor: 38}

	// V2_45: createImage and createBackup answer {"image_id"} in the body
	// instead of a Location header.
	V2_45 = apiutil.Version{Major: 2, Minor: 45}

	// V2_47: server views embed the flavor (vcpus, ram, ... original_name)
	// instead of linking to it.
	V2_47 = apiutil.Version{Major: 2, Minor: 47}

	// V2_48: server diagnostics answer Nova's standard format (state,
	// driver, hypervisor, ..., cpu/memory/disk/nic details) instead of
	// the driver's own keys.
	V2_48 = apiutil.Version{Major: 2, Minor: 48}

	// V2_49: os-interface attach takes a device "tag".
	V2_49 = apiutil.Version{Major: 2, Minor: 49}

	// V2_51: instance action events are shown to non-admins;
	// os-server-external-events accepts "volume-extended".
	V2_51 = apiutil.Version{Major: 2, Minor: 51}

	// V2_52: tags can be given when creating a server.
	V2_52 = apiutil.Version{Major: 2, Minor: 52}

	// V2_53: services and hypervisors are identified by UUID;
	// PUT /os-services/{id} replaces the action URLs; hypervisor lists
	// take with_servers.
	V2_53 = apiutil.Version{Major: 2, Minor: 53}

	// V2_54: rebuild takes key_name.
	V2_54 = apiutil.Version{Major: 2, Minor: 54}

	// V2_56: cold migrate takes a target host.
	V2_56 = apiutil.Version{Major: 2, Minor: 56}

	// V2_58: instance actions have updated_at and page with limit, marker
	// and changes-since.
	V2_58 = apiutil.Version{Major: 2, Minor: 58}

	// V2_62: instance action events show host (admin) and hostId.
	V2_62 = apiutil.Version{Major: 2, Minor: 62}

	// V2_63: server views show trusted_image_certificates.
	V2_63 = apiutil.Version{Major: 2, Minor: 63}

	// V2_66: changes-before filters server lists and instance actions.
	V2_66 = apiutil.Version{Major: 2, Minor: 66}

	// V2_71: server views show server_groups.
	V2_71 = apiutil.Version{Major: 2, Minor: 71}

	// V2_73: lock takes locked_reason; views show it; lists filter on locked.
	V2_73 = apiutil.Version{Major: 2, Minor: 73}

	// V2_74: admins may name host / hypervisor_hostname on create.
	V2_74 = apiutil.Version{Major: 2, Minor: 74}

	// V2_84: instance action events show details.
	V2_84 = apiutil.Version{Major: 2, Minor: 84}

	// V2_88: hypervisor views drop the resource counters and show uptime;
	// /os-hypervisors/statistics and /os-hypervisors/{id}/uptime are gone.
	V2_88 = apiutil.Version{Major: 2, Minor: 88}

	// V2_90: servers have a user-settable hostname, shown to everyone as
	// OS-EXT-SRV-ATTR:hostname.
	V2_90 = apiutil.Version{Major: 2, Minor: 90}

	// V2_96: server views show pinned_availability_zone.
	V2_96 = apiutil.Version{Major: 2, Minor: 96}

	// V2_7: adding tenant access to a public flavor is a 409.
	V2_7 = apiutil.Version{Major: 2, Minor: 7}

	// V2_10: admins can list, show, delete and create key pairs of other
	// users with user_id (query parameter, or in the create body).
	V2_10 = apiutil.Version{Major: 2, Minor: 10}

	// V2_35: key pair lists page with limit and marker (a key pair name)
	// and answer keypairs_links.
	V2_35 = apiutil.Version{Major: 2, Minor: 35}

	// V2_36: network quotas (fixed_ips, floating_ips, security_groups,
	// security_group_rules) leave os-quota-sets and the network limits
	// (maxSecurityGroups, maxSecurityGroupRules, maxTotalFloatingIps and
	// their totals) leave /limits; the /images proxy (and its metadata)
	// and the security group proxy (os-security-groups,
	// os-security-group-rules) answer 404.
	V2_36 = apiutil.Version{Major: 2, Minor: 36}

	// V2_39: maxImageMeta leaves /limits.
	V2_39 = apiutil.Version{Major: 2, Minor: 39}

	// V2_50: os-quota-class-sets shows server_groups and
	// server_group_members, and drops the network quotas.
	V2_50 = apiutil.Version{Major: 2, Minor: 50}

	// V2_55: flavors have a description (views, create, and the new
	// PUT /flavors/{id} that updates it).
	V2_55 = apiutil.Version{Major: 2, Minor: 55}

	// V2_57: the injected_file* quotas leave os-quota-sets and
	// os-quota-class-sets; maxPersonality and maxPersonalitySize leave
	// /limits.
	V2_57 = apiutil.Version{Major: 2, Minor: 57}

	// V2_61: flavor views (detail, show, create, update) include
	// extra_specs when policy lets the caller list them.
	V2_61 = apiutil.Version{Major: 2, Minor: 61}

	// V2_70: os-interface views show the device "tag".
	V2_70 = apiutil.Version{Major: 2, Minor: 70}

	// V2_76: os-server-external-events accepts "power-update".
	V2_76 = apiutil.Version{Major: 2, Minor: 76}

	// V2_82: os-server-external-events accepts "accelerator-request-bound".
	V2_82 = apiutil.Version{Major: 2, Minor: 82}

	// V2_93: os-server-external-events accepts "volume-reimaged"; rebuild
	// of a volume-backed server re-images its boot volume with the
	// rebuild's image (any image, the same one included).
	V2_93 = apiutil.Version{Major: 2, Minor: 93}

	// V2_75: flavor views return swap 0 instead of "" when there is no
	// swap; unknown query parameters of key pair requests are a 400.
	V2_75 = apiutil.Version{Major: 2, Minor: 75}

	// V2_86: flavor extra specs in known namespaces are validated.
	V2_86 = apiutil.Version{Major: 2, Minor: 86}

	// V2_92: key pairs can no longer be generated by the server (a
	// public_key is required) and names may also contain "@" and ".".
	V2_92 = apiutil.Version{Major: 2, Minor: 92}

	// MinVersion and MaxVersion bound what Kumo negotiates.
	MinVersion = V2_1
	MaxVersion = V2_96
)

// Microversions is the negotiation of the compute API.
var Microversions = apiutil.Microversions{
	Service: "compute",
	Legacy:  "X-OpenStack-Nova-API-Version",
	Min:     MinVersion,
	Max:     MaxVersion,
}

// negotiate wraps the shared negotiation: Nova answers an unsupported
// version with a 406 whose fault key is "computeFault" (406 is not among
// the statuses its fault renderer names).
func negotiate(r *http.Request) (*http.Request, error) {
	nr, err := Microversions.Before(r)
	if err != nil {
		if e, ok := err.(*apiutil.Error); ok && e.Status == http.StatusNotAcceptable && e.Code == "" {
			e.Code = "computeFault"
		}
		return r, err
	}
	return nr, nil
}

// atLeast reports whether the request negotiated version v or newer.
func atLeast(r *http.Request, v apiutil.Version) bool {
	return apiutil.VersionOf(r.Context()).AtLeast(v)
}
