package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Network is a row of net_networks with its subnets and tags.
type Network struct {
	ID, ProjectID, Name, Description, Status  string
	AdminStateUp, Shared, External, IsDefault bool
	PortSecurity                              bool
	MTU                                       int
	Segment                                   Segment
	DNSDomain                                 string
	AZHints                                   []string
	Revision                                  int64
	CreatedAt, UpdatedAt                      time.Time
	Subnets, Tags                             []string
	// AddressScopes are the address scopes of the network's IPv4 and IPv6
	// subnets ([0] and [1]): the one scope all subnets of that version
	// share through their subnet pools, else "".
	AddressScopes [2]string
}

const networkCols = `n.id, n.project_id, n.name, n.description, n.admin_state_up, n.status, n.shared, n.external,
	n.is_default, n.mtu, n.port_security_enabled, n.network_type, n.physical_network, n.segmentation_id,
	n.dns_domain, n.az_hints, n.revision_number, n.created_at, n.updated_at`

func scanNetwork(row interface{ Scan(...any) error }) (*Network, error) {
	n := &Network{}
	var phys sql.NullString
	var seg sql.NullInt64
	var hints string
	var created, updated sql.NullString
	if err := row.Scan(&n.ID, &n.ProjectID, &n.Name, &n.Description, &n.AdminStateUp, &n.Status, &n.Shared, &n.External,
		&n.IsDefault, &n.MTU, &n.PortSecurity, &n.Segment.NetworkType, &phys, &seg, &n.DNSDomain, &hints,
		&n.Revision, &created, &updated); err != nil {
		return nil, err
	}
	n.Segment.PhysicalNetwork = phys.String
	n.Segment.SegmentationID = int(seg.Int64)
	_ = json.Unmarshal([]byte(hints), &n.AZHints)
	n.CreatedAt, n.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return n, nil
}

var networkDef = &listDef{
	resource: "network", collection: "networks", notFound: "NetworkNotFound", table: "net_networks", alias: "n",
	cols: map[string]column{
		"id": {expr: "n.id"}, "name": {expr: "n.name"}, "description": {expr: "n.description"},
		"project_id": {expr: "n.project_id"}, "tenant_id": {expr: "n.project_id"},
		"admin_state_up": {expr: "n.admin_state_up", kind: kBool}, "status": {expr: "n.status"},
		"shared": {expr: "n.shared", kind: kBool}, "router:external": {expr: "n.external", kind: kBool},
		"is_default": {expr: "n.is_default", kind: kBool}, "mtu": {expr: "n.mtu", kind: kInt},
		"port_security_enabled":     {expr: "n.port_security_enabled", kind: kBool},
		"provider:network_type":     {expr: "n.network_type"},
		"provider:physical_network": {expr: "n.physical_network", nullable: true},
		"provider:segmentation_id":  {expr: "n.segmentation_id", kind: kInt, nullable: true},
		"dns_domain":                {expr: "n.dns_domain"},
		"revision_number":           {expr: "n.revision_number", kind: kInt},
		"created_at":                {expr: "n.created_at"}, "updated_at": {expr: "n.updated_at"},
	},
	special: map[string]func(b *qb, vals []string) error{
		"subnets": func(b *qb, vals []string) error {
			b.add("n.id IN (SELECT network_id FROM net_subnets WHERE id IN (" + b.in(anys(vals)) + "))")
			return nil
		},
	},
	attrs: []string{"availability_zone_hints", "availability_zones", "ipv4_address_scope", "ipv6_address_scope", "l2_adjacency", "tags", "subnets"},
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// networkVisible: own networks, shared ones and external ones.
func networkVisible(c *caller, n *Network) bool {
	return c.admin || n.ProjectID == c.ProjectID || n.Shared || n.External
}

func (s *Service) renderNetwork(c *caller, n *Network) map[string]any {
	m := map[string]any{
		"id": n.ID, "name": n.Name, "description": n.Description,
		"project_id": n.ProjectID, "tenant_id": n.ProjectID,
		"admin_state_up": n.AdminStateUp, "status": n.Status, "shared": n.Shared,
		"router:external": n.External, "is_default": n.IsDefault, "mtu": n.MTU,
		"port_security_enabled": n.PortSecurity, "subnets": nonNil(n.Subnets), "tags": nonNil(n.Tags),
		"availability_zone_hints": nonNil(n.AZHints), "availability_zones": []string{},
		"ipv4_address_scope": nilIfEmpty(n.AddressScopes[0]), "ipv6_address_scope": nilIfEmpty(n.AddressScopes[1]), "l2_adjacency": true,
		"dns_domain":      n.DNSDomain,
		"revision_number": n.Revision, "created_at": stamp(n.CreatedAt), "updated_at": stamp(n.UpdatedAt),
	}
	if s.can(c, "get_network:provider:network_type", ownerTarget(n.ProjectID)) {
		m["provider:network_type"] = n.Segment.NetworkType
		m["provider:physical_network"] = nilIfEmpty(n.Segment.PhysicalNetwork)
		if n.Segment.SegmentationID != 0 || n.Segment.NetworkType == "vlan" || n.Segment.NetworkType == "vxlan" {
			m["provider:segmentation_id"] = n.Segment.SegmentationID
		} else {
			m["provider:segmentation_id"] = nil
		}
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// loadNetwork reads one network with its subnets and tags; 404 if missing.
func loadNetwork(ctx context.Context, q db.Querier, id string, forUpdate string) (*Network, error) {
	n, err := scanNetwork(q.QueryRowContext(ctx, "SELECT "+networkCols+" FROM net_networks n WHERE n.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, networkNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if err := fillNetworks(ctx, q, []*Network{n}); err != nil {
		return nil, err
	}
	return n, nil
}

// fillNetworks loads the subnets and tags of networks in batches.
func fillNetworks(ctx context.Context, q db.Querier, nets []*Network) error {
	if len(nets) == 0 {
		return nil
	}
	byID := make(map[string]*Network, len(nets))
	ids := make([]string, len(nets))
	for i, n := range nets {
		byID[n.ID] = n
		ids[i] = n.ID
	}
	scopes := map[string]*[2][]string{} // network → scope of each subnet, per version
	err := inChunks(ids, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, `SELECT s.network_id, s.id, s.ip_version, sp.address_scope_id FROM net_subnets s
			LEFT JOIN net_subnetpools sp ON sp.id = s.subnetpool_id
			WHERE s.network_id IN (`+db.Placeholders(1, len(chunk))+`) ORDER BY s.created_at, s.id`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var nid, sid string
			var ver int
			var scope sql.NullString
			if err := rows.Scan(&nid, &sid, &ver, &scope); err != nil {
				return err
			}
			byID[nid].Subnets = append(byID[nid].Subnets, sid)
			if scopes[nid] == nil {
				scopes[nid] = &[2][]string{}
			}
			i := ver / 6 // 4 → 0, 6 → 1
			scopes[nid][i] = append(scopes[nid][i], scope.String)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for nid, sc := range scopes {
		for i, list := range sc {
			if len(list) > 0 && len(slices.Compact(slices.Clone(list))) == 1 {
				byID[nid].AddressScopes[i] = list[0]
			}
		}
	}
	return loadTags(ctx, q, "network", ids, func(id string, tags []string) { byID[id].Tags = tags })
}

// inChunks calls fn with the ids in slices small enough for one IN list.
func inChunks(ids []string, fn func(chunk []any) error) error {
	const size = 500
	for i := 0; i < len(ids); i += size {
		end := min(i+size, len(ids))
		if err := fn(anys(ids[i:end])); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) listNetworks(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := networkDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("(n.project_id = " + lq.b.arg(c.ProjectID) + " OR n.shared OR n.external)")
	}
	ctx := r.Context()
	q := s.db.Reader()
	nets, more, err := listRows(ctx, q, networkDef, lq, networkCols, func(rows *sql.Rows) (*Network, error) { return scanNetwork(rows) })
	if err != nil {
		return nil, err
	}
	if err := fillNetworks(ctx, q, nets); err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(nets))
	for i, n := range nets {
		items[i] = selectFields(s.renderNetwork(c, n), lq.fields)
	}
	return s.listResponse(r, lq, "networks", items, more), nil
}

// listResponse renders {"<collection>": [...], "<collection>_links": [...]}.
func (s *Service) listResponse(r *http.Request, lq *listQuery, collection string, items []map[string]any, more bool) *apiutil.Response {
	var first, last string
	if len(items) > 0 {
		first, _ = items[0]["id"].(string)
		last, _ = items[len(items)-1]["id"].(string)
	}
	return s.listResponseOf(r, lq, collection, items, len(items), first, last, more)
}

// listResponseOf is listResponse for a list of n typed views whose first and
// last ids are given (for the pagination links).
func (s *Service) listResponseOf(r *http.Request, lq *listQuery, collection string, items any, n int, first, last string, more bool) *apiutil.Response {
	body := map[string]any{collection: items}
	if lq.limit > 0 && n > 0 {
		if links := pageLinks(r, strings.TrimSuffix(s.base(r), prefix), lq, first, last, more); len(links) > 0 {
			body[collection+"_links"] = links
		}
	}
	return apiutil.JSON(200, body)
}

// showFields reads fields= for show requests.
func showFields(r *http.Request) []string {
	var out []string
	for _, f := range r.URL.Query()["fields"] {
		for _, x := range strings.Split(f, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func (s *Service) showNetwork(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	n, err := loadNetwork(r.Context(), s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if !networkVisible(c, n) {
		return nil, networkNotFound(n.ID)
	}
	if !n.Shared && !n.External {
		if err := s.authorize(c, "get_network", ownerTarget(n.ProjectID)); err != nil {
			return nil, networkNotFound(n.ID)
		}
	}
	return apiutil.JSON(200, map[string]any{"network": selectFields(s.renderNetwork(c, n), showFields(r))}), nil
}

var networkPostAttrs = []string{"name", "description", "admin_state_up", "shared", "router:external", "is_default",
	"port_security_enabled", "mtu", "provider:network_type", "provider:physical_network", "provider:segmentation_id",
	"dns_domain", "availability_zone_hints", "project_id", "tenant_id", "tags"}
var networkPutAttrs = []string{"name", "description", "admin_state_up", "shared", "router:external", "is_default",
	"port_security_enabled", "mtu", "dns_domain", "provider:network_type", "provider:physical_network", "provider:segmentation_id"}
var networkKnownAttrs = []string{"id", "status", "subnets", "revision_number", "created_at", "updated_at",
	"availability_zones", "l2_adjacency", "ipv4_address_scope", "ipv6_address_scope"}

// networkReq is a validated create request.
type networkReq struct {
	n        Network
	provider bool
	mtuSet   bool
	tags     []string
}

func (s *Service) parseNetworkCreate(c *caller, a attrs) (*networkReq, error) {
	if err := a.checkKeys("POST", networkPostAttrs, networkKnownAttrs); err != nil {
		return nil, err
	}
	req := &networkReq{n: Network{AdminStateUp: true, PortSecurity: true, Status: "ACTIVE"}}
	n := &req.n
	var err error
	if n.ProjectID, err = a.project(c.ProjectID); err != nil {
		return nil, err
	}
	if n.ProjectID == "" {
		return nil, badInput("Failed to create network: project_id is required")
	}
	if err := s.authorize(c, "create_network", ownerTarget(n.ProjectID)); err != nil {
		return nil, err
	}
	if n.Name, _, err = a.str("name", 255); err != nil {
		return nil, err
	}
	if n.Description, _, err = a.str("description", 255); err != nil {
		return nil, err
	}
	if n.DNSDomain, _, err = a.str("dns_domain", 255); err != nil {
		return nil, err
	}
	flags := []struct {
		name string
		dst  *bool
		def  bool
	}{{"admin_state_up", &n.AdminStateUp, true}, {"shared", &n.Shared, false}, {"router:external", &n.External, false},
		{"is_default", &n.IsDefault, false}, {"port_security_enabled", &n.PortSecurity, true}}
	for _, f := range flags {
		v, ok, err := a.boolean(f.name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		*f.dst = v
		if v != f.def {
			if err := s.authorize(c, "create_network:"+f.name, ownerTarget(n.ProjectID)); err != nil {
				return nil, err
			}
		}
	}
	if n.AZHints, _, err = a.strList("availability_zone_hints"); err != nil {
		return nil, err
	}
	for _, z := range n.AZHints {
		if z != s.cfg.AvailabilityZone {
			return nil, notFound("AvailabilityZoneNotFound", "AvailabilityZone %s could not be found.", z)
		}
	}
	mtu, ok, _, err := a.integer("mtu", 68, 65535, false)
	if err != nil {
		return nil, err
	}
	if ok {
		n.MTU, req.mtuSet = int(mtu), true
	}
	if req.tags, _, err = a.strList("tags"); err != nil {
		return nil, err
	}
	if err := validateTags(req.tags); err != nil {
		return nil, err
	}
	// Provider attributes.
	nt, okT, err := a.str("provider:network_type", 255)
	if err != nil {
		return nil, err
	}
	pn, pnValid, okP, err := a.nullableStr("provider:physical_network")
	if err != nil {
		return nil, err
	}
	sid, sidValid, okS, err := a.integer("provider:segmentation_id", 0, 1<<24-1, true)
	if err != nil {
		return nil, err
	}
	if okT || okP || okS {
		for _, k := range []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"} {
			if a.has(k) {
				if err := s.authorize(c, "create_network:"+k, ownerTarget(n.ProjectID)); err != nil {
					return nil, err
				}
			}
		}
		if !okT || nt == "" {
			return nil, invalidInput("network_type required")
		}
		td := s.backend.types[nt]
		if td == nil {
			return nil, invalidInput("network_type value '%s' not supported", nt)
		}
		n.Segment = Segment{NetworkType: nt}
		if pnValid {
			n.Segment.PhysicalNetwork = pn
		}
		if sidValid {
			n.Segment.SegmentationID = int(sid)
		}
		if err := td.Validate(&n.Segment); err != nil {
			return nil, err
		}
		req.provider = true
	}
	return req, nil
}

func (s *Service) createNetworks(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "network", "networks", true)
	if err != nil {
		return nil, err
	}
	reqs := make([]*networkReq, len(objs))
	for i, a := range objs {
		if reqs[i], err = s.parseNetworkCreate(c, a); err != nil {
			return nil, err
		}
	}
	ctx := r.Context()
	var created []*Network
	err = s.withTx(ctx, func(tx *txn) error {
		created = created[:0]
		for _, req := range reqs {
			n, err := tx.createNetwork(ctx, req)
			if err != nil {
				return err
			}
			created = append(created, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "networks", "network", created, func(n *Network) map[string]any { return s.renderNetwork(c, n) }), nil
}

// createNetwork allocates the segment and inserts the network.
func (tx *txn) createNetwork(ctx context.Context, req *networkReq) (*Network, error) {
	s := tx.s
	n := req.n
	if err := tx.checkQuota(ctx, "network", n.ProjectID, 1); err != nil {
		return nil, err
	}
	n.ID = newID()
	var err error
	if req.provider {
		err = tx.reserveSegment(ctx, &n.Segment)
	} else {
		n.Segment, err = tx.allocateTenantSegment(ctx)
	}
	if err != nil {
		return nil, err
	}
	maxMTU := s.backend.types[n.Segment.NetworkType].MTU(n.Segment, s.backend.physMTU)
	if req.mtuSet {
		if n.MTU > maxMTU {
			return nil, invalidInput("Requested MTU is too big, maximum is %d", maxMTU)
		}
	} else {
		n.MTU = maxMTU
	}
	now := s.nowUTC()
	n.CreatedAt, n.UpdatedAt, n.Revision = now, now, 1
	_, err = tx.ExecContext(ctx, `INSERT INTO net_networks (id, project_id, name, description, admin_state_up, status, shared,
		external, is_default, mtu, port_security_enabled, network_type, physical_network, segmentation_id, dns_domain,
		az_hints, revision_number, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		n.ID, n.ProjectID, n.Name, n.Description, n.AdminStateUp, n.Status, n.Shared, n.External, n.IsDefault, n.MTU,
		n.PortSecurity, n.Segment.NetworkType, nullStr(n.Segment.PhysicalNetwork, n.Segment.PhysicalNetwork != ""),
		sql.NullInt64{Int64: int64(n.Segment.SegmentationID), Valid: n.Segment.SegmentationID != 0},
		n.DNSDomain, jsonText(nonNil(n.AZHints)), n.Revision, db.FormatTime(now), db.FormatTime(now))
	if err != nil {
		return nil, err
	}
	if tx.s.backend.types[n.Segment.NetworkType].Allocated() {
		if err := tx.insertSegment(ctx, n.Segment, n.ID); err != nil {
			return nil, err
		}
	}
	if len(req.tags) > 0 {
		if err := tx.setTags(ctx, "network", n.ID, req.tags); err != nil {
			return nil, err
		}
		n.Tags = sortedTags(req.tags)
	}
	return &n, nil
}

func (s *Service) updateNetwork(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "network", "networks", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", networkPutAttrs, append(networkKnownAttrs, networkPostAttrs...)); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *Network
	err = s.withTx(ctx, func(tx *txn) error {
		n, err := loadNetwork(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if !networkVisible(c, n) {
			return networkNotFound(id)
		}
		if err := s.authorize(c, "update_network", ownerTarget(n.ProjectID)); err != nil {
			return err
		}
		if err := ifMatch(r, n.Revision); err != nil {
			return err
		}
		for _, k := range []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"} {
			if a.has(k) {
				if err := s.authorize(c, "update_network:"+k, ownerTarget(n.ProjectID)); err != nil {
					return err
				}
			}
		}
		if a.has("provider:network_type") || a.has("provider:physical_network") || a.has("provider:segmentation_id") {
			return invalidInput("Plugin does not support updating provider attributes")
		}
		if err := a.setStr("name", 255, &n.Name); err != nil {
			return err
		}
		if err := a.setStr("description", 255, &n.Description); err != nil {
			return err
		}
		if err := a.setStr("dns_domain", 255, &n.DNSDomain); err != nil {
			return err
		}
		wasShared, wasExternal := n.Shared, n.External
		for _, f := range []struct {
			name string
			dst  *bool
		}{{"admin_state_up", &n.AdminStateUp}, {"shared", &n.Shared}, {"router:external", &n.External},
			{"is_default", &n.IsDefault}, {"port_security_enabled", &n.PortSecurity}} {
			v, ok, err := a.boolean(f.name)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := s.authorize(c, "update_network:"+f.name, ownerTarget(n.ProjectID)); err != nil {
				return err
			}
			*f.dst = v
		}
		if mtu, ok, _, err := a.integer("mtu", 68, 65535, false); err != nil {
			return err
		} else if ok {
			maxMTU := s.backend.types[n.Segment.NetworkType].MTU(n.Segment, s.backend.physMTU)
			if int(mtu) > maxMTU {
				return invalidInput("Requested MTU is too big, maximum is %d", maxMTU)
			}
			n.MTU = int(mtu)
		}
		if wasShared && !n.Shared {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND project_id <> $2
				AND device_owner NOT LIKE 'network:%'`, id, n.ProjectID).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_subnets WHERE network_id = $1 AND project_id <> $2`, id, n.ProjectID).Scan(&others)
				if err != nil {
					return err
				}
			}
			if others > 0 {
				return conflict("InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", id)
			}
		}
		if wasExternal && !n.External {
			var gw int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND device_owner IN ('network:router_gateway', 'network:floatingip')`, id).Scan(&gw); err != nil {
				return err
			}
			if gw > 0 {
				return conflict("ExternalNetworkInUse", "External network %s cannot be updated to be made non-external, since it has existing gateway ports.", id)
			}
		}
		n.UpdatedAt = s.nowUTC()
		n.Revision++
		_, err = tx.ExecContext(ctx, `UPDATE net_networks SET name = $1, description = $2, admin_state_up = $3, shared = $4,
			external = $5, is_default = $6, port_security_enabled = $7, mtu = $8, dns_domain = $9, revision_number = $10,
			updated_at = $11 WHERE id = $12`, n.Name, n.Description, n.AdminStateUp, n.Shared, n.External, n.IsDefault,
			n.PortSecurity, n.MTU, n.DNSDomain, n.Revision, db.FormatTime(n.UpdatedAt), id)
		out = n
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"network": s.renderNetwork(c, out)}), nil
}

func (s *Service) deleteNetwork(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		n, err := loadNetwork(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if !networkVisible(c, n) {
			return networkNotFound(id)
		}
		if err := s.authorize(c, "delete_network", ownerTarget(n.ProjectID)); err != nil {
			return err
		}
		if err := ifMatch(r, n.Revision); err != nil {
			return err
		}
		var ports int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND device_owner <> 'network:dhcp'`, id).Scan(&ports); err != nil {
			return err
		}
		if ports > 0 {
			return conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", id)
		}
		for _, q := range []string{
			`DELETE FROM net_ports WHERE network_id = $1`,
			`DELETE FROM net_ip_allocations WHERE network_id = $1`,
			`DELETE FROM net_tags WHERE resource_type = 'subnet' AND resource_id IN (SELECT id FROM net_subnets WHERE network_id = $1)`,
			`DELETE FROM net_subnets WHERE network_id = $1`,
			`DELETE FROM net_segment_allocations WHERE network_id = $1`,
			`DELETE FROM net_tags WHERE resource_type = 'network' AND resource_id = $1`,
			`DELETE FROM net_networks WHERE id = $1`,
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

// networkForPort loads a network a caller wants to attach something to:
// their own, a shared one, or (admins) any.
func (s *Service) usableNetwork(ctx context.Context, q db.Querier, c *caller, id string) (*Network, error) {
	n, err := loadNetwork(ctx, q, id, "")
	if err != nil {
		return nil, err
	}
	if !c.admin && n.ProjectID != c.ProjectID && !n.Shared {
		if n.External {
			return nil, policyDenied("create_port")
		}
		return nil, networkNotFound(id)
	}
	return n, nil
}

var _ = slices.Contains[[]string]
