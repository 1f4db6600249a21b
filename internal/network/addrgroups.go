package network

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Address groups (extension address-group): named sets of CIDRs that
// security group rules name as remote_address_group_id
// (security-groups-remote-address-group). The agents get each group's
// addresses with the network state (dataplane.go) and match them through
// one nftables interval set per group and family, so changing a group's
// addresses changes set elements, not rules.

// AddressGroup is a row of net_address_groups with its addresses.
type AddressGroup struct {
	ID, ProjectID, Name, Description string
	Addresses                        []string // masked CIDRs, sorted
	Revision                         int64
	CreatedAt, UpdatedAt             time.Time
}

const agCols = `ag.id, ag.project_id, ag.name, ag.description, ag.revision_number, ag.created_at, ag.updated_at`

func scanAG(row interface{ Scan(...any) error }) (*AddressGroup, error) {
	g := &AddressGroup{}
	var created, updated sql.NullString
	if err := row.Scan(&g.ID, &g.ProjectID, &g.Name, &g.Description, &g.Revision, &created, &updated); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return g, nil
}

var agDef = &listDef{
	resource: "address_group", collection: "address_groups", notFound: "AddressGroupNotFound",
	table: "net_address_groups", alias: "ag",
	cols: map[string]column{
		"id": {expr: "ag.id"}, "name": {expr: "ag.name"}, "description": {expr: "ag.description"},
		"project_id": {expr: "ag.project_id"}, "tenant_id": {expr: "ag.project_id"},
		"revision_number": {expr: "ag.revision_number", kind: kInt},
		"created_at":      {expr: "ag.created_at"}, "updated_at": {expr: "ag.updated_at"},
	},
	attrs: []string{"addresses"},
}

func renderAG(g *AddressGroup) map[string]any {
	return map[string]any{
		"id": g.ID, "name": g.Name, "description": g.Description, "project_id": g.ProjectID, "tenant_id": g.ProjectID,
		"addresses": nonNil(g.Addresses), "revision_number": g.Revision,
		"created_at": stamp(g.CreatedAt), "updated_at": stamp(g.UpdatedAt),
	}
}

func agNotFound(id string) error {
	return notFound("AddressGroupNotFound", "Address group %s could not be found.", id)
}

// fillAGs loads the addresses of groups.
func fillAGs(ctx context.Context, q db.Querier, groups []*AddressGroup) error {
	if len(groups) == 0 {
		return nil
	}
	byID := map[string]*AddressGroup{}
	ids := make([]string, len(groups))
	for i, g := range groups {
		byID[g.ID], ids[i] = g, g.ID
	}
	in, arg := idsIn(q, ids)
	rows, err := q.QueryContext(ctx, "SELECT address_group_id, address FROM net_address_group_addresses WHERE address_group_id "+in, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, a string
		if err := rows.Scan(&id, &a); err != nil {
			return err
		}
		byID[id].Addresses = append(byID[id].Addresses, a)
	}
	for _, g := range groups {
		sortCIDRs(g.Addresses)
	}
	return rows.Err()
}

// sortCIDRs orders CIDRs by family, address and length.
func sortCIDRs(list []string) {
	slices.SortFunc(list, func(a, b string) int {
		pa, errA := netip.ParsePrefix(a)
		pb, errB := netip.ParsePrefix(b)
		if errA != nil || errB != nil {
			return strings.Compare(a, b)
		}
		if c := pa.Addr().Compare(pb.Addr()); c != 0 {
			return c
		}
		return pa.Bits() - pb.Bits()
	})
}

func loadAG(ctx context.Context, q db.Querier, id, forUpdate string) (*AddressGroup, error) {
	g, err := scanAG(q.QueryRowContext(ctx, "SELECT "+agCols+" FROM net_address_groups ag WHERE ag.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, agNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return g, fillAGs(ctx, q, []*AddressGroup{g})
}

func (s *Service) addressGroupRoutes(rt func(string, string, apiutil.Handler) apiutil.Route) []apiutil.Route {
	routes := []apiutil.Route{
		rt("GET", "/address-groups", s.listAGs),
		rt("POST", "/address-groups", s.createAGs),
		rt("GET", "/address-groups/{id}", s.showAG),
		rt("PUT", "/address-groups/{id}", s.updateAG),
		rt("DELETE", "/address-groups/{id}", s.deleteAG),
	}
	// The api-ref spells the member actions with "address-group"; Neutron
	// (and openstacksdk) use the collection name. Both are served.
	for _, coll := range []string{"/address-groups/", "/address-group/"} {
		routes = append(routes,
			rt("PUT", coll+"{id}/add_addresses", s.changeAGAddresses(true)),
			rt("PUT", coll+"{id}/remove_addresses", s.changeAGAddresses(false)))
	}
	return routes
}

// parseAddresses validates a list of addresses or CIDRs and returns them
// as masked CIDRs, without duplicates.
func parseAddresses(a attrs) ([]string, bool, error) {
	list, ok, err := a.strList("addresses")
	if err != nil || !ok {
		return nil, ok, err
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			ip, err2 := netip.ParseAddr(v)
			if err2 != nil || ip.Zone() != "" {
				return nil, true, invalidAttr("addresses", "'%s' is not a valid IP subnet", v)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		c := p.Masked().String()
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	sortCIDRs(out)
	return out, true, nil
}

// agAccess hides other projects' groups from non-admins, then applies rule.
func (s *Service) agAccess(c *caller, g *AddressGroup, rule string) error {
	if !c.admin && g.ProjectID != c.ProjectID {
		return agNotFound(g.ID)
	}
	return s.authorize(c, rule, ownerTarget(g.ProjectID))
}

func (s *Service) listAGs(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := agDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("ag.project_id = " + lq.b.arg(c.ProjectID))
	}
	ctx := r.Context()
	q := s.db.Reader()
	groups, more, err := listRows(ctx, q, agDef, lq, agCols, func(rows *sql.Rows) (*AddressGroup, error) { return scanAG(rows) })
	if err != nil {
		return nil, err
	}
	if err := fillAGs(ctx, q, groups); err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(groups))
	for i, g := range groups {
		items[i] = selectFields(renderAG(g), lq.fields)
	}
	return s.listResponse(r, lq, "address_groups", items, more), nil
}

func (s *Service) showAG(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	g, err := loadAG(r.Context(), s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if err := s.agAccess(c, g, "get_address_group"); err != nil {
		return nil, agNotFound(g.ID)
	}
	return apiutil.JSON(200, map[string]any{"address_group": selectFields(renderAG(g), showFields(r))}), nil
}

var agPostAttrs = []string{"name", "description", "addresses", "project_id", "tenant_id"}

func (s *Service) createAGs(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "address_group", "address_groups", true)
	if err != nil {
		return nil, err
	}
	groups := make([]*AddressGroup, 0, len(objs))
	for _, a := range objs {
		if err := a.checkKeys("POST", agPostAttrs, []string{"id", "revision_number", "created_at", "updated_at"}); err != nil {
			return nil, err
		}
		g := &AddressGroup{ID: newID()}
		if g.ProjectID, err = a.project(c.ProjectID); err != nil {
			return nil, err
		}
		if err := s.authorize(c, "create_address_group", ownerTarget(g.ProjectID)); err != nil {
			return nil, err
		}
		if err := a.setStr("name", 255, &g.Name); err != nil {
			return nil, err
		}
		if err := a.setStr("description", 255, &g.Description); err != nil {
			return nil, err
		}
		if g.Addresses, _, err = parseAddresses(a); err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		for _, g := range groups {
			now := s.nowUTC()
			g.CreatedAt, g.UpdatedAt, g.Revision = now, now, 0
			if _, err := tx.ExecContext(ctx, `INSERT INTO net_address_groups (id, project_id, name, description, revision_number,
				created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				g.ID, g.ProjectID, g.Name, g.Description, g.Revision, db.FormatTime(now), db.FormatTime(now)); err != nil {
				return err
			}
			if err := tx.insertAGAddresses(ctx, g.ID, g.Addresses); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "address_groups", "address_group", groups, renderAG), nil
}

func (tx *txn) insertAGAddresses(ctx context.Context, id string, addrs []string) error {
	for _, a := range addrs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_address_group_addresses (address_group_id, address) VALUES ($1, $2)`, id, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) updateAG(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "address_group", "address_groups", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", []string{"name", "description"}, append(agPostAttrs, "id", "revision_number", "created_at", "updated_at")); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *AddressGroup
	err = s.withTx(ctx, func(tx *txn) error {
		g, err := s.agForChange(ctx, tx, r, c, id, "update_address_group")
		if err != nil {
			return err
		}
		if err := a.setStr("name", 255, &g.Name); err != nil {
			return err
		}
		if err := a.setStr("description", 255, &g.Description); err != nil {
			return err
		}
		g.Revision++
		g.UpdatedAt = s.nowUTC()
		_, err = tx.ExecContext(ctx, `UPDATE net_address_groups SET name = $1, description = $2, revision_number = $3,
			updated_at = $4 WHERE id = $5`, g.Name, g.Description, g.Revision, db.FormatTime(g.UpdatedAt), id)
		out = g
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"address_group": renderAG(out)}), nil
}

// changeAGAddresses serves add_addresses (add) and remove_addresses: the
// whole list is added or removed, or nothing is (AddressesAlreadyExist,
// AddressesNotFound).
func (s *Service) changeAGAddresses(add bool) apiutil.Handler {
	action := "remove_addresses"
	if add {
		action = "add_addresses"
	}
	return func(r *http.Request) (*apiutil.Response, error) {
		c := s.caller(r)
		a, err := readAddressesBody(r)
		if err != nil {
			return nil, err
		}
		if err := a.checkKeys("PUT", []string{"addresses"}, append(agPostAttrs, "id")); err != nil {
			return nil, err
		}
		addrs, ok, err := parseAddresses(a)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, badInput("Failed to parse request. Required attribute 'addresses' not specified")
		}
		id := r.PathValue("id")
		ctx := r.Context()
		var out *AddressGroup
		err = s.withTx(ctx, func(tx *txn) error {
			g, err := s.agForChange(ctx, tx, r, c, id, action)
			if err != nil {
				return err
			}
			var wrong []string
			for _, x := range addrs {
				if slices.Contains(g.Addresses, x) == add {
					wrong = append(wrong, x)
				}
			}
			if len(wrong) > 0 {
				list := "['" + strings.Join(wrong, "', '") + "']"
				if add {
					return badRequest("AddressesAlreadyExist", "Addresses %s already exist in the address group %s.", list, id)
				}
				return notFound("AddressesNotFound", "Addresses %s not found in the address group %s.", list, id)
			}
			if add {
				if err := tx.insertAGAddresses(ctx, id, addrs); err != nil {
					return err
				}
				g.Addresses = append(g.Addresses, addrs...)
				sortCIDRs(g.Addresses)
			} else {
				for _, x := range addrs {
					if _, err := tx.ExecContext(ctx, `DELETE FROM net_address_group_addresses WHERE address_group_id = $1 AND address = $2`, id, x); err != nil {
						return err
					}
				}
				g.Addresses = slices.DeleteFunc(g.Addresses, func(x string) bool { return slices.Contains(addrs, x) })
			}
			// The revision moves with the addresses: it is what the data
			// plane's change detection (and If-Match) sees.
			g.Revision++
			g.UpdatedAt = s.nowUTC()
			_, err = tx.ExecContext(ctx, `UPDATE net_address_groups SET revision_number = $1, updated_at = $2 WHERE id = $3`,
				g.Revision, db.FormatTime(g.UpdatedAt), id)
			out = g
			return err
		})
		if err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"address_group": renderAG(out)}), nil
	}
}

// readAddressesBody reads the body of add_addresses and remove_addresses:
// {"addresses": [...]}, as Neutron reads it and openstacksdk sends it, or
// the api-ref's {"address_group": {"addresses": [...]}}.
func readAddressesBody(r *http.Request) (attrs, error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	top, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	if m, ok := top["address_group"].(map[string]any); ok && len(top) == 1 {
		return m, nil
	}
	return top, nil
}

// agForChange locks address group id for a change under policy rule,
// honouring the request's If-Match revision.
func (s *Service) agForChange(ctx context.Context, tx *txn, r *http.Request, c *caller, id, rule string) (*AddressGroup, error) {
	g, err := loadAG(ctx, tx, id, s.db.ForUpdate())
	if err != nil {
		return nil, err
	}
	if err := s.agAccess(c, g, rule); err != nil {
		return nil, err
	}
	if err := ifMatch(r, g.Revision); err != nil {
		return nil, err
	}
	return g, nil
}

func (s *Service) deleteAG(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		if _, err := s.agForChange(ctx, tx, r, c, id, "delete_address_group"); err != nil {
			return err
		}
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_security_group_rules WHERE remote_address_group_id = $1`, id).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return conflict("AddressGroupInUse", "Address group %s is in use on one or more security group rules.", id)
		}
		for _, q := range []string{
			`DELETE FROM net_address_group_addresses WHERE address_group_id = $1`,
			`DELETE FROM net_address_groups WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
