package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Store holds identity data in SQL. Every write bumps the identity
// generation in the same transaction; validators in every process watch it
// to drop cached token data.
type Store struct {
	db *db.DB
	// credKeys encrypts credential blobs at rest (credkeys.go); nil
	// stores them in clear. credKeyFile is where they were read from.
	credKeys    atomic.Pointer[credKeyRing]
	credKeyFile string
}

// NewStore returns a store on d.
func NewStore(d *db.DB) *Store { return &Store{db: d} }

func (s *Store) q() db.Querier { return s.db.Reader() }

// write runs fn in a transaction and bumps the generation.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE identity_meta SET generation = generation + 1 WHERE id = 1`)
		return err
	})
}

// Generation returns the identity data generation.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	var g int64
	err := s.q().QueryRowContext(ctx, `SELECT generation FROM identity_meta WHERE id = 1`).Scan(&g)
	return g, err
}

func encodeJSON(v any) string {
	if v == nil {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func decodeExtra(s string) Extra {
	e := Extra{}
	_ = json.Unmarshal([]byte(s), &e)
	return e
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ptrStr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

func conflict(kind, field, value string) error {
	return apiutil.Conflict("Conflict occurred attempting to store %s - Duplicate entry found with %s %s.", kind, field, value)
}

// projectConflict is Keystone's message for a duplicate project name.
func projectConflict(p *Project) error {
	return apiutil.Conflict("Conflict occurred attempting to store project - it is not permitted to have two projects with either the same name or same id in the same domain: name is %s, project id %s.", p.Name, p.ID)
}

// ---- domains ----

const domainCols = `id, name, description, enabled, extra, created_at`

func scanDomain(sc interface{ Scan(...any) error }) (*Domain, error) {
	var d Domain
	var extra string
	var created sql.NullString
	if err := sc.Scan(&d.ID, &d.Name, &d.Description, &d.Enabled, &extra, &created); err != nil {
		return nil, err
	}
	d.Extra, d.CreatedAt = decodeExtra(extra), db.ParseTime(created)
	return &d, nil
}

func (s *Store) CreateDomain(ctx context.Context, d *Domain) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO domains (`+domainCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			d.ID, d.Name, d.Description, d.Enabled, encodeJSON(d.Extra), db.FormatTime(d.CreatedAt))
		if db.IsUniqueViolation(err) {
			return conflict("domain", "name", d.Name)
		}
		return err
	})
}

func (s *Store) GetDomain(ctx context.Context, id string) (*Domain, error) {
	d, err := scanDomain(s.q().QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find domain: %s.", id)
	}
	return d, err
}

func (s *Store) GetDomainByName(ctx context.Context, name string) (*Domain, error) {
	d, err := scanDomain(s.q().QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find domain: %s.", name)
	}
	return d, err
}

// Filter is a list filter: column = value pairs, all optional.
type Filter map[string]any

func where(f Filter, cols map[string]string) (string, []any) {
	keys := make([]string, 0, len(f))
	for k := range f {
		if _, ok := cols[k]; ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", nil
	}
	slices.Sort(keys) // stable query text for statement caching
	conds := make([]string, len(keys))
	args := make([]any, len(keys))
	for i, k := range keys {
		conds[i] = fmt.Sprintf("%s = $%d", cols[k], i+1)
		args[i] = f[k]
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (s *Store) ListDomains(ctx context.Context, f Filter) ([]*Domain, error) {
	w, args := where(f, map[string]string{"name": "name", "enabled": "enabled", "id": "id"})
	rows, err := s.q().QueryContext(ctx, `SELECT `+domainCols+` FROM domains`+w+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Domain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) UpdateDomain(ctx context.Context, d *Domain) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE domains SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1`,
			d.ID, d.Name, d.Description, d.Enabled, encodeJSON(d.Extra))
		if db.IsUniqueViolation(err) {
			return conflict("domain", "name", d.Name)
		}
		return mustAffect(res, err, "domain", d.ID)
	})
}

// DeleteDomain removes a domain with its projects, users, groups, roles
// and every assignment on or of them.
func (s *Store) DeleteDomain(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM role_assignments WHERE target_id = $1 OR target_id IN (SELECT id FROM projects WHERE domain_id = $1)
				OR actor_id IN (SELECT id FROM users WHERE domain_id = $1) OR actor_id IN (SELECT id FROM user_groups WHERE domain_id = $1)`,
			`DELETE FROM application_credentials WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)`,
			`DELETE FROM users WHERE domain_id = $1`,
			`DELETE FROM user_groups WHERE domain_id = $1`,
			`DELETE FROM roles WHERE domain_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		// Projects: children before parents.
		for {
			res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE domain_id = $1 AND id NOT IN
				(SELECT parent_id FROM projects WHERE parent_id IS NOT NULL)`, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				break
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM domains WHERE id = $1`, id)
		return mustAffect(res, err, "domain", id)
	})
}

func mustAffect(res sql.Result, err error, kind, id string) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apiutil.NotFound("Could not find %s: %s.", kind, id)
	}
	return nil
}

// ---- projects ----

const projectCols = `id, name, domain_id, parent_id, description, enabled, tags, extra, created_at`

func scanProject(sc interface{ Scan(...any) error }) (*Project, error) {
	var p Project
	var parent, created sql.NullString
	var tags, extra string
	if err := sc.Scan(&p.ID, &p.Name, &p.DomainID, &parent, &p.Description, &p.Enabled, &tags, &extra, &created); err != nil {
		return nil, err
	}
	p.ParentID = parent.String
	_ = json.Unmarshal([]byte(tags), &p.Tags)
	if p.Tags == nil {
		p.Tags = []string{}
	}
	p.Extra, p.CreatedAt = decodeExtra(extra), db.ParseTime(created)
	return &p, nil
}

func (s *Store) CreateProject(ctx context.Context, p *Project) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projects (`+projectCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			p.ID, p.Name, p.DomainID, nullStr(p.ParentID), p.Description, p.Enabled, encodeJSON(p.Tags), encodeJSON(p.Extra), db.FormatTime(p.CreatedAt))
		if db.IsUniqueViolation(err) {
			return projectConflict(p)
		}
		return err
	})
}

func (s *Store) GetProject(ctx context.Context, id string) (*Project, error) {
	p, err := scanProject(s.q().QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find project: %s.", id)
	}
	return p, err
}

func (s *Store) GetProjectByName(ctx context.Context, domainID, name string) (*Project, error) {
	p, err := scanProject(s.q().QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE domain_id = $1 AND name = $2`, domainID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find project: %s.", name)
	}
	return p, err
}

func (s *Store) ListProjects(ctx context.Context, f Filter) ([]*Project, error) {
	w, args := where(f, map[string]string{"name": "name", "domain_id": "domain_id", "enabled": "enabled", "parent_id": "parent_id", "id": "id"})
	return s.queryProjects(ctx, `SELECT `+projectCols+` FROM projects`+w+` ORDER BY name, id`, args...)
}

func (s *Store) queryProjects(ctx context.Context, q string, args ...any) ([]*Project, error) {
	rows, err := s.q().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *Store) UpdateProject(ctx context.Context, p *Project) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE projects SET name = $2, description = $3, enabled = $4, tags = $5, extra = $6 WHERE id = $1`,
			p.ID, p.Name, p.Description, p.Enabled, encodeJSON(p.Tags), encodeJSON(p.Extra))
		if db.IsUniqueViolation(err) {
			return projectConflict(p)
		}
		return mustAffect(res, err, "project", p.ID)
	})
}

func (s *Store) DeleteProject(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var children int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE parent_id = $1`, id).Scan(&children); err != nil {
			return err
		}
		if children > 0 {
			return apiutil.Forbidden("Cannot delete the project %s since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a subtree.", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE target_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET default_project_id = NULL WHERE default_project_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id = $1`, id)
		return mustAffect(res, err, "project", id)
	})
}

// ---- users ----

const userCols = `id, name, domain_id, enabled, default_project_id, description, password_hash, password_created_at,
	password_expires_at, failed_auth_count, failed_auth_at, extra, created_at`

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	var dp, desc, hash, pwc, pwe, faa, created sql.NullString
	var extra string
	if err := sc.Scan(&u.ID, &u.Name, &u.DomainID, &u.Enabled, &dp, &desc, &hash, &pwc, &pwe, &u.FailedAuthCount, &faa, &extra, &created); err != nil {
		return nil, err
	}
	u.DefaultProjectID, u.Description, u.PasswordHash = dp.String, ptrStr(desc), hash.String
	u.PasswordCreatedAt, u.PasswordExpiresAt, u.FailedAuthAt = db.ParseTime(pwc), db.ParseTime(pwe), db.ParseTime(faa)
	u.Extra, u.CreatedAt = decodeExtra(extra), db.ParseTime(created)
	return &u, nil
}

func (s *Store) CreateUser(ctx context.Context, u *User) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			u.ID, u.Name, u.DomainID, u.Enabled, nullStr(u.DefaultProjectID), u.Description, nullStr(u.PasswordHash),
			db.FormatTime(u.PasswordCreatedAt), db.FormatTime(u.PasswordExpiresAt), u.FailedAuthCount, db.FormatTime(u.FailedAuthAt),
			encodeJSON(u.Extra), db.FormatTime(u.CreatedAt))
		if db.IsUniqueViolation(err) {
			return conflict("user", "name", u.Name)
		}
		return err
	})
}

func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.q().QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find user: %s.", id)
	}
	return u, err
}

func (s *Store) GetUserByName(ctx context.Context, domainID, name string) (*User, error) {
	u, err := scanUser(s.q().QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE domain_id = $1 AND name = $2`, domainID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find user: %s.", name)
	}
	return u, err
}

func (s *Store) ListUsers(ctx context.Context, f Filter) ([]*User, error) {
	w, args := where(f, map[string]string{"name": "name", "domain_id": "domain_id", "enabled": "enabled", "id": "id"})
	return s.queryUsers(ctx, `SELECT `+userCols+` FROM users`+w+` ORDER BY name, id`, args...)
}

func (s *Store) queryUsers(ctx context.Context, q string, args ...any) ([]*User, error) {
	rows, err := s.q().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser writes every mutable attribute of u.
func (s *Store) UpdateUser(ctx context.Context, u *User) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET name = $2, enabled = $3, default_project_id = $4, description = $5,
			password_hash = $6, password_created_at = $7, password_expires_at = $8, failed_auth_count = $9, failed_auth_at = $10, extra = $11
			WHERE id = $1`,
			u.ID, u.Name, u.Enabled, nullStr(u.DefaultProjectID), u.Description, nullStr(u.PasswordHash),
			db.FormatTime(u.PasswordCreatedAt), db.FormatTime(u.PasswordExpiresAt), u.FailedAuthCount, db.FormatTime(u.FailedAuthAt), encodeJSON(u.Extra))
		if db.IsUniqueViolation(err) {
			return conflict("user", "name", u.Name)
		}
		return mustAffect(res, err, "user", u.ID)
	})
}

// RecordAuthFailure counts a failed password; it does not bump the
// generation (no cached data depends on it).
func (s *Store) RecordAuthFailure(ctx context.Context, userID string, at time.Time) (int, error) {
	var n int
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET failed_auth_count = failed_auth_count + 1, failed_auth_at = $2 WHERE id = $1`,
			userID, db.FormatTime(at)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT failed_auth_count FROM users WHERE id = $1`, userID).Scan(&n)
	})
	return n, err
}

// ResetAuthFailures clears the failure count after a good password.
func (s *Store) ResetAuthFailures(ctx context.Context, userID string, at time.Time) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL, last_active_at = $2 WHERE id = $1`,
			userID, db.FormatTime(at))
		return err
	})
}

func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE actor_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
		return mustAffect(res, err, "user", id)
	})
}

// ---- groups ----

const groupCols = `id, name, domain_id, description, extra`

func scanGroup(sc interface{ Scan(...any) error }) (*Group, error) {
	var g Group
	var extra string
	if err := sc.Scan(&g.ID, &g.Name, &g.DomainID, &g.Description, &extra); err != nil {
		return nil, err
	}
	g.Extra = decodeExtra(extra)
	return &g, nil
}

func (s *Store) CreateGroup(ctx context.Context, g *Group) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO user_groups (id, name, domain_id, description, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			g.ID, g.Name, g.DomainID, g.Description, encodeJSON(g.Extra), db.FormatTime(time.Now()))
		if db.IsUniqueViolation(err) {
			return conflict("group", "name", g.Name)
		}
		return err
	})
}

func (s *Store) GetGroup(ctx context.Context, id string) (*Group, error) {
	g, err := scanGroup(s.q().QueryRowContext(ctx, `SELECT `+groupCols+` FROM user_groups WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find group: %s.", id)
	}
	return g, err
}

func (s *Store) ListGroups(ctx context.Context, f Filter) ([]*Group, error) {
	w, args := where(f, map[string]string{"name": "name", "domain_id": "domain_id"})
	return s.queryGroups(ctx, `SELECT `+groupCols+` FROM user_groups`+w+` ORDER BY name, id`, args...)
}

func (s *Store) queryGroups(ctx context.Context, q string, args ...any) ([]*Group, error) {
	rows, err := s.q().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func (s *Store) UpdateGroup(ctx context.Context, g *Group) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE user_groups SET name = $2, description = $3, extra = $4 WHERE id = $1`,
			g.ID, g.Name, g.Description, encodeJSON(g.Extra))
		if db.IsUniqueViolation(err) {
			return conflict("group", "name", g.Name)
		}
		return mustAffect(res, err, "group", g.ID)
	})
}

func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE actor_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM user_groups WHERE id = $1`, id)
		return mustAffect(res, err, "group", id)
	})
}

func (s *Store) AddGroupMember(ctx context.Context, groupID, userID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, groupID, userID)
		return err
	})
}

func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apiutil.NotFound("User '%s' not found in group '%s'.", userID, groupID)
		}
		return nil
	})
}

func (s *Store) IsGroupMember(ctx context.Context, groupID, userID string) (bool, error) {
	var n int
	err := s.q().QueryRowContext(ctx, `SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, userID).Scan(&n)
	return n > 0, err
}

func (s *Store) GroupsOfUser(ctx context.Context, userID string) ([]*Group, error) {
	return s.queryGroups(ctx, `SELECT `+groupCols+` FROM user_groups WHERE id IN (SELECT group_id FROM group_members WHERE user_id = $1) ORDER BY name`, userID)
}

func (s *Store) UsersInGroup(ctx context.Context, groupID string) ([]*User, error) {
	return s.queryUsers(ctx, `SELECT `+userCols+` FROM users WHERE id IN (SELECT user_id FROM group_members WHERE group_id = $1) ORDER BY name`, groupID)
}
