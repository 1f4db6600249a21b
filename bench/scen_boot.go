package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() {
	scenarios["boot-delete"] = scenario{
		help: "boot a server (fake driver) until ACTIVE, then delete it until gone; --count servers at --concurrency (1000 at 50)",
		run:  runBootDelete,
	}
}

func runBootDelete(ctx context.Context, e *env) error {
	image, err := e.computeSetup(ctx)
	if err != nil {
		return err
	}
	count := e.opts.Count
	if count <= 0 {
		count = 1000
	}
	r := e.bootDelete(ctx, "boot-delete", image, e.conc(50), count, nil)
	r.target("servers/s", r.OpsPerSecond, 100, "/s", true)
	r.target("p95 POST→ACTIVE", r.P95ms, 300, "ms", false)
	return nil
}

// bootDelete boots and deletes count servers at conc, each until ACTIVE
// then until gone, and returns the phase's result.
func (e *env) bootDelete(ctx context.Context, name, image string, conc, count int, params map[string]any) *Result {
	w := e.newWatcher(ctx)
	del := make([]time.Duration, 0, count)
	delCh := make(chan time.Duration, count)
	boot := func(ctx context.Context, worker, i int) (time.Duration, error) {
		t0 := time.Now()
		id, err := e.createServer(ctx, image, fmt.Sprintf("bench-%d", i), 1)
		if err != nil {
			return 0, err
		}
		if err := w.await(ctx, id, "ACTIVE"); err != nil {
			return 0, err
		}
		lat := time.Since(t0)
		t1 := time.Now()
		if _, _, err := e.c.do(ctx, "DELETE", e.c.url("compute", "/servers/"+id), nil, computeHdr, http.StatusNoContent); err != nil {
			return 0, err
		}
		if err := w.await(ctx, id, "DELETED"); err != nil {
			return 0, err
		}
		delCh <- time.Since(t1)
		return lat, nil
	}
	if params == nil {
		params = map[string]any{}
	}
	params["concurrency"], params["servers"], params["driver"] = conc, count, "fake"
	p := e.begin(ctx, name, params)
	lat, errs, first := e.load(ctx, name, conc, count, 0, 0, boot)
	r := p.end(ctx, lat, errs, first)
	close(delCh)
	for d := range delCh {
		del = append(del, d)
	}
	sortDur(del)
	r.extra("delete_p50_ms", msf(pct(del, .5)))
	r.extra("delete_p95_ms", msf(pct(del, .95)))
	w.mu.Lock()
	r.extra("watcher_polls", float64(w.polls))
	r.extra("watcher_misses", float64(w.misses))
	w.mu.Unlock()
	r.Note = "latency = POST /servers → ACTIVE first seen through the API (one GET /servers/detail?changes-since watcher polls every 25 ms, so up to 25 ms of it is polling granularity; a change the watcher misses is found by the waiter's own GET after 1 s, counted in watcher_misses); ops/s = full boot+delete cycles per second; queries/op = all statements per boot+delete"
	e.logf("%s", r.line())
	return r
}
