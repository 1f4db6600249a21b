package image

import "github.com/kumo-cloud/kumo/internal/policy"

// Policy rule names. They follow Glance's rule names under an "image:"
// prefix, so one enforcer can hold every service's rules.
const (
	ruleGetImage         = "image:get_image"
	ruleGetImages        = "image:get_images"
	ruleAddImage         = "image:add_image"
	ruleModifyImage      = "image:modify_image"
	ruleDeleteImage      = "image:delete_image"
	ruleUploadImage      = "image:upload_image"
	ruleDownloadImage    = "image:download_image"
	rulePublicizeImage   = "image:publicize_image"
	ruleCommunitizeImage = "image:communitize_image"
	ruleDeactivate       = "image:deactivate"
	ruleReactivate       = "image:reactivate"
	ruleAddMember        = "image:add_member"
	ruleDeleteMember     = "image:delete_member"
	ruleGetMember        = "image:get_member"
	ruleGetMembers       = "image:get_members"
	ruleModifyMember     = "image:modify_member"
	ruleImportImage      = "image:import_image"
)

// PolicyDefaults are Glance's secure-RBAC defaults. Targets carry
// project_id (the image owner) and, for member rules, member_id.
//
// Glance's own defaults also test the image visibility with generic
// checks ('public':%(visibility)s), which Kumo's policy language does not
// have; instead the service applies the visibility rules (public,
// community, owned, shared with the caller) before consulting the policy,
// answering 404 for images the caller cannot see, as Glance does.
func PolicyDefaults() []policy.Rule {
	const (
		admin         = "role:admin"
		projectMember = "role:admin or (role:member and project_id:%(project_id)s)"
		reader        = "role:admin or role:reader"
	)
	return append([]policy.Rule{
		{Name: ruleGetImage, Check: reader, Description: "Get an image the caller can see."},
		{Name: ruleGetImages, Check: reader, Description: "List the images the caller can see."},
		{Name: ruleAddImage, Check: projectMember, Description: "Create an image owned by the caller's project."},
		{Name: ruleModifyImage, Check: projectMember, Description: "Update an image, its tags and its visibility."},
		{Name: ruleDeleteImage, Check: projectMember, Description: "Delete an image."},
		{Name: ruleUploadImage, Check: projectMember, Description: "Upload or stage image data."},
		{Name: ruleDownloadImage, Check: reader, Description: "Download the data of an image the caller can see."},
		{Name: rulePublicizeImage, Check: admin, Description: "Make an image public."},
		{Name: ruleCommunitizeImage, Check: projectMember, Description: "Make an image community-visible."},
		{Name: ruleDeactivate, Check: admin, Description: "Deactivate an image."},
		{Name: ruleReactivate, Check: admin, Description: "Reactivate an image."},
		{Name: ruleAddMember, Check: projectMember, Description: "Share an image with a project."},
		{Name: ruleDeleteMember, Check: projectMember, Description: "Stop sharing an image with a project."},
		{Name: ruleGetMember, Check: "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))", Description: "Show an image member."},
		{Name: ruleGetMembers, Check: "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))", Description: "List image members."},
		{Name: ruleModifyMember, Check: "role:admin or (role:member and project_id:%(member_id)s)", Description: "Accept or reject an image shared with the caller's project."},
		{Name: ruleImportImage, Check: projectMember, Description: "Import staged image data."},
	}, append(taskPolicyDefaults(), infoPolicyDefaults()...)...)
}
