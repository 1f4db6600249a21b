package identity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/identity"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Two processes' identity services on one database: a revocation made by
// one is seen by the other through the bus, long before its poll.
func TestRevocationCrossesProcesses(t *testing.T) {
	d := dbtest.OpenSQLite(t, identity.Migrations())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := newEnv(t, d, identity.Config{PollInterval: time.Hour})
	e.svc.SetBus(b)
	go e.svc.Run(ctx)

	enf, _ := policy.New(identity.PolicyDefaults(), nil)
	other := identity.NewService(identity.NewStore(d), identity.Config{PollInterval: time.Hour, BcryptCost: 4}, enf, nil)
	other.SetBus(b)
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go other.Run(ctx)
	mux := http.NewServeMux()
	identity.NewAPI(other).Routes().Register(mux)
	srv2 := httptest.NewServer(apiutil.Middleware(mux, "", discard(), nil))
	defer srv2.Close()

	tok := e.token(passwordAuth("admin", "s3cret", projectScope("admin")), 201)
	get := func() int {
		req, _ := http.NewRequest("GET", srv2.URL+"/v3/auth/catalog", nil)
		req.Header.Set("X-Auth-Token", tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	time.Sleep(50 * time.Millisecond) // let both subscriptions settle
	if s := get(); s != 200 {
		t.Fatalf("other process: %d", s)
	}
	e.expect(e.do("DELETE", "/v3/auth/tokens", e.admin, nil, "X-Subject-Token", tok), 204)
	deadline := time.Now().Add(2 * time.Second)
	for get() != 401 {
		if time.Now().After(deadline) {
			t.Fatal("other process still accepts the revoked token")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
