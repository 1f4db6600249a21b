package identity

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// ---- roles ----

const roleCols = `id, name, domain_id, description, extra`

func scanRole(sc interface{ Scan(...any) error }) (*Role, error) {
	var r Role
	var extra string
	if err := sc.Scan(&r.ID, &r.Name, &r.DomainID, &r.Description, &extra); err != nil {
		return nil, err
	}
	r.Extra = decodeExtra(extra)
	return &r, nil
}

func (s *Store) CreateRole(ctx context.Context, r *Role) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO roles (id, name, domain_id, description, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.ID, r.Name, r.DomainID, r.Description, encodeJSON(r.Extra), db.FormatTime(time.Now()))
		if db.IsUniqueViolation(err) {
			return conflict("role", "name", r.Name)
		}
		return err
	})
}

func (s *Store) GetRole(ctx context.Context, id string) (*Role, error) {
	r, err := scanRole(s.q().QueryRowContext(ctx, `SELECT `+roleCols+` FROM roles WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find role: %s.", id)
	}
	return r, err
}

func (s *Store) ListRoles(ctx context.Context, f Filter) ([]*Role, error) {
	w, args := where(f, map[string]string{"name": "name", "domain_id": "domain_id"})
	rows, err := s.q().QueryContext(ctx, `SELECT `+roleCols+` FROM roles`+w+` ORDER BY name, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) UpdateRole(ctx context.Context, r *Role) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE roles SET name = $2, description = $3, extra = $4 WHERE id = $1`,
			r.ID, r.Name, r.Description, encodeJSON(r.Extra))
		if db.IsUniqueViolation(err) {
			return conflict("role", "name", r.Name)
		}
		return mustAffect(res, err, "role", r.ID)
	})
}

func (s *Store) DeleteRole(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE id = $1`, id)
		return mustAffect(res, err, "role", id)
	})
}

// ImpliedRoles returns prior role id -> implied role ids.
func (s *Store) ImpliedRoles(ctx context.Context) (map[string][]string, error) {
	rows, err := s.q().QueryContext(ctx, `SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id, implied_role_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var p, i string
		if err := rows.Scan(&p, &i); err != nil {
			return nil, err
		}
		out[p] = append(out[p], i)
	}
	return out, rows.Err()
}

func (s *Store) CreateImpliedRole(ctx context.Context, prior, implied string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, prior, implied)
		return err
	})
}

func (s *Store) DeleteImpliedRole(ctx context.Context, prior, implied string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2`, prior, implied)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apiutil.NotFound("%s does not imply %s.", prior, implied)
		}
		return nil
	})
}

// ---- role assignments ----

func (s *Store) Grant(ctx context.Context, a Assignment) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO role_assignments (kind, actor_id, target_id, role_id, inherited) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, a.Kind, a.ActorID, a.TargetID, a.RoleID, a.Inherited)
		return err
	})
}

func (s *Store) Revoke(ctx context.Context, a Assignment) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE kind = $1 AND actor_id = $2 AND target_id = $3 AND role_id = $4 AND inherited = $5`,
			a.Kind, a.ActorID, a.TargetID, a.RoleID, a.Inherited)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apiutil.NotFound("Could not find role assignment with role: %s, user or group: %s, project, domain, or system: %s.", a.RoleID, a.ActorID, a.TargetID)
		}
		return nil
	})
}

// AssignmentFilter selects assignments; empty fields match anything.
type AssignmentFilter struct {
	Kinds     []string
	ActorIDs  []string
	TargetID  string
	RoleID    string
	Inherited *bool
}

func (s *Store) ListAssignments(ctx context.Context, f AssignmentFilter) ([]Assignment, error) {
	q := `SELECT kind, actor_id, target_id, role_id, inherited FROM role_assignments WHERE 1 = 1`
	var args []any
	if len(f.Kinds) > 0 {
		q += ` AND kind IN (` + db.Placeholders(len(args)+1, len(f.Kinds)) + `)`
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	if len(f.ActorIDs) > 0 {
		q += ` AND actor_id IN (` + db.Placeholders(len(args)+1, len(f.ActorIDs)) + `)`
		for _, k := range f.ActorIDs {
			args = append(args, k)
		}
	}
	if f.TargetID != "" {
		args = append(args, f.TargetID)
		q += ` AND target_id = ` + db.Placeholders(len(args), 1)
	}
	if f.RoleID != "" {
		args = append(args, f.RoleID)
		q += ` AND role_id = ` + db.Placeholders(len(args), 1)
	}
	if f.Inherited != nil {
		args = append(args, *f.Inherited)
		q += ` AND inherited = ` + db.Placeholders(len(args), 1)
	}
	q += ` ORDER BY kind, actor_id, target_id, role_id`
	rows, err := s.q().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Assignment
	for rows.Next() {
		var a Assignment
		if err := rows.Scan(&a.Kind, &a.ActorID, &a.TargetID, &a.RoleID, &a.Inherited); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ---- catalog ----

func (s *Store) CreateRegion(ctx context.Context, r *Region) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)`,
			r.ID, r.Description, nullStr(r.ParentRegionID), encodeJSON(r.Extra))
		if db.IsUniqueViolation(err) {
			return conflict("region", "id", r.ID)
		}
		if db.IsForeignKeyViolation(err) {
			return apiutil.NotFound("Could not find region: %s.", r.ParentRegionID)
		}
		return err
	})
}

func scanRegion(sc interface{ Scan(...any) error }) (*Region, error) {
	var r Region
	var parent sql.NullString
	var extra string
	if err := sc.Scan(&r.ID, &r.Description, &parent, &extra); err != nil {
		return nil, err
	}
	r.ParentRegionID, r.Extra = parent.String, decodeExtra(extra)
	return &r, nil
}

func (s *Store) GetRegion(ctx context.Context, id string) (*Region, error) {
	r, err := scanRegion(s.q().QueryRowContext(ctx, `SELECT id, description, parent_region_id, extra FROM regions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find region: %s.", id)
	}
	return r, err
}

func (s *Store) ListRegions(ctx context.Context, f Filter) ([]*Region, error) {
	w, args := where(f, map[string]string{"parent_region_id": "parent_region_id"})
	rows, err := s.q().QueryContext(ctx, `SELECT id, description, parent_region_id, extra FROM regions`+w+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Region
	for rows.Next() {
		r, err := scanRegion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) UpdateRegion(ctx context.Context, r *Region) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE regions SET description = $2, parent_region_id = $3, extra = $4 WHERE id = $1`,
			r.ID, r.Description, nullStr(r.ParentRegionID), encodeJSON(r.Extra))
		if db.IsForeignKeyViolation(err) {
			return apiutil.NotFound("Could not find region: %s.", r.ParentRegionID)
		}
		return mustAffect(res, err, "region", r.ID)
	})
}

func (s *Store) DeleteRegion(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM regions WHERE parent_region_id = $1) + (SELECT COUNT(*) FROM catalog_endpoints WHERE region_id = $1)`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apiutil.Forbidden("Unable to delete region %s because it or its child regions have associated endpoints.", id)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM regions WHERE id = $1`, id)
		return mustAffect(res, err, "region", id)
	})
}

func scanService(sc interface{ Scan(...any) error }) (*CatalogService, error) {
	var c CatalogService
	var extra string
	if err := sc.Scan(&c.ID, &c.Type, &c.Name, &c.Description, &c.Enabled, &extra); err != nil {
		return nil, err
	}
	c.Extra = decodeExtra(extra)
	return &c, nil
}

func (s *Store) CreateService(ctx context.Context, c *CatalogService) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO catalog_services (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)`,
			c.ID, c.Type, c.Name, c.Description, c.Enabled, encodeJSON(c.Extra))
		return err
	})
}

func (s *Store) GetService(ctx context.Context, id string) (*CatalogService, error) {
	c, err := scanService(s.q().QueryRowContext(ctx, `SELECT id, type, name, description, enabled, extra FROM catalog_services WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find service: %s.", id)
	}
	return c, err
}

func (s *Store) ListServices(ctx context.Context, f Filter) ([]*CatalogService, error) {
	w, args := where(f, map[string]string{"type": "type", "name": "name"})
	rows, err := s.q().QueryContext(ctx, `SELECT id, type, name, description, enabled, extra FROM catalog_services`+w+` ORDER BY type, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*CatalogService
	for rows.Next() {
		c, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Store) UpdateService(ctx context.Context, c *CatalogService) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE catalog_services SET type = $2, name = $3, description = $4, enabled = $5, extra = $6 WHERE id = $1`,
			c.ID, c.Type, c.Name, c.Description, c.Enabled, encodeJSON(c.Extra))
		return mustAffect(res, err, "service", c.ID)
	})
}

func (s *Store) DeleteService(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM catalog_services WHERE id = $1`, id)
		return mustAffect(res, err, "service", id)
	})
}

func scanEndpoint(sc interface{ Scan(...any) error }) (*Endpoint, error) {
	var e Endpoint
	var region sql.NullString
	var extra string
	if err := sc.Scan(&e.ID, &e.ServiceID, &e.Interface, &e.URL, &region, &e.Enabled, &extra); err != nil {
		return nil, err
	}
	e.RegionID, e.Extra = region.String, decodeExtra(extra)
	return &e, nil
}

const endpointCols = `id, service_id, interface, url, region_id, enabled, extra`

func (s *Store) CreateEndpoint(ctx context.Context, e *Endpoint) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO catalog_endpoints (`+endpointCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			e.ID, e.ServiceID, e.Interface, e.URL, nullStr(e.RegionID), e.Enabled, encodeJSON(e.Extra))
		if db.IsForeignKeyViolation(err) {
			return apiutil.BadRequest("Invalid service or region for endpoint.")
		}
		return err
	})
}

func (s *Store) GetEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	e, err := scanEndpoint(s.q().QueryRowContext(ctx, `SELECT `+endpointCols+` FROM catalog_endpoints WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find endpoint: %s.", id)
	}
	return e, err
}

func (s *Store) ListEndpoints(ctx context.Context, f Filter) ([]*Endpoint, error) {
	w, args := where(f, map[string]string{"service_id": "service_id", "interface": "interface", "region_id": "region_id"})
	rows, err := s.q().QueryContext(ctx, `SELECT `+endpointCols+` FROM catalog_endpoints`+w+` ORDER BY service_id, interface, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Store) UpdateEndpoint(ctx context.Context, e *Endpoint) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE catalog_endpoints SET service_id = $2, interface = $3, url = $4, region_id = $5, enabled = $6, extra = $7 WHERE id = $1`,
			e.ID, e.ServiceID, e.Interface, e.URL, nullStr(e.RegionID), e.Enabled, encodeJSON(e.Extra))
		if db.IsForeignKeyViolation(err) {
			return apiutil.BadRequest("Invalid service or region for endpoint.")
		}
		return mustAffect(res, err, "endpoint", e.ID)
	})
}

func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM catalog_endpoints WHERE id = $1`, id)
		return mustAffect(res, err, "endpoint", id)
	})
}

// ---- application credentials ----

const appCredCols = `id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, created_at`

func (s *Store) CreateAppCred(ctx context.Context, a *AppCred) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO application_credentials (`+appCredCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			a.ID, a.Name, a.UserID, a.ProjectID, a.SecretHash, a.Description, db.FormatTime(a.ExpiresAt), a.Unrestricted, db.FormatTime(a.CreatedAt))
		if db.IsUniqueViolation(err) {
			return conflict("application_credential", "name", a.Name)
		}
		if err != nil {
			return err
		}
		for _, r := range a.RoleIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO application_credential_roles (application_credential_id, role_id) VALUES ($1, $2)`, a.ID, r); err != nil {
				return err
			}
		}
		return linkAccessRules(ctx, tx, a.ID, a.UserID, a.AccessRules)
	})
}

func (s *Store) scanAppCreds(ctx context.Context, q string, args ...any) ([]*AppCred, error) {
	rows, err := s.q().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var out []*AppCred
	for rows.Next() {
		var a AppCred
		var desc, exp, created sql.NullString
		if err := rows.Scan(&a.ID, &a.Name, &a.UserID, &a.ProjectID, &a.SecretHash, &desc, &exp, &a.Unrestricted, &created); err != nil {
			rows.Close()
			return nil, err
		}
		a.Description, a.ExpiresAt, a.CreatedAt = ptrStr(desc), db.ParseTime(exp), db.ParseTime(created)
		out = append(out, &a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, a := range out {
		rr, err := s.q().QueryContext(ctx, `SELECT role_id FROM application_credential_roles WHERE application_credential_id = $1 ORDER BY role_id`, a.ID)
		if err != nil {
			return nil, err
		}
		for rr.Next() {
			var id string
			if err := rr.Scan(&id); err != nil {
				rr.Close()
				return nil, err
			}
			a.RoleIDs = append(a.RoleIDs, id)
		}
		rr.Close()
		if a.AccessRules, err = s.AppCredAccessRules(ctx, a.ID); err != nil {
			return nil, err
		}
		if len(a.AccessRules) == 0 {
			a.AccessRules = nil
		}
	}
	return out, nil
}

func (s *Store) GetAppCred(ctx context.Context, id string) (*AppCred, error) {
	l, err := s.scanAppCreds(ctx, `SELECT `+appCredCols+` FROM application_credentials WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, apiutil.NotFound("Could not find Application Credential: %s.", id)
	}
	return l[0], nil
}

func (s *Store) GetAppCredByName(ctx context.Context, userID, name string) (*AppCred, error) {
	l, err := s.scanAppCreds(ctx, `SELECT `+appCredCols+` FROM application_credentials WHERE user_id = $1 AND name = $2`, userID, name)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, apiutil.NotFound("Could not find Application Credential: %s.", name)
	}
	return l[0], nil
}

func (s *Store) ListAppCreds(ctx context.Context, userID, name string) ([]*AppCred, error) {
	if name != "" {
		return s.scanAppCreds(ctx, `SELECT `+appCredCols+` FROM application_credentials WHERE user_id = $1 AND name = $2`, userID, name)
	}
	return s.scanAppCreds(ctx, `SELECT `+appCredCols+` FROM application_credentials WHERE user_id = $1 ORDER BY name`, userID)
}

func (s *Store) DeleteAppCred(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM application_credentials WHERE id = $1`, id)
		return mustAffect(res, err, "Application Credential", id)
	})
}

// ---- token revocations and keys ----

// Revocation invalidates tokens: kind "audit_id" revokes one token chain,
// kind "user_id" every token of a user issued before IssuedBefore.
type Revocation struct {
	Kind, Value  string
	IssuedBefore time.Time
	ExpiresAt    time.Time
}

func (s *Store) AddRevocation(ctx context.Context, r Revocation) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM token_revocations WHERE kind = $1 AND value = $2`, r.Kind, r.Value); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO token_revocations (kind, value, issued_before, expires_at) VALUES ($1, $2, $3, $4)`,
			r.Kind, r.Value, db.FormatTime(r.IssuedBefore), db.FormatTime(r.ExpiresAt))
		return err
	})
}

// Revocations lists revocations that can still matter, purging the others.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]Revocation, error) {
	if _, err := s.db.Reader().ExecContext(ctx, `DELETE FROM token_revocations WHERE expires_at < $1`, db.FormatTime(now)); err != nil {
		return nil, err
	}
	rows, err := s.q().QueryContext(ctx, `SELECT kind, value, issued_before, expires_at FROM token_revocations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var ib, ex sql.NullString
		if err := rows.Scan(&r.Kind, &r.Value, &ib, &ex); err != nil {
			return nil, err
		}
		r.IssuedBefore, r.ExpiresAt = db.ParseTime(ib), db.ParseTime(ex)
		out = append(out, r)
	}
	return out, rows.Err()
}

// TokenKey is one symmetric token encryption key.
type TokenKey struct {
	ID        int
	Secret    string // base64
	CreatedAt time.Time
}

func (s *Store) TokenKeys(ctx context.Context) ([]TokenKey, error) {
	rows, err := s.q().QueryContext(ctx, `SELECT id, secret, created_at FROM token_keys ORDER BY id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TokenKey
	for rows.Next() {
		var k TokenKey
		var c sql.NullString
		if err := rows.Scan(&k.ID, &k.Secret, &c); err != nil {
			return nil, err
		}
		k.CreatedAt = db.ParseTime(c)
		out = append(out, k)
	}
	return out, rows.Err()
}

// AddTokenKey stores a new primary key and keeps the newest keep keys.
func (s *Store) AddTokenKey(ctx context.Context, secret string, keep int) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var next int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM token_keys`).Scan(&next); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO token_keys (id, secret, created_at) VALUES ($1, $2, $3)`, next, secret, db.FormatTime(time.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM token_keys WHERE id <= $1`, next-keep)
		return err
	})
}
