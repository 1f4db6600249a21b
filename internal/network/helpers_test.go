package network

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/service"
)

type testAPI struct {
	t   testing.TB
	srv *httptest.Server
	svc *Service
}

func newTestAPI(t testing.TB, cfg Config) *testAPI {
	t.Helper()
	return newTestAPIOn(t, dbtest.OpenSQLite(t, Migrations()), cfg)
}

func newTestAPIOn(t testing.TB, d *db.DB, cfg Config) *testAPI {
	t.Helper()
	v := authtest.New()
	v.Add("admin", "u-admin", "p-admin", "admin", "member", "reader")
	v.Add("alice", "u-alice", "p-alice", "member", "reader")
	v.Add("bob", "u-bob", "p-bob", "member", "reader")
	v.Add("aliceread", "u-alice2", "p-alice", "reader")
	svc, err := New(service.Deps{DB: d, Auth: v, PublicURL: "http://kumo.test:5000", Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testAPI{t: t, srv: srv, svc: svc}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

// errType is the NeutronError type of an error response.
func (r resp) errType(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	ne, ok := m["NeutronError"].(map[string]any)
	if !ok {
		t.Fatalf("no NeutronError in %s", r.body)
	}
	return ne["type"].(string)
}

// do sends a request; body is a string (raw JSON) or a value to encode.
func (a *testAPI) do(token, method, path string, body any, headers ...string) resp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.srv.URL+"/networking/v2.0"+path, rd)
	if strings.HasPrefix(path, "/networking") {
		req, err = http.NewRequest(method, a.srv.URL+path, rd)
	}
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (a *testAPI) must(r resp, want int) resp {
	a.t.Helper()
	if r.status != want {
		a.t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

// create POSTs {"<singular>": body} and returns the created object.
func (a *testAPI) create(token, collection, singular string, body map[string]any) map[string]any {
	a.t.Helper()
	r := a.must(a.do(token, "POST", "/"+collection, map[string]any{singular: body}), 201)
	return r.json(a.t)[singular].(map[string]any)
}

// expectErr checks status and NeutronError type.
func (a *testAPI) expectErr(r resp, status int, typ string) {
	a.t.Helper()
	if r.status != status {
		a.t.Fatalf("status %d, want %d (%s); body %s", r.status, status, typ, r.body)
	}
	if got := r.errType(a.t); got != typ {
		a.t.Fatalf("type %q, want %q; body %s", got, typ, r.body)
	}
}

// netWithSubnet creates a network and a subnet with the given CIDR.
func (a *testAPI) netWithSubnet(token, cidr string) (netID, subnetID string) {
	a.t.Helper()
	n := a.create(token, "networks", "network", map[string]any{"name": "n-" + cidr})
	s := a.create(token, "subnets", "subnet", map[string]any{"network_id": n["id"], "cidr": cidr, "ip_version": 4})
	return n["id"].(string), s["id"].(string)
}

func testDeps(d *db.DB) service.Deps { return service.Deps{DB: d} }
