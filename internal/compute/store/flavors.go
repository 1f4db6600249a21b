package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// Flavor is a row of compute_flavors with its extra specs.
type Flavor struct {
	ID          int64 // internal key
	FlavorID    string
	Name        string
	MemoryMB    int64
	VCPUs       int64
	RootGB      int64
	EphemeralGB int64
	Swap        int64
	RxtxFactor  float64
	IsPublic    bool
	Disabled    bool
	Description *string
	ExtraSpecs  map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const flavorSelect = `SELECT id, flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap,
	rxtx_factor, is_public, disabled, description, created_at, updated_at FROM compute_flavors`

func scanFlavor(sc interface{ Scan(...any) error }) (*Flavor, error) {
	var f Flavor
	var desc, created, updated sql.NullString
	if err := sc.Scan(&f.ID, &f.FlavorID, &f.Name, &f.MemoryMB, &f.VCPUs, &f.RootGB, &f.EphemeralGB,
		&f.Swap, &f.RxtxFactor, &f.IsPublic, &f.Disabled, &desc, &created, &updated); err != nil {
		return nil, err
	}
	if desc.Valid {
		d := desc.String
		f.Description = &d
	}
	f.CreatedAt, f.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return &f, nil
}

// SortKeys are the flavor attributes lists may be sorted by (Nova's
// flavor column names), mapped to SQL expressions.
var SortKeys = map[string]string{
	"flavorid": "flavorid", "name": "name", "memory_mb": "memory_mb", "vcpus": "vcpus",
	"root_gb": "root_gb", "ephemeral_gb": "ephemeral_gb", "swap": "swap",
	"rxtx_factor": "rxtx_factor", "is_public": "is_public", "disabled": "disabled",
	"description": "COALESCE(description, '')", "created_at": "created_at",
	"updated_at": "COALESCE(updated_at, '')", "id": "id",
}

// FlavorFilter selects flavors for a list.
type FlavorFilter struct {
	// IsPublic nil lists public and private flavors alike; true lists the
	// public ones plus, when ProjectID is set, the private ones that
	// project was given access to; false lists the private ones.
	IsPublic     *bool
	ProjectID    string
	OnlyEnabled  bool
	MinMemoryMB  int64
	MinRootGB    int64
	SortKey      string // a key of SortKeys; default flavorid
	SortDesc     bool
	Limit        int // 0: no limit
	Marker       string
	WithoutSpecs bool
}

// ListFlavors returns the flavors matching f, ordered and paginated.
func (s *Store) ListFlavors(ctx context.Context, f FlavorFilter) ([]*Flavor, error) {
	q := s.db.Reader()
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.IsPublic != nil {
		if *f.IsPublic && f.ProjectID != "" {
			where = append(where, "(is_public = "+arg(true)+" OR id IN (SELECT flavor_id FROM compute_flavor_projects WHERE project_id = "+arg(f.ProjectID)+"))")
		} else {
			where = append(where, "is_public = "+arg(*f.IsPublic))
		}
	}
	if f.OnlyEnabled {
		where = append(where, "disabled = "+arg(false))
	}
	if f.MinMemoryMB > 0 {
		where = append(where, "memory_mb >= "+arg(f.MinMemoryMB))
	}
	if f.MinRootGB > 0 {
		where = append(where, "root_gb >= "+arg(f.MinRootGB))
	}
	key := SortKeys[f.SortKey]
	if key == "" {
		key = "flavorid"
	}
	dir, cmp := "ASC", ">"
	if f.SortDesc {
		dir, cmp = "DESC", "<"
	}
	if f.Marker != "" {
		m, err := getFlavor(ctx, q, "flavorid", f.Marker, "")
		if err != nil {
			if err == ErrNoFlavor {
				return nil, ErrMarker
			}
			return nil, err
		}
		// Compare against the marker row's own value of the sort key.
		mv := "(SELECT " + key + " FROM compute_flavors WHERE id = " + arg(m.ID) + ")"
		mid := arg(m.ID)
		where = append(where, fmt.Sprintf("(%s %s %s OR (%s = %s AND id %s %s))", key, cmp, mv, key, mv, cmp, mid))
	}
	query := flavorSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s %s, id %s", key, dir, dir)
	if f.Limit > 0 {
		query += " LIMIT " + arg(f.Limit)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Flavor
	for rows.Next() {
		fl, err := scanFlavor(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, fl)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !f.WithoutSpecs {
		if err := s.loadSpecs(ctx, q, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) loadSpecs(ctx context.Context, q db.Querier, fls []*Flavor) error {
	if len(fls) == 0 {
		return nil
	}
	byID := make(map[int64]*Flavor, len(fls))
	ids := make([]any, 0, len(fls))
	for _, f := range fls {
		f.ExtraSpecs = map[string]string{}
		byID[f.ID] = f
		ids = append(ids, f.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT flavor_id, spec_key, value FROM compute_flavor_extra_specs WHERE flavor_id IN (`+
		db.Placeholders(1, len(ids))+`)`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return err
		}
		if f := byID[id]; f != nil {
			f.ExtraSpecs[k] = v
		}
	}
	return rows.Err()
}

func getFlavor(ctx context.Context, q db.Querier, col, val, lock string) (*Flavor, error) {
	f, err := scanFlavor(q.QueryRowContext(ctx, flavorSelect+" WHERE "+col+" = $1"+lock, val))
	if err == sql.ErrNoRows {
		return nil, ErrNoFlavor
	}
	return f, err
}

// GetFlavor returns the flavor with the public id flavorID.
func (s *Store) GetFlavor(ctx context.Context, flavorID string) (*Flavor, error) {
	f, err := getFlavor(ctx, s.db.Reader(), "flavorid", flavorID, "")
	if err != nil {
		return nil, err
	}
	if err := s.loadSpecs(ctx, s.db.Reader(), []*Flavor{f}); err != nil {
		return nil, err
	}
	return f, nil
}

// CreateFlavor inserts f (and its extra specs), filling ID and CreatedAt.
// A taken flavor id or name is ErrDuplicateID or ErrDuplicateName.
func (s *Store) CreateFlavor(ctx context.Context, f *Flavor) error {
	f.CreatedAt = time.Now().UTC()
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_flavors WHERE flavorid = $1`, f.FlavorID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrDuplicateID
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_flavors WHERE name = $1`, f.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrDuplicateName
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO compute_flavors (flavorid, name, memory_mb, vcpus, root_gb,
			ephemeral_gb, swap, rxtx_factor, is_public, disabled, description, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			f.FlavorID, f.Name, f.MemoryMB, f.VCPUs, f.RootGB, f.EphemeralGB, f.Swap, f.RxtxFactor,
			f.IsPublic, f.Disabled, f.Description, db.FormatTime(f.CreatedAt)).Scan(&f.ID)
		if db.IsUniqueViolation(err) {
			// A concurrent create won the race; report which key clashed.
			if e := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_flavors WHERE flavorid = $1`, f.FlavorID).Scan(&n); e == nil && n > 0 {
				return ErrDuplicateID
			}
			return ErrDuplicateName
		}
		if err != nil {
			return err
		}
		for k, v := range f.ExtraSpecs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_flavor_extra_specs (flavor_id, spec_key, value) VALUES ($1, $2, $3)`, f.ID, k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// UpdateFlavorDescription sets the description of a flavor.
func (s *Store) UpdateFlavorDescription(ctx context.Context, flavorID string, desc *string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE compute_flavors SET description = $1, updated_at = $2 WHERE flavorid = $3`,
			desc, db.FormatTime(time.Now()), flavorID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNoFlavor
		}
		return nil
	})
}

// DeleteFlavor removes a flavor with its extra specs and access list.
func (s *Store) DeleteFlavor(ctx context.Context, flavorID string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		f, err := getFlavor(ctx, tx, "flavorid", flavorID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM compute_flavor_extra_specs WHERE flavor_id = $1`,
			`DELETE FROM compute_flavor_projects WHERE flavor_id = $1`,
			`DELETE FROM compute_flavors WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, f.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// UpdateExtraSpecs creates or replaces the given extra specs of a flavor.
func (s *Store) UpdateExtraSpecs(ctx context.Context, flavorID string, specs map[string]string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		f, err := getFlavor(ctx, tx, "flavorid", flavorID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		for k, v := range specs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_flavor_extra_specs (flavor_id, spec_key, value) VALUES ($1, $2, $3)
				ON CONFLICT (flavor_id, spec_key) DO UPDATE SET value = excluded.value`, f.ID, k, v); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE compute_flavors SET updated_at = $1 WHERE id = $2`, db.FormatTime(time.Now()), f.ID)
		return err
	})
}

// DeleteExtraSpec removes one extra spec; a missing key is ErrNotFound.
func (s *Store) DeleteExtraSpec(ctx context.Context, flavorID, key string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		f, err := getFlavor(ctx, tx, "flavorid", flavorID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM compute_flavor_extra_specs WHERE flavor_id = $1 AND spec_key = $2`, f.ID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// FlavorAccess lists the projects given access to a flavor, sorted.
func (s *Store) FlavorAccess(ctx context.Context, flavorID string) ([]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT p.project_id FROM compute_flavor_projects p
		JOIN compute_flavors f ON f.id = p.flavor_id WHERE f.flavorid = $1 ORDER BY p.project_id`, flavorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AddFlavorAccess gives projectID access to a flavor; an existing grant is
// ErrExists.
func (s *Store) AddFlavorAccess(ctx context.Context, flavorID, projectID string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		f, err := getFlavor(ctx, tx, "flavorid", flavorID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO compute_flavor_projects (flavor_id, project_id) VALUES ($1, $2)
			ON CONFLICT (flavor_id, project_id) DO NOTHING`, f.ID, projectID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrExists
		}
		return nil
	})
}

// RemoveFlavorAccess withdraws a grant; a missing one is ErrNotFound.
func (s *Store) RemoveFlavorAccess(ctx context.Context, flavorID, projectID string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		f, err := getFlavor(ctx, tx, "flavorid", flavorID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM compute_flavor_projects WHERE flavor_id = $1 AND project_id = $2`, f.ID, projectID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
