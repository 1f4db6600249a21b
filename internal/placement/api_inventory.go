package placement

import (
	"encoding/json"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

const invProps = `"total": {"type": "integer", "maximum": 2147483647, "minimum": 1},
	"reserved": {"type": "integer", "maximum": 2147483647, "minimum": 0},
	"min_unit": {"type": "integer", "maximum": 2147483647, "minimum": 1},
	"max_unit": {"type": "integer", "maximum": 2147483647, "minimum": 1},
	"step_size": {"type": "integer", "maximum": 2147483647, "minimum": 1},
	"allocation_ratio": {"type": "number", "maximum": 3.40282e+38, "exclusiveMinimum": 0}`

var (
	putInventoriesSchema = schema(`{"type": "object", "properties": {
		"resource_provider_generation": {"type": "integer"},
		"inventories": {"type": "object", "patternProperties": {"^[A-Z0-9_]+$": {"type": "object", "properties": {` + invProps + `},
			"required": ["total"], "additionalProperties": false}}, "additionalProperties": false}},
		"required": ["resource_provider_generation", "inventories"], "additionalProperties": false}`)
	postInventorySchema = schema(`{"type": "object", "properties": {
		"resource_class": {"type": "string", "pattern": "^[A-Z0-9_]+$"},
		"resource_provider_generation": {"type": "integer"}, ` + invProps + `},
		"required": ["total", "resource_class"], "additionalProperties": false}`)
	putInventorySchema = schema(`{"type": "object", "properties": {
		"resource_provider_generation": {"type": "integer"}, ` + invProps + `},
		"required": ["total", "resource_provider_generation"], "additionalProperties": false}`)
)

type invBody struct {
	ResourceClass   string   `json:"resource_class"`
	Generation      *int64   `json:"resource_provider_generation"`
	Total           int64    `json:"total"`
	Reserved        int64    `json:"reserved"`
	MinUnit         *int64   `json:"min_unit"`
	MaxUnit         *int64   `json:"max_unit"`
	StepSize        *int64   `json:"step_size"`
	AllocationRatio *float64 `json:"allocation_ratio"`
}

func (b invBody) inventory(rc string, ver apiutil.Version) (Inventory, error) {
	inv := Inventory{ResourceClass: rc, Total: b.Total, Reserved: b.Reserved, MinUnit: 1, MaxUnit: maxInt32, StepSize: 1, AllocationRatio: 1}
	if b.MinUnit != nil {
		inv.MinUnit = *b.MinUnit
	}
	if b.MaxUnit != nil {
		inv.MaxUnit = *b.MaxUnit
	}
	if b.StepSize != nil {
		inv.StepSize = *b.StepSize
	}
	if b.AllocationRatio != nil {
		inv.AllocationRatio = *b.AllocationRatio
	}
	return inv, normalizeInventory(&inv, ver)
}

func invView(i Inventory) map[string]any {
	return map[string]any{"total": i.Total, "reserved": i.Reserved, "min_unit": i.MinUnit, "max_unit": i.MaxUnit,
		"step_size": i.StepSize, "allocation_ratio": i.AllocationRatio}
}

func (s *Service) inventoriesResponse(r *http.Request, uuid string, status int) (*apiutil.Response, error) {
	q := s.store.db.Reader()
	p, err := s.store.provider(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	invs, err := s.store.inventories(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for rc, i := range invs {
		out[rc] = invView(i)
	}
	return lastModified(apiutil.JSON(status, map[string]any{"inventories": out, "resource_provider_generation": p.Generation}), p), nil
}

func (s *Service) getInventories(r *http.Request) (*apiutil.Response, error) {
	return s.inventoriesResponse(r, r.PathValue("uuid"), 200)
}

func (s *Service) putInventories(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	uuid := r.PathValue("uuid")
	if _, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid); err != nil {
		return nil, err
	}
	var b struct {
		Generation  int64                      `json:"resource_provider_generation"`
		Inventories map[string]json.RawMessage `json:"inventories"`
	}
	if err := decode(r, putInventoriesSchema, &b); err != nil {
		return nil, err
	}
	var invs []Inventory
	for _, rc := range sortedKeys(b.Inventories) {
		var ib invBody
		if err := json.Unmarshal(b.Inventories[rc], &ib); err != nil {
			return nil, badRequest("Malformed JSON: %v", err)
		}
		inv, err := ib.inventory(rc, ver)
		if err != nil {
			return nil, err
		}
		invs = append(invs, inv)
	}
	if _, err := s.store.writeInventories(r.Context(), uuid, b.Generation, invs, invReplaceAll, s.cfg.StrictInventoryCapacity); err != nil {
		return nil, err
	}
	return s.inventoriesResponse(r, uuid, 200)
}

func (s *Service) oneInventoryResponse(r *http.Request, uuid, rc string, status int) (*apiutil.Response, error) {
	q := s.store.db.Reader()
	p, err := s.store.provider(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	invs, err := s.store.inventories(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	inv, ok := invs[rc]
	if !ok {
		return nil, notFound("No inventory of class %s for %s", rc, uuid)
	}
	out := invView(inv)
	out["resource_provider_generation"] = p.Generation
	return apiutil.JSON(status, out), nil
}

func (s *Service) postInventory(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	uuid := r.PathValue("uuid")
	if _, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid); err != nil {
		return nil, err
	}
	var b invBody
	if err := decode(r, postInventorySchema, &b); err != nil {
		return nil, err
	}
	inv, err := b.inventory(b.ResourceClass, ver)
	if err != nil {
		return nil, err
	}
	gen := int64(-1)
	if b.Generation != nil {
		gen = *b.Generation
	}
	if _, err := s.store.writeInventories(r.Context(), uuid, gen, []Inventory{inv}, invAdd, s.cfg.StrictInventoryCapacity); err != nil {
		return nil, err
	}
	resp, err := s.oneInventoryResponse(r, uuid, inv.ResourceClass, 201)
	if err != nil {
		return nil, err
	}
	return resp.SetHeader("Location", prefix+"/resource_providers/"+uuid+"/inventories/"+inv.ResourceClass), nil
}

func (s *Service) getInventory(r *http.Request) (*apiutil.Response, error) {
	return s.oneInventoryResponse(r, r.PathValue("uuid"), r.PathValue("rc"), 200)
}

func (s *Service) putInventory(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	uuid, rc := r.PathValue("uuid"), r.PathValue("rc")
	if _, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid); err != nil {
		return nil, err
	}
	var b invBody
	if err := decode(r, putInventorySchema, &b); err != nil {
		return nil, err
	}
	inv, err := b.inventory(rc, ver)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.writeInventories(r.Context(), uuid, *b.Generation, []Inventory{inv}, invUpdate, s.cfg.StrictInventoryCapacity); err != nil {
		return nil, err
	}
	return s.oneInventoryResponse(r, uuid, rc, 200)
}

func (s *Service) deleteInventory(r *http.Request) (*apiutil.Response, error) {
	if _, err := s.store.deleteInventory(r.Context(), r.PathValue("uuid"), r.PathValue("rc"), -1); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (s *Service) deleteInventories(r *http.Request) (*apiutil.Response, error) {
	if _, err := s.store.deleteInventory(r.Context(), r.PathValue("uuid"), "", -1); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
