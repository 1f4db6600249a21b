package placement

import (
	"database/sql"
	"os"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/service"
)

type sqlTx = sql.Tx

func serviceDeps(d *db.DB) service.Deps { return service.Deps{DB: d} }

// benchPostgres: KUMO_BENCH_POSTGRES=1 runs benchmarks on PostgreSQL.
func benchPostgres() bool {
	return os.Getenv("KUMO_BENCH_POSTGRES") == "1" && os.Getenv("KUMO_TEST_POSTGRES_DSN") != ""
}
