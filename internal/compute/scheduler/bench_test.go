package scheduler

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/service"
)

// manyHosts returns n hosts in 10 zones with a few aggregates each.
func manyHosts(n int) []*Host {
	aggs := make([]*Aggregate, 10)
	for i := range aggs {
		aggs[i] = &Aggregate{UUID: fmt.Sprint("agg", i), Metadata: map[string]string{"availability_zone": fmt.Sprint("az", i), "ssd": fmt.Sprint(i%2 == 0)}}
	}
	out := make([]*Host, n)
	for i := range out {
		out[i] = &Host{Host: fmt.Sprintf("h%05d", i), Node: fmt.Sprintf("h%05d", i), Provider: fmt.Sprint("rp", i), Up: i%50 != 0,
			HypervisorType: "QEMU", Aggregates: []*Aggregate{aggs[i%10]},
			Traits: map[string]bool{"HW_ARCH_X86_64": true}}
		out[i].SetFree("VCPU", int64(i%64))
		out[i].SetFree("MEMORY_MB", int64(i*37%65536))
		out[i].SetFree("DISK_GB", int64(i%1000))
	}
	return out
}

// BenchmarkChoose is one scheduling decision (every filter and weigher)
// over 10,000 hosts: the scheduler's own cost, without placement.
func BenchmarkChoose(b *testing.B) {
	hosts := manyHosts(10000)
	s := New(nil, Config{}, nil)
	spec := &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1},
		Image:      map[string]string{"hw_architecture": "x86_64"},
		ExtraSpecs: map[string]string{"aggregate_instance_extra_specs:ssd": "true"},
		Group:      &Group{Policy: "anti-affinity", Members: map[string]int{"h00002": 1}}}
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := s.Choose(hosts, spec); err != nil {
			b.Fatal(err)
		}
	}
	report(b, start, cpu)
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report gives decisions per wall second and per CPU second (the second
// does not depend on how loaded the shared machine is).
func report(b *testing.B, start time.Time, cpu time.Duration) {
	used := cpuTime() - cpu
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
	b.ReportMetric(float64(b.N)/used.Seconds(), "decisions/cpu-s")
	b.ReportMetric(used.Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkSchedule is a full decision with 10,000 providers in
// placement (real database): candidates, filters, weighers and the claim
// (a placement transaction), one decision after the other and from 8
// goroutines at once; "snapshot" computes candidates from the provider
// snapshot, "placement" asks placement for them (limit 1000) each time.
// PostgreSQL runs when KUMO_TEST_POSTGRES_DSN is set.
func BenchmarkSchedule(b *testing.B) {
	for _, eng := range []struct {
		name string
		open func(testing.TB, ...db.Set) *db.DB
	}{{"sqlite", dbtest.OpenSQLite}, {"postgres", dbtest.OpenPostgres}} {
		b.Run(eng.name, func(b *testing.B) {
			d := eng.open(b, placement.Migrations())
			pl, err := placement.New(service.Deps{DB: d}, placement.Config{})
			if err != nil {
				b.Fatal(err)
			}
			hosts := seed(b, pl, 10000, 1<<20)
			// The providers were all written just now; in a cloud most were
			// not written within the snapshot's look-back (Slack).
			time.Sleep(time.Second)
			spec := &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 1, "MEMORY_MB": 1, "DISK_GB": 1}}
			var next atomic.Int64
			consumer := func() string { return fmt.Sprintf("30000000-0000-4000-8000-%012d", next.Add(1)) }
			for _, mode := range []string{"snapshot", "placement"} {
				s := New(pl, Config{Snapshot: SnapshotConfig{Disabled: mode == "placement"}}, nil)
				decide := func(b *testing.B) {
					if _, err := s.Schedule(context.Background(), hosts, spec, 1, claimer(pl, []string{consumer()})); err != nil {
						b.Fatal(err)
					}
				}
				b.Run(mode, func(b *testing.B) {
					decide(b) // the snapshot's first load is not a decision
					b.ResetTimer()
					start, cpu := time.Now(), cpuTime()
					for i := 0; i < b.N; i++ {
						decide(b)
					}
					report(b, start, cpu)
				})
				b.Run(mode+"-parallel8", func(b *testing.B) {
					decide(b)
					b.ResetTimer()
					b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
					start, cpu := time.Now(), cpuTime()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							decide(b)
						}
					})
					report(b, start, cpu)
				})
			}
		})
	}
}

// BenchmarkChoose1000 is one decision over the 1,000 candidates placement
// returns with its default limit, out of a 10,000-host cloud.
func BenchmarkChoose1000(b *testing.B) {
	hosts := manyHosts(10000)[:1000]
	s := New(nil, Config{}, nil)
	spec := &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1},
		Image:      map[string]string{"hw_architecture": "x86_64"},
		ExtraSpecs: map[string]string{"aggregate_instance_extra_specs:ssd": "true"},
		Group:      &Group{Policy: "anti-affinity", Members: map[string]int{"h00002": 1}}}
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := s.Choose(hosts, spec); err != nil {
			b.Fatal(err)
		}
	}
	report(b, start, cpu)
}
