package identity

import (
	"net/http"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// OS-TRUST: a trustor delegates some of its roles on a project to a
// trustee, who can then get tokens scoped with the trust.

var trustSchema = wrapSchema("trust", "trust", `{
	"type": "object", "required": ["trustor_user_id", "trustee_user_id", "impersonation"],
	"properties": {
		"trustor_user_id": {"type": "string", "minLength": 1, "maxLength": 64},
		"trustee_user_id": {"type": "string", "minLength": 1, "maxLength": 64},
		"impersonation": {"type": "boolean"},
		"project_id": {"type": ["string", "null"], "maxLength": 64},
		"expires_at": {"type": ["string", "null"]},
		"remaining_uses": {"type": ["integer", "null"], "minimum": 1},
		"allow_redelegation": {"type": ["boolean", "null"]},
		"redelegation_count": {"type": ["integer", "null"], "minimum": 0},
		"roles": {"type": ["array", "null"], "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}}
	}}`)

func trustTime(t interface{ IsZero() bool }, s string) any {
	if t.IsZero() {
		return nil
	}
	return s
}

func (a *API) trustRoleView(r *http.Request, id string) map[string]any {
	ro := map[string]any{"id": id, "links": selfLink(r, "roles", id)}
	if x, err := a.svc.store.GetRole(r.Context(), id); err == nil {
		ro["name"] = x.Name
		ro["domain_id"] = nullIfEmpty(x.DomainID)
	}
	return ro
}

func (a *API) trustView(r *http.Request, t *Trust) map[string]any {
	roles := []any{}
	for _, id := range t.RoleIDs {
		roles = append(roles, a.trustRoleView(r, id))
	}
	self := base(r) + "/OS-TRUST/trusts/" + t.ID
	var uses any
	if t.RemainingUses != nil {
		uses = *t.RemainingUses
	}
	return map[string]any{
		"id": t.ID, "trustor_user_id": t.TrustorUserID, "trustee_user_id": t.TrusteeUserID, "project_id": nullIfEmpty(t.ProjectID),
		"impersonation": t.Impersonation, "allow_redelegation": t.AllowRedelegation, "redelegation_count": t.RedelegationCount,
		"expires_at": trustTime(t.ExpiresAt, t.ExpiresAt.UTC().Format(timeFormat)), "remaining_uses": uses,
		"deleted_at": trustTime(t.DeletedAt, t.DeletedAt.UTC().Format(timeFormat)),
		"roles":      roles, "roles_links": map[string]any{"self": self + "/roles", "previous": nil, "next": nil},
		"links": map[string]any{"self": self},
	}
}

func (a *API) createTrust(r *http.Request) (*apiutil.Response, error) {
	m, err := body(r, trustSchema, "trust")
	if err != nil {
		return nil, err
	}
	t := &Trust{ID: newID(), TrustorUserID: str(m, "trustor_user_id"), TrusteeUserID: str(m, "trustee_user_id"), ProjectID: str(m, "project_id"),
		Impersonation: boolOr(m, "impersonation", false), AllowRedelegation: boolOr(m, "allow_redelegation", false), CreatedAt: a.svc.now()}
	if err := a.authorize(r, "identity:create_trust", map[string]string{"trustor_user_id": t.TrustorUserID}); err != nil {
		return nil, err
	}
	c := caller(r)
	if c.AppCred != nil {
		return nil, apiutil.Forbidden("Using method 'application_credential' is not allowed for managing trusts.")
	}
	if c.TrustID != "" {
		return nil, apiutil.Forbidden("Redelegation of trusts is not supported.")
	}
	if t.AllowRedelegation {
		return nil, apiutil.Forbidden("Redelegation of trusts is not supported.")
	}
	if _, err := a.svc.store.GetUser(r.Context(), t.TrusteeUserID); err != nil {
		return nil, err
	}
	if v, ok := m["remaining_uses"].(float64); ok {
		n := int(v)
		t.RemainingUses = &n
	}
	if e := str(m, "expires_at"); e != "" {
		if t.ExpiresAt, err = parseExpiry(e); err != nil {
			return nil, err
		}
		if !t.ExpiresAt.After(a.svc.now()) {
			return nil, apiutil.BadRequest("Invalid input for field 'expires_at': the expiration time is in the past.")
		}
	}
	rl, _ := m["roles"].([]any)
	if t.ProjectID == "" && len(rl) > 0 {
		return nil, apiutil.BadRequest("Invalid input for field 'roles': a trust without a project cannot delegate roles.")
	}
	if t.ProjectID != "" && len(rl) == 0 {
		return nil, apiutil.BadRequest("At least one role should be specified.")
	}
	var held []string
	if t.ProjectID != "" {
		if held, err = a.svc.projectRoles(r.Context(), t.TrustorUserID, t.ProjectID); err != nil {
			return nil, err
		}
	}
	for _, x := range rl {
		ref, _ := x.(map[string]any)
		ro, err := a.svc.RoleByIDOrName(r.Context(), str(ref, "id"), str(ref, "name"))
		if err != nil {
			return nil, apiutil.NotFound("Could not find role: %s.", str(ref, "id")+str(ref, "name"))
		}
		if !slices.Contains(held, ro.ID) {
			return nil, apiutil.Forbidden("User %s does not have role %s on project %s.", t.TrustorUserID, ro.ID, t.ProjectID)
		}
		if !slices.Contains(t.RoleIDs, ro.ID) {
			t.RoleIDs = append(t.RoleIDs, ro.ID)
		}
	}
	if err := a.svc.after(r.Context(), a.svc.store.CreateTrust(r.Context(), t)); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"trust": a.trustView(r, t)}), nil
}

// listTrusts lists every trust for admins; others must filter by
// themselves as trustor or trustee, as in Keystone.
func (a *API) listTrusts(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	trustor, trustee := q.Get("trustor_user_id"), q.Get("trustee_user_id")
	if err := a.authorize(r, "identity:list_trusts", nil); err != nil {
		var ok bool
		switch {
		case trustor != "":
			ok = a.authorize(r, "identity:list_trusts_for_trustor", map[string]string{"trustor_user_id": trustor}) == nil
		case trustee != "":
			ok = a.authorize(r, "identity:list_trusts_for_trustee", map[string]string{"trustee_user_id": trustee}) == nil
		}
		if !ok {
			return nil, err
		}
	}
	l, err := a.svc.store.ListTrusts(r.Context(), trustor, trustee)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, t := range l {
		if t.ExpiresAt.IsZero() || t.ExpiresAt.After(a.svc.now()) {
			out = append(out, a.trustView(r, t))
		}
	}
	return apiutil.JSON(200, map[string]any{"trusts": out, "links": listLinks(r)}), nil
}

func (a *API) loadTrust(r *http.Request, rule string) (*Trust, error) {
	t, err := a.svc.store.GetTrust(r.Context(), r.PathValue("trust_id"))
	if err != nil {
		return nil, err
	}
	if err := a.authorize(r, rule, map[string]string{"trustor_user_id": t.TrustorUserID, "trustee_user_id": t.TrusteeUserID}); err != nil {
		return nil, err
	}
	if !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(a.svc.now()) {
		return nil, apiutil.NotFound("Could not find trust: %s.", t.ID)
	}
	return t, nil
}

func (a *API) getTrust(r *http.Request) (*apiutil.Response, error) {
	t, err := a.loadTrust(r, "identity:get_trust")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"trust": a.trustView(r, t)}), nil
}

func (a *API) deleteTrust(r *http.Request) (*apiutil.Response, error) {
	t, err := a.loadTrust(r, "identity:delete_trust")
	if err != nil {
		return nil, err
	}
	if err := a.svc.DeleteTrust(r.Context(), t.ID); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) trustRoles(r *http.Request) (*apiutil.Response, error) {
	t, err := a.loadTrust(r, "identity:list_roles_for_trust")
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, id := range t.RoleIDs {
		out = append(out, a.trustRoleView(r, id))
	}
	return apiutil.JSON(200, map[string]any{"roles": out, "links": listLinks(r)}), nil
}

func (a *API) trustRole(r *http.Request) (*apiutil.Response, error) {
	t, err := a.loadTrust(r, "identity:get_role_for_trust")
	if err != nil {
		return nil, err
	}
	id := r.PathValue("role_id")
	if !slices.Contains(t.RoleIDs, id) {
		return nil, apiutil.NotFound("Could not find role: %s.", id)
	}
	return apiutil.JSON(200, map[string]any{"role": a.trustRoleView(r, id)}), nil
}

// ---- access rules of application credentials ----

func accessRuleView(r *http.Request, ar *AccessRule) map[string]any {
	return map[string]any{"id": ar.ID, "service": ar.Service, "path": ar.Path, "method": ar.Method,
		"links": map[string]any{"self": base(r) + "/users/" + ar.UserID + "/access_rules/" + ar.ID}}
}

func (a *API) listAccessRules(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:list_access_rules", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	if _, err := a.svc.store.GetUser(r.Context(), uid); err != nil {
		return nil, err
	}
	l, err := a.svc.store.ListAccessRules(r.Context(), uid)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, ar := range l {
		if attrMatch(r, "service", ar.Service) && attrMatch(r, "path", ar.Path) && attrMatch(r, "method", ar.Method) {
			out = append(out, accessRuleView(r, ar))
		}
	}
	return apiutil.JSON(200, map[string]any{"access_rules": out, "links": listLinks(r)}), nil
}

func (a *API) getAccessRule(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:get_access_rule", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	ar, err := a.svc.store.GetAccessRule(r.Context(), uid, r.PathValue("access_rule_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"access_rule": accessRuleView(r, ar)}), nil
}

func (a *API) deleteAccessRule(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:delete_access_rule", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.DeleteAccessRule(r.Context(), uid, r.PathValue("access_rule_id"))); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
