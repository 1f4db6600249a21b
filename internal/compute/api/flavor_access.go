package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

var (
	addTenantSchema = apiutil.MustSchema("compute-add-tenant-access", `{"type": "object",
		"properties": {"addTenantAccess": {"type": "object",
			"properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255}},
			"required": ["tenant"], "additionalProperties": false}},
		"required": ["addTenantAccess"], "additionalProperties": false}`)
	removeTenantSchema = apiutil.MustSchema("compute-remove-tenant-access", `{"type": "object",
		"properties": {"removeTenantAccess": {"type": "object",
			"properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255}},
			"required": ["tenant"], "additionalProperties": false}},
		"required": ["removeTenantAccess"], "additionalProperties": false}`)
)

func (a *API) accessList(r *http.Request, flavorID string) (*apiutil.Response, error) {
	projects, err := a.st.FlavorAccess(ctx(r), flavorID)
	if err != nil {
		return nil, internal(err)
	}
	out := make([]any, 0, len(projects))
	for _, p := range projects {
		out = append(out, map[string]any{"flavor_id": flavorID, "tenant_id": p})
	}
	return apiutil.JSON(200, map[string]any{"flavor_access": out}), nil
}

func (a *API) listFlavorAccess(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleFlavorAccess, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("flavor_id")
	f, err := a.st.GetFlavor(ctx(r), id)
	if errors.Is(err, store.ErrNoFlavor) {
		return nil, flavorNotFound(id)
	} else if err != nil {
		return nil, internal(err)
	}
	if f.IsPublic {
		return nil, apiutil.NotFound("Access list not available for public flavors.")
	}
	return a.accessList(r, id)
}

// flavorAction dispatches POST /flavors/{id}/action on the action name.
func (a *API) flavorAction(r *http.Request) (*apiutil.Response, error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil || doc == nil {
		return nil, apiutil.BadRequest("Malformed request body")
	}
	id := r.PathValue("flavor_id")
	switch {
	case doc["addTenantAccess"] != nil:
		if err := a.authorize(r, ruleFlavorAddAccess, own(r)); err != nil {
			return nil, err
		}
		var body struct {
			A struct{ Tenant string } `json:"addTenantAccess"`
		}
		if err := apiutil.DecodeJSONBytes(b, addTenantSchema, &body); err != nil {
			return nil, err
		}
		f, err := a.st.GetFlavor(ctx(r), id)
		if errors.Is(err, store.ErrNoFlavor) {
			return nil, flavorNotFound(id)
		} else if err != nil {
			return nil, internal(err)
		}
		if f.IsPublic && atLeast(r, V2_7) {
			return nil, apiutil.Conflict("Can not add access to a public flavor.")
		}
		switch err := a.st.AddFlavorAccess(ctx(r), id, body.A.Tenant); {
		case errors.Is(err, store.ErrExists):
			return nil, apiutil.Conflict("Flavor access already exists for flavor %s and project %s combination.", id, body.A.Tenant)
		case errors.Is(err, store.ErrNoFlavor):
			return nil, flavorNotFound(id)
		case err != nil:
			return nil, internal(err)
		}
		return a.accessList(r, id)
	case doc["removeTenantAccess"] != nil:
		if err := a.authorize(r, ruleFlavorDelAccess, own(r)); err != nil {
			return nil, err
		}
		var body struct {
			R struct{ Tenant string } `json:"removeTenantAccess"`
		}
		if err := apiutil.DecodeJSONBytes(b, removeTenantSchema, &body); err != nil {
			return nil, err
		}
		switch err := a.st.RemoveFlavorAccess(ctx(r), id, body.R.Tenant); {
		case errors.Is(err, store.ErrNoFlavor):
			return nil, flavorNotFound(id)
		case errors.Is(err, store.ErrNotFound):
			return nil, apiutil.NotFound("Flavor access not found for %s / %s combination.", id, body.R.Tenant)
		case err != nil:
			return nil, internal(err)
		}
		return a.accessList(r, id)
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		names = append(names, k)
	}
	sort.Strings(names)
	return nil, apiutil.BadRequest("There is no such action: %s", strings.Join(names, ", "))
}

// ---- extra specs ----

const specsMetadata = `{"type": "object",
	"patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "number"], "maxLength": 255}},
	"additionalProperties": false`

var (
	extraSpecsCreateSchema = apiutil.MustSchema("compute-extra-specs-create", `{"type": "object",
		"properties": {"extra_specs": `+specsMetadata+`}},
		"required": ["extra_specs"], "additionalProperties": false}`)
	extraSpecUpdateSchema = apiutil.MustSchema("compute-extra-spec-update", specsMetadata+`,
		"minProperties": 1, "maxProperties": 1}`)
)

// specValues converts request values (strings or numbers) to the strings
// Nova stores.
func specValues(m map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(m))
	for k, raw := range m {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = strings.TrimSpace(string(raw))
		}
		out[k] = s
	}
	return out
}

func (a *API) flavorForSpecs(r *http.Request) (*store.Flavor, error) {
	id := r.PathValue("flavor_id")
	f, err := a.st.GetFlavor(ctx(r), id)
	if errors.Is(err, store.ErrNoFlavor) {
		return nil, flavorNotFound(id)
	}
	if err != nil {
		return nil, internal(err)
	}
	return f, nil
}

func (a *API) listExtraSpecs(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtraSpecsIndex, own(r)); err != nil {
		return nil, err
	}
	f, err := a.flavorForSpecs(r)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"extra_specs": f.ExtraSpecs}), nil
}

func (a *API) showExtraSpec(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtraSpecsShow, own(r)); err != nil {
		return nil, err
	}
	f, err := a.flavorForSpecs(r)
	if err != nil {
		return nil, err
	}
	key := r.PathValue("key")
	v, ok := f.ExtraSpecs[key]
	if !ok {
		return nil, apiutil.NotFound("Flavor %s has no extra specs with key %s.", f.FlavorID, key)
	}
	return apiutil.JSON(200, map[string]any{key: v}), nil
}

func (a *API) createExtraSpecs(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtraSpecsCreate, own(r)); err != nil {
		return nil, err
	}
	doc, err := decode(r, extraSpecsCreateSchema)
	if err != nil {
		return nil, err
	}
	m, err := members(doc["extra_specs"])
	if err != nil {
		return nil, err
	}
	return a.writeSpecs(r, map[string]any{"extra_specs": doc["extra_specs"]}, m)
}

func (a *API) updateExtraSpec(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtraSpecsUpdate, own(r)); err != nil {
		return nil, err
	}
	m, err := decode(r, extraSpecUpdateSchema)
	if err != nil {
		return nil, err
	}
	if _, ok := m[r.PathValue("key")]; !ok {
		return nil, apiutil.BadRequest("Request body and URI mismatch")
	}
	echo := map[string]any{}
	for k, v := range m {
		echo[k] = v
	}
	return a.writeSpecs(r, echo, m)
}

// writeSpecs validates and stores specs, answering the request body back
// as Nova does.
func (a *API) writeSpecs(r *http.Request, echo map[string]any, m map[string]json.RawMessage) (*apiutil.Response, error) {
	specs := specValues(m)
	if atLeast(r, V2_86) {
		for k, v := range specs {
			if err := validateExtraSpec(k, v); err != nil {
				return nil, err
			}
		}
	}
	id := r.PathValue("flavor_id")
	if err := a.st.UpdateExtraSpecs(ctx(r), id, specs); errors.Is(err, store.ErrNoFlavor) {
		return nil, flavorNotFound(id)
	} else if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, echo), nil
}

func (a *API) deleteExtraSpec(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExtraSpecsDelete, own(r)); err != nil {
		return nil, err
	}
	id, key := r.PathValue("flavor_id"), r.PathValue("key")
	switch err := a.st.DeleteExtraSpec(ctx(r), id, key); {
	case errors.Is(err, store.ErrNoFlavor):
		return nil, flavorNotFound(id)
	case errors.Is(err, store.ErrNotFound):
		return nil, apiutil.NotFound("Flavor %s has no extra specs with key %s.", id, key)
	case err != nil:
		return nil, internal(err)
	}
	return &apiutil.Response{Status: http.StatusOK}, nil // Nova: 200, no body
}

// validateExtraSpec checks the extra specs Kumo knows the meaning of (from
// 2.86). It is lenient: keys it does not know, even in namespaces Nova
// registers, are accepted as they are.
func validateExtraSpec(key, value string) error {
	bad := func(why string) error {
		return apiutil.BadRequest("Validation failed; The value '%s' of extra spec '%s' is not valid: %s.", value, key, why)
	}
	oneOf := func(vals ...string) error {
		for _, v := range vals {
			if value == v {
				return nil
			}
		}
		return bad("must be one of " + strings.Join(vals, ", "))
	}
	positive := func() error {
		if n, err := strconv.Atoi(value); err != nil || n < 1 {
			return bad("must be a positive integer")
		}
		return nil
	}
	boolean := func() error {
		switch strings.ToLower(value) {
		case "true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n":
			return nil
		}
		return bad("must be a boolean")
	}
	switch {
	case key == "hw:cpu_policy":
		return oneOf("dedicated", "shared", "mixed")
	case key == "hw:cpu_thread_policy":
		return oneOf("prefer", "isolate", "require")
	case key == "hw:emulator_threads_policy":
		return oneOf("share", "isolate")
	case key == "hw:numa_nodes", key == "hw:cpu_sockets", key == "hw:cpu_cores", key == "hw:cpu_threads",
		key == "hw:cpu_max_sockets", key == "hw:cpu_max_cores", key == "hw:cpu_max_threads":
		return positive()
	case key == "hw:watchdog_action":
		return oneOf("none", "pause", "poweroff", "reset", "disabled")
	case key == "hw:mem_page_size":
		if oneOf("small", "large", "any") == nil {
			return nil
		}
		s := strings.TrimRight(strings.ToUpper(value), "KMGIB")
		if _, err := strconv.Atoi(s); err != nil {
			return bad("must be small, large, any or a page size")
		}
	case key == "hw_rng:allowed", key == "hw:boot_menu", key == "hw:vif_multiqueue_enabled", key == "hw:hide_hypervisor_id":
		return boolean()
	case strings.HasPrefix(key, "resources"):
		rc := key[strings.IndexByte(key, ':')+1:]
		if !strings.Contains(key, ":") || !validUpper(strings.TrimPrefix(rc, "CUSTOM_")) {
			return apiutil.BadRequest("Validation failed; The extra spec '%s' is not a valid resource class request.", key)
		}
		if n, err := strconv.Atoi(value); err != nil || n < 0 {
			return bad("must be a non-negative integer")
		}
	case strings.HasPrefix(key, "trait"):
		if !strings.Contains(key, ":") {
			return apiutil.BadRequest("Validation failed; The extra spec '%s' is not a valid trait request.", key)
		}
		return oneOf("required", "forbidden")
	case strings.HasPrefix(key, "quota:"):
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			return bad("must be an integer")
		}
	}
	return nil
}

func validUpper(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
