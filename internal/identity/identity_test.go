package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/identity"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

// env is an identity API on a fresh database, bootstrapped.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	svc   *identity.Service
	admin string // admin token
}

func newEnv(t *testing.T, d *db.DB, cfg identity.Config) *env {
	t.Helper()
	ctx := context.Background()
	enf, err := policy.New(identity.PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 4
	}
	svc := identity.NewService(identity.NewStore(d), cfg, enf, nil)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	identity.NewAPI(svc).Routes().Register(mux)
	srv := httptest.NewServer(apiutil.Middleware(mux, "", discard(), nil))
	t.Cleanup(srv.Close)
	if _, err := svc.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: "s3cret", PublicURL: srv.URL,
		Services: []service.CatalogEntry{{Type: "identity", Name: "keystone", Path: "/v3"}},
	}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, svc: svc}
	e.admin = e.token(passwordAuth("admin", "s3cret", projectScope("admin")), 201)
	return e
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// expect checks status and, for errors, Keystone's error body.
func (e *env) expect(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if status >= 400 {
		er, ok := r.body["error"].(map[string]any)
		if !ok || er["code"] != float64(status) || er["message"] == "" || er["title"] != http.StatusText(status) {
			e.t.Fatalf("bad error body for %d: %s", status, r.raw)
		}
	}
	return r
}

func (e *env) token(auth map[string]any, status int) string {
	e.t.Helper()
	r := e.expect(e.do("POST", "/v3/auth/tokens", "", auth), status)
	return r.header.Get("X-Subject-Token")
}

func passwordAuth(user, pw string, scope any) map[string]any {
	a := map[string]any{"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
		"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": pw}}}}
	if scope != nil {
		a["scope"] = scope
	}
	return map[string]any{"auth": a}
}

func projectScope(name string) map[string]any {
	return map[string]any{"project": map[string]any{"name": name, "domain": map[string]any{"name": "Default"}}}
}

func obj(m map[string]any, k string) map[string]any { v, _ := m[k].(map[string]any); return v }

func TestIdentityFlow(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		adm := e.admin

		// Token body.
		r := e.expect(e.do("GET", "/v3/auth/tokens", adm, nil, "X-Subject-Token", adm), 200)
		tok := obj(r.body, "token")
		if obj(tok, "project")["name"] != "admin" || len(tok["roles"].([]any)) != 3 || len(tok["catalog"].([]any)) != 1 {
			t.Fatalf("token body: %s", r.raw)
		}
		if tok["methods"].([]any)[0] != "password" || obj(tok, "user")["name"] != "admin" {
			t.Fatalf("token body: %s", r.raw)
		}

		// Project, user, grant.
		r = e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "demo", "description": "d"}}), 201)
		pid := obj(r.body, "project")["id"].(string)
		if obj(r.body, "project")["parent_id"] != "default" || obj(r.body, "project")["domain_id"] != "default" {
			t.Fatalf("project: %s", r.raw)
		}
		e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "demo"}}), 409)
		r = e.expect(e.do("POST", "/v3/users", adm, map[string]any{"user": map[string]any{"name": "bob", "password": "pw", "default_project_id": pid, "email": "bob@example.com"}}), 201)
		uid := obj(r.body, "user")["id"].(string)
		if obj(r.body, "user")["email"] != "bob@example.com" || obj(r.body, "user")["password"] != nil {
			t.Fatalf("user: %s", r.raw)
		}
		// No role yet: scoping fails, unscoped works.
		e.token(passwordAuth("bob", "pw", projectScope("demo")), 401)
		unscoped := e.token(passwordAuth("bob", "pw", nil), 201)
		r = e.expect(e.do("GET", "/v3/auth/tokens", unscoped, nil, "X-Subject-Token", unscoped), 200)
		if obj(r.body, "token")["project"] != nil || obj(r.body, "token")["catalog"] != nil {
			t.Fatalf("unscoped token has scope: %s", r.raw)
		}
		roles := e.expect(e.do("GET", "/v3/roles?name=member", adm, nil), 200).body["roles"].([]any)
		member := roles[0].(map[string]any)["id"].(string)
		e.expect(e.do("PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+member, adm, nil), 204)
		e.expect(e.do("HEAD", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+member, adm, nil), 204)

		// Default project scoping and implied roles.
		bob := e.token(passwordAuth("bob", "pw", nil), 201)
		r = e.expect(e.do("GET", "/v3/auth/tokens", bob, nil, "X-Subject-Token", bob), 200)
		tok = obj(r.body, "token")
		if obj(tok, "project")["id"] != pid || len(tok["roles"].([]any)) != 2 {
			t.Fatalf("bob token: %s", r.raw)
		}
		// Rescope by token keeps the audit chain.
		re := e.token(map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": unscoped}},
			"scope": map[string]any{"project": map[string]any{"id": pid}}}}, 201)
		r = e.expect(e.do("GET", "/v3/auth/tokens", re, nil, "X-Subject-Token", re), 200)
		if ids := obj(r.body, "token")["audit_ids"].([]any); len(ids) != 2 {
			t.Fatalf("rescoped audit ids: %s", r.raw)
		}

		// Policy: a member cannot create projects or list users, but sees itself.
		e.expect(e.do("POST", "/v3/projects", bob, map[string]any{"project": map[string]any{"name": "x"}}), 403)
		e.expect(e.do("GET", "/v3/users", bob, nil), 403)
		e.expect(e.do("GET", "/v3/users/"+uid, bob, nil), 200)
		if ps := e.expect(e.do("GET", "/v3/auth/projects", bob, nil), 200).body["projects"].([]any); len(ps) != 1 {
			t.Fatalf("auth/projects: %v", ps)
		}

		// Application credential: secret once, auth with it, scope refused.
		r = e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", bob, map[string]any{"application_credential": map[string]any{"name": "ci", "description": nil}}), 201)
		ac := obj(r.body, "application_credential")
		acID, secret := ac["id"].(string), ac["secret"].(string)
		if secret == "" || ac["project_id"] != pid {
			t.Fatalf("app cred: %s", r.raw)
		}
		if g := e.expect(e.do("GET", "/v3/users/"+uid+"/application_credentials/"+acID, bob, nil), 200); obj(g.body, "application_credential")["secret"] != nil {
			t.Fatal("secret shown twice")
		}
		e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", bob, map[string]any{"application_credential": map[string]any{"name": "ci"}}), 409)
		acAuth := func(secret string, scope any) map[string]any {
			a := map[string]any{"identity": map[string]any{"methods": []string{"application_credential"},
				"application_credential": map[string]any{"id": acID, "secret": secret}}}
			if scope != nil {
				a["scope"] = scope
			}
			return map[string]any{"auth": a}
		}
		acTok := e.token(acAuth(secret, nil), 201)
		r = e.expect(e.do("GET", "/v3/auth/tokens", acTok, nil, "X-Subject-Token", acTok), 200)
		if obj(obj(r.body, "token"), "application_credential")["id"] != acID {
			t.Fatalf("app cred token: %s", r.raw)
		}
		e.token(acAuth("wrong", nil), 401)
		e.token(acAuth(secret, projectScope("demo")), 401)
		// A restricted app cred cannot make another.
		e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", acTok, map[string]any{"application_credential": map[string]any{"name": "x"}}), 403)

		// Revocation is immediate.
		e.expect(e.do("DELETE", "/v3/auth/tokens", bob, nil, "X-Subject-Token", bob), 204)
		e.expect(e.do("GET", "/v3/auth/tokens", adm, nil, "X-Subject-Token", bob), 404)
		e.expect(e.do("GET", "/v3/users/"+uid, bob, nil), 401)
		// Removing the role invalidates scoped tokens at once.
		bob2 := e.token(passwordAuth("bob", "pw", projectScope("demo")), 201)
		e.expect(e.do("DELETE", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+member, adm, nil), 204)
		e.expect(e.do("GET", "/v3/users/"+uid, bob2, nil), 401)
		e.expect(e.do("GET", "/v3/auth/tokens", adm, nil, "X-Subject-Token", acTok), 404)
		// Disabling a user invalidates its tokens.
		e.expect(e.do("PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+member, adm, nil), 204)
		bob3 := e.token(passwordAuth("bob", "pw", projectScope("demo")), 201)
		e.expect(e.do("PATCH", "/v3/users/"+uid, adm, map[string]any{"user": map[string]any{"enabled": false}}), 200)
		e.expect(e.do("GET", "/v3/users/"+uid, bob3, nil), 401)
		r = e.expect(e.do("POST", "/v3/auth/tokens", "", passwordAuth("bob", "pw", nil)), 401)
		if !strings.Contains(r.raw, "disabled") {
			t.Fatalf("disabled message: %s", r.raw)
		}
		e.expect(e.do("PATCH", "/v3/users/"+uid, adm, map[string]any{"user": map[string]any{"enabled": true}}), 200)

		// Self-service password change revokes old tokens.
		bob4 := e.token(passwordAuth("bob", "pw", projectScope("demo")), 201)
		e.expect(e.do("POST", "/v3/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"original_password": "nope", "password": "pw2"}}), 401)
		e.expect(e.do("POST", "/v3/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"original_password": "pw", "password": "pw2"}}), 204)
		time.Sleep(2 * time.Millisecond)
		e.expect(e.do("GET", "/v3/users/"+uid, bob4, nil), 401)
		e.token(passwordAuth("bob", "pw2", projectScope("demo")), 201)

		// Domain delete needs disabling first; cascade removes contents.
		r = e.expect(e.do("POST", "/v3/domains", adm, map[string]any{"domain": map[string]any{"name": "d2"}}), 201)
		did := obj(r.body, "domain")["id"].(string)
		e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "p", "domain_id": did}}), 201)
		e.expect(e.do("DELETE", "/v3/domains/"+did, adm, nil), 403)
		e.expect(e.do("PATCH", "/v3/domains/"+did, adm, map[string]any{"domain": map[string]any{"enabled": false}}), 200)
		e.expect(e.do("DELETE", "/v3/domains/"+did, adm, nil), 204)
		if ps := e.expect(e.do("GET", "/v3/projects?domain_id="+did, adm, nil), 200).body["projects"].([]any); len(ps) != 0 {
			t.Fatalf("cascade left %v", ps)
		}
	})
}

func TestGroupsAndAssignments(t *testing.T) {
	d := dbtest.OpenSQLite(t, identity.Migrations())
	e := newEnv(t, d, identity.Config{})
	adm := e.admin
	pid := obj(e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "p"}}), 201).body, "project")["id"].(string)
	uid := obj(e.expect(e.do("POST", "/v3/users", adm, map[string]any{"user": map[string]any{"name": "u", "password": "pw"}}), 201).body, "user")["id"].(string)
	gid := obj(e.expect(e.do("POST", "/v3/groups", adm, map[string]any{"group": map[string]any{"name": "g"}}), 201).body, "group")["id"].(string)
	reader := e.expect(e.do("GET", "/v3/roles?name=reader", adm, nil), 200).body["roles"].([]any)[0].(map[string]any)["id"].(string)
	e.expect(e.do("PUT", "/v3/groups/"+gid+"/users/"+uid, adm, nil), 204)
	e.expect(e.do("HEAD", "/v3/groups/"+gid+"/users/"+uid, adm, nil), 204)
	e.expect(e.do("PUT", "/v3/projects/"+pid+"/groups/"+gid+"/roles/"+reader, adm, nil), 204)
	// Role through the group.
	tok := e.token(passwordAuth("u", "pw", projectScope("p")), 201)
	r := e.expect(e.do("GET", "/v3/role_assignments?effective&include_names&user.id="+uid, adm, nil), 200)
	as := r.body["role_assignments"].([]any)
	if len(as) != 1 {
		t.Fatalf("effective assignments: %s", r.raw)
	}
	a0 := as[0].(map[string]any)
	if obj(a0, "user")["name"] != "u" || obj(obj(a0, "scope"), "project")["name"] != "p" || obj(a0, "links")["membership"] == nil {
		t.Fatalf("assignment view: %s", r.raw)
	}
	// Leaving the group removes the role.
	e.expect(e.do("DELETE", "/v3/groups/"+gid+"/users/"+uid, adm, nil), 204)
	e.expect(e.do("GET", "/v3/auth/catalog", tok, nil), 401)
	e.expect(e.do("DELETE", "/v3/groups/"+gid+"/users/"+uid, adm, nil), 404)
	// Domain-inherited grants reach projects.
	e.expect(e.do("PUT", "/v3/OS-INHERIT/domains/default/users/"+uid+"/roles/"+reader+"/inherited_to_projects", adm, nil), 204)
	e.token(passwordAuth("u", "pw", projectScope("p")), 201)
	// Implied role cycle refused.
	member := e.expect(e.do("GET", "/v3/roles?name=member", adm, nil), 200).body["roles"].([]any)[0].(map[string]any)["id"].(string)
	e.expect(e.do("PUT", "/v3/roles/"+reader+"/implies/"+member, adm, nil), 400)
	// System scope.
	r = e.expect(e.do("POST", "/v3/auth/tokens", "", passwordAuth("admin", "s3cret", map[string]any{"system": map[string]any{"all": true}})), 201)
	if obj(obj(r.body, "token"), "system")["all"] != true {
		t.Fatalf("system token: %s", r.raw)
	}
	e.token(passwordAuth("u", "pw", map[string]any{"system": map[string]any{"all": true}}), 401)
}

func TestBadInput(t *testing.T) {
	d := dbtest.OpenSQLite(t, identity.Migrations())
	e := newEnv(t, d, identity.Config{LockoutAttempts: 3, LockoutDuration: time.Hour})
	adm := e.admin
	adminID := obj(obj(e.expect(e.do("GET", "/v3/auth/tokens", adm, nil, "X-Subject-Token", adm), 200).body, "token"), "user")["id"].(string)
	cases := []struct {
		name, method, path string
		token              string
		body               any
		status             int
	}{
		{"malformed json", "POST", "/v3/projects", adm, `{"project": `, 400},
		{"empty body", "POST", "/v3/projects", adm, ``, 400},
		{"wrong type", "POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": 7}}, 400},
		{"name too long", "POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": strings.Repeat("x", 65)}}, 400},
		{"missing wrapper", "POST", "/v3/users", adm, map[string]any{"name": "x"}, 400},
		{"unknown domain", "POST", "/v3/users", adm, map[string]any{"user": map[string]any{"name": "x", "domain_id": "nope"}}, 400},
		{"unknown project", "GET", "/v3/projects/nope", adm, nil, 404},
		{"unknown user", "PATCH", "/v3/users/nope", adm, map[string]any{"user": map[string]any{"name": "y"}}, 404},
		{"no token", "GET", "/v3/projects", "", nil, 401},
		{"garbage token", "GET", "/v3/projects", "garbage", nil, 401},
		{"bad subject", "GET", "/v3/auth/tokens", adm, nil, 400},
		{"wrong method", "PUT", "/v3/projects", adm, nil, 405},
		{"unknown path", "GET", "/v3/nothing-here", adm, nil, 404},
		{"bad interface", "POST", "/v3/endpoints", adm, map[string]any{"endpoint": map[string]any{"interface": "x", "url": "http://a", "service_id": "s"}}, 400},
		{"app cred unknown field", "POST", "/v3/users/" + adminID + "/application_credentials", adm, map[string]any{"application_credential": map[string]any{"name": "a", "bogus": 1}}, 400},
		{"app cred for another user", "POST", "/v3/users/x/application_credentials", adm, map[string]any{"application_credential": map[string]any{"name": "a"}}, 403},
		{"app cred expired", "POST", "/v3/users/" + adminID + "/application_credentials", adm, map[string]any{"application_credential": map[string]any{"name": "a", "expires_at": "2001-01-01T00:00:00"}}, 400},
		{"auth without methods", "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{}}}}, 400},
		{"auth unknown method", "POST", "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"totp"}}}}, 401},
		{"scope to unknown project", "POST", "/v3/auth/tokens", "", passwordAuth("admin", "s3cret", projectScope("nope")), 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			e.expect(e.do(c.method, c.path, c.token, c.body), c.status)
		})
	}
	e.t = t
	// Lockout after repeated failures, even with the right password.
	e.expect(e.do("POST", "/v3/users", adm, map[string]any{"user": map[string]any{"name": "lock", "password": "right"}}), 201)
	for i := 0; i < 3; i++ {
		e.token(passwordAuth("lock", "wrong", nil), 401)
	}
	r := e.expect(e.do("POST", "/v3/auth/tokens", "", passwordAuth("lock", "right", nil)), 401)
	if !strings.Contains(r.raw, "locked") {
		t.Fatalf("want locked: %s", r.raw)
	}
	// The admin is untouched by other users' failures.
	e.token(passwordAuth("admin", "s3cret", projectScope("admin")), 201)
	// Nothing half-written: the failed creates left only bootstrap data.
	ps := e.expect(e.do("GET", "/v3/projects", adm, nil), 200).body["projects"].([]any)
	if len(ps) != 1 {
		t.Fatalf("projects after bad input: %v", ps)
	}
}

func TestTokenExpiry(t *testing.T) {
	d := dbtest.OpenSQLite(t, identity.Migrations())
	e := newEnv(t, d, identity.Config{TokenTTL: 1500 * time.Millisecond})
	tok := e.token(passwordAuth("admin", "s3cret", projectScope("admin")), 201)
	e.expect(e.do("GET", "/v3/auth/catalog", tok, nil), 200)
	time.Sleep(1600 * time.Millisecond)
	e.expect(e.do("GET", "/v3/auth/catalog", tok, nil), 401)
}

func TestBootstrapIdempotent(t *testing.T) {
	d := dbtest.OpenSQLite(t, identity.Migrations())
	e := newEnv(t, d, identity.Config{})
	ctx := context.Background()
	res, err := e.svc.Bootstrap(ctx, identity.BootstrapConfig{PublicURL: "http://other:5000",
		Services: []service.CatalogEntry{{Type: "identity", Name: "keystone", Path: "/v3"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.GeneratedPassword != "" {
		t.Fatal("second bootstrap generated a password")
	}
	eps := e.expect(e.do("GET", "/v3/endpoints", e.admin, nil), 200).body["endpoints"].([]any)
	if len(eps) != 3 || eps[0].(map[string]any)["url"] != "http://other:5000/v3" {
		t.Fatalf("endpoints after re-bootstrap: %v", eps)
	}
	// The old password still works.
	e.token(passwordAuth("admin", "s3cret", projectScope("admin")), 201)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestKeystoneExtras(t *testing.T) {
	d := dbtest.OpenSQLite(t, identity.Migrations())
	e := newEnv(t, d, identity.Config{})
	adm := e.admin
	// Name operators and tag filters.
	pid := obj(e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "alpha-one", "tags": []string{"a", "b"}}}), 201).body, "project")["id"].(string)
	e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "beta", "tags": []string{"b"}}}), 201)
	for q, want := range map[string]int{
		"name__contains=pha": 1, "name__istartswith=ALP": 1, "name__endswith=zzz": 0,
		"tags=a,b": 1, "tags=b": 2, "tags-any=a,c": 1, "not-tags-any=a": 2, "not-tags=a,b": 2,
	} {
		ps := e.expect(e.do("GET", "/v3/projects?"+q, adm, nil), 200).body["projects"].([]any)
		if len(ps) != want {
			t.Errorf("%s: %d projects, want %d", q, len(ps), want)
		}
	}
	// Tag API.
	e.expect(e.do("PUT", "/v3/projects/"+pid+"/tags/c", adm, nil), 201)
	e.expect(e.do("HEAD", "/v3/projects/"+pid+"/tags/c", adm, nil), 204)
	r := e.expect(e.do("PUT", "/v3/projects/"+pid+"/tags", adm, map[string]any{"tags": []string{"x", "y"}}), 200)
	if len(r.body["tags"].([]any)) != 2 {
		t.Fatalf("tags: %s", r.raw)
	}
	e.expect(e.do("GET", "/v3/projects/"+pid+"/tags/c", adm, nil), 404)
	e.expect(e.do("DELETE", "/v3/projects/"+pid+"/tags", adm, nil), 204)
	// A project acting as a domain.
	r = e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "dom", "is_domain": true}}), 201)
	did := obj(r.body, "project")["id"].(string)
	if obj(r.body, "project")["is_domain"] != true {
		t.Fatalf("is_domain: %s", r.raw)
	}
	e.expect(e.do("GET", "/v3/domains/"+did, adm, nil), 200)
	e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "in-dom", "domain_id": did}}), 201)
	if ps := e.expect(e.do("GET", "/v3/projects?is_domain=true", adm, nil), 200).body["projects"].([]any); len(ps) != 2 {
		t.Fatalf("is_domain list: %v", ps)
	}
	// Inheritance from a parent project to its children, not itself.
	child := obj(e.expect(e.do("POST", "/v3/projects", adm, map[string]any{"project": map[string]any{"name": "child", "parent_id": pid}}), 201).body, "project")["id"].(string)
	uid := obj(e.expect(e.do("POST", "/v3/users", adm, map[string]any{"user": map[string]any{"name": "inh", "password": "pw"}}), 201).body, "user")["id"].(string)
	reader := e.expect(e.do("GET", "/v3/roles?name=reader", adm, nil), 200).body["roles"].([]any)[0].(map[string]any)["id"].(string)
	e.expect(e.do("PUT", "/v3/OS-INHERIT/projects/"+pid+"/users/"+uid+"/roles/"+reader+"/inherited_to_projects", adm, nil), 204)
	scope := func(id string) map[string]any { return map[string]any{"project": map[string]any{"id": id}} }
	e.token(passwordAuth("inh", "pw", scope(child)), 201)
	e.token(passwordAuth("inh", "pw", scope(pid)), 401)
	// include_subtree lists the assignments below a project.
	e.expect(e.do("PUT", "/v3/projects/"+child+"/users/"+uid+"/roles/"+reader, adm, nil), 204)
	as := e.expect(e.do("GET", "/v3/role_assignments?scope.project.id="+pid+"&include_subtree=true", adm, nil), 200).body["role_assignments"].([]any)
	if len(as) != 2 {
		t.Fatalf("subtree assignments: %v", as)
	}
	// Extra attributes survive updates of every resource.
	sid := obj(e.expect(e.do("POST", "/v3/services", adm, map[string]any{"service": map[string]any{"type": "x"}}), 201).body, "service")["id"].(string)
	eid := obj(e.expect(e.do("POST", "/v3/endpoints", adm, map[string]any{"endpoint": map[string]any{"service_id": sid, "interface": "public", "url": "http://x"}}), 201).body, "endpoint")["id"].(string)
	r = e.expect(e.do("PATCH", "/v3/endpoints/"+eid, adm, map[string]any{"endpoint": map[string]any{"description": "updated"}}), 200)
	if obj(r.body, "endpoint")["description"] != "updated" {
		t.Fatalf("endpoint extra: %s", r.raw)
	}
}
