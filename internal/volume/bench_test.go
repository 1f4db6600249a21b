package volume_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/volume"
)

// BenchmarkCreateDelete500 creates 500 empty 1 GiB volumes on the file
// backend through the HTTP API (8 concurrent clients), waits until all
// are available, deletes them all and waits until they are gone. The
// vol/s metric is 500 divided by the whole round's time (target: >= 50).
func BenchmarkCreateDelete500(b *testing.B) {
	const n, clients = 500, 8
	e := newEnv(b, nil, func(c *volume.Config) {
		c.Quotas = map[string]int64{"volumes": -1, "gigabytes": -1}
	})
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		ids := make([]string, n)
		run := func(fn func(k int)) {
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := c; k < n; k += clients {
						fn(k)
					}
				}()
			}
			wg.Wait()
		}
		run(func(k int) {
			r := e.do("alice", "POST", v3+"/volumes", "", fmt.Sprintf(`{"volume": {"size": 1, "name": "b%d"}}`, k))
			if r.Status != 202 {
				b.Errorf("create: %d %s", r.Status, r.Raw)
				return
			}
			ids[k] = r.Body["volume"].(map[string]any)["id"].(string)
		})
		e.svc.WaitTasks()
		r := e.do("alice", "GET", v3+"/volumes/detail?status=available&limit=1000", "", "")
		if got := len(r.Body["volumes"].([]any)); got != n {
			b.Fatalf("%d of %d volumes available", got, n)
		}
		run(func(k int) {
			if r := e.do("alice", "DELETE", v3+"/volumes/"+ids[k], "", ""); r.Status != 202 {
				b.Errorf("delete: %d %s", r.Status, r.Raw)
			}
		})
		e.svc.WaitTasks()
		total += time.Since(start)
		r = e.do("alice", "GET", v3+"/volumes", "", "")
		if got := len(r.Body["volumes"].([]any)); got != 0 {
			b.Fatalf("%d volumes left", got)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "vol/s")
}
