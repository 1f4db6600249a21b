package compute_test

import (
	"net/http"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/apiutil/apitest"
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
	v := authtest.NewCallers()
	svc, err := compute.New(service.Deps{DB: d, Policy: enf, Auth: v}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	return &env{t: t, h: apiutil.Middleware(mux, publicURL, nil, nil), svc: svc, db: d}
}

// resp is a recorded answer of the API.
type resp = apitest.Response

// do sends a request; version "" sends no microversion header.
func (e *env) do(token, method, path, version, body string) resp {
	e.t.Helper()
	return apitest.Do(e.t, e.h, "compute", token, method, path, version, body)
}

func obj(t testing.TB, v any, key string) map[string]any {
	t.Helper()
	return apitest.Obj(t, v, key)
}

func list(t testing.TB, v map[string]any, key string) []any {
	t.Helper()
	return apitest.List(t, v, key)
}

const v21 = "/compute/v2.1"
