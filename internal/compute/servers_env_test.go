package compute_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

const (
	imageID   = "11111111-2222-4333-8444-555555555555"
	queuedImg = "11111111-2222-4333-8444-666666666666"
)

type fakeImages struct{}

func (fakeImages) GetImage(_ context.Context, id string) (*api.Image, error) {
	switch id {
	case imageID:
		return &api.Image{ID: id, Status: "active", Size: 1 << 20}, nil
	case queuedImg:
		return &api.Image{ID: id, Status: "queued"}, nil
	}
	return nil, api.ErrImageNotFound
}

// newServerEnv is newEnv with a bus, a conductor and hosts fake hosts,
// running until the test ends.
func newServerEnv(t testing.TB, d *db.DB, hosts int, mod func(*compute.Config)) *env {
	t.Helper()
	if d == nil {
		d = dbtest.OpenSQLite(t, compute.Migrations())
	}
	b, err := bus.Open(context.Background(), bus.Config{Name: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.New(compute.PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := authtest.NewCallers()
	cfg := compute.Config{Conductor: true, Hosts: hosts, Driver: "fake", Images: fakeImages{},
		AgentReportInterval: 100 * time.Millisecond,
		ConductorConfig: conductor.Config{ScanInterval: 200 * time.Millisecond, ReportInterval: 200 * time.Millisecond,
			ServiceDownTime: 2 * time.Second, Lease: 2 * time.Second}}
	if mod != nil {
		mod(&cfg)
	}
	deps := service.Deps{DB: d, Bus: b, Policy: enf, Auth: v}
	if os.Getenv("KUMO_TEST_LOG") != "" {
		deps.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := d.Migrate(context.Background(), []db.Phase{db.Expand}, placement.Migrations()); err != nil {
		t.Fatal(err)
	}
	pl, err := placement.New(deps, placement.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Placement = pl
	svc, err := compute.New(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			b.Close()
		})
	}
	t.Cleanup(stop)
	e := &env{t: t, h: apiutil.Middleware(mux, publicURL, nil, nil), svc: svc, db: d, stop: stop, pl: pl, bus: b}
	if hosts > 0 {
		e.eventually(func() bool {
			r := e.do("admin", "GET", v21+"/os-hypervisors", "2.53", "")
			return r.Status == 200 && len(list(t, r.Body, "hypervisors")) == hosts
		}, "hosts registered")
		// And their resource providers written to placement.
		e.eventually(func() bool {
			for _, h := range list(t, e.do("admin", "GET", v21+"/os-hypervisors", "2.53", "").Body, "hypervisors") {
				invs, err := pl.Inventories(context.Background(), h.(map[string]any)["id"].(string))
				if err != nil || len(invs) == 0 {
					return false
				}
			}
			return true
		}, "resource providers")
	}
	return e
}

func (e *env) eventually(cond func() bool, what string) {
	e.eventuallyf(cond, func() string { return what })
}

func (e *env) eventuallyf(cond func() bool, what func() string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) driver(n int) *fake.Driver {
	return e.svc.Agents()[n].Driver().(*fake.Driver)
}

const bootBody = `{"server": {"name": "vm1", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": "none"}}`

// boot creates a server and returns its id.
func (e *env) boot(token, body string) string {
	e.t.Helper()
	if body == "" {
		body = bootBody
	}
	r := e.do(token, "POST", v21+"/servers", "2.96", body).Expect(e.t, 202, "")
	return obj(e.t, r.Body, "server")["id"].(string)
}

// server shows a server at 2.96 as admin.
func (e *env) server(id string) map[string]any {
	e.t.Helper()
	return obj(e.t, e.do("admin", "GET", v21+"/servers/"+id, "2.96", "").Expect(e.t, 200, "").Body, "server")
}

// waitStatus waits until the server has status and no task.
func (e *env) waitStatus(id, status string) map[string]any {
	e.t.Helper()
	var s map[string]any
	e.eventuallyf(func() bool {
		r := e.do("admin", "GET", v21+"/servers/"+id, "2.96", "")
		if r.Status != 200 {
			return false
		}
		s = obj(e.t, r.Body, "server")
		return s["status"] == status && s["OS-EXT-STS:task_state"] == nil
	}, func() string {
		return fmt.Sprintf("%s to be %s (last: %v %v %v)", id, status, s["status"], s["OS-EXT-STS:task_state"], s["fault"])
	})
	return s
}

func (e *env) waitGone(id string) {
	e.t.Helper()
	e.eventually(func() bool { return e.do("admin", "GET", v21+"/servers/"+id, "2.96", "").Status == 404 }, id+" to be deleted")
}

func (e *env) action(token, id, body string, status int) resp {
	e.t.Helper()
	return e.do(token, "POST", v21+"/servers/"+id+"/action", "2.96", body).Expect(e.t, status, "")
}

func actionNames(t *testing.T, e *env, id string) string {
	r := e.do("admin", "GET", v21+"/servers/"+id+"/os-instance-actions", "2.96", "").Expect(t, 200, "")
	var out []string
	for _, a := range list(t, r.Body, "instanceActions") {
		out = append(out, a.(map[string]any)["action"].(string))
	}
	return strings.Join(out, ",")
}
