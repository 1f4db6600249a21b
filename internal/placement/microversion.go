package placement

import "github.com/kumo-cloud/kumo/internal/apiutil"

// The Placement microversion history as Kumo serves it. Each step names
// what it added; handlers compare apiutil.VersionOf(ctx) against these.
//
//	1.0  initial API
//	1.1  provider aggregates
//	1.2  custom resource classes (/resource_classes)
//	1.3  member_of on GET /resource_providers
//	1.4  resources filter on GET /resource_providers
//	1.5  DELETE /resource_providers/{uuid}/inventories
//	1.6  traits
//	1.7  PUT /resource_classes/{name} creates or verifies (201/204), no body
//	1.8  project_id and user_id required on PUT /allocations
//	1.9  GET /usages
//	1.10 GET /allocation_candidates
//	1.11 allocations link on providers
//	1.12 dict format of PUT /allocations; project/user in GET /allocations
//	1.13 POST /allocations
//	1.14 nested providers: parent/root uuids, in_tree
//	1.15 Last-Modified and Cache-Control headers
//	1.16 limit on allocation candidates
//	1.17 required traits on allocation candidates, traits in summaries
//	1.18 required on GET /resource_providers
//	1.19 generation on provider aggregates
//	1.20 POST /resource_providers answers with the provider
//	1.21 member_of on allocation candidates
//	1.22 forbidden traits (!TRAIT)
//	1.23 error codes in error bodies
//	1.24 repeated member_of
//	1.25 granular request groups, group_policy
//	1.26 reserved may equal total
//	1.27 provider summaries list every resource class of the provider
//	1.28 consumer generations
//	1.29 nested allocation candidates; parent/root in summaries
//	1.30 POST /reshaper
//	1.31 in_tree on allocation candidates
//	1.32 forbidden aggregates (member_of=!…)
//	1.33 string suffixes on request groups
//	1.34 mappings in allocation requests
//	1.35 root_required
//	1.36 same_subtree; resourceless request groups
var (
	vMin = apiutil.Version{Major: 1, Minor: 0}
	vMax = apiutil.Version{Major: 1, Minor: 36}
)

// Microversions is Placement's negotiation: "OpenStack-API-Version: placement 1.x".
var Microversions = apiutil.Microversions{Service: "placement", Min: vMin, Max: vMax}

func v(minor int) apiutil.Version { return apiutil.Version{Major: 1, Minor: minor} }
