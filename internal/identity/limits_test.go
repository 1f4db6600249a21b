package identity_test

import (
	"context"
	"maps"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/identity"
)

// TestProjectLimits resolves limits as oslo.limit's flat enforcer does:
// the service by catalog type, a project limit over the registered one,
// the endpoint's region over none, nothing for an unregistered resource.
func TestProjectLimits(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		_, pid, _ := e.member()
		ctx := context.Background()
		img := e.expect(e.do("POST", "/v3/services", e.admin, map[string]any{"service": map[string]any{"type": "image", "name": "glance"}}), 201).body["service"].(map[string]any)["id"].(string)
		reg := func(res string, v int, region string) {
			l := map[string]any{"service_id": img, "resource_name": res, "default_limit": v}
			if region != "" {
				l["region_id"] = region
			}
			e.expect(e.do("POST", "/v3/registered_limits", e.admin, map[string]any{"registered_limits": []any{l}}), 201)
		}
		reg("image_count_total", 10, "")
		reg("image_size_total", 100, "")
		reg("image_size_total", 200, "RegionOne")
		reg("image_stage_total", -1, "")
		r := e.expect(e.do("POST", "/v3/limits", e.admin, map[string]any{"limits": []any{
			map[string]any{"service_id": img, "project_id": pid, "resource_name": "image_count_total", "resource_limit": 3}}}), 201)
		limitID := r.body["limits"].([]any)[0].(map[string]any)["id"].(string)
		all := []string{"image_count_total", "image_size_total", "image_stage_total", "image_count_uploading"}
		tests := []struct {
			name    string
			q       identity.LimitQuery
			want    map[string]int64
			wantErr bool
		}{
			{"project override, no region", identity.LimitQuery{ServiceType: "image", ProjectID: pid, Resources: all},
				map[string]int64{"image_count_total": 3, "image_size_total": 100, "image_stage_total": -1}, false},
			{"region wins over none", identity.LimitQuery{ServiceType: "image", RegionID: "RegionOne", ProjectID: pid, Resources: all},
				map[string]int64{"image_count_total": 3, "image_size_total": 200, "image_stage_total": -1}, false},
			{"other project: defaults", identity.LimitQuery{ServiceType: "image", ProjectID: "other", Resources: all},
				map[string]int64{"image_count_total": 10, "image_size_total": 100, "image_stage_total": -1}, false},
			{"only what is asked", identity.LimitQuery{ServiceType: "image", ProjectID: pid, Resources: []string{"image_size_total"}},
				map[string]int64{"image_size_total": 100}, false},
			{"no such service type", identity.LimitQuery{ServiceType: "volumev3", ProjectID: pid, Resources: all},
				map[string]int64{}, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := e.svc.ProjectLimits(ctx, tc.q)
				if (err != nil) != tc.wantErr || !maps.Equal(got, tc.want) {
					t.Fatalf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
				}
			})
		}
		// A write through the API is seen at once (the cache follows the generation).
		e.expect(e.do("PATCH", "/v3/limits/"+limitID, e.admin, map[string]any{"limit": map[string]any{"resource_limit": 7}}), 200)
		got, err := e.svc.ProjectLimits(ctx, identity.LimitQuery{ServiceType: "image", ProjectID: pid, Resources: all})
		if err != nil || got["image_count_total"] != 7 {
			t.Fatalf("after update: %v %v", got, err)
		}
		e.expect(e.do("DELETE", "/v3/limits/"+limitID, e.admin, nil), 204)
		if got, _ := e.svc.ProjectLimits(ctx, identity.LimitQuery{ServiceType: "image", ProjectID: pid, Resources: all}); got["image_count_total"] != 10 {
			t.Fatalf("after delete: %v", got)
		}
		// Two services of the type: whose limits apply is ambiguous, as in oslo.limit.
		e.expect(e.do("POST", "/v3/services", e.admin, map[string]any{"service": map[string]any{"type": "image", "name": "glance2"}}), 201)
		if got, err := e.svc.ProjectLimits(ctx, identity.LimitQuery{ServiceType: "image", ProjectID: pid, Resources: all}); err == nil {
			t.Fatalf("two image services: %v, no error", got)
		}
	})
}
