package image

import (
	"net/http"
	"path/filepath"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Discovery calls beside /v2/info/import and /v2/info/stores (http.go):
// GET /v2/info/usage and GET /v2/info/stores/detail.

// ruleStoresInfoDetail gates /v2/info/stores/detail (Glance's
// stores_info_detail, admin only).
const ruleStoresInfoDetail = "image:stores_info_detail"

func infoPolicyDefaults() []policy.Rule {
	return []policy.Rule{
		{Name: ruleStoresInfoDetail, Check: "role:admin", Description: "Show the stores with their type and properties."},
	}
}

// infoUsage is GET /v2/info/usage: {"usage": {resource: {"limit", "usage"}}},
// empty when Keystone limits are not enforced (as in Glance).
func (s *Service) infoUsage(r *http.Request) (*apiutil.Response, error) {
	u, err := s.Usage(r.Context())
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, map[string]any{"usage": u}), nil
}

// infoStoresDetail is GET /v2/info/stores/detail: the one file store with
// its type and the properties Glance shows for a file store.
func (s *Service) infoStoresDetail(r *http.Request) (*apiutil.Response, error) {
	c := callerOf(r.Context())
	if err := s.authorize(c, ruleStoresInfoDetail, map[string]string{"project_id": c.project}); err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, map[string]any{"stores": []any{map[string]any{
		"id": storeID, "type": "file", "description": "Local filesystem store", "default": true, "weight": 0,
		"properties": map[string]any{
			"data_dir":          filepath.Join(s.blobs.dir, "images"),
			"chunk_size":        chunkSize,
			"thin_provisioning": false,
		},
	}}}), nil
}
