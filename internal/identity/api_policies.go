package identity

import (
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Policies (/v3/policies): Keystone's deprecated store of opaque policy
// blobs. Kumo keeps them and serves them back; nothing enforces them
// (Kumo's rules come from its own defaults and the policy file).
//
// Endpoint filtering (OS-EP-FILTER): project ↔ endpoint associations.

var (
	policySchema = wrapSchema("policy", "policy", `{"type": "object", "required": ["type", "blob"],
		"properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "blob": {"type": "string"}}}`)
	policyUpdateSchema = wrapSchema("policy-update", "policy", `{"type": "object", "minProperties": 1,
		"properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "blob": {"type": "string"}}}`)
)

func policyView(r *http.Request, p *PolicyBlob) map[string]any {
	v := map[string]any{"id": p.ID, "type": p.Type, "blob": p.Blob, "links": selfLink(r, "policies", p.ID)}
	mergeExtras(v, p.Extra)
	return v
}

// attrMatch applies Keystone's string filter operators (attr,
// attr__contains, attr__icontains, attr__startswith, …) to value.
func attrMatch(r *http.Request, attr, value string) bool {
	q := r.URL.Query()
	lower := strings.ToLower
	ops := map[string]func(v, p string) bool{
		"":             func(v, p string) bool { return v == p },
		"__contains":   strings.Contains,
		"__startswith": strings.HasPrefix,
		"__endswith":   strings.HasSuffix,
		"__icontains":  func(v, p string) bool { return strings.Contains(lower(v), lower(p)) },
		"__istartswith": func(v, p string) bool {
			return strings.HasPrefix(lower(v), lower(p))
		},
		"__iendswith": func(v, p string) bool { return strings.HasSuffix(lower(v), lower(p)) },
	}
	for op, fn := range ops {
		for _, p := range q[attr+op] {
			if !fn(value, p) {
				return false
			}
		}
	}
	return true
}

func (a *API) listPolicies(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_policies", nil); err != nil {
		return nil, err
	}
	l, err := a.svc.store.ListPolicies(r.Context(), nil)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, p := range l {
		if attrMatch(r, "type", p.Type) {
			out = append(out, policyView(r, p))
		}
	}
	return apiutil.JSON(200, map[string]any{"policies": out, "links": listLinks(r)}), nil
}

func (a *API) createPolicy(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_policy", nil); err != nil {
		return nil, err
	}
	m, err := body(r, policySchema, "policy")
	if err != nil {
		return nil, err
	}
	p := &PolicyBlob{ID: newID(), Type: str(m, "type"), Blob: str(m, "blob"), Extra: extras(m, "id", "type", "blob", "links")}
	if err := a.svc.after(r.Context(), a.svc.store.CreatePolicy(r.Context(), p)); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"policy": policyView(r, p)}), nil
}

func (a *API) getPolicy(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_policy", nil); err != nil {
		return nil, err
	}
	p, err := a.svc.store.GetPolicy(r.Context(), r.PathValue("policy_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"policy": policyView(r, p)}), nil
}

func (a *API) updatePolicy(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_policy", nil); err != nil {
		return nil, err
	}
	p, err := a.svc.store.GetPolicy(r.Context(), r.PathValue("policy_id"))
	if err != nil {
		return nil, err
	}
	m, err := body(r, policyUpdateSchema, "policy")
	if err != nil {
		return nil, err
	}
	if id, ok := m["id"]; ok && id != p.ID {
		return nil, apiutil.BadRequest("Cannot change the id of a policy.")
	}
	if _, ok := m["type"]; ok {
		p.Type = str(m, "type")
	}
	if _, ok := m["blob"]; ok {
		p.Blob = str(m, "blob")
	}
	for k, v := range extras(m, "id", "type", "blob", "links") {
		p.Extra[k] = v
	}
	if err := a.svc.after(r.Context(), a.svc.store.UpdatePolicy(r.Context(), p)); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"policy": policyView(r, p)}), nil
}

func (a *API) deletePolicy(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_policy", nil); err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.DeletePolicy(r.Context(), r.PathValue("policy_id"))); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- OS-EP-FILTER ----

// projectEndpoint checks the rule and that both sides exist.
func (a *API) projectEndpoint(r *http.Request, rule string) (string, string, error) {
	if err := a.authorize(r, rule, nil); err != nil {
		return "", "", err
	}
	pid, eid := r.PathValue("project_id"), r.PathValue("endpoint_id")
	if pid != "" {
		if _, err := a.svc.store.GetProject(r.Context(), pid); err != nil {
			return "", "", err
		}
	}
	if eid != "" {
		if _, err := a.svc.store.GetEndpoint(r.Context(), eid); err != nil {
			return "", "", err
		}
	}
	return pid, eid, nil
}

func (a *API) addProjectEndpoint(r *http.Request) (*apiutil.Response, error) {
	pid, eid, err := a.projectEndpoint(r, "identity:add_endpoint_to_project")
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.AddProjectEndpoint(r.Context(), pid, eid)); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) checkProjectEndpoint(r *http.Request) (*apiutil.Response, error) {
	pid, eid, err := a.projectEndpoint(r, "identity:check_endpoint_in_project")
	if err != nil {
		return nil, err
	}
	l, err := a.svc.store.ProjectEndpoints(r.Context(), pid, eid)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, apiutil.NotFound("Could not find endpoint %s associated with project %s.", eid, pid)
	}
	return apiutil.NoContent(), nil
}

func (a *API) removeProjectEndpoint(r *http.Request) (*apiutil.Response, error) {
	pid, eid, err := a.projectEndpoint(r, "identity:remove_endpoint_from_project")
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.RemoveProjectEndpoint(r.Context(), pid, eid)); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) listProjectEndpoints(r *http.Request) (*apiutil.Response, error) {
	pid, _, err := a.projectEndpoint(r, "identity:list_endpoints_for_project")
	if err != nil {
		return nil, err
	}
	l, err := a.svc.store.ProjectEndpoints(r.Context(), pid, "")
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, pe := range l {
		e, err := a.svc.store.GetEndpoint(r.Context(), pe[1])
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, endpointViewOf(r, e))
	}
	return apiutil.JSON(200, map[string]any{"endpoints": out, "links": listLinks(r)}), nil
}

func (a *API) listEndpointProjects(r *http.Request) (*apiutil.Response, error) {
	_, eid, err := a.projectEndpoint(r, "identity:list_projects_for_endpoint")
	if err != nil {
		return nil, err
	}
	l, err := a.svc.store.ProjectEndpoints(r.Context(), "", eid)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, pe := range l {
		p, err := a.svc.store.GetProject(r.Context(), pe[0])
		if err != nil {
			continue
		}
		out = append(out, projectView(r, p))
	}
	return apiutil.JSON(200, map[string]any{"projects": out, "links": listLinks(r)}), nil
}
