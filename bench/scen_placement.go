package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	scenarios["alloc-candidates"] = scenario{
		help: "GET /allocation_candidates?limit=1000 with --providers resource providers (default 10000) made through the API",
		run:  runAllocCandidates,
	}
}

var placementHdr = map[string]string{"OpenStack-API-Version": "placement 1.36"}

// createProviders makes n providers with VCPU, MEMORY_MB and DISK_GB
// inventories through the Placement API, 16 requests at a time.
func (e *env) createProviders(ctx context.Context, n int) error {
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n || ctx.Err() != nil {
					return
				}
				id := uuid()
				rp := mustJSON(map[string]any{"name": fmt.Sprintf("bench-host-%d-%s", i, id[:8]), "uuid": id})
				if _, _, err := e.c.do(ctx, "POST", e.c.url("placement", "/resource_providers"), rp, placementHdr, http.StatusOK); err != nil {
					errc <- err
					return
				}
				inv := mustJSON(map[string]any{"resource_provider_generation": 0, "inventories": map[string]any{
					"VCPU": map[string]any{"total": 16, "allocation_ratio": 16.0}, "MEMORY_MB": map[string]any{"total": 65536},
					"DISK_GB": map[string]any{"total": 1024}}})
				if _, _, err := e.c.do(ctx, "PUT", e.c.url("placement", "/resource_providers/"+id+"/inventories"), inv, placementHdr, http.StatusOK); err != nil {
					errc <- err
					return
				}
				if d := done.Add(1); d%2000 == 0 {
					e.logf("created %d/%d resource providers (%.0f/s)", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("create providers: %w", err)
	}
	return nil
}

func runAllocCandidates(ctx context.Context, e *env) error {
	n := e.opts.Providers
	if n <= 0 {
		n = 10000
	}
	t0 := time.Now()
	if err := e.createProviders(ctx, n); err != nil {
		return err
	}
	e.logf("%d providers in %.1fs", n, time.Since(t0).Seconds())
	u := e.c.url("placement", "/allocation_candidates?resources=VCPU:2,MEMORY_MB:2048,DISK_GB:20&limit=1000")
	want := min(n, 1000)
	conc := e.conc(1)
	p := e.begin(ctx, "alloc-candidates", map[string]any{"providers": n, "limit": 1000, "concurrency": conc})
	lat, errs, first := e.load(ctx, "alloc-candidates", conc, 0, e.warmup(time.Second), e.duration(10*time.Second),
		func(ctx context.Context, _, _ int) (time.Duration, error) {
			var out struct {
				Reqs []any `json:"allocation_requests"`
			}
			if _, err := e.c.doJSON(ctx, "GET", u, nil, placementHdr, http.StatusOK, &out); err != nil {
				return 0, err
			}
			if len(out.Reqs) < want {
				return 0, fmt.Errorf("%d candidates, want %d", len(out.Reqs), want)
			}
			return 0, nil
		})
	r := p.end(ctx, lat, errs, first)
	if n >= 10000 {
		r.target("p50", r.P50ms, 50, "ms", false)
	}
	e.logf("%s", r.line())
	return nil
}
