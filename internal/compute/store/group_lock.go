package store

import (
	"context"
	"database/sql"
	"errors"
)

// LockGroupHosts locks a server group's row inside tx (PostgreSQL: FOR
// UPDATE; SQLite's write transactions are serialised already) and
// returns the hosts of its live members by instance uuid ("" for none
// yet). Schedulers of several conductors check a hard (anti-)affinity
// choice with it in the transaction that records the choice, so two
// members placed at the same time by different processes see each other.
func (s *Store) LockGroupHosts(ctx context.Context, tx *sql.Tx, group string) (map[string]string, error) {
	q := cq(tx)
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM compute_server_groups WHERE uuid = $1`+s.db.ForUpdate(), group).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT m.instance_uuid, COALESCE(i.host, '') FROM compute_server_group_members m
		JOIN compute_instances i ON i.uuid = m.instance_uuid WHERE m.group_id = $1 AND i.deleted = FALSE`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			return nil, err
		}
		out[u] = h
	}
	return out, rows.Err()
}
