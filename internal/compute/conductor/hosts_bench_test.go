package conductor

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/scheduler"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
)

// BenchmarkHostSource is the scheduler's host list (services, nodes,
// aggregates) of 10,000 compute hosts: read from the database, and as a
// decision gets it (from the conductor's cache, HostCacheTTL).
func BenchmarkHostSource(b *testing.B) {
	d := dbtest.OpenSQLite(b, store.Migrations(), placement.Migrations())
	st := store.New(d)
	ctx := context.Background()
	now := db.FormatTime(time.Now())
	err := d.WithTx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < 10000; i++ {
			host := fmt.Sprintf("h%05d", i)
			var id int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO compute_services (uuid, host, binary_name, topic, version, last_seen_up, created_at, updated_at)
				VALUES ($1, $2, 'nova-compute', 'compute', 1, $3, $3, $3) RETURNING id`, newUUID(), host, now).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname, hypervisor_type,
				hypervisor_version, vcpus, memory_mb, local_gb, host_ip, created_at, updated_at)
				VALUES ($1, $2, $3, $3, 'fake', 1, 16, 4096, 100, '', $4, $4)`, newUUID(), id, host, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	c := New(st, nil, nil, nil, Config{}, nil)
	for _, bc := range []struct {
		name string
		list func(context.Context) ([]*scheduler.Host, error)
	}{{"read", hostSource{c}.read}, {"cached", hostSource{c}.Hosts}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				hs, err := bc.list(ctx)
				if err != nil || len(hs) != 10000 {
					b.Fatal(len(hs), err)
				}
			}
		})
	}
}
