package identity

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// ---- schemas ----

const nullableString = `{"type": ["string", "null"]}`

var (
	domainCreateSchema = wrapSchema("domain-create", "domain", `{
		"type": "object", "required": ["name"],
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "description": `+nullableString+`,
			"enabled": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}, "options": {"type": "object"}, "explicit_domain_id": {"type": "string"}}}`)
	domainUpdateSchema = wrapSchema("domain-update", "domain", `{
		"type": "object", "minProperties": 1,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "description": `+nullableString+`,
			"enabled": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}, "options": {"type": "object"}}}`)
	projectCreateSchema = wrapSchema("project-create", "project", `{
		"type": "object", "required": ["name"],
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "description": `+nullableString+`,
			"domain_id": `+nullableString+`, "parent_id": `+nullableString+`, "enabled": {"type": "boolean"},
			"is_domain": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}, "options": {"type": "object"}}}`)
	projectUpdateSchema = wrapSchema("project-update", "project", `{
		"type": "object", "minProperties": 1,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "description": `+nullableString+`,
			"enabled": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}}, "options": {"type": "object"}}}`)
	userCreateSchema = wrapSchema("user-create", "user", `{
		"type": "object", "required": ["name"],
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "password": {"type": ["string", "null"], "maxLength": 4096},
			"domain_id": `+nullableString+`, "default_project_id": `+nullableString+`, "description": `+nullableString+`,
			"enabled": {"type": "boolean"}, "options": {"type": "object"}}}`)
	userUpdateSchema = wrapSchema("user-update", "user", `{
		"type": "object", "minProperties": 1,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "password": {"type": ["string", "null"], "maxLength": 4096},
			"default_project_id": `+nullableString+`, "description": `+nullableString+`,
			"enabled": {"type": "boolean"}, "options": {"type": "object"}}}`)
	passwordSchema = wrapSchema("user-password", "user", `{
		"type": "object", "required": ["original_password", "password"],
		"properties": {"original_password": {"type": "string"}, "password": {"type": "string", "minLength": 1, "maxLength": 4096}}}`)
	groupCreateSchema = wrapSchema("group-create", "group", `{
		"type": "object", "required": ["name"],
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "description": `+nullableString+`, "domain_id": `+nullableString+`}}`)
	groupUpdateSchema = wrapSchema("group-update", "group", `{
		"type": "object", "minProperties": 1,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "description": `+nullableString+`}}`)
	roleCreateSchema = wrapSchema("role-create", "role", `{
		"type": "object", "required": ["name"],
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": `+nullableString+`, "domain_id": `+nullableString+`, "options": {"type": "object"}}}`)
	roleUpdateSchema = wrapSchema("role-update", "role", `{
		"type": "object", "minProperties": 1,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": `+nullableString+`, "options": {"type": "object"}}}`)
	regionSchema = wrapSchema("region", "region", `{
		"type": "object",
		"properties": {"id": {"type": "string", "minLength": 1, "maxLength": 255}, "description": `+nullableString+`, "parent_region_id": `+nullableString+`}}`)
	serviceCreateSchema = wrapSchema("service-create", "service", `{
		"type": "object", "required": ["type"],
		"properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "name": `+nullableString+`, "description": `+nullableString+`, "enabled": {"type": "boolean"}}}`)
	serviceUpdateSchema = wrapSchema("service-update", "service", `{
		"type": "object", "minProperties": 1,
		"properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "name": `+nullableString+`, "description": `+nullableString+`, "enabled": {"type": "boolean"}}}`)
	endpointCreateSchema = wrapSchema("endpoint-create", "endpoint", `{
		"type": "object", "required": ["interface", "url", "service_id"],
		"properties": {"interface": {"type": "string", "enum": ["public", "internal", "admin"]}, "url": {"type": "string", "minLength": 1, "maxLength": 225, "pattern": "^[a-zA-Z0-9+.-]+://"},
			"service_id": {"type": "string"}, "region_id": `+nullableString+`, "region": `+nullableString+`, "enabled": {"type": "boolean"}}}`)
	endpointUpdateSchema = wrapSchema("endpoint-update", "endpoint", `{
		"type": "object", "minProperties": 1,
		"properties": {"interface": {"type": "string", "enum": ["public", "internal", "admin"]}, "url": {"type": "string", "minLength": 1, "maxLength": 225, "pattern": "^[a-zA-Z0-9+.-]+://"},
			"service_id": {"type": "string"}, "region_id": `+nullableString+`, "region": `+nullableString+`, "enabled": {"type": "boolean"}}}`)
	appCredSchema = wrapSchema("application-credential", "application_credential", `{
		"type": "object", "required": ["name"], "additionalProperties": false,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": `+nullableString+`,
			"secret": `+nullableString+`, "expires_at": `+nullableString+`, "unrestricted": {"type": ["boolean", "null"]},
			"access_rules": {"type": ["array", "null"], "maxItems": 100, "items": {"type": "object", "additionalProperties": false,
				"properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64}, "service": {"type": "string", "minLength": 1, "maxLength": 64},
					"path": {"type": "string", "minLength": 1, "maxLength": 225},
					"method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]}}}},
			"roles": {"type": ["array", "null"], "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}}}}`)
)

func wrapSchema(name, key, inner string) *apiutil.Schema {
	return apiutil.MustSchema(name, `{"type": "object", "required": ["`+key+`"], "properties": {"`+key+`": `+inner+`}}`)
}

// ---- views ----

func domainView(r *http.Request, d *Domain) map[string]any {
	v := map[string]any{"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": []string{}, "options": map[string]any{}, "links": selfLink(r, "domains", d.ID)}
	mergeExtras(v, d.Extra)
	return v
}

func projectView(r *http.Request, p *Project) map[string]any {
	parent := p.ParentID
	if parent == "" {
		parent = p.DomainID
	}
	v := map[string]any{"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "parent_id": parent, "description": p.Description,
		"enabled": p.Enabled, "is_domain": false, "tags": p.Tags, "options": map[string]any{}, "links": selfLink(r, "projects", p.ID)}
	mergeExtras(v, p.Extra)
	return v
}

func userView(r *http.Request, u *User) map[string]any {
	v := map[string]any{"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": fmtTime(u.PasswordExpiresAt), "options": map[string]any{}, "links": selfLink(r, "users", u.ID)}
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != nil {
		v["description"] = *u.Description
	}
	mergeExtras(v, u.Extra)
	return v
}

func groupView(r *http.Request, g *Group) map[string]any {
	v := map[string]any{"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description, "links": selfLink(r, "groups", g.ID)}
	mergeExtras(v, g.Extra)
	return v
}

func roleView(r *http.Request, ro *Role) map[string]any {
	var dom any
	if ro.DomainID != "" {
		dom = ro.DomainID
	}
	v := map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": dom, "description": ro.Description,
		"options": map[string]any{}, "links": selfLink(r, "roles", ro.ID)}
	mergeExtras(v, ro.Extra)
	return v
}

// ---- domains ----

func (a *API) listDomains(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_domains", nil); err != nil {
		return nil, err
	}
	f := Filter{}
	if n := r.URL.Query().Get("name"); n != "" {
		f["name"] = n
	}
	en, err := boolQuery(r, "enabled")
	if err != nil {
		return nil, err
	}
	if en != nil {
		f["enabled"] = *en
	}
	ds, err := a.svc.store.ListDomains(r.Context(), f)
	if err != nil {
		return nil, err
	}
	lf := parseListFilter(r)
	ds = slices.DeleteFunc(ds, func(d *Domain) bool { return !lf.matchName(d.Name) })
	out := make([]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, domainView(r, d))
	}
	return apiutil.JSON(200, map[string]any{"domains": out, "links": listLinks(r)}), nil
}

func (a *API) createDomain(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_domain", nil); err != nil {
		return nil, err
	}
	m, err := body(r, domainCreateSchema, "domain")
	if err != nil {
		return nil, err
	}
	d := &Domain{ID: str(m, "explicit_domain_id"), Name: str(m, "name"), Description: str(m, "description"), Enabled: boolOr(m, "enabled", true),
		Extra: extras(m, "name", "description", "enabled", "tags", "options", "explicit_domain_id", "id", "links")}
	if err := a.svc.CreateDomain(r.Context(), d); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"domain": domainView(r, d)}), nil
}

func (a *API) getDomain(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("domain_id")
	if err := a.authorize(r, "identity:get_domain", map[string]string{"domain_id": id}); err != nil {
		return nil, err
	}
	d, err := a.svc.store.GetDomain(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"domain": domainView(r, d)}), nil
}

func (a *API) updateDomain(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("domain_id")
	if err := a.authorize(r, "identity:update_domain", map[string]string{"domain_id": id}); err != nil {
		return nil, err
	}
	m, err := body(r, domainUpdateSchema, "domain")
	if err != nil {
		return nil, err
	}
	d, err := a.svc.store.GetDomain(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if v, ok := m["name"].(string); ok {
		d.Name = v
	}
	if v, ok := strPtr(m, "description"); ok {
		d.Description = deref(v)
	}
	d.Enabled = boolOr(m, "enabled", d.Enabled)
	for k, v := range extras(m, "name", "description", "enabled", "tags", "options", "id", "links") {
		d.Extra[k] = v
	}
	if err := a.svc.UpdateDomain(r.Context(), d); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"domain": domainView(r, d)}), nil
}

func (a *API) deleteDomain(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("domain_id")
	if err := a.authorize(r, "identity:delete_domain", map[string]string{"domain_id": id}); err != nil {
		return nil, err
	}
	if err := a.svc.DeleteDomain(r.Context(), id); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// load fetches the resource a path value names and authorizes rule on
// it. When it does not exist the rule is checked on the id alone, so a
// caller without the right gets 403, not a hint that the id is free.
func load[T any](a *API, r *http.Request, rule, key string, get func(context.Context, string) (T, error), target func(T) map[string]string) (T, error) {
	id := r.PathValue(key)
	v, err := get(r.Context(), id)
	if err != nil {
		if aerr := a.authorize(r, rule, map[string]string{key: id}); aerr != nil {
			return v, aerr
		}
		return v, err
	}
	return v, a.authorize(r, rule, target(v))
}

func (a *API) loadProject(r *http.Request, rule string) (*Project, error) {
	return load(a, r, rule, "project_id", a.svc.store.GetProject, func(p *Project) map[string]string {
		return map[string]string{"project_id": p.ID, "domain_id": p.DomainID}
	})
}

func (a *API) loadUser(r *http.Request, rule string) (*User, error) {
	return load(a, r, rule, "user_id", a.svc.store.GetUser, func(u *User) map[string]string {
		return map[string]string{"user_id": u.ID, "domain_id": u.DomainID}
	})
}

func (a *API) loadGroup(r *http.Request, rule string) (*Group, error) {
	return load(a, r, rule, "group_id", a.svc.store.GetGroup, func(g *Group) map[string]string {
		return map[string]string{"group_id": g.ID, "domain_id": g.DomainID}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ---- projects ----

// domainListFilter builds the equality filter of a list request from the
// query keys (with "enabled" among them read as a boolean), narrows a
// domain reader to its own domain, and authorizes rule on that domain.
func (a *API) domainListFilter(r *http.Request, rule string, keys ...string) (Filter, error) {
	q := r.URL.Query()
	f := Filter{}
	for _, k := range keys {
		v := q.Get(k)
		switch {
		case v == "":
		case k == "enabled":
			en, err := boolQuery(r, k)
			if err != nil {
				return nil, err
			}
			f[k] = *en
		default:
			f[k] = v
		}
	}
	c := caller(r)
	target := map[string]string{"domain_id": q.Get("domain_id")}
	if !c.IsAdmin() && c.DomainID != "" && q.Get("domain_id") == "" {
		// A domain reader lists its own domain.
		f["domain_id"], target["domain_id"] = c.DomainID, c.DomainID
	}
	return f, a.authorize(r, rule, target)
}

func (a *API) listProjects(r *http.Request) (*apiutil.Response, error) {
	f, err := a.domainListFilter(r, "identity:list_projects", "name", "domain_id", "parent_id", "enabled")
	if err != nil {
		return nil, err
	}
	isDomain, err := boolQuery(r, "is_domain")
	if err != nil {
		return nil, err
	}
	if isDomain != nil && *isDomain {
		df := Filter{}
		if v, ok := f["name"]; ok {
			df["name"] = v
		}
		if v, ok := f["enabled"]; ok {
			df["enabled"] = v
		}
		ds, err := a.svc.store.ListDomains(r.Context(), df)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, len(ds))
		for _, d := range ds {
			out = append(out, domainAsProject(r, d))
		}
		return apiutil.JSON(200, map[string]any{"projects": out, "links": listLinks(r)}), nil
	}
	ps, err := a.svc.store.ListProjects(r.Context(), f)
	if err != nil {
		return nil, err
	}
	lf := parseListFilter(r)
	ps = slices.DeleteFunc(ps, func(p *Project) bool { return !lf.matchName(p.Name) || !lf.matchTags(p.Tags) })
	return projectList(r, ps), nil
}

func projectList(r *http.Request, ps []*Project) *apiutil.Response {
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectView(r, p))
	}
	return apiutil.JSON(200, map[string]any{"projects": out, "links": listLinks(r)})
}

func (a *API) createProject(r *http.Request) (*apiutil.Response, error) {
	m, err := body(r, projectCreateSchema, "project")
	if err != nil {
		return nil, err
	}
	p := &Project{Name: str(m, "name"), DomainID: str(m, "domain_id"), ParentID: str(m, "parent_id"),
		Description: str(m, "description"), Enabled: boolOr(m, "enabled", true), Tags: stringList(m["tags"]),
		Extra: extras(m, "name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags", "options", "id", "links")}
	if err := a.authorize(r, "identity:create_project", map[string]string{"domain_id": p.DomainID}); err != nil {
		return nil, err
	}
	if boolOr(m, "is_domain", false) {
		// A project acting as a domain is a domain.
		if err := a.authorize(r, "identity:create_domain", nil); err != nil {
			return nil, err
		}
		d := &Domain{Name: p.Name, Description: p.Description, Enabled: p.Enabled, Extra: p.Extra}
		if err := a.svc.CreateDomain(r.Context(), d); err != nil {
			return nil, err
		}
		return apiutil.JSON(201, map[string]any{"project": domainAsProject(r, d)}), nil
	}
	if err := a.svc.CreateProject(r.Context(), p); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"project": projectView(r, p)}), nil
}

func stringList(v any) []string {
	out := []string{}
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// domainAsProject renders a domain the way Keystone shows the project
// acting as it.
func domainAsProject(r *http.Request, d *Domain) map[string]any {
	v := map[string]any{"id": d.ID, "name": d.Name, "domain_id": nil, "parent_id": nil, "description": d.Description,
		"enabled": d.Enabled, "is_domain": true, "tags": []string{}, "options": map[string]any{}, "links": selfLink(r, "projects", d.ID)}
	mergeExtras(v, d.Extra)
	return v
}

// projectDomain finds the domain a project id names when no project has
// that id (projects acting as domains); nil when there is none.
func (a *API) projectDomain(r *http.Request, rule string) (*Domain, error) {
	if _, err := a.svc.store.GetProject(r.Context(), r.PathValue("project_id")); err == nil {
		return nil, nil
	}
	d, err := a.svc.store.GetDomain(r.Context(), r.PathValue("project_id"))
	if err != nil {
		return nil, nil
	}
	return d, a.authorize(r, rule, map[string]string{"domain_id": d.ID})
}

func (a *API) getProject(r *http.Request) (*apiutil.Response, error) {
	if d, err := a.projectDomain(r, "identity:get_domain"); d != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"project": domainAsProject(r, d)}), nil
	}
	p, err := a.loadProject(r, "identity:get_project")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"project": projectView(r, p)}), nil
}

func (a *API) updateProject(r *http.Request) (*apiutil.Response, error) {
	if d, err := a.projectDomain(r, "identity:update_domain"); d != nil || err != nil {
		if err != nil {
			return nil, err
		}
		m, err := body(r, projectUpdateSchema, "project")
		if err != nil {
			return nil, err
		}
		if v, ok := m["name"].(string); ok {
			d.Name = v
		}
		if v, ok := strPtr(m, "description"); ok {
			d.Description = deref(v)
		}
		d.Enabled = boolOr(m, "enabled", d.Enabled)
		if err := a.svc.UpdateDomain(r.Context(), d); err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"project": domainAsProject(r, d)}), nil
	}
	p, err := a.loadProject(r, "identity:update_project")
	if err != nil {
		return nil, err
	}
	m, err := body(r, projectUpdateSchema, "project")
	if err != nil {
		return nil, err
	}
	if v, ok := m["name"].(string); ok {
		p.Name = v
	}
	if v, ok := strPtr(m, "description"); ok {
		p.Description = deref(v)
	}
	p.Enabled = boolOr(m, "enabled", p.Enabled)
	if _, ok := m["tags"]; ok {
		p.Tags = stringList(m["tags"])
	}
	for k, v := range extras(m, "name", "description", "enabled", "tags", "options", "id", "links", "domain_id", "parent_id", "is_domain") {
		p.Extra[k] = v
	}
	if err := a.svc.UpdateProject(r.Context(), p); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"project": projectView(r, p)}), nil
}

func (a *API) deleteProject(r *http.Request) (*apiutil.Response, error) {
	if d, err := a.projectDomain(r, "identity:delete_domain"); d != nil || err != nil {
		if err != nil {
			return nil, err
		}
		if err := a.svc.DeleteDomain(r.Context(), d.ID); err != nil {
			return nil, err
		}
		return apiutil.NoContent(), nil
	}
	p, err := a.loadProject(r, "identity:delete_project")
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteProject(r.Context(), p.ID); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- users ----

func (a *API) listUsers(r *http.Request) (*apiutil.Response, error) {
	f, err := a.domainListFilter(r, "identity:list_users", "name", "domain_id", "enabled")
	if err != nil {
		return nil, err
	}
	us, err := a.svc.store.ListUsers(r.Context(), f)
	if err != nil {
		return nil, err
	}
	lf := parseListFilter(r)
	us = slices.DeleteFunc(us, func(u *User) bool { return !lf.matchName(u.Name) })
	return userList(r, us), nil
}

func userList(r *http.Request, us []*User) *apiutil.Response {
	out := make([]any, 0, len(us))
	for _, u := range us {
		out = append(out, userView(r, u))
	}
	return apiutil.JSON(200, map[string]any{"users": out, "links": listLinks(r)})
}

var userKnown = []string{"name", "password", "domain_id", "default_project_id", "description", "enabled", "options", "id", "links", "password_expires_at"}

func (a *API) createUser(r *http.Request) (*apiutil.Response, error) {
	m, err := body(r, userCreateSchema, "user")
	if err != nil {
		return nil, err
	}
	u := &User{Name: str(m, "name"), DomainID: str(m, "domain_id"), DefaultProjectID: str(m, "default_project_id"),
		Enabled: boolOr(m, "enabled", true), Extra: extras(m, userKnown...)}
	if d, ok := strPtr(m, "description"); ok && d != nil {
		u.Description = d
	}
	if err := a.authorize(r, "identity:create_user", map[string]string{"domain_id": u.DomainID}); err != nil {
		return nil, err
	}
	pw, _ := strPtr(m, "password")
	if err := a.svc.CreateUser(r.Context(), u, pw); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"user": userView(r, u)}), nil
}

func (a *API) getUser(r *http.Request) (*apiutil.Response, error) {
	u, err := a.loadUser(r, "identity:get_user")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"user": userView(r, u)}), nil
}

func (a *API) updateUser(r *http.Request) (*apiutil.Response, error) {
	u, err := a.loadUser(r, "identity:update_user")
	if err != nil {
		return nil, err
	}
	m, err := body(r, userUpdateSchema, "user")
	if err != nil {
		return nil, err
	}
	if d, ok := m["domain_id"].(string); ok && d != u.DomainID {
		return nil, apiutil.BadRequest("Cannot change Domain ID.")
	}
	if v, ok := m["name"].(string); ok {
		u.Name = v
	}
	if v, ok := strPtr(m, "default_project_id"); ok {
		u.DefaultProjectID = deref(v)
	}
	if v, ok := strPtr(m, "description"); ok {
		u.Description = v
	}
	u.Enabled = boolOr(m, "enabled", u.Enabled)
	for k, v := range extras(m, userKnown...) {
		u.Extra[k] = v
	}
	pw, _ := strPtr(m, "password")
	if err := a.svc.UpdateUser(r.Context(), u, pw); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"user": userView(r, u)}), nil
}

func (a *API) deleteUser(r *http.Request) (*apiutil.Response, error) {
	u, err := a.loadUser(r, "identity:delete_user")
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteUser(r.Context(), u.ID); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) changePassword(r *http.Request) (*apiutil.Response, error) {
	m, err := body(r, passwordSchema, "user")
	if err != nil {
		return nil, err
	}
	if err := a.svc.ChangePassword(r.Context(), r.PathValue("user_id"), str(m, "original_password"), str(m, "password")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) userProjects(r *http.Request) (*apiutil.Response, error) {
	u, err := a.loadUser(r, "identity:list_user_projects")
	if err != nil {
		return nil, err
	}
	ps, err := a.svc.UserProjects(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	return projectList(r, ps), nil
}

func (a *API) userGroups(r *http.Request) (*apiutil.Response, error) {
	u, err := a.loadUser(r, "identity:list_groups_for_user")
	if err != nil {
		return nil, err
	}
	gs, err := a.svc.store.GroupsOfUser(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	return groupList(r, gs), nil
}

// ---- groups ----

func groupList(r *http.Request, gs []*Group) *apiutil.Response {
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupView(r, g))
	}
	return apiutil.JSON(200, map[string]any{"groups": out, "links": listLinks(r)})
}

func (a *API) listGroups(r *http.Request) (*apiutil.Response, error) {
	f, err := a.domainListFilter(r, "identity:list_groups", "name", "domain_id")
	if err != nil {
		return nil, err
	}
	gs, err := a.svc.store.ListGroups(r.Context(), f)
	if err != nil {
		return nil, err
	}
	lf := parseListFilter(r)
	gs = slices.DeleteFunc(gs, func(g *Group) bool { return !lf.matchName(g.Name) })
	return groupList(r, gs), nil
}

func (a *API) createGroup(r *http.Request) (*apiutil.Response, error) {
	m, err := body(r, groupCreateSchema, "group")
	if err != nil {
		return nil, err
	}
	g := &Group{Name: str(m, "name"), DomainID: str(m, "domain_id"), Description: str(m, "description"),
		Extra: extras(m, "name", "domain_id", "description", "id", "links")}
	if err := a.authorize(r, "identity:create_group", map[string]string{"domain_id": g.DomainID}); err != nil {
		return nil, err
	}
	if err := a.svc.CreateGroup(r.Context(), g); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"group": groupView(r, g)}), nil
}

func (a *API) getGroup(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:get_group")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"group": groupView(r, g)}), nil
}

func (a *API) updateGroup(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:update_group")
	if err != nil {
		return nil, err
	}
	m, err := body(r, groupUpdateSchema, "group")
	if err != nil {
		return nil, err
	}
	if v, ok := m["name"].(string); ok {
		g.Name = v
	}
	if v, ok := strPtr(m, "description"); ok {
		g.Description = deref(v)
	}
	maps.Copy(g.Extra, extras(m, "name", "domain_id", "description", "id", "links"))
	if err := a.svc.UpdateGroup(r.Context(), g); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"group": groupView(r, g)}), nil
}

func (a *API) deleteGroup(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:delete_group")
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteGroup(r.Context(), g.ID); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) groupUsers(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:list_users_in_group")
	if err != nil {
		return nil, err
	}
	us, err := a.svc.store.UsersInGroup(r.Context(), g.ID)
	if err != nil {
		return nil, err
	}
	return userList(r, us), nil
}

func (a *API) addGroupUser(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:add_user_to_group")
	if err != nil {
		return nil, err
	}
	if err := a.svc.AddGroupMember(r.Context(), g.ID, r.PathValue("user_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) checkGroupUser(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:check_user_in_group")
	if err != nil {
		return nil, err
	}
	uid := r.PathValue("user_id")
	if _, err := a.svc.store.GetUser(r.Context(), uid); err != nil {
		return nil, err
	}
	ok, err := a.svc.store.IsGroupMember(r.Context(), g.ID, uid)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apiutil.NotFound("User '%s' not found in group '%s'.", uid, g.ID)
	}
	return apiutil.NoContent(), nil
}

func (a *API) removeGroupUser(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadGroup(r, "identity:remove_user_from_group")
	if err != nil {
		return nil, err
	}
	if err := a.svc.RemoveGroupMember(r.Context(), g.ID, r.PathValue("user_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// parseExpiry reads an ISO 8601 time as Keystone accepts it.
func parseExpiry(s string) (time.Time, error) {
	for _, f := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999Z0700", "2006-01-02"} {
		if t, err := time.Parse(f, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, apiutil.BadRequest("Invalid input for field 'expires_at': %q is not an ISO 8601 time.", s)
}
