package placement

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClaimDelete: a boot's claim (VCPU, MEMORY_MB, DISK_GB on one
// provider) and its delete, one at a time, as the conductor does them;
// cpu-ms/op is the process's CPU (the database's included on SQLite).
func BenchmarkClaimDelete(b *testing.B) {
	d := dbtest.OpenSQLite(b, Migrations())
	if benchPostgres() {
		d = dbtest.OpenPostgres(b, Migrations())
	}
	svc, _ := New(serviceDeps(d), Config{})
	uuids := seedProviders(b, d, 4)
	ctx := context.Background()
	q0, c0 := d.Queries(), cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := newUUID()
		if err := svc.Claim(ctx, ConsumerAllocations{Consumer: c, ProjectID: "p", UserID: "u", CheckGeneration: true,
			Allocations: map[string]map[string]int64{uuids[i%len(uuids)]: {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}}, nil); err != nil {
			b.Fatal(err)
		}
		if err := svc.DeleteAllocations(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-c0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(d.Queries()-q0)/float64(b.N), "statements/op")
}
