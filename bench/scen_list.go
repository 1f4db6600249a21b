package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

func init() {
	scenarios["server-list"] = scenario{
		help: "GET /servers/detail?limit=1000 at each --population (default 1000,10000); --populate db|api",
		hosts: func(o Options) int {
			if o.Populate != "api" {
				return 0
			}
			// The interim scheduler fits 256 m1.nano per fake host
			// (16 vCPUs × 16).
			return maxPop(o)/200 + 1
		},
		run: runServerList,
	}
}

func populations(o Options) []int {
	p := slices.Clone(o.Populations)
	if len(p) == 0 {
		p = []int{1000, 10000}
	}
	slices.Sort(p)
	return p
}

func maxPop(o Options) int { return slices.Max(populations(o)) }

func runServerList(ctx context.Context, e *env) error {
	image, err := e.computeSetup(ctx)
	if err != nil {
		return err
	}
	mode := e.opts.Populate
	if mode == "" {
		mode = "db"
	}
	if mode != "db" && mode != "api" {
		return fmt.Errorf("--populate %q: want db or api", mode)
	}
	have := 0
	for _, pop := range populations(e.opts) {
		if pop > have {
			t0 := time.Now()
			var err error
			if mode == "db" {
				err = e.seedServers(ctx, image, pop-have)
			} else {
				err = e.bootMany(ctx, image, pop-have)
			}
			if err != nil {
				return err
			}
			e.logf("population %d reached in %.1fs (%s)", pop, time.Since(t0).Seconds(), mode)
			have = pop
		}
		u := e.c.url("compute", "/servers/detail?limit=1000")
		get := func(ctx context.Context, _, _ int) (time.Duration, error) {
			var out struct {
				Servers []struct{ ID string } `json:"servers"`
			}
			if _, err := e.c.doJSON(ctx, "GET", u, nil, computeHdr, http.StatusOK, &out); err != nil {
				return 0, err
			}
			if len(out.Servers) != min(1000, pop) {
				return 0, fmt.Errorf("listed %d servers, want %d", len(out.Servers), min(1000, pop))
			}
			return 0, nil
		}
		conc := e.conc(1)
		p := e.begin(ctx, "server-list", map[string]any{"population": pop, "limit": 1000, "concurrency": conc, "populate": mode})
		lat, errs, first := e.load(ctx, fmt.Sprintf("server-list@%d", pop), conc, 0, e.warmup(time.Second), e.duration(10*time.Second), get)
		r := p.end(ctx, lat, errs, first)
		if mode == "db" {
			r.Note = "population seeded straight into the database (compute store insert), not booted through the API"
		}
		if pop >= 10000 {
			r.target("p50", r.P50ms, 50, "ms", false)
		}
		if pop >= 100000 {
			r.target("p99", r.P99ms, 200, "ms", false)
		}
		e.logf("%s", r.line())
	}
	return nil
}

// bootMany boots n servers through the API with multi-create (batches of
// up to 500 with min_count) and waits until none is building.
func (e *env) bootMany(ctx context.Context, image string, n int) error {
	start := time.Now()
	for done := 0; done < n; {
		batch := min(500, n-done)
		if _, err := e.createServer(ctx, image, "pop", batch); err != nil {
			return fmt.Errorf("multi-create %d: %w", batch, err)
		}
		if err := e.awaitNoBuild(ctx); err != nil {
			return err
		}
		done += batch
		e.logf("booted %d/%d servers through the API (%.0f/s)", done, n, float64(done)/time.Since(start).Seconds())
	}
	return nil
}

func (e *env) awaitNoBuild(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var out struct {
			Servers []struct{ ID string } `json:"servers"`
		}
		if _, err := e.c.doJSON(ctx, "GET", e.c.url("compute", "/servers?status=BUILD&limit=1"), nil, computeHdr, http.StatusOK, &out); err != nil {
			return err
		}
		var errOut struct {
			Servers []struct{ ID string } `json:"servers"`
		}
		if _, err := e.c.doJSON(ctx, "GET", e.c.url("compute", "/servers?status=ERROR&limit=1"), nil, computeHdr, http.StatusOK, &errOut); err != nil {
			return err
		}
		if len(errOut.Servers) > 0 {
			return fmt.Errorf("server %s went to ERROR while populating", errOut.Servers[0].ID)
		}
		if len(out.Servers) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("servers still building after 10 minutes")
}
