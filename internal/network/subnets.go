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

// Subnet is a row of net_subnets.
type Subnet struct {
	ID, ProjectID, NetworkID, Name, Description string
	IPVersion                                   int
	CIDR                                        netip.Prefix
	Gateway                                     netip.Addr // invalid: no gateway
	EnableDHCP, DNSPublishFixedIP               bool
	RAMode, AddressMode                         string // "" for null
	SubnetPoolID, SegmentID                     string // "" for null
	Pools                                       []ipRange
	DNSNameservers                              []string
	HostRoutes                                  []hostRoute
	ServiceTypes                                []string // device owners the subnet is for; none: any
	Revision                                    int64
	CreatedAt, UpdatedAt                        time.Time
	Tags                                        []string
}

type hostRoute struct {
	Destination string `json:"destination"`
	Nexthop     string `json:"nexthop"`
}

type poolJSON struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

const subnetCols = `s.id, s.project_id, s.network_id, s.name, s.description, s.ip_version, s.cidr, s.gateway_ip, s.enable_dhcp,
	s.ipv6_ra_mode, s.ipv6_address_mode, s.subnetpool_id, s.segment_id, s.allocation_pools, s.dns_nameservers, s.host_routes,
	s.dns_publish_fixed_ip, s.revision_number, s.created_at, s.updated_at, s.service_types`

func scanSubnet(row interface{ Scan(...any) error }) (*Subnet, error) {
	sn := &Subnet{}
	var cidr, pools, dns, routes, stypes string
	var gw, ra, am, pool, seg, created, updated sql.NullString
	if err := row.Scan(&sn.ID, &sn.ProjectID, &sn.NetworkID, &sn.Name, &sn.Description, &sn.IPVersion, &cidr, &gw,
		&sn.EnableDHCP, &ra, &am, &pool, &seg, &pools, &dns, &routes, &sn.DNSPublishFixedIP, &sn.Revision, &created, &updated, &stypes); err != nil {
		return nil, err
	}
	sn.CIDR, _ = netip.ParsePrefix(cidr)
	if gw.Valid {
		sn.Gateway, _ = netip.ParseAddr(gw.String)
	}
	sn.RAMode, sn.AddressMode, sn.SubnetPoolID, sn.SegmentID = ra.String, am.String, pool.String, seg.String
	var pj []poolJSON
	_ = json.Unmarshal([]byte(pools), &pj)
	for _, p := range pj {
		a, err1 := netip.ParseAddr(p.Start)
		b, err2 := netip.ParseAddr(p.End)
		if err1 == nil && err2 == nil {
			sn.Pools = append(sn.Pools, ipRange{a, b})
		}
	}
	_ = json.Unmarshal([]byte(dns), &sn.DNSNameservers)
	_ = json.Unmarshal([]byte(routes), &sn.HostRoutes)
	_ = json.Unmarshal([]byte(stypes), &sn.ServiceTypes)
	sn.CreatedAt, sn.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return sn, nil
}

func poolsJSON(pools []ipRange) []poolJSON {
	out := make([]poolJSON, len(pools))
	for i, p := range pools {
		out[i] = poolJSON{p.Start.String(), p.End.String()}
	}
	return out
}

var subnetDef = &listDef{
	resource: "subnet", collection: "subnets", notFound: "SubnetNotFound", table: "net_subnets", alias: "s",
	cols: map[string]column{
		"id": {expr: "s.id"}, "name": {expr: "s.name"}, "description": {expr: "s.description"},
		"project_id": {expr: "s.project_id"}, "tenant_id": {expr: "s.project_id"}, "network_id": {expr: "s.network_id"},
		"ip_version": {expr: "s.ip_version", kind: kInt}, "cidr": {expr: "s.cidr"},
		"gateway_ip":           {expr: "s.gateway_ip", nullable: true},
		"enable_dhcp":          {expr: "s.enable_dhcp", kind: kBool},
		"ipv6_ra_mode":         {expr: "s.ipv6_ra_mode", nullable: true},
		"ipv6_address_mode":    {expr: "s.ipv6_address_mode", nullable: true},
		"subnetpool_id":        {expr: "s.subnetpool_id", nullable: true},
		"segment_id":           {expr: "s.segment_id", nullable: true},
		"dns_publish_fixed_ip": {expr: "s.dns_publish_fixed_ip", kind: kBool},
		"revision_number":      {expr: "s.revision_number", kind: kInt},
		"created_at":           {expr: "s.created_at"}, "updated_at": {expr: "s.updated_at"},
	},
	attrs: []string{"allocation_pools", "dns_nameservers", "host_routes", "service_types", "tags"},
}

func (s *Service) renderSubnet(c *caller, sn *Subnet) map[string]any {
	var gw any
	if sn.Gateway.IsValid() {
		gw = sn.Gateway.String()
	}
	routes := sn.HostRoutes
	if routes == nil {
		routes = []hostRoute{}
	}
	return map[string]any{
		"id": sn.ID, "name": sn.Name, "description": sn.Description,
		"project_id": sn.ProjectID, "tenant_id": sn.ProjectID, "network_id": sn.NetworkID,
		"ip_version": sn.IPVersion, "cidr": sn.CIDR.String(), "gateway_ip": gw, "enable_dhcp": sn.EnableDHCP,
		"ipv6_ra_mode": nilIfEmpty(sn.RAMode), "ipv6_address_mode": nilIfEmpty(sn.AddressMode),
		"subnetpool_id": nilIfEmpty(sn.SubnetPoolID), "segment_id": nilIfEmpty(sn.SegmentID),
		"allocation_pools": poolsJSON(sn.Pools), "dns_nameservers": nonNil(sn.DNSNameservers),
		"host_routes": routes, "service_types": nonNil(sn.ServiceTypes), "dns_publish_fixed_ip": sn.DNSPublishFixedIP,
		"tags": nonNil(sn.Tags), "revision_number": sn.Revision,
		"created_at": stamp(sn.CreatedAt), "updated_at": stamp(sn.UpdatedAt),
	}
}

func loadSubnet(ctx context.Context, q db.Querier, id, forUpdate string) (*Subnet, error) {
	sn, err := scanSubnet(q.QueryRowContext(ctx, "SELECT "+subnetCols+" FROM net_subnets s WHERE s.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, subnetNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	err = loadTags(ctx, q, "subnet", []string{id}, func(_ string, t []string) { sn.Tags = t })
	return sn, err
}

// networkSubnets lists the subnets of a network in creation order.
func networkSubnets(ctx context.Context, q db.Querier, networkID, forUpdate string) ([]*Subnet, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+subnetCols+" FROM net_subnets s WHERE s.network_id = $1 ORDER BY s.created_at, s.id"+forUpdate, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Subnet
	for rows.Next() {
		sn, err := scanSubnet(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// subnetVisible: own subnets and subnets of shared networks.
func (s *Service) subnetVisible(ctx context.Context, q db.Querier, c *caller, sn *Subnet) bool {
	if c.admin || sn.ProjectID == c.ProjectID {
		return true
	}
	var shared, owner int
	_ = q.QueryRowContext(ctx, `SELECT CASE WHEN shared THEN 1 ELSE 0 END, CASE WHEN project_id = $2 THEN 1 ELSE 0 END FROM net_networks WHERE id = $1`,
		sn.NetworkID, c.ProjectID).Scan(&shared, &owner)
	return shared == 1 || owner == 1
}

func (s *Service) listSubnets(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := subnetDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		p := lq.b.arg(c.ProjectID)
		lq.b.add("(s.project_id = " + p + " OR s.network_id IN (SELECT id FROM net_networks WHERE shared OR project_id = " + p + "))")
	}
	ctx := r.Context()
	q := s.db.Reader()
	subs, more, err := listRows(ctx, q, subnetDef, lq, subnetCols, func(rows *sql.Rows) (*Subnet, error) { return scanSubnet(rows) })
	if err != nil {
		return nil, err
	}
	byID := map[string]*Subnet{}
	ids := make([]string, len(subs))
	for i, sn := range subs {
		byID[sn.ID] = sn
		ids[i] = sn.ID
	}
	if err := loadTags(ctx, q, "subnet", ids, func(id string, t []string) { byID[id].Tags = t }); err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(subs))
	for i, sn := range subs {
		items[i] = selectFields(s.renderSubnet(c, sn), lq.fields)
	}
	return s.listResponse(r, lq, "subnets", items, more), nil
}

func (s *Service) showSubnet(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	sn, err := loadSubnet(ctx, s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	if !s.subnetVisible(ctx, s.db.Reader(), c, sn) {
		return nil, subnetNotFound(sn.ID)
	}
	return apiutil.JSON(200, map[string]any{"subnet": selectFields(s.renderSubnet(c, sn), showFields(r))}), nil
}

var subnetPostAttrs = []string{"name", "description", "network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp",
	"ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "use_default_subnetpool", "prefixlen", "allocation_pools",
	"dns_nameservers", "host_routes", "segment_id", "service_types", "dns_publish_fixed_ip", "project_id", "tenant_id", "tags"}
var subnetPutAttrs = []string{"name", "description", "gateway_ip", "enable_dhcp", "allocation_pools", "dns_nameservers",
	"host_routes", "service_types", "dns_publish_fixed_ip", "segment_id"}
var subnetKnownAttrs = []string{"id", "revision_number", "created_at", "updated_at"}

const (
	maxDNSNameservers = 5
	maxHostRoutes     = 20
)

var ipv6Modes = []string{"slaac", "dhcpv6-stateful", "dhcpv6-stateless"}

// subnetReq is a validated create request; the CIDR may still have to
// come from a subnet pool.
type subnetReq struct {
	sn         Subnet
	gwSet      bool // gateway_ip given (possibly null)
	poolsSet   bool
	prefixlen  int
	useDefault bool
	tags       []string
}

func parsePools(a attrs, name string) ([]ipRange, bool, error) {
	list, ok, err := a.objList(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	var out []ipRange
	for _, p := range list {
		if err := p.checkKeys("POST", []string{"start", "end"}, nil); err != nil {
			return nil, true, invalidAttr(name, "unrecognized keys in allocation pool")
		}
		st, ok1, err1 := p.str("start", 0)
		en, ok2, err2 := p.str("end", 0)
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			return nil, true, invalidAttr(name, "each pool needs start and end")
		}
		sa, err := parseIP(name, st)
		if err != nil {
			return nil, true, err
		}
		ea, err := parseIP(name, en)
		if err != nil {
			return nil, true, err
		}
		out = append(out, ipRange{sa, ea})
	}
	return out, true, nil
}

func parseDNS(a attrs, version int) ([]string, bool, error) {
	list, ok, err := a.strList("dns_nameservers")
	if err != nil || !ok {
		return nil, ok, err
	}
	if len(list) > maxDNSNameservers {
		return nil, true, badRequest("DNSNameServersExhausted", "Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.", "subnet", maxDNSNameservers)
	}
	out := make([]string, 0, len(list))
	for _, d := range list {
		ip, err := parseIP("dns_nameservers", d)
		if err != nil {
			return nil, true, err
		}
		if slices.Contains(out, ip.String()) {
			return nil, true, invalidAttr("dns_nameservers", "Duplicate nameserver '%s'", d)
		}
		out = append(out, ip.String())
	}
	return out, true, nil
}

func parseRoutes(a attrs) ([]hostRoute, bool, error) {
	list, ok, err := a.objList("host_routes")
	if err != nil || !ok {
		return nil, ok, err
	}
	if len(list) > maxHostRoutes {
		return nil, true, badRequest("HostRoutesExhausted", "Unable to complete operation for %s. The number of host routes exceeds the limit %d.", "subnet", maxHostRoutes)
	}
	out := []hostRoute{}
	for _, r := range list {
		if err := r.checkKeys("POST", []string{"destination", "nexthop"}, nil); err != nil {
			return nil, true, invalidAttr("host_routes", "unrecognized keys in host route")
		}
		d, ok1, err1 := r.str("destination", 0)
		n, ok2, err2 := r.str("nexthop", 0)
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			return nil, true, invalidAttr("host_routes", "each route needs destination and nexthop")
		}
		p, err := netip.ParsePrefix(d)
		if err != nil || p.Masked() != p {
			return nil, true, invalidAttr("host_routes", "'%s' is not a valid IP subnet", d)
		}
		nh, err := parseIP("host_routes", n)
		if err != nil {
			return nil, true, err
		}
		hr := hostRoute{p.String(), nh.String()}
		if slices.Contains(out, hr) {
			return nil, true, invalidAttr("host_routes", "Duplicate hostroute '%s'", d)
		}
		out = append(out, hr)
	}
	return out, true, nil
}

func (s *Service) parseSubnetCreate(c *caller, a attrs) (*subnetReq, error) {
	if err := a.checkKeys("POST", subnetPostAttrs, subnetKnownAttrs); err != nil {
		return nil, err
	}
	req := &subnetReq{sn: Subnet{EnableDHCP: true}}
	sn := &req.sn
	var err error
	if sn.ProjectID, err = a.project(c.ProjectID); err != nil {
		return nil, err
	}
	var ok bool
	if sn.NetworkID, ok, err = a.uuid("network_id"); err != nil {
		return nil, err
	} else if !ok {
		return nil, badInput("Failed to parse request. Required attribute 'network_id' not specified")
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
	sn.IPVersion = int(v)
	if sn.Name, _, err = a.str("name", 255); err != nil {
		return nil, err
	}
	if sn.Description, _, err = a.str("description", 255); err != nil {
		return nil, err
	}
	if b, ok, err := a.boolean("enable_dhcp"); err != nil {
		return nil, err
	} else if ok {
		sn.EnableDHCP = b
	}
	if b, ok, err := a.boolean("dns_publish_fixed_ip"); err != nil {
		return nil, err
	} else if ok {
		sn.DNSPublishFixedIP = b
	}
	if cidr, valid, present, err := a.nullableStr("cidr"); err != nil {
		return nil, err
	} else if present && valid {
		p, err := parseCIDR(cidr)
		if err != nil {
			return nil, err
		}
		if p.Addr().Is4() != (sn.IPVersion == 4) {
			return nil, invalidInput("Cidr %s does not match ip_version %d", cidr, sn.IPVersion)
		}
		if p.Bits() == 0 {
			return nil, invalidInput("0 prefix length is not allowed")
		}
		sn.CIDR = p
	}
	if pool, valid, present, err := a.nullableStr("subnetpool_id"); err != nil {
		return nil, err
	} else if present && valid {
		if !isUUID(pool) && pool != "prefix_delegation" {
			return nil, invalidAttr("subnetpool_id", "'%s' is not a valid UUID", pool)
		}
		sn.SubnetPoolID = pool
	}
	if b, ok, err := a.boolean("use_default_subnetpool"); err != nil {
		return nil, err
	} else if ok {
		req.useDefault = b
	}
	if pl, ok, _, err := a.integer("prefixlen", 0, 128, false); err != nil {
		return nil, err
	} else if ok {
		req.prefixlen = int(pl)
	}
	if !sn.CIDR.IsValid() && sn.SubnetPoolID == "" && !req.useDefault {
		return nil, badRequest("BadRequest", "Bad subnets request: a cidr or a subnetpool_id is required.")
	}
	if gw, valid, present, err := a.nullableStr("gateway_ip"); err != nil {
		return nil, err
	} else if present {
		req.gwSet = true
		if valid {
			ip, err := parseIP("gateway_ip", gw)
			if err != nil {
				return nil, err
			}
			if ip.Is4() != (sn.IPVersion == 4) {
				return nil, invalidInput("gateway_ip %s does not match the ip_version %d", gw, sn.IPVersion)
			}
			sn.Gateway = ip
		}
	}
	if sn.Pools, req.poolsSet, err = parsePools(a, "allocation_pools"); err != nil {
		return nil, err
	}
	for _, p := range sn.Pools {
		if p.Start.Is4() != (sn.IPVersion == 4) || p.End.Is4() != (sn.IPVersion == 4) {
			return nil, badRequest("InvalidAllocationPool", "The allocation pool %s-%s is not valid.", p.Start, p.End)
		}
	}
	if sn.DNSNameservers, _, err = parseDNS(a, sn.IPVersion); err != nil {
		return nil, err
	}
	if sn.HostRoutes, _, err = parseRoutes(a); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name string
		dst  *string
	}{{"ipv6_ra_mode", &sn.RAMode}, {"ipv6_address_mode", &sn.AddressMode}} {
		v, valid, present, err := a.nullableStr(m.name)
		if err != nil {
			return nil, err
		}
		if !present || !valid {
			continue
		}
		if !slices.Contains(ipv6Modes, v) {
			return nil, invalidAttr(m.name, "'%s' is not in %v", v, ipv6Modes)
		}
		if sn.IPVersion != 6 {
			return nil, invalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4")
		}
		*m.dst = v
	}
	if sn.RAMode != "" && sn.AddressMode != "" && sn.RAMode != sn.AddressMode {
		return nil, invalidInput("ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. If both attributes are set, they must be the same value", sn.RAMode, sn.AddressMode)
	}
	if (sn.RAMode != "" || sn.AddressMode != "") && !sn.EnableDHCP {
		return nil, invalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
	}
	if req.tags, _, err = a.strList("tags"); err != nil {
		return nil, err
	}
	if err := validateTags(req.tags); err != nil {
		return nil, err
	}
	for _, k := range []string{"segment_id", "service_types"} {
		if a.has(k) {
			if err := s.authorize(c, "create_subnet:"+k, ownerTarget(sn.ProjectID)); err != nil {
				return nil, err
			}
		}
	}
	if st, ok, err := parseServiceTypes(a); err != nil {
		return nil, err
	} else if ok {
		sn.ServiceTypes = st
	}
	if seg, valid, _, err := a.nullableStr("segment_id"); err != nil {
		return nil, err
	} else if valid && seg != "" {
		return nil, invalidInput("routed network segments are not supported")
	}
	return req, nil
}

// finishSubnet fills the defaults that depend on the CIDR and checks the
// address layout.
func finishSubnet(req *subnetReq) error {
	sn := &req.sn
	if isSLAAC(sn.AddressMode) || sn.RAMode == "slaac" || sn.RAMode == "dhcpv6-stateless" {
		if sn.CIDR.Bits() != 64 {
			return invalidInput("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64", sn.CIDR)
		}
	}
	if !req.gwSet {
		sn.Gateway = defaultGateway(sn.CIDR)
	}
	if sn.Gateway.IsValid() {
		first, last := firstLast(sn.CIDR)
		host := sn.CIDR.Addr().BitLen() - sn.CIDR.Bits()
		if host > 1 && (sn.Gateway == first || (sn.IPVersion == 4 && sn.Gateway == last)) {
			return invalidInput("Gateway is not valid on subnet")
		}
	}
	if !req.poolsSet {
		sn.Pools = defaultPools(sn.CIDR, sn.Gateway)
	}
	return validatePools(sn.CIDR, sn.Pools, sn.Gateway)
}

func (s *Service) createSubnets(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "subnet", "subnets", true)
	if err != nil {
		return nil, err
	}
	reqs := make([]*subnetReq, len(objs))
	for i, a := range objs {
		if reqs[i], err = s.parseSubnetCreate(c, a); err != nil {
			return nil, err
		}
	}
	ctx := r.Context()
	var created []*Subnet
	err = s.withTx(ctx, func(tx *txn) error {
		created = created[:0]
		for _, req := range reqs {
			r2 := *req
			sn, err := tx.createSubnet(ctx, c, &r2)
			if err != nil {
				return err
			}
			created = append(created, sn)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "subnets", "subnet", created, func(sn *Subnet) map[string]any { return s.renderSubnet(c, sn) }), nil
}

func (tx *txn) createSubnet(ctx context.Context, c *caller, req *subnetReq) (*Subnet, error) {
	s := tx.s
	sn := req.sn
	n, err := loadNetwork(ctx, tx, sn.NetworkID, s.db.ForUpdate())
	if err != nil {
		return nil, err
	}
	if !networkVisible(c, n) {
		return nil, networkNotFound(n.ID)
	}
	target := ownerTarget(sn.ProjectID)
	target["network:project_id"] = n.ProjectID
	target["network:tenant_id"] = n.ProjectID
	if err := s.authorize(c, "create_subnet", target); err != nil {
		return nil, err
	}
	if err := tx.checkQuota(ctx, "subnet", sn.ProjectID, 1); err != nil {
		return nil, err
	}
	if req.useDefault && sn.SubnetPoolID == "" {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM net_subnetpools WHERE is_default AND ip_version = $1`, sn.IPVersion).Scan(&id)
		if err == sql.ErrNoRows {
			return nil, badRequest("BadRequest", "Bad subnets request: No default subnetpool found for IPv%d.", sn.IPVersion)
		}
		if err != nil {
			return nil, err
		}
		sn.SubnetPoolID = id
	}
	existing, err := networkSubnets(ctx, tx, n.ID, "")
	if err != nil {
		return nil, err
	}
	if sn.SubnetPoolID != "" {
		p, err := tx.allocateFromPool(ctx, c, &sn, req.prefixlen)
		if err != nil {
			return nil, err
		}
		sn.CIDR = p
	}
	req.sn = sn
	if err := finishSubnet(req); err != nil {
		return nil, err
	}
	sn = req.sn
	for _, o := range existing {
		if o.CIDR.Overlaps(sn.CIDR) {
			return nil, invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", sn.CIDR, n.ID)
		}
	}
	now := s.nowUTC()
	sn.ID = newID()
	sn.CreatedAt, sn.UpdatedAt = now, now
	_, err = tx.ExecContext(ctx, `INSERT INTO net_subnets (id, project_id, network_id, name, description, ip_version, cidr,
		gateway_ip, enable_dhcp, ipv6_ra_mode, ipv6_address_mode, subnetpool_id, segment_id, allocation_pools,
		dns_nameservers, host_routes, dns_publish_fixed_ip, revision_number, created_at, updated_at, service_types)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		sn.ID, sn.ProjectID, sn.NetworkID, sn.Name, sn.Description, sn.IPVersion, sn.CIDR.String(),
		nullStr(addrString(sn.Gateway), sn.Gateway.IsValid()), sn.EnableDHCP, nullStr(sn.RAMode, sn.RAMode != ""),
		nullStr(sn.AddressMode, sn.AddressMode != ""), nullStr(sn.SubnetPoolID, sn.SubnetPoolID != ""), nil,
		jsonText(poolsJSON(sn.Pools)), jsonText(nonNil(sn.DNSNameservers)), jsonText(routesOrEmpty(sn.HostRoutes)),
		sn.DNSPublishFixedIP, 0, db.FormatTime(now), db.FormatTime(now), jsonText(nonNil(sn.ServiceTypes)))
	if err != nil {
		return nil, err
	}
	if len(req.tags) > 0 {
		if err := tx.setTags(ctx, "subnet", sn.ID, req.tags); err != nil {
			return nil, err
		}
		sn.Tags = sortedTags(req.tags)
	}
	if sn.IPVersion == 6 && isSLAAC(sn.AddressMode) {
		if err := tx.addAutoAddresses(ctx, &sn); err != nil {
			return nil, err
		}
	}
	if err := tx.bump(ctx, "net_networks", n.ID); err != nil {
		return nil, err
	}
	return &sn, nil
}

// addAutoAddresses gives every port already on a new SLAAC (or
// DHCPv6-stateless) subnet's network, router interfaces aside, its
// EUI-64 address there, as Neutron does: ports created later get it at
// create.
func (tx *txn) addAutoAddresses(ctx context.Context, sn *Subnet) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, mac_address, device_owner FROM net_ports WHERE network_id = $1 ORDER BY id`, sn.NetworkID)
	if err != nil {
		return err
	}
	type port struct{ id, mac, owner string }
	var ports []port
	for rows.Next() {
		var p port
		if err := rows.Scan(&p.id, &p.mac, &p.owner); err != nil {
			rows.Close()
			return err
		}
		ports = append(ports, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range ports {
		if isRouterInterface(p.owner) {
			continue
		}
		ip, ok := eui64(sn.CIDR, p.mac)
		if !ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_ip_allocations (subnet_id, ip_address, network_id, port_id) VALUES ($1, $2, $3, $4)`,
			sn.ID, ip.String(), sn.NetworkID, p.id); err != nil {
			return err
		}
		if err := tx.bump(ctx, "net_ports", p.id); err != nil {
			return err
		}
	}
	return nil
}

func routesOrEmpty(r []hostRoute) []hostRoute {
	if r == nil {
		return []hostRoute{}
	}
	return r
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// bump increments the revision of a resource changed through a child.
func (tx *txn) bump(ctx context.Context, table, id string) error {
	_, err := tx.ExecContext(ctx, "UPDATE "+table+" SET revision_number = revision_number + 1, updated_at = $1 WHERE id = $2",
		db.FormatTime(tx.s.nowUTC()), id)
	return err
}

// subnetAccess checks that the caller may change a subnet: the subnet's
// owner or the owner of its network, per rule.
func (s *Service) subnetAccess(ctx context.Context, q db.Querier, c *caller, sn *Subnet, rule string) error {
	if !s.subnetVisible(ctx, q, c, sn) {
		return subnetNotFound(sn.ID)
	}
	var netOwner string
	_ = q.QueryRowContext(ctx, `SELECT project_id FROM net_networks WHERE id = $1`, sn.NetworkID).Scan(&netOwner)
	target := ownerTarget(sn.ProjectID)
	target["network:project_id"] = netOwner
	target["network:tenant_id"] = netOwner
	return s.authorize(c, rule, target)
}

func (s *Service) updateSubnet(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "subnet", "subnets", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", subnetPutAttrs, append(subnetKnownAttrs, subnetPostAttrs...)); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *Subnet
	err = s.withTx(ctx, func(tx *txn) error {
		sn, err := loadSubnet(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.subnetAccess(ctx, tx, c, sn, "update_subnet"); err != nil {
			return err
		}
		if err := ifMatch(r, sn.Revision); err != nil {
			return err
		}
		if err := a.setStr("name", 255, &sn.Name); err != nil {
			return err
		}
		if err := a.setStr("description", 255, &sn.Description); err != nil {
			return err
		}
		if err := a.setBool("enable_dhcp", &sn.EnableDHCP); err != nil {
			return err
		}
		if err := a.setBool("dns_publish_fixed_ip", &sn.DNSPublishFixedIP); err != nil {
			return err
		}
		if v, ok, err := parseDNS(a, sn.IPVersion); err != nil {
			return err
		} else if ok {
			sn.DNSNameservers = v
		}
		if v, ok, err := parseRoutes(a); err != nil {
			return err
		} else if ok {
			sn.HostRoutes = v
		}
		if st, ok, err := parseServiceTypes(a); err != nil {
			return err
		} else if ok {
			if err := s.authorize(c, "update_subnet:service_types", ownerTarget(sn.ProjectID)); err != nil {
				return err
			}
			sn.ServiceTypes = st
		}
		if gw, valid, present, err := a.nullableStr("gateway_ip"); err != nil {
			return err
		} else if present {
			sn.Gateway = netip.Addr{}
			if valid {
				ip, err := parseIP("gateway_ip", gw)
				if err != nil {
					return err
				}
				if ip.Is4() != (sn.IPVersion == 4) {
					return invalidInput("gateway_ip %s does not match the ip_version %d", gw, sn.IPVersion)
				}
				var used int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ip_allocations a JOIN net_ports p ON p.id = a.port_id
					WHERE a.subnet_id = $1 AND a.ip_address = $2 AND p.device_owner NOT LIKE 'network:router%'`, id, ip.String()).Scan(&used); err != nil {
					return err
				}
				if used > 0 {
					return conflict("GatewayIpInUse", "Current gateway ip %s already in use by port. Unable to update.", ip)
				}
				sn.Gateway = ip
			}
		}
		if pools, ok, err := parsePools(a, "allocation_pools"); err != nil {
			return err
		} else if ok {
			sn.Pools = pools
		}
		if err := validatePools(sn.CIDR, sn.Pools, sn.Gateway); err != nil {
			return err
		}
		sn.Revision++
		sn.UpdatedAt = s.nowUTC()
		_, err = tx.ExecContext(ctx, `UPDATE net_subnets SET name = $1, description = $2, enable_dhcp = $3, gateway_ip = $4,
			allocation_pools = $5, dns_nameservers = $6, host_routes = $7, dns_publish_fixed_ip = $8, revision_number = $9,
			updated_at = $10, service_types = $12 WHERE id = $11`, sn.Name, sn.Description, sn.EnableDHCP, nullStr(addrString(sn.Gateway), sn.Gateway.IsValid()),
			jsonText(poolsJSON(sn.Pools)), jsonText(nonNil(sn.DNSNameservers)), jsonText(routesOrEmpty(sn.HostRoutes)),
			sn.DNSPublishFixedIP, sn.Revision, db.FormatTime(sn.UpdatedAt), id, jsonText(nonNil(sn.ServiceTypes)))
		out = sn
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"subnet": s.renderSubnet(c, out)}), nil
}

func (s *Service) deleteSubnet(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		sn, err := loadSubnet(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.subnetAccess(ctx, tx, c, sn, "delete_subnet"); err != nil {
			return err
		}
		if err := ifMatch(r, sn.Revision); err != nil {
			return err
		}
		// SLAAC addresses of ordinary ports go away with the subnet; any other
		// allocation keeps it in use.
		var inUse int
		cond := ""
		if isSLAAC(sn.AddressMode) {
			cond = " AND p.device_owner LIKE 'network:router%'"
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ip_allocations a JOIN net_ports p ON p.id = a.port_id
			WHERE a.subnet_id = $1 AND p.device_owner <> 'network:dhcp'`+cond, id).Scan(&inUse); err != nil {
			return err
		}
		if inUse > 0 {
			return conflict("SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id)
		}
		var ports []string
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT port_id FROM net_ip_allocations WHERE subnet_id = $1 AND port_id IS NOT NULL`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return err
			}
			ports = append(ports, p)
		}
		rows.Close()
		for _, q := range []string{
			`DELETE FROM net_ip_allocations WHERE subnet_id = $1`,
			`DELETE FROM net_tags WHERE resource_type = 'subnet' AND resource_id = $1`,
			`DELETE FROM net_subnets WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		for _, p := range ports {
			if err := tx.bump(ctx, "net_ports", p); err != nil {
				return err
			}
		}
		return tx.bump(ctx, "net_networks", sn.NetworkID)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
