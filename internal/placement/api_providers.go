package placement

import (
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func (s *Service) providerView(r *http.Request, p Provider) map[string]any {
	ver := apiutil.VersionOf(r.Context())
	base := prefix + "/resource_providers/" + p.UUID
	links := []any{link("self", base), link("inventories", base+"/inventories"), link("usages", base+"/usages")}
	if ver.AtLeast(v(1)) {
		links = append(links, link("aggregates", base+"/aggregates"))
	}
	if ver.AtLeast(v(6)) {
		links = append(links, link("traits", base+"/traits"))
	}
	if ver.AtLeast(v(11)) {
		links = append(links, link("allocations", base+"/allocations"))
	}
	out := map[string]any{"uuid": p.UUID, "name": p.Name, "generation": p.Generation, "links": links}
	if ver.AtLeast(v(14)) {
		out["parent_provider_uuid"] = nullable(p.ParentUUID)
		out["root_provider_uuid"] = p.RootUUID
	}
	return out
}

func lastModified(resp *apiutil.Response, p Provider) *apiutil.Response {
	if !p.UpdatedAt.IsZero() {
		resp.SetHeader("Last-Modified", p.UpdatedAt.UTC().Format(http.TimeFormat))
	}
	return resp
}

func (s *Service) listProviders(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	f, err := ParseProviderFilter(r.URL.Query(), ver)
	if err != nil {
		return nil, err
	}
	ctx, q := r.Context(), s.store.db.Reader()
	if missing, err := s.store.missingClasses(ctx, q, sortedKeys(f.Resources)); err != nil {
		return nil, err
	} else if len(missing) > 0 {
		return nil, badRequest("Invalid resource class in resources parameter: No such resource class %s.", missing[0])
	}
	if missing, err := s.store.missingTraits(ctx, q, append(append([]string{}, f.Required...), f.Forbidden...)); err != nil {
		return nil, err
	} else if len(missing) > 0 {
		return nil, badRequest("No such trait(s): %s.", joinComma(missing))
	}
	list, err := s.store.listProviders(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(list))
	for _, p := range list {
		out = append(out, s.providerView(r, p))
	}
	return apiutil.JSON(200, map[string]any{"resource_providers": out}), nil
}

func providerSchema(ver apiutil.Version, create bool) *apiutil.Schema {
	props := `"name": {"type": "string", "minLength": 1, "maxLength": 200}`
	if create {
		props += `, "uuid": {"type": "string"}`
	}
	if ver.AtLeast(v(14)) {
		props += `, "parent_provider_uuid": {"anyOf": [{"type": "string"}, {"type": "null"}]}`
	}
	return schema(`{"type": "object", "properties": {` + props + `}, "required": ["name"], "additionalProperties": false}`)
}

type providerBody struct {
	Name   string  `json:"name"`
	UUID   string  `json:"uuid"`
	Parent *string `json:"parent_provider_uuid"`
}

func (s *Service) createProvider(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	var b providerBody
	if err := decode(r, providerSchema(ver, true), &b); err != nil {
		return nil, err
	}
	uuid := b.UUID
	if uuid == "" {
		uuid = newUUID()
	} else if !isUUID(uuid) {
		return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", uuid)
	}
	parent := ""
	if b.Parent != nil && *b.Parent != "" {
		if !isUUID(*b.Parent) {
			return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", *b.Parent)
		}
		parent = normUUID(*b.Parent)
	}
	p, err := s.store.createProvider(r.Context(), normUUID(uuid), b.Name, parent)
	if err != nil {
		return nil, err
	}
	loc := prefix + "/resource_providers/" + p.UUID
	if !ver.AtLeast(v(20)) {
		return (&apiutil.Response{Status: 201}).SetHeader("Location", loc), nil
	}
	return lastModified(apiutil.JSON(200, s.providerView(r, p)).SetHeader("Location", loc), p), nil
}

func (s *Service) getProvider(r *http.Request) (*apiutil.Response, error) {
	p, err := s.store.provider(r.Context(), s.store.db.Reader(), r.PathValue("uuid"))
	if err != nil {
		return nil, err
	}
	return lastModified(apiutil.JSON(200, s.providerView(r, p)), p), nil
}

func (s *Service) updateProvider(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	uuid := r.PathValue("uuid")
	if _, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid); err != nil {
		return nil, err
	}
	var b providerBody
	if err := decode(r, providerSchema(ver, false), &b); err != nil {
		return nil, err
	}
	var parent *string
	if b.Parent != nil {
		p := *b.Parent
		if p != "" && !isUUID(p) {
			return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", p)
		}
		p = normUUID(p)
		if *b.Parent == "" {
			p = ""
		}
		parent = &p
	}
	// A request without parent_provider_uuid leaves the parent alone;
	// null (1.37+ only) would make the provider a root.
	p, err := s.store.updateProvider(r.Context(), uuid, b.Name, parent, ver.AtLeast(v(37)))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, s.providerView(r, p)), nil
}

func (s *Service) deleteProvider(r *http.Request) (*apiutil.Response, error) {
	if err := s.store.deleteProvider(r.Context(), r.PathValue("uuid")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func joinComma(list []string) string {
	out := ""
	for i, s := range list {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
