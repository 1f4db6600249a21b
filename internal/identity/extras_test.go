package identity_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/identity"
)

// member creates project "demo" and user "bob" with the member role on it
// and returns bob's id, the project id and a token of bob's on it.
func (e *env) member() (uid, pid, tok string) {
	e.t.Helper()
	r := e.expect(e.do("POST", "/v3/projects", e.admin, map[string]any{"project": map[string]any{"name": "demo"}}), 201)
	pid = obj(r.body, "project")["id"].(string)
	r = e.expect(e.do("POST", "/v3/users", e.admin, map[string]any{"user": map[string]any{"name": "bob", "password": "pw"}}), 201)
	uid = obj(r.body, "user")["id"].(string)
	e.expect(e.do("PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+e.roleID("member"), e.admin, nil), 204)
	return uid, pid, e.token(passwordAuth("bob", "pw", projectScope("demo")), 201)
}

func (e *env) roleID(name string) string {
	e.t.Helper()
	roles := e.expect(e.do("GET", "/v3/roles?name="+name, e.admin, nil), 200).body["roles"].([]any)
	return roles[0].(map[string]any)["id"].(string)
}

func (e *env) adminIDs() (uid, pid string) {
	e.t.Helper()
	tok := obj(e.expect(e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", e.admin), 200).body, "token")
	return obj(tok, "user")["id"].(string), obj(tok, "project")["id"].(string)
}

func hmac256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// s3Sign signs an AWS v4 string to sign the way an S3 client does.
func s3Sign(secret string, now time.Time) (token, signature string) {
	date := now.Format("20060102")
	toSign := "AWS4-HMAC-SHA256\n" + now.Format("20060102T150405Z") + "\n" + date + "/RegionOne/s3/aws4_request\n" + strings.Repeat("ab", 32)
	key := hmac256([]byte("AWS4"+secret), date)
	for _, p := range []string{"RegionOne", "s3", "aws4_request"} {
		key = hmac256(key, p)
	}
	return base64.StdEncoding.EncodeToString([]byte(toSign)), hex.EncodeToString(hmac256(key, toSign))
}

func TestCredentials(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		adminID, adminProject := e.adminIDs()
		uid, pid, bob := e.member()

		blob := `{"access":"181920","secret":"secretKey"}`
		r := e.expect(e.do("POST", "/v3/credentials", e.admin, map[string]any{"credential": map[string]any{
			"type": "ec2", "user_id": adminID, "project_id": adminProject, "blob": blob}}), 201)
		cred := obj(r.body, "credential")
		sum := sha256.Sum256([]byte("181920"))
		if cred["id"] != hex.EncodeToString(sum[:]) || cred["blob"] != blob || cred["type"] != "ec2" {
			t.Fatalf("ec2 credential: %s", r.raw)
		}
		cid := cred["id"].(string)
		// The same access key twice is a conflict.
		e.expect(e.do("POST", "/v3/credentials", e.admin, map[string]any{"credential": map[string]any{
			"type": "ec2", "user_id": adminID, "project_id": adminProject, "blob": blob}}), 409)

		// Bob cannot see or change the admin's credential, and lists only his own.
		e.expect(e.do("GET", "/v3/credentials/"+cid, bob, nil), 403)
		e.expect(e.do("DELETE", "/v3/credentials/"+cid, bob, nil), 403)
		e.expect(e.do("POST", "/v3/credentials", bob, map[string]any{"credential": map[string]any{"type": "totp", "user_id": adminID, "blob": "x"}}), 403)
		r = e.expect(e.do("POST", "/v3/credentials", bob, map[string]any{"credential": map[string]any{"type": "cert", "user_id": uid, "blob": "PEM", "note": "mine"}}), 201)
		if obj(r.body, "credential")["note"] != "mine" || obj(r.body, "credential")["project_id"] != nil {
			t.Fatalf("cert credential: %s", r.raw)
		}
		if l := e.expect(e.do("GET", "/v3/credentials", bob, nil), 200).body["credentials"].([]any); len(l) != 1 {
			t.Fatalf("bob sees %d credentials", len(l))
		}
		if l := e.expect(e.do("GET", "/v3/credentials?type=ec2", e.admin, nil), 200).body["credentials"].([]any); len(l) != 1 {
			t.Fatalf("admin sees %d ec2 credentials", len(l))
		}

		// Update keeps the access key of an ec2 credential.
		r = e.expect(e.do("PATCH", "/v3/credentials/"+cid, e.admin, map[string]any{"credential": map[string]any{"blob": `{"access":"181920","secret":"mySecret"}`}}), 200)
		if !strings.Contains(obj(r.body, "credential")["blob"].(string), "mySecret") {
			t.Fatalf("update: %s", r.raw)
		}
		e.expect(e.do("PATCH", "/v3/credentials/"+cid, e.admin, map[string]any{"credential": map[string]any{"blob": `{"access":"other","secret":"s"}`}}), 400)

		// S3 token validation with the stored secret.
		tokB64, sig := s3Sign("mySecret", time.Now().UTC())
		r = e.expect(e.do("POST", "/v3/s3tokens", "", map[string]any{"credentials": map[string]any{"access": "181920", "token": tokB64, "signature": sig}}), 200)
		if obj(obj(r.body, "token"), "user")["id"] != adminID || obj(obj(r.body, "token"), "project")["id"] != adminProject {
			t.Fatalf("s3 token: %s", r.raw)
		}
		_, bad := s3Sign("secretKey", time.Now().UTC())
		e.expect(e.do("POST", "/v3/s3tokens", "", map[string]any{"credentials": map[string]any{"access": "181920", "token": tokB64, "signature": bad}}), 401)
		e.expect(e.do("POST", "/v3/s3tokens", "", map[string]any{"credentials": map[string]any{"access": "nope", "token": tokB64, "signature": sig}}), 401)

		// OS-EC2: generated access and secret, seen by the owner.
		r = e.expect(e.do("POST", "/v3/users/"+uid+"/credentials/OS-EC2", bob, map[string]any{"tenant_id": pid}), 201)
		ec2 := obj(r.body, "credential")
		access, secret := ec2["access"].(string), ec2["secret"].(string)
		if access == "" || secret == "" || ec2["tenant_id"] != pid || ec2["user_id"] != uid {
			t.Fatalf("OS-EC2: %s", r.raw)
		}
		r = e.expect(e.do("GET", "/v3/users/"+uid+"/credentials/OS-EC2/"+access, bob, nil), 200)
		if obj(r.body, "credential")["secret"] != secret {
			t.Fatalf("OS-EC2 get: %s", r.raw)
		}
		if l := e.expect(e.do("GET", "/v3/users/"+uid+"/credentials/OS-EC2", bob, nil), 200).body["credentials"].([]any); len(l) != 1 {
			t.Fatalf("OS-EC2 list: %d", len(l))
		}
		e.expect(e.do("GET", "/v3/users/"+adminID+"/credentials/OS-EC2", bob, nil), 403)
		e.expect(e.do("DELETE", "/v3/users/"+uid+"/credentials/OS-EC2/"+access, bob, nil), 204)
		e.expect(e.do("GET", "/v3/users/"+uid+"/credentials/OS-EC2/"+access, bob, nil), 404)

		e.expect(e.do("DELETE", "/v3/credentials/"+cid, e.admin, nil), 204)
		e.expect(e.do("GET", "/v3/credentials/"+cid, e.admin, nil), 404)
		// A deleted user's credentials go with it.
		e.expect(e.do("DELETE", "/v3/users/"+uid, e.admin, nil), 204)
		if l := e.expect(e.do("GET", "/v3/credentials", e.admin, nil), 200).body["credentials"].([]any); len(l) != 0 {
			t.Fatalf("credentials left: %d", len(l))
		}
	})
}

func TestLimits(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		_, pid, bob := e.member()
		svc := e.expect(e.do("GET", "/v3/services", e.admin, nil), 200).body["services"].([]any)[0].(map[string]any)["id"].(string)

		r := e.expect(e.do("GET", "/v3/limits/model", bob, nil), 200)
		if obj(r.body, "model")["name"] != "flat" {
			t.Fatalf("model: %s", r.raw)
		}
		e.expect(e.do("POST", "/v3/registered_limits", bob, map[string]any{"registered_limits": []any{map[string]any{"service_id": svc, "resource_name": "cores", "default_limit": 10}}}), 403)
		r = e.expect(e.do("POST", "/v3/registered_limits", e.admin, map[string]any{"registered_limits": []any{
			map[string]any{"service_id": svc, "resource_name": "cores", "default_limit": 10, "region_id": "RegionOne", "description": "d"},
			map[string]any{"service_id": svc, "resource_name": "ram", "default_limit": 0}}}), 201)
		rls := r.body["registered_limits"].([]any)
		cores := rls[0].(map[string]any)
		if len(rls) != 2 || cores["default_limit"] != float64(10) || cores["region_id"] != "RegionOne" || rls[1].(map[string]any)["region_id"] != nil {
			t.Fatalf("registered limits: %s", r.raw)
		}
		// A batch with one duplicate stores nothing.
		e.expect(e.do("POST", "/v3/registered_limits", e.admin, map[string]any{"registered_limits": []any{
			map[string]any{"service_id": svc, "resource_name": "disk", "default_limit": 1},
			map[string]any{"service_id": svc, "resource_name": "ram", "default_limit": 1}}}), 409)
		if l := e.expect(e.do("GET", "/v3/registered_limits", bob, nil), 200).body["registered_limits"].([]any); len(l) != 2 {
			t.Fatalf("registered limits after failed batch: %d", len(l))
		}

		// A limit needs its registered limit.
		e.expect(e.do("POST", "/v3/limits", e.admin, map[string]any{"limits": []any{map[string]any{"service_id": svc, "project_id": pid, "resource_name": "disk", "resource_limit": 5}}}), 403)
		r = e.expect(e.do("POST", "/v3/limits", e.admin, map[string]any{"limits": []any{map[string]any{
			"service_id": svc, "project_id": pid, "resource_name": "cores", "region_id": "RegionOne", "resource_limit": 20}}}), 201)
		lim := r.body["limits"].([]any)[0].(map[string]any)
		lid := lim["id"].(string)
		if lim["project_id"] != pid || lim["resource_limit"] != float64(20) || lim["domain_id"] != nil {
			t.Fatalf("limit: %s", r.raw)
		}
		e.expect(e.do("POST", "/v3/limits", e.admin, map[string]any{"limits": []any{map[string]any{
			"service_id": svc, "project_id": pid, "resource_name": "cores", "region_id": "RegionOne", "resource_limit": 2}}}), 409)
		// Bob sees his project's limit; a limit of another project is hidden.
		e.expect(e.do("POST", "/v3/limits", e.admin, map[string]any{"limits": []any{map[string]any{"service_id": svc, "domain_id": "default", "resource_name": "ram", "resource_limit": 7}}}), 201)
		if l := e.expect(e.do("GET", "/v3/limits", bob, nil), 200).body["limits"].([]any); len(l) != 1 {
			t.Fatalf("bob sees %d limits", len(l))
		}
		if l := e.expect(e.do("GET", "/v3/limits?resource_name=ram", e.admin, nil), 200).body["limits"].([]any); len(l) != 1 {
			t.Fatalf("admin filter: %d limits", len(l))
		}
		e.expect(e.do("GET", "/v3/limits/"+lid, bob, nil), 200)
		e.expect(e.do("GET", "/v3/limits/nope", bob, nil), 404)
		e.expect(e.do("PATCH", "/v3/limits/"+lid, bob, map[string]any{"limit": map[string]any{"resource_limit": 99}}), 403)
		r = e.expect(e.do("PATCH", "/v3/limits/"+lid, e.admin, map[string]any{"limit": map[string]any{"resource_limit": 30, "description": "more"}}), 200)
		if obj(r.body, "limit")["resource_limit"] != float64(30) || obj(r.body, "limit")["description"] != "more" {
			t.Fatalf("limit update: %s", r.raw)
		}
		// The registered limit is in use until the limit goes.
		e.expect(e.do("DELETE", "/v3/registered_limits/"+cores["id"].(string), e.admin, nil), 403)
		e.expect(e.do("PATCH", "/v3/registered_limits/"+cores["id"].(string), e.admin, map[string]any{"registered_limit": map[string]any{"resource_name": "vcpus"}}), 403)
		r = e.expect(e.do("PATCH", "/v3/registered_limits/"+cores["id"].(string), e.admin, map[string]any{"registered_limit": map[string]any{"default_limit": 1000}}), 200)
		if obj(r.body, "registered_limit")["default_limit"] != float64(1000) {
			t.Fatalf("registered limit update: %s", r.raw)
		}
		e.expect(e.do("DELETE", "/v3/limits/"+lid, e.admin, nil), 204)
		e.expect(e.do("GET", "/v3/limits/"+lid, e.admin, nil), 404)
		e.expect(e.do("DELETE", "/v3/registered_limits/"+cores["id"].(string), e.admin, nil), 204)
		e.expect(e.do("GET", "/v3/registered_limits/"+cores["id"].(string), e.admin, nil), 404)
		// Deleting the project deletes its limits.
		e.expect(e.do("POST", "/v3/limits", e.admin, map[string]any{"limits": []any{map[string]any{"service_id": svc, "project_id": pid, "resource_name": "ram", "resource_limit": 3}}}), 201)
		e.expect(e.do("PATCH", "/v3/projects/"+pid, e.admin, map[string]any{"project": map[string]any{"enabled": false}}), 200)
		e.expect(e.do("DELETE", "/v3/projects/"+pid, e.admin, nil), 204)
		if l := e.expect(e.do("GET", "/v3/limits?resource_name=ram", e.admin, nil), 200).body["limits"].([]any); len(l) != 1 {
			t.Fatalf("limits after project delete: %d (want the domain's only)", len(l))
		}
		// Deleting the service deletes its registered limits and limits.
		e.expect(e.do("DELETE", "/v3/services/"+svc, e.admin, nil), 204)
		for path, key := range map[string]string{"/v3/limits": "limits", "/v3/registered_limits": "registered_limits"} {
			if l := e.expect(e.do("GET", path, e.admin, nil), 200).body[key].([]any); len(l) != 0 {
				t.Fatalf("%s after service delete: %d", path, len(l))
			}
		}
	})
}

func TestPoliciesAndEndpointFilter(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		_, pid, bob := e.member()

		e.expect(e.do("POST", "/v3/policies", bob, map[string]any{"policy": map[string]any{"type": "application/json", "blob": "{}"}}), 403)
		r := e.expect(e.do("POST", "/v3/policies", e.admin, map[string]any{"policy": map[string]any{"type": "application/json", "blob": "{'a': 'b'}", "description": "d"}}), 201)
		p := obj(r.body, "policy")
		if p["blob"] != "{'a': 'b'}" || p["description"] != "d" {
			t.Fatalf("policy: %s", r.raw)
		}
		for q, n := range map[string]int{"": 1, "?type__contains=json": 1, "?type__contains=foo": 0, "?type=application/json": 1, "?type__istartswith=APP": 1} {
			if l := e.expect(e.do("GET", "/v3/policies"+q, e.admin, nil), 200).body["policies"].([]any); len(l) != n {
				t.Errorf("policies%s: %d, want %d", q, len(l), n)
			}
		}
		e.expect(e.do("GET", "/v3/policies", bob, nil), 403)
		r = e.expect(e.do("PATCH", "/v3/policies/"+p["id"].(string), e.admin, map[string]any{"policy": map[string]any{"type": "text/plain", "description": "e"}}), 200)
		if obj(r.body, "policy")["type"] != "text/plain" || obj(r.body, "policy")["description"] != "e" || obj(r.body, "policy")["blob"] != "{'a': 'b'}" {
			t.Fatalf("policy update: %s", r.raw)
		}
		e.expect(e.do("DELETE", "/v3/policies/"+p["id"].(string), e.admin, nil), 204)
		e.expect(e.do("GET", "/v3/policies/"+p["id"].(string), e.admin, nil), 404)

		eid := e.expect(e.do("GET", "/v3/endpoints", e.admin, nil), 200).body["endpoints"].([]any)[0].(map[string]any)["id"].(string)
		path := "/v3/OS-EP-FILTER/projects/" + pid + "/endpoints/" + eid
		e.expect(e.do("PUT", path, bob, nil), 403)
		e.expect(e.do("GET", path, e.admin, nil), 404)
		e.expect(e.do("PUT", path, e.admin, nil), 204)
		e.expect(e.do("PUT", path, e.admin, nil), 204)
		e.expect(e.do("HEAD", path, e.admin, nil), 204)
		if l := e.expect(e.do("GET", "/v3/OS-EP-FILTER/projects/"+pid+"/endpoints", e.admin, nil), 200).body["endpoints"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != eid {
			t.Fatalf("project endpoints: %v", l)
		}
		if l := e.expect(e.do("GET", "/v3/OS-EP-FILTER/endpoints/"+eid+"/projects", e.admin, nil), 200).body["projects"].([]any); len(l) != 1 {
			t.Fatalf("endpoint projects: %v", l)
		}
		e.expect(e.do("PUT", "/v3/OS-EP-FILTER/projects/"+pid+"/endpoints/nope", e.admin, nil), 404)
		e.expect(e.do("PUT", "/v3/OS-EP-FILTER/projects/nope/endpoints/"+eid, e.admin, nil), 404)
		e.expect(e.do("DELETE", path, e.admin, nil), 204)
		e.expect(e.do("DELETE", path, e.admin, nil), 404)
	})
}

func TestTrusts(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		adminID, adminProject := e.adminIDs()
		uid, pid, bob := e.member()
		member, admin := e.roleID("member"), e.roleID("admin")

		trust := func(tok string, body map[string]any, status int) map[string]any {
			t.Helper()
			return obj(e.expect(e.do("POST", "/v3/OS-TRUST/trusts", tok, map[string]any{"trust": body}), status).body, "trust")
		}
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		tr := trust(e.admin, map[string]any{"trustor_user_id": adminID, "trustee_user_id": uid, "project_id": adminProject, "impersonation": false,
			"expires_at": expires.Format("2006-01-02T15:04:05.000Z"), "roles": []any{map[string]any{"id": member}}}, 201)
		tid := tr["id"].(string)
		if tr["expires_at"] != expires.Format("2006-01-02T15:04:05.000000Z") || tr["deleted_at"] != nil || len(tr["roles"].([]any)) != 1 {
			t.Fatalf("trust: %v", tr)
		}
		// Only the trustor creates; roles must be held on the project.
		trust(bob, map[string]any{"trustor_user_id": adminID, "trustee_user_id": uid, "project_id": adminProject, "impersonation": false, "roles": []any{map[string]any{"id": member}}}, 403)
		trust(bob, map[string]any{"trustor_user_id": uid, "trustee_user_id": adminID, "project_id": pid, "impersonation": false, "roles": []any{map[string]any{"id": admin}}}, 403)
		trust(e.admin, map[string]any{"trustor_user_id": adminID, "trustee_user_id": "nope", "project_id": adminProject, "impersonation": false, "roles": []any{map[string]any{"id": member}}}, 404)

		// Trustor and trustee see it; the trustee lists its trusts.
		e.expect(e.do("GET", "/v3/OS-TRUST/trusts/"+tid, bob, nil), 200)
		e.expect(e.do("GET", "/v3/OS-TRUST/trusts", bob, nil), 403)
		if l := e.expect(e.do("GET", "/v3/OS-TRUST/trusts?trustee_user_id="+uid, bob, nil), 200).body["trusts"].([]any); len(l) != 1 {
			t.Fatalf("trustee's trusts: %d", len(l))
		}
		if l := e.expect(e.do("GET", "/v3/OS-TRUST/trusts/"+tid+"/roles", bob, nil), 200).body["roles"].([]any); len(l) != 1 {
			t.Fatalf("trust roles: %d", len(l))
		}
		e.expect(e.do("HEAD", "/v3/OS-TRUST/trusts/"+tid+"/roles/"+member, bob, nil), 200)
		e.expect(e.do("GET", "/v3/OS-TRUST/trusts/"+tid+"/roles/"+admin, bob, nil), 404)
		e.expect(e.do("DELETE", "/v3/OS-TRUST/trusts/"+tid, bob, nil), 403)

		// Bob scopes a token with the trust: the admin project, member and
		// its implied reader, never admin.
		trustScope := map[string]any{"OS-TRUST:trust": map[string]any{"id": tid}}
		tt := e.token(passwordAuth("bob", "pw", trustScope), 201)
		r := e.expect(e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", tt), 200)
		tok := obj(r.body, "token")
		if obj(tok, "project")["id"] != adminProject || obj(tok, "user")["id"] != uid || obj(obj(tok, "OS-TRUST:trust"), "trustor_user")["id"] != adminID {
			t.Fatalf("trust token: %s", r.raw)
		}
		for _, ro := range tok["roles"].([]any) {
			if ro.(map[string]any)["name"] == "admin" {
				t.Fatalf("trust token has admin: %s", r.raw)
			}
		}
		e.expect(e.do("GET", "/v3/users", tt, nil), 403)
		e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", tt, map[string]any{"application_credential": map[string]any{"name": "escape"}}), 403)
		e.expect(e.do("POST", "/v3/OS-TRUST/trusts", tt, map[string]any{"trust": map[string]any{"trustor_user_id": uid, "trustee_user_id": adminID, "impersonation": false}}), 403)
		// The trustor cannot use it, a trust token cannot be rescoped.
		e.token(passwordAuth("admin", "s3cret", trustScope), 403)
		e.token(map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": tt}},
			"scope": map[string]any{"project": map[string]any{"id": pid}}}}, 403)

		// Deleting the trust ends its tokens.
		e.expect(e.do("DELETE", "/v3/OS-TRUST/trusts/"+tid, e.admin, nil), 204)
		e.expect(e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", tt), 404)
		e.expect(e.do("GET", "/v3/OS-TRUST/trusts/"+tid, e.admin, nil), 404)
		e.token(passwordAuth("bob", "pw", trustScope), 404)

		// Limited uses, impersonation.
		tr = trust(e.admin, map[string]any{"trustor_user_id": adminID, "trustee_user_id": uid, "project_id": adminProject, "impersonation": true,
			"remaining_uses": 1, "roles": []any{map[string]any{"name": "member"}}}, 201)
		trustScope = map[string]any{"OS-TRUST:trust": map[string]any{"id": tr["id"]}}
		tt = e.token(passwordAuth("bob", "pw", trustScope), 201)
		r = e.expect(e.do("GET", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", tt), 200)
		if obj(obj(r.body, "token"), "user")["id"] != adminID {
			t.Fatalf("impersonating token: %s", r.raw)
		}
		e.token(passwordAuth("bob", "pw", trustScope), 403)
	})
}

func TestAccessRules(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		uid, _, bob := e.member()
		rules := []any{
			map[string]any{"service": "monitoring", "path": "/v2.0/metrics", "method": "GET"},
			map[string]any{"service": "monitoring", "path": "/v2.0/metrics", "method": "PUT"},
		}
		r := e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", bob, map[string]any{"application_credential": map[string]any{"name": "ac", "access_rules": rules}}), 201)
		ac := obj(r.body, "application_credential")
		got := ac["access_rules"].([]any)
		if len(got) != 2 || got[1].(map[string]any)["method"] != "PUT" || got[0].(map[string]any)["id"] == "" {
			t.Fatalf("access rules: %s", r.raw)
		}
		rid := got[0].(map[string]any)["id"].(string)
		// A second credential reuses a rule by id.
		r = e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", bob, map[string]any{"application_credential": map[string]any{"name": "ac2", "access_rules": []any{map[string]any{"id": rid}}}}), 201)
		ac2 := obj(r.body, "application_credential")["id"].(string)
		e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", bob, map[string]any{"application_credential": map[string]any{"name": "ac3", "access_rules": []any{map[string]any{"id": "nope"}}}}), 404)
		l := e.expect(e.do("GET", "/v3/users/"+uid+"/access_rules", bob, nil), 200).body["access_rules"].([]any)
		if len(l) != 2 {
			t.Fatalf("access rules listed: %d", len(l))
		}
		if l := e.expect(e.do("GET", "/v3/users/"+uid+"/access_rules?method=PUT", bob, nil), 200).body["access_rules"].([]any); len(l) != 1 {
			t.Fatalf("access rules filtered: %d", len(l))
		}
		r = e.expect(e.do("GET", "/v3/users/"+uid+"/application_credentials/"+ac["id"].(string), bob, nil), 200)
		if len(obj(r.body, "application_credential")["access_rules"].([]any)) != 2 {
			t.Fatalf("app cred get: %s", r.raw)
		}
		e.expect(e.do("GET", "/v3/users/"+uid+"/access_rules/"+rid, bob, nil), 200)
		adminID, _ := e.adminIDs()
		e.expect(e.do("GET", "/v3/users/"+adminID+"/access_rules", bob, nil), 403)
		// In use until both credentials are gone.
		e.expect(e.do("DELETE", "/v3/users/"+uid+"/access_rules/"+rid, bob, nil), 403)
		e.expect(e.do("DELETE", "/v3/users/"+uid+"/application_credentials/"+ac["id"].(string), bob, nil), 204)
		e.expect(e.do("DELETE", "/v3/users/"+uid+"/access_rules/"+rid, bob, nil), 403)
		e.expect(e.do("DELETE", "/v3/users/"+uid+"/application_credentials/"+ac2, bob, nil), 204)
		for _, x := range l {
			e.expect(e.do("DELETE", "/v3/users/"+uid+"/access_rules/"+x.(map[string]any)["id"].(string), bob, nil), 204)
		}
		e.expect(e.do("GET", "/v3/users/"+uid+"/access_rules/"+rid, bob, nil), 404)

		// A token from a credential with access rules makes only those requests.
		r = e.expect(e.do("POST", "/v3/users/"+uid+"/application_credentials", bob, map[string]any{"application_credential": map[string]any{"name": "ro",
			"access_rules": []any{map[string]any{"service": "identity", "path": "/v3/users/*/access_rules", "method": "GET"}}}}), 201)
		ro := obj(r.body, "application_credential")
		tok := e.token(map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"application_credential"},
			"application_credential": map[string]any{"id": ro["id"], "secret": ro["secret"]}}}}, 201)
		e.expect(e.do("GET", "/v3/users/"+uid+"/access_rules", tok, nil), 200)
		e.expect(e.do("GET", "/v3/users/"+uid, tok, nil), 401)
		e.expect(e.do("DELETE", "/v3/users/"+uid+"/access_rules/"+rid, tok, nil), 401)
		r = e.expect(e.do("GET", "/v3/auth/tokens", bob, nil, "X-Subject-Token", tok), 200)
		if rules := obj(obj(r.body, "token"), "application_credential")["access_rules"].([]any); len(rules) != 1 {
			t.Fatalf("token access rules: %s", r.raw)
		}
	})
}

func TestFederationMappings(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		_, _, bob := e.member()
		rules := []any{map[string]any{
			"local":  []any{map[string]any{"user": map[string]any{"name": "{0}"}}, map[string]any{"group": map[string]any{"id": "0cd5e9"}}},
			"remote": []any{map[string]any{"type": "UserName"}, map[string]any{"type": "orgPersonType", "not_any_of": []any{"Contractor", "Guest"}}},
		}}
		path := "/v3/OS-FEDERATION/mappings/ACME_users"
		e.expect(e.do("PUT", path, bob, map[string]any{"mapping": map[string]any{"rules": rules}}), 403)
		r := e.expect(e.do("PUT", path, e.admin, map[string]any{"mapping": map[string]any{"rules": rules}}), 201)
		if m := obj(r.body, "mapping"); m["id"] != "ACME_users" || len(m["rules"].([]any)) != 1 || m["schema_version"] != "1.0" {
			t.Fatalf("mapping: %s", r.raw)
		}
		e.expect(e.do("PUT", path, e.admin, map[string]any{"mapping": map[string]any{"rules": rules}}), 409)
		r = e.expect(e.do("GET", path, e.admin, nil), 200)
		remote := obj(r.body, "mapping")["rules"].([]any)[0].(map[string]any)["remote"].([]any)
		if remote[1].(map[string]any)["not_any_of"].([]any)[1] != "Guest" {
			t.Fatalf("mapping rules: %s", r.raw)
		}
		rules[0].(map[string]any)["remote"] = []any{map[string]any{"type": "orgPersonType", "any_one_of": []any{"Contractor"}}}
		r = e.expect(e.do("PATCH", path, e.admin, map[string]any{"mapping": map[string]any{"rules": rules}}), 200)
		if !strings.Contains(r.raw, "any_one_of") || strings.Contains(r.raw, "not_any_of") {
			t.Fatalf("mapping update: %s", r.raw)
		}
		if l := e.expect(e.do("GET", "/v3/OS-FEDERATION/mappings", e.admin, nil), 200).body["mappings"].([]any); len(l) != 1 {
			t.Fatalf("mappings: %d", len(l))
		}
		e.expect(e.do("DELETE", path, e.admin, nil), 204)
		e.expect(e.do("GET", path, e.admin, nil), 404)
		e.expect(e.do("DELETE", path, e.admin, nil), 404)
	})
}

// TestExtrasBadInput: malformed or invalid bodies get Keystone's error
// body with a 4xx and store nothing.
func TestExtrasBadInput(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, identity.Config{})
		adminID, adminProject := e.adminIDs()
		svc := e.expect(e.do("GET", "/v3/services", e.admin, nil), 200).body["services"].([]any)[0].(map[string]any)["id"].(string)
		cases := []struct {
			name, method, path string
			body               any
			status             int
		}{
			{"credential not JSON", "POST", "/v3/credentials", "{", 400},
			{"credential without blob", "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"type": "ec2", "user_id": adminID}}, 400},
			{"credential blob not a string", "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"type": "x", "user_id": adminID, "blob": 3}}, 400},
			{"credential unknown user", "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"type": "x", "user_id": "nope", "blob": "b"}}, 400},
			{"ec2 without project", "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"type": "ec2", "user_id": adminID, "blob": `{"access":"a"}`}}, 400},
			{"ec2 blob not JSON", "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"type": "ec2", "user_id": adminID, "project_id": adminProject, "blob": "nope"}}, 400},
			{"ec2 blob without access", "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"type": "ec2", "user_id": adminID, "project_id": adminProject, "blob": `{"secret":"s"}`}}, 400},
			{"OS-EC2 without tenant", "POST", "/v3/users/" + adminID + "/credentials/OS-EC2", map[string]any{}, 400},
			{"OS-EC2 unknown tenant", "POST", "/v3/users/" + adminID + "/credentials/OS-EC2", map[string]any{"tenant_id": "nope"}, 404},
			{"s3 token missing signature", "POST", "/v3/s3tokens", map[string]any{"credentials": map[string]any{"access": "a", "token": "dA=="}}, 400},
			{"registered limits empty", "POST", "/v3/registered_limits", map[string]any{"registered_limits": []any{}}, 400},
			{"registered limit negative", "POST", "/v3/registered_limits", map[string]any{"registered_limits": []any{map[string]any{"service_id": svc, "resource_name": "x", "default_limit": -5}}}, 400},
			{"registered limit not integer", "POST", "/v3/registered_limits", map[string]any{"registered_limits": []any{map[string]any{"service_id": svc, "resource_name": "x", "default_limit": 1.5}}}, 400},
			{"registered limit unknown service", "POST", "/v3/registered_limits", map[string]any{"registered_limits": []any{map[string]any{"service_id": "nope", "resource_name": "x", "default_limit": 1}}}, 400},
			{"registered limit unknown region", "POST", "/v3/registered_limits", map[string]any{"registered_limits": []any{map[string]any{"service_id": svc, "region_id": "Mars", "resource_name": "x", "default_limit": 1}}}, 400},
			{"registered limit unknown field", "POST", "/v3/registered_limits", map[string]any{"registered_limits": []any{map[string]any{"service_id": svc, "resource_name": "x", "default_limit": 1, "color": "red"}}}, 400},
			{"limit without target", "POST", "/v3/limits", map[string]any{"limits": []any{map[string]any{"service_id": svc, "resource_name": "x", "resource_limit": 1}}}, 400},
			{"limit with both targets", "POST", "/v3/limits", map[string]any{"limits": []any{map[string]any{"service_id": svc, "project_id": adminProject, "domain_id": "default", "resource_name": "x", "resource_limit": 1}}}, 400},
			{"limit unknown project", "POST", "/v3/limits", map[string]any{"limits": []any{map[string]any{"service_id": svc, "project_id": "nope", "resource_name": "x", "resource_limit": 1}}}, 400},
			{"limit update empty", "PATCH", "/v3/limits/nope", map[string]any{"limit": map[string]any{}}, 404},
			{"policy without type", "POST", "/v3/policies", map[string]any{"policy": map[string]any{"blob": "b"}}, 400},
			{"policy blob not string", "POST", "/v3/policies", map[string]any{"policy": map[string]any{"type": "t", "blob": map[string]any{}}}, 400},
			{"policy unknown", "PATCH", "/v3/policies/nope", map[string]any{"policy": map[string]any{"type": "t"}}, 404},
			{"trust without impersonation", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID}}, 400},
			{"trust expired", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID, "impersonation": false, "project_id": adminProject, "roles": []any{map[string]any{"name": "member"}}, "expires_at": "2001-01-01T00:00:00Z"}}, 400},
			{"trust bad expiry", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID, "impersonation": false, "expires_at": "soon"}}, 400},
			{"trust zero uses", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID, "impersonation": false, "remaining_uses": 0}}, 400},
			{"trust project without roles", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID, "impersonation": false, "project_id": adminProject}}, 400},
			{"trust unknown role", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID, "impersonation": false, "project_id": adminProject, "roles": []any{map[string]any{"name": "nope"}}}}, 404},
			{"trust redelegation", "POST", "/v3/OS-TRUST/trusts", map[string]any{"trust": map[string]any{"trustor_user_id": adminID, "trustee_user_id": adminID, "impersonation": false, "allow_redelegation": true}}, 403},
			{"access rule bad method", "POST", "/v3/users/" + adminID + "/application_credentials", map[string]any{"application_credential": map[string]any{"name": "x", "access_rules": []any{map[string]any{"service": "compute", "path": "/", "method": "FETCH"}}}}, 400},
			{"access rule without method", "POST", "/v3/users/" + adminID + "/application_credentials", map[string]any{"application_credential": map[string]any{"name": "x", "access_rules": []any{map[string]any{"service": "compute", "path": "/"}}}}, 400},
			{"access rule extra field", "POST", "/v3/users/" + adminID + "/application_credentials", map[string]any{"application_credential": map[string]any{"name": "x", "access_rules": []any{map[string]any{"service": "compute", "method": "GET", "x": 1}}}}, 400},
		}
		remote := func(m map[string]any) map[string]any {
			return map[string]any{"mapping": map[string]any{"rules": []any{map[string]any{"local": []any{map[string]any{"user": map[string]any{"name": "{0}"}}}, "remote": []any{m}}}}}
		}
		cases = append(cases, []struct {
			name, method, path string
			body               any
			status             int
		}{
			{"mapping without rules", "PUT", "/v3/OS-FEDERATION/mappings/m", map[string]any{"mapping": map[string]any{}}, 400},
			{"mapping empty rules", "PUT", "/v3/OS-FEDERATION/mappings/m", map[string]any{"mapping": map[string]any{"rules": []any{}}}, 400},
			{"mapping remote without type", "PUT", "/v3/OS-FEDERATION/mappings/m", remote(map[string]any{"any_one_of": []any{"a"}}), 400},
			{"mapping two matchers", "PUT", "/v3/OS-FEDERATION/mappings/m", remote(map[string]any{"type": "t", "any_one_of": []any{"a"}, "not_any_of": []any{"b"}}), 400},
			{"mapping unknown remote field", "PUT", "/v3/OS-FEDERATION/mappings/m", remote(map[string]any{"type": "t", "color": "red"}), 400},
			{"mapping bad id", "PUT", "/v3/OS-FEDERATION/mappings/a%20b", remote(map[string]any{"type": "t"}), 400},
			{"mapping unknown", "PATCH", "/v3/OS-FEDERATION/mappings/nope", remote(map[string]any{"type": "t"}), 404},
		}...)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.t = t
				e.expect(e.do(c.method, c.path, e.admin, c.body), c.status)
			})
		}
		e.t = t
		// Nothing was stored by the failed requests.
		for path, key := range map[string]string{"/v3/credentials": "credentials", "/v3/registered_limits": "registered_limits", "/v3/limits": "limits",
			"/v3/policies": "policies", "/v3/OS-TRUST/trusts": "trusts", "/v3/OS-FEDERATION/mappings": "mappings", "/v3/users/" + adminID + "/access_rules": "access_rules"} {
			if l := e.expect(e.do("GET", path, e.admin, nil), 200).body[key].([]any); len(l) != 0 {
				t.Errorf("%s: %d left after bad requests", path, len(l))
			}
		}
	})
}

// TestCredentialsEncryptedAtRest: with a credential key file the blobs in
// the database are ciphertext, the API still shows them in clear, rows
// stored before encryption are encrypted at start, and a rotation
// re-encrypts them while a running server follows.
func TestCredentialsEncryptedAtRest(t *testing.T) {
	dbtest.Each(t, []db.Set{identity.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		rawBlobs := func() map[string]string {
			rows, err := d.Reader().QueryContext(ctx, `SELECT id, blob FROM credentials`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var id, b string
				rows.Scan(&id, &b)
				out[id] = b
			}
			return out
		}
		// A credential stored by a server without encryption.
		old := newEnv(t, d, identity.Config{})
		adminID, adminProject := old.adminIDs()
		r := old.expect(old.do("POST", "/v3/credentials", old.admin, map[string]any{"credential": map[string]any{
			"type": "totp", "user_id": adminID, "blob": "OLDSEED"}}), 201)
		oldID := obj(r.body, "credential")["id"].(string)
		if rawBlobs()[oldID] != "OLDSEED" {
			t.Fatal("setup: the old row should be in clear")
		}

		keys := filepath.Join(t.TempDir(), "credential-keys")
		e := newEnv(t, d, identity.Config{CredentialKeyFile: keys})
		if b := rawBlobs()[oldID]; !strings.HasPrefix(b, "kumo:enc:v1:") || strings.Contains(b, "OLDSEED") {
			t.Fatalf("old row not encrypted at start: %q", b)
		}
		r = e.expect(e.do("POST", "/v3/credentials", e.admin, map[string]any{"credential": map[string]any{
			"type": "ec2", "user_id": adminID, "project_id": adminProject, "blob": `{"access":"AK1","secret":"TOPSECRET"}`}}), 201)
		newID := obj(r.body, "credential")["id"].(string)
		raw := rawBlobs()
		if strings.Contains(raw[newID], "TOPSECRET") || !strings.HasPrefix(raw[newID], "kumo:enc:v1:") {
			t.Fatalf("new row stored in clear: %q", raw[newID])
		}
		if got := obj(e.expect(e.do("GET", "/v3/credentials/"+newID, e.admin, nil), 200).body, "credential")["blob"]; got != `{"access":"AK1","secret":"TOPSECRET"}` {
			t.Fatalf("API blob %v", got)
		}
		if got := obj(e.expect(e.do("GET", "/v3/credentials/"+oldID, e.admin, nil), 200).body, "credential")["blob"]; got != "OLDSEED" {
			t.Fatalf("API blob of the old row %v", got)
		}
		// Update re-encrypts.
		e.expect(e.do("PATCH", "/v3/credentials/"+oldID, e.admin, map[string]any{"credential": map[string]any{"blob": "NEWSEED"}}), 200)
		if b := rawBlobs()[oldID]; strings.Contains(b, "SEED") {
			t.Fatalf("updated row in clear: %q", b)
		}

		// Rotation by another process: rows move to the new key; this
		// server, which still has only the old key, reads them anyway.
		before := rawBlobs()
		if err := identity.RotateCredentialKey(keys); err != nil {
			t.Fatal(err)
		}
		newEnv(t, d, identity.Config{CredentialKeyFile: keys})
		after := rawBlobs()
		for id := range before {
			if before[id][:20] == after[id][:20] {
				t.Fatalf("row %s not re-encrypted with the new key: %q", id, after[id])
			}
		}
		if got := obj(e.expect(e.do("GET", "/v3/credentials/"+newID, e.admin, nil), 200).body, "credential")["blob"]; got != `{"access":"AK1","secret":"TOPSECRET"}` {
			t.Fatalf("API blob after rotation %v", got)
		}
		// A server without the keys cannot read encrypted rows: a clear
		// error, not garbage.
		r = old.do("GET", "/v3/credentials/"+newID, old.admin, nil)
		if r.status != 500 {
			t.Fatalf("server without keys: %d %s", r.status, r.raw)
		}
	})
}
