package image

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// tasksMigration adds the tasks table (Glance's tasks and task_info in
// one row). image_id links a task to the image it works on: the image an
// "import" task created, or the image of an "api_image_import" task (the
// interoperable import flow), so GET /v2/images/{id}/tasks can list them.
// No foreign key: a task outlives the deletion of its image, as in Glance.
var tasksMigration = db.Migration{Version: 2, Name: "image tasks", SQL: `
CREATE TABLE image_tasks (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	status TEXT NOT NULL,
	owner TEXT NOT NULL,
	image_id TEXT,
	user_id TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	input TEXT NOT NULL,
	result TEXT,
	message TEXT NOT NULL DEFAULT '',
	expires_at TEXT,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX image_tasks_owner_idx ON image_tasks (owner, created_at, id);
CREATE INDEX image_tasks_image_idx ON image_tasks (image_id);
CREATE INDEX image_tasks_status_idx ON image_tasks (status);
`}

// Task is a task record. Input and Result are JSON objects kept as text,
// so numbers survive exactly; a nil Result is JSON null.
type Task struct {
	ID        string
	Type      string
	Status    string
	Owner     string
	ImageID   string
	UserID    string
	RequestID string
	Input     json.RawMessage
	Result    json.RawMessage
	Message   string
	ExpiresAt time.Time // zero until the task ends
	CreatedAt time.Time
	UpdatedAt time.Time
}

// taskQuery is a validated task list request.
type taskQuery struct {
	Owner    string // "" for every owner (admin)
	Type     string
	Status   string
	SortKey  string // a key of taskSortColumns
	SortDesc bool
	Limit    int
	Marker   *Task
}

// taskSortColumns are the sort keys Glance accepts, as NULL-free SQL.
var taskSortColumns = map[string]string{
	"created_at": "created_at",
	"updated_at": "updated_at",
	"expires_at": "COALESCE(expires_at, '')",
	"status":     "status",
	"type":       "type",
	"id":         "id",
}

func taskSortValue(t *Task, key string) any {
	switch key {
	case "created_at":
		return db.FormatTime(t.CreatedAt)
	case "updated_at":
		return db.FormatTime(t.UpdatedAt)
	case "expires_at":
		if t.ExpiresAt.IsZero() {
			return ""
		}
		return db.FormatTime(t.ExpiresAt)
	case "status":
		return t.Status
	case "type":
		return t.Type
	}
	return t.ID
}

// taskStore holds the tasks table; it belongs to the image service.
type taskStore struct {
	db *db.DB
}

const taskCols = `id, type, status, owner, image_id, user_id, request_id, input, result, message,
expires_at, created_at, updated_at`

func scanTask(s scanner) (*Task, error) {
	var (
		t                          Task
		image, result, expires     sql.NullString
		created, updated, inputTxt sql.NullString
	)
	err := s.Scan(&t.ID, &t.Type, &t.Status, &t.Owner, &image, &t.UserID, &t.RequestID, &inputTxt, &result,
		&t.Message, &expires, &created, &updated)
	if err != nil {
		return nil, err
	}
	t.ImageID = image.String
	t.Input = json.RawMessage(inputTxt.String)
	if result.Valid && result.String != "" {
		t.Result = json.RawMessage(result.String)
	}
	t.ExpiresAt, t.CreatedAt, t.UpdatedAt = db.ParseTime(expires), db.ParseTime(created), db.ParseTime(updated)
	return &t, nil
}

func taskArgs(t *Task) []any {
	var image, result any
	if t.ImageID != "" {
		image = t.ImageID
	}
	if len(t.Result) > 0 {
		result = string(t.Result)
	}
	input := "{}"
	if len(t.Input) > 0 {
		input = string(t.Input)
	}
	return []any{t.ID, t.Type, t.Status, t.Owner, image, t.UserID, t.RequestID, input, result, t.Message,
		db.FormatTime(t.ExpiresAt), db.FormatTime(t.CreatedAt), db.FormatTime(t.UpdatedAt)}
}

func (s taskStore) create(ctx context.Context, t *Task) error {
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO image_tasks (`+taskCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, taskArgs(t)...)
		return err
	})
	if db.IsUniqueViolation(err) {
		return fmt.Errorf("create task %s: %w", t.ID, ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create task %s: %w", t.ID, err)
	}
	return nil
}

func (s taskStore) get(ctx context.Context, id string) (*Task, error) {
	return getTask(ctx, s.db.Reader(), id, "")
}

func getTask(ctx context.Context, q db.Querier, id, suffix string) (*Task, error) {
	t, err := scanTask(q.QueryRowContext(ctx, `SELECT `+taskCols+` FROM image_tasks WHERE id = $1`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	return t, nil
}

// update loads the task in a write transaction, lets fn change it and
// saves it when fn returns nil.
func (s taskStore) update(ctx context.Context, id string, fn func(t *Task) error) (*Task, error) {
	var out *Task
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		t, err := getTask(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE image_tasks SET type = $2, status = $3, owner = $4, image_id = $5,
user_id = $6, request_id = $7, input = $8, result = $9, message = $10, expires_at = $11, created_at = $12,
updated_at = $13 WHERE id = $1`, taskArgs(t)...)
		if err != nil {
			return fmt.Errorf("update task %s: %w", id, err)
		}
		out = t
		return nil
	})
	return out, err
}

// list returns up to q.Limit tasks in q's order, after q.Marker.
func (s taskStore) list(ctx context.Context, q taskQuery) ([]*Task, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Owner != "" {
		where = append(where, "owner = "+arg(q.Owner))
	}
	if q.Type != "" {
		where = append(where, "type = "+arg(q.Type))
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(q.Status))
	}
	col, ok := taskSortColumns[q.SortKey]
	if !ok {
		col, q.SortKey = "created_at", "created_at"
	}
	cmp, dir := ">", "ASC"
	if q.SortDesc {
		cmp, dir = "<", "DESC"
	}
	if m := q.Marker; m != nil {
		if q.SortKey == "id" {
			where = append(where, "id "+cmp+" "+arg(m.ID))
		} else {
			v := arg(taskSortValue(m, q.SortKey))
			where = append(where, fmt.Sprintf("(%s %s %s OR (%s = %s AND id %s %s))", col, cmp, v, col, v, cmp, arg(m.ID)))
		}
	}
	sqlText := `SELECT ` + taskCols + ` FROM image_tasks`
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	sqlText += fmt.Sprintf(" ORDER BY %s %s", col, dir)
	if q.SortKey != "id" {
		sqlText += ", id " + dir
	}
	sqlText += " LIMIT " + arg(q.Limit)
	return s.query(ctx, sqlText, args...)
}

func (s taskStore) query(ctx context.Context, text string, args ...any) ([]*Task, error) {
	rows, err := s.db.Reader().QueryContext(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	out, err := db.Collect(rows, scanTask)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return out, nil
}

// ofImage lists the tasks of an image, newest first; owner "" means any.
func (s taskStore) ofImage(ctx context.Context, imageID, owner string) ([]*Task, error) {
	if owner == "" {
		return s.query(ctx, `SELECT `+taskCols+` FROM image_tasks WHERE image_id = $1 ORDER BY created_at DESC, id DESC`, imageID)
	}
	return s.query(ctx, `SELECT `+taskCols+` FROM image_tasks WHERE image_id = $1 AND owner = $2
ORDER BY created_at DESC, id DESC`, imageID, owner)
}

// inStatus lists the tasks in one of the statuses, oldest first.
func (s taskStore) inStatus(ctx context.Context, statuses ...string) ([]*Task, error) {
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = st
	}
	return s.query(ctx, `SELECT `+taskCols+` FROM image_tasks WHERE status IN (`+db.Placeholders(1, len(args))+`)
ORDER BY created_at, id`, args...)
}

// purgeExpired deletes the tasks whose expires_at has passed and returns
// how many went.
func (s taskStore) purgeExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM image_tasks WHERE expires_at IS NOT NULL AND expires_at < $1`,
			db.FormatTime(now))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge expired tasks: %w", err)
	}
	return n, nil
}
