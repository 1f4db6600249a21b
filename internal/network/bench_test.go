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

// BenchmarkListPorts1000Of10000: GET /v2.0/ports?limit=1000 with 10,000
// ports present (the target is "regardless of the total count"). Also
// reads the page after a marker, so the keyset pagination is exercised.
func BenchmarkListPorts1000Of10000(b *testing.B) {
	a := benchAPI(b)
	nid, _ := a.netWithSubnet("alice", "10.0.0.0/16")
	for range 100 {
		list := make([]any, 100)
		for i := range list {
			list[i] = map[string]any{"network_id": nid}
		}
		a.must(a.do("alice", "POST", "/ports", map[string]any{"ports": list}), 201)
	}
	first := a.must(a.do("alice", "GET", "/ports?limit=1&fields=id", nil), 200).json(b)["ports"].([]any)[0].(map[string]any)["id"].(string)
	p50(b, func(i int) {
		path := "/ports?limit=1000"
		if i%2 == 1 {
			path += "&marker=" + first
		}
		r := a.must(a.do("alice", "GET", path, nil), 200)
		if len(r.body) < 1000*500 {
			b.Fatalf("short list: %d bytes", len(r.body))
		}
	})
}

// BenchmarkListSecurityGroups1000: GET /v2.0/security-groups returning
// 1,000 groups of 4 rules each (the two default egress rules and two
// ingress rules), with 2,000 groups present in the project's view.
func BenchmarkListSecurityGroups1000(b *testing.B) {
	a := benchAPI(b)
	a.must(a.do("admin", "PUT", "/quotas/p-alice", map[string]any{"quota": map[string]any{"security_group": -1}}), 200)
	for i := range 2000 {
		g := a.create("alice", "security-groups", "security_group", map[string]any{"name": "g"})
		list := make([]any, 2)
		for j := range list {
			list[j] = map[string]any{"security_group_id": g["id"], "direction": "ingress", "protocol": "tcp",
				"port_range_min": 22 + j + i%100, "port_range_max": 22 + j + i%100, "remote_ip_prefix": "10.0.0.0/8"}
		}
		a.must(a.do("alice", "POST", "/security-group-rules", map[string]any{"security_group_rules": list}), 201)
	}
	p50(b, func(int) {
		r := a.must(a.do("alice", "GET", "/security-groups?limit=1000", nil), 200)
		if len(r.body) < 1000*1000 {
			b.Fatalf("short list: %d bytes", len(r.body))
		}
	})
}
