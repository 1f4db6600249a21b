package identity

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Credentials, unified limits, policies, endpoint filters, access rules
// and trusts (schema version 2).

type Credential struct {
	ID, UserID, ProjectID, Type, Blob string
	Extra                             Extra
	CreatedAt                         time.Time
}

type RegisteredLimit struct {
	ID, ServiceID, RegionID, ResourceName string
	DefaultLimit                          int64
	Description                           *string
}

type Limit struct {
	ID, ProjectID, DomainID, ServiceID, RegionID, ResourceName string
	ResourceLimit                                              int64
	Description                                                *string
}

type PolicyBlob struct {
	ID, Type, Blob string
	Extra          Extra
}

type AccessRule struct {
	ID, UserID, Service, Path, Method string
}

type Trust struct {
	ID, TrustorUserID, TrusteeUserID, ProjectID string
	Impersonation, AllowRedelegation            bool
	RedelegationCount                           int
	ExpiresAt, DeletedAt, CreatedAt             time.Time
	RemainingUses                               *int
	RoleIDs                                     []string
}

type scanner = db.Scanner

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, q db.Querier, scan func(scanner) (*T, error), query string, args ...any) ([]*T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return db.Collect(rows, scan)
}

// queryOne returns the single row of query or a Keystone 404 for kind.
func queryOne[T any](ctx context.Context, q db.Querier, scan func(scanner) (*T, error), kind, id, query string, args ...any) (*T, error) {
	v, err := scan(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiutil.NotFound("Could not find %s: %s.", kind, id)
	}
	return v, err
}

// ---- credentials ----

const credCols = `id, user_id, project_id, type, blob, extra, created_at`

// scanCredential scans a credential row, decrypting its blob.
func (s *Store) scanCredential(sc scanner) (*Credential, error) {
	var c Credential
	var project, created sql.NullString
	var extra, blob string
	if err := sc.Scan(&c.ID, &c.UserID, &project, &c.Type, &blob, &extra, &created); err != nil {
		return nil, err
	}
	var err error
	if c.Blob, err = s.openCredential(c.ID, blob); err != nil {
		return nil, err
	}
	c.ProjectID, c.Extra, c.CreatedAt = project.String, decodeExtra(extra), db.ParseTime(created)
	return &c, nil
}

func (s *Store) CreateCredential(ctx context.Context, c *Credential) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials (`+credCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ID, c.UserID, nullStr(c.ProjectID), c.Type, s.credKeys.Load().seal(c.ID, c.Blob), encodeJSON(c.Extra), db.FormatTime(c.CreatedAt))
		if db.IsUniqueViolation(err) {
			return conflict("credential", "id", c.ID)
		}
		return err
	})
}

func (s *Store) GetCredential(ctx context.Context, id string) (*Credential, error) {
	return queryOne(ctx, s.q(), s.scanCredential, "credential", id, `SELECT `+credCols+` FROM credentials WHERE id = $1`, id)
}

func (s *Store) ListCredentials(ctx context.Context, f Filter) ([]*Credential, error) {
	w, args := where(f, map[string]string{"user_id": "user_id", "type": "type", "project_id": "project_id"})
	return queryAll(ctx, s.q(), s.scanCredential, `SELECT `+credCols+` FROM credentials`+w+` ORDER BY created_at, id`, args...)
}

func (s *Store) UpdateCredential(ctx context.Context, c *Credential) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE credentials SET user_id = $2, project_id = $3, type = $4, blob = $5, extra = $6 WHERE id = $1`,
			c.ID, c.UserID, nullStr(c.ProjectID), c.Type, s.credKeys.Load().seal(c.ID, c.Blob), encodeJSON(c.Extra))
		return mustAffect(res, err, "credential", c.ID)
	})
}

func (s *Store) DeleteCredential(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE id = $1`, id)
		return mustAffect(res, err, "credential", id)
	})
}

// ---- registered limits and limits ----

const regLimitCols = `id, service_id, region_id, resource_name, default_limit, description`

func scanRegLimit(sc scanner) (*RegisteredLimit, error) {
	var l RegisteredLimit
	var desc sql.NullString
	if err := sc.Scan(&l.ID, &l.ServiceID, &l.RegionID, &l.ResourceName, &l.DefaultLimit, &desc); err != nil {
		return nil, err
	}
	l.Description = ptrStr(desc)
	return &l, nil
}

func regLimitConflict(l *RegisteredLimit) error {
	return apiutil.Conflict("Duplicate entry found with resource_name %s, service_id %s and region_id %s.", l.ResourceName, l.ServiceID, l.RegionID)
}

// CreateRegisteredLimits stores all of ls or none.
func (s *Store) CreateRegisteredLimits(ctx context.Context, ls []*RegisteredLimit) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, l := range ls {
			_, err := tx.ExecContext(ctx, `INSERT INTO registered_limits (`+regLimitCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
				l.ID, l.ServiceID, l.RegionID, l.ResourceName, l.DefaultLimit, l.Description)
			if db.IsUniqueViolation(err) {
				return regLimitConflict(l)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) GetRegisteredLimit(ctx context.Context, id string) (*RegisteredLimit, error) {
	return queryOne(ctx, s.q(), scanRegLimit, "registered limit", id, `SELECT `+regLimitCols+` FROM registered_limits WHERE id = $1`, id)
}

func (s *Store) ListRegisteredLimits(ctx context.Context, f Filter) ([]*RegisteredLimit, error) {
	w, args := where(f, map[string]string{"service_id": "service_id", "region_id": "region_id", "resource_name": "resource_name"})
	return queryAll(ctx, s.q(), scanRegLimit, `SELECT `+regLimitCols+` FROM registered_limits`+w+` ORDER BY id`, args...)
}

// errLimitInUse is Keystone's 403 for a registered limit that project or
// domain limits refer to.
func errLimitInUse(id string) error {
	return apiutil.Forbidden("Cannot update or delete registered limit %s: project or domain limits refer to it.", id)
}

// UpdateRegisteredLimit stores l; the service, region and resource name
// cannot change while limits refer to the old ones.
func (s *Store) UpdateRegisteredLimit(ctx context.Context, old, l *RegisteredLimit) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if old.ServiceID != l.ServiceID || old.RegionID != l.RegionID || old.ResourceName != l.ResourceName {
			if n, err := countLimits(ctx, tx, old); err != nil || n > 0 {
				if err != nil {
					return err
				}
				return errLimitInUse(l.ID)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE registered_limits SET service_id = $2, region_id = $3, resource_name = $4, default_limit = $5, description = $6 WHERE id = $1`,
			l.ID, l.ServiceID, l.RegionID, l.ResourceName, l.DefaultLimit, l.Description)
		if db.IsUniqueViolation(err) {
			return regLimitConflict(l)
		}
		return mustAffect(res, err, "registered limit", l.ID)
	})
}

func countLimits(ctx context.Context, tx *sql.Tx, l *RegisteredLimit) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM limits WHERE service_id = $1 AND region_id = $2 AND resource_name = $3`,
		l.ServiceID, l.RegionID, l.ResourceName).Scan(&n)
	return n, err
}

func (s *Store) DeleteRegisteredLimit(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		l, err := scanRegLimit(tx.QueryRowContext(ctx, `SELECT `+regLimitCols+` FROM registered_limits WHERE id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return apiutil.NotFound("Could not find registered limit: %s.", id)
		}
		if err != nil {
			return err
		}
		if n, err := countLimits(ctx, tx, l); err != nil || n > 0 {
			if err != nil {
				return err
			}
			return errLimitInUse(id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM registered_limits WHERE id = $1`, id)
		return err
	})
}

const limitCols = `id, project_id, domain_id, service_id, region_id, resource_name, resource_limit, description`

func scanLimit(sc scanner) (*Limit, error) {
	var l Limit
	var project, domain, desc sql.NullString
	if err := sc.Scan(&l.ID, &project, &domain, &l.ServiceID, &l.RegionID, &l.ResourceName, &l.ResourceLimit, &desc); err != nil {
		return nil, err
	}
	l.ProjectID, l.DomainID, l.Description = project.String, domain.String, ptrStr(desc)
	return &l, nil
}

// CreateLimits stores all of ls or none; each must match a registered limit.
func (s *Store) CreateLimits(ctx context.Context, ls []*Limit) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, l := range ls {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registered_limits WHERE service_id = $1 AND region_id = $2 AND resource_name = $3`,
				l.ServiceID, l.RegionID, l.ResourceName).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return apiutil.Forbidden("No registered limit found for resource %s of service %s in region %q: register it before setting limits.", l.ResourceName, l.ServiceID, l.RegionID)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO limits (`+limitCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				l.ID, nullStr(l.ProjectID), nullStr(l.DomainID), l.ServiceID, l.RegionID, l.ResourceName, l.ResourceLimit, l.Description)
			if db.IsUniqueViolation(err) {
				return apiutil.Conflict("Duplicate entry found with resource_name %s, service_id %s, region_id %s and project or domain %s.", l.ResourceName, l.ServiceID, l.RegionID, l.ProjectID+l.DomainID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) GetLimit(ctx context.Context, id string) (*Limit, error) {
	return queryOne(ctx, s.q(), scanLimit, "limit", id, `SELECT `+limitCols+` FROM limits WHERE id = $1`, id)
}

func (s *Store) ListLimits(ctx context.Context, f Filter) ([]*Limit, error) {
	w, args := where(f, map[string]string{"service_id": "service_id", "region_id": "region_id", "resource_name": "resource_name", "project_id": "project_id", "domain_id": "domain_id"})
	return queryAll(ctx, s.q(), scanLimit, `SELECT `+limitCols+` FROM limits`+w+` ORDER BY id`, args...)
}

func (s *Store) UpdateLimit(ctx context.Context, l *Limit) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE limits SET resource_limit = $2, description = $3 WHERE id = $1`, l.ID, l.ResourceLimit, l.Description)
		return mustAffect(res, err, "limit", l.ID)
	})
}

func (s *Store) DeleteLimit(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM limits WHERE id = $1`, id)
		return mustAffect(res, err, "limit", id)
	})
}

// ---- policies ----

const policyCols = `id, type, blob, extra`

func scanPolicy(sc scanner) (*PolicyBlob, error) {
	var p PolicyBlob
	var extra string
	if err := sc.Scan(&p.ID, &p.Type, &p.Blob, &extra); err != nil {
		return nil, err
	}
	p.Extra = decodeExtra(extra)
	return &p, nil
}

func (s *Store) CreatePolicy(ctx context.Context, p *PolicyBlob) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO policies (`+policyCols+`) VALUES ($1, $2, $3, $4)`, p.ID, p.Type, p.Blob, encodeJSON(p.Extra))
		return err
	})
}

func (s *Store) GetPolicy(ctx context.Context, id string) (*PolicyBlob, error) {
	return queryOne(ctx, s.q(), scanPolicy, "policy", id, `SELECT `+policyCols+` FROM policies WHERE id = $1`, id)
}

func (s *Store) ListPolicies(ctx context.Context, f Filter) ([]*PolicyBlob, error) {
	w, args := where(f, map[string]string{"type": "type"})
	return queryAll(ctx, s.q(), scanPolicy, `SELECT `+policyCols+` FROM policies`+w+` ORDER BY id`, args...)
}

func (s *Store) UpdatePolicy(ctx context.Context, p *PolicyBlob) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE policies SET type = $2, blob = $3, extra = $4 WHERE id = $1`, p.ID, p.Type, p.Blob, encodeJSON(p.Extra))
		return mustAffect(res, err, "policy", p.ID)
	})
}

func (s *Store) DeletePolicy(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM policies WHERE id = $1`, id)
		return mustAffect(res, err, "policy", id)
	})
}

// ---- endpoint filters (OS-EP-FILTER) ----

func (s *Store) AddProjectEndpoint(ctx context.Context, projectID, endpointID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		// PUT is idempotent.
		_, err := tx.ExecContext(ctx, `INSERT INTO project_endpoints (project_id, endpoint_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, projectID, endpointID)
		return err
	})
}

func (s *Store) RemoveProjectEndpoint(ctx context.Context, projectID, endpointID string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM project_endpoints WHERE project_id = $1 AND endpoint_id = $2`, projectID, endpointID)
		if n, _ := rowsAffected(res, err); err == nil && n == 0 {
			return apiutil.NotFound("Could not find endpoint %s associated with project %s.", endpointID, projectID)
		}
		return err
	})
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ProjectEndpoints lists (project, endpoint) pairs; an empty argument
// matches every value.
func (s *Store) ProjectEndpoints(ctx context.Context, projectID, endpointID string) ([][2]string, error) {
	rows, err := s.q().QueryContext(ctx, `SELECT project_id, endpoint_id FROM project_endpoints
		WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR endpoint_id = $2) ORDER BY project_id, endpoint_id`, projectID, endpointID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var p [2]string
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ---- access rules ----

func scanAccessRule(sc scanner) (*AccessRule, error) {
	var a AccessRule
	return &a, sc.Scan(&a.ID, &a.UserID, &a.Service, &a.Path, &a.Method)
}

const accessRuleCols = `id, user_id, service, path, method`

// linkAccessRules stores the rules of a new application credential,
// reusing a user's identical rules; ids named in rules must exist.
func linkAccessRules(ctx context.Context, tx *sql.Tx, appCredID, userID string, rules []*AccessRule) error {
	for _, r := range rules {
		if r.ID != "" && r.Service == "" {
			ex, err := scanAccessRule(tx.QueryRowContext(ctx, `SELECT `+accessRuleCols+` FROM access_rules WHERE id = $1 AND user_id = $2`, r.ID, userID))
			if errors.Is(err, sql.ErrNoRows) {
				return apiutil.NotFound("Could not find access rule: %s.", r.ID)
			}
			if err != nil {
				return err
			}
			*r = *ex
		} else {
			ex, err := scanAccessRule(tx.QueryRowContext(ctx, `SELECT `+accessRuleCols+` FROM access_rules WHERE user_id = $1 AND service = $2 AND path = $3 AND method = $4`,
				userID, r.Service, r.Path, r.Method))
			switch {
			case err == nil:
				*r = *ex
			case errors.Is(err, sql.ErrNoRows):
				r.ID, r.UserID = newID(), userID
				if _, err := tx.ExecContext(ctx, `INSERT INTO access_rules (`+accessRuleCols+`) VALUES ($1, $2, $3, $4, $5)`,
					r.ID, r.UserID, r.Service, r.Path, r.Method); err != nil {
					return err
				}
			default:
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO application_credential_access_rules (application_credential_id, access_rule_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, appCredID, r.ID)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) GetAccessRule(ctx context.Context, userID, id string) (*AccessRule, error) {
	return queryOne(ctx, s.q(), scanAccessRule, "access rule", id, `SELECT `+accessRuleCols+` FROM access_rules WHERE id = $1 AND user_id = $2`, id, userID)
}

func (s *Store) ListAccessRules(ctx context.Context, userID string) ([]*AccessRule, error) {
	return queryAll(ctx, s.q(), scanAccessRule, `SELECT `+accessRuleCols+` FROM access_rules WHERE user_id = $1 ORDER BY service, path, method, id`, userID)
}

// AppCredAccessRules returns the access rules of an application credential.
func (s *Store) AppCredAccessRules(ctx context.Context, appCredID string) ([]*AccessRule, error) {
	return queryAll(ctx, s.q(), scanAccessRule, `SELECT a.id, a.user_id, a.service, a.path, a.method FROM access_rules a
		JOIN application_credential_access_rules l ON l.access_rule_id = a.id WHERE l.application_credential_id = $1 ORDER BY a.service, a.path, a.method`, appCredID)
}

// DeleteAccessRule removes a rule no application credential uses.
func (s *Store) DeleteAccessRule(ctx context.Context, userID, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM application_credential_access_rules WHERE access_rule_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apiutil.Forbidden("Cannot delete access rule %s: an application credential uses it.", id)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM access_rules WHERE id = $1 AND user_id = $2`, id, userID)
		return mustAffect(res, err, "access rule", id)
	})
}

// ---- trusts ----

const trustCols = `id, trustor_user_id, trustee_user_id, project_id, impersonation, allow_redelegation, redelegation_count, expires_at, remaining_uses, deleted_at, created_at`

func scanTrust(sc scanner) (*Trust, error) {
	var t Trust
	var project, expires, deleted, created sql.NullString
	var uses sql.NullInt64
	if err := sc.Scan(&t.ID, &t.TrustorUserID, &t.TrusteeUserID, &project, &t.Impersonation, &t.AllowRedelegation, &t.RedelegationCount,
		&expires, &uses, &deleted, &created); err != nil {
		return nil, err
	}
	t.ProjectID, t.ExpiresAt, t.DeletedAt, t.CreatedAt = project.String, db.ParseTime(expires), db.ParseTime(deleted), db.ParseTime(created)
	if uses.Valid {
		n := int(uses.Int64)
		t.RemainingUses = &n
	}
	return &t, nil
}

func (s *Store) CreateTrust(ctx context.Context, t *Trust) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO trusts (`+trustCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)`,
			t.ID, t.TrustorUserID, t.TrusteeUserID, nullStr(t.ProjectID), t.Impersonation, t.AllowRedelegation, t.RedelegationCount,
			db.FormatTime(t.ExpiresAt), t.RemainingUses, db.FormatTime(t.CreatedAt))
		if err != nil {
			return err
		}
		for _, r := range t.RoleIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO trust_roles (trust_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, t.ID, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) trustRoles(ctx context.Context, ts []*Trust) error {
	for _, t := range ts {
		rows, err := s.q().QueryContext(ctx, `SELECT role_id FROM trust_roles WHERE trust_id = $1 ORDER BY role_id`, t.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			t.RoleIDs = append(t.RoleIDs, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// GetTrust returns a trust that is not deleted.
func (s *Store) GetTrust(ctx context.Context, id string) (*Trust, error) {
	t, err := queryOne(ctx, s.q(), scanTrust, "trust", id, `SELECT `+trustCols+` FROM trusts WHERE id = $1 AND deleted_at IS NULL`, id)
	if err != nil {
		return nil, err
	}
	return t, s.trustRoles(ctx, []*Trust{t})
}

// ListTrusts lists trusts that are not deleted, by trustor and trustee.
func (s *Store) ListTrusts(ctx context.Context, trustor, trustee string) ([]*Trust, error) {
	ts, err := queryAll(ctx, s.q(), scanTrust, `SELECT `+trustCols+` FROM trusts WHERE deleted_at IS NULL
		AND ($1 = '' OR trustor_user_id = $1) AND ($2 = '' OR trustee_user_id = $2) ORDER BY created_at, id`, trustor, trustee)
	if err != nil {
		return nil, err
	}
	return ts, s.trustRoles(ctx, ts)
}

func (s *Store) DeleteTrust(ctx context.Context, id string, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE trusts SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL`, id, db.FormatTime(now))
		return mustAffect(res, err, "trust", id)
	})
}

// ConsumeTrust takes one use of a trust with limited uses.
func (s *Store) ConsumeTrust(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE trusts SET remaining_uses = remaining_uses - 1
			WHERE id = $1 AND deleted_at IS NULL AND (remaining_uses IS NULL OR remaining_uses > 0)`, id)
		if n, _ := rowsAffected(res, err); err == nil && n == 0 {
			return apiutil.Unauthorized("Trust %s has no remaining uses.", id)
		}
		return err
	})
}
