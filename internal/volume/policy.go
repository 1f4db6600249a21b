package volume

import "github.com/kumo-cloud/kumo/internal/policy"

// Policy rule names: Cinder's own.
const (
	ruleCreate          = "volume:create"
	ruleGet             = "volume:get"
	ruleGetAll          = "volume:get_all"
	ruleUpdate          = "volume:update"
	ruleDelete          = "volume:delete"
	ruleExtend          = "volume:extend"
	ruleForceDelete     = "volume:force_delete"
	ruleMetadata        = "volume:update_volume_metadata"
	ruleGetMetadata     = "volume:get_volume_metadata"
	ruleImageMetadata   = "volume_extension:volume_image_metadata:set"
	ruleUploadImage     = "volume:copy_volume_to_image"
	ruleBootable        = "volume_extension:volume_actions:set_bootable"
	ruleReadonly        = "volume:update_readonly_flag"
	ruleResetStatus     = "volume_extension:volume_admin_actions:reset_status"
	ruleSnapCreate      = "volume:create_snapshot"
	ruleSnapGet         = "volume:get_snapshot"
	ruleSnapGetAll      = "volume:get_all_snapshots"
	ruleSnapUpdate      = "volume:update_snapshot"
	ruleSnapDelete      = "volume:delete_snapshot"
	ruleSnapMetadata    = "volume:update_snapshot_metadata"
	ruleSnapResetStatus = "volume_extension:snapshot_admin_actions:reset_status"
	ruleTypesManage     = "volume_extension:types_manage"
	ruleTypeSpecs       = "volume_extension:access_types_extra_specs"
	ruleTypeAccess      = "volume_extension:volume_type_access:addProjectAccess"
	ruleTypeAccessList  = "volume_extension:volume_type_access"
	ruleQuotaShow       = "volume_extension:quotas:show"
	ruleQuotaUpdate     = "volume_extension:quotas:update"
	ruleQuotaDelete     = "volume_extension:quotas:delete"
	ruleServices        = "volume_extension:services:index"
	ruleServicesUpdate  = "volume_extension:services:update"
	ruleAttachCreate    = "volume:attachment_create"
	ruleAttachUpdate    = "volume:attachment_update"
	ruleAttachDelete    = "volume:attachment_delete"
	ruleAttachComplete  = "volume:attachment_complete"
	ruleAttachGet       = "volume:attachment_get"
	ruleHostAttr        = "volume_extension:volume_host_attribute"
	ruleTenantAttr      = "volume_extension:volume_tenant_attribute"
)

// PolicyDefaults are Cinder's secure-RBAC defaults. Targets carry
// project_id, the owner of the resource.
func PolicyDefaults() []policy.Rule {
	const (
		admin  = "role:admin"
		member = "role:admin or (role:member and project_id:%(project_id)s)"
		reader = "role:admin or (role:reader and project_id:%(project_id)s)"
	)
	r := func(name, check, desc string) policy.Rule {
		return policy.Rule{Name: name, Check: check, Description: desc}
	}
	return append([]policy.Rule{
		r(ruleCreate, member, "Create a volume."),
		r(ruleGet, reader, "Show a volume."),
		r(ruleGetAll, reader, "List volumes."),
		r(ruleUpdate, member, "Update a volume."),
		r(ruleDelete, member, "Delete a volume."),
		r(ruleExtend, member, "Extend a volume."),
		r(ruleForceDelete, admin, "Force-delete a volume."),
		r(ruleMetadata, member, "Change volume metadata."),
		r(ruleGetMetadata, reader, "Show volume metadata."),
		r(ruleImageMetadata, member, "Set or unset volume image metadata."),
		r(ruleUploadImage, member, "Upload a volume to the image service."),
		r(ruleBootable, member, "Set the bootable flag."),
		r(ruleReadonly, member, "Set the read-only flag."),
		r(ruleResetStatus, admin, "Reset a volume's status."),
		r(ruleSnapCreate, member, "Create a snapshot."),
		r(ruleSnapGet, reader, "Show a snapshot."),
		r(ruleSnapGetAll, reader, "List snapshots."),
		r(ruleSnapUpdate, member, "Update a snapshot."),
		r(ruleSnapDelete, member, "Delete a snapshot."),
		r(ruleSnapMetadata, member, "Change snapshot metadata."),
		r(ruleSnapResetStatus, admin, "Reset a snapshot's status."),
		r(ruleTypesManage, admin, "Create, update and delete volume types."),
		r(ruleTypeSpecs, admin, "See the extra specs of volume types."),
		r(ruleTypeAccess, admin, "Add or remove project access to a private type."),
		r(ruleTypeAccessList, admin, "List the projects with access to a type."),
		r(ruleQuotaShow, reader, "Show a project's quotas."),
		r(ruleQuotaUpdate, admin, "Update quotas."),
		r(ruleQuotaDelete, admin, "Reset quotas to the defaults."),
		r(ruleServices, admin, "List block storage services."),
		r(ruleServicesUpdate, admin, "Enable or disable a service."),
		r(ruleAttachCreate, member, "Create an attachment."),
		r(ruleAttachUpdate, member, "Update an attachment (connect)."),
		r(ruleAttachDelete, member, "Delete an attachment."),
		r(ruleAttachComplete, member, "Mark an attachment attached."),
		r(ruleAttachGet, reader, "Show and list attachments."),
		r(ruleHostAttr, admin, "See the host of a volume."),
		r(ruleTenantAttr, reader, "See the project of a volume."),
	}, append(append(moreRules(), backupRules()...), qosRules()...)...)
}
