package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Policy rule names of flavors.
const (
	ruleFlavorCreate     = "os_compute_api:os-flavor-manage:create"
	ruleFlavorUpdate     = "os_compute_api:os-flavor-manage:update"
	ruleFlavorDelete     = "os_compute_api:os-flavor-manage:delete"
	ruleFlavorAccess     = "os_compute_api:os-flavor-access"
	ruleFlavorAddAccess  = "os_compute_api:os-flavor-access:add_tenant_access"
	ruleFlavorDelAccess  = "os_compute_api:os-flavor-access:remove_tenant_access"
	ruleExtraSpecsIndex  = "os_compute_api:os-flavor-extra-specs:index"
	ruleExtraSpecsShow   = "os_compute_api:os-flavor-extra-specs:show"
	ruleExtraSpecsCreate = "os_compute_api:os-flavor-extra-specs:create"
	ruleExtraSpecsUpdate = "os_compute_api:os-flavor-extra-specs:update"
	ruleExtraSpecsDelete = "os_compute_api:os-flavor-extra-specs:delete"
)

const maxInt = math.MaxInt32 // Nova's db.MAX_INT

func flavorNotFound(id string) error {
	return apiutil.NotFound("Flavor %s could not be found.", id)
}

// flavorView renders a flavor for the negotiated version: the summary of
// GET /flavors, or the full view of detail, show, create and update.
func (a *API) flavorView(r *http.Request, f *store.Flavor, full bool) map[string]any {
	v := map[string]any{"id": f.FlavorID, "name": f.Name, "links": links(r, "flavors", f.FlavorID)}
	if atLeast(r, V2_55) {
		if f.Description != nil {
			v["description"] = *f.Description
		} else {
			v["description"] = nil
		}
	}
	if !full {
		return v
	}
	v["ram"] = f.MemoryMB
	v["disk"] = f.RootGB
	v["vcpus"] = f.VCPUs
	v["OS-FLV-EXT-DATA:ephemeral"] = f.EphemeralGB
	v["OS-FLV-DISABLED:disabled"] = f.Disabled
	v["os-flavor-access:is_public"] = f.IsPublic
	v["rxtx_factor"] = f.RxtxFactor
	if f.Swap == 0 && !atLeast(r, V2_75) {
		v["swap"] = ""
	} else {
		v["swap"] = f.Swap
	}
	if atLeast(r, V2_61) && a.allowed(r, ruleExtraSpecsIndex, own(r)) {
		specs := f.ExtraSpecs
		if specs == nil {
			specs = map[string]string{}
		}
		v["extra_specs"] = specs
	}
	return v
}

func (a *API) listFlavors(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		q := r.URL.Query()
		c := caller(r)
		var filter store.FlavorFilter
		if a.allowed(r, ruleFlavorAccess, own(r)) {
			if s, ok := queryLast(q, "is_public"); ok {
				switch strings.ToLower(s) {
				case "none":
				case "true", "t", "1", "on", "y", "yes":
					filter.IsPublic, filter.ProjectID = ptr(true), c.ProjectID
				case "false", "f", "0", "off", "n", "no":
					filter.IsPublic = ptr(false)
				default:
					return nil, apiutil.BadRequest("Invalid is_public filter [%s]", s)
				}
			}
		} else {
			filter.IsPublic, filter.ProjectID, filter.OnlyEnabled = ptr(true), c.ProjectID, true
		}
		for _, p := range []struct {
			name string
			dst  *int64
		}{{"minRam", &filter.MinMemoryMB}, {"minDisk", &filter.MinRootGB}} {
			if s, ok := queryLast(q, p.name); ok {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return nil, apiutil.BadRequest("Invalid %s filter [%s]", p.name, s)
				}
				*p.dst = n
			}
		}
		if s, _ := queryLast(q, "sort_key"); s != "" {
			if _, ok := store.SortKeys[s]; !ok {
				return nil, apiutil.BadRequest("Sort key supplied is invalid: %s", s)
			}
			filter.SortKey = s
		}
		switch s, _ := queryLast(q, "sort_dir"); strings.ToLower(s) {
		case "", "asc":
		case "desc":
			filter.SortDesc = true
		default:
			return nil, apiutil.BadRequest("Unknown sort direction, must be 'desc' or 'asc'")
		}
		limit, err := pageLimit(q)
		if err != nil {
			return nil, err
		}
		filter.Limit = limit
		filter.Marker, _ = queryLast(q, "marker")
		filter.WithoutSpecs = !detail
		fls, err := a.st.ListFlavors(ctx(r), filter)
		if errors.Is(err, store.ErrMarker) {
			return nil, apiutil.BadRequest("marker [%s] not found", filter.Marker)
		}
		if err != nil {
			return nil, internal(err)
		}
		out := make([]any, 0, len(fls))
		for _, f := range fls {
			out = append(out, a.flavorView(r, f, detail))
		}
		body := map[string]any{"flavors": out}
		if len(fls) > 0 && len(fls) == limit {
			body["flavors_links"] = nextLink(r, fls[len(fls)-1].FlavorID)
		}
		return apiutil.JSON(200, body), nil
	}
}

// pageLimit reads limit as Nova does: a non-negative integer, 0 or absent
// meaning the maximum, capped at the maximum.
func pageLimit(q map[string][]string) (int, error) {
	s, ok := queryLast(q, "limit")
	if !ok {
		return MaxLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, apiutil.BadRequest("Invalid input for query parameters limit. Value: %s. %q is not a non-negative integer", s, s)
	}
	if n == 0 || n > MaxLimit {
		n = MaxLimit
	}
	return n, nil
}

func ptr[T any](v T) *T { return &v }

func (a *API) showFlavor(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("flavor_id")
	if id == "detail" {
		return a.listFlavors(true)(r)
	}
	f, err := a.st.GetFlavor(ctx(r), id)
	if errors.Is(err, store.ErrNoFlavor) {
		return nil, flavorNotFound(id)
	}
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"flavor": a.flavorView(r, f, true)}), nil
}

const flavorCreateProps = `
	"name": {"type": "string", "minLength": 1, "maxLength": 255},
	"id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9. _-]+$"},
	"ram": {"type": ["integer", "string"], "pattern": "^[0-9]*$"},
	"vcpus": {"type": ["integer", "string"], "pattern": "^[0-9]*$"},
	"disk": {"type": ["integer", "string"], "pattern": "^[0-9]*$"},
	"OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"], "pattern": "^[0-9]*$"},
	"swap": {"type": ["integer", "string"], "pattern": "^[0-9]*$"},
	"rxtx_factor": {"type": ["number", "string"], "pattern": "^[0-9]+(\\.[0-9]+)?$", "exclusiveMinimum": 0, "maximum": 3.40282e38},
	"os-flavor-access:is_public": ` + booleanSchema

const flavorDescription = `"description": {"type": ["string", "null"], "maxLength": 65535}`

var (
	flavorCreateSchema = apiutil.MustSchema("compute-flavor-create", `{"type": "object",
		"properties": {"flavor": {"type": "object", "properties": {`+flavorCreateProps+`},
			"required": ["name", "ram", "vcpus", "disk"], "additionalProperties": false}},
		"required": ["flavor"], "additionalProperties": false}`)
	flavorCreateSchema255 = apiutil.MustSchema("compute-flavor-create-2.55", `{"type": "object",
		"properties": {"flavor": {"type": "object", "properties": {`+flavorCreateProps+`, `+flavorDescription+`},
			"required": ["name", "ram", "vcpus", "disk"], "additionalProperties": false}},
		"required": ["flavor"], "additionalProperties": false}`)
	flavorUpdateSchema = apiutil.MustSchema("compute-flavor-update", `{"type": "object",
		"properties": {"flavor": {"type": "object", "properties": {`+flavorDescription+`},
			"required": ["description"], "additionalProperties": false}},
		"required": ["flavor"], "additionalProperties": false}`)
)

func checkDescription(d *string) error {
	if d == nil {
		return nil
	}
	for _, c := range *d {
		if !printable(c) && c != '\n' && c != '\r' && c != '\t' {
			return apiutil.BadRequest("Invalid input for field/attribute description. Value: %s. %q does not match the description pattern", *d, *d)
		}
	}
	return nil
}

func (a *API) createFlavor(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleFlavorCreate, own(r)); err != nil {
		return nil, err
	}
	schema := flavorCreateSchema
	if atLeast(r, V2_55) {
		schema = flavorCreateSchema255
	}
	doc, err := decode(r, schema)
	if err != nil {
		return nil, err
	}
	m, err := members(doc["flavor"])
	if err != nil {
		return nil, err
	}
	f := &store.Flavor{RxtxFactor: 1.0, IsPublic: true, ExtraSpecs: map[string]string{}}
	_ = json.Unmarshal(m["name"], &f.Name)
	if err := checkName("name", f.Name); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		field    string
		dst      *int64
		min      int64
		required bool
	}{
		{"ram", &f.MemoryMB, 1, true}, {"vcpus", &f.VCPUs, 1, true}, {"disk", &f.RootGB, 0, true},
		{"OS-FLV-EXT-DATA:ephemeral", &f.EphemeralGB, 0, false}, {"swap", &f.Swap, 0, false},
	} {
		raw, ok := m[p.field]
		if !ok {
			continue
		}
		if *p.dst, err = intValue(p.field, raw, p.min, maxInt); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["rxtx_factor"]; ok {
		s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || v > 3.40282e38 {
			return nil, apiutil.BadRequest("Invalid input for field/attribute rxtx_factor. Value: %s. %s is not a positive number", s, s)
		}
		f.RxtxFactor = v
	}
	if raw, ok := m["os-flavor-access:is_public"]; ok {
		f.IsPublic = boolValue(raw)
	}
	if raw, ok := m["description"]; ok {
		var d *string
		_ = json.Unmarshal(raw, &d)
		if err := checkDescription(d); err != nil {
			return nil, err
		}
		f.Description = d
	}
	f.FlavorID = newUUID()
	if raw, ok := m["id"]; ok && strings.TrimSpace(string(raw)) != "null" {
		s := strings.TrimSpace(string(raw))
		if strings.HasPrefix(s, `"`) {
			_ = json.Unmarshal(raw, &s)
		}
		if s == "" || strings.TrimSpace(s) != s {
			return nil, apiutil.BadRequest("Invalid input for field/attribute id. Value: %s. %q does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", s, s)
		}
		f.FlavorID = s
	}
	switch err := a.st.CreateFlavor(ctx(r), f); {
	case errors.Is(err, store.ErrDuplicateID):
		return nil, apiutil.Conflict("Flavor with ID %s already exists.", f.FlavorID)
	case errors.Is(err, store.ErrDuplicateName):
		return nil, apiutil.Conflict("Flavor with name %s already exists.", f.Name)
	case err != nil:
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"flavor": a.flavorView(r, f, true)}), nil
}

func (a *API) updateFlavor(r *http.Request) (*apiutil.Response, error) {
	if !atLeast(r, V2_55) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	if err := a.authorize(r, ruleFlavorUpdate, own(r)); err != nil {
		return nil, err
	}
	doc, err := decode(r, flavorUpdateSchema)
	if err != nil {
		return nil, err
	}
	m, err := members(doc["flavor"])
	if err != nil {
		return nil, err
	}
	var d *string
	_ = json.Unmarshal(m["description"], &d)
	if err := checkDescription(d); err != nil {
		return nil, err
	}
	id := r.PathValue("flavor_id")
	if err := a.st.UpdateFlavorDescription(ctx(r), id, d); errors.Is(err, store.ErrNoFlavor) {
		return nil, flavorNotFound(id)
	} else if err != nil {
		return nil, internal(err)
	}
	return a.showFlavor(r)
}

func (a *API) deleteFlavor(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleFlavorDelete, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("flavor_id")
	if err := a.st.DeleteFlavor(ctx(r), id); errors.Is(err, store.ErrNoFlavor) {
		return nil, flavorNotFound(id)
	} else if err != nil {
		return nil, internal(err)
	}
	return &apiutil.Response{Status: http.StatusAccepted}, nil
}
