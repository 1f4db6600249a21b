package volume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/db"
)

// ---- snapshots ----

const snapCols = `id, project_id, user_id, volume_id, name, description, size, status, progress, location, metadata,
task, created_at, updated_at`

func scanSnapshot(sc interface{ Scan(...any) error }) (*Snapshot, error) {
	var sn Snapshot
	var name, desc, loc, task, ct, ut sql.NullString
	var meta string
	if err := sc.Scan(&sn.ID, &sn.ProjectID, &sn.UserID, &sn.VolumeID, &name, &desc, &sn.Size, &sn.Status, &sn.Progress,
		&loc, &meta, &task, &ct, &ut); err != nil {
		return nil, err
	}
	sn.Name, sn.Description, sn.Location = strPtr(name), strPtr(desc), strPtr(loc)
	sn.Metadata = jsonMap(meta)
	sn.Task = parseTask(task)
	sn.CreatedAt, sn.UpdatedAt = parseTime(ct), parseTime(ut)
	return &sn, nil
}

// CreateSnapshot inserts a snapshot after check allows it.
func (s *Store) CreateSnapshot(ctx context.Context, sn *Snapshot, check func(tx *sql.Tx) error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO volume_snapshots (`+snapCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			sn.ID, sn.ProjectID, sn.UserID, sn.VolumeID, nullStr(sn.Name), nullStr(sn.Description), sn.Size, sn.Status,
			sn.Progress, nullStr(sn.Location), jsonText(sn.Metadata), taskText(sn.Task), fmtTime(sn.CreatedAt), fmtTime(sn.UpdatedAt))
		return err
	})
}

// GetSnapshot loads a snapshot.
func (s *Store) GetSnapshot(ctx context.Context, q db.Querier, id string) (*Snapshot, error) {
	if q == nil {
		q = s.db.Reader()
	}
	sn, err := scanSnapshot(q.QueryRowContext(ctx, `SELECT `+snapCols+` FROM volume_snapshots WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	return sn, err
}

// UpdateSnapshot changes a snapshot in a transaction.
func (s *Store) UpdateSnapshot(ctx context.Context, id string, fn func(tx *sql.Tx, sn *Snapshot) error) (*Snapshot, error) {
	var out *Snapshot
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		sn, err := scanSnapshot(tx.QueryRowContext(ctx, `SELECT `+snapCols+` FROM volume_snapshots WHERE id = $1`+s.db.ForUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errNoRow
		}
		if err != nil {
			return err
		}
		if err := fn(tx, sn); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_snapshots SET name = $2, description = $3, status = $4, progress = $5,
location = $6, metadata = $7, task = $8, updated_at = $9 WHERE id = $1`,
			sn.ID, nullStr(sn.Name), nullStr(sn.Description), sn.Status, sn.Progress, nullStr(sn.Location),
			jsonText(sn.Metadata), taskText(sn.Task), fmtTime(sn.UpdatedAt))
		out = sn
		return err
	})
	return out, err
}

// DeleteSnapshot removes a snapshot row.
func (s *Store) DeleteSnapshot(ctx context.Context, id string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM volume_snapshots WHERE id = $1`, id)
		return err
	})
}

// SnapshotIDsInStatus lists snapshots in one of the statuses.
func (s *Store) SnapshotIDsInStatus(ctx context.Context, statuses ...string) ([]string, error) {
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = st
	}
	return s.strings(ctx, `SELECT id FROM volume_snapshots WHERE status IN (`+db.Placeholders(1, len(args))+`) ORDER BY created_at`, args...)
}

// CountSnapshots counts the snapshots of a volume, inside q.
func (s *Store) CountSnapshots(ctx context.Context, q db.Querier, volumeID string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM volume_snapshots WHERE volume_id = $1`, volumeID).Scan(&n)
	return n, err
}

var snapSort = map[string]string{
	"id": "id", "name": "COALESCE(name, '')", "status": "status", "size": "size", "created_at": "created_at",
	"updated_at": "COALESCE(updated_at, '')", "volume_id": "volume_id", "project_id": "project_id",
}

// SnapshotQuery is a validated snapshot list request.
type SnapshotQuery struct {
	Project     string
	AllProjects bool
	Name        *string
	Status      *string
	VolumeID    *string
	Sort        []SortKey
	Limit       int
	Marker      *Snapshot
	Offset      int
}

// ListSnapshots returns a page of snapshots.
func (s *Store) ListSnapshots(ctx context.Context, q SnapshotQuery) ([]*Snapshot, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if !q.AllProjects || q.Project != "" {
		where = append(where, "project_id = "+arg(q.Project))
	}
	if q.Name != nil {
		where = append(where, "name = "+arg(*q.Name))
	}
	if q.Status != nil {
		where = append(where, "status = "+arg(*q.Status))
	}
	if q.VolumeID != nil {
		where = append(where, "volume_id = "+arg(*q.VolumeID))
	}
	sorts := q.Sort
	if !slices.ContainsFunc(sorts, func(k SortKey) bool { return k.Key == "id" }) {
		desc := true
		if len(sorts) > 0 {
			desc = sorts[len(sorts)-1].Desc
		}
		sorts = append(slices.Clone(sorts), SortKey{Key: "id", Desc: desc})
	}
	if m := q.Marker; m != nil {
		where = append(where, keyset(sorts, snapSort, func(k string) any {
			switch k {
			case "id":
				return m.ID
			case "name":
				return deref(m.Name)
			case "status":
				return m.Status
			case "size":
				return m.Size
			case "created_at":
				return fmtTime(m.CreatedAt)
			case "updated_at":
				if t := fmtTime(m.UpdatedAt); t != nil {
					return t
				}
				return ""
			case "volume_id":
				return m.VolumeID
			case "project_id":
				return m.ProjectID
			}
			return nil
		}, arg))
	}
	query := `SELECT ` + snapCols + ` FROM volume_snapshots`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += orderBy(sorts, snapSort)
	if q.Limit > 0 {
		query += " LIMIT " + arg(q.Limit)
	}
	if q.Offset > 0 {
		query += " OFFSET " + arg(q.Offset)
	}
	rows, err := s.db.Reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return db.Collect(rows, scanSnapshot)
}

// ---- volume types ----

func (s *Store) loadSpecs(ctx context.Context, q db.Querier, ts []*VolumeType) error {
	if len(ts) == 0 {
		return nil
	}
	byID := map[string]*VolumeType{}
	args := make([]any, len(ts))
	for i, t := range ts {
		byID[t.ID] = t
		args[i] = t.ID
		t.ExtraSpecs = map[string]string{}
	}
	return eachKeyValue(ctx, q, `SELECT type_id, key, value FROM volume_type_extra_specs WHERE type_id IN (`+db.Placeholders(1, len(args))+`)`, args,
		func(id, k, v string) { byID[id].ExtraSpecs[k] = v })
}

func (s *Store) queryTypes(ctx context.Context, q db.Querier, tail string, args ...any) ([]*VolumeType, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, description, is_public, created_at, updated_at, qos_specs_id FROM volume_types `+tail, args...)
	if err != nil {
		return nil, err
	}
	var out []*VolumeType
	for rows.Next() {
		var t VolumeType
		var desc, ct, ut, qos sql.NullString
		if err := rows.Scan(&t.ID, &t.Name, &desc, &t.IsPublic, &ct, &ut, &qos); err != nil {
			rows.Close()
			return nil, err
		}
		t.Description, t.QoSSpecsID = strPtr(desc), strPtr(qos)
		t.CreatedAt, t.UpdatedAt = parseTime(ct), parseTime(ut)
		out = append(out, &t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.loadSpecs(ctx, q, out)
}

// GetType finds a type by id, or by name when byName is set.
func (s *Store) GetType(ctx context.Context, q db.Querier, key string, byName bool) (*VolumeType, error) {
	if q == nil {
		q = s.db.Reader()
	}
	col := "id"
	if byName {
		col = "name"
	}
	ts, err := s.queryTypes(ctx, q, `WHERE `+col+` = $1`, key)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errNoRow
	}
	return ts[0], nil
}

// ListTypes lists types; with project set, private types are included
// only when project has access (admins pass "" and all=true).
func (s *Store) ListTypes(ctx context.Context, project string, all bool, isPublic *bool) ([]*VolumeType, error) {
	var where []string
	var args []any
	if !all {
		args = append(args, project)
		where = append(where, "(is_public OR id IN (SELECT type_id FROM volume_type_projects WHERE project_id = $1))")
	}
	if isPublic != nil {
		args = append(args, *isPublic)
		where = append(where, fmt.Sprintf("is_public = $%d", len(args)))
	}
	tail := ""
	if len(where) > 0 {
		tail = "WHERE " + strings.Join(where, " AND ")
	}
	return s.queryTypes(ctx, s.db.Reader(), tail+" ORDER BY name", args...)
}

// HasTypeAccess reports whether project may use a private type.
func (s *Store) HasTypeAccess(ctx context.Context, typeID, project string) (bool, error) {
	var n int
	err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM volume_type_projects WHERE type_id = $1 AND project_id = $2`, typeID, project).Scan(&n)
	return n > 0, err
}

// CreateType inserts a type with its specs.
func (s *Store) CreateType(ctx context.Context, t *VolumeType) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO volume_types (id, name, description, is_public, created_at) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, t.Name, nullStr(t.Description), t.IsPublic, fmtTime(t.CreatedAt))
		if err != nil {
			if db.IsUniqueViolation(err) {
				return errDuplicate
			}
			return err
		}
		return s.writeSpecs(ctx, tx, t.ID, t.ExtraSpecs)
	})
}

func (s *Store) writeSpecs(ctx context.Context, tx *sql.Tx, id string, specs map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM volume_type_extra_specs WHERE type_id = $1`, id); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(specs)) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_type_extra_specs (type_id, key, value) VALUES ($1, $2, $3)`, id, k, specs[k]); err != nil {
			return err
		}
	}
	return nil
}

// UpdateType changes a type (fn may refuse) and saves it with its specs.
func (s *Store) UpdateType(ctx context.Context, id string, fn func(tx *sql.Tx, t *VolumeType) error) (*VolumeType, error) {
	var out *VolumeType
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		ts, err := s.queryTypes(ctx, tx, `WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			return errNoRow
		}
		t := ts[0]
		if err := fn(tx, t); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_types SET name = $2, description = $3, is_public = $4, updated_at = $5 WHERE id = $1`,
			t.ID, t.Name, nullStr(t.Description), t.IsPublic, fmtTime(t.UpdatedAt))
		if err != nil {
			if db.IsUniqueViolation(err) {
				return errDuplicate
			}
			return err
		}
		out = t
		return s.writeSpecs(ctx, tx, t.ID, t.ExtraSpecs)
	})
	return out, err
}

// DeleteType removes a type unless volumes use it.
func (s *Store) DeleteType(ctx context.Context, id string, inUse error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM volumes WHERE type_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return inUse
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM volume_types WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return errNoRow
		}
		return nil
	})
}

// TypeProjects lists the projects with access to a private type.
func (s *Store) TypeProjects(ctx context.Context, id string) ([]string, error) {
	return s.strings(ctx, `SELECT project_id FROM volume_type_projects WHERE type_id = $1 ORDER BY project_id`, id)
}

// SetTypeAccess adds (add=true) or removes a project's access.
func (s *Store) SetTypeAccess(ctx context.Context, id, project string, add bool) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if add {
			_, err := tx.ExecContext(ctx, `INSERT INTO volume_type_projects (type_id, project_id) VALUES ($1, $2)`, id, project)
			if db.IsUniqueViolation(err) {
				return errDuplicate
			}
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM volume_type_projects WHERE type_id = $1 AND project_id = $2`, id, project)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNoRow
		}
		return nil
	})
}

// ---- quotas ----

// Quotas returns a project's explicit limits, inside q.
func (s *Store) Quotas(ctx context.Context, q db.Querier, project string) (map[string]int64, error) {
	if q == nil {
		q = s.db.Reader()
	}
	rows, err := q.QueryContext(ctx, `SELECT resource, hard_limit FROM volume_quotas WHERE project_id = $1`, project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var r string
		var n int64
		if err := rows.Scan(&r, &n); err != nil {
			return nil, err
		}
		out[r] = n
	}
	return out, rows.Err()
}

// SetQuotas writes limits, after check (run in the transaction) allows.
func (s *Store) SetQuotas(ctx context.Context, project string, limits map[string]int64, check func(tx *sql.Tx) error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		for _, r := range slices.Sorted(maps.Keys(limits)) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM volume_quotas WHERE project_id = $1 AND resource = $2`, project, r); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO volume_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)`, project, r, limits[r]); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteQuotas drops a project's explicit limits.
func (s *Store) DeleteQuotas(ctx context.Context, project string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM volume_quotas WHERE project_id = $1`, project)
		return err
	})
}

// ---- services ----

// ServiceState is the stored admin state of a service.
type ServiceState struct {
	Disabled bool
	Reason   *string
}

// ServiceStates returns the stored states by "binary/host".
func (s *Store) ServiceStates(ctx context.Context) (map[string]ServiceState, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT binary_name, host, disabled, disabled_reason FROM volume_services`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]ServiceState{}
	for rows.Next() {
		var b, h string
		var st ServiceState
		var reason sql.NullString
		if err := rows.Scan(&b, &h, &st.Disabled, &reason); err != nil {
			return nil, err
		}
		st.Reason = strPtr(reason)
		out[b+"/"+h] = st
	}
	return out, rows.Err()
}

// SetServiceState stores a service's admin state.
func (s *Store) SetServiceState(ctx context.Context, binary, host string, st ServiceState, now string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM volume_services WHERE binary_name = $1 AND host = $2`, binary, host); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO volume_services (binary_name, host, disabled, disabled_reason, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			binary, host, st.Disabled, nullStr(st.Reason), now)
		return err
	})
}
