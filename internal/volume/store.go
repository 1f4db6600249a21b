package volume

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// Store errors.
var (
	errNoRow     = errors.New("volume store: not found")
	errDuplicate = errors.New("volume store: duplicate")
)

// Store holds the volume service's SQL. Read methods take a db.Querier so
// they run inside or outside a transaction.
type Store struct{ db *db.DB }

// NewStore returns a store on d.
func NewStore(d *db.DB) *Store { return &Store{db: d} }

const timeFmt = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFmt)
}

func parseTime(s sql.NullString) time.Time {
	if !s.Valid || s.String == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeFmt, s.String)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s.String)
	}
	return t.UTC()
}

func nullStr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func jsonMap(s string) map[string]string {
	m := map[string]string{}
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

func taskText(t *Task) any {
	if t == nil {
		return nil
	}
	return jsonText(t)
}

func parseTask(s sql.NullString) *Task {
	if !s.Valid || s.String == "" {
		return nil
	}
	var t Task
	if json.Unmarshal([]byte(s.String), &t) != nil {
		return nil
	}
	return &t
}

// ---- volumes ----

const volumeCols = `v.id, v.project_id, v.user_id, v.name, v.description, v.size, v.status, v.attach_status,
v.availability_zone, v.type_id, t.name, v.snapshot_id, v.source_volid, v.image_id, v.bootable, v.multiattach,
v.host, v.location, v.image_metadata, v.admin_metadata, v.task, v.created_at, v.updated_at`

const volumeFrom = ` FROM volumes v JOIN volume_types t ON t.id = v.type_id`

func scanVolume(sc interface{ Scan(...any) error }) (*Volume, error) {
	var v Volume
	var name, desc, snap, src, img, host, loc, task, created, updated sql.NullString
	var imeta, ameta string
	if err := sc.Scan(&v.ID, &v.ProjectID, &v.UserID, &name, &desc, &v.Size, &v.Status, &v.AttachStatus,
		&v.Zone, &v.TypeID, &v.TypeName, &snap, &src, &img, &v.Bootable, &v.Multiattach,
		&host, &loc, &imeta, &ameta, &task, &created, &updated); err != nil {
		return nil, err
	}
	v.Name, v.Description, v.SnapshotID, v.SourceVolID, v.ImageID = strPtr(name), strPtr(desc), strPtr(snap), strPtr(src), strPtr(img)
	v.Host, v.Location = strPtr(host), strPtr(loc)
	v.ImageMeta, v.AdminMeta = jsonMap(imeta), jsonMap(ameta)
	v.Task = parseTask(task)
	v.CreatedAt, v.UpdatedAt = parseTime(created), parseTime(updated)
	v.Metadata = map[string]string{}
	return &v, nil
}

// eachKeyValue runs query, which selects (owner id, key, value) rows of a
// key/value table (volume metadata, type extra specs, QoS spec keys), and
// hands each row to fn.
func eachKeyValue(ctx context.Context, q db.Querier, query string, args []any, fn func(id, k, v string)) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return err
		}
		fn(id, k, v)
	}
	return rows.Err()
}

// loadVolumeExtras fills metadata and attachments of vs.
func (s *Store) loadVolumeExtras(ctx context.Context, q db.Querier, vs []*Volume) error {
	if len(vs) == 0 {
		return nil
	}
	byID := make(map[string]*Volume, len(vs))
	args := make([]any, len(vs))
	for i, v := range vs {
		byID[v.ID] = v
		args[i] = v.ID
	}
	in := db.Placeholders(1, len(args))
	if err := eachKeyValue(ctx, q, `SELECT volume_id, key, value FROM volume_metadata WHERE volume_id IN (`+in+`)`, args,
		func(id, k, val string) { byID[id].Metadata[k] = val }); err != nil {
		return err
	}
	atts, err := s.queryAttachments(ctx, q, `WHERE volume_id IN (`+in+`) ORDER BY created_at, id`, args...)
	if err != nil {
		return err
	}
	for _, a := range atts {
		v := byID[a.VolumeID]
		v.Attachments = append(v.Attachments, a)
	}
	return nil
}

// GetVolume loads one volume with its metadata and attachments.
func (s *Store) GetVolume(ctx context.Context, q db.Querier, id string) (*Volume, error) {
	if q == nil {
		q = s.db.Reader()
	}
	v, err := scanVolume(q.QueryRowContext(ctx, `SELECT `+volumeCols+volumeFrom+` WHERE v.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRow
	}
	if err != nil {
		return nil, err
	}
	if err := s.loadVolumeExtras(ctx, q, []*Volume{v}); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *Store) insertVolume(ctx context.Context, tx *sql.Tx, v *Volume) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO volumes (id, project_id, user_id, name, description, size, status,
attach_status, availability_zone, type_id, snapshot_id, source_volid, image_id, bootable, multiattach, host, location,
image_metadata, admin_metadata, task, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		v.ID, v.ProjectID, v.UserID, nullStr(v.Name), nullStr(v.Description), v.Size, v.Status, v.AttachStatus,
		v.Zone, v.TypeID, nullStr(v.SnapshotID), nullStr(v.SourceVolID), nullStr(v.ImageID), v.Bootable, v.Multiattach,
		nullStr(v.Host), nullStr(v.Location), jsonText(v.ImageMeta), jsonText(v.AdminMeta), taskText(v.Task),
		fmtTime(v.CreatedAt), fmtTime(v.UpdatedAt))
	if err != nil {
		if db.IsUniqueViolation(err) {
			return errDuplicate
		}
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(v.Metadata)) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_metadata (volume_id, key, value) VALUES ($1, $2, $3)`, v.ID, k, v.Metadata[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) writeMetadata(ctx context.Context, tx *sql.Tx, id string, md map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM volume_metadata WHERE volume_id = $1`, id); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_metadata (volume_id, key, value) VALUES ($1, $2, $3)`, id, k, md[k]); err != nil {
			return err
		}
	}
	return nil
}

// lockVolume locks the volume row (not its type's) on PostgreSQL.
func (s *Store) lockVolume() string {
	if s.db.ForUpdate() == "" {
		return ""
	}
	return " FOR UPDATE OF v"
}

// CreateVolume inserts v after check (run in the transaction on the
// owner's usage) allows it.
func (s *Store) CreateVolume(ctx context.Context, v *Volume, check func(tx *sql.Tx) error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		return s.insertVolume(ctx, tx, v)
	})
}

// UpdateVolume loads a volume in a write transaction, lets fn change it
// (fn may use tx for checks) and saves it, its metadata and attachments.
func (s *Store) UpdateVolume(ctx context.Context, id string, fn func(tx *sql.Tx, v *Volume) error) (*Volume, error) {
	var out *Volume
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		v, err := scanVolume(tx.QueryRowContext(ctx, `SELECT `+volumeCols+volumeFrom+` WHERE v.id = $1`+s.lockVolume(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errNoRow
		}
		if err != nil {
			return err
		}
		if err := s.loadVolumeExtras(ctx, tx, []*Volume{v}); err != nil {
			return err
		}
		oldMeta := maps.Clone(v.Metadata)
		oldAtts := map[string]Attachment{}
		for _, a := range v.Attachments {
			oldAtts[a.ID] = *a
		}
		if err := fn(tx, v); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE volumes SET name = $2, description = $3, size = $4, status = $5,
attach_status = $6, type_id = $7, bootable = $8, multiattach = $9, host = $10, location = $11, image_metadata = $12,
admin_metadata = $13, task = $14, updated_at = $15, availability_zone = $16 WHERE id = $1`,
			v.ID, nullStr(v.Name), nullStr(v.Description), v.Size, v.Status, v.AttachStatus, v.TypeID, v.Bootable,
			v.Multiattach, nullStr(v.Host), nullStr(v.Location), jsonText(v.ImageMeta), jsonText(v.AdminMeta),
			taskText(v.Task), fmtTime(v.UpdatedAt), v.Zone)
		if err != nil {
			return err
		}
		if !maps.Equal(oldMeta, v.Metadata) {
			if err := s.writeMetadata(ctx, tx, v.ID, v.Metadata); err != nil {
				return err
			}
		}
		keep := map[string]bool{}
		for _, a := range v.Attachments {
			keep[a.ID] = true
			if old, ok := oldAtts[a.ID]; ok && attachmentEqual(&old, a) {
				continue
			}
			if err := s.saveAttachment(ctx, tx, a, oldAtts[a.ID].ID != ""); err != nil {
				return err
			}
		}
		for aid := range oldAtts {
			if !keep[aid] {
				if _, err := tx.ExecContext(ctx, `DELETE FROM volume_attachments WHERE id = $1`, aid); err != nil {
					return err
				}
			}
		}
		out = v
		return nil
	})
	return out, err
}

// DeleteVolume removes a volume row when check allows it.
func (s *Store) DeleteVolume(ctx context.Context, id string, check func(tx *sql.Tx, v *Volume) error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		v, err := scanVolume(tx.QueryRowContext(ctx, `SELECT `+volumeCols+volumeFrom+` WHERE v.id = $1`+s.lockVolume(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errNoRow
		}
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(tx, v); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM volumes WHERE id = $1`, id)
		return err
	})
}

// VolumeIDsInStatus lists volumes in one of the statuses.
func (s *Store) VolumeIDsInStatus(ctx context.Context, statuses ...string) ([]string, error) {
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = st
	}
	return s.strings(ctx, `SELECT id FROM volumes WHERE status IN (`+db.Placeholders(1, len(args))+`) ORDER BY created_at`, args...)
}

func (s *Store) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
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

// SortKey is one ORDER BY term of a list.
type SortKey struct {
	Key  string
	Desc bool
}

// volumeSort maps Cinder's sort keys to NULL-free expressions.
var volumeSort = map[string]string{
	"id": "v.id", "name": "COALESCE(v.name, '')", "status": "v.status", "size": "v.size",
	"created_at": "v.created_at", "updated_at": "COALESCE(v.updated_at, '')", "availability_zone": "v.availability_zone",
	"bootable": "v.bootable", "project_id": "v.project_id", "volume_type": "t.name", "description": "COALESCE(v.description, '')",
}

// VolumeQuery is a validated list request.
type VolumeQuery struct {
	Project     string // "" with AllProjects
	AllProjects bool
	Name        *string
	Status      *string
	Zone        *string
	Bootable    *bool
	TypeID      *string
	Metadata    map[string]string
	Sort        []SortKey
	Limit       int
	Marker      *Volume
	Offset      int
}

// ListVolumes returns a page of volumes.
func (s *Store) ListVolumes(ctx context.Context, q VolumeQuery) ([]*Volume, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if !q.AllProjects {
		where = append(where, "v.project_id = "+arg(q.Project))
	} else if q.Project != "" {
		where = append(where, "v.project_id = "+arg(q.Project))
	}
	if q.Name != nil {
		where = append(where, "v.name = "+arg(*q.Name))
	}
	if q.Status != nil {
		where = append(where, "v.status = "+arg(*q.Status))
	}
	if q.Zone != nil {
		where = append(where, "v.availability_zone = "+arg(*q.Zone))
	}
	if q.Bootable != nil {
		where = append(where, "v.bootable = "+arg(*q.Bootable))
	}
	if q.TypeID != nil {
		where = append(where, "v.type_id = "+arg(*q.TypeID))
	}
	for _, k := range slices.Sorted(maps.Keys(q.Metadata)) {
		where = append(where, "EXISTS (SELECT 1 FROM volume_metadata m WHERE m.volume_id = v.id AND m.key = "+arg(k)+" AND m.value = "+arg(q.Metadata[k])+")")
	}
	sorts := q.Sort
	if !slices.ContainsFunc(sorts, func(k SortKey) bool { return k.Key == "id" }) {
		desc := true
		if len(sorts) > 0 {
			desc = sorts[len(sorts)-1].Desc
		}
		sorts = append(slices.Clone(sorts), SortKey{Key: "id", Desc: desc})
	}
	if q.Marker != nil {
		where = append(where, keyset(sorts, volumeSort, volumeSortValue(q.Marker), arg))
	}
	query := `SELECT ` + volumeCols + volumeFrom
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += orderBy(sorts, volumeSort)
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
	out, err := db.Collect(rows, scanVolume)
	if err != nil {
		return nil, err
	}
	return out, s.loadVolumeExtras(ctx, s.db.Reader(), out)
}

func volumeSortValue(v *Volume) func(key string) any {
	return func(key string) any {
		switch key {
		case "id":
			return v.ID
		case "name":
			return deref(v.Name)
		case "description":
			return deref(v.Description)
		case "status":
			return v.Status
		case "size":
			return v.Size
		case "created_at":
			return fmtTime(v.CreatedAt)
		case "updated_at":
			if t := fmtTime(v.UpdatedAt); t != nil {
				return t
			}
			return ""
		case "availability_zone":
			return v.Zone
		case "bootable":
			return v.Bootable
		case "project_id":
			return v.ProjectID
		case "volume_type":
			return v.TypeName
		}
		return nil
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func orderBy(sorts []SortKey, cols map[string]string) string {
	parts := make([]string, len(sorts))
	for i, k := range sorts {
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		parts[i] = cols[k.Key] + dir
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

// keyset builds the condition "row comes after the marker" for sorts.
func keyset(sorts []SortKey, cols map[string]string, val func(string) any, arg func(any) string) string {
	var ors []string
	for i := range sorts {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[sorts[j].Key]+" = "+arg(val(sorts[j].Key)))
		}
		op := " > "
		if sorts[i].Desc {
			op = " < "
		}
		ands = append(ands, cols[sorts[i].Key]+op+arg(val(sorts[i].Key)))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// UsageOf counts what project holds, inside q.
func (s *Store) UsageOf(ctx context.Context, q db.Querier, project string) (Usage, error) {
	var u Usage
	var vg, sg sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*), SUM(size) FROM volumes WHERE project_id = $1`, project).Scan(&u.Volumes, &vg); err != nil {
		return u, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*), SUM(size) FROM volume_snapshots WHERE project_id = $1`, project).Scan(&u.Snapshots, &sg); err != nil {
		return u, err
	}
	u.Gigabytes = vg.Int64 + sg.Int64
	return u, nil
}

// TypeUsageOf counts what project holds of one volume type, inside q.
func (s *Store) TypeUsageOf(ctx context.Context, q db.Querier, project, typeID string) (Usage, error) {
	var u Usage
	var vg, sg sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*), SUM(size) FROM volumes WHERE project_id = $1 AND type_id = $2`, project, typeID).Scan(&u.Volumes, &vg); err != nil {
		return u, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*), SUM(s.size) FROM volume_snapshots s JOIN volumes v ON v.id = s.volume_id
WHERE s.project_id = $1 AND v.type_id = $2`, project, typeID).Scan(&u.Snapshots, &sg); err != nil {
		return u, err
	}
	u.Gigabytes = vg.Int64 + sg.Int64
	return u, nil
}

// ProvisionedGB sums the sizes of volumes and snapshots on a backend host.
func (s *Store) ProvisionedGB(ctx context.Context, host string) (int64, error) {
	var n sql.NullInt64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT SUM(size) FROM volumes WHERE host = $1`, host).Scan(&n)
	return n.Int64, err
}

// ---- attachments ----

const attachmentCols = `id, volume_id, project_id, instance_uuid, attached_host, mountpoint, attach_status, attach_mode,
connector, delete_on_termination, tag, attach_time, detach_time, created_at, updated_at`

func (s *Store) queryAttachments(ctx context.Context, q db.Querier, tail string, args ...any) ([]*Attachment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+attachmentCols+` FROM volume_attachments `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Attachment
	for rows.Next() {
		var a Attachment
		var inst, host, mp, conn, tag, at, dt, ct, ut sql.NullString
		if err := rows.Scan(&a.ID, &a.VolumeID, &a.ProjectID, &inst, &host, &mp, &a.Status, &a.Mode, &conn,
			&a.DeleteOnTermination, &tag, &at, &dt, &ct, &ut); err != nil {
			return nil, err
		}
		a.InstanceUUID, a.Host, a.Mountpoint, a.Tag = strPtr(inst), strPtr(host), strPtr(mp), strPtr(tag)
		if conn.Valid && conn.String != "" {
			_ = json.Unmarshal([]byte(conn.String), &a.Connector)
		}
		a.AttachTime, a.DetachTime, a.CreatedAt, a.UpdatedAt = parseTime(at), parseTime(dt), parseTime(ct), parseTime(ut)
		out = append(out, &a)
	}
	return out, rows.Err()
}

func attachmentEqual(a, b *Attachment) bool {
	return jsonText(attachmentRow(a)) == jsonText(attachmentRow(b))
}

func attachmentRow(a *Attachment) []any {
	var conn any
	if a.Connector != nil {
		conn = jsonText(a.Connector)
	}
	return []any{a.ID, a.VolumeID, a.ProjectID, nullStr(a.InstanceUUID), nullStr(a.Host), nullStr(a.Mountpoint),
		a.Status, a.Mode, conn, a.DeleteOnTermination, nullStr(a.Tag), fmtTime(a.AttachTime), fmtTime(a.DetachTime),
		fmtTime(a.CreatedAt), fmtTime(a.UpdatedAt)}
}

func (s *Store) saveAttachment(ctx context.Context, tx *sql.Tx, a *Attachment, exists bool) error {
	row := attachmentRow(a)
	if exists {
		_, err := tx.ExecContext(ctx, `UPDATE volume_attachments SET volume_id = $2, project_id = $3, instance_uuid = $4,
attached_host = $5, mountpoint = $6, attach_status = $7, attach_mode = $8, connector = $9, delete_on_termination = $10,
tag = $11, attach_time = $12, detach_time = $13, created_at = $14, updated_at = $15 WHERE id = $1`, row...)
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO volume_attachments (`+attachmentCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, row...)
	return err
}

// AttachmentQuery selects attachments.
type AttachmentQuery struct {
	Project      string
	AllProjects  bool
	VolumeID     *string
	InstanceUUID *string
	// InstanceUUIDs, when not nil, keeps the attachments of these
	// instances (one JSON-array parameter).
	InstanceUUIDs []string
	Status        *string
	Limit         int
	Marker        string
	Desc          bool
}

// ListAttachments returns attachments ordered by created_at, id.
func (s *Store) ListAttachments(ctx context.Context, q AttachmentQuery) ([]*Attachment, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if !q.AllProjects || q.Project != "" {
		where = append(where, "project_id = "+arg(q.Project))
	}
	if q.VolumeID != nil {
		where = append(where, "volume_id = "+arg(*q.VolumeID))
	}
	if q.InstanceUUID != nil {
		where = append(where, "instance_uuid = "+arg(*q.InstanceUUID))
	}
	if q.InstanceUUIDs != nil {
		arg(db.JSONStrings(q.InstanceUUIDs))
		where = append(where, "instance_uuid "+s.db.InList(len(args)))
	}
	if q.Status != nil {
		where = append(where, "attach_status = "+arg(*q.Status))
	}
	dir, op := " ASC", " > "
	if q.Desc {
		dir, op = " DESC", " < "
	}
	if q.Marker != "" {
		m := arg(q.Marker)
		where = append(where, "(created_at, id)"+op+"(SELECT created_at, id FROM volume_attachments WHERE id = "+m+")")
	}
	tail := ""
	if len(where) > 0 {
		tail = "WHERE " + strings.Join(where, " AND ")
	}
	tail += " ORDER BY created_at" + dir + ", id" + dir
	if q.Limit > 0 {
		tail += " LIMIT " + arg(q.Limit)
	}
	return s.queryAttachments(ctx, s.db.Reader(), tail, args...)
}

// GetAttachment loads one attachment.
func (s *Store) GetAttachment(ctx context.Context, id string) (*Attachment, error) {
	as, err := s.queryAttachments(ctx, s.db.Reader(), `WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, errNoRow
	}
	return as[0], nil
}

// InstancesWithAttachments lists the instance uuids that have attachments.
func (s *Store) InstancesWithAttachments(ctx context.Context) ([]string, error) {
	return s.strings(ctx, `SELECT DISTINCT instance_uuid FROM volume_attachments WHERE instance_uuid IS NOT NULL`)
}
