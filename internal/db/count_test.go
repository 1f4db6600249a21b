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
