package store

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/db"
)

func itoa(n int) string { return strconv.Itoa(n) }

// QuotaLimits reads the explicit limits of a project (userID "") or of a
// user in a project.
func QuotaLimits(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	return readLimits(ctx, q, `SELECT resource, hard_limit FROM compute_quotas WHERE project_id = $1 AND user_id = $2`, projectID, userID)
}

// OtherUsersLimits sums, per resource, the explicit per-user limits of a
// project's users other than userID.
func OtherUsersLimits(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	return readLimits(ctx, q, `SELECT resource, SUM(hard_limit) FROM compute_quotas
		WHERE project_id = $1 AND user_id <> '' AND user_id <> $2 AND hard_limit >= 0 GROUP BY resource`, projectID, userID)
}

// ClassLimits reads the limits of a quota class.
func ClassLimits(ctx context.Context, q db.Querier, class string) (map[string]int64, error) {
	return readLimits(ctx, q, `SELECT resource, hard_limit FROM compute_quota_classes WHERE class_name = $1`, class)
}

func readLimits(ctx context.Context, q db.Querier, query string, args ...any) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
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

// SetQuotaLimits writes explicit limits of a project or user inside tx.
func SetQuotaLimits(ctx context.Context, tx *sql.Tx, projectID, userID string, limits map[string]int64) error {
	for r, n := range limits {
		if _, err := tx.ExecContext(ctx, `INSERT INTO compute_quotas (project_id, user_id, resource, hard_limit) VALUES ($1, $2, $3, $4)
			ON CONFLICT (project_id, user_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, projectID, userID, r, n); err != nil {
			return err
		}
	}
	return nil
}

// DeleteQuotaLimits removes the explicit limits of a user, or of a project
// and all its users when userID is "".
func DeleteQuotaLimits(ctx context.Context, tx *sql.Tx, projectID, userID string) error {
	if userID == "" {
		_, err := tx.ExecContext(ctx, `DELETE FROM compute_quotas WHERE project_id = $1`, projectID)
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM compute_quotas WHERE project_id = $1 AND user_id = $2`, projectID, userID)
	return err
}

// SetClassLimits writes the limits of a quota class inside tx.
func SetClassLimits(ctx context.Context, tx *sql.Tx, class string, limits map[string]int64) error {
	for r, n := range limits {
		if _, err := tx.ExecContext(ctx, `INSERT INTO compute_quota_classes (class_name, resource, hard_limit) VALUES ($1, $2, $3)
			ON CONFLICT (class_name, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, class, r, n); err != nil {
			return err
		}
	}
	return nil
}
