package identity

import (
	"net/http"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func (a *API) appCredView(r *http.Request, ac *AppCred) map[string]any {
	roles := []any{}
	for _, id := range ac.RoleIDs {
		ro := map[string]any{"id": id}
		if x, err := a.svc.store.GetRole(r.Context(), id); err == nil {
			ro["name"] = x.Name
			if x.DomainID != "" {
				ro["domain_id"] = x.DomainID
			} else {
				ro["domain_id"] = nil
			}
		}
		roles = append(roles, ro)
	}
	return map[string]any{
		"id": ac.ID, "name": ac.Name, "description": ac.Description, "user_id": ac.UserID, "project_id": ac.ProjectID,
		"roles": roles, "expires_at": appCredTime(ac.ExpiresAt), "unrestricted": ac.Unrestricted, "access_rules": accessRulesView(ac.AccessRules),
		"links": map[string]any{"self": base(r) + "/users/" + ac.UserID + "/application_credentials/" + ac.ID},
	}
}

func (a *API) listAppCreds(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:list_application_credentials", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	if _, err := a.svc.store.GetUser(r.Context(), uid); err != nil {
		return nil, err
	}
	l, err := a.svc.store.ListAppCreds(r.Context(), uid, r.URL.Query().Get("name"))
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(l))
	for _, ac := range l {
		out = append(out, a.appCredView(r, ac))
	}
	return apiutil.JSON(200, map[string]any{"application_credentials": out, "links": listLinks(r)}), nil
}

func (a *API) createAppCred(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:create_application_credential", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	c := caller(r)
	if c.AppCred != nil && !c.AppCred.Unrestricted {
		return nil, apiutil.Forbidden("Using method 'application_credential' is not allowed for managing additional application credentials.")
	}
	if c.TrustID != "" {
		return nil, apiutil.Forbidden("Cannot create an application credential with a token scoped with a trust.")
	}
	m, err := body(r, appCredSchema, "application_credential")
	if err != nil {
		return nil, err
	}
	ac := &AppCred{Name: str(m, "name"), UserID: uid, ProjectID: c.ProjectID, Unrestricted: boolOr(m, "unrestricted", false)}
	if d, ok := strPtr(m, "description"); ok {
		ac.Description = d
	}
	if e := str(m, "expires_at"); e != "" {
		if ac.ExpiresAt, err = parseExpiry(e); err != nil {
			return nil, err
		}
	}
	if rl, ok := m["roles"].([]any); ok {
		for _, x := range rl {
			ref, _ := x.(map[string]any)
			ro, err := a.svc.RoleByIDOrName(r.Context(), str(ref, "id"), str(ref, "name"))
			if err != nil {
				return nil, apiutil.NotFound("Could not find role: %s.", str(ref, "id")+str(ref, "name"))
			}
			ac.RoleIDs = append(ac.RoleIDs, ro.ID)
		}
	}
	if rules, ok := m["access_rules"].([]any); ok {
		for _, x := range rules {
			ref, _ := x.(map[string]any)
			ar := &AccessRule{ID: str(ref, "id"), Service: str(ref, "service"), Path: str(ref, "path"), Method: str(ref, "method")}
			if ar.Service == "" && ar.ID == "" {
				return nil, apiutil.BadRequest("Invalid input for field 'access_rules': each rule needs an id, or a service and a method.")
			}
			if ar.Service != "" && ar.Method == "" {
				return nil, apiutil.BadRequest("Invalid input for field 'access_rules': a rule needs a method.")
			}
			if ar.Service != "" {
				ar.ID = ""
			}
			ac.AccessRules = append(ac.AccessRules, ar)
		}
	}
	var callerRoles []string
	for _, ro := range c.Roles {
		callerRoles = append(callerRoles, ro.ID)
	}
	secret, err := a.svc.CreateAppCred(r.Context(), ac, str(m, "secret"), callerRoles)
	if err != nil {
		return nil, err
	}
	v := a.appCredView(r, ac)
	v["secret"] = secret
	return apiutil.JSON(201, map[string]any{"application_credential": v}), nil
}

func (a *API) loadAppCred(r *http.Request, rule string) (*AppCred, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, rule, map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	ac, err := a.svc.store.GetAppCred(r.Context(), r.PathValue("cred_id"))
	if err != nil {
		return nil, err
	}
	if ac.UserID != uid {
		return nil, apiutil.NotFound("Could not find Application Credential: %s.", ac.ID)
	}
	return ac, nil
}

func (a *API) getAppCred(r *http.Request) (*apiutil.Response, error) {
	ac, err := a.loadAppCred(r, "identity:get_application_credential")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"application_credential": a.appCredView(r, ac)}), nil
}

func (a *API) deleteAppCred(r *http.Request) (*apiutil.Response, error) {
	ac, err := a.loadAppCred(r, "identity:delete_application_credential")
	if err != nil {
		return nil, err
	}
	c := caller(r)
	if c.AppCred != nil && !c.AppCred.Unrestricted {
		return nil, apiutil.Forbidden("Using method 'application_credential' is not allowed for managing additional application credentials.")
	}
	if err := a.svc.DeleteAppCred(r.Context(), ac.ID); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// appCredTime renders expires_at as Keystone does for application
// credentials: microseconds and no zone designator.
func appCredTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func accessRulesView(rules []*AccessRule) []any {
	out := []any{}
	for _, r := range rules {
		out = append(out, map[string]any{"id": r.ID, "service": r.Service, "path": r.Path, "method": r.Method})
	}
	return out
}
