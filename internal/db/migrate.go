package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Phase is the half of a schema change a migration belongs to.
//
// Expand migrations only add (tables, nullable columns, indexes) and are safe
// to apply while the previous release is still running. Contract migrations
// remove what no running release uses any more; they are applied once every
// service and agent runs the new release. Data moves between the two by
// online migrations in batches, never inside a migration.
type Phase string

const (
	Expand   Phase = "expand"
	Contract Phase = "contract"
)

// Migration is one numbered schema step of a component.
type Migration struct {
	Version int
	Name    string
	// SQL runs on both engines unless the engine-specific text is set.
	SQL      string
	SQLite   string
	Postgres string
	// Func, when set, runs after the SQL inside the same transaction.
	Func func(ctx context.Context, tx *sql.Tx, d Dialect) error
}

func (m Migration) text(d Dialect) string {
	switch {
	case d == SQLite && m.SQLite != "":
		return m.SQLite
	case d == Postgres && m.Postgres != "":
		return m.Postgres
	}
	return m.SQL
}

// Set is the migrations of one component (the package that owns the tables).
// Versions within a phase are strictly increasing. A contract migration with
// version N runs only once every expand migration up to N is applied.
type Set struct {
	Component string
	Expand    []Migration
	Contract  []Migration
}

// Status is how far a component's schema has got.
type Status struct {
	Component        string
	Expand, Contract int // highest applied version, 0 if none
	ExpandLatest     int
	ContractLatest   int
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component TEXT NOT NULL,
	phase TEXT NOT NULL,
	version INTEGER NOT NULL,
	name TEXT NOT NULL,
	applied_at TEXT NOT NULL,
	PRIMARY KEY (component, phase, version)
)`

// Migrate applies the pending migrations of the given phases, in order:
// every component's expand steps, then every component's contract steps.
// Each migration runs in its own transaction together with its bookkeeping
// row, so an interrupted run resumes where it stopped.
func (d *DB) Migrate(ctx context.Context, phases []Phase, sets ...Set) error {
	if err := validateSets(sets); err != nil {
		return err
	}
	if _, err := d.write.ExecContext(ctx, migrationsTable); err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	for _, phase := range []Phase{Expand, Contract} {
		if !hasPhase(phases, phase) {
			continue
		}
		for _, set := range sets {
			if err := d.migrateSet(ctx, set, phase); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasPhase(phases []Phase, p Phase) bool {
	for _, x := range phases {
		if x == p {
			return true
		}
	}
	return false
}

func validateSets(sets []Set) error {
	seen := map[string]bool{}
	for _, s := range sets {
		if s.Component == "" {
			return errors.New("db: migration set without component")
		}
		if seen[s.Component] {
			return fmt.Errorf("db: component %q registered twice", s.Component)
		}
		seen[s.Component] = true
		for _, list := range [][]Migration{s.Expand, s.Contract} {
			prev := 0
			for _, m := range list {
				if m.Version <= prev {
					return fmt.Errorf("db: %s migration %d (%s) out of order", s.Component, m.Version, m.Name)
				}
				prev = m.Version
			}
		}
	}
	return nil
}

func (d *DB) applied(ctx context.Context, component string, phase Phase) (map[int]bool, error) {
	rows, err := d.write.QueryContext(ctx,
		`SELECT version FROM schema_migrations WHERE component = $1 AND phase = $2`, component, string(phase))
	if err != nil {
		return nil, fmt.Errorf("db: read schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[v] = true
	}
	return out, rows.Err()
}

func (d *DB) migrateSet(ctx context.Context, set Set, phase Phase) error {
	done, err := d.applied(ctx, set.Component, phase)
	if err != nil {
		return err
	}
	list := set.Expand
	if phase == Contract {
		list = set.Contract
	}
	for _, m := range list {
		if done[m.Version] {
			continue
		}
		if phase == Contract {
			exp, err := d.applied(ctx, set.Component, Expand)
			if err != nil {
				return err
			}
			for _, e := range set.Expand {
				if e.Version <= m.Version && !exp[e.Version] {
					return fmt.Errorf("db: %s contract %d needs expand %d first", set.Component, m.Version, e.Version)
				}
			}
		}
		start := time.Now()
		err := d.WithTx(ctx, func(tx *sql.Tx) error {
			if text := m.text(d.dialect); text != "" {
				if _, err := tx.ExecContext(ctx, text); err != nil {
					return err
				}
			}
			if m.Func != nil {
				if err := m.Func(ctx, tx, d.dialect); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (component, phase, version, name, applied_at) VALUES ($1, $2, $3, $4, $5)`,
				set.Component, string(phase), m.Version, m.Name, FormatTime(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("db: %s %s migration %d (%s): %w", set.Component, phase, m.Version, m.Name, err)
		}
		d.log.Info("applied migration", "component", set.Component, "phase", string(phase),
			"version", m.Version, "name", m.Name, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Versions reports, per component, the applied and latest versions.
func (d *DB) Versions(ctx context.Context, sets ...Set) ([]Status, error) {
	if _, err := d.write.ExecContext(ctx, migrationsTable); err != nil {
		return nil, fmt.Errorf("db: create schema_migrations: %w", err)
	}
	var out []Status
	for _, s := range sets {
		st := Status{Component: s.Component}
		for _, p := range []Phase{Expand, Contract} {
			done, err := d.applied(ctx, s.Component, p)
			if err != nil {
				return nil, err
			}
			hi := 0
			for v := range done {
				hi = max(hi, v)
			}
			list := s.Expand
			if p == Contract {
				list = s.Contract
			}
			latest := 0
			if len(list) > 0 {
				latest = list[len(list)-1].Version
			}
			if p == Expand {
				st.Expand, st.ExpandLatest = hi, latest
			} else {
				st.Contract, st.ContractLatest = hi, latest
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out, nil
}
