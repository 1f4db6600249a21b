// Package db opens Kumo's relational database (embedded SQLite by default,
// PostgreSQL for scale), runs expand/contract schema migrations and offers the
// small helpers that every store shares: transactions, dialect-neutral
// placeholders, timestamps and constraint-error classification.
//
// All SQL in Kumo is written with PostgreSQL-style positional placeholders
// ($1, $2, ...); the SQLite driver accepts them as well, so a store needs a
// single query text for both engines.
package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a handle on Kumo's database. Reads may run concurrently; writes go
// through WithTx. On SQLite writes are serialised through a single
// connection so that concurrent writers queue instead of failing with
// SQLITE_BUSY.
type DB struct {
	dialect Dialect
	read    *sql.DB
	write   *sql.DB
	dsn     string
	log     *slog.Logger
	count   *counters
}

// Open connects to the database named by dsn. An empty dsn means an embedded
// SQLite database at dataDir/kumo.db. A dsn starting with postgres:// or
// postgresql:// selects PostgreSQL; sqlite:///path or file:path selects SQLite.
func Open(ctx context.Context, dsn, dataDir string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case dsn == "":
		if dataDir == "" {
			return nil, errors.New("db: no dsn and no data dir")
		}
		return openSQLite(ctx, filepath.Join(dataDir, "kumo.db"), log)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, log)
	case strings.HasPrefix(dsn, "sqlite://"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"), log)
	case strings.HasPrefix(dsn, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "file:"), log)
	default:
		return nil, fmt.Errorf("db: unsupported dsn %q (want postgres://, sqlite:// or empty)", redact(dsn))
	}
}

func openSQLite(ctx context.Context, path string, log *slog.Logger) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("db: create directory: %w", err)
	}
	// No memory map (mmap_size): a reader connection that starts a read
	// transaction after another connection wrote unmaps the whole map
	// (SQLite's pagerBeginReadTransaction), and munmap with its TLB
	// shootdown across cores cost ~40 % of the server's CPU in the
	// write-heavy boot-and-delete benchmark; reading through the page
	// cache instead costs the 1,000-server list among 100,000 servers
	// ~7 % more (docs/performance.md).
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(10000)",
		"foreign_keys(ON)",
		"synchronous(NORMAL)",
		"cache_size(-16000)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	c := &counters{}
	write, err := openCounted("sqlite", dsn, c)
	if err != nil {
		return nil, fmt.Errorf("db: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	read, err := openCounted("sqlite", dsn, c)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("db: open sqlite: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	read.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{dialect: SQLite, read: read, write: write, dsn: path, log: log, count: c}
	if err := write.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: ping sqlite %s: %w", path, err)
	}
	return d, nil
}

func openPostgres(ctx context.Context, dsn string, log *slog.Logger) (*DB, error) {
	c := &counters{}
	pool, err := openCounted("pgx", dsn, c)
	if err != nil {
		return nil, fmt.Errorf("db: open postgres: %w", err)
	}
	pool.SetMaxOpenConns(32)
	pool.SetMaxIdleConns(16)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{dialect: Postgres, read: pool, write: pool, dsn: redact(dsn), log: log, count: c}
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: ping postgres %s: %w", redact(dsn), err)
	}
	return d, nil
}

// redact hides a password in a URL-style dsn.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect reports the engine.
func (d *DB) Dialect() Dialect { return d.dialect }

// String describes the database without secrets.
func (d *DB) String() string { return string(d.dialect) + ":" + d.dsn }

// Close closes every connection.
func (d *DB) Close() error {
	err := d.read.Close()
	if d.write != d.read {
		err = errors.Join(err, d.write.Close())
	}
	return err
}

// Querier is what both *sql.DB and *sql.Tx offer; stores take it so a
// query runs the same inside or outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Scanner reads one row: *sql.Row and *sql.Rows both offer it. An alias,
// so scan functions written against the same method set fit without naming it.
type Scanner = interface{ Scan(dest ...any) error }

// Collect scans every row of rows with scan and closes rows. No rows give an
// empty slice, not nil.
func Collect[T any](rows *sql.Rows, scan func(Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Reader returns the pool for reads outside a transaction.
func (d *DB) Reader() Querier { return d.read }

// Stats returns the pool statistics of the read and write pools.
func (d *DB) Stats() (read, write sql.DBStats) { return d.read.Stats(), d.write.Stats() }

// WithTx runs fn in a write transaction, committing when fn returns nil and
// rolling back otherwise. On PostgreSQL a serialization failure or deadlock
// is retried a few times.
func (d *DB) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = d.tryTx(ctx, fn)
		if err == nil || !isRetryable(err) {
			return err
		}
		d.log.Debug("retrying transaction", "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

func (d *DB) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	return nil
}

func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint failure on either engine.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign key failure.
func IsForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// TimeFormat is how timestamps are stored: fixed width UTC text, so that
// text comparison orders them and both engines read them the same way.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t for storage; the zero time becomes NULL.
func FormatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(TimeFormat)
}

// ParseTime reads a stored timestamp; NULL or empty gives the zero time.
func ParseTime(s sql.NullString) time.Time {
	if !s.Valid || s.String == "" {
		return time.Time{}
	}
	if t, ok := parseStored(s.String); ok {
		return t
	}
	t, err := time.Parse(TimeFormat, s.String)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s.String)
	}
	return t.UTC()
}

// parseStored reads TimeFormat without time.Parse's generality (list
// queries read two timestamps a row: time.Parse was a fifth of the cost
// of scanning a 1,000-image page). ok is false for any other text, which
// the caller hands to time.Parse.
func parseStored(s string) (time.Time, bool) {
	// 2006-01-02T15:04:05.000000Z
	if len(s) != len(TimeFormat) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
		s[19] != '.' || s[26] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
				return 0
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec, usec := num(11, 13), num(14, 16), num(17, 19), num(20, 26)
	if !ok || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, usec*1000, time.UTC)
	if t.Day() != day { // February 30th and the like: let time.Parse refuse it
		return time.Time{}, false
	}
	return t, true
}

// Placeholders returns "$from, $from+1, ..." for n arguments, for IN lists.
func Placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

// ForUpdate returns the row-locking suffix for SELECTs inside a write
// transaction: " FOR UPDATE" on PostgreSQL, nothing on SQLite, where the
// single writer already holds the database lock.
func (d *DB) ForUpdate() string {
	if d.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// InList returns "IN (…)" over the elements of one parameter, $n, that
// holds a JSON array of strings (see JSONStrings): a query text that does
// not change with the number of values, so it is parsed once per
// connection, unlike an IN list of one placeholder per value.
func (d *DB) InList(n int) string {
	if d.dialect == Postgres {
		return fmt.Sprintf("IN (SELECT jsonb_array_elements_text($%d::jsonb))", n)
	}
	return fmt.Sprintf("IN (SELECT value FROM json_each($%d))", n)
}

// JSONStrings encodes vals as the JSON array parameter of InList.
func JSONStrings(vals []string) string {
	if vals == nil {
		vals = []string{}
	}
	b, _ := json.Marshal(vals)
	return string(b)
}
