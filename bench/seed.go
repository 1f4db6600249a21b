package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
)

// seedHost is the host of seeded servers: no agent reports for it, so
// the conductor's power sync never touches them.
const seedHost = "bench-seed"

// seedServers inserts n ACTIVE servers of the admin project straight
// into the started server's database (SQLite in its data directory, or
// its PostgreSQL), in transactions of 2,000, through the compute store's
// own insert. It is the fast way to a population of 100,000 and is
// labelled as such in the results: the rows are what the API writes for
// a booted server, minus its instance action history.
func (e *env) seedServers(ctx context.Context, image string, n int) error {
	if e.srv == nil {
		return errors.New("--populate db needs the server started by the benchmark (its database); use --populate api with --url")
	}
	d, err := db.Open(ctx, e.srv.dsn, e.srv.dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer d.Close()
	st := store.New(d)
	flavor := store.InstanceFlavor{ID: "42", Name: "m1.nano", VCPUs: 1, MemoryMB: 128, RootGB: 1}
	host, az := seedHost, "nova"
	start := time.Now()
	for done := 0; done < n; {
		batch := min(2000, n-done)
		err := d.WithTx(ctx, func(tx *sql.Tx) error {
			for range batch {
				id := uuid()
				node := host
				in := &store.Instance{UUID: id, ProjectID: e.c.projectID, UserID: e.c.userID, Name: "seed-" + id[:8],
					Hostname: "seed-" + id[:8], Flavor: flavor, ImageRef: image, AvailabilityZone: &az, Host: &host, Node: &node,
					VMState: states.Active, PowerState: 1, ReservationID: "r-" + id[:8], Metadata: map[string]string{}}
				if err := st.InsertInstance(ctx, tx, in); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed servers: %w", err)
		}
		done += batch
		if done%20000 == 0 || done == n {
			e.logf("seeded %d/%d servers into the database (%.0f/s)", done, n, float64(done)/time.Since(start).Seconds())
		}
	}
	if d.Dialect() == db.SQLite {
		// Fold the seeded pages back into the database file, so the
		// server does not read them through a long write-ahead log.
		if _, err := d.Reader().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return fmt.Errorf("checkpoint after seeding: %w", err)
		}
	}
	return nil
}

func uuid() string {
	var b [16]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
