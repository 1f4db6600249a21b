package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// SecurityGroup is a row of net_security_groups with its rules and tags.
type SecurityGroup struct {
	ID, ProjectID, Name, Description string
	Stateful                         bool
	Revision                         int64
	CreatedAt, UpdatedAt             time.Time
	Rules                            []*SGRule
	Tags                             []string
}

// SGRule is a security group rule.
type SGRule struct {
	ID, ProjectID, SecurityGroupID, Direction, Ethertype string
	Protocol, RemoteIPPrefix, RemoteGroupID              string // "" for null
	RemoteAddressGroupID                                 string // "" for null
	PortMin, PortMax                                     sql.NullInt64
	Description                                          string
	Revision                                             int64
	CreatedAt, UpdatedAt                                 time.Time
}

const sgCols = `g.id, g.project_id, g.name, g.description, g.stateful, g.revision_number, g.created_at, g.updated_at`
const ruleCols = `r.id, r.project_id, r.security_group_id, r.direction, r.ethertype, r.protocol, r.port_range_min,
	r.port_range_max, r.remote_ip_prefix, r.remote_group_id, r.remote_address_group_id, r.description, r.revision_number,
	r.created_at, r.updated_at`

func scanSG(row interface{ Scan(...any) error }) (*SecurityGroup, error) {
	g := &SecurityGroup{}
	var created, updated sql.NullString
	if err := row.Scan(&g.ID, &g.ProjectID, &g.Name, &g.Description, &g.Stateful, &g.Revision, &created, &updated); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return g, nil
}

func scanRule(row interface{ Scan(...any) error }) (*SGRule, error) {
	r := &SGRule{}
	var proto, prefix, remote, remoteAG, created, updated sql.NullString
	if err := row.Scan(&r.ID, &r.ProjectID, &r.SecurityGroupID, &r.Direction, &r.Ethertype, &proto, &r.PortMin, &r.PortMax,
		&prefix, &remote, &remoteAG, &r.Description, &r.Revision, &created, &updated); err != nil {
		return nil, err
	}
	r.Protocol, r.RemoteIPPrefix, r.RemoteGroupID = proto.String, prefix.String, remote.String
	r.RemoteAddressGroupID = remoteAG.String
	r.CreatedAt, r.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return r, nil
}

var sgDef = &listDef{
	resource: "security_group", collection: "security_groups", notFound: "SecurityGroupNotFound",
	table: "net_security_groups", alias: "g",
	cols: map[string]column{
		"id": {expr: "g.id"}, "name": {expr: "g.name"}, "description": {expr: "g.description"},
		"project_id": {expr: "g.project_id"}, "tenant_id": {expr: "g.project_id"},
		"stateful": {expr: "g.stateful", kind: kBool}, "revision_number": {expr: "g.revision_number", kind: kInt},
		"created_at": {expr: "g.created_at"}, "updated_at": {expr: "g.updated_at"},
	},
	attrs: []string{"security_group_rules", "tags", "shared"},
}

var ruleDef = &listDef{
	resource: "security_group_rule", collection: "security_group_rules", notFound: "SecurityGroupRuleNotFound",
	table: "net_security_group_rules", alias: "r",
	cols: map[string]column{
		"id": {expr: "r.id"}, "description": {expr: "r.description"},
		"project_id": {expr: "r.project_id"}, "tenant_id": {expr: "r.project_id"},
		"security_group_id": {expr: "r.security_group_id"}, "direction": {expr: "r.direction"},
		"ethertype": {expr: "r.ethertype"}, "protocol": {expr: "r.protocol", nullable: true},
		"port_range_min":          {expr: "r.port_range_min", kind: kInt, nullable: true},
		"port_range_max":          {expr: "r.port_range_max", kind: kInt, nullable: true},
		"remote_ip_prefix":        {expr: "r.remote_ip_prefix", nullable: true},
		"remote_group_id":         {expr: "r.remote_group_id", nullable: true},
		"remote_address_group_id": {expr: "r.remote_address_group_id", nullable: true},
		"revision_number":         {expr: "r.revision_number", kind: kInt},
		"created_at":              {expr: "r.created_at"}, "updated_at": {expr: "r.updated_at"},
	},
	attrs: []string{"normalized_cidr", "belongs_to_default_sg"},
}

// ruleView and sgView are a rule and a group as the API shows them:
// structs rather than maps so that long lists encode fast (no key sorting,
// no boxing); field selection converts them to maps.
type ruleView struct {
	ID                   string  `json:"id"`
	ProjectID            string  `json:"project_id"`
	TenantID             string  `json:"tenant_id"`
	SecurityGroupID      string  `json:"security_group_id"`
	Direction            string  `json:"direction"`
	Ethertype            string  `json:"ethertype"`
	Protocol             *string `json:"protocol"`
	PortRangeMin         *int64  `json:"port_range_min"`
	PortRangeMax         *int64  `json:"port_range_max"`
	RemoteIPPrefix       *string `json:"remote_ip_prefix"`
	RemoteGroupID        *string `json:"remote_group_id"`
	RemoteAddressGroupID *string `json:"remote_address_group_id"`
	NormalizedCIDR       *string `json:"normalized_cidr"`
	Description          string  `json:"description"`
	Revision             int64   `json:"revision_number"`
	CreatedAt            string  `json:"created_at"`
	UpdatedAt            string  `json:"updated_at"`
}

type sgView struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	ProjectID   string     `json:"project_id"`
	TenantID    string     `json:"tenant_id"`
	Stateful    bool       `json:"stateful"`
	Rules       []ruleView `json:"security_group_rules"`
	Tags        []string   `json:"tags"`
	Shared      bool       `json:"shared"`
	Revision    int64      `json:"revision_number"`
	CreatedAt   string     `json:"created_at"`
	UpdatedAt   string     `json:"updated_at"`
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func int64OrNil(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

func viewRule(r *SGRule) ruleView {
	var norm *string
	if r.RemoteIPPrefix != "" {
		if p, err := netip.ParsePrefix(r.RemoteIPPrefix); err == nil {
			norm = strOrNil(p.Masked().String())
		}
	}
	return ruleView{ID: r.ID, ProjectID: r.ProjectID, TenantID: r.ProjectID, SecurityGroupID: r.SecurityGroupID,
		Direction: r.Direction, Ethertype: r.Ethertype, Protocol: strOrNil(r.Protocol),
		PortRangeMin: int64OrNil(r.PortMin), PortRangeMax: int64OrNil(r.PortMax),
		RemoteIPPrefix: strOrNil(r.RemoteIPPrefix), RemoteGroupID: strOrNil(r.RemoteGroupID), NormalizedCIDR: norm,
		RemoteAddressGroupID: strOrNil(r.RemoteAddressGroupID),
		Description:          r.Description, Revision: r.Revision, CreatedAt: stamp(r.CreatedAt), UpdatedAt: stamp(r.UpdatedAt)}
}

func viewSG(g *SecurityGroup) *sgView {
	rules := make([]ruleView, len(g.Rules))
	for i, r := range g.Rules {
		rules[i] = viewRule(r)
	}
	return &sgView{ID: g.ID, Name: g.Name, Description: g.Description, ProjectID: g.ProjectID, TenantID: g.ProjectID,
		Stateful: g.Stateful, Rules: rules, Tags: nonNil(g.Tags), Revision: g.Revision,
		CreatedAt: stamp(g.CreatedAt), UpdatedAt: stamp(g.UpdatedAt)}
}

// asMap is a view as a map, for field selection.
func asMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func renderRule(r *SGRule) map[string]any { return asMap(viewRule(r)) }

func renderSG(g *SecurityGroup) map[string]any { return asMap(viewSG(g)) }

func sgNotFound(id string) error {
	return notFound("SecurityGroupNotFound", "Security group %s does not exist", id)
}

func fillSGs(ctx context.Context, q db.Querier, groups []*SecurityGroup) error {
	if len(groups) == 0 {
		return nil
	}
	byID := map[string]*SecurityGroup{}
	ids := make([]string, len(groups))
	for i, g := range groups {
		byID[g.ID] = g
		ids[i] = g.ID
	}
	err := func() error {
		in, arg := idsIn(q, ids)
		// No ORDER BY: sorting every rule of the page in SQL costs more
		// than sorting each group's few rules below.
		rows, err := q.QueryContext(ctx, "SELECT "+ruleCols+" FROM net_security_group_rules r WHERE r.security_group_id "+in, arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRule(rows)
			if err != nil {
				return err
			}
			byID[r.SecurityGroupID].Rules = append(byID[r.SecurityGroupID].Rules, r)
		}
		return rows.Err()
	}()
	if err != nil {
		return err
	}
	for _, g := range groups {
		slices.SortFunc(g.Rules, func(a, b *SGRule) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return loadTags(ctx, q, "security_group", ids, func(id string, t []string) { byID[id].Tags = t })
}

func loadSG(ctx context.Context, q db.Querier, id, forUpdate string) (*SecurityGroup, error) {
	g, err := scanSG(q.QueryRowContext(ctx, "SELECT "+sgCols+" FROM net_security_groups g WHERE g.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, sgNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return g, fillSGs(ctx, q, []*SecurityGroup{g})
}

func (s *Service) securityGroupRoutes(rt func(string, string, apiutil.Handler) apiutil.Route) []apiutil.Route {
	return []apiutil.Route{
		rt("GET", "/security-groups", s.listSGs),
		rt("POST", "/security-groups", s.createSGs),
		rt("GET", "/security-groups/{id}", s.showSG),
		rt("PUT", "/security-groups/{id}", s.updateSG),
		rt("DELETE", "/security-groups/{id}", s.deleteSG),
		rt("GET", "/security-group-rules", s.listRules),
		rt("POST", "/security-group-rules", s.createRules),
		rt("GET", "/security-group-rules/{id}", s.showRule),
		rt("DELETE", "/security-group-rules/{id}", s.deleteRule),
	}
}

// defaultSGID returns the project's default group, creating it (with
// Neutron's default rules) on first use.
func (tx *txn) defaultSGID(ctx context.Context, project string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT security_group_id FROM net_default_security_groups WHERE project_id = $1`, project).Scan(&id)
	if err == nil {
		return id, nil
	}
	if err != sql.ErrNoRows {
		return "", err
	}
	g := &SecurityGroup{ID: newID(), ProjectID: project, Name: "default", Description: "Default security group", Stateful: true}
	if err := tx.insertSG(ctx, g); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO net_default_security_groups (project_id, security_group_id) VALUES ($1, $2)`, project, g.ID); err != nil {
		return "", err
	}
	return g.ID, nil
}

// ensureDefaultSG creates the caller's default group outside any other
// transaction, as Neutron does when a project first lists its groups.
func (s *Service) ensureDefaultSG(ctx context.Context, project string) error {
	if project == "" {
		return nil
	}
	var n int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM net_default_security_groups WHERE project_id = $1`, project).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return s.withTx(ctx, func(tx *txn) error {
		_, err := tx.defaultSGID(ctx, project)
		return err
	})
}

// insertSG inserts a group with the default egress rules (and, for the
// default group, ingress from members of the group).
func (tx *txn) insertSG(ctx context.Context, g *SecurityGroup) error {
	now := tx.s.nowUTC()
	g.CreatedAt, g.UpdatedAt, g.Revision = now, now, 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO net_security_groups (id, project_id, name, description, stateful,
		revision_number, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		g.ID, g.ProjectID, g.Name, g.Description, g.Stateful, g.Revision, db.FormatTime(now), db.FormatTime(now)); err != nil {
		return err
	}
	var rules []*SGRule
	for _, et := range []string{"IPv4", "IPv6"} {
		rules = append(rules, &SGRule{Direction: "egress", Ethertype: et})
		if g.Name == "default" {
			rules = append(rules, &SGRule{Direction: "ingress", Ethertype: et, RemoteGroupID: g.ID})
		}
	}
	for _, r := range rules {
		r.ID, r.ProjectID, r.SecurityGroupID = newID(), g.ProjectID, g.ID
		if err := tx.insertRule(ctx, r); err != nil {
			return err
		}
		g.Rules = append(g.Rules, r)
	}
	return nil
}

// fingerprint identifies a rule's match for duplicate detection.
func (r *SGRule) fingerprint() string {
	proto := r.Protocol
	if r.Ethertype == "IPv6" && (proto == "icmp" || proto == "icmpv6" || proto == "58") {
		proto = "ipv6-icmp"
	}
	if n, err := strconv.Atoi(proto); err == nil {
		for name, num := range protocolNumbers {
			if num == n && name != "icmpv6" && name != "ipv6-icmp" {
				proto = name
			}
		}
	}
	prefix := r.RemoteIPPrefix
	if p, err := netip.ParsePrefix(prefix); err == nil {
		prefix = p.Masked().String()
		if p.Bits() == 0 {
			prefix = ""
		}
	}
	fp := fmt.Sprintf("%s|%s|%s|%d|%d|%s|%s", r.Direction, r.Ethertype, proto,
		nullInt(r.PortMin), nullInt(r.PortMax), prefix, r.RemoteGroupID)
	if r.RemoteAddressGroupID != "" { // appended only when set: older rows keep their fingerprints
		fp += "|ag:" + r.RemoteAddressGroupID
	}
	return fp
}

func nullInt(n sql.NullInt64) int64 {
	if !n.Valid {
		return -1
	}
	return n.Int64
}

func (tx *txn) insertRule(ctx context.Context, r *SGRule) error {
	now := tx.s.nowUTC()
	r.CreatedAt, r.UpdatedAt = now, now
	_, err := tx.ExecContext(ctx, `INSERT INTO net_security_group_rules (id, project_id, security_group_id, direction,
		ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix, remote_group_id, remote_address_group_id,
		fingerprint, description, revision_number, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		r.ID, r.ProjectID, r.SecurityGroupID, r.Direction, r.Ethertype, nullStr(r.Protocol, r.Protocol != ""), r.PortMin,
		r.PortMax, nullStr(r.RemoteIPPrefix, r.RemoteIPPrefix != ""), nullStr(r.RemoteGroupID, r.RemoteGroupID != ""),
		nullStr(r.RemoteAddressGroupID, r.RemoteAddressGroupID != ""), r.fingerprint(), r.Description, r.Revision, db.FormatTime(now), db.FormatTime(now))
	return err
}

func (s *Service) listSGs(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	if err := s.ensureDefaultSG(ctx, c.ProjectID); err != nil {
		return nil, err
	}
	lq, err := sgDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("g.project_id = " + lq.b.arg(c.ProjectID))
	}
	q := s.db.Reader()
	groups, more, err := listRows(ctx, q, sgDef, lq, sgCols, func(rows *sql.Rows) (*SecurityGroup, error) { return scanSG(rows) })
	if err != nil {
		return nil, err
	}
	if err := fillSGs(ctx, q, groups); err != nil {
		return nil, err
	}
	if len(lq.fields) > 0 {
		items := make([]map[string]any, len(groups))
		for i, g := range groups {
			items[i] = selectFields(renderSG(g), lq.fields)
		}
		return s.listResponse(r, lq, "security_groups", items, more), nil
	}
	items := make([]*sgView, len(groups))
	for i, g := range groups {
		items[i] = viewSG(g)
	}
	body := sgListBody{items: items}
	if lq.limit > 0 && len(items) > 0 {
		body.links = pageLinks(r, strings.TrimSuffix(s.base(r), prefix), lq, items[0].ID, items[len(items)-1].ID, more)
	}
	return apiutil.JSON(200, body), nil
}

func (s *Service) sgAccess(c *caller, g *SecurityGroup, rule string) error {
	if !c.admin && g.ProjectID != c.ProjectID {
		return sgNotFound(g.ID)
	}
	return s.authorize(c, rule, ownerTarget(g.ProjectID))
}

func (s *Service) showSG(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	g, err := loadSG(r.Context(), s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if err := s.sgAccess(c, g, "get_security_group"); err != nil {
		return nil, sgNotFound(g.ID)
	}
	return apiutil.JSON(200, map[string]any{"security_group": selectFields(renderSG(g), showFields(r))}), nil
}

var sgPostAttrs = []string{"name", "description", "stateful", "project_id", "tenant_id", "tags"}

func (s *Service) createSGs(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "security_group", "security_groups", true)
	if err != nil {
		return nil, err
	}
	var groups []*SecurityGroup
	var tags [][]string
	for _, a := range objs {
		if err := a.checkKeys("POST", sgPostAttrs, []string{"id", "security_group_rules", "revision_number", "created_at", "updated_at"}); err != nil {
			return nil, err
		}
		g := &SecurityGroup{ID: newID(), Stateful: true}
		if g.ProjectID, err = a.project(c.ProjectID); err != nil {
			return nil, err
		}
		if err := s.authorize(c, "create_security_group", ownerTarget(g.ProjectID)); err != nil {
			return nil, err
		}
		if g.Name, _, err = a.str("name", 255); err != nil {
			return nil, err
		}
		if g.Name == "default" {
			return nil, conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
		}
		if g.Description, _, err = a.str("description", 255); err != nil {
			return nil, err
		}
		if err := a.setBool("stateful", &g.Stateful); err != nil {
			return nil, err
		}
		t, _, err := a.strList("tags")
		if err != nil {
			return nil, err
		}
		if err := validateTags(t); err != nil {
			return nil, err
		}
		groups = append(groups, g)
		tags = append(tags, t)
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		for i, g := range groups {
			g.Rules = nil
			if _, err := tx.defaultSGID(ctx, g.ProjectID); err != nil {
				return err
			}
			if err := tx.checkQuota(ctx, "security_group", g.ProjectID, 1); err != nil {
				return err
			}
			if err := tx.insertSG(ctx, g); err != nil {
				return err
			}
			if len(tags[i]) > 0 {
				if err := tx.setTags(ctx, "security_group", g.ID, tags[i]); err != nil {
					return err
				}
				g.Tags = sortedTags(tags[i])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "security_groups", "security_group", groups, renderSG), nil
}

func (s *Service) updateSG(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "security_group", "security_groups", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", []string{"name", "description", "stateful"}, append(sgPostAttrs, "id", "security_group_rules")); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *SecurityGroup
	err = s.withTx(ctx, func(tx *txn) error {
		g, err := loadSG(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.sgAccess(c, g, "update_security_group"); err != nil {
			return err
		}
		if err := ifMatch(r, g.Revision); err != nil {
			return err
		}
		if v, ok, err := a.str("name", 255); err != nil {
			return err
		} else if ok {
			if g.Name == "default" && v != "default" {
				return conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
			}
			g.Name = v
		}
		if err := a.setStr("description", 255, &g.Description); err != nil {
			return err
		}
		if v, ok, err := a.boolean("stateful"); err != nil {
			return err
		} else if ok && v != g.Stateful {
			var used int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_port_security_groups WHERE security_group_id = $1`, id).Scan(&used); err != nil {
				return err
			}
			if used > 0 {
				return conflict("SecurityGroupInUse", "Security Group %s in use.", id)
			}
			g.Stateful = v
		}
		g.Revision++
		g.UpdatedAt = s.nowUTC()
		_, err = tx.ExecContext(ctx, `UPDATE net_security_groups SET name = $1, description = $2, stateful = $3,
			revision_number = $4, updated_at = $5 WHERE id = $6`, g.Name, g.Description, g.Stateful, g.Revision, db.FormatTime(g.UpdatedAt), id)
		out = g
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"security_group": renderSG(out)}), nil
}

func (s *Service) deleteSG(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		g, err := loadSG(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.sgAccess(c, g, "delete_security_group"); err != nil {
			return err
		}
		if err := ifMatch(r, g.Revision); err != nil {
			return err
		}
		var isDefault int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_default_security_groups WHERE security_group_id = $1`, id).Scan(&isDefault); err != nil {
			return err
		}
		if isDefault > 0 {
			return conflict("SecurityGroupCannotRemoveDefault", "Removing default security group not allowed.")
		}
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_port_security_groups WHERE security_group_id = $1`, id).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return conflict("SecurityGroupInUse", "Security Group %s in use.", id)
		}
		for _, q := range []string{
			`DELETE FROM net_security_group_rules WHERE remote_group_id = $1 OR security_group_id = $1`,
			`DELETE FROM net_tags WHERE resource_type = 'security_group' AND resource_id = $1`,
			`DELETE FROM net_security_groups WHERE id = $1`,
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

// resolveSecurityGroups decides a port's groups: the requested ones
// (which must exist and belong to the port's project), none when port
// security is off or the port belongs to a network service, else the
// project's default group.
func (tx *txn) resolveSecurityGroups(ctx context.Context, c *caller, p *Port, req *portReq) error {
	if !p.PortSecurity {
		if req.sgsSet && len(req.sgs) > 0 {
			return badRequest("PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
		}
		p.SecurityGroups = nil
		return nil
	}
	if req.sgsSet {
		for _, id := range req.sgs {
			var owner string
			err := tx.QueryRowContext(ctx, `SELECT project_id FROM net_security_groups WHERE id = $1`, id).Scan(&owner)
			if err == sql.ErrNoRows || err == nil && owner != p.ProjectID && !c.admin {
				return sgNotFound(id)
			}
			if err != nil {
				return err
			}
		}
		p.SecurityGroups = slices.Clone(req.sgs)
		slices.Sort(p.SecurityGroups)
		return nil
	}
	if len(p.SecurityGroups) > 0 {
		return nil
	}
	if strings.HasPrefix(p.DeviceOwner, "network:") {
		return nil
	}
	id, err := tx.defaultSGID(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	p.SecurityGroups = []string{id}
	return nil
}

// protocolNumbers are the protocol names Neutron accepts.
var protocolNumbers = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43,
	"ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

var portProtocols = []string{"tcp", "udp", "udplite", "sctp", "dccp", "6", "17", "136", "132", "33"}

var rulePostAttrs = []string{"security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
	"remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id", "tenant_id"}

// parseRule validates a rule request (not its references).
func parseRule(c *caller, a attrs) (*SGRule, error) {
	if err := a.checkKeys("POST", rulePostAttrs, []string{"id", "revision_number", "created_at", "updated_at", "normalized_cidr"}); err != nil {
		return nil, err
	}
	r := &SGRule{ID: newID(), Ethertype: "IPv4"}
	var err error
	var ok bool
	if r.SecurityGroupID, ok, err = a.uuid("security_group_id"); err != nil {
		return nil, err
	} else if !ok {
		return nil, badInput("Failed to parse request. Required attribute 'security_group_id' not specified")
	}
	if r.ProjectID, err = a.project(""); err != nil {
		return nil, err
	}
	if r.Direction, ok, err = a.str("direction", 0); err != nil {
		return nil, err
	} else if !ok {
		return nil, badInput("Failed to parse request. Required attribute 'direction' not specified")
	}
	if r.Direction != "ingress" && r.Direction != "egress" {
		return nil, invalidAttr("direction", "'%s' is not in ['ingress', 'egress']", r.Direction)
	}
	if et, valid, _, err := a.nullableStr("ethertype"); err != nil {
		return nil, err
	} else if valid {
		switch strings.ToLower(et) {
		case "ipv4":
			r.Ethertype = "IPv4"
		case "ipv6":
			r.Ethertype = "IPv6"
		default:
			return nil, badRequest("SecurityGroupRuleInvalidEtherType", "Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4', 'IPv6'].", et)
		}
	}
	if r.Description, _, err = a.str("description", 255); err != nil {
		return nil, err
	}
	// Protocol: a name, a number 0-255, or null/"any" for every protocol.
	if v, present := a["protocol"]; present && v != nil {
		var p string
		switch x := v.(type) {
		case string:
			p = strings.ToLower(x)
		default:
			p = render(v)
		}
		if p != "" && p != "any" {
			if _, ok := protocolNumbers[p]; !ok {
				n, err := strconv.Atoi(p)
				if err != nil || n < 0 || n > 255 {
					return nil, badRequest("SecurityGroupRuleInvalidProtocol", "Security group rule protocol %s not supported. Only protocol values %s and integer representations [0 to 255] are supported.", p, protocolNames())
				}
			}
			r.Protocol = p
		}
	}
	if r.Ethertype == "IPv4" && (r.Protocol == "icmpv6" || r.Protocol == "ipv6-icmp" || r.Protocol == "58") {
		return nil, badRequest("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", r.Ethertype, r.Protocol)
	}
	pmin, minOK, _, err := a.integer("port_range_min", -1<<31, 1<<31, true)
	if err != nil {
		return nil, err
	}
	pmax, maxOK, _, err := a.integer("port_range_max", -1<<31, 1<<31, true)
	if err != nil {
		return nil, err
	}
	switch {
	case slices.Contains(portProtocols, r.Protocol):
		if minOK && !maxOK {
			pmax, maxOK = pmin, true
		}
		if maxOK && !minOK {
			pmin, minOK = pmax, true
		}
		if minOK {
			for _, v := range []int64{pmin, pmax} {
				if v < 1 || v > 65535 {
					return nil, badRequest("SecurityGroupInvalidPortValue", "Invalid value for port %d.", v)
				}
			}
			if pmin > pmax {
				return nil, badRequest("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
			}
			// 1-65535 is every port: Neutron stores it as no range.
			if pmin == 1 && pmax == 65535 {
				minOK, maxOK = false, false
			}
		}
	case r.Protocol == "icmp" || r.Protocol == "icmpv6" || r.Protocol == "ipv6-icmp" || r.Protocol == "1" || r.Protocol == "58":
		if maxOK && !minOK {
			return nil, badRequest("SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", pmax)
		}
		if minOK && (pmin < 0 || pmin > 255) {
			return nil, badRequest("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP port_range_min(type): %d. It must be 0 to 255.", pmin)
		}
		if maxOK && (pmax < 0 || pmax > 255) {
			return nil, badRequest("SecurityGroupInvalidIcmpValue", "Invalid value for ICMP port_range_max(code): %d. It must be 0 to 255.", pmax)
		}
	default:
		if minOK || maxOK {
			return nil, badRequest("SecurityGroupInvalidProtocolForPortRange", "Invalid protocol %s for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP protocols.", r.Protocol)
		}
	}
	r.PortMin = sql.NullInt64{Int64: pmin, Valid: minOK}
	r.PortMax = sql.NullInt64{Int64: pmax, Valid: maxOK}
	if v, valid, _, err := a.nullableStr("remote_ip_prefix"); err != nil {
		return nil, err
	} else if valid {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			ip, err2 := netip.ParseAddr(v)
			if err2 != nil {
				return nil, invalidAttr("remote_ip_prefix", "'%s' is not a valid IP subnet", v)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if p.Addr().Is4() != (r.Ethertype == "IPv4") {
			return nil, badRequest("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", r.Ethertype, v)
		}
		r.RemoteIPPrefix = p.String()
	}
	if v, valid, _, err := a.nullableStr("remote_group_id"); err != nil {
		return nil, err
	} else if valid {
		if !isUUID(v) {
			return nil, invalidAttr("remote_group_id", "'%s' is not a valid UUID", v)
		}
		r.RemoteGroupID = v
	}
	if v, valid, _, err := a.nullableStr("remote_address_group_id"); err != nil {
		return nil, err
	} else if valid {
		if !isUUID(v) {
			return nil, invalidAttr("remote_address_group_id", "'%s' is not a valid UUID", v)
		}
		r.RemoteAddressGroupID = v
	}
	if r.RemoteAddressGroupID != "" && (r.RemoteGroupID != "" || r.RemoteIPPrefix != "") {
		return nil, badRequest("SecurityGroupMultipleRemoteEntites", "Only one of remote_ip_prefix, remote_group_id or remote_address_group_id may be provided.")
	}
	if r.RemoteGroupID != "" && r.RemoteIPPrefix != "" {
		return nil, badRequest("SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
	}
	_ = c
	return r, nil
}

func protocolNames() string {
	names := make([]string, 0, len(protocolNumbers))
	for n := range protocolNumbers {
		names = append(names, n)
	}
	slices.Sort(names)
	return "[" + strings.Join(names, ", ") + "]"
}

func (s *Service) createRules(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "security_group_rule", "security_group_rules", true)
	if err != nil {
		return nil, err
	}
	rules := make([]*SGRule, len(objs))
	for i, a := range objs {
		if rules[i], err = parseRule(c, a); err != nil {
			return nil, err
		}
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		seen := map[string]string{}
		for _, rule := range rules {
			g, err := scanSG(tx.QueryRowContext(ctx, "SELECT "+sgCols+" FROM net_security_groups g WHERE g.id = $1"+s.db.ForUpdate(), rule.SecurityGroupID))
			if err == sql.ErrNoRows {
				return sgNotFound(rule.SecurityGroupID)
			}
			if err != nil {
				return err
			}
			if !c.admin && g.ProjectID != c.ProjectID {
				return sgNotFound(g.ID)
			}
			if rule.ProjectID == "" {
				rule.ProjectID = g.ProjectID
			}
			if err := s.authorize(c, "create_security_group_rule", ownerTarget(g.ProjectID)); err != nil {
				return err
			}
			if rule.RemoteGroupID != "" && rule.RemoteGroupID != g.ID {
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_security_groups WHERE id = $1`, rule.RemoteGroupID).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					return sgNotFound(rule.RemoteGroupID)
				}
			}
			if rule.RemoteAddressGroupID != "" {
				var owner string
				err := tx.QueryRowContext(ctx, `SELECT project_id FROM net_address_groups WHERE id = $1`, rule.RemoteAddressGroupID).Scan(&owner)
				if err == sql.ErrNoRows || err == nil && !c.admin && owner != g.ProjectID {
					return agNotFound(rule.RemoteAddressGroupID)
				}
				if err != nil {
					return err
				}
			}
			fp := rule.fingerprint()
			if _, dup := seen[rule.SecurityGroupID+fp]; dup {
				return badRequest("DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST.")
			}
			seen[rule.SecurityGroupID+fp] = rule.ID
			var existing string
			err = tx.QueryRowContext(ctx, `SELECT id FROM net_security_group_rules WHERE security_group_id = $1 AND fingerprint = $2`,
				rule.SecurityGroupID, fp).Scan(&existing)
			if err == nil {
				return conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", existing)
			}
			if err != sql.ErrNoRows {
				return err
			}
			if err := tx.checkQuota(ctx, "security_group_rule", rule.ProjectID, 1); err != nil {
				return err
			}
			if err := tx.insertRule(ctx, rule); err != nil {
				return err
			}
			if err := tx.bump(ctx, "net_security_groups", g.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "security_group_rules", "security_group_rule", rules, renderRule), nil
}

func (s *Service) listRules(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := ruleDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		p := lq.b.arg(c.ProjectID)
		lq.b.add("(r.project_id = " + p + " OR r.security_group_id IN (SELECT id FROM net_security_groups WHERE project_id = " + p + "))")
	}
	rules, more, err := listRows(r.Context(), s.db.Reader(), ruleDef, lq, ruleCols, func(rows *sql.Rows) (*SGRule, error) { return scanRule(rows) })
	if err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(rules))
	for i, rule := range rules {
		items[i] = selectFields(renderRule(rule), lq.fields)
	}
	return s.listResponse(r, lq, "security_group_rules", items, more), nil
}

func (s *Service) loadRuleFor(ctx context.Context, q db.Querier, c *caller, id, forUpdate string) (*SGRule, string, error) {
	rule, err := scanRule(q.QueryRowContext(ctx, "SELECT "+ruleCols+" FROM net_security_group_rules r WHERE r.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, "", notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	}
	if err != nil {
		return nil, "", err
	}
	var owner string
	_ = q.QueryRowContext(ctx, `SELECT project_id FROM net_security_groups WHERE id = $1`, rule.SecurityGroupID).Scan(&owner)
	if !c.admin && rule.ProjectID != c.ProjectID && owner != c.ProjectID {
		return nil, "", notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	}
	return rule, owner, nil
}

func (s *Service) showRule(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	rule, owner, err := s.loadRuleFor(r.Context(), s.db.Reader(), c, r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, "get_security_group_rule", ownerTarget(owner)); err != nil {
		return nil, notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", rule.ID)
	}
	return apiutil.JSON(200, map[string]any{"security_group_rule": selectFields(renderRule(rule), showFields(r))}), nil
}

func (s *Service) deleteRule(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		rule, owner, err := s.loadRuleFor(ctx, tx, c, r.PathValue("id"), s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.authorize(c, "delete_security_group_rule", ownerTarget(owner)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM net_security_group_rules WHERE id = $1`, rule.ID); err != nil {
			return err
		}
		return tx.bump(ctx, "net_security_groups", rule.SecurityGroupID)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
