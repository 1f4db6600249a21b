package e2e

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// TestIdentityGophercloud walks the life of a project member with
// gophercloud: admin creates the project, user and grant; the user makes
// an application credential; both authenticate, read the catalog, and a
// revoked token stops working.
func TestIdentityGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	admin := k.adminIdentity(t, ctx)

	proj, err := projects.Create(ctx, admin, projects.CreateOpts{
		Name: "e2e-project", DomainID: "default", Description: "made by e2e",
	}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	if proj.ID == "" || proj.Name != "e2e-project" || proj.DomainID != "default" || !proj.Enabled {
		t.Errorf("created project = %+v", proj)
	}

	const userPassword = "correct horse battery staple"
	enabled := true
	user, err := users.Create(ctx, admin, users.CreateOpts{
		Name: "e2e-user", DomainID: "default", Password: userPassword,
		DefaultProjectID: proj.ID, Enabled: &enabled,
	}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	if user.ID == "" || user.DefaultProjectID != proj.ID {
		t.Errorf("created user = %+v", user)
	}

	member := roleID(t, ctx, admin, "member")
	if err := roles.Assign(ctx, admin, member, roles.AssignOpts{UserID: user.ID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatalf("grant member: %v", err)
	}

	// The user, by name and password, scoped to the project.
	userProv, err := k.Authenticate(ctx, gophercloud.AuthOptions{
		Username: "e2e-user", Password: userPassword, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectID: proj.ID},
	})
	if err != nil {
		t.Fatalf("authenticate as the user: %v", err)
	}
	userTok := authToken(t, userProv)
	checkTokenScope(t, "user token", userTok, user.ID, proj.ID, "member", "reader")
	userID := identityClient(t, userProv)

	ac, err := applicationcredentials.Create(ctx, userID, user.ID, applicationcredentials.CreateOpts{
		Name: "e2e-appcred", Description: "for e2e",
	}).Extract()
	if err != nil {
		t.Fatalf("create application credential: %v", err)
	}
	if ac.ID == "" || ac.Secret == "" || ac.ProjectID != proj.ID || ac.Unrestricted {
		t.Errorf("created application credential = %+v", ac)
	}
	if !slices.ContainsFunc(ac.Roles, func(r applicationcredentials.Role) bool { return r.Name == "member" }) {
		t.Errorf("application credential roles = %+v, want member among them", ac.Roles)
	}
	got, err := applicationcredentials.Get(ctx, userID, user.ID, ac.ID).Extract()
	if err != nil {
		t.Fatalf("get application credential: %v", err)
	}
	if got.Secret != "" || got.Name != ac.Name {
		t.Errorf("application credential read back = %+v, want the same without its secret", got)
	}

	// The application credential, by id and by name+user.
	acProv, err := k.Authenticate(ctx, gophercloud.AuthOptions{
		ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret,
	})
	if err != nil {
		t.Fatalf("authenticate with the application credential: %v", err)
	}
	acTok := authToken(t, acProv)
	checkTokenScope(t, "application credential token", acTok, user.ID, proj.ID, "member")
	var withAC struct { // ExtractInto unwraps "token"
		Methods []string `json:"methods"`
		AppCred struct {
			ID         string `json:"id"`
			Restricted bool   `json:"restricted"`
		} `json:"application_credential"`
	}
	if err := acTok.ExtractInto(&withAC); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(withAC.Methods, []string{"application_credential"}) || withAC.AppCred.ID != ac.ID || !withAC.AppCred.Restricted {
		t.Errorf("application credential token: methods %v, application_credential %+v", withAC.Methods, withAC.AppCred)
	}
	if _, err := k.Authenticate(ctx, gophercloud.AuthOptions{
		ApplicationCredentialName: "e2e-appcred", ApplicationCredentialSecret: ac.Secret,
		Username: "e2e-user", DomainName: "Default",
	}); err != nil {
		t.Errorf("authenticate with the application credential by name: %v", err)
	}
	_, err = k.Authenticate(ctx, gophercloud.AuthOptions{
		ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret + "x",
	})
	checkKeystoneError(t, "application credential with a wrong secret", err, 401, "The request you have made requires authentication.")

	// The catalog, as the application credential sees it.
	pages, err := catalog.List(identityClient(t, acProv)).AllPages(ctx)
	if err != nil {
		t.Fatalf("list catalog: %v", err)
	}
	entries, err := catalog.ExtractServiceCatalog(pages)
	if err != nil {
		t.Fatal(err)
	}
	checkIdentityInCatalog(t, "GET /v3/auth/catalog", entries, k.URL+"/v3")
	tokCat, err := acTok.ExtractServiceCatalog()
	if err != nil {
		t.Fatal(err)
	}
	checkIdentityInCatalog(t, "token catalog", tokCat.Entries, k.URL+"/v3")

	// Validation of the user's token by the admin, then revocation.
	token := userProv.Token()
	res := tokens.Get(ctx, admin, token)
	vu, err := res.ExtractUser()
	if err != nil {
		t.Fatalf("validate token: %v", err)
	}
	vp, err := res.ExtractProject()
	if err != nil {
		t.Fatal(err)
	}
	if vu.ID != user.ID || vp.ID != proj.ID {
		t.Errorf("validated token: user %+v project %+v, want %s on %s", vu, vp, user.ID, proj.ID)
	}
	if subj := res.Header.Get("X-Subject-Token"); subj != token {
		t.Errorf("validate: X-Subject-Token = %q, want the token validated", subj)
	}
	if ok, err := tokens.Validate(ctx, admin, token); err != nil || !ok {
		t.Errorf("HEAD token = %v, %v; want valid", ok, err)
	}
	// The user can check their own token too.
	if _, err := tokens.Get(ctx, userID, token).ExtractToken(); err != nil {
		t.Errorf("user validates own token: %v", err)
	}

	if err := tokens.Revoke(ctx, admin, token).Err; err != nil {
		t.Fatalf("revoke token: %v", err)
	}
	_, err = tokens.Get(ctx, admin, token).ExtractToken()
	checkKeystoneError(t, "validate a revoked token", err, 404, "")
	if ok, err := tokens.Validate(ctx, admin, token); err != nil || ok {
		t.Errorf("HEAD revoked token = %v, %v; want not valid", ok, err)
	}
	_, err = projects.Get(ctx, k.tokenClient(t, token), proj.ID).Extract()
	checkKeystoneError(t, "API call with a revoked token", err, 401, "The request you have made requires authentication.")
	// Revocation is per token: the application credential's still works.
	if _, err := projects.Get(ctx, k.tokenClient(t, acProv.Token()), proj.ID).Extract(); err != nil {
		t.Errorf("application credential token after another token's revocation: %v", err)
	}
}

// TestIdentityErrors checks status codes and Keystone's error bodies on
// the paths clients hit most.
func TestIdentityErrors(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)

	wrong := k.AdminAuth()
	wrong.Password = "not-the-password"
	_, err := k.Authenticate(ctx, wrong)
	checkKeystoneError(t, "wrong password", err, 401, "The request you have made requires authentication.")
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) && ue.ResponseHeader.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong password: no WWW-Authenticate header")
	}
	unknown := k.AdminAuth()
	unknown.Username = "nobody"
	_, err = k.Authenticate(ctx, unknown)
	checkKeystoneError(t, "unknown user", err, 401, "The request you have made requires authentication.")

	admin := k.adminIdentity(t, ctx)
	if _, err := projects.Create(ctx, admin, projects.CreateOpts{Name: "twice", DomainID: "default"}).Extract(); err != nil {
		t.Fatalf("create project: %v", err)
	}
	_, err = projects.Create(ctx, admin, projects.CreateOpts{Name: "twice", DomainID: "default"}).Extract()
	checkKeystoneError(t, "duplicate project name", err, 409, "Conflict occurred attempting to store project - …")

	_, err = projects.Get(ctx, admin, "0123456789abcdef0123456789abcdef").Extract()
	checkKeystoneError(t, "unknown project", err, 404, "Could not find project: 0123456789abcdef0123456789abcdef.")

	tok := admin.Token()
	for _, tc := range []struct{ name, body string }{
		{"truncated JSON", `{"project": {"name": "x"`},
		{"not JSON", `project=x`},
		{"JSON array", `[1, 2]`},
		{"wrong type", `{"project": {"name": 42}}`},
	} {
		r := k.do(t, ctx, "POST", "/v3/projects", tok, tc.body)
		checkKeystoneBody(t, "create project with "+tc.name, r.Status, r.Header, r.Body, 400, "")
	}
	r := k.do(t, ctx, "POST", "/v3/auth/tokens", "", `{"auth": {"identity": `)
	checkKeystoneBody(t, "malformed auth request", r.Status, r.Header, r.Body, 400, "")

	// A project member may not create projects.
	proj, err := projects.Create(ctx, admin, projects.CreateOpts{Name: "members-only", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	u, err := users.Create(ctx, admin, users.CreateOpts{Name: "plain-member", DomainID: "default", Password: "pw-plain"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := roles.Assign(ctx, admin, roleID(t, ctx, admin, "member"), roles.AssignOpts{UserID: u.ID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	mp, err := k.Authenticate(ctx, gophercloud.AuthOptions{
		UserID: u.ID, Password: "pw-plain", Scope: &gophercloud.AuthScope{ProjectID: proj.ID},
	})
	if err != nil {
		t.Fatalf("authenticate as member: %v", err)
	}
	_, err = projects.Create(ctx, identityClient(t, mp), projects.CreateOpts{Name: "not-allowed", DomainID: "default"}).Extract()
	checkKeystoneError(t, "member creates a project", err, 403, "You are not authorized to perform the requested action: identity:create_project.")

	// No token at all, and a token that is garbage.
	r = k.do(t, ctx, "GET", "/v3/projects", "", "")
	checkKeystoneBody(t, "no token", r.Status, r.Header, r.Body, 401, "The request you have made requires authentication.")
	r = k.do(t, ctx, "GET", "/v3/projects", "not-a-token", "")
	checkKeystoneBody(t, "garbage token", r.Status, r.Header, r.Body, 401, "The request you have made requires authentication.")
	_, err = tokens.Get(ctx, admin, "not-a-token").ExtractToken()
	checkKeystoneError(t, "validate a garbage token", err, 404, "")
}

func roleID(t *testing.T, ctx context.Context, c *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := roles.List(c, roles.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list roles: %v", err)
	}
	rs, err := roles.ExtractRoles(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("roles named %s: %+v, want one", name, rs)
	}
	return rs[0].ID
}

// authToken returns the token body a provider authenticated with.
func authToken(t *testing.T, p *gophercloud.ProviderClient) tokens.CreateResult {
	t.Helper()
	r, ok := p.GetAuthResult().(tokens.CreateResult)
	if !ok {
		t.Fatalf("auth result is %T, want a v3 token", p.GetAuthResult())
	}
	return r
}

// checkTokenScope checks a token's user, project and that it carries the
// wanted roles (it may carry more).
func checkTokenScope(t *testing.T, what string, r tokens.CreateResult, userID, projectID string, wantRoles ...string) {
	t.Helper()
	u, err := r.ExtractUser()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	p, err := r.ExtractProject()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if u.ID != userID || p == nil || p.ID != projectID {
		t.Errorf("%s: user %+v project %+v, want user %s on project %s", what, u, p, userID, projectID)
	}
	rs, err := r.ExtractRoles()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, want := range wantRoles {
		if !slices.ContainsFunc(rs, func(r tokens.Role) bool { return r.Name == want }) {
			t.Errorf("%s: roles %+v, want %s among them", what, rs, want)
		}
	}
	if slices.ContainsFunc(rs, func(r tokens.Role) bool { return r.Name == "admin" }) {
		t.Errorf("%s: roles %+v include admin", what, rs)
	}
}

// checkIdentityInCatalog checks that the catalog has the identity service
// with public, internal and admin endpoints at url in RegionOne.
func checkIdentityInCatalog(t *testing.T, what string, entries []tokens.CatalogEntry, url string) {
	t.Helper()
	for _, e := range entries {
		if e.Type != "identity" {
			continue
		}
		ifaces := map[string]bool{}
		for _, ep := range e.Endpoints {
			if ep.URL != url || ep.RegionID != "RegionOne" || ep.Region != "RegionOne" {
				t.Errorf("%s: identity endpoint %+v, want %s in RegionOne", what, ep, url)
			}
			ifaces[ep.Interface] = true
		}
		if !ifaces["public"] || !ifaces["internal"] || !ifaces["admin"] {
			t.Errorf("%s: identity endpoints %+v, want public, internal and admin", what, e.Endpoints)
		}
		return
	}
	t.Errorf("%s: no identity service in %+v", what, entries)
}
