package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// KeyPair is a row of compute_keypairs. Key pairs belong to a user, not a
// project; ProjectID records the project the creating token was scoped to.
type KeyPair struct {
	ID          int64
	UserID      string
	ProjectID   string
	Name        string
	Type        string // ssh or x509
	PublicKey   string
	Fingerprint string
	CreatedAt   time.Time
}

const keypairSelect = `SELECT id, user_id, project_id, name, type, public_key, fingerprint, created_at FROM compute_keypairs`

func scanKeyPair(sc interface{ Scan(...any) error }) (*KeyPair, error) {
	var k KeyPair
	var created sql.NullString
	if err := sc.Scan(&k.ID, &k.UserID, &k.ProjectID, &k.Name, &k.Type, &k.PublicKey, &k.Fingerprint, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = db.ParseTime(created)
	return &k, nil
}

// CountKeyPairs counts the key pairs of a user, inside q (a transaction
// during a quota check).
func CountKeyPairs(ctx context.Context, q db.Querier, userID string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_keypairs WHERE user_id = $1`, userID).Scan(&n)
	return n, err
}

// InsertKeyPair inserts k inside tx; a taken name is ErrExists.
func InsertKeyPair(ctx context.Context, tx *sql.Tx, k *KeyPair) error {
	k.CreatedAt = time.Now().UTC()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_keypairs WHERE user_id = $1 AND name = $2`, k.UserID, k.Name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return ErrExists
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO compute_keypairs (user_id, project_id, name, type, public_key, fingerprint, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		k.UserID, k.ProjectID, k.Name, k.Type, k.PublicKey, k.Fingerprint, db.FormatTime(k.CreatedAt)).Scan(&k.ID)
	if db.IsUniqueViolation(err) {
		return ErrExists
	}
	return err
}

// GetKeyPair returns a user's key pair by name.
func (s *Store) GetKeyPair(ctx context.Context, userID, name string) (*KeyPair, error) {
	k, err := scanKeyPair(s.db.Reader().QueryRowContext(ctx, keypairSelect+` WHERE user_id = $1 AND name = $2`, userID, name))
	if err == sql.ErrNoRows {
		return nil, ErrNotFound
	}
	return k, err
}

// ListKeyPairs lists a user's key pairs by name, after marker (a name),
// at most limit (0: all).
func (s *Store) ListKeyPairs(ctx context.Context, userID string, limit int, marker string) ([]*KeyPair, error) {
	q := s.db.Reader()
	args := []any{userID}
	query := keypairSelect + ` WHERE user_id = $1`
	if marker != "" {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_keypairs WHERE user_id = $1 AND name = $2`, userID, marker).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrMarker
		}
		args = append(args, marker)
		query += ` AND name > $2`
	}
	query += ` ORDER BY name ASC`
	if limit > 0 {
		args = append(args, limit)
		query += ` LIMIT $` + itoa(len(args))
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*KeyPair{}
	for rows.Next() {
		k, err := scanKeyPair(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteKeyPair removes a user's key pair.
func (s *Store) DeleteKeyPair(ctx context.Context, userID, name string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM compute_keypairs WHERE user_id = $1 AND name = $2`, userID, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
