package volume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kumo-cloud/kumo/internal/db"
)

const backupCols = `id, project_id, user_id, volume_id, name, description, size, status, fail_reason, location, task,
created_at, updated_at`

func scanBackup(sc interface{ Scan(...any) error }) (*Backup, error) {
	var b Backup
	var name, desc, fail, loc, task, ct, ut sql.NullString
	if err := sc.Scan(&b.ID, &b.ProjectID, &b.UserID, &b.VolumeID, &name, &desc, &b.Size, &b.Status, &fail, &loc, &task, &ct, &ut); err != nil {
		return nil, err
	}
	b.Name, b.Description, b.FailReason, b.Location = strPtr(name), strPtr(desc), strPtr(fail), strPtr(loc)
	b.Task = parseTask(task)
	b.CreatedAt, b.UpdatedAt = parseTime(ct), parseTime(ut)
	return &b, nil
}

func backupRow(b *Backup) []any {
	return []any{b.ID, b.ProjectID, b.UserID, b.VolumeID, nullStr(b.Name), nullStr(b.Description), b.Size, b.Status,
		nullStr(b.FailReason), nullStr(b.Location), taskText(b.Task), fmtTime(b.CreatedAt), fmtTime(b.UpdatedAt)}
}

func (s *Store) insertBackup(ctx context.Context, tx *sql.Tx, b *Backup) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO volume_backups (`+backupCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, backupRow(b)...)
	return err
}

// GetBackup loads a backup.
func (s *Store) GetBackup(ctx context.Context, q db.Querier, id string) (*Backup, error) {
	if q == nil {
		q = s.db.Reader()
	}
	b, err := scanBackup(q.QueryRowContext(ctx, `SELECT `+backupCols+` FROM volume_backups WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	return b, err
}

// UpdateBackup changes a backup in a transaction.
func (s *Store) UpdateBackup(ctx context.Context, id string, fn func(tx *sql.Tx, b *Backup) error) (*Backup, error) {
	var out *Backup
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		b, err := scanBackup(tx.QueryRowContext(ctx, `SELECT `+backupCols+` FROM volume_backups WHERE id = $1`+s.db.ForUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errNoRow
		}
		if err != nil {
			return err
		}
		if err := fn(tx, b); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_backups SET name = $2, description = $3, status = $4, fail_reason = $5,
location = $6, task = $7, updated_at = $8 WHERE id = $1`,
			b.ID, nullStr(b.Name), nullStr(b.Description), b.Status, nullStr(b.FailReason), nullStr(b.Location), taskText(b.Task), fmtTime(b.UpdatedAt))
		out = b
		return err
	})
	return out, err
}

// DeleteBackup removes a backup row.
func (s *Store) DeleteBackup(ctx context.Context, id string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM volume_backups WHERE id = $1`, id)
		return err
	})
}

// BackupIDsInStatus lists backups in one of the statuses.
func (s *Store) BackupIDsInStatus(ctx context.Context, statuses ...string) ([]string, error) {
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = st
	}
	return s.strings(ctx, `SELECT id FROM volume_backups WHERE status IN (`+db.Placeholders(1, len(args))+`) ORDER BY created_at`, args...)
}

// BackupUsage counts a project's backups and their gigabytes, inside q.
func (s *Store) BackupUsage(ctx context.Context, q db.Querier, project string) (n, gb int64, err error) {
	var sum sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT COUNT(*), SUM(size) FROM volume_backups WHERE project_id = $1`, project).Scan(&n, &sum)
	return n, sum.Int64, err
}

// BackupQuery is a validated backup list request.
type BackupQuery struct {
	Project     string
	AllProjects bool
	Name        *string
	Status      *string
	VolumeID    *string
	Limit       int
	Marker      string
}

// ListBackups lists backups, newest first.
func (s *Store) ListBackups(ctx context.Context, q BackupQuery) ([]*Backup, error) {
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
	if q.Marker != "" {
		where = append(where, "(created_at, id) < (SELECT created_at, id FROM volume_backups WHERE id = "+arg(q.Marker)+")")
	}
	query := `SELECT ` + backupCols + ` FROM volume_backups`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC"
	if q.Limit > 0 {
		query += " LIMIT " + arg(q.Limit)
	}
	rows, err := s.db.Reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return db.Collect(rows, scanBackup)
}

// CreateBackupWith inserts a backup and applies fn to its volume in the
// same transaction.
func (s *Store) CreateBackupWith(ctx context.Context, b *Backup, check func(tx *sql.Tx) error, volumeFn func(tx *sql.Tx, v *Volume) error) error {
	_, err := s.UpdateVolume(ctx, b.VolumeID, func(tx *sql.Tx, v *Volume) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		if err := volumeFn(tx, v); err != nil {
			return err
		}
		return s.insertBackup(ctx, tx, b)
	})
	return err
}
