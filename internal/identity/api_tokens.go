package identity

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
)

var authSchema = apiutil.MustSchema("identity-auth", `{
	"type": "object",
	"required": ["auth"],
	"properties": {
		"auth": {
			"type": "object",
			"required": ["identity"],
			"properties": {
				"identity": {
					"type": "object",
					"required": ["methods"],
					"properties": {
						"methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
						"password": {"type": "object", "properties": {"user": {"type": "object", "properties": {
							"id": {"type": "string"}, "name": {"type": "string"}, "password": {"type": "string"},
							"domain": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
						}}}},
						"token": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
						"application_credential": {"type": "object", "required": ["secret"], "properties": {
							"id": {"type": "string"}, "name": {"type": "string"}, "secret": {"type": "string"}
						}}
					}
				},
				"scope": {"anyOf": [{"type": "string", "enum": ["unscoped"]}, {"type": "object"}]}
			}
		}
	}
}`)

const timeFormat = "2006-01-02T15:04:05.000000Z"

func (a *API) issueToken(r *http.Request) (*apiutil.Response, error) {
	raw, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var req AuthRequest
	if err := apiutil.DecodeJSONBytes(raw, authSchema, &req); err != nil {
		if errors.Is(err, apiutil.ErrMalformedBody) {
			return nil, errMalformed
		}
		return nil, err
	}
	var scope *scopeRequest
	unscoped := false
	switch sc := req.Auth.Scope.(type) {
	case string:
		unscoped = sc == "unscoped"
	case map[string]any:
		b, _ := json.Marshal(sc)
		scope = &scopeRequest{}
		if err := json.Unmarshal(b, scope); err != nil {
			return nil, apiutil.BadRequest("Invalid scope: %v", err)
		}
	}
	tok, c, err := a.svc.Authenticate(r.Context(), &req, scope, unscoped)
	if err != nil {
		return nil, err
	}
	noCatalog := r.URL.Query().Has("nocatalog")
	body, err := a.tokenBody(r, c, !noCatalog)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusCreated, body).SetHeader("X-Subject-Token", tok), nil
}

func (a *API) subject(r *http.Request) (*auth.Context, error) {
	tok := r.Header.Get("X-Subject-Token")
	if tok == "" {
		return nil, apiutil.BadRequest("Expecting to find X-Subject-Token in the request headers.")
	}
	return a.svc.validateSubject(r.Context(), tok)
}

func (a *API) tokenRule(r *http.Request, rule string) (*auth.Context, error) {
	sub, err := a.subject(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorize(r, rule, map[string]string{"user_id": sub.UserID}); err != nil {
		return nil, err
	}
	return sub, nil
}

func (a *API) validateToken(r *http.Request) (*apiutil.Response, error) {
	sub, err := a.tokenRule(r, "identity:validate_token")
	if err != nil {
		return nil, err
	}
	body, err := a.tokenBody(r, sub, !r.URL.Query().Has("nocatalog"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, body).SetHeader("X-Subject-Token", sub.Token), nil
}

func (a *API) checkToken(r *http.Request) (*apiutil.Response, error) {
	sub, err := a.tokenRule(r, "identity:check_token")
	if err != nil {
		return nil, err
	}
	return (&apiutil.Response{Status: 200}).SetHeader("X-Subject-Token", sub.Token), nil
}

func (a *API) revokeToken(r *http.Request) (*apiutil.Response, error) {
	sub, err := a.tokenRule(r, "identity:revoke_token")
	if err != nil {
		return nil, err
	}
	if err := a.svc.RevokeToken(r.Context(), sub); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// tokenBody renders a token the way Keystone does.
func (a *API) tokenBody(r *http.Request, c *auth.Context, withCatalog bool) (map[string]any, error) {
	t := map[string]any{
		"methods":    c.Methods,
		"audit_ids":  c.AuditIDs,
		"issued_at":  c.IssuedAt.UTC().Format(timeFormat),
		"expires_at": c.ExpiresAt.UTC().Format(timeFormat),
		"user": map[string]any{
			"id": c.UserID, "name": c.UserName, "password_expires_at": nil,
			"domain": map[string]any{"id": c.UserDomainID, "name": c.UserDomainName},
		},
	}
	switch {
	case c.ProjectID != "":
		t["project"] = map[string]any{"id": c.ProjectID, "name": c.ProjectName,
			"domain": map[string]any{"id": c.ProjectDomainID, "name": c.ProjectDomainName}}
		t["is_domain"] = false
	case c.DomainID != "":
		t["domain"] = map[string]any{"id": c.DomainID, "name": c.DomainName}
	case c.System:
		t["system"] = map[string]any{"all": true}
	}
	if c.Scoped() {
		roles := make([]any, 0, len(c.Roles))
		for _, ro := range c.Roles {
			roles = append(roles, map[string]any{"id": ro.ID, "name": ro.Name})
		}
		t["roles"] = roles
		if withCatalog {
			cat, err := a.svc.Catalog(r.Context())
			if err != nil {
				return nil, err
			}
			t["catalog"] = cat
		}
	}
	if c.AppCred != nil {
		acv := map[string]any{"id": c.AppCred.ID, "name": c.AppCred.Name, "restricted": !c.AppCred.Unrestricted}
		if c.AppCred.AccessRules != nil {
			rules := []any{}
			for _, r := range c.AppCred.AccessRules {
				rules = append(rules, map[string]any{"service": r.Service, "path": r.Path, "method": r.Method})
			}
			acv["access_rules"] = rules
		}
		t["application_credential"] = acv
	}
	if c.TrustID != "" {
		tr, err := a.svc.store.GetTrust(r.Context(), c.TrustID)
		if err != nil {
			return nil, err
		}
		t["OS-TRUST:trust"] = map[string]any{"id": tr.ID, "impersonation": tr.Impersonation,
			"trustor_user": map[string]any{"id": tr.TrustorUserID}, "trustee_user": map[string]any{"id": tr.TrusteeUserID},
			"links": map[string]any{"self": base(r) + "/OS-TRUST/trusts/" + tr.ID}}
	}
	return map[string]any{"token": t}, nil
}

func (a *API) authCatalog(r *http.Request) (*apiutil.Response, error) {
	c := caller(r)
	if !c.Scoped() {
		return nil, apiutil.Forbidden("A scoped token is required to view the catalog.")
	}
	cat, err := a.svc.Catalog(r.Context())
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"catalog": cat, "links": listLinks(r)}), nil
}

func (a *API) authProjects(r *http.Request) (*apiutil.Response, error) {
	ps, err := a.svc.UserProjects(r.Context(), caller(r).UserID)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectView(r, p))
	}
	return apiutil.JSON(200, map[string]any{"projects": out, "links": listLinks(r)}), nil
}

func (a *API) authDomains(r *http.Request) (*apiutil.Response, error) {
	ds, err := a.svc.UserDomains(r.Context(), caller(r).UserID)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, domainView(r, d))
	}
	return apiutil.JSON(200, map[string]any{"domains": out, "links": listLinks(r)}), nil
}

func (a *API) authSystem(r *http.Request) (*apiutil.Response, error) {
	ok, err := a.svc.HasSystemRole(r.Context(), caller(r).UserID)
	if err != nil {
		return nil, err
	}
	sys := []any{}
	if ok {
		sys = append(sys, map[string]any{"all": true})
	}
	return apiutil.JSON(200, map[string]any{"system": sys, "links": listLinks(r)}), nil
}

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}
