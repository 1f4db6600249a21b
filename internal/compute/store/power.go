package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// HostInstance is what the power-state sync needs of a live instance.
type HostInstance struct {
	UUID, Host, ProjectID, VMState string
	PowerState                     int
	Busy                           bool // a task holds it
	UpdatedAt                      time.Time
}

// InstancesOnHosts returns the live instances of hosts, grouped by host,
// with one query whatever the number of hosts.
func (s *Store) InstancesOnHosts(ctx context.Context, hosts []string) (map[string][]HostInstance, error) {
	out := make(map[string][]HostInstance, len(hosts))
	if len(hosts) == 0 {
		return out, nil
	}
	rows, err := cq(s.db.Reader()).QueryContext(ctx, `SELECT uuid, host, project_id, vm_state, power_state, task_id IS NOT NULL, updated_at
		FROM compute_instances WHERE deleted = FALSE AND host `+s.db.InList(1), db.JSONStrings(hosts))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var i HostInstance
		var updated sql.NullString
		if err := rows.Scan(&i.UUID, &i.Host, &i.ProjectID, &i.VMState, &i.PowerState, &i.Busy, &updated); err != nil {
			return nil, err
		}
		i.UpdatedAt = db.ParseTime(updated)
		out[i.Host] = append(out[i.Host], i)
	}
	return out, rows.Err()
}

// TouchServices marks the services binary of hosts seen now, in one
// transaction; it returns the hosts that have no such service row (deleted
// through the API meanwhile), which must register again.
func (s *Store) TouchServices(ctx context.Context, binary string, hosts []string) (missing []string, err error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	err = s.db.WithTx(ctx, func(tx *sql.Tx) error {
		missing = missing[:0]
		q := cq(tx)
		now := db.FormatTime(time.Now())
		for _, h := range hosts {
			res, err := q.ExecContext(ctx, `UPDATE compute_services SET last_seen_up = $1 WHERE host = $2 AND binary_name = $3`, now, h, binary)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				missing = append(missing, h)
			}
		}
		return nil
	})
	return missing, err
}
