package store

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// ---- metadata and tags ----

// SetMetadata replaces (replace) or merges the metadata of an instance inside tx.
func (s *Store) SetMetadata(ctx context.Context, tx *sql.Tx, uuid string, md map[string]string, replace bool) error {
	q := cq(tx)
	if replace {
		if _, err := q.ExecContext(ctx, `DELETE FROM compute_instance_metadata WHERE instance_uuid = $1`, uuid); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if _, err := q.ExecContext(ctx, `INSERT INTO compute_instance_metadata (instance_uuid, meta_key, value) VALUES ($1, $2, $3)
			ON CONFLICT (instance_uuid, meta_key) DO UPDATE SET value = excluded.value`, uuid, k, md[k]); err != nil {
			return err
		}
	}
	return nil
}

// DeleteMetadata removes one metadata key; a missing key is ErrNotFound.
func (s *Store) DeleteMetadata(ctx context.Context, tx *sql.Tx, uuid, key string) error {
	res, err := cq(tx).ExecContext(ctx, `DELETE FROM compute_instance_metadata WHERE instance_uuid = $1 AND meta_key = $2`, uuid, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetTags replaces the tags of an instance inside tx.
func (s *Store) SetTags(ctx context.Context, tx *sql.Tx, uuid string, tags []string) error {
	if _, err := cq(tx).ExecContext(ctx, `DELETE FROM compute_instance_tags WHERE instance_uuid = $1`, uuid); err != nil {
		return err
	}
	for _, t := range tags {
		if err := s.AddTag(ctx, tx, uuid, t); err != nil {
			return err
		}
	}
	return nil
}

// AddTag adds one tag (a present tag is no error).
func (s *Store) AddTag(ctx context.Context, tx *sql.Tx, uuid, tag string) error {
	_, err := cq(tx).ExecContext(ctx, `INSERT INTO compute_instance_tags (instance_uuid, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING`, uuid, tag)
	return err
}

// DeleteTag removes one tag; a missing tag is ErrNotFound.
func (s *Store) DeleteTag(ctx context.Context, tx *sql.Tx, uuid, tag string) error {
	res, err := cq(tx).ExecContext(ctx, `DELETE FROM compute_instance_tags WHERE instance_uuid = $1 AND tag = $2`, uuid, tag)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ---- instance actions ----

// Action is an instance action (os-instance-actions).
type Action struct {
	ID           int64
	InstanceUUID string
	Action       string
	RequestID    string
	UserID       string
	ProjectID    string
	Message      *string
	StartTime    time.Time
	UpdatedAt    time.Time
	Events       []*Event
}

// Event is one step of an action.
type Event struct {
	ID         int64
	ActionID   int64
	Event      string
	StartTime  time.Time
	FinishTime time.Time
	Result     *string // "Success" or "Error"; nil while running
	Traceback  *string
	Host       *string
	Details    *string
}

// InsertAction records an action inside q and fills a.ID.
func (s *Store) InsertAction(ctx context.Context, q db.Querier, a *Action) error {
	if a.StartTime.IsZero() {
		a.StartTime = time.Now().UTC()
	}
	a.UpdatedAt = a.StartTime
	return cq(q).QueryRowContext(ctx, `INSERT INTO compute_instance_actions (instance_uuid, action, request_id, user_id, project_id,
		start_time, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
		a.InstanceUUID, a.Action, a.RequestID, a.UserID, a.ProjectID, db.FormatTime(a.StartTime)).Scan(&a.ID)
}

// StartEvent records the start of an event of an action.
func (s *Store) StartEvent(ctx context.Context, q db.Querier, actionID int64, event, host string) (int64, error) {
	now := db.FormatTime(time.Now())
	var id int64
	err := cq(q).QueryRowContext(ctx, `INSERT INTO compute_instance_action_events (action_id, event, start_time, host)
		VALUES ($1, $2, $3, $4) RETURNING id`, actionID, event, now, nullable(strOrNil(host))).Scan(&id)
	if err != nil {
		return 0, err
	}
	_, err = cq(q).ExecContext(ctx, `UPDATE compute_instance_actions SET updated_at = $1 WHERE id = $2`, now, actionID)
	return id, err
}

// FinishEvent records the end of an event; a non-empty failure makes the
// result "Error" and, for the first failure, sets the action's message.
func (s *Store) FinishEvent(ctx context.Context, q db.Querier, actionID, eventID int64, failure, details string) error {
	now := db.FormatTime(time.Now())
	result := "Success"
	var tb any
	if failure != "" {
		result, tb = "Error", failure
	}
	if _, err := cq(q).ExecContext(ctx, `UPDATE compute_instance_action_events SET finish_time = $1, result = $2, traceback = $3,
		details = $4 WHERE id = $5`, now, result, tb, nullable(strOrNil(details)), eventID); err != nil {
		return err
	}
	if failure != "" {
		_, err := cq(q).ExecContext(ctx, `UPDATE compute_instance_actions SET updated_at = $1, message = COALESCE(message, 'Error') WHERE id = $2`, now, actionID)
		return err
	}
	_, err := cq(q).ExecContext(ctx, `UPDATE compute_instance_actions SET updated_at = $1 WHERE id = $2`, now, actionID)
	return err
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ListActions returns the actions of an instance, newest first, with
// their events when withEvents.
func (s *Store) ListActions(ctx context.Context, uuid string, changesSince, changesBefore time.Time, limit int, marker string) ([]*Action, error) {
	q := cq(s.db.Reader())
	query := `SELECT id, instance_uuid, action, request_id, user_id, project_id, message, start_time, updated_at
		FROM compute_instance_actions WHERE instance_uuid = $1`
	args := []any{uuid}
	if !changesSince.IsZero() {
		args = append(args, db.FormatTime(changesSince))
		query += " AND updated_at >= $" + itoa(len(args))
	}
	if !changesBefore.IsZero() {
		args = append(args, db.FormatTime(changesBefore))
		query += " AND updated_at <= $" + itoa(len(args))
	}
	if marker != "" {
		var mid int64
		err := q.QueryRowContext(ctx, `SELECT id FROM compute_instance_actions WHERE instance_uuid = $1 AND request_id = $2`, uuid, marker).Scan(&mid)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrMarker
		}
		if err != nil {
			return nil, err
		}
		args = append(args, mid)
		query += " AND id < $" + itoa(len(args))
	}
	query += " ORDER BY id DESC"
	if limit > 0 {
		args = append(args, limit)
		query += " LIMIT $" + itoa(len(args))
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Action
	for rows.Next() {
		a, err := scanAction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanAction(sc interface{ Scan(...any) error }) (*Action, error) {
	var a Action
	var msg, start, upd sql.NullString
	if err := sc.Scan(&a.ID, &a.InstanceUUID, &a.Action, &a.RequestID, &a.UserID, &a.ProjectID, &msg, &start, &upd); err != nil {
		return nil, err
	}
	a.Message = ptr(msg)
	a.StartTime, a.UpdatedAt = db.ParseTime(start), db.ParseTime(upd)
	return &a, nil
}

// GetAction returns the action of an instance with request id reqID, with its events.
func (s *Store) GetAction(ctx context.Context, uuid, reqID string) (*Action, error) {
	q := cq(s.db.Reader())
	a, err := scanAction(q.QueryRowContext(ctx, `SELECT id, instance_uuid, action, request_id, user_id, project_id, message, start_time, updated_at
		FROM compute_instance_actions WHERE instance_uuid = $1 AND request_id = $2 ORDER BY id DESC LIMIT 1`, uuid, reqID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT id, action_id, event, start_time, finish_time, result, traceback, host, details
		FROM compute_instance_action_events WHERE action_id = $1 ORDER BY id`, a.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var start, fin, res, tb, host, det sql.NullString
		if err := rows.Scan(&e.ID, &e.ActionID, &e.Event, &start, &fin, &res, &tb, &host, &det); err != nil {
			return nil, err
		}
		e.StartTime, e.FinishTime = db.ParseTime(start), db.ParseTime(fin)
		e.Result, e.Traceback, e.Host, e.Details = ptr(res), ptr(tb), ptr(host), ptr(det)
		a.Events = append(a.Events, &e)
	}
	return a, rows.Err()
}

// ---- usage ----

// CountInstances counts the live instances, cores and ram of a project
// (or of one user in it), inside q.
func CountInstances(ctx context.Context, q db.Querier, projectID, userID string) (n, cores, ram int64, err error) {
	// Soft-deleted servers waiting for reclaim do not count (Nova's
	// rule); one being restored (it has a task) does.
	query := `SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0) FROM compute_instances
		WHERE project_id = $1 AND deleted = FALSE AND NOT (vm_state = 'soft-delete' AND task_id IS NULL)`
	args := []any{projectID}
	if userID != "" {
		query += " AND user_id = $2"
		args = append(args, userID)
	}
	err = cq(q).QueryRowContext(ctx, query, args...).Scan(&n, &cores, &ram)
	return
}

// HostUsage is what the live instances of a host consume.
type HostUsage struct {
	Instances int64
	VCPUs     int64
	MemoryMB  int64
	DiskGB    int64
}

// HostsUsage sums the live instances per host, inside q.
func (s *Store) HostsUsage(ctx context.Context, q db.Querier) (map[string]HostUsage, error) {
	if q == nil {
		q = s.db.Reader()
	}
	rows, err := cq(q).QueryContext(ctx, `SELECT host, COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(memory_mb), 0),
		COALESCE(SUM(root_gb + ephemeral_gb), 0) FROM compute_instances WHERE deleted = FALSE AND host IS NOT NULL GROUP BY host`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]HostUsage{}
	for rows.Next() {
		var h string
		var u HostUsage
		if err := rows.Scan(&h, &u.Instances, &u.VCPUs, &u.MemoryMB, &u.DiskGB); err != nil {
			return nil, err
		}
		out[h] = u
	}
	return out, rows.Err()
}

// BeginAction records an action and the start of its first event inside
// q, filling a.ID; it returns the event id.
func (s *Store) BeginAction(ctx context.Context, q db.Querier, a *Action, event string) (int64, error) {
	if err := s.InsertAction(ctx, q, a); err != nil {
		return 0, err
	}
	var id int64
	err := cq(q).QueryRowContext(ctx, `INSERT INTO compute_instance_action_events (action_id, event, start_time)
		VALUES ($1, $2, $3) RETURNING id`, a.ID, event, db.FormatTime(a.StartTime)).Scan(&id)
	return id, err
}
