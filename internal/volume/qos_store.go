package volume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/db"
)

// qosSchema is migration 2: QoS specs, their keys, and the one spec a
// volume type may be associated with (Cinder's volume_types.qos_specs_id).
const qosSchema = `
CREATE TABLE volume_qos_specs (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	consumer TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT
);
CREATE TABLE volume_qos_spec_keys (
	qos_id TEXT NOT NULL REFERENCES volume_qos_specs (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (qos_id, key)
);
ALTER TABLE volume_types ADD COLUMN qos_specs_id TEXT REFERENCES volume_qos_specs (id);
CREATE INDEX volume_types_qos_idx ON volume_types (qos_specs_id);
`

// errTypeMissing is a volume type that is not there (the QoS spec is).
var errTypeMissing = errors.New("volume store: no such volume type")

// errAssociated is a volume type already associated with another spec.
type errAssociated struct{ other string }

func (e errAssociated) Error() string { return "volume type associated with qos specs " + e.other }

// qosSort maps the sort keys of the QoS list to NULL-free columns.
var qosSort = map[string]string{"id": "id", "name": "name", "consumer": "consumer", "created_at": "created_at",
	"updated_at": "COALESCE(updated_at, '')"}

const qosCols = `id, name, consumer, created_at, updated_at`

func scanQoS(sc db.Scanner) (*QoSSpec, error) {
	var q QoSSpec
	var ct, ut sql.NullString
	if err := sc.Scan(&q.ID, &q.Name, &q.Consumer, &ct, &ut); err != nil {
		return nil, err
	}
	q.CreatedAt, q.UpdatedAt = parseTime(ct), parseTime(ut)
	return &q, nil
}

func (s *Store) loadQoSKeys(ctx context.Context, q db.Querier, qs []*QoSSpec) error {
	if len(qs) == 0 {
		return nil
	}
	byID := map[string]*QoSSpec{}
	args := make([]any, len(qs))
	for i, x := range qs {
		byID[x.ID], args[i] = x, x.ID
		x.Specs = map[string]string{}
	}
	return eachKeyValue(ctx, q, `SELECT qos_id, key, value FROM volume_qos_spec_keys WHERE qos_id IN (`+db.Placeholders(1, len(args))+`)`, args,
		func(id, k, v string) { byID[id].Specs[k] = v })
}

func (s *Store) queryQoS(ctx context.Context, q db.Querier, tail string, args ...any) ([]*QoSSpec, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+qosCols+` FROM volume_qos_specs `+tail, args...)
	if err != nil {
		return nil, err
	}
	out, err := db.Collect(rows, scanQoS)
	if err != nil {
		return nil, err
	}
	return out, s.loadQoSKeys(ctx, q, out)
}

// GetQoS returns one QoS spec with its keys (errNoRow when missing).
func (s *Store) GetQoS(ctx context.Context, q db.Querier, id string) (*QoSSpec, error) {
	if q == nil {
		q = s.db.Reader()
	}
	out, err := s.queryQoS(ctx, q, `WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errNoRow
	}
	return out[0], nil
}

func writeQoSKeys(ctx context.Context, tx *sql.Tx, id string, specs map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM volume_qos_spec_keys WHERE qos_id = $1`, id); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(specs)) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_qos_spec_keys (qos_id, key, value) VALUES ($1, $2, $3)`, id, k, specs[k]); err != nil {
			return err
		}
	}
	return nil
}

// CreateQoS inserts a spec with its keys (errDuplicate on a taken name).
func (s *Store) CreateQoS(ctx context.Context, q *QoSSpec) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO volume_qos_specs (id, name, consumer, created_at) VALUES ($1, $2, $3, $4)`,
			q.ID, q.Name, q.Consumer, fmtTime(q.CreatedAt))
		if db.IsUniqueViolation(err) {
			return errDuplicate
		}
		if err != nil {
			return err
		}
		return writeQoSKeys(ctx, tx, q.ID, q.Specs)
	})
}

// UpdateQoS changes a spec (fn may refuse) and saves it with its keys.
func (s *Store) UpdateQoS(ctx context.Context, id string, fn func(q *QoSSpec) error) (*QoSSpec, error) {
	var out *QoSSpec
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		q, err := s.GetQoS(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(q); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE volume_qos_specs SET consumer = $2, updated_at = $3 WHERE id = $1`,
			q.ID, q.Consumer, fmtTime(q.UpdatedAt)); err != nil {
			return err
		}
		out = q
		return writeQoSKeys(ctx, tx, q.ID, q.Specs)
	})
	return out, err
}

// DeleteQoS removes a spec. While volume types are associated with it,
// inUse is returned unless force is set, which disassociates them first.
func (s *Store) DeleteQoS(ctx context.Context, id string, force bool, inUse error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.GetQoS(ctx, tx, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM volume_types WHERE qos_specs_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 && !force {
			return inUse
		}
		for _, q := range []string{
			`UPDATE volume_types SET qos_specs_id = NULL WHERE qos_specs_id = $1`,
			`DELETE FROM volume_qos_spec_keys WHERE qos_id = $1`,
			`DELETE FROM volume_qos_specs WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// QoSQuery is a validated list request of QoS specs.
type QoSQuery struct {
	ID, Name, Consumer *string
	Sort               []SortKey
	Limit              int
	Marker             *QoSSpec
	Offset             int
}

// ListQoS returns a page of QoS specs.
func (s *Store) ListQoS(ctx context.Context, q QoSQuery) ([]*QoSSpec, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	for _, f := range []struct {
		col string
		v   *string
	}{{"id", q.ID}, {"name", q.Name}, {"consumer", q.Consumer}} {
		if f.v != nil {
			where = append(where, f.col+" = "+arg(*f.v))
		}
	}
	sorts := q.Sort
	if !slices.ContainsFunc(sorts, func(k SortKey) bool { return k.Key == "id" }) {
		desc := true
		if len(sorts) > 0 {
			desc = sorts[len(sorts)-1].Desc
		}
		sorts = append(slices.Clone(sorts), SortKey{Key: "id", Desc: desc})
	}
	if m := q.Marker; m != nil {
		where = append(where, keyset(sorts, qosSort, func(k string) any {
			switch k {
			case "id":
				return m.ID
			case "name":
				return m.Name
			case "consumer":
				return m.Consumer
			case "created_at":
				return fmtTime(m.CreatedAt)
			case "updated_at":
				if t := fmtTime(m.UpdatedAt); t != nil {
					return t
				}
				return ""
			}
			return nil
		}, arg))
	}
	tail := ""
	if len(where) > 0 {
		tail = "WHERE " + strings.Join(where, " AND ")
	}
	tail += orderBy(sorts, qosSort)
	if q.Limit > 0 {
		tail += " LIMIT " + arg(q.Limit)
	}
	if q.Offset > 0 {
		tail += " OFFSET " + arg(q.Offset)
	}
	return s.queryQoS(ctx, s.db.Reader(), tail, args...)
}

// QoSAssociations lists the volume types associated with a spec, by name.
func (s *Store) QoSAssociations(ctx context.Context, id string) ([]*VolumeType, error) {
	if _, err := s.GetQoS(ctx, nil, id); err != nil {
		return nil, err
	}
	return s.queryTypes(ctx, s.db.Reader(), `WHERE qos_specs_id = $1 ORDER BY name`, id)
}

// AssociateQoS associates a type with a spec: errNoRow when the spec is
// missing, errTypeMissing for the type, errAssociated when the type is
// associated with another spec. Associating again is a no-op.
func (s *Store) AssociateQoS(ctx context.Context, id, typeID string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.qosOfType(ctx, tx, id, typeID)
		if err != nil {
			return err
		}
		if cur != nil && *cur != id {
			return errAssociated{other: *cur}
		}
		_, err = tx.ExecContext(ctx, `UPDATE volume_types SET qos_specs_id = $2 WHERE id = $1`, typeID, id)
		return err
	})
}

// DisassociateQoS removes the association of a type with a spec (none
// there: a no-op); errors as AssociateQoS.
func (s *Store) DisassociateQoS(ctx context.Context, id, typeID string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.qosOfType(ctx, tx, id, typeID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE volume_types SET qos_specs_id = NULL WHERE id = $1 AND qos_specs_id = $2`, typeID, id)
		return err
	})
}

// DisassociateAllQoS removes every association of a spec.
func (s *Store) DisassociateAllQoS(ctx context.Context, id string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.GetQoS(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE volume_types SET qos_specs_id = NULL WHERE qos_specs_id = $1`, id)
		return err
	})
}

// qosOfType checks that spec id and the type exist and returns the spec
// the type is associated with now (nil: none).
func (s *Store) qosOfType(ctx context.Context, tx *sql.Tx, id, typeID string) (*string, error) {
	if _, err := s.GetQoS(ctx, tx, id); err != nil {
		return nil, err
	}
	var cur sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT qos_specs_id FROM volume_types WHERE id = $1`, typeID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errTypeMissing
	}
	if err != nil {
		return nil, err
	}
	return strPtr(cur), nil
}

// TypeQoS returns the spec a volume type is associated with (nil: none).
func (s *Store) TypeQoS(ctx context.Context, typeID string) (*QoSSpec, error) {
	out, err := s.queryQoS(ctx, s.db.Reader(), `WHERE id = (SELECT qos_specs_id FROM volume_types WHERE id = $1)`, typeID)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0], nil
}
