package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

// BenchmarkInstanceGroup reads the group of one instance (what the
// scheduler asks for every decision) among 2,000 groups of 3 members.
// cpu-ms/op is the process's user+system CPU time per read.
func BenchmarkInstanceGroup(b *testing.B) {
	ctx := context.Background()
	d := dbtest.OpenSQLite(b, store.Migrations())
	s := store.New(d)
	const groups, members = 2000, 3
	err := d.WithTx(ctx, func(tx *sql.Tx) error {
		for g := 0; g < groups; g++ {
			sg := &store.ServerGroup{UUID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", g), Name: fmt.Sprint("g", g), ProjectID: "p", UserID: "u", Policy: "anti-affinity"}
			if err := s.CreateServerGroup(ctx, tx, sg); err != nil {
				return err
			}
			for m := 0; m < members; m++ {
				u := fmt.Sprintf("%08d-%04d-4000-8000-000000000000", g, m)
				if err := s.InsertInstance(ctx, tx, &store.Instance{UUID: u, ProjectID: "p", UserID: "u", Name: u, VMState: "active"}); err != nil {
					return err
				}
				if err := s.AddGroupMember(ctx, tx, sg.ID, u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	cpu0 := cpu()
	for i := 0; i < b.N; i++ {
		u := fmt.Sprintf("%08d-0001-4000-8000-000000000000", i%groups)
		g, err := s.InstanceGroup(ctx, u)
		if err != nil || g == nil || len(g.Members) != members {
			b.Fatalf("group of %s: %+v %v", u, g, err)
		}
	}
	b.ReportMetric(float64((cpu()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
