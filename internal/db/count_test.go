package db_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func TestQueryCounter(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, []db.Phase{db.Expand, db.Contract}, testSet); err != nil {
			t.Fatal(err)
		}
		q0, tx0 := d.Queries(), d.Transactions()
		err := d.WithTx(ctx, func(tx *sql.Tx) error {
			for _, id := range []string{"c1", "c2"} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name) VALUES ($1, $2)`, id, "n"+id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.Reader().QueryRowContext(ctx, `SELECT count(*) FROM widgets WHERE id IN ($1, $2)`, "c1", "c2").Scan(&n); err != nil {
			t.Fatal(err)
		}
		rows, err := d.Reader().QueryContext(ctx, `SELECT id FROM widgets WHERE id LIKE $1`, "c%")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		if n != 2 {
			t.Fatalf("count = %d", n)
		}
		// A prepared statement counts once per execution.
		st, err := d.Reader().(*sql.DB).PrepareContext(ctx, `SELECT n FROM widgets WHERE id = $1`)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"c1", "c2", "c1"} {
			if err := st.QueryRowContext(ctx, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		if got, want := d.Queries()-q0, uint64(2+1+1+3); got != want {
			t.Errorf("queries = %d, want %d", got, want)
		}
		if got := d.Transactions() - tx0; got != 1 {
			t.Errorf("transactions = %d, want 1", got)
		}
	})
}

// The same statement may run again while a result set of it is still
// open (nested reads in one transaction); errors still surface.
func TestStatementReuse(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, []db.Phase{db.Expand, db.Contract}, testSet); err != nil {
			t.Fatal(err)
		}
		const sel = `SELECT id, n FROM widgets WHERE id LIKE $1 ORDER BY id`
		err := d.WithTx(ctx, func(tx *sql.Tx) error {
			for i, id := range []string{"r1", "r2", "r3"} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name, n) VALUES ($1, $2, $3)`, id, "name-"+id, i); err != nil {
					return err
				}
			}
			outer, err := tx.QueryContext(ctx, sel, "r%")
			if err != nil {
				return err
			}
			var ids []string
			for outer.Next() {
				var id string
				var n int
				if err := outer.Scan(&id, &n); err != nil {
					return err
				}
				ids = append(ids, id)
				if d.Dialect() != db.SQLite {
					continue // one result set at a time on a PostgreSQL connection
				}
				var inner int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+sel+`) x`, "r%").Scan(&inner); err != nil {
					return err
				}
				if inner != 3 {
					t.Errorf("inner count = %d", inner)
				}
			}
			if err := outer.Close(); err != nil {
				return err
			}
			if len(ids) != 3 {
				t.Errorf("outer rows = %v", ids)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // cached or not, the same answers
			var n int
			if err := d.Reader().QueryRowContext(ctx, `SELECT n FROM widgets WHERE id = $1`, "r3").Scan(&n); err != nil || n != 2 {
				t.Fatalf("n = %d, %v", n, err)
			}
			if _, err := d.Reader().QueryContext(ctx, `SELECT nope FROM widgets`); err == nil {
				t.Fatal("bad column: no error")
			}
			if _, err := d.Reader().ExecContext(ctx, `INSERT INTO widgets (id, name) VALUES ($1, $2)`, "r1", "dup"); !db.IsUniqueViolation(err) {
				t.Fatalf("duplicate insert: %v", err)
			}
		}
	})
}
