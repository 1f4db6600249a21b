package api

import (
	"net/http/httptest"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// The legacy /v2.1/{project_id}/ dispatcher, exercised directly until
// apiutil can mount it (see LegacyProjectRoutes).
func TestLegacyProjectRouter(t *testing.T) {
	d := dbtest.OpenSQLite(t, store.Migrations())
	st := store.New(d)
	enf, err := policy.New(PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := New(Options{Store: st, Quota: quota.New(st, nil, quota.KeyPairCounter{}), Policy: enf})
	call := func(method, project, rest string, c *auth.Context) (*apiutil.Response, error) {
		r := httptest.NewRequest(method, "/compute/v2.1/"+project+"/"+rest, nil)
		r.SetPathValue("project_id", project)
		r.SetPathValue("rest", rest)
		r = r.WithContext(auth.With(r.Context(), c))
		r, err := Microversions.Before(r)
		if err != nil {
			t.Fatal(err)
		}
		return a.legacy.serve(r)
	}
	member := &auth.Context{UserID: "u", ProjectID: "p1", Roles: []auth.Role{{Name: "member"}, {Name: "reader"}}}
	resp, err := call("GET", "p1", "flavors/1", member)
	if err != nil {
		t.Fatal(err)
	}
	f := resp.Body.(map[string]any)["flavor"].(map[string]any)
	self := f["links"].([]any)[0].(map[string]any)["href"]
	if self != "http://example.com/compute/v2.1/p1/flavors/1" {
		t.Fatalf("self link %v", self)
	}
	if _, err := call("GET", "p2", "flavors", member); apiutil.AsError(err).Status != 400 {
		t.Fatalf("project mismatch: %v", err)
	}
	if _, err := call("GET", "p1", "nope", member); apiutil.AsError(err).Status != 404 {
		t.Fatalf("unknown path: %v", err)
	}
	if _, err := call("PATCH", "p1", "flavors", member); apiutil.AsError(err).Status != 405 {
		t.Fatalf("bad method: %v", err)
	}
}
