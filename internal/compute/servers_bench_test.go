package compute_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// BenchmarkServersDetail1000 lists a 1,000-server page of GET
// /servers/detail with 10,000 servers of the project present (each with
// two metadata items and a tag) and reports the median latency (issue 4:
// ≤ 50 ms p50).
func BenchmarkServersDetail1000(b *testing.B) {
	// No conductor scans competing with the requests.
	e := newServerEnv(b, nil, 0, func(c *compute.Config) { c.ConductorConfig.ScanInterval = time.Hour })
	st := store.New(e.db)
	ctx := context.Background()
	host := "compute"
	t0 := time.Now().Add(-time.Hour).UTC()
	for batch := 0; batch < 10; batch++ {
		err := st.WithTx(ctx, func(tx *sql.Tx) error {
			for i := range 1000 {
				n := batch*1000 + i
				inst := &store.Instance{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), ProjectID: "p1", UserID: "alice",
					Name: fmt.Sprintf("vm-%05d", n), Hostname: fmt.Sprintf("vm-%05d", n), ImageRef: imageID,
					Flavor: store.InstanceFlavor{ID: "42", Name: "m1.nano", VCPUs: 1, MemoryMB: 128, RootGB: 1},
					Host:   &host, Node: &host, VMState: "active", PowerState: 1, ReservationID: fmt.Sprintf("r-%05d", n),
					CreatedAt: t0.Add(time.Duration(n) * time.Millisecond),
					Metadata:  map[string]string{"role": "web", "n": fmt.Sprint(n)}, Tags: []string{"bench"}}
				if err := st.InsertInstance(ctx, tx, inst); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// The handler is called directly (no client decoding in the loop), so
	// cpu-ms/op is the server's work: routing, auth, SQL, views, JSON.
	req := func() *httptest.ResponseRecorder {
		q := httptest.NewRequest("GET", v21+"/servers/detail?limit=1000", nil)
		q.Header.Set("X-Auth-Token", "alice")
		q.Header.Set("OpenStack-API-Version", "compute 2.96")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, q)
		return w
	}
	w := req()
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != 200 || err != nil {
		b.Fatalf("status %d (%v): %.200s", w.Code, err, w.Body.String())
	}
	if n := len(list(b, body, "servers")); n != 1000 {
		b.Fatalf("%d servers", n)
	}
	var lat []time.Duration
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		w := req()
		lat = append(lat, time.Since(start))
		if w.Code != 200 {
			b.Fatalf("status %d: %.200s", w.Code, w.Body.String())
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
