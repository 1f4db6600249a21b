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
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Router is a row of net_routers. Its interfaces are ports with
// device_owner network:router_interface and device_id the router id; its
// gateway is a network:router_gateway port on an external network.
type Router struct {
	ID, ProjectID, Name, Description, Status string
	AdminStateUp, EnableSNAT                 bool
	GwPortID, GwNetworkID                    string
	GwIPs                                    []fixedIP
	Routes                                   []hostRoute
	AZHints                                  []string
	Revision                                 int64
	CreatedAt, UpdatedAt                     time.Time
	Tags                                     []string
}

const routerCols = `rt.id, rt.project_id, rt.name, rt.description, rt.admin_state_up, rt.status, rt.gw_port_id,
	rt.gw_network_id, rt.enable_snat, rt.routes, rt.az_hints, rt.revision_number, rt.created_at, rt.updated_at`

func scanRouter(row interface{ Scan(...any) error }) (*Router, error) {
	rt := &Router{}
	var gwPort, gwNet, created, updated sql.NullString
	var routes, hints string
	if err := row.Scan(&rt.ID, &rt.ProjectID, &rt.Name, &rt.Description, &rt.AdminStateUp, &rt.Status, &gwPort, &gwNet,
		&rt.EnableSNAT, &routes, &hints, &rt.Revision, &created, &updated); err != nil {
		return nil, err
	}
	rt.GwPortID, rt.GwNetworkID = gwPort.String, gwNet.String
	_ = json.Unmarshal([]byte(routes), &rt.Routes)
	_ = json.Unmarshal([]byte(hints), &rt.AZHints)
	rt.CreatedAt, rt.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return rt, nil
}

var routerDef = &listDef{
	resource: "router", collection: "routers", notFound: "RouterNotFound", table: "net_routers", alias: "rt",
	cols: map[string]column{
		"id": {expr: "rt.id"}, "name": {expr: "rt.name"}, "description": {expr: "rt.description"},
		"project_id": {expr: "rt.project_id"}, "tenant_id": {expr: "rt.project_id"},
		"admin_state_up": {expr: "rt.admin_state_up", kind: kBool}, "status": {expr: "rt.status"},
		"revision_number": {expr: "rt.revision_number", kind: kInt},
		"created_at":      {expr: "rt.created_at"}, "updated_at": {expr: "rt.updated_at"},
	},
	attrs: []string{"external_gateway_info", "routes", "availability_zone_hints", "availability_zones", "tags", "distributed", "ha", "flavor_id"},
}

func (s *Service) renderRouter(rt *Router) map[string]any {
	var gw any
	if rt.GwNetworkID != "" {
		ips := rt.GwIPs
		if ips == nil {
			ips = []fixedIP{}
		}
		gw = map[string]any{"network_id": rt.GwNetworkID, "enable_snat": rt.EnableSNAT, "external_fixed_ips": ips}
	}
	return map[string]any{
		"id": rt.ID, "name": rt.Name, "description": rt.Description, "project_id": rt.ProjectID, "tenant_id": rt.ProjectID,
		"admin_state_up": rt.AdminStateUp, "status": rt.Status, "external_gateway_info": gw,
		"routes": routesOrEmpty(rt.Routes), "availability_zone_hints": nonNil(rt.AZHints),
		"availability_zones": []string{s.cfg.AvailabilityZone}, "flavor_id": nil, "tags": nonNil(rt.Tags),
		"revision_number": rt.Revision, "created_at": stamp(rt.CreatedAt), "updated_at": stamp(rt.UpdatedAt),
	}
}

func routerNotFound(id string) error {
	return notFound("RouterNotFound", "Router %s could not be found", id)
}

func fillRouters(ctx context.Context, q db.Querier, routers []*Router) error {
	if len(routers) == 0 {
		return nil
	}
	byID := map[string]*Router{}
	ids := make([]string, len(routers))
	for i, rt := range routers {
		byID[rt.ID], ids[i] = rt, rt.ID
		if rt.GwPortID != "" {
			rows, err := q.QueryContext(ctx, `SELECT subnet_id, ip_address FROM net_ip_allocations WHERE port_id = $1 ORDER BY ip_address`, rt.GwPortID)
			if err != nil {
				return err
			}
			for rows.Next() {
				var f fixedIP
				if err := rows.Scan(&f.SubnetID, &f.IPAddress); err != nil {
					rows.Close()
					return err
				}
				rt.GwIPs = append(rt.GwIPs, f)
			}
			rows.Close()
		}
	}
	return loadTags(ctx, q, "router", ids, func(id string, t []string) { byID[id].Tags = t })
}

func loadRouter(ctx context.Context, q db.Querier, id, forUpdate string) (*Router, error) {
	rt, err := scanRouter(q.QueryRowContext(ctx, "SELECT "+routerCols+" FROM net_routers rt WHERE rt.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, routerNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return rt, fillRouters(ctx, q, []*Router{rt})
}

func (s *Service) routerRoutes(rt func(string, string, apiutil.Handler) apiutil.Route) []apiutil.Route {
	return []apiutil.Route{
		rt("GET", "/routers", s.listRouters),
		rt("POST", "/routers", s.createRouters),
		rt("GET", "/routers/{id}", s.showRouter),
		rt("PUT", "/routers/{id}", s.updateRouter),
		rt("DELETE", "/routers/{id}", s.deleteRouter),
		rt("PUT", "/routers/{id}/add_router_interface", s.addRouterInterface),
		rt("PUT", "/routers/{id}/remove_router_interface", s.removeRouterInterface),
		rt("PUT", "/routers/{id}/add_extraroutes", s.extraRoutes(true)),
		rt("PUT", "/routers/{id}/remove_extraroutes", s.extraRoutes(false)),
		rt("GET", "/floatingips", s.listFloatingIPs),
		rt("POST", "/floatingips", s.createFloatingIP),
		rt("GET", "/floatingips/{id}", s.showFloatingIP),
		rt("PUT", "/floatingips/{id}", s.updateFloatingIP),
		rt("DELETE", "/floatingips/{id}", s.deleteFloatingIP),
	}
}

func (s *Service) listRouters(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := routerDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("rt.project_id = " + lq.b.arg(c.ProjectID))
	}
	ctx := r.Context()
	routers, more, err := listRows(ctx, s.db.Reader(), routerDef, lq, routerCols, func(rows *sql.Rows) (*Router, error) { return scanRouter(rows) })
	if err != nil {
		return nil, err
	}
	if err := fillRouters(ctx, s.db.Reader(), routers); err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(routers))
	for i, rt := range routers {
		items[i] = selectFields(s.renderRouter(rt), lq.fields)
	}
	return s.listResponse(r, lq, "routers", items, more), nil
}

func (s *Service) routerFor(ctx context.Context, q db.Querier, c *caller, id, rule, forUpdate string) (*Router, error) {
	rt, err := loadRouter(ctx, q, id, forUpdate)
	if err != nil {
		return nil, err
	}
	if !c.admin && rt.ProjectID != c.ProjectID {
		return nil, routerNotFound(id)
	}
	if err := s.authorize(c, rule, ownerTarget(rt.ProjectID)); err != nil {
		return nil, err
	}
	return rt, nil
}

func (s *Service) showRouter(r *http.Request) (*apiutil.Response, error) {
	rt, err := s.routerFor(r.Context(), s.db.Reader(), s.caller(r), r.PathValue("id"), "get_router", "")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"router": selectFields(s.renderRouter(rt), showFields(r))}), nil
}

// systemCaller acts for the service itself (gateway and floating IP ports).
var systemCaller = &caller{Context: &auth.Context{}, admin: true}

// gatewayReq is a parsed external_gateway_info.
type gatewayReq struct {
	clear      bool
	networkID  string
	enableSNAT *bool
	ips        []ipRequest
	ipsSet     bool
}

func parseGateway(c *caller, s *Service, a attrs, action, project string) (*gatewayReq, error) {
	v, ok := a["external_gateway_info"]
	if !ok {
		return nil, nil
	}
	if v == nil {
		return &gatewayReq{clear: true}, nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, invalidAttr("external_gateway_info", "'%v' is not a dictionary", render(v))
	}
	g := attrs(m)
	if err := g.checkKeys("PUT", []string{"network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"}, nil); err != nil {
		return nil, invalidAttr("external_gateway_info", "unexpected keys")
	}
	gw := &gatewayReq{}
	var err error
	if gw.networkID, ok, err = g.uuid("network_id"); err != nil {
		return nil, err
	} else if !ok {
		if len(g) == 0 {
			return &gatewayReq{clear: true}, nil
		}
		return nil, invalidAttr("external_gateway_info", "network_id is required")
	}
	if b, ok, err := g.boolean("enable_snat"); err != nil {
		return nil, err
	} else if ok {
		gw.enableSNAT = &b
		if err := s.authorize(c, action+"_router:external_gateway_info:enable_snat", ownerTarget(project)); err != nil {
			return nil, err
		}
	}
	if list, ok, err := g.objList("external_fixed_ips"); err != nil {
		return nil, err
	} else if ok {
		gw.ipsSet = true
		if err := s.authorize(c, action+"_router:external_gateway_info:external_fixed_ips", ownerTarget(project)); err != nil {
			return nil, err
		}
		for _, f := range list {
			var ir ipRequest
			if ir.subnetID, _, err = f.uuid("subnet_id"); err != nil {
				return nil, err
			}
			if v, ok, err := f.str("ip_address", 0); err != nil {
				return nil, err
			} else if ok {
				if ir.ip, err = parseIP("ip_address", v); err != nil {
					return nil, err
				}
			}
			gw.ips = append(gw.ips, ir)
		}
	}
	return gw, nil
}

// setGateway attaches, changes or removes a router's gateway.
func (tx *txn) setGateway(ctx context.Context, rt *Router, gw *gatewayReq) error {
	if gw == nil {
		return nil
	}
	if gw.enableSNAT != nil {
		rt.EnableSNAT = *gw.enableSNAT
	}
	if !gw.clear && gw.networkID == rt.GwNetworkID && !gw.ipsSet {
		return nil
	}
	if rt.GwPortID != "" {
		var fips int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_floatingips WHERE router_id = $1`, rt.ID).Scan(&fips); err != nil {
			return err
		}
		if fips > 0 {
			return conflict("RouterExternalGatewayInUseByFloatingIp", "Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.", rt.ID, rt.GwNetworkID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE net_routers SET gw_port_id = NULL, gw_network_id = NULL WHERE id = $1`, rt.ID); err != nil {
			return err
		}
		if err := tx.deletePortRow(ctx, rt.GwPortID); err != nil {
			return err
		}
		rt.GwPortID, rt.GwNetworkID, rt.GwIPs = "", "", nil
	}
	if gw.clear {
		rt.EnableSNAT = true
		return nil
	}
	n, err := loadNetwork(ctx, tx, gw.networkID, "")
	if err != nil {
		return err
	}
	if !n.External {
		return badRequest("BadRequest", "Bad router request: Network %s is not an external network.", n.ID)
	}
	p, err := tx.createPort(ctx, systemCaller, &portReq{
		a: attrs{}, ips: gw.ips, ipsSet: gw.ipsSet,
		p: Port{NetworkID: n.ID, DeviceOwner: "network:router_gateway", DeviceID: rt.ID, AdminStateUp: true,
			VNICType: "normal", Status: "DOWN", PortSecurity: false},
		psSet: true,
	})
	if err != nil {
		return err
	}
	if len(p.FixedIPs) == 0 {
		return badRequest("BadRequest", "Bad router request: No IPs available on external network %s.", n.ID)
	}
	rt.GwPortID, rt.GwNetworkID, rt.GwIPs = p.ID, n.ID, p.FixedIPs
	if gw.enableSNAT == nil {
		rt.EnableSNAT = true
	}
	return nil
}

func (tx *txn) saveRouter(ctx context.Context, rt *Router) error {
	_, err := tx.ExecContext(ctx, `UPDATE net_routers SET name = $1, description = $2, admin_state_up = $3, gw_port_id = $4,
		gw_network_id = $5, enable_snat = $6, routes = $7, revision_number = $8, updated_at = $9 WHERE id = $10`,
		rt.Name, rt.Description, rt.AdminStateUp, nullStr(rt.GwPortID, rt.GwPortID != ""), nullStr(rt.GwNetworkID, rt.GwNetworkID != ""),
		rt.EnableSNAT, jsonText(routesOrEmpty(rt.Routes)), rt.Revision, db.FormatTime(rt.UpdatedAt), rt.ID)
	return err
}

var routerPostAttrs = []string{"name", "description", "admin_state_up", "external_gateway_info", "availability_zone_hints",
	"project_id", "tenant_id", "tags", "distributed", "ha", "flavor_id"}

func (s *Service) createRouters(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "router", "routers", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("POST", routerPostAttrs, []string{"id", "status", "routes", "revision_number", "created_at", "updated_at"}); err != nil {
		return nil, err
	}
	rt := &Router{ID: newID(), AdminStateUp: true, Status: "ACTIVE", EnableSNAT: true}
	if rt.ProjectID, err = a.project(c.ProjectID); err != nil {
		return nil, err
	}
	if err := s.authorize(c, "create_router", ownerTarget(rt.ProjectID)); err != nil {
		return nil, err
	}
	if rt.Name, _, err = a.str("name", 255); err != nil {
		return nil, err
	}
	if rt.Description, _, err = a.str("description", 255); err != nil {
		return nil, err
	}
	if b, ok, err := a.boolean("admin_state_up"); err != nil {
		return nil, err
	} else if ok {
		rt.AdminStateUp = b
	}
	for _, k := range []string{"distributed", "ha"} {
		if b, _, err := a.boolean(k); err != nil {
			return nil, err
		} else if b {
			return nil, invalidInput("%s routers are not supported", k)
		}
	}
	if rt.AZHints, _, err = a.strList("availability_zone_hints"); err != nil {
		return nil, err
	}
	for _, z := range rt.AZHints {
		if z != s.cfg.AvailabilityZone {
			return nil, notFound("AvailabilityZoneNotFound", "AvailabilityZone %s could not be found.", z)
		}
	}
	tags, _, err := a.strList("tags")
	if err != nil {
		return nil, err
	}
	if err := validateTags(tags); err != nil {
		return nil, err
	}
	gw, err := parseGateway(c, s, a, "create", rt.ProjectID)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		rt.GwPortID, rt.GwNetworkID, rt.GwIPs = "", "", nil
		if err := tx.checkQuota(ctx, "router", rt.ProjectID, 1); err != nil {
			return err
		}
		now := s.nowUTC()
		rt.CreatedAt, rt.UpdatedAt, rt.Revision = now, now, 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_routers (id, project_id, name, description, admin_state_up, status,
			enable_snat, routes, az_hints, revision_number, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '[]', $8, $9, $10, $11)`,
			rt.ID, rt.ProjectID, rt.Name, rt.Description, rt.AdminStateUp, rt.Status, rt.EnableSNAT, jsonText(nonNil(rt.AZHints)),
			rt.Revision, db.FormatTime(now), db.FormatTime(now)); err != nil {
			return err
		}
		if err := tx.setGateway(ctx, rt, gw); err != nil {
			return err
		}
		if len(tags) > 0 {
			if err := tx.setTags(ctx, "router", rt.ID, tags); err != nil {
				return err
			}
			rt.Tags = sortedTags(tags)
		}
		return tx.saveRouter(ctx, rt)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"router": s.renderRouter(rt)}), nil
}

const maxRoutes = 30

// routerSubnets lists the subnets a router has interfaces on.
func routerSubnets(ctx context.Context, q db.Querier, routerID string) ([]*Subnet, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+subnetCols+` FROM net_subnets s WHERE s.id IN (SELECT a.subnet_id FROM net_ip_allocations a
		JOIN net_ports p ON p.id = a.port_id WHERE p.device_id = $1 AND p.device_owner = 'network:router_interface') ORDER BY s.created_at, s.id`, routerID)
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

// validateRoutes checks that every nexthop is on a subnet the router is
// connected to.
func validateRoutes(ctx context.Context, q db.Querier, rt *Router, routes []hostRoute) error {
	if len(routes) > maxRoutes {
		return badRequest("RoutesExhausted", "Unable to complete operation for %s. The number of routes exceeds the maximum %d.", rt.ID, maxRoutes)
	}
	subs, err := routerSubnets(ctx, q, rt.ID)
	if err != nil {
		return err
	}
	var cidrs []netip.Prefix
	for _, sn := range subs {
		cidrs = append(cidrs, sn.CIDR)
	}
	for _, ip := range rt.GwIPs {
		var c string
		if err := q.QueryRowContext(ctx, `SELECT cidr FROM net_subnets WHERE id = $1`, ip.SubnetID).Scan(&c); err == nil {
			if p, err := netip.ParsePrefix(c); err == nil {
				cidrs = append(cidrs, p)
			}
		}
	}
	for _, r := range routes {
		nh, _ := netip.ParseAddr(r.Nexthop)
		if !slices.ContainsFunc(cidrs, func(p netip.Prefix) bool { return p.Contains(nh) }) {
			return badRequest("InvalidRoutes", "Invalid format for routes: %v, the nexthop is not connected with router", r)
		}
	}
	return nil
}

func (s *Service) updateRouter(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "router", "routers", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", []string{"name", "description", "admin_state_up", "external_gateway_info", "routes"}, routerPostAttrs); err != nil {
		return nil, err
	}
	ctx := r.Context()
	var out *Router
	err = s.withTx(ctx, func(tx *txn) error {
		rt, err := s.routerFor(ctx, tx, c, r.PathValue("id"), "update_router", s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := ifMatch(r, rt.Revision); err != nil {
			return err
		}
		if err := a.setStr("name", 255, &rt.Name); err != nil {
			return err
		}
		if err := a.setStr("description", 255, &rt.Description); err != nil {
			return err
		}
		if err := a.setBool("admin_state_up", &rt.AdminStateUp); err != nil {
			return err
		}
		gw, err := parseGateway(c, s, a, "update", rt.ProjectID)
		if err != nil {
			return err
		}
		if err := tx.setGateway(ctx, rt, gw); err != nil {
			return err
		}
		if routes, ok, err := parseRoutes(attrs{"host_routes": a["routes"]}); err != nil {
			return err
		} else if ok && a.has("routes") {
			if err := validateRoutes(ctx, tx, rt, routes); err != nil {
				return err
			}
			rt.Routes = routes
		}
		rt.Revision++
		rt.UpdatedAt = s.nowUTC()
		out = rt
		return tx.saveRouter(ctx, rt)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"router": s.renderRouter(out)}), nil
}

func (s *Service) extraRoutes(add bool) apiutil.Handler {
	rule := "remove_extraroutes"
	if add {
		rule = "add_extraroutes"
	}
	return func(r *http.Request) (*apiutil.Response, error) {
		c := s.caller(r)
		objs, _, err := readBody(r, "router", "routers", false)
		if err != nil {
			return nil, err
		}
		a := objs[0]
		if err := a.checkKeys("PUT", []string{"routes"}, nil); err != nil {
			return nil, err
		}
		routes, _, err := parseRoutes(attrs{"host_routes": a["routes"]})
		if err != nil {
			return nil, err
		}
		ctx := r.Context()
		var out *Router
		err = s.withTx(ctx, func(tx *txn) error {
			rt, err := s.routerFor(ctx, tx, c, r.PathValue("id"), rule, s.db.ForUpdate())
			if err != nil {
				return err
			}
			next := slices.Clone(rt.Routes)
			for _, x := range routes {
				if add && !slices.Contains(next, x) {
					next = append(next, x)
				}
				if !add {
					next = slices.DeleteFunc(next, func(y hostRoute) bool { return y == x })
				}
			}
			if add {
				if err := validateRoutes(ctx, tx, rt, next); err != nil {
					return err
				}
			}
			rt.Routes = next
			rt.Revision++
			rt.UpdatedAt = s.nowUTC()
			out = rt
			return tx.saveRouter(ctx, rt)
		})
		if err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"router": s.renderRouter(out)}), nil
	}
}

func (s *Service) deleteRouter(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		rt, err := s.routerFor(ctx, tx, c, r.PathValue("id"), "delete_router", s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := ifMatch(r, rt.Revision); err != nil {
			return err
		}
		var ifaces int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ports WHERE device_id = $1 AND device_owner = 'network:router_interface'`, rt.ID).Scan(&ifaces); err != nil {
			return err
		}
		if ifaces > 0 {
			return conflict("RouterInUse", "Router %s still has ports", rt.ID)
		}
		if err := tx.setGateway(ctx, rt, &gatewayReq{clear: true}); err != nil {
			if e, ok := err.(*apiutil.Error); ok && e.Code == "RouterExternalGatewayInUseByFloatingIp" {
				return conflict("RouterInUse", "Router %s still has ports", rt.ID)
			}
			return err
		}
		for _, q := range []string{`DELETE FROM net_tags WHERE resource_type = 'router' AND resource_id = $1`, `DELETE FROM net_routers WHERE id = $1`} {
			if _, err := tx.ExecContext(ctx, q, rt.ID); err != nil {
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

func interfaceBody(rt *Router, p *Port) map[string]any {
	ids := []string{}
	for _, f := range p.FixedIPs {
		ids = append(ids, f.SubnetID)
	}
	sub := ""
	if len(ids) > 0 {
		sub = ids[0]
	}
	return map[string]any{"id": rt.ID, "tenant_id": rt.ProjectID, "project_id": rt.ProjectID, "port_id": p.ID,
		"network_id": p.NetworkID, "subnet_id": sub, "subnet_ids": ids}
}

func readInterfaceBody(r *http.Request) (subnetID, portID string, err error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return "", "", err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", "", badInput("Malformed request body")
	}
	a := attrs(m)
	if subnetID, _, err = a.uuid("subnet_id"); err != nil {
		return "", "", err
	}
	if portID, _, err = a.uuid("port_id"); err != nil {
		return "", "", err
	}
	if subnetID != "" && portID != "" {
		return "", "", badRequest("BadRequest", "Bad router request: Cannot specify both subnet-id and port-id.")
	}
	if subnetID == "" && portID == "" {
		return "", "", badRequest("BadRequest", "Bad router request: Either subnet_id or port_id must be specified.")
	}
	return subnetID, portID, nil
}

func (s *Service) addRouterInterface(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	subnetID, portID, err := readInterfaceBody(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	var body map[string]any
	err = s.withTx(ctx, func(tx *txn) error {
		rt, err := s.routerFor(ctx, tx, c, r.PathValue("id"), "add_router_interface", s.db.ForUpdate())
		if err != nil {
			return err
		}
		attached, err := routerSubnets(ctx, tx, rt.ID)
		if err != nil {
			return err
		}
		checkSubnet := func(sn *Subnet) error {
			for _, o := range attached {
				if o.ID == sn.ID {
					return badRequest("BadRequest", "Bad router request: Router already has a port on subnet %s.", sn.ID)
				}
				if o.CIDR.Overlaps(sn.CIDR) {
					return badRequest("BadRequest", "Bad router request: Cidr %s of subnet %s overlaps with cidr %s of subnet %s.", sn.CIDR, sn.ID, o.CIDR, o.ID)
				}
			}
			return nil
		}
		var p *Port
		if portID != "" {
			p, err = loadPort(ctx, tx, portID, s.db.ForUpdate())
			if err != nil {
				return err
			}
			if !c.admin && p.ProjectID != c.ProjectID {
				return portNotFound(portID)
			}
			if p.DeviceID != "" {
				return conflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", p.ID, p.NetworkID, p.DeviceID)
			}
			if len(p.FixedIPs) == 0 {
				return badRequest("BadRequest", "Bad router request: Router port must have at least one fixed IP.")
			}
			for _, f := range p.FixedIPs {
				sn, err := loadSubnet(ctx, tx, f.SubnetID, "")
				if err != nil {
					return err
				}
				if err := checkSubnet(sn); err != nil {
					return err
				}
			}
			p.DeviceID, p.DeviceOwner = rt.ID, "network:router_interface"
			if _, err := tx.ExecContext(ctx, `UPDATE net_ports SET device_id = $1, device_owner = $2, revision_number = revision_number + 1 WHERE id = $3`,
				p.DeviceID, p.DeviceOwner, p.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM net_port_security_groups WHERE port_id = $1`, p.ID); err != nil {
				return err
			}
		} else {
			sn, err := loadSubnet(ctx, tx, subnetID, "")
			if err != nil {
				return err
			}
			if !s.subnetVisible(ctx, tx, c, sn) {
				return subnetNotFound(subnetID)
			}
			if !sn.Gateway.IsValid() {
				return badRequest("BadRequest", "Bad router request: Subnet for router interface must have a gateway IP.")
			}
			if err := checkSubnet(sn); err != nil {
				return err
			}
			p, err = tx.createPort(ctx, systemCaller, &portReq{
				a: attrs{}, ipsSet: true, ips: []ipRequest{{subnetID: sn.ID, ip: sn.Gateway}},
				p: Port{NetworkID: sn.NetworkID, ProjectID: rt.ProjectID, DeviceOwner: "network:router_interface",
					DeviceID: rt.ID, AdminStateUp: true, VNICType: "normal", Status: "DOWN", PortSecurity: false},
				psSet: true,
			})
			if err != nil {
				return err
			}
		}
		body = interfaceBody(rt, p)
		return tx.bump(ctx, "net_routers", rt.ID)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, body), nil
}

func (s *Service) removeRouterInterface(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	subnetID, portID, err := readInterfaceBody(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	var body map[string]any
	err = s.withTx(ctx, func(tx *txn) error {
		rt, err := s.routerFor(ctx, tx, c, r.PathValue("id"), "remove_router_interface", s.db.ForUpdate())
		if err != nil {
			return err
		}
		var pid string
		if portID != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM net_ports WHERE id = $1 AND device_id = $2 AND device_owner = 'network:router_interface'`, portID, rt.ID).Scan(&pid)
			if err == sql.ErrNoRows {
				return notFound("RouterInterfaceNotFound", "Router %s does not have an interface with id %s", rt.ID, portID)
			}
			if err != nil {
				return err
			}
		} else {
			err := tx.QueryRowContext(ctx, `SELECT p.id FROM net_ports p JOIN net_ip_allocations a ON a.port_id = p.id
				WHERE p.device_id = $1 AND p.device_owner = 'network:router_interface' AND a.subnet_id = $2`, rt.ID, subnetID).Scan(&pid)
			if err == sql.ErrNoRows {
				return notFound("RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", rt.ID, subnetID)
			}
			if err != nil {
				return err
			}
		}
		p, err := loadPort(ctx, tx, pid, "")
		if err != nil {
			return err
		}
		for _, f := range p.FixedIPs {
			sn, err := loadSubnet(ctx, tx, f.SubnetID, "")
			if err != nil {
				return err
			}
			var fips int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_floatingips fi JOIN net_ip_allocations a ON a.port_id = fi.port_id
				WHERE fi.router_id = $1 AND a.subnet_id = $2`, rt.ID, sn.ID).Scan(&fips); err != nil {
				return err
			}
			if fips > 0 {
				return conflict("RouterInterfaceInUseByFloatingIP", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", sn.ID, rt.ID)
			}
			for _, route := range rt.Routes {
				if nh, err := netip.ParseAddr(route.Nexthop); err == nil && sn.CIDR.Contains(nh) {
					return conflict("RouterInterfaceInUse", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes.", sn.ID, rt.ID)
				}
			}
		}
		body = interfaceBody(rt, p)
		if err := tx.deletePortRow(ctx, p.ID); err != nil {
			return err
		}
		return tx.bump(ctx, "net_routers", rt.ID)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, body), nil
}
