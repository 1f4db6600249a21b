package db_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

var testSet = db.Set{
	Component: "test",
	Expand: []db.Migration{
		{Version: 1, Name: "widgets", SQL: `CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL DEFAULT 0, ok BOOLEAN NOT NULL DEFAULT FALSE, created_at TEXT)`},
		{Version: 2, Name: "widgets.note", SQL: `ALTER TABLE widgets ADD COLUMN note TEXT`},
	},
	Contract: []db.Migration{
		{Version: 2, Name: "drop note default", SQL: `UPDATE widgets SET note = NULL WHERE note = ''`},
	},
}

func TestMigrateAndQuery(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, []db.Phase{db.Expand}, testSet); err != nil {
			t.Fatal(err)
		}
		st, err := d.Versions(ctx, testSet)
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Expand != 2 || st[0].Contract != 0 || st[0].ContractLatest != 2 {
			t.Fatalf("after expand: %+v", st[0])
		}
		// Idempotent, and contract now applies.
		if err := d.Migrate(ctx, []db.Phase{db.Expand, db.Contract}, testSet); err != nil {
			t.Fatal(err)
		}
		st, _ = d.Versions(ctx, testSet)
		if st[0].Contract != 2 {
			t.Fatalf("after contract: %+v", st[0])
		}
		now := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
		err = d.WithTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name, n, ok, created_at) VALUES ($1, $2, $3, $4, $5)`, "a", "alpha", 3, true, db.FormatTime(now))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var (
			n  int
			ok bool
			ts sql.NullString
		)
		if err := d.Reader().QueryRowContext(ctx, `SELECT n, ok, created_at FROM widgets WHERE id = $1`, "a").Scan(&n, &ok, &ts); err != nil {
			t.Fatal(err)
		}
		if n != 3 || !ok || !db.ParseTime(ts).Equal(now) {
			t.Fatalf("got n=%d ok=%v ts=%v", n, ok, ts)
		}
		// Unique violation is classified and the failed tx leaves nothing.
		err = d.WithTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name) VALUES ($1, $2)`, "b", "beta"); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name) VALUES ($1, $2)`, "c", "alpha")
			return err
		})
		if !db.IsUniqueViolation(err) {
			t.Fatalf("want unique violation, got %v", err)
		}
		var count int
		_ = d.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM widgets`).Scan(&count)
		if count != 1 {
			t.Fatalf("rollback left %d rows", count)
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	dbtest.Each(t, []db.Set{testSet}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Reader().ExecContext(ctx, `INSERT INTO widgets (id, name) VALUES ('x', 'x')`); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- d.WithTx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT n FROM widgets WHERE id = 'x'`+d.ForUpdate()).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE widgets SET n = $1 WHERE id = 'x'`, n+1)
					return err
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		_ = d.Reader().QueryRowContext(ctx, `SELECT n FROM widgets WHERE id = 'x'`).Scan(&n)
		if n != 40 {
			t.Fatalf("lost updates: n=%d", n)
		}
	})
}

func TestContractNeedsExpand(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	err := d.Migrate(context.Background(), []db.Phase{db.Contract}, testSet)
	if err == nil {
		t.Fatal("contract without expand must fail")
	}
}

func TestBadSets(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	for name, sets := range map[string][]db.Set{
		"no component": {{}},
		"duplicate":    {{Component: "a"}, {Component: "a"}},
		"order":        {{Component: "a", Expand: []db.Migration{{Version: 2}, {Version: 1}}}},
	} {
		if err := d.Migrate(context.Background(), []db.Phase{db.Expand}, sets...); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if _, err := db.Open(context.Background(), "mysql://x", "", nil); err == nil || errors.Is(err, nil) {
		t.Error("unsupported dsn must fail")
	}
}

// ParseTime's fast path reads what time.Parse reads, and leaves anything
// else to it.
func TestParseTimeMatchesTimeParse(t *testing.T) {
	ref := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		tm, err := time.Parse(db.TimeFormat, s)
		if err != nil {
			tm, _ = time.Parse(time.RFC3339Nano, s)
		}
		return tm.UTC()
	}
	cases := []string{"", "2026-01-02T03:04:05.123456Z", "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z",
		"2024-02-29T12:00:00.000001Z", "2026-02-29T12:00:00.000000Z", "2026-02-30T12:00:00.000000Z", "2026-13-01T00:00:00.000000Z",
		"2026-00-01T00:00:00.000000Z", "2026-01-00T00:00:00.000000Z", "2026-01-01T24:00:00.000000Z", "2026-01-01T00:60:00.000000Z",
		"2026-01-01T00:00:60.000000Z", "2026-01-0xT00:00:00.000000Z", "2026-01-01 00:00:00.000000Z", "2026-01-01T00:00:00.000000+",
		"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.5+01:00", "2026-01-02T03:04:05.000000+01:00", "garbage", "+026-01-02T03:04:05.000000Z"}
	for i := int64(0); i < 2000; i++ {
		tm := time.Unix(i*7919*104729+i*i*131, i*999331%1000000*1000).UTC()
		cases = append(cases, db.FormatTime(tm).(string))
	}
	for _, s := range cases {
		got, want := db.ParseTime(sql.NullString{String: s, Valid: true}), ref(s)
		if got != want {
			t.Errorf("ParseTime(%q) = %v, want %v", s, got, want)
		}
	}
}
