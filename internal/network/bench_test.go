package network

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// p50 runs fn b.N times and reports the median latency as "p50-ms".
func p50(b *testing.B, fn func(i int)) {
	b.Helper()
	d := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		fn(i)
		d = append(d, time.Since(t0))
	}
	b.StopTimer()
	// CPU per operation (server and in-process client together) is what
	// a loaded machine distorts least.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
}

func benchAPI(b *testing.B) *testAPI {
	a := newTestAPI(b, Config{})
	a.must(a.do("admin", "PUT", "/quotas/p-alice", map[string]any{"quota": map[string]any{"port": -1, "security_group_rule": -1}}), 200)
	return a
}

// BenchmarkPortCreate: POST /v2.0/ports with IPAM on a /16 (SQLite).
func BenchmarkPortCreate(b *testing.B) {
	a := benchAPI(b)
	nid, _ := a.netWithSubnet("alice", "10.0.0.0/16")
	body := map[string]any{"port": map[string]any{"network_id": nid}}
	p50(b, func(int) { a.must(a.do("alice", "POST", "/ports", body), 201) })
}

// BenchmarkSecurityGroupRuleCreate: POST /v2.0/security-group-rules.
func BenchmarkSecurityGroupRuleCreate(b *testing.B) {
	a := benchAPI(b)
	g := a.create("alice", "security-groups", "security_group", map[string]any{"name": "g"})
	p50(b, func(i int) {
		port := i%65535 + 1
		a.must(a.do("alice", "POST", "/security-group-rules", map[string]any{"security_group_rule": map[string]any{
			"security_group_id": g["id"], "direction": "ingress", "protocol": []string{"tcp", "udp", "sctp"}[i/65535%3],
			"port_range_min": port, "port_range_max": port}}), 201)
	})
}

// BenchmarkListPorts1000: GET /v2.0/ports returning 1,000 ports.
func BenchmarkListPorts1000(b *testing.B) {
	a := benchAPI(b)
	nid, _ := a.netWithSubnet("alice", "10.0.0.0/20")
	for range 10 {
		list := make([]any, 100)
		for i := range list {
			list[i] = map[string]any{"network_id": nid}
		}
		a.must(a.do("alice", "POST", "/ports", map[string]any{"ports": list}), 201)
	}
	p50(b, func(int) {
		r := a.must(a.do("alice", "GET", "/ports", nil), 200)
		if len(r.body) < 1000*500 {
			b.Fatalf("short list: %d bytes", len(r.body))
		}
	})
}
