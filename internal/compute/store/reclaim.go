package store

import (
	"context"
	"fmt"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// SoftDeletedBefore returns up to limit servers that were soft-deleted
// before t and have no task: the ones due for reclaim.
func (s *Store) SoftDeletedBefore(ctx context.Context, t time.Time, limit int) ([]string, error) {
	rows, err := cq(s.db.Reader()).QueryContext(ctx, `SELECT uuid FROM compute_instances
		WHERE vm_state = 'soft-delete' AND deleted = FALSE AND task_id IS NULL AND deleted_at IS NOT NULL AND deleted_at < $1
		ORDER BY deleted_at LIMIT $2`, db.FormatTime(t), limit)
	if err != nil {
		return nil, fmt.Errorf("soft-deleted servers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
