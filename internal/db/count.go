package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
)

// Statement counting: every connection the DB opens is wrapped so that
// each statement sent to the engine (Exec or Query, prepared or not) and
// each transaction begun adds one to the DB's counters. The benchmarks
// divide the difference by the operations they ran ("queries per boot");
// kumo serve exports the counters on /metrics. The cost is two atomic
// adds per statement.

// Statement cache (SQLite only): database/sql prepares every statement
// run on a *sql.DB or *sql.Tx afresh, and SQLite's parser then costs
// more than most of Kumo's small queries themselves (a quarter to a
// third of the CPU of token issue and of agent heartbeats). So each
// SQLite connection keeps its prepared statements by query text and
// reuses one while it is not in use by an open result set (then the
// query is prepared afresh as before). PostgreSQL's driver (pgx) caches
// prepared statements itself.
const (
	stmtCacheSize   = 128  // statements per connection
	stmtCacheMaxLen = 4096 // longer texts (large IN lists) are not kept
)

// counters are a DB's statement and transaction counts.
type counters struct {
	queries atomic.Uint64
	txs     atomic.Uint64
}

// Queries reports how many SQL statements this DB has run since it was
// opened (both pools, inside and outside transactions; BEGIN and COMMIT
// not included).
func (d *DB) Queries() uint64 { return d.count.queries.Load() }

// Transactions reports how many transactions this DB has begun.
func (d *DB) Transactions() uint64 { return d.count.txs.Load() }

// openCounted opens a pool on the registered driver name whose
// connections count statements into c.
func openCounted(name, dsn string, c *counters) (*sql.DB, error) {
	probe, err := sql.Open(name, dsn)
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	_ = probe.Close()
	var conn driver.Connector = dsnConnector{dsn: dsn, drv: drv}
	if dc, ok := drv.(driver.DriverContext); ok {
		if conn, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	}
	return sql.OpenDB(countingConnector{Connector: conn, c: c, cache: name == "sqlite"}), nil
}

type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (d dsnConnector) Connect(context.Context) (driver.Conn, error) { return d.drv.Open(d.dsn) }
func (d dsnConnector) Driver() driver.Driver                        { return d.drv }

type countingConnector struct {
	driver.Connector
	c     *counters
	cache bool
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	w := &countingConn{Conn: conn, c: cc.c}
	if _, ok := conn.(driver.ConnPrepareContext); ok && cc.cache {
		w.stmts = map[string]*cachedStmt{}
	}
	return w, nil
}

// cachedStmt is a prepared statement kept by its connection; busy while
// a result set of it is open.
type cachedStmt struct {
	s    driver.Stmt
	busy atomic.Bool
}

// cached returns the connection's idle prepared statement for query,
// preparing and keeping it if new; nil when the cache is off, the
// statement is busy or does not prepare (the caller then takes the
// uncached path, which reports any error).
func (w *countingConn) cached(ctx context.Context, query string) *cachedStmt {
	if w.stmts == nil || len(query) > stmtCacheMaxLen {
		return nil
	}
	if cs, ok := w.stmts[query]; ok {
		if cs.busy.Load() {
			return nil
		}
		return cs
	}
	if len(w.stmts) >= stmtCacheSize {
		for q, cs := range w.stmts {
			if !cs.busy.Load() {
				_ = cs.s.Close()
				delete(w.stmts, q)
			}
		}
	}
	s, err := w.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	_, qc := s.(driver.StmtQueryContext)
	_, ec := s.(driver.StmtExecContext)
	if !qc || !ec {
		_ = s.Close()
		return nil
	}
	cs := &cachedStmt{s: s}
	w.stmts[query] = cs
	return cs
}

// Close closes the kept statements and the connection.
func (w *countingConn) Close() error {
	for _, cs := range w.stmts {
		_ = cs.s.Close()
	}
	w.stmts = nil
	return w.Conn.Close()
}

// cachedRows marks its statement idle again when closed.
type cachedRows struct {
	driver.Rows
	cs     *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.cs.busy.Store(false)
	}
	return err
}

// countingConn forwards to the engine's connection, counting statements;
// optional interfaces the engine lacks answer driver.ErrSkip (or the
// database/sql default), so database/sql behaves as without the wrapper.
type countingConn struct {
	driver.Conn
	c     *counters
	stmts map[string]*cachedStmt // nil: no statement cache
}

var (
	_ driver.ConnPrepareContext = (*countingConn)(nil)
	_ driver.ConnBeginTx        = (*countingConn)(nil)
	_ driver.ExecerContext      = (*countingConn)(nil)
	_ driver.QueryerContext     = (*countingConn)(nil)
	_ driver.Pinger             = (*countingConn)(nil)
	_ driver.SessionResetter    = (*countingConn)(nil)
	_ driver.Validator          = (*countingConn)(nil)
	_ driver.NamedValueChecker  = (*countingConn)(nil)
)

func (w *countingConn) Prepare(query string) (driver.Stmt, error) {
	s, err := w.Conn.Prepare(query)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: s, c: w.c}, nil
}

func (w *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	p, ok := w.Conn.(driver.ConnPrepareContext)
	if !ok {
		return w.Prepare(query)
	}
	s, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: s, c: w.c}, nil
}

func (w *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	w.c.txs.Add(1)
	if b, ok := w.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return w.Conn.Begin() //nolint:staticcheck // the engine offers nothing else
}

func (w *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if cs := w.cached(ctx, query); cs != nil {
		w.c.queries.Add(1)
		return cs.s.(driver.StmtExecContext).ExecContext(ctx, args)
	}
	e, ok := w.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		w.c.queries.Add(1)
	}
	return r, err
}

func (w *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if cs := w.cached(ctx, query); cs != nil {
		w.c.queries.Add(1)
		cs.busy.Store(true)
		rows, err := cs.s.(driver.StmtQueryContext).QueryContext(ctx, args)
		if err != nil {
			cs.busy.Store(false)
			return nil, err
		}
		return &cachedRows{Rows: rows, cs: cs}, nil
	}
	q, ok := w.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		w.c.queries.Add(1)
	}
	return r, err
}

func (w *countingConn) Ping(ctx context.Context) error {
	if p, ok := w.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (w *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := w.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (w *countingConn) IsValid() bool {
	if v, ok := w.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (w *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := w.Conn.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// countingStmt counts executions of a prepared statement.
type countingStmt struct {
	driver.Stmt
	c *counters
}

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.c.queries.Add(1)
	return s.Stmt.Exec(args) //nolint:staticcheck // fallback of ExecContext
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.c.queries.Add(1)
	return s.Stmt.Query(args) //nolint:staticcheck // fallback of QueryContext
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		s.c.queries.Add(1)
		return e.ExecContext(ctx, args)
	}
	vals, err := values(args)
	if err != nil {
		return nil, err
	}
	return s.Exec(vals)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		s.c.queries.Add(1)
		return q.QueryContext(ctx, args)
	}
	vals, err := values(args)
	if err != nil {
		return nil, err
	}
	return s.Query(vals)
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func values(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("db: named parameters are not supported")
		}
		out[i] = a.Value
	}
	return out, nil
}
