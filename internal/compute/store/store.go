package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kumo-cloud/kumo/internal/db"
)

// Sentinel errors of the store; the API maps them to Nova's faults.
var (
	ErrNotFound      = errors.New("not found")
	ErrNoFlavor      = errors.New("flavor not found")
	ErrDuplicateID   = errors.New("duplicate id")
	ErrDuplicateName = errors.New("duplicate name")
	ErrExists        = errors.New("already exists")
	ErrMarker        = errors.New("marker not found")
)

// Store is the compute SQL on one database.
type Store struct {
	db *db.DB
}

// New returns the store on d.
func New(d *db.DB) *Store { return &Store{db: d} }

// DB returns the database handle.
func (s *Store) DB() *db.DB { return s.db }

// WithTx runs fn in a write transaction.
func (s *Store) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.WithTx(ctx, fn)
}

// Lock takes the quota lock row of scope inside tx, creating it on first
// use: exclusively, or shared when shared is set. Concurrent transactions
// locking the same scope exclusively queue on PostgreSQL; shared holders
// only queue behind (and hold off) an exclusive one. On SQLite the write
// transaction already excludes other writers, so there is nothing to do.
// A shared lock may be upgraded by locking again exclusively.
func (s *Store) Lock(ctx context.Context, tx *sql.Tx, scope string, shared bool) error {
	if s.db.Dialect() == db.SQLite {
		return nil
	}
	q := `SELECT scope FROM compute_quota_locks WHERE scope = $1 FOR UPDATE`
	if shared {
		q = `SELECT scope FROM compute_quota_locks WHERE scope = $1 FOR SHARE`
	}
	// The row exists but on the first use of a scope: one round trip.
	var got string
	err := tx.QueryRowContext(ctx, q, scope).Scan(&got)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO compute_quota_locks (scope) VALUES ($1) ON CONFLICT (scope) DO NOTHING`, scope); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, q, scope).Scan(&got)
}
