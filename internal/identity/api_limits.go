package identity

import (
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Unified limits: registered limits (a service's default for a resource)
// and project or domain limits that override them, in Keystone's "flat"
// enforcement model: no limit is checked against its parent's. Keystone
// keeps the data; services enforce it.

const limitProps = `"service_id": {"type": "string", "minLength": 1, "maxLength": 255},
	"region_id": {"type": ["string", "null"], "maxLength": 255},
	"resource_name": {"type": "string", "minLength": 1, "maxLength": 255},
	"description": {"type": ["string", "null"], "maxLength": 255}`

var (
	regLimitsSchema = apiutil.MustSchema("registered-limits", `{"type": "object", "required": ["registered_limits"],
		"properties": {"registered_limits": {"type": "array", "minItems": 1, "items": {"type": "object",
			"required": ["service_id", "resource_name", "default_limit"], "additionalProperties": false,
			"properties": {`+limitProps+`, "default_limit": {"type": "integer", "minimum": -1, "maximum": 2147483647}}}}}}`)
	regLimitUpdateSchema = wrapSchema("registered-limit-update", "registered_limit", `{"type": "object", "minProperties": 1, "additionalProperties": false,
		"properties": {`+limitProps+`, "default_limit": {"type": "integer", "minimum": -1, "maximum": 2147483647}}}`)
	limitsSchema = apiutil.MustSchema("limits", `{"type": "object", "required": ["limits"],
		"properties": {"limits": {"type": "array", "minItems": 1, "items": {"type": "object",
			"required": ["service_id", "resource_name", "resource_limit"], "additionalProperties": false,
			"properties": {`+limitProps+`, "project_id": {"type": ["string", "null"], "maxLength": 64}, "domain_id": {"type": ["string", "null"], "maxLength": 64},
				"resource_limit": {"type": "integer", "minimum": -1, "maximum": 2147483647}}}}}}`)
	limitUpdateSchema = wrapSchema("limit-update", "limit", `{"type": "object", "minProperties": 1, "additionalProperties": false,
		"properties": {"description": {"type": ["string", "null"], "maxLength": 255}, "resource_limit": {"type": "integer", "minimum": -1, "maximum": 2147483647}}}`)
)

func regLimitView(r *http.Request, l *RegisteredLimit) map[string]any {
	return map[string]any{
		"id": l.ID, "service_id": l.ServiceID, "region_id": nullIfEmpty(l.RegionID), "resource_name": l.ResourceName,
		"default_limit": l.DefaultLimit, "description": l.Description, "links": selfLink(r, "registered_limits", l.ID),
	}
}

func limitView(r *http.Request, l *Limit) map[string]any {
	return map[string]any{
		"id": l.ID, "project_id": nullIfEmpty(l.ProjectID), "domain_id": nullIfEmpty(l.DomainID), "service_id": l.ServiceID,
		"region_id": nullIfEmpty(l.RegionID), "resource_name": l.ResourceName, "resource_limit": l.ResourceLimit,
		"description": l.Description, "links": selfLink(r, "limits", l.ID),
	}
}

// checkServiceRegion validates the service and region a limit names.
func (a *API) checkServiceRegion(r *http.Request, serviceID, regionID string) error {
	if _, err := a.svc.store.GetService(r.Context(), serviceID); err != nil {
		return apiutil.BadRequest("Invalid input for field 'service_id': service %s does not exist.", serviceID)
	}
	if regionID != "" {
		if _, err := a.svc.store.GetRegion(r.Context(), regionID); err != nil {
			return apiutil.BadRequest("Invalid input for field 'region_id': region %s does not exist.", regionID)
		}
	}
	return nil
}

func optStr(m map[string]any, k string) *string {
	p, _ := strPtr(m, k)
	return p
}

func num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

func (a *API) limitModel(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_limit_model", nil); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"model": map[string]any{
		"name":        "flat",
		"description": "Limit enforcement and validation does not take project hierarchy into consideration.",
	}}), nil
}

func (a *API) listRegisteredLimits(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_registered_limits", nil); err != nil {
		return nil, err
	}
	l, err := a.svc.store.ListRegisteredLimits(r.Context(), queryFilter(r, "service_id", "region_id", "resource_name"))
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, x := range l {
		out = append(out, regLimitView(r, x))
	}
	return apiutil.JSON(200, map[string]any{"registered_limits": out, "links": listLinks(r)}), nil
}

// queryFilter takes the named query parameters as equality filters.
func queryFilter(r *http.Request, keys ...string) Filter {
	f := Filter{}
	for _, k := range keys {
		if v := r.URL.Query().Get(k); v != "" {
			f[k] = v
		}
	}
	return f
}

func (a *API) createRegisteredLimits(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_registered_limits", nil); err != nil {
		return nil, err
	}
	var doc struct {
		RegisteredLimits []map[string]any `json:"registered_limits"`
	}
	if err := decodeJSON(r, regLimitsSchema, &doc); err != nil {
		return nil, err
	}
	var ls []*RegisteredLimit
	for _, m := range doc.RegisteredLimits {
		l := &RegisteredLimit{ID: newID(), ServiceID: str(m, "service_id"), RegionID: str(m, "region_id"), ResourceName: str(m, "resource_name"),
			DefaultLimit: num(m, "default_limit"), Description: optStr(m, "description")}
		if err := a.checkServiceRegion(r, l.ServiceID, l.RegionID); err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	if err := a.svc.after(r.Context(), a.svc.store.CreateRegisteredLimits(r.Context(), ls)); err != nil {
		return nil, err
	}
	out := []any{}
	for _, l := range ls {
		out = append(out, regLimitView(r, l))
	}
	return apiutil.JSON(201, map[string]any{"registered_limits": out}), nil
}

func (a *API) getRegisteredLimit(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_registered_limit", nil); err != nil {
		return nil, err
	}
	l, err := a.svc.store.GetRegisteredLimit(r.Context(), r.PathValue("limit_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"registered_limit": regLimitView(r, l)}), nil
}

func (a *API) updateRegisteredLimit(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_registered_limit", nil); err != nil {
		return nil, err
	}
	old, err := a.svc.store.GetRegisteredLimit(r.Context(), r.PathValue("limit_id"))
	if err != nil {
		return nil, err
	}
	m, err := body(r, regLimitUpdateSchema, "registered_limit")
	if err != nil {
		return nil, err
	}
	l := *old
	if _, ok := m["service_id"]; ok {
		l.ServiceID = str(m, "service_id")
	}
	if _, ok := m["region_id"]; ok {
		l.RegionID = str(m, "region_id")
	}
	if _, ok := m["resource_name"]; ok {
		l.ResourceName = str(m, "resource_name")
	}
	if _, ok := m["default_limit"]; ok {
		l.DefaultLimit = num(m, "default_limit")
	}
	if _, ok := m["description"]; ok {
		l.Description = optStr(m, "description")
	}
	if err := a.checkServiceRegion(r, l.ServiceID, l.RegionID); err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.UpdateRegisteredLimit(r.Context(), old, &l)); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"registered_limit": regLimitView(r, &l)}), nil
}

func (a *API) deleteRegisteredLimit(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_registered_limit", nil); err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.DeleteRegisteredLimit(r.Context(), r.PathValue("limit_id"))); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// listLimits shows admins every limit and others the limits of the
// project (or domain) their token is scoped to, as Keystone does.
func (a *API) listLimits(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_limits", nil); err != nil {
		return nil, err
	}
	f := queryFilter(r, "service_id", "region_id", "resource_name", "project_id", "domain_id")
	l, err := a.svc.store.ListLimits(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, x := range l {
		if a.authorize(r, "identity:get_limit", map[string]string{"project_id": x.ProjectID, "domain_id": x.DomainID}) == nil {
			out = append(out, limitView(r, x))
		}
	}
	return apiutil.JSON(200, map[string]any{"limits": out, "links": listLinks(r)}), nil
}

func (a *API) createLimits(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_limits", nil); err != nil {
		return nil, err
	}
	var doc struct {
		Limits []map[string]any `json:"limits"`
	}
	if err := decodeJSON(r, limitsSchema, &doc); err != nil {
		return nil, err
	}
	var ls []*Limit
	for _, m := range doc.Limits {
		l := &Limit{ID: newID(), ProjectID: str(m, "project_id"), DomainID: str(m, "domain_id"), ServiceID: str(m, "service_id"),
			RegionID: str(m, "region_id"), ResourceName: str(m, "resource_name"), ResourceLimit: num(m, "resource_limit"), Description: optStr(m, "description")}
		if (l.ProjectID == "") == (l.DomainID == "") {
			return nil, apiutil.BadRequest("Invalid input for limit: exactly one of project_id and domain_id is required.")
		}
		if l.ProjectID != "" {
			if _, err := a.svc.store.GetProject(r.Context(), l.ProjectID); err != nil {
				return nil, apiutil.BadRequest("Invalid input for field 'project_id': project %s does not exist.", l.ProjectID)
			}
		} else if _, err := a.svc.store.GetDomain(r.Context(), l.DomainID); err != nil {
			return nil, apiutil.BadRequest("Invalid input for field 'domain_id': domain %s does not exist.", l.DomainID)
		}
		if err := a.checkServiceRegion(r, l.ServiceID, l.RegionID); err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	if err := a.svc.after(r.Context(), a.svc.store.CreateLimits(r.Context(), ls)); err != nil {
		return nil, err
	}
	out := []any{}
	for _, l := range ls {
		out = append(out, limitView(r, l))
	}
	return apiutil.JSON(201, map[string]any{"limits": out}), nil
}

func (a *API) loadLimit(r *http.Request, rule string) (*Limit, error) {
	l, err := a.svc.store.GetLimit(r.Context(), r.PathValue("limit_id"))
	if err != nil {
		return nil, err
	}
	if err := a.authorize(r, rule, map[string]string{"project_id": l.ProjectID, "domain_id": l.DomainID}); err != nil {
		return nil, err
	}
	return l, nil
}

func (a *API) getLimit(r *http.Request) (*apiutil.Response, error) {
	l, err := a.loadLimit(r, "identity:get_limit")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"limit": limitView(r, l)}), nil
}

func (a *API) updateLimit(r *http.Request) (*apiutil.Response, error) {
	l, err := a.loadLimit(r, "identity:update_limit")
	if err != nil {
		return nil, err
	}
	m, err := body(r, limitUpdateSchema, "limit")
	if err != nil {
		return nil, err
	}
	if _, ok := m["resource_limit"]; ok {
		l.ResourceLimit = num(m, "resource_limit")
	}
	if _, ok := m["description"]; ok {
		l.Description = optStr(m, "description")
	}
	if err := a.svc.after(r.Context(), a.svc.store.UpdateLimit(r.Context(), l)); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"limit": limitView(r, l)}), nil
}

func (a *API) deleteLimit(r *http.Request) (*apiutil.Response, error) {
	l, err := a.loadLimit(r, "identity:delete_limit")
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.DeleteLimit(r.Context(), l.ID)); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
