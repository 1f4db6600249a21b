package placement

import (
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func TestReshaper(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		cn := h.provider("cn", "")
		numa := h.provider("cn-numa0", cn)
		g := h.inventory(cn, map[string]any{"VCPU": map[string]any{"total": 8}, "DISK_GB": map[string]any{"total": 100}})
		const c = "cccccccc-0000-0000-0000-00000000000a"
		h.must(h.do("PUT", "/placement/allocations/"+c, latest, map[string]any{
			"allocations": map[string]any{cn: map[string]any{"resources": map[string]any{"VCPU": 2, "DISK_GB": 10}}},
			"project_id":  "p", "user_id": "u", "consumer_generation": nil}), 204, "")
		g++ // the claim bumped cn
		// Removing VCPU from cn without moving the allocation: 409, nothing changes.
		h.must(h.do("POST", "/placement/reshaper", latest, map[string]any{
			"inventories": map[string]any{
				cn:   map[string]any{"resource_provider_generation": g, "inventories": map[string]any{"DISK_GB": map[string]any{"total": 100}}},
				numa: map[string]any{"resource_provider_generation": 0, "inventories": map[string]any{"VCPU": map[string]any{"total": 8}}},
			},
			"allocations": map[string]any{},
		}), 409, codeInventoryInUse)
		r := h.must(h.do("GET", "/placement/resource_providers/"+numa+"/inventories", latest, nil), 200, "")
		if len(r.body["inventories"].(map[string]any)) != 0 {
			t.Fatalf("half-written reshape: %s", r.raw)
		}
		// Stale generation.
		h.must(h.do("POST", "/placement/reshaper", latest, map[string]any{
			"inventories": map[string]any{cn: map[string]any{"resource_provider_generation": g - 1, "inventories": map[string]any{}}},
			"allocations": map[string]any{},
		}), 409, codeConcurrentUpdate)
		h.must(h.do("POST", "/placement/reshaper", "1.29", map[string]any{}), 404, "")
		// Move VCPU to the NUMA child together with the allocation.
		h.must(h.do("POST", "/placement/reshaper", latest, map[string]any{
			"inventories": map[string]any{
				cn:   map[string]any{"resource_provider_generation": g, "inventories": map[string]any{"DISK_GB": map[string]any{"total": 100}}},
				numa: map[string]any{"resource_provider_generation": 0, "inventories": map[string]any{"VCPU": map[string]any{"total": 8}}},
			},
			"allocations": map[string]any{c: map[string]any{
				"allocations": map[string]any{
					cn:   map[string]any{"resources": map[string]any{"DISK_GB": 10}},
					numa: map[string]any{"resources": map[string]any{"VCPU": 2}}},
				"project_id": "p", "user_id": "u", "consumer_generation": 1}},
		}), 204, "")
		r = h.must(h.do("GET", "/placement/resource_providers/"+numa+"/usages", latest, nil), 200, "")
		if num(r.body["usages"].(map[string]any)["VCPU"]) != 2 {
			t.Fatalf("usages after reshape: %s", r.raw)
		}
		r = h.must(h.do("GET", "/placement/resource_providers/"+cn+"/usages", latest, nil), 200, "")
		if u := r.body["usages"].(map[string]any); len(u) != 1 || num(u["DISK_GB"]) != 10 {
			t.Fatalf("root usages after reshape: %s", r.raw)
		}
	})
}
