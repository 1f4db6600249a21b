package image

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Image API versions Kumo advertises at GET /image. Glance has no
// per-request microversions: the list tells clients which features the
// deployment has, and Glance itself leaves out the versions whose
// features a deployment lacks (a single-store Glance lists 2.15, 2.9 and
// 2.7 to 2.0; 2.8 and 2.10 to 2.13 only with multiple stores, 2.14 and
// 2.16 only with the image cache). Kumo lists what it implements:
//
//	2.0–2.5  images, data, sharing, tags, member status, community visibility
//	2.6      interoperable import (glance-direct), /v2/info/import
//	2.7      os_hidden, os_hash_algo/os_hash_value
//	2.8, 2.9 stores: /v2/info/stores (one "file" store), the stores of an import
//	2.12     GET /v2/images/{id}/tasks (CURRENT)
//
// Not listed: 2.10 (DELETE /v2/stores/{store_id}/{image_id}, deleting one
// copy of a multi-store image: Kumo keeps one copy and has no such call)
// and 2.11 (no feature of it is in Kumo's reference material; not
// claimed); 2.13 and later (the image cache API of 2.14/2.16 and the
// location API of 2.17 are not implemented). Kumo also serves the Yoga
// discovery calls /v2/info/usage and /v2/info/stores/detail; like every
// call here they do not depend on a requested version.
var imageVersions = []string{"2.12", "2.9", "2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"}

func (s *Service) versions(r *http.Request) (*apiutil.Response, error) {
	href := strings.TrimRight(s.deps.PublicURL, "/") + "/image/v2/"
	list := make([]map[string]any, 0, len(imageVersions))
	for i, v := range imageVersions {
		status := "SUPPORTED"
		if i == 0 {
			status = "CURRENT"
		}
		list = append(list, map[string]any{
			"id": fmt.Sprintf("v%s", v), "status": status,
			"links": []apiutil.Link{{Rel: "self", Href: href}},
		})
	}
	return apiutil.JSON(http.StatusMultipleChoices, map[string]any{"versions": list}), nil
}
