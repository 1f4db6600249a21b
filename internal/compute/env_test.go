package compute_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

const publicURL = "http://kumo.test"

// env is a compute API on a fresh database with four callers: admin
// (project p-admin), alice (member of p1), rob (reader of p1) and bob
// (member of p2).
type env struct {
	t   testing.TB
	h   http.Handler
	svc *compute.Service
	db  *db.DB
	// stop ends the service's background work (server envs only).
	stop func()
	// pl is the placement service the conductor schedules over.
	pl *placement.Service
	// bus is the server env's bus.
	bus *bus.Bus
}

func newEnv(t *testing.T, d *db.DB, cfg compute.Config) *env {
	t.Helper()
	if d == nil {
		d = dbtest.OpenSQLite(t, compute.Migrations())
	}
	enf, err := policy.New(compute.PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := authtest.New()
	v.Add("admin", "admin-u", "p-admin", "admin", "member", "reader")
	v.Add("alice", "alice", "p1", "member", "reader")
	v.Add("rob", "rob", "p1", "reader")
	v.Add("bob", "bob", "p2", "member", "reader")
	svc, err := compute.New(service.Deps{DB: d, Policy: enf, Auth: v}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	return &env{t: t, h: apiutil.Middleware(mux, publicURL, nil, nil), svc: svc, db: d}
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request; version "" sends no microversion header.
func (e *env) do(token, method, path, version, body string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if version != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+version)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	out := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out.body); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", method, path, err, w.Body.String())
		}
	}
	return out
}

// expect checks the status and, for errors, Nova's fault key.
func (r resp) expect(t testing.TB, status int, fault string) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if fault != "" {
		f, ok := r.body[fault].(map[string]any)
		if !ok {
			t.Fatalf("no %q fault in %s", fault, r.raw)
		}
		if int(f["code"].(float64)) != status || f["message"] == "" {
			t.Fatalf("bad fault body %s", r.raw)
		}
	}
	return r
}

func obj(t testing.TB, v any, key string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %v", v)
	}
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("no object %q in %v", key, m)
	}
	return o
}

func list(t testing.TB, v map[string]any, key string) []any {
	t.Helper()
	l, ok := v[key].([]any)
	if !ok {
		t.Fatalf("no list %q in %v", key, v)
	}
	return l
}

const v21 = "/compute/v2.1"
