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

// TouchServices marks the services binary of hosts seen now, with one
// statement; it returns the hosts that have no such service row (deleted
// through the API meanwhile), which must register again.
func (s *Store) TouchServices(ctx context.Context, binary string, hosts []string) (missing []string, err error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	list := db.JSONStrings(hosts)
	var n int64
	err = s.db.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := cq(tx).ExecContext(ctx, `UPDATE compute_services SET last_seen_up = $1 WHERE binary_name = $2 AND host `+s.db.InList(3),
			db.FormatTime(time.Now()), binary, list)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil || n >= int64(len(hosts)) {
		return nil, err
	}
	// Some rows are gone: find which (rare, so a second statement).
	rows, err := cq(s.db.Reader()).QueryContext(ctx, `SELECT host FROM compute_services WHERE binary_name = $1 AND host `+s.db.InList(2), binary, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		have[h] = true
	}
	for _, h := range hosts {
		if !have[h] {
			missing = append(missing, h)
		}
	}
	return missing, rows.Err()
}
