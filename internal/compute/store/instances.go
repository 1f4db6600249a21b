package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// ErrPreempted is returned by task-conditional updates when the row no
// longer carries the task (a newer task replaced it, or the row is gone).
var ErrPreempted = errors.New("task pre-empted")

// InstanceFlavor is the copy of a flavor an instance keeps (Nova embeds
// it so that later flavor changes do not alter running servers).
type InstanceFlavor struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	VCPUs       int64             `json:"vcpus"`
	MemoryMB    int64             `json:"memory_mb"`
	RootGB      int64             `json:"root_gb"`
	EphemeralGB int64             `json:"ephemeral_gb"`
	Swap        int64             `json:"swap"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
	// VolumeBacked marks the copy of a server whose root disk is a
	// volume: placement is not asked for the flavor's root disk (Nova's
	// is_bfv), only for ephemeral and swap. Not part of any API view.
	VolumeBacked bool `json:"volume_backed,omitempty"`
	// Ephemerals are the ephemeral disks the server's blank local block
	// device mappings asked for, in guest order, each its own disk
	// (Nova's ephemeral BDMs replace the flavor's ephemeral disk); nil:
	// the flavor's one disk of EphemeralGB. SwapMB, when not 0, is the
	// size of the swap mapping that replaced the flavor's swap. Neither
	// is part of any API view nor of placement's claim (the flavor's
	// amounts are claimed, as in Nova).
	Ephemerals []LocalDisk `json:"ephemerals,omitempty"`
	SwapMB     int64       `json:"bdm_swap_mb,omitempty"`
}

// LocalDisks tells which disks the driver makes after the root: how many
// ephemeral disks (the mappings' or the flavor's one) and whether swap.
func (f InstanceFlavor) LocalDisks() (ephemerals int, swap bool) {
	ephemerals = len(f.Ephemerals)
	if ephemerals == 0 && f.EphemeralGB > 0 {
		ephemerals = 1
	}
	return ephemerals, f.SwapMB > 0 || f.Swap > 0
}

// LocalDisk is one ephemeral disk of a block device mapping.
type LocalDisk struct {
	SizeGB      int64  `json:"size_gb"`
	GuestFormat string `json:"guest_format,omitempty"`
}

// FlavorCopy returns the instance copy of f.
func FlavorCopy(f *Flavor) InstanceFlavor {
	return InstanceFlavor{ID: f.FlavorID, Name: f.Name, VCPUs: f.VCPUs, MemoryMB: f.MemoryMB, RootGB: f.RootGB,
		EphemeralGB: f.EphemeralGB, Swap: f.Swap, ExtraSpecs: maps.Clone(f.ExtraSpecs)}
}

// Fault is the last error of an instance, shown on ERROR servers.
type Fault struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Details string    `json:"details,omitempty"`
	Created time.Time `json:"created"`
}

// Task is the persisted long action of an instance. The conductor reads
// it, runs the step named by Step, and writes the next step, so that a
// restarted conductor continues where the last one stopped.
type Task struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Step     string `json:"step,omitempty"`
	ActionID int64  `json:"action_id,omitempty"`
	EventID  int64  `json:"event_id,omitempty"`
	// PrevVMState is the vm_state to return to when the task fails in a
	// way that leaves the instance as it was.
	PrevVMState string `json:"prev_vm_state,omitempty"`
	// Args are the task's arguments (reboot type, target host, new
	// flavor, image, ...).
	Args map[string]string `json:"args,omitempty"`
	// NewFlavor is the flavor a resize moves to; OldFlavor the one it
	// reverts to.
	NewFlavor *InstanceFlavor `json:"new_flavor,omitempty"`
	OldFlavor *InstanceFlavor `json:"old_flavor,omitempty"`
	// SourceHost is where a resize or migration started.
	SourceHost string `json:"source_host,omitempty"`
	// Attempts counts how often the step was retried.
	Attempts int `json:"attempts,omitempty"`
}

// Instance is a server row.
type Instance struct {
	ID               int64
	UUID             string
	ProjectID        string
	UserID           string
	Name             string
	Description      *string
	Hostname         string
	Flavor           InstanceFlavor
	ImageRef         string
	KeyName          *string
	KeyData          *string
	UserData         *string
	ConfigDrive      string
	AvailabilityZone *string
	Host             *string
	Node             *string
	VMState          string
	TaskState        *string
	PowerState       int
	TaskID           *string
	Task             *Task
	Locked           bool
	LockedBy         *string
	LockedReason     *string
	Progress         int
	ReservationID    string
	LaunchIndex      int
	AccessIPv4       string
	AccessIPv6       string
	Fault            *Fault
	// Migration is the pending resize or migration awaiting confirmation
	// (VERIFY_RESIZE): what revertResize restores.
	Migration    *Task
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LaunchedAt   time.Time
	TerminatedAt time.Time
	DeletedAt    time.Time
	Deleted      bool

	Metadata map[string]string
	Tags     []string
}

// InstanceName is the host-visible name (Nova's instance_name_template).
func (i *Instance) InstanceName() string {
	h := strconv.FormatInt(i.ID, 16)
	if len(h) < 8 && i.ID >= 0 {
		h = "00000000"[len(h):] + h
	}
	return "instance-" + h
}

// HostName returns the host or "".
func (i *Instance) HostName() string {
	if i.Host == nil {
		return ""
	}
	return *i.Host
}

const instanceCols = `id, uuid, project_id, user_id, name, description, hostname, flavor, image_ref, key_name, key_data,
	user_data, config_drive, availability_zone, host, node, vm_state, task_state, power_state, task_id, task, locked,
	locked_by, locked_reason, progress, reservation_id, launch_index, access_ip_v4, access_ip_v6, fault, migration_ctx, created_at,
	updated_at, launched_at, terminated_at, deleted_at, deleted`

// viewCols are the columns server views show (ViewOnly lists): the
// task, its migration context, the key pair's public key, the locker and
// the deletion time are left out.
const viewCols = `id, uuid, project_id, user_id, name, description, hostname, flavor, image_ref, key_name,
	user_data, config_drive, availability_zone, host, node, vm_state, task_state, power_state, locked,
	locked_reason, progress, reservation_id, launch_index, access_ip_v4, access_ip_v6, fault, created_at,
	updated_at, launched_at, terminated_at, deleted`

type rowScanner interface{ Scan(...any) error }

func scanInstance(sc rowScanner) (*Instance, error) { return scanRow(sc, false, nil) }

// scanRow scans instanceCols, or viewCols when view. flavors, when not
// nil, keeps the flavors decoded so far by their JSON text: a page of
// servers has few distinct flavors.
func scanRow(sc rowScanner, view bool, flavors map[string]InstanceFlavor) (*Instance, error) {
	var i Instance
	var desc, keyName, keyData, userData, az, host, node, taskState, taskID, task, lockedBy, lockedReason, fault, migCtx sql.NullString
	var flavor string
	var created, updated, launched, terminated, deletedAt sql.NullString
	var err error
	if view {
		err = sc.Scan(&i.ID, &i.UUID, &i.ProjectID, &i.UserID, &i.Name, &desc, &i.Hostname, &flavor, &i.ImageRef,
			&keyName, &userData, &i.ConfigDrive, &az, &host, &node, &i.VMState, &taskState, &i.PowerState,
			&i.Locked, &lockedReason, &i.Progress, &i.ReservationID, &i.LaunchIndex,
			&i.AccessIPv4, &i.AccessIPv6, &fault, &created, &updated, &launched, &terminated, &i.Deleted)
	} else {
		err = sc.Scan(&i.ID, &i.UUID, &i.ProjectID, &i.UserID, &i.Name, &desc, &i.Hostname, &flavor, &i.ImageRef,
			&keyName, &keyData, &userData, &i.ConfigDrive, &az, &host, &node, &i.VMState, &taskState, &i.PowerState,
			&taskID, &task, &i.Locked, &lockedBy, &lockedReason, &i.Progress, &i.ReservationID, &i.LaunchIndex,
			&i.AccessIPv4, &i.AccessIPv6, &fault, &migCtx, &created, &updated, &launched, &terminated, &deletedAt, &i.Deleted)
	}
	if err != nil {
		return nil, err
	}
	i.Description, i.KeyName, i.KeyData, i.UserData = ptr(desc), ptr(keyName), ptr(keyData), ptr(userData)
	i.AvailabilityZone, i.Host, i.Node, i.TaskState = ptr(az), ptr(host), ptr(node), ptr(taskState)
	i.TaskID, i.LockedBy, i.LockedReason = ptr(taskID), ptr(lockedBy), ptr(lockedReason)
	if f, ok := flavors[flavor]; ok {
		i.Flavor = f
		i.Flavor.ExtraSpecs = maps.Clone(f.ExtraSpecs)
	} else {
		if err := json.Unmarshal([]byte(flavor), &i.Flavor); err != nil {
			return nil, fmt.Errorf("instance %s flavor: %w", i.UUID, err)
		}
		if flavors != nil {
			flavors[flavor] = i.Flavor
			i.Flavor.ExtraSpecs = maps.Clone(i.Flavor.ExtraSpecs)
		}
	}
	if task.Valid && task.String != "" {
		i.Task = &Task{}
		if err := json.Unmarshal([]byte(task.String), i.Task); err != nil {
			return nil, fmt.Errorf("instance %s task: %w", i.UUID, err)
		}
	}
	if fault.Valid && fault.String != "" {
		i.Fault = &Fault{}
		if err := json.Unmarshal([]byte(fault.String), i.Fault); err != nil {
			return nil, fmt.Errorf("instance %s fault: %w", i.UUID, err)
		}
	}
	if migCtx.Valid && migCtx.String != "" {
		i.Migration = &Task{}
		if err := json.Unmarshal([]byte(migCtx.String), i.Migration); err != nil {
			return nil, fmt.Errorf("instance %s migration: %w", i.UUID, err)
		}
	}
	i.CreatedAt, i.UpdatedAt, i.LaunchedAt = db.ParseTime(created), db.ParseTime(updated), db.ParseTime(launched)
	i.TerminatedAt, i.DeletedAt = db.ParseTime(terminated), db.ParseTime(deletedAt)
	return &i, nil
}

func ptr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

func nullable(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func mustJSON(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// counted wraps a Querier so that the store can report how many
// statements it ran (the boot benchmark reports queries per boot).
type counted struct {
	q db.Querier
	n *atomic.Int64
}

func (c counted) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	c.n.Add(1)
	return c.q.ExecContext(ctx, query, args...)
}

func (c counted) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.n.Add(1)
	return c.q.QueryContext(ctx, query, args...)
}

func (c counted) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	c.n.Add(1)
	return c.q.QueryRowContext(ctx, query, args...)
}

var queries atomic.Int64

// Queries reports how many statements the server, action and service
// functions of this package have run in this process.
func Queries() int64 { return queries.Load() }

func cq(q db.Querier) db.Querier { return counted{q: q, n: &queries} }

// InsertInstance inserts i (with its metadata and tags) inside tx and
// fills i.ID.
func (s *Store) InsertInstance(ctx context.Context, tx *sql.Tx, i *Instance) error {
	q := cq(tx)
	now := time.Now().UTC()
	if i.CreatedAt.IsZero() {
		i.CreatedAt = now
	}
	i.UpdatedAt = i.CreatedAt
	err := q.QueryRowContext(ctx, `INSERT INTO compute_instances (uuid, project_id, user_id, name, description, hostname,
		flavor, vcpus, memory_mb, root_gb, ephemeral_gb, image_ref, key_name, key_data, user_data, config_drive,
		availability_zone, host, node, vm_state, task_state, power_state, task_id, task, reservation_id, launch_index,
		created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
		$24, $25, $26, $27, $27) RETURNING id`,
		i.UUID, i.ProjectID, i.UserID, i.Name, nullable(i.Description), i.Hostname, mustJSON(i.Flavor),
		i.Flavor.VCPUs, i.Flavor.MemoryMB, i.Flavor.RootGB, i.Flavor.EphemeralGB, i.ImageRef,
		nullable(i.KeyName), nullable(i.KeyData), nullable(i.UserData), i.ConfigDrive, nullable(i.AvailabilityZone),
		nullable(i.Host), nullable(i.Node), i.VMState, nullable(i.TaskState), i.PowerState, nullable(i.TaskID),
		taskJSON(i.Task), i.ReservationID, i.LaunchIndex, db.FormatTime(i.CreatedAt)).Scan(&i.ID)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(i.Metadata)) {
		if _, err := q.ExecContext(ctx, `INSERT INTO compute_instance_metadata (instance_uuid, meta_key, value) VALUES ($1, $2, $3)`,
			i.UUID, k, i.Metadata[k]); err != nil {
			return err
		}
	}
	for _, t := range i.Tags {
		if _, err := q.ExecContext(ctx, `INSERT INTO compute_instance_tags (instance_uuid, tag) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, i.UUID, t); err != nil {
			return err
		}
	}
	return nil
}

func taskJSON(t *Task) any {
	if t == nil {
		return nil
	}
	return mustJSON(t)
}

// GetInstance returns a server (deleted ones too) with its metadata and tags.
func (s *Store) GetInstance(ctx context.Context, q db.Querier, uuid string) (*Instance, error) {
	if q == nil {
		q = s.db.Reader()
	}
	i, err := s.GetInstanceRow(ctx, q, uuid)
	if err != nil {
		return nil, err
	}
	if err := s.loadExtras(ctx, cq(q), []*Instance{i}); err != nil {
		return nil, err
	}
	return i, nil
}

// GetInstanceRow is GetInstance without the metadata and tags (nil), for
// callers that need neither (one statement instead of three).
func (s *Store) GetInstanceRow(ctx context.Context, q db.Querier, uuid string) (*Instance, error) {
	if q == nil {
		q = s.db.Reader()
	}
	i, err := scanInstance(cq(q).QueryRowContext(ctx, `SELECT `+instanceCols+` FROM compute_instances WHERE uuid = $1`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return i, err
}

// loadExtras fills metadata and tags of the instances.
func (s *Store) loadExtras(ctx context.Context, q db.Querier, is []*Instance) error {
	if len(is) == 0 {
		return nil
	}
	byUUID := make(map[string]*Instance, len(is))
	uuids := make([]string, 0, len(is))
	for _, i := range is {
		i.Metadata, i.Tags = map[string]string{}, []string{}
		byUUID[i.UUID] = i
		uuids = append(uuids, i.UUID)
	}
	from, arg := s.byUUIDs(1), db.JSONStrings(uuids)
	rows, err := q.QueryContext(ctx, `SELECT t.instance_uuid, t.meta_key, t.value FROM `+from(`compute_instance_metadata`), arg)
	if err != nil {
		return err
	}
	for rows.Next() {
		var u, k, v string
		if err := rows.Scan(&u, &k, &v); err != nil {
			rows.Close()
			return err
		}
		byUUID[u].Metadata[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT t.instance_uuid, t.tag FROM `+from(`compute_instance_tags`)+` ORDER BY t.tag`, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u, t string
		if err := rows.Scan(&u, &t); err != nil {
			return err
		}
		byUUID[u].Tags = append(byUUID[u].Tags, t)
	}
	return rows.Err()
}

// byUUIDs returns a FROM clause maker: the rows of a table (alias t)
// whose instance_uuid is in the JSON array parameter $n, read by walking
// the array and looking each uuid up in the table's index. (SQLite plans
// "instance_uuid IN (SELECT value FROM json_each($n))" by first copying
// the array into a temporary index, which cost more than the lookups.)
func (s *Store) byUUIDs(n int) func(table string) string {
	if s.db.Dialect() == db.Postgres {
		return func(table string) string {
			return fmt.Sprintf("jsonb_array_elements_text($%d::jsonb) AS j(value) JOIN %s t ON t.instance_uuid = j.value", n, table)
		}
	}
	// CROSS JOIN makes SQLite keep the array as the outer loop.
	return func(table string) string {
		return fmt.Sprintf("json_each($%d) AS j CROSS JOIN %s t ON t.instance_uuid = j.value", n, table)
	}
}

// Set is a set of column assignments of an instance update. Values are
// stored as given; use nil for NULL.
type Set map[string]any

// Cond restricts an instance update.
type Cond struct {
	// TaskID, when set, requires the row to carry that task.
	TaskID string
	// NoTask requires the row to carry no task.
	NoTask bool
	// VMStates, when set, requires one of these vm_states.
	VMStates []string
	// NotDeleted requires a live row.
	NotDeleted bool
}

// UpdateInstance applies set to the instance when cond holds; it returns
// ErrPreempted when no row matched. updated_at is always refreshed.
func (s *Store) UpdateInstance(ctx context.Context, q db.Querier, uuid string, cond Cond, set Set) error {
	if q == nil {
		return s.db.WithTx(ctx, func(tx *sql.Tx) error { return s.UpdateInstance(ctx, tx, uuid, cond, set) })
	}
	set = maps.Clone(set)
	if _, ok := set["updated_at"]; !ok {
		set["updated_at"] = db.FormatTime(time.Now())
	}
	if t, ok := set["task"].(*Task); ok {
		set["task"] = taskJSON(t)
	}
	if m, ok := set["migration_ctx"].(*Task); ok {
		set["migration_ctx"] = taskJSON(m)
	}
	if f, ok := set["fault"].(*Fault); ok {
		if f == nil {
			set["fault"] = nil
		} else {
			set["fault"] = mustJSON(f)
		}
	}
	if f, ok := set["flavor"].(InstanceFlavor); ok {
		set["flavor"] = mustJSON(f)
		set["vcpus"], set["memory_mb"], set["root_gb"], set["ephemeral_gb"] = f.VCPUs, f.MemoryMB, f.RootGB, f.EphemeralGB
	}
	var sets []string
	args := []any{uuid}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		args = append(args, set[k])
		sets = append(sets, fmt.Sprintf("%s = $%d", k, len(args)))
	}
	where := []string{"uuid = $1"}
	if cond.TaskID != "" {
		args = append(args, cond.TaskID)
		where = append(where, fmt.Sprintf("task_id = $%d", len(args)))
	}
	if cond.NoTask {
		where = append(where, "task_id IS NULL")
	}
	if cond.NotDeleted {
		where = append(where, "deleted = FALSE")
	}
	if len(cond.VMStates) > 0 {
		ph := db.Placeholders(len(args)+1, len(cond.VMStates))
		for _, v := range cond.VMStates {
			args = append(args, v)
		}
		where = append(where, "vm_state IN ("+ph+")")
	}
	res, err := cq(q).ExecContext(ctx, `UPDATE compute_instances SET `+strings.Join(sets, ", ")+` WHERE `+strings.Join(where, " AND "), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrPreempted
	}
	return nil
}

// TaskSet returns the assignments that start task t with task_state ts.
func TaskSet(t *Task, taskState *string) Set {
	return Set{"task_id": t.ID, "task": t, "task_state": nullable(taskState), "task_owner": nil, "task_lease": nil}
}

// EndTask returns the assignments that finish a task.
func EndTask() Set {
	return Set{"task_id": nil, "task": nil, "task_state": nil, "task_owner": nil, "task_lease": nil}
}

// ClaimTask makes owner the conductor of the instance's task until lease
// ends, unless another owner's lease is still running. It returns the
// instance when claimed and ErrPreempted otherwise.
func (s *Store) ClaimTask(ctx context.Context, uuid, taskID, owner string, lease time.Duration) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error { return s.ClaimTaskTx(ctx, tx, uuid, taskID, owner, lease) })
}

// ClaimTaskTx is ClaimTask inside tx.
func (s *Store) ClaimTaskTx(ctx context.Context, tx *sql.Tx, uuid, taskID, owner string, lease time.Duration) error {
	now := time.Now()
	res, err := cq(tx).ExecContext(ctx, `UPDATE compute_instances SET task_owner = $1, task_lease = $2
		WHERE uuid = $3 AND task_id = $4 AND (task_owner IS NULL OR task_owner = $1 OR task_lease < $5)`,
		owner, db.FormatTime(now.Add(lease)), uuid, taskID, db.FormatTime(now))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrPreempted
	}
	return nil
}

// RenewLeases extends the leases of every task owner holds.
func (s *Store) RenewLeases(ctx context.Context, owner string, lease time.Duration) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := cq(tx).ExecContext(ctx, `UPDATE compute_instances SET task_lease = $1 WHERE task_owner = $2 AND task_id IS NOT NULL`,
			db.FormatTime(time.Now().Add(lease)), owner)
		return err
	})
}

// PendingTask is a task that no live conductor holds.
type PendingTask struct{ UUID, TaskID string }

// PendingTasks lists tasks without an owner or whose lease has run out.
func (s *Store) PendingTasks(ctx context.Context, owner string) ([]PendingTask, error) {
	rows, err := cq(s.db.Reader()).QueryContext(ctx, `SELECT uuid, task_id FROM compute_instances WHERE task_id IS NOT NULL
		AND (task_owner IS NULL OR task_owner = $1 OR task_lease < $2)`, owner, db.FormatTime(time.Now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PendingTask
	for rows.Next() {
		var p PendingTask
		if err := rows.Scan(&p.UUID, &p.TaskID); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// InstanceFilter selects servers for a list.
type InstanceFilter struct {
	ProjectID     string // "" for every project
	UserID        string
	NameRegex     string // applied by the caller (Go regexp), see MatchName
	VMStates      []string
	TaskStates    []string // "" in the list matches no task state
	FlavorID      string
	ImageRef      string
	Host          string
	ReservationID string
	AZ            string
	Locked        *bool
	ChangesSince  time.Time
	ChangesBefore time.Time
	// Deleted: nil lists live servers (plus deleted ones when ChangesSince
	// is set, as Nova does); true only deleted ones; false only live ones.
	Deleted    *bool
	Tags       []string // all of
	TagsAny    []string
	NotTags    []string // not all of
	NotTagsAny []string
	UUIDs      []string
	Sort       []SortSpec
	Limit      int
	Marker     string
	// ViewOnly reads only the columns server views show (viewCols): the
	// instances come back without Task, Migration, KeyData, LockedBy and
	// DeletedAt.
	ViewOnly bool
}

// SortSpec is one sort key (a key of InstanceSortKeys) and direction.
type SortSpec struct {
	Key  string
	Desc bool
}

// InstanceSortKeys maps Nova's sort keys to columns.
var InstanceSortKeys = map[string]string{
	"access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6", "auto_disk_config": "id",
	"availability_zone": "COALESCE(availability_zone, '')", "config_drive": "config_drive",
	"created_at": "created_at", "display_description": "COALESCE(description, '')", "display_name": "name",
	"host": "COALESCE(host, '')", "hostname": "hostname", "image_ref": "image_ref",
	"instance_type_id": "vcpus", "kernel_id": "id", "key_name": "COALESCE(key_name, '')",
	"launch_index": "launch_index", "launched_at": "COALESCE(launched_at, '')", "locked": "locked",
	"locked_by": "COALESCE(locked_by, '')", "node": "COALESCE(node, '')", "power_state": "power_state",
	"progress": "progress", "project_id": "project_id", "ramdisk_id": "id", "root_device_name": "id",
	"task_state": "COALESCE(task_state, '')", "terminated_at": "COALESCE(terminated_at, '')",
	"updated_at": "COALESCE(updated_at, '')", "user_id": "user_id", "uuid": "uuid", "vm_state": "vm_state",
}

// ErrMarkerNotFound is returned when the list marker names no server.
var ErrMarkerNotFound = ErrMarker

// ListInstances returns servers matching f. The name regex is applied by
// the caller; when it is set, Limit and Marker are ignored here too and
// the caller pages the filtered result (see PageInstances).
func (s *Store) ListInstances(ctx context.Context, f InstanceFilter) ([]*Instance, error) {
	q := cq(s.db.Reader())
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	in := func(col string, vals []string) {
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = arg(v)
		}
		where = append(where, col+" IN ("+strings.Join(ph, ", ")+")")
	}
	if f.ProjectID != "" {
		where = append(where, "project_id = "+arg(f.ProjectID))
	}
	if f.UserID != "" {
		where = append(where, "user_id = "+arg(f.UserID))
	}
	switch {
	case f.Deleted != nil && *f.Deleted:
		where = append(where, "deleted = TRUE")
	case f.Deleted != nil || f.ChangesSince.IsZero() && f.ChangesBefore.IsZero():
		where = append(where, "deleted = FALSE")
	}
	if len(f.VMStates) > 0 {
		in("vm_state", f.VMStates)
	}
	if len(f.TaskStates) > 0 {
		in("COALESCE(task_state, '')", f.TaskStates)
	}
	if f.FlavorID != "" {
		where = append(where, "flavor LIKE "+arg(`{"id":`+jsonString(f.FlavorID)+`,%`))
	}
	if f.ImageRef != "" {
		where = append(where, "image_ref = "+arg(f.ImageRef))
	}
	if f.Host != "" {
		where = append(where, "host = "+arg(f.Host))
	}
	if f.ReservationID != "" {
		where = append(where, "reservation_id = "+arg(f.ReservationID))
	}
	if f.AZ != "" {
		where = append(where, "availability_zone = "+arg(f.AZ))
	}
	if f.Locked != nil {
		where = append(where, "locked = "+arg(*f.Locked))
	}
	if !f.ChangesSince.IsZero() {
		where = append(where, "updated_at >= "+arg(db.FormatTime(f.ChangesSince)))
	}
	if !f.ChangesBefore.IsZero() {
		where = append(where, "updated_at <= "+arg(db.FormatTime(f.ChangesBefore)))
	}
	if len(f.UUIDs) > 0 {
		in("uuid", f.UUIDs)
	}
	tagIn := func(tags []string) string {
		ph := make([]string, len(tags))
		for i, t := range tags {
			ph[i] = arg(t)
		}
		return "SELECT instance_uuid FROM compute_instance_tags WHERE tag IN (" + strings.Join(ph, ", ") + ")"
	}
	if len(f.Tags) > 0 {
		n := len(slices.Compact(slices.Sorted(slices.Values(f.Tags))))
		where = append(where, "uuid IN ("+tagIn(f.Tags)+" GROUP BY instance_uuid HAVING COUNT(*) = "+arg(n)+")")
	}
	if len(f.TagsAny) > 0 {
		where = append(where, "uuid IN ("+tagIn(f.TagsAny)+")")
	}
	if len(f.NotTags) > 0 {
		n := len(slices.Compact(slices.Sorted(slices.Values(f.NotTags))))
		where = append(where, "uuid NOT IN ("+tagIn(f.NotTags)+" GROUP BY instance_uuid HAVING COUNT(*) = "+arg(n)+")")
	}
	if len(f.NotTagsAny) > 0 {
		where = append(where, "uuid NOT IN ("+tagIn(f.NotTagsAny)+")")
	}
	sorts := f.Sort
	if len(sorts) == 0 {
		sorts = []SortSpec{{Key: "created_at", Desc: true}}
	}
	// Ties break on id, in the direction of the last key, so that
	// marker paging is stable.
	var order []string
	for _, sp := range sorts {
		order = append(order, InstanceSortKeys[sp.Key]+dir(sp.Desc))
	}
	last := sorts[len(sorts)-1].Desc
	order = append(order, "id"+dir(last))
	if f.Marker != "" && f.NameRegex == "" {
		m, err := scanInstance(q.QueryRowContext(ctx, `SELECT `+instanceCols+` FROM compute_instances WHERE uuid = $1`, f.Marker))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrMarker
		}
		if err != nil {
			return nil, err
		}
		cond, err := s.after(ctx, q, m, sorts, arg)
		if err != nil {
			return nil, err
		}
		where = append(where, cond)
	}
	cols := instanceCols
	if f.ViewOnly {
		cols = viewCols
	}
	query := `SELECT ` + cols + ` FROM compute_instances`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + strings.Join(order, ", ")
	if f.Limit > 0 && f.NameRegex == "" {
		query += " LIMIT " + arg(f.Limit)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []*Instance
	if f.Limit > 0 && f.NameRegex == "" {
		out = make([]*Instance, 0, min(f.Limit, 1000))
	}
	flavors := map[string]InstanceFlavor{}
	for rows.Next() {
		i, err := scanRow(rows, f.ViewOnly, flavors)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, i)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.loadExtras(ctx, q, out)
}

func dir(desc bool) string {
	if desc {
		return " DESC"
	}
	return " ASC"
}

// after is the keyset condition "sorts after marker m": the marker's
// sort values are read with the same expressions the list orders by.
func (s *Store) after(ctx context.Context, q db.Querier, m *Instance, sorts []SortSpec, arg func(any) string) (string, error) {
	keys := append(slices.Clone(sorts), SortSpec{Key: "id", Desc: sorts[len(sorts)-1].Desc})
	cols := make([]string, len(keys))
	for i, sp := range keys {
		cols[i] = sortExpr(sp.Key)
	}
	vals := make([]any, len(keys))
	ptrs := make([]any, len(keys))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := q.QueryRowContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM compute_instances WHERE id = $1", m.ID).Scan(ptrs...); err != nil {
		return "", err
	}
	var ors []string
	for i := range keys {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j]+" = "+arg(vals[j]))
		}
		op := " > "
		if keys[i].Desc {
			op = " < "
		}
		ands = append(ands, cols[i]+op+arg(vals[i]))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

func sortExpr(key string) string {
	if key == "id" {
		return "id"
	}
	return InstanceSortKeys[key]
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
