package identity

import (
	"maps"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func regionView(r *http.Request, rg *Region) map[string]any {
	var parent any
	if rg.ParentRegionID != "" {
		parent = rg.ParentRegionID
	}
	v := map[string]any{"id": rg.ID, "description": rg.Description, "parent_region_id": parent, "links": selfLink(r, "regions", rg.ID)}
	mergeExtras(v, rg.Extra)
	return v
}

func serviceView(r *http.Request, c *CatalogService) map[string]any {
	v := map[string]any{"id": c.ID, "type": c.Type, "name": c.Name, "description": c.Description, "enabled": c.Enabled, "links": selfLink(r, "services", c.ID)}
	mergeExtras(v, c.Extra)
	return v
}

func endpointViewOf(r *http.Request, e *Endpoint) map[string]any {
	var region any
	if e.RegionID != "" {
		region = e.RegionID
	}
	v := map[string]any{"id": e.ID, "interface": e.Interface, "url": e.URL, "service_id": e.ServiceID,
		"region": region, "region_id": region, "enabled": e.Enabled, "links": selfLink(r, "endpoints", e.ID)}
	mergeExtras(v, e.Extra)
	return v
}

// ---- regions ----

func (a *API) listRegions(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_regions", nil); err != nil {
		return nil, err
	}
	f := Filter{}
	if p := r.URL.Query().Get("parent_region_id"); p != "" {
		f["parent_region_id"] = p
	}
	rs, err := a.svc.store.ListRegions(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(rs))
	for _, rg := range rs {
		out = append(out, regionView(r, rg))
	}
	return apiutil.JSON(200, map[string]any{"regions": out, "links": listLinks(r)}), nil
}

// createRegion serves POST /v3/regions and PUT /v3/regions/{id}.
func (a *API) createRegion(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_region", nil); err != nil {
		return nil, err
	}
	m, err := body(r, regionSchema, "region")
	if err != nil {
		return nil, err
	}
	rg := &Region{ID: str(m, "id"), Description: str(m, "description"), ParentRegionID: str(m, "parent_region_id"),
		Extra: extras(m, "id", "description", "parent_region_id", "links")}
	if pid := r.PathValue("region_id"); pid != "" {
		if rg.ID != "" && rg.ID != pid {
			return nil, apiutil.BadRequest("Conflicting region IDs specified: %q PUT to %q.", rg.ID, pid)
		}
		rg.ID = pid
	}
	if err := a.svc.CreateRegion(r.Context(), rg); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"region": regionView(r, rg)}), nil
}

func (a *API) getRegion(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_region", nil); err != nil {
		return nil, err
	}
	rg, err := a.svc.store.GetRegion(r.Context(), r.PathValue("region_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"region": regionView(r, rg)}), nil
}

func (a *API) updateRegion(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_region", nil); err != nil {
		return nil, err
	}
	m, err := body(r, regionSchema, "region")
	if err != nil {
		return nil, err
	}
	rg, err := a.svc.store.GetRegion(r.Context(), r.PathValue("region_id"))
	if err != nil {
		return nil, err
	}
	if v, ok := strPtr(m, "description"); ok {
		rg.Description = deref(v)
	}
	if v, ok := strPtr(m, "parent_region_id"); ok {
		rg.ParentRegionID = deref(v)
	}
	maps.Copy(rg.Extra, extras(m, "id", "description", "parent_region_id", "links"))
	if err := a.svc.UpdateRegion(r.Context(), rg); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"region": regionView(r, rg)}), nil
}

func (a *API) deleteRegion(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_region", nil); err != nil {
		return nil, err
	}
	if err := a.svc.DeleteRegion(r.Context(), r.PathValue("region_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- services ----

func (a *API) listServices(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_services", nil); err != nil {
		return nil, err
	}
	f := Filter{}
	for _, k := range []string{"type", "name"} {
		if v := r.URL.Query().Get(k); v != "" {
			f[k] = v
		}
	}
	cs, err := a.svc.store.ListServices(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(cs))
	for _, c := range cs {
		out = append(out, serviceView(r, c))
	}
	return apiutil.JSON(200, map[string]any{"services": out, "links": listLinks(r)}), nil
}

func (a *API) createService(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_service", nil); err != nil {
		return nil, err
	}
	m, err := body(r, serviceCreateSchema, "service")
	if err != nil {
		return nil, err
	}
	c := &CatalogService{Type: str(m, "type"), Name: str(m, "name"), Description: str(m, "description"), Enabled: boolOr(m, "enabled", true),
		Extra: extras(m, "type", "name", "description", "enabled", "id", "links")}
	if err := a.svc.CreateService(r.Context(), c); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"service": serviceView(r, c)}), nil
}

func (a *API) getService(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_service", nil); err != nil {
		return nil, err
	}
	c, err := a.svc.store.GetService(r.Context(), r.PathValue("service_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"service": serviceView(r, c)}), nil
}

func (a *API) updateService(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_service", nil); err != nil {
		return nil, err
	}
	m, err := body(r, serviceUpdateSchema, "service")
	if err != nil {
		return nil, err
	}
	c, err := a.svc.store.GetService(r.Context(), r.PathValue("service_id"))
	if err != nil {
		return nil, err
	}
	if v, ok := m["type"].(string); ok {
		c.Type = v
	}
	if v, ok := strPtr(m, "name"); ok {
		c.Name = deref(v)
	}
	if v, ok := strPtr(m, "description"); ok {
		c.Description = deref(v)
	}
	c.Enabled = boolOr(m, "enabled", c.Enabled)
	maps.Copy(c.Extra, extras(m, "type", "name", "description", "enabled", "id", "links"))
	if err := a.svc.UpdateService(r.Context(), c); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"service": serviceView(r, c)}), nil
}

func (a *API) deleteService(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_service", nil); err != nil {
		return nil, err
	}
	if err := a.svc.DeleteService(r.Context(), r.PathValue("service_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- endpoints ----

func (a *API) listEndpoints(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_endpoints", nil); err != nil {
		return nil, err
	}
	f := Filter{}
	for _, k := range []string{"service_id", "interface", "region_id"} {
		if v := r.URL.Query().Get(k); v != "" {
			f[k] = v
		}
	}
	es, err := a.svc.store.ListEndpoints(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(es))
	for _, e := range es {
		out = append(out, endpointViewOf(r, e))
	}
	return apiutil.JSON(200, map[string]any{"endpoints": out, "links": listLinks(r)}), nil
}

func regionOf(m map[string]any) (string, bool) {
	if v, ok := strPtr(m, "region_id"); ok {
		return deref(v), true
	}
	if v, ok := strPtr(m, "region"); ok {
		return deref(v), true
	}
	return "", false
}

func (a *API) createEndpoint(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_endpoint", nil); err != nil {
		return nil, err
	}
	m, err := body(r, endpointCreateSchema, "endpoint")
	if err != nil {
		return nil, err
	}
	region, _ := regionOf(m)
	e := &Endpoint{ServiceID: str(m, "service_id"), Interface: str(m, "interface"), URL: str(m, "url"), RegionID: region,
		Enabled: boolOr(m, "enabled", true), Extra: extras(m, "service_id", "interface", "url", "region", "region_id", "enabled", "id", "links")}
	if err := a.svc.CreateEndpoint(r.Context(), e); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"endpoint": endpointViewOf(r, e)}), nil
}

func (a *API) getEndpoint(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_endpoint", nil); err != nil {
		return nil, err
	}
	e, err := a.svc.store.GetEndpoint(r.Context(), r.PathValue("endpoint_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"endpoint": endpointViewOf(r, e)}), nil
}

func (a *API) updateEndpoint(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_endpoint", nil); err != nil {
		return nil, err
	}
	m, err := body(r, endpointUpdateSchema, "endpoint")
	if err != nil {
		return nil, err
	}
	e, err := a.svc.store.GetEndpoint(r.Context(), r.PathValue("endpoint_id"))
	if err != nil {
		return nil, err
	}
	if v, ok := m["service_id"].(string); ok {
		e.ServiceID = v
	}
	if v, ok := m["interface"].(string); ok {
		e.Interface = v
	}
	if v, ok := m["url"].(string); ok {
		e.URL = v
	}
	if v, ok := regionOf(m); ok {
		e.RegionID = v
	}
	e.Enabled = boolOr(m, "enabled", e.Enabled)
	maps.Copy(e.Extra, extras(m, "service_id", "interface", "url", "region", "region_id", "enabled", "id", "links"))
	if err := a.svc.UpdateEndpoint(r.Context(), e); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"endpoint": endpointViewOf(r, e)}), nil
}

func (a *API) deleteEndpoint(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_endpoint", nil); err != nil {
		return nil, err
	}
	if err := a.svc.DeleteEndpoint(r.Context(), r.PathValue("endpoint_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
