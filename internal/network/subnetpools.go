package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// SubnetPool is a row of net_subnetpools.
type SubnetPool struct {
	ID, ProjectID, Name, Description, AddressScopeID string
	IPVersion                                        int
	Prefixes                                         []netip.Prefix
	DefaultPrefixlen, MinPrefixlen, MaxPrefixlen     int
	DefaultQuota                                     sql.NullInt64
	Shared, IsDefault                                bool
	Revision                                         int64
	CreatedAt, UpdatedAt                             time.Time
	Tags                                             []string
}

const poolCols = `sp.id, sp.project_id, sp.name, sp.description, sp.ip_version, sp.prefixes, sp.default_prefixlen,
	sp.min_prefixlen, sp.max_prefixlen, sp.default_quota, sp.shared, sp.is_default, sp.address_scope_id,
	sp.revision_number, sp.created_at, sp.updated_at`

func scanPool(row interface{ Scan(...any) error }) (*SubnetPool, error) {
	p := &SubnetPool{}
	var prefixes string
	var scope, created, updated sql.NullString
	if err := row.Scan(&p.ID, &p.ProjectID, &p.Name, &p.Description, &p.IPVersion, &prefixes, &p.DefaultPrefixlen,
		&p.MinPrefixlen, &p.MaxPrefixlen, &p.DefaultQuota, &p.Shared, &p.IsDefault, &scope, &p.Revision, &created, &updated); err != nil {
		return nil, err
	}
	var list []string
	_ = json.Unmarshal([]byte(prefixes), &list)
	for _, s := range list {
		if pr, err := netip.ParsePrefix(s); err == nil {
			p.Prefixes = append(p.Prefixes, pr)
		}
	}
	p.AddressScopeID = scope.String
	p.CreatedAt, p.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return p, nil
}

var poolDef = &listDef{
	resource: "subnetpool", collection: "subnetpools", notFound: "SubnetPoolNotFound", table: "net_subnetpools", alias: "sp",
	cols: map[string]column{
		"id": {expr: "sp.id"}, "name": {expr: "sp.name"}, "description": {expr: "sp.description"},
		"project_id": {expr: "sp.project_id"}, "tenant_id": {expr: "sp.project_id"},
		"ip_version": {expr: "sp.ip_version", kind: kInt}, "default_prefixlen": {expr: "sp.default_prefixlen", kind: kInt},
		"min_prefixlen": {expr: "sp.min_prefixlen", kind: kInt}, "max_prefixlen": {expr: "sp.max_prefixlen", kind: kInt},
		"shared": {expr: "sp.shared", kind: kBool}, "is_default": {expr: "sp.is_default", kind: kBool},
		"address_scope_id": {expr: "sp.address_scope_id", nullable: true},
		"revision_number":  {expr: "sp.revision_number", kind: kInt},
		"created_at":       {expr: "sp.created_at"}, "updated_at": {expr: "sp.updated_at"},
	},
	attrs: []string{"prefixes", "default_quota", "tags"},
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func renderPool(p *SubnetPool) map[string]any {
	return map[string]any{
		"id": p.ID, "name": p.Name, "description": p.Description, "project_id": p.ProjectID, "tenant_id": p.ProjectID,
		"ip_version": p.IPVersion, "prefixes": prefixStrings(p.Prefixes), "default_prefixlen": p.DefaultPrefixlen,
		"min_prefixlen": p.MinPrefixlen, "max_prefixlen": p.MaxPrefixlen, "default_quota": nullIntOf(p.DefaultQuota),
		"shared": p.Shared, "is_default": p.IsDefault, "address_scope_id": nilIfEmpty(p.AddressScopeID),
		"tags": nonNil(p.Tags), "revision_number": p.Revision,
		"created_at": stamp(p.CreatedAt), "updated_at": stamp(p.UpdatedAt),
	}
}

func poolNotFound(id string) error {
	return notFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
}

func loadPool(ctx context.Context, q db.Querier, id, forUpdate string) (*SubnetPool, error) {
	p, err := scanPool(q.QueryRowContext(ctx, "SELECT "+poolCols+" FROM net_subnetpools sp WHERE sp.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, poolNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return p, loadTags(ctx, q, "subnetpool", []string{id}, func(_ string, t []string) { p.Tags = t })
}

func (s *Service) listSubnetPools(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := poolDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("(sp.project_id = " + lq.b.arg(c.ProjectID) + " OR sp.shared)")
	}
	ctx := r.Context()
	pools, more, err := listRows(ctx, s.db.Reader(), poolDef, lq, poolCols, func(rows *sql.Rows) (*SubnetPool, error) { return scanPool(rows) })
	if err != nil {
		return nil, err
	}
	byID := map[string]*SubnetPool{}
	ids := make([]string, len(pools))
	for i, p := range pools {
		byID[p.ID], ids[i] = p, p.ID
	}
	if err := loadTags(ctx, s.db.Reader(), "subnetpool", ids, func(id string, t []string) { byID[id].Tags = t }); err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(pools))
	for i, p := range pools {
		items[i] = selectFields(renderPool(p), lq.fields)
	}
	return s.listResponse(r, lq, "subnetpools", items, more), nil
}

func (s *Service) showSubnetPool(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	p, err := loadPool(r.Context(), s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if !c.admin && p.ProjectID != c.ProjectID && !p.Shared {
		return nil, poolNotFound(p.ID)
	}
	return apiutil.JSON(200, map[string]any{"subnetpool": selectFields(renderPool(p), showFields(r))}), nil
}

var poolPostAttrs = []string{"name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen",
	"default_quota", "shared", "is_default", "address_scope_id", "project_id", "tenant_id", "tags"}

// parsePoolAttrs validates pool attributes over p (create or update).
func parsePoolAttrs(a attrs, p *SubnetPool, create bool) error {
	var err error
	if err := a.setStr("name", 255, &p.Name); err != nil {
		return err
	}
	if err := a.setStr("description", 255, &p.Description); err != nil {
		return err
	}
	if list, ok, err := a.strList("prefixes"); err != nil {
		return err
	} else if ok {
		if len(list) == 0 {
			return invalidAttr("prefixes", "a subnet pool needs at least one prefix")
		}
		var ps []netip.Prefix
		for _, s := range list {
			pr, err := netip.ParsePrefix(s)
			if err != nil {
				return invalidAttr("prefixes", "'%s' is not a valid IP subnet", s)
			}
			pr = pr.Masked()
			ver := 6
			if pr.Addr().Is4() {
				ver = 4
			}
			if p.IPVersion != 0 && ver != p.IPVersion {
				return badRequest("PrefixVersionMismatch", "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
			}
			p.IPVersion = ver
			ps = append(ps, pr)
		}
		if !create {
			for _, old := range p.Prefixes {
				if !slices.ContainsFunc(ps, func(n netip.Prefix) bool { return n.Bits() <= old.Bits() && n.Contains(old.Addr()) }) {
					return badRequest("IllegalSubnetPoolPrefixUpdate", "Illegal update to prefixes: %s. Existing prefixes must be a subset of the new prefixes.", old)
				}
			}
		}
		p.Prefixes = ps
	} else if create {
		return badInput("Failed to parse request. Required attribute 'prefixes' not specified")
	}
	bits := 32
	if p.IPVersion == 6 {
		bits = 128
	}
	if create {
		p.MinPrefixlen, p.MaxPrefixlen = 8, bits
		if p.IPVersion == 6 {
			p.MinPrefixlen = 64
		}
	}
	minSet, maxSet, defSet := false, false, false
	for _, f := range []struct {
		name string
		dst  *int
		set  *bool
	}{{"min_prefixlen", &p.MinPrefixlen, &minSet}, {"max_prefixlen", &p.MaxPrefixlen, &maxSet}, {"default_prefixlen", &p.DefaultPrefixlen, &defSet}} {
		v, ok, _, err := a.integer(f.name, 0, int64(bits), false)
		if err != nil {
			return err
		}
		if ok {
			*f.dst, *f.set = int(v), true
		}
	}
	if create && !defSet {
		p.DefaultPrefixlen = p.MinPrefixlen
	}
	if p.MinPrefixlen > p.MaxPrefixlen || p.DefaultPrefixlen < p.MinPrefixlen || p.DefaultPrefixlen > p.MaxPrefixlen {
		return badRequest("IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: min_prefixlen=%d, default_prefixlen=%d, max_prefixlen=%d.", p.MinPrefixlen, p.DefaultPrefixlen, p.MaxPrefixlen)
	}
	if q, ok, present, err := a.integer("default_quota", 0, 1<<31, true); err != nil {
		return err
	} else if present {
		p.DefaultQuota = sql.NullInt64{Int64: q, Valid: ok}
	}
	if err := a.setBool("is_default", &p.IsDefault); err != nil {
		return err
	}
	if create {
		if err := a.setBool("shared", &p.Shared); err != nil {
			return err
		}
	}
	if v, valid, _, err := a.nullableStr("address_scope_id"); err != nil {
		return err
	} else if valid && v != "" {
		if !isUUID(v) {
			return invalidAttr("address_scope_id", "'%s' is not a valid UUID", v)
		}
		p.AddressScopeID = v // checked against the scope in the transaction (checkPoolScope)
	} else if !valid && a.has("address_scope_id") {
		p.AddressScopeID = ""
	}
	return err
}

func (s *Service) createSubnetPools(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "subnetpool", "subnetpools", true)
	if err != nil {
		return nil, err
	}
	var pools []*SubnetPool
	var tags [][]string
	for _, a := range objs {
		if err := a.checkKeys("POST", poolPostAttrs, []string{"id", "ip_version", "revision_number", "created_at", "updated_at"}); err != nil {
			return nil, err
		}
		p := &SubnetPool{ID: newID()}
		if p.ProjectID, err = a.project(c.ProjectID); err != nil {
			return nil, err
		}
		if err := s.authorize(c, "create_subnetpool", ownerTarget(p.ProjectID)); err != nil {
			return nil, err
		}
		for _, k := range []string{"shared", "is_default"} {
			if v, ok, _ := a.boolean(k); ok && v {
				if err := s.authorize(c, "create_subnetpool:"+k, ownerTarget(p.ProjectID)); err != nil {
					return nil, err
				}
			}
		}
		if err := parsePoolAttrs(a, p, true); err != nil {
			return nil, err
		}
		t, _, err := a.strList("tags")
		if err != nil {
			return nil, err
		}
		if err := validateTags(t); err != nil {
			return nil, err
		}
		pools = append(pools, p)
		tags = append(tags, t)
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		for i, p := range pools {
			if err := tx.checkQuota(ctx, "subnetpool", p.ProjectID, 1); err != nil {
				return err
			}
			if p.IsDefault {
				if err := tx.checkDefaultPool(ctx, p); err != nil {
					return err
				}
			}
			if err := tx.checkPoolScope(ctx, c, p); err != nil {
				return err
			}
			now := s.nowUTC()
			p.CreatedAt, p.UpdatedAt = now, now
			if _, err := tx.ExecContext(ctx, `INSERT INTO net_subnetpools (id, project_id, name, description, ip_version, prefixes,
				default_prefixlen, min_prefixlen, max_prefixlen, default_quota, shared, is_default, address_scope_id,
				revision_number, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
				p.ID, p.ProjectID, p.Name, p.Description, p.IPVersion, jsonText(prefixStrings(p.Prefixes)), p.DefaultPrefixlen,
				p.MinPrefixlen, p.MaxPrefixlen, p.DefaultQuota, p.Shared, p.IsDefault, nullStr(p.AddressScopeID, p.AddressScopeID != ""), 0, db.FormatTime(now), db.FormatTime(now)); err != nil {
				return err
			}
			if len(tags[i]) > 0 {
				if err := tx.setTags(ctx, "subnetpool", p.ID, tags[i]); err != nil {
					return err
				}
				p.Tags = sortedTags(tags[i])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "subnetpools", "subnetpool", pools, renderPool), nil
}

func (tx *txn) checkDefaultPool(ctx context.Context, p *SubnetPool) error {
	var other string
	err := tx.QueryRowContext(ctx, `SELECT id FROM net_subnetpools WHERE is_default AND ip_version = $1 AND id <> $2`, p.IPVersion, p.ID).Scan(&other)
	if err == nil {
		return badRequest("InvalidInput", "Invalid input for operation: A default subnetpool for this IP family has already been set. Only one default may exist per IP family.")
	}
	if err != sql.ErrNoRows {
		return err
	}
	return nil
}

// poolForChange locks subnet pool id for a change under policy rule: an
// other project's private pool is not found, a shared one is forbidden.
func (s *Service) poolForChange(ctx context.Context, tx *txn, c *caller, id, rule string) (*SubnetPool, error) {
	p, err := loadPool(ctx, tx, id, s.db.ForUpdate())
	if err != nil {
		return nil, err
	}
	if !c.admin && p.ProjectID != c.ProjectID {
		if p.Shared {
			return nil, policyDenied(rule)
		}
		return nil, poolNotFound(id)
	}
	if err := s.authorize(c, rule, ownerTarget(p.ProjectID)); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Service) updateSubnetPool(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "subnetpool", "subnetpools", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", []string{"name", "description", "prefixes", "default_prefixlen", "min_prefixlen",
		"max_prefixlen", "default_quota", "is_default", "address_scope_id"}, poolPostAttrs); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *SubnetPool
	err = s.withTx(ctx, func(tx *txn) error {
		p, err := s.poolForChange(ctx, tx, c, id, "update_subnetpool")
		if err != nil {
			return err
		}
		if a.has("is_default") {
			if err := s.authorize(c, "update_subnetpool:is_default", ownerTarget(p.ProjectID)); err != nil {
				return err
			}
		}
		if err := ifMatch(r, p.Revision); err != nil {
			return err
		}
		if err := parsePoolAttrs(a, p, false); err != nil {
			return err
		}
		if p.IsDefault {
			if err := tx.checkDefaultPool(ctx, p); err != nil {
				return err
			}
		}
		if err := tx.checkPoolScope(ctx, c, p); err != nil {
			return err
		}
		p.Revision++
		p.UpdatedAt = s.nowUTC()
		_, err = tx.ExecContext(ctx, `UPDATE net_subnetpools SET name = $1, description = $2, prefixes = $3, default_prefixlen = $4,
			min_prefixlen = $5, max_prefixlen = $6, default_quota = $7, is_default = $8, revision_number = $9, updated_at = $10,
			address_scope_id = $11 WHERE id = $12`, p.Name, p.Description, jsonText(prefixStrings(p.Prefixes)), p.DefaultPrefixlen,
			p.MinPrefixlen, p.MaxPrefixlen, p.DefaultQuota, p.IsDefault, p.Revision, db.FormatTime(p.UpdatedAt),
			nullStr(p.AddressScopeID, p.AddressScopeID != ""), id)
		out = p
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"subnetpool": renderPool(out)}), nil
}

func (s *Service) deleteSubnetPool(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		p, err := s.poolForChange(ctx, tx, c, id, "delete_subnetpool")
		if err != nil {
			return err
		}
		if err := ifMatch(r, p.Revision); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_subnets WHERE subnetpool_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict("SubnetPoolInUse", "Subnet pool %s cannot be deleted as it is still in use by subnets.", id)
		}
		for _, q := range []string{`DELETE FROM net_tags WHERE resource_type = 'subnetpool' AND resource_id = $1`, `DELETE FROM net_subnetpools WHERE id = $1`} {
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

// allocateFromPool gives a subnet its CIDR from a subnet pool: the
// requested CIDR if it fits and is free, else the first free prefix of
// the requested (or default) length.
func (tx *txn) allocateFromPool(ctx context.Context, c *caller, sn *Subnet, prefixlen int) (netip.Prefix, error) {
	p, err := loadPool(ctx, tx, sn.SubnetPoolID, tx.s.db.ForUpdate())
	if err != nil {
		return netip.Prefix{}, err
	}
	if !c.admin && p.ProjectID != c.ProjectID && !p.Shared {
		return netip.Prefix{}, poolNotFound(p.ID)
	}
	if p.IPVersion != sn.IPVersion {
		return netip.Prefix{}, invalidInput("Cannot allocate IPv%d subnet from IPv%d subnet pool", sn.IPVersion, p.IPVersion)
	}
	rows, err := tx.QueryContext(ctx, `SELECT cidr FROM net_subnets WHERE subnetpool_id = $1`, p.ID)
	if err != nil {
		return netip.Prefix{}, err
	}
	var used []netip.Prefix
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return netip.Prefix{}, err
		}
		if pr, err := netip.ParsePrefix(s); err == nil {
			used = append(used, pr)
		}
	}
	rows.Close()
	if sn.CIDR.IsValid() {
		if sn.CIDR.Bits() < p.MinPrefixlen || sn.CIDR.Bits() > p.MaxPrefixlen {
			return netip.Prefix{}, badRequest("IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: prefixlen %d outside %d-%d.", sn.CIDR.Bits(), p.MinPrefixlen, p.MaxPrefixlen)
		}
		if !slices.ContainsFunc(p.Prefixes, func(pp netip.Prefix) bool { return pp.Bits() <= sn.CIDR.Bits() && pp.Contains(sn.CIDR.Addr()) }) {
			return netip.Prefix{}, conflict("SubnetAllocationError", "Failed to allocate subnet: Cidr %s not in subnet pool.", sn.CIDR)
		}
		for _, u := range used {
			if u.Overlaps(sn.CIDR) {
				return netip.Prefix{}, conflict("SubnetAllocationError", "Failed to allocate subnet: Cidr %s is already allocated.", sn.CIDR)
			}
		}
		return sn.CIDR, nil
	}
	if prefixlen == 0 {
		prefixlen = p.DefaultPrefixlen
	}
	if prefixlen < p.MinPrefixlen || prefixlen > p.MaxPrefixlen {
		return netip.Prefix{}, badRequest("IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: prefixlen=%d, min_prefixlen=%d, max_prefixlen=%d.", prefixlen, p.MinPrefixlen, p.MaxPrefixlen)
	}
	if got, ok := freePrefix(p.Prefixes, used, prefixlen); ok {
		return got, nil
	}
	return netip.Prefix{}, conflict("SubnetAllocationError", "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /%d.", prefixlen)
}

// freePrefix finds the first prefix of length bits inside pools that
// overlaps none of used.
func freePrefix(pools, used []netip.Prefix, bits int) (netip.Prefix, bool) {
	for _, pool := range pools {
		if pool.Bits() > bits {
			continue
		}
		_, last := firstLast(pool)
		cand := netip.PrefixFrom(pool.Addr(), bits)
		for {
			blocked := false
			for _, u := range used {
				if u.Overlaps(cand) {
					blocked = true
					_, uLast := firstLast(u)
					_, cLast := firstLast(cand)
					end := cLast
					if cLast.Less(uLast) {
						end = uLast
					}
					next := end.Next()
					if !next.IsValid() || last.Less(next) {
						cand = netip.Prefix{}
					} else {
						cand = netip.PrefixFrom(next, bits)
					}
					break
				}
			}
			if !cand.IsValid() {
				break
			}
			if !blocked {
				return cand, true
			}
		}
	}
	return netip.Prefix{}, false
}
