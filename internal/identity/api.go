package identity

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

// API is the Keystone v3 HTTP API, served at the root of the process:
// version discovery at / and /v3, everything else under /v3/.
type API struct {
	svc *Service
}

// NewAPI returns the HTTP API of svc.
func NewAPI(svc *Service) *API { return &API{svc: svc} }

// Catalog implements service.API.
func (a *API) Catalog() []service.CatalogEntry {
	return []service.CatalogEntry{{Type: "identity", Name: "keystone", Path: "/v3"}}
}

// Run implements service.API.
func (a *API) Run(ctx context.Context) error { return a.svc.Run(ctx) }

// Routes implements service.API.
func (a *API) Routes() *apiutil.Service {
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h}
	}
	pub := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h, Public: true}
	}
	return &apiutil.Service{
		Name:   "identity",
		Prefix: "/v3/",
		Fault:  apiutil.KeystoneFault,
		Auth:   a.svc,
		Log:    a.svc.log,
		Routes: routes{
			pub("GET", "/{$}", a.versions),
			pub("GET", "/v3", a.version),
			pub("GET", "/v3/{$}", a.version),

			pub("POST", "/v3/auth/tokens", a.issueToken),
			rt("GET", "/v3/auth/tokens", a.validateToken),
			rt("HEAD", "/v3/auth/tokens", a.checkToken),
			rt("DELETE", "/v3/auth/tokens", a.revokeToken),
			rt("GET", "/v3/auth/catalog", a.authCatalog),
			rt("GET", "/v3/auth/projects", a.authProjects),
			rt("GET", "/v3/auth/domains", a.authDomains),
			rt("GET", "/v3/auth/system", a.authSystem),

			rt("GET", "/v3/domains", a.listDomains),
			rt("POST", "/v3/domains", a.createDomain),
			rt("GET", "/v3/domains/{domain_id}", a.getDomain),
			rt("PATCH", "/v3/domains/{domain_id}", a.updateDomain),
			rt("DELETE", "/v3/domains/{domain_id}", a.deleteDomain),

			rt("GET", "/v3/projects", a.listProjects),
			rt("POST", "/v3/projects", a.createProject),
			rt("GET", "/v3/projects/{project_id}", a.getProject),
			rt("PATCH", "/v3/projects/{project_id}", a.updateProject),
			rt("DELETE", "/v3/projects/{project_id}", a.deleteProject),
			rt("GET", "/v3/projects/{project_id}/tags", a.projectTags),
			rt("PUT", "/v3/projects/{project_id}/tags", a.setProjectTags),
			rt("DELETE", "/v3/projects/{project_id}/tags", a.setProjectTags),
			rt("GET", "/v3/projects/{project_id}/tags/{tag}", a.projectTag),
			rt("HEAD", "/v3/projects/{project_id}/tags/{tag}", a.projectTag),
			rt("PUT", "/v3/projects/{project_id}/tags/{tag}", a.projectTag),
			rt("DELETE", "/v3/projects/{project_id}/tags/{tag}", a.projectTag),

			rt("GET", "/v3/users", a.listUsers),
			rt("POST", "/v3/users", a.createUser),
			rt("GET", "/v3/users/{user_id}", a.getUser),
			rt("PATCH", "/v3/users/{user_id}", a.updateUser),
			rt("DELETE", "/v3/users/{user_id}", a.deleteUser),
			pub("POST", "/v3/users/{user_id}/password", a.changePassword),
			rt("GET", "/v3/users/{user_id}/projects", a.userProjects),
			rt("GET", "/v3/users/{user_id}/groups", a.userGroups),

			rt("GET", "/v3/groups", a.listGroups),
			rt("POST", "/v3/groups", a.createGroup),
			rt("GET", "/v3/groups/{group_id}", a.getGroup),
			rt("PATCH", "/v3/groups/{group_id}", a.updateGroup),
			rt("DELETE", "/v3/groups/{group_id}", a.deleteGroup),
			rt("GET", "/v3/groups/{group_id}/users", a.groupUsers),
			rt("PUT", "/v3/groups/{group_id}/users/{user_id}", a.addGroupUser),
			rt("HEAD", "/v3/groups/{group_id}/users/{user_id}", a.checkGroupUser),
			rt("DELETE", "/v3/groups/{group_id}/users/{user_id}", a.removeGroupUser),

			rt("GET", "/v3/roles", a.listRoles),
			rt("POST", "/v3/roles", a.createRole),
			rt("GET", "/v3/roles/{role_id}", a.getRole),
			rt("PATCH", "/v3/roles/{role_id}", a.updateRole),
			rt("DELETE", "/v3/roles/{role_id}", a.deleteRole),
			rt("GET", "/v3/roles/{role_id}/implies", a.listImplies),
			rt("PUT", "/v3/roles/{role_id}/implies/{implied_id}", a.createImply),
			rt("GET", "/v3/roles/{role_id}/implies/{implied_id}", a.getImply),
			rt("HEAD", "/v3/roles/{role_id}/implies/{implied_id}", a.getImply),
			rt("DELETE", "/v3/roles/{role_id}/implies/{implied_id}", a.deleteImply),
			rt("GET", "/v3/role_inferences", a.listInferences),
			rt("GET", "/v3/role_assignments", a.listAssignments),

			rt("GET", "/v3/projects/{project_id}/users/{actor_id}/roles", a.listGrants(UserProject)),
			rt("GET", "/v3/projects/{project_id}/groups/{actor_id}/roles", a.listGrants(GroupProject)),
			rt("GET", "/v3/domains/{domain_id}/users/{actor_id}/roles", a.listGrants(UserDomain)),
			rt("GET", "/v3/domains/{domain_id}/groups/{actor_id}/roles", a.listGrants(GroupDomain)),
			rt("GET", "/v3/system/users/{actor_id}/roles", a.listGrants(UserSystem)),
			rt("GET", "/v3/system/groups/{actor_id}/roles", a.listGrants(GroupSystem)),

			rt("GET", "/v3/regions", a.listRegions),
			rt("POST", "/v3/regions", a.createRegion),
			rt("GET", "/v3/regions/{region_id}", a.getRegion),
			rt("PUT", "/v3/regions/{region_id}", a.createRegion),
			rt("PATCH", "/v3/regions/{region_id}", a.updateRegion),
			rt("DELETE", "/v3/regions/{region_id}", a.deleteRegion),
			rt("GET", "/v3/services", a.listServices),
			rt("POST", "/v3/services", a.createService),
			rt("GET", "/v3/services/{service_id}", a.getService),
			rt("PATCH", "/v3/services/{service_id}", a.updateService),
			rt("DELETE", "/v3/services/{service_id}", a.deleteService),
			rt("GET", "/v3/endpoints", a.listEndpoints),
			rt("POST", "/v3/endpoints", a.createEndpoint),
			rt("GET", "/v3/endpoints/{endpoint_id}", a.getEndpoint),
			rt("PATCH", "/v3/endpoints/{endpoint_id}", a.updateEndpoint),
			rt("DELETE", "/v3/endpoints/{endpoint_id}", a.deleteEndpoint),

			rt("GET", "/v3/users/{user_id}/application_credentials", a.listAppCreds),
			rt("POST", "/v3/users/{user_id}/application_credentials", a.createAppCred),
			rt("GET", "/v3/users/{user_id}/application_credentials/{cred_id}", a.getAppCred),
			rt("DELETE", "/v3/users/{user_id}/application_credentials/{cred_id}", a.deleteAppCred),
			rt("GET", "/v3/users/{user_id}/access_rules", a.listAccessRules),
			rt("GET", "/v3/users/{user_id}/access_rules/{access_rule_id}", a.getAccessRule),
			rt("DELETE", "/v3/users/{user_id}/access_rules/{access_rule_id}", a.deleteAccessRule),

			rt("GET", "/v3/credentials", a.listCredentials),
			rt("POST", "/v3/credentials", a.createCredential),
			rt("GET", "/v3/credentials/{credential_id}", a.getCredential),
			rt("PATCH", "/v3/credentials/{credential_id}", a.updateCredential),
			rt("DELETE", "/v3/credentials/{credential_id}", a.deleteCredential),
			rt("GET", "/v3/users/{user_id}/credentials/OS-EC2", a.listEC2),
			rt("POST", "/v3/users/{user_id}/credentials/OS-EC2", a.createEC2),
			rt("GET", "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}", a.getEC2),
			rt("DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{credential_id}", a.deleteEC2),
			pub("POST", "/v3/s3tokens", a.s3Tokens),

			rt("GET", "/v3/registered_limits", a.listRegisteredLimits),
			rt("POST", "/v3/registered_limits", a.createRegisteredLimits),
			rt("GET", "/v3/registered_limits/{limit_id}", a.getRegisteredLimit),
			rt("PATCH", "/v3/registered_limits/{limit_id}", a.updateRegisteredLimit),
			rt("DELETE", "/v3/registered_limits/{limit_id}", a.deleteRegisteredLimit),
			rt("GET", "/v3/limits/model", a.limitModel),
			rt("GET", "/v3/limits", a.listLimits),
			rt("POST", "/v3/limits", a.createLimits),
			rt("GET", "/v3/limits/{limit_id}", a.getLimit),
			rt("PATCH", "/v3/limits/{limit_id}", a.updateLimit),
			rt("DELETE", "/v3/limits/{limit_id}", a.deleteLimit),

			rt("GET", "/v3/policies", a.listPolicies),
			rt("POST", "/v3/policies", a.createPolicy),
			rt("GET", "/v3/policies/{policy_id}", a.getPolicy),
			rt("PATCH", "/v3/policies/{policy_id}", a.updatePolicy),
			rt("DELETE", "/v3/policies/{policy_id}", a.deletePolicy),

			rt("GET", "/v3/OS-EP-FILTER/projects/{project_id}/endpoints", a.listProjectEndpoints),
			rt("PUT", "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}", a.addProjectEndpoint),
			rt("GET", "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}", a.checkProjectEndpoint),
			rt("HEAD", "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}", a.checkProjectEndpoint),
			rt("DELETE", "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}", a.removeProjectEndpoint),
			rt("GET", "/v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects", a.listEndpointProjects),

			rt("GET", "/v3/OS-FEDERATION/mappings", a.listMappings),
			rt("PUT", "/v3/OS-FEDERATION/mappings/{mapping_id}", a.createMapping),
			rt("GET", "/v3/OS-FEDERATION/mappings/{mapping_id}", a.getMapping),
			rt("PATCH", "/v3/OS-FEDERATION/mappings/{mapping_id}", a.updateMapping),
			rt("DELETE", "/v3/OS-FEDERATION/mappings/{mapping_id}", a.deleteMapping),

			rt("GET", "/v3/OS-TRUST/trusts", a.listTrusts),
			rt("POST", "/v3/OS-TRUST/trusts", a.createTrust),
			rt("GET", "/v3/OS-TRUST/trusts/{trust_id}", a.getTrust),
			rt("DELETE", "/v3/OS-TRUST/trusts/{trust_id}", a.deleteTrust),
			rt("GET", "/v3/OS-TRUST/trusts/{trust_id}/roles", a.trustRoles),
			rt("GET", "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", a.trustRole),
			rt("HEAD", "/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", a.trustRole),
		}.withGrants(a),
	}
}

type routes []apiutil.Route

// withGrants adds the PUT/HEAD/DELETE grant routes for each target kind.
func (rs routes) withGrants(a *API) []apiutil.Route {
	for _, g := range []struct{ path, kind string }{
		{"/v3/projects/{project_id}/users/{actor_id}/roles/{role_id}", UserProject},
		{"/v3/projects/{project_id}/groups/{actor_id}/roles/{role_id}", GroupProject},
		{"/v3/domains/{domain_id}/users/{actor_id}/roles/{role_id}", UserDomain},
		{"/v3/domains/{domain_id}/groups/{actor_id}/roles/{role_id}", GroupDomain},
		{"/v3/system/users/{actor_id}/roles/{role_id}", UserSystem},
		{"/v3/system/groups/{actor_id}/roles/{role_id}", GroupSystem},
	} {
		rs = append(rs,
			apiutil.Route{Method: "PUT", Path: g.path, Handler: a.grant(g.kind, false)},
			apiutil.Route{Method: "HEAD", Path: g.path, Handler: a.checkGrant(g.kind, false)},
			apiutil.Route{Method: "GET", Path: g.path, Handler: a.checkGrant(g.kind, false)},
			apiutil.Route{Method: "DELETE", Path: g.path, Handler: a.revoke(g.kind, false)},
		)
	}
	for _, g := range []struct{ path, kind string }{
		{"/v3/OS-INHERIT/domains/{domain_id}/users/{actor_id}/roles/{role_id}/inherited_to_projects", UserDomain},
		{"/v3/OS-INHERIT/domains/{domain_id}/groups/{actor_id}/roles/{role_id}/inherited_to_projects", GroupDomain},
		{"/v3/OS-INHERIT/projects/{project_id}/users/{actor_id}/roles/{role_id}/inherited_to_projects", UserProject},
		{"/v3/OS-INHERIT/projects/{project_id}/groups/{actor_id}/roles/{role_id}/inherited_to_projects", GroupProject},
	} {
		rs = append(rs,
			apiutil.Route{Method: "PUT", Path: g.path, Handler: a.grant(g.kind, true)},
			apiutil.Route{Method: "HEAD", Path: g.path, Handler: a.checkGrant(g.kind, true)},
			apiutil.Route{Method: "GET", Path: g.path, Handler: a.checkGrant(g.kind, true)},
			apiutil.Route{Method: "DELETE", Path: g.path, Handler: a.revoke(g.kind, true)},
		)
	}
	return rs
}

// ---- helpers ----

func caller(r *http.Request) *auth.Context { return auth.From(r.Context()) }

// authorize checks rule for the caller against target (flat keys without
// the "target." prefix, which is added here).
func (a *API) authorize(r *http.Request, rule string, target map[string]string) error {
	c := caller(r)
	if c == nil {
		return apiutil.Unauthorized("The request you have made requires authentication.")
	}
	t := make(map[string]string, len(target))
	for k, v := range target {
		t["target."+k] = v
	}
	err := a.svc.policy.Authorize(rule, c.Policy(), t)
	if errors.Is(err, policy.ErrForbidden) {
		return apiutil.Forbidden("You are not authorized to perform the requested action: %s.", rule)
	}
	return err
}

func base(r *http.Request) string { return apiutil.PublicURL(r) + "/v3" }

func selfLink(r *http.Request, kind, id string) map[string]any {
	return map[string]any{"self": base(r) + "/" + kind + "/" + id}
}

func listLinks(r *http.Request) map[string]any {
	self := apiutil.PublicURL(r) + r.URL.Path
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	return map[string]any{"self": self, "previous": nil, "next": nil}
}

func boolQuery(r *http.Request, key string) (*bool, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return nil, nil
	}
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		v := true
		return &v, nil
	case "false", "0", "no", "off":
		v := false
		return &v, nil
	}
	return nil, apiutil.BadRequest("Invalid value %q for %s: expecting a boolean.", s, key)
}

// body decodes a JSON request object that wraps a single key.
func body(r *http.Request, schema *apiutil.Schema, key string) (map[string]any, error) {
	var doc map[string]any
	if err := decodeJSON(r, schema, &doc); err != nil {
		return nil, err
	}
	obj, ok := doc[key].(map[string]any)
	if !ok {
		return nil, apiutil.BadRequest("Expecting to find %s in request body.", key)
	}
	return obj, nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func strPtr(m map[string]any, k string) (*string, bool) {
	v, ok := m[k]
	if !ok {
		return nil, false
	}
	if s, ok := v.(string); ok {
		return &s, true
	}
	return nil, true
}

func boolOr(m map[string]any, k string, def bool) bool {
	if b, ok := m[k].(bool); ok {
		return b
	}
	return def
}

// extras returns the attributes that are not standard ones.
func extras(m map[string]any, known ...string) Extra {
	e := Extra{}
	for k, v := range m {
		skip := false
		for _, kk := range known {
			if k == kk {
				skip = true
				break
			}
		}
		if !skip {
			e[k] = v
		}
	}
	return e
}

func mergeExtras(dst map[string]any, e Extra) {
	for k, v := range e {
		if _, taken := dst[k]; !taken {
			dst[k] = v
		}
	}
}

// ---- version discovery ----

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": base(r) + "/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (a *API) versions(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{versionDoc(r)}}}), nil
}

func (a *API) version(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(200, map[string]any{"version": versionDoc(r)}), nil
}

// errMalformed is Keystone's answer to a body that is not JSON.
var errMalformed = apiutil.BadRequest("Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")

// decodeJSON is apiutil.DecodeJSON with Keystone's wording for bad JSON.
func decodeJSON(r *http.Request, schema *apiutil.Schema, v any) error {
	err := apiutil.DecodeJSON(r, schema, v)
	if errors.Is(err, apiutil.ErrMalformedBody) {
		return errMalformed
	}
	return err
}
