// Package dbtest gives store tests a fresh database on every engine Kumo
// supports: SQLite always, PostgreSQL when KUMO_TEST_POSTGRES_DSN names a
// server on which the test may create databases. In CI (CI=true) the
// PostgreSQL engine is mandatory, so a missing server fails instead of
// silently skipping.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
)

// EnvDSN is the variable naming an admin DSN of a PostgreSQL server for tests.
const EnvDSN = "KUMO_TEST_POSTGRES_DSN"

// Engine is one database to run a test against.
type Engine struct {
	Name string
	Open func(t testing.TB, sets ...db.Set) *db.DB
}

// Engines lists the engines to run store tests on.
func Engines(t testing.TB) []Engine {
	out := []Engine{{Name: "sqlite", Open: OpenSQLite}}
	if os.Getenv(EnvDSN) != "" {
		out = append(out, Engine{Name: "postgres", Open: OpenPostgres})
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set: CI must run store tests on PostgreSQL too", EnvDSN)
	} else {
		t.Logf("%s not set: skipping the PostgreSQL engine", EnvDSN)
	}
	return out
}

// Each runs fn as a subtest on every engine with the given migrations applied.
func Each(t *testing.T, sets []db.Set, fn func(t *testing.T, d *db.DB)) {
	for _, e := range Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, e.Open(t, sets...))
		})
	}
}

// OpenSQLite opens a fresh SQLite database in a temporary directory.
func OpenSQLite(t testing.TB, sets ...db.Set) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), "", t.TempDir(), nil)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	migrate(t, d, sets)
	return d
}

// OpenPostgres creates a throwaway database on the server named by
// KUMO_TEST_POSTGRES_DSN and drops it when the test ends.
func OpenPostgres(t testing.TB, sets ...db.Set) *db.DB {
	t.Helper()
	admin := os.Getenv(EnvDSN)
	if admin == "" {
		t.Skipf("%s not set", EnvDSN)
	}
	ctx := context.Background()
	a, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("open postgres admin: %v", err)
	}
	defer a.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kumo_test_" + hex.EncodeToString(b)
	if _, err := a.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	d, err := db.Open(ctx, u.String(), "", nil)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		d.Close()
		a, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	migrate(t, d, sets)
	return d
}

func migrate(t testing.TB, d *db.DB, sets []db.Set) {
	t.Helper()
	if len(sets) == 0 {
		return
	}
	if err := d.Migrate(context.Background(), []db.Phase{db.Expand, db.Contract}, sets...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}
