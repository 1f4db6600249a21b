package network

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Address scopes (extension address-scope): subnet pools name one with
// address_scope_id, which must be a scope the pool's owner can see, of
// the pool's IP version. Kumo records the association (and keeps the
// prefixes of one scope's pools apart) but routes between scopes like
// any other addresses. Neutron gives address scopes no standard
// attributes: no description, revision or timestamps.

// AddressScope is a row of net_address_scopes.
type AddressScope struct {
	ID, ProjectID, Name string
	IPVersion           int
	Shared              bool
}

const scopeCols = `sc.id, sc.project_id, sc.name, sc.ip_version, sc.shared`

func scanScope(row interface{ Scan(...any) error }) (*AddressScope, error) {
	sc := &AddressScope{}
	return sc, row.Scan(&sc.ID, &sc.ProjectID, &sc.Name, &sc.IPVersion, &sc.Shared)
}

var scopeDef = &listDef{
	resource: "address_scope", collection: "address_scopes", notFound: "AddressScopeNotFound",
	table: "net_address_scopes", alias: "sc",
	cols: map[string]column{
		"id": {expr: "sc.id"}, "name": {expr: "sc.name"},
		"project_id": {expr: "sc.project_id"}, "tenant_id": {expr: "sc.project_id"},
		"ip_version": {expr: "sc.ip_version", kind: kInt}, "shared": {expr: "sc.shared", kind: kBool},
	},
}

func renderScope(sc *AddressScope) map[string]any {
	return map[string]any{"id": sc.ID, "name": sc.Name, "project_id": sc.ProjectID, "tenant_id": sc.ProjectID,
		"ip_version": sc.IPVersion, "shared": sc.Shared}
}

func scopeNotFound(id string) error {
	return notFound("AddressScopeNotFound", "Address scope %s could not be found.", id)
}

func loadScope(ctx context.Context, q db.Querier, id, forUpdate string) (*AddressScope, error) {
	sc, err := scanScope(q.QueryRowContext(ctx, "SELECT "+scopeCols+" FROM net_address_scopes sc WHERE sc.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, scopeNotFound(id)
	}
	return sc, err
}

func (s *Service) addressScopeRoutes(rt func(string, string, apiutil.Handler) apiutil.Route) []apiutil.Route {
	return []apiutil.Route{
		rt("GET", "/address-scopes", s.listScopes),
		rt("POST", "/address-scopes", s.createScopes),
		rt("GET", "/address-scopes/{id}", s.showScope),
		rt("PUT", "/address-scopes/{id}", s.updateScope),
		rt("DELETE", "/address-scopes/{id}", s.deleteScope),
	}
}

// scopeWritable checks that c may change sc with rule: other projects'
// scopes are invisible unless shared, and then read-only.
func (s *Service) scopeWritable(c *caller, sc *AddressScope, rule string) error {
	if !c.admin && sc.ProjectID != c.ProjectID {
		if sc.Shared {
			return policyDenied(rule)
		}
		return scopeNotFound(sc.ID)
	}
	return s.authorize(c, rule, ownerTarget(sc.ProjectID))
}

func (s *Service) listScopes(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := scopeDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("(sc.project_id = " + lq.b.arg(c.ProjectID) + " OR sc.shared)")
	}
	scopes, more, err := listRows(r.Context(), s.db.Reader(), scopeDef, lq, scopeCols, func(rows *sql.Rows) (*AddressScope, error) { return scanScope(rows) })
	if err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(scopes))
	for i, sc := range scopes {
		items[i] = selectFields(renderScope(sc), lq.fields)
	}
	return s.listResponse(r, lq, "address_scopes", items, more), nil
}

func (s *Service) showScope(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	sc, err := loadScope(r.Context(), s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if !c.admin && sc.ProjectID != c.ProjectID && !sc.Shared {
		return nil, scopeNotFound(sc.ID)
	}
	return apiutil.JSON(200, map[string]any{"address_scope": selectFields(renderScope(sc), showFields(r))}), nil
}

func (s *Service) createScopes(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "address_scope", "address_scopes", true)
	if err != nil {
		return nil, err
	}
	scopes := make([]*AddressScope, 0, len(objs))
	for _, a := range objs {
		if err := a.checkKeys("POST", []string{"name", "ip_version", "shared", "project_id", "tenant_id"}, []string{"id"}); err != nil {
			return nil, err
		}
		sc := &AddressScope{ID: newID()}
		if sc.ProjectID, err = a.project(c.ProjectID); err != nil {
			return nil, err
		}
		if err := s.authorize(c, "create_address_scope", ownerTarget(sc.ProjectID)); err != nil {
			return nil, err
		}
		if err := a.setStr("name", 255, &sc.Name); err != nil {
			return nil, err
		}
		v, ok, _, err := a.integer("ip_version", 0, 1<<31, false)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, badInput("Failed to parse request. Required attribute 'ip_version' not specified")
		}
		if v != 4 && v != 6 {
			return nil, invalidAttr("ip_version", "%d is not in [4, 6]", v)
		}
		sc.IPVersion = int(v)
		if err := a.setBool("shared", &sc.Shared); err != nil {
			return nil, err
		}
		if sc.Shared {
			if err := s.authorize(c, "create_address_scope:shared", ownerTarget(sc.ProjectID)); err != nil {
				return nil, err
			}
		}
		scopes = append(scopes, sc)
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		for _, sc := range scopes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO net_address_scopes (id, project_id, name, ip_version, shared)
				VALUES ($1, $2, $3, $4, $5)`, sc.ID, sc.ProjectID, sc.Name, sc.IPVersion, sc.Shared); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "address_scopes", "address_scope", scopes, renderScope), nil
}

func (s *Service) updateScope(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "address_scope", "address_scopes", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", []string{"name", "shared"}, []string{"id", "ip_version", "project_id", "tenant_id"}); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *AddressScope
	err = s.withTx(ctx, func(tx *txn) error {
		sc, err := loadScope(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.scopeWritable(c, sc, "update_address_scope"); err != nil {
			return err
		}
		if err := a.setStr("name", 255, &sc.Name); err != nil {
			return err
		}
		if v, ok, err := a.boolean("shared"); err != nil {
			return err
		} else if ok && v != sc.Shared {
			if err := s.authorize(c, "update_address_scope:shared", ownerTarget(sc.ProjectID)); err != nil {
				return err
			}
			if !v {
				return badRequest("AddressScopeUpdateError", "Unable to update address scope %s : Shared address scope can't be unshared.", id)
			}
			sc.Shared = v
		}
		_, err = tx.ExecContext(ctx, `UPDATE net_address_scopes SET name = $1, shared = $2 WHERE id = $3`, sc.Name, sc.Shared, id)
		out = sc
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"address_scope": renderScope(out)}), nil
}

func (s *Service) deleteScope(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		sc, err := loadScope(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.scopeWritable(c, sc, "delete_address_scope"); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_subnetpools WHERE address_scope_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict("AddressScopeInUse", "Unable to complete operation on address scope %s. There are one or more subnet pools in use on the address scope.", id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM net_address_scopes WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// checkPoolScope validates a pool's address_scope_id: a scope the pool's
// owner may use (its own or a shared one), of the pool's IP version,
// whose other pools' prefixes do not overlap the pool's.
func (tx *txn) checkPoolScope(ctx context.Context, c *caller, p *SubnetPool) error {
	if p.AddressScopeID == "" {
		return nil
	}
	sc, err := loadScope(ctx, tx, p.AddressScopeID, "")
	if err != nil {
		return err
	}
	if !c.admin && sc.ProjectID != c.ProjectID && !sc.Shared {
		return scopeNotFound(sc.ID)
	}
	if sc.ProjectID != p.ProjectID && !sc.Shared {
		return badRequest("IllegalSubnetPoolAssociationToAddressScope", "Illegal subnetpool association: subnetpool %s cannot be associated with address scope %s.", p.ID, sc.ID)
	}
	if sc.IPVersion != p.IPVersion {
		return badRequest("IllegalSubnetPoolIpVersionAssociationToAddressScope", "Illegal subnetpool association: subnetpool %s cannot associate with address scope %s because subnetpool ip_version is not %d.", p.ID, sc.ID, sc.IPVersion)
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+poolCols+" FROM net_subnetpools sp WHERE sp.address_scope_id = $1 AND sp.id <> $2", sc.ID, p.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		other, err := scanPool(rows)
		if err != nil {
			return err
		}
		for _, a := range other.Prefixes {
			for _, b := range p.Prefixes {
				if a.Overlaps(b) {
					return conflict("AddressScopePrefixConflict", "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.")
				}
			}
		}
	}
	return rows.Err()
}
