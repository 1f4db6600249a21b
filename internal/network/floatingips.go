package network

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// FloatingIP is a row of net_floatingips. Its address is held by a
// network:floatingip port on the external network.
type FloatingIP struct {
	ID, ProjectID, NetworkID, Address, FloatingPortID string
	PortID, FixedIP, RouterID                         string // "" for null
	Status, Description, DNSName, DNSDomain           string
	Revision                                          int64
	CreatedAt, UpdatedAt                              time.Time
	Tags                                              []string
	PortForwardings                                   []*PortForwarding
}

const fipCols = `fi.id, fi.project_id, fi.floating_network_id, fi.floating_ip_address, fi.floating_port_id, fi.port_id,
	fi.fixed_ip_address, fi.router_id, fi.status, fi.description, fi.dns_name, fi.dns_domain, fi.revision_number,
	fi.created_at, fi.updated_at`

func scanFIP(row interface{ Scan(...any) error }) (*FloatingIP, error) {
	f := &FloatingIP{}
	var port, fixed, router, created, updated sql.NullString
	if err := row.Scan(&f.ID, &f.ProjectID, &f.NetworkID, &f.Address, &f.FloatingPortID, &port, &fixed, &router, &f.Status,
		&f.Description, &f.DNSName, &f.DNSDomain, &f.Revision, &created, &updated); err != nil {
		return nil, err
	}
	f.PortID, f.FixedIP, f.RouterID = port.String, fixed.String, router.String
	f.CreatedAt, f.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return f, nil
}

var fipDef = &listDef{
	resource: "floatingip", collection: "floatingips", notFound: "FloatingIPNotFound", table: "net_floatingips", alias: "fi",
	cols: map[string]column{
		"id": {expr: "fi.id"}, "description": {expr: "fi.description"},
		"project_id": {expr: "fi.project_id"}, "tenant_id": {expr: "fi.project_id"},
		"floating_network_id": {expr: "fi.floating_network_id"}, "floating_ip_address": {expr: "fi.floating_ip_address"},
		"port_id": {expr: "fi.port_id", nullable: true}, "fixed_ip_address": {expr: "fi.fixed_ip_address", nullable: true},
		"router_id": {expr: "fi.router_id", nullable: true}, "status": {expr: "fi.status"},
		"dns_name": {expr: "fi.dns_name"}, "dns_domain": {expr: "fi.dns_domain"},
		"revision_number": {expr: "fi.revision_number", kind: kInt},
		"created_at":      {expr: "fi.created_at"}, "updated_at": {expr: "fi.updated_at"},
	},
	attrs: []string{"tags", "port_details", "qos_policy_id", "port_forwardings"},
}

func renderFIP(f *FloatingIP) map[string]any {
	return map[string]any{
		"id": f.ID, "project_id": f.ProjectID, "tenant_id": f.ProjectID, "floating_network_id": f.NetworkID,
		"floating_ip_address": f.Address, "port_id": nilIfEmpty(f.PortID), "fixed_ip_address": nilIfEmpty(f.FixedIP),
		"router_id": nilIfEmpty(f.RouterID), "status": f.Status, "description": f.Description,
		"dns_name": f.DNSName, "dns_domain": f.DNSDomain, "port_forwardings": fipForwardingsView(f.PortForwardings), "tags": nonNil(f.Tags),
		"revision_number": f.Revision, "created_at": stamp(f.CreatedAt), "updated_at": stamp(f.UpdatedAt),
	}
}

func fipNotFound(id string) error {
	return notFound("FloatingIPNotFound", "Floating IP %s could not be found", id)
}

func (s *Service) loadFIPFor(ctx context.Context, q db.Querier, c *caller, id, rule, forUpdate string) (*FloatingIP, error) {
	f, err := scanFIP(q.QueryRowContext(ctx, "SELECT "+fipCols+" FROM net_floatingips fi WHERE fi.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, fipNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if !c.admin && f.ProjectID != c.ProjectID {
		return nil, fipNotFound(id)
	}
	if err := s.authorize(c, rule, ownerTarget(f.ProjectID)); err != nil {
		return nil, err
	}
	if err := loadFIPForwardings(ctx, q, []*FloatingIP{f}); err != nil {
		return nil, err
	}
	return f, loadTags(ctx, q, "floatingip", []string{id}, func(_ string, t []string) { f.Tags = t })
}

func (s *Service) listFloatingIPs(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := fipDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		lq.b.add("fi.project_id = " + lq.b.arg(c.ProjectID))
	}
	ctx := r.Context()
	fips, more, err := listRows(ctx, s.db.Reader(), fipDef, lq, fipCols, func(rows *sql.Rows) (*FloatingIP, error) { return scanFIP(rows) })
	if err != nil {
		return nil, err
	}
	byID := map[string]*FloatingIP{}
	ids := make([]string, len(fips))
	for i, f := range fips {
		byID[f.ID], ids[i] = f, f.ID
	}
	if err := loadTags(ctx, s.db.Reader(), "floatingip", ids, func(id string, t []string) { byID[id].Tags = t }); err != nil {
		return nil, err
	}
	if err := loadFIPForwardings(ctx, s.db.Reader(), fips); err != nil {
		return nil, err
	}
	items := make([]map[string]any, len(fips))
	for i, f := range fips {
		items[i] = selectFields(renderFIP(f), lq.fields)
	}
	return s.listResponse(r, lq, "floatingips", items, more), nil
}

func (s *Service) showFloatingIP(r *http.Request) (*apiutil.Response, error) {
	f, err := s.loadFIPFor(r.Context(), s.db.Reader(), s.caller(r), r.PathValue("id"), "get_floatingip", "")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"floatingip": selectFields(renderFIP(f), showFields(r))}), nil
}

// associate points a floating IP at a port's fixed address, through the
// router that connects the port's subnet to the floating network.
func (tx *txn) associate(ctx context.Context, c *caller, f *FloatingIP, portID, fixed string) error {
	if portID == "" {
		f.PortID, f.FixedIP, f.Status = "", "", "DOWN"
		if len(f.PortForwardings) == 0 {
			f.RouterID = ""
		}
		return nil
	}
	if len(f.PortForwardings) > 0 {
		return conflict("FipInUseByPortForwarding", "Floating IP %s in use by Port Forwarding resources.", f.ID)
	}
	p, err := loadPort(ctx, tx, portID, "")
	if err != nil {
		return err
	}
	if !c.admin && p.ProjectID != f.ProjectID {
		return portNotFound(portID)
	}
	var chosen *fixedIP
	for i, ip := range p.FixedIPs {
		a, _ := netip.ParseAddr(ip.IPAddress)
		if !a.Is4() {
			continue
		}
		if fixed == "" || fixed == ip.IPAddress {
			chosen = &p.FixedIPs[i]
			break
		}
	}
	if chosen == nil {
		if fixed != "" {
			return badRequest("BadRequest", "Bad floatingip request: Port %s does not have fixed ip %s.", portID, fixed)
		}
		return badRequest("BadRequest", "Bad floatingip request: No IPv4 addresses found on port %s.", portID)
	}
	var other string
	err = tx.QueryRowContext(ctx, `SELECT id FROM net_floatingips WHERE port_id = $1 AND fixed_ip_address = $2 AND id <> $3`,
		portID, chosen.IPAddress, f.ID).Scan(&other)
	if err == nil {
		return conflict("FloatingIPPortAlreadyAssociated", "Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
			f.Address, f.ID, portID, chosen.IPAddress, f.NetworkID)
	}
	if err != sql.ErrNoRows {
		return err
	}
	var router string
	err = tx.QueryRowContext(ctx, `SELECT rt.id FROM net_routers rt WHERE rt.gw_network_id = $1 AND rt.id IN (
		SELECT p.device_id FROM net_ports p JOIN net_ip_allocations a ON a.port_id = p.id
		WHERE p.device_owner = 'network:router_interface' AND a.subnet_id = $2) ORDER BY rt.id`, f.NetworkID, chosen.SubnetID).Scan(&router)
	if err == sql.ErrNoRows {
		return notFound("ExternalGatewayForFloatingIPNotFound", "External network %s is not reachable from subnet %s. Therefore, cannot associate Port %s with a Floating IP.", f.NetworkID, chosen.SubnetID, portID)
	}
	if err != nil {
		return err
	}
	f.PortID, f.FixedIP, f.RouterID, f.Status = portID, chosen.IPAddress, router, "ACTIVE"
	return nil
}

func (s *Service) createFloatingIP(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "floatingip", "floatingips", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("POST", []string{"floating_network_id", "floating_ip_address", "subnet_id", "port_id", "fixed_ip_address",
		"description", "dns_name", "dns_domain", "project_id", "tenant_id", "tags"}, []string{"id", "status", "router_id"}); err != nil {
		return nil, err
	}
	f := &FloatingIP{ID: newID(), Status: "DOWN"}
	if f.ProjectID, err = a.project(c.ProjectID); err != nil {
		return nil, err
	}
	if err := s.authorize(c, "create_floatingip", ownerTarget(f.ProjectID)); err != nil {
		return nil, err
	}
	var ok bool
	if f.NetworkID, ok, err = a.uuid("floating_network_id"); err != nil {
		return nil, err
	} else if !ok {
		return nil, badInput("Failed to parse request. Required attribute 'floating_network_id' not specified")
	}
	var ipReq ipRequest
	if ipReq.subnetID, _, err = a.uuid("subnet_id"); err != nil {
		return nil, err
	}
	if v, ok, err := a.str("floating_ip_address", 0); err != nil {
		return nil, err
	} else if ok {
		if err := s.authorize(c, "create_floatingip:floating_ip_address", ownerTarget(f.ProjectID)); err != nil {
			return nil, err
		}
		if ipReq.ip, err = parseIP("floating_ip_address", v); err != nil {
			return nil, err
		}
	}
	portID, _, err := a.uuid("port_id")
	if err != nil {
		return nil, err
	}
	fixed, _, err := a.str("fixed_ip_address", 0)
	if err != nil {
		return nil, err
	}
	if f.Description, _, err = a.str("description", 255); err != nil {
		return nil, err
	}
	if f.DNSName, _, err = a.str("dns_name", 255); err != nil {
		return nil, err
	}
	if f.DNSDomain, _, err = a.str("dns_domain", 255); err != nil {
		return nil, err
	}
	tags, _, err := a.strList("tags")
	if err != nil {
		return nil, err
	}
	if err := validateTags(tags); err != nil {
		return nil, err
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		n, err := loadNetwork(ctx, tx, f.NetworkID, "")
		if err != nil {
			return err
		}
		if !n.External {
			return badRequest("BadRequest", "Bad floatingip request: Network %s is not a valid external network.", n.ID)
		}
		if err := tx.checkQuota(ctx, "floatingip", f.ProjectID, 1); err != nil {
			return err
		}
		var reqs []ipRequest
		explicit := false
		if ipReq.subnetID != "" || ipReq.ip.IsValid() {
			reqs, explicit = []ipRequest{ipReq}, true
		}
		p, err := tx.createPort(ctx, systemCaller, &portReq{a: attrs{}, ips: reqs, ipsSet: explicit, psSet: true,
			p: Port{NetworkID: n.ID, DeviceOwner: "network:floatingip", DeviceID: f.ID, AdminStateUp: true,
				VNICType: "normal", Status: "N/A"}})
		if err != nil {
			return err
		}
		var v4 string
		for _, ip := range p.FixedIPs {
			if a, _ := netip.ParseAddr(ip.IPAddress); a.Is4() {
				v4 = ip.IPAddress
			}
		}
		if v4 == "" {
			return conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
		}
		f.Address, f.FloatingPortID = v4, p.ID
		if err := tx.associate(ctx, c, f, portID, fixed); err != nil {
			return err
		}
		now := s.nowUTC()
		f.CreatedAt, f.UpdatedAt = now, now
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_floatingips (id, project_id, floating_network_id, floating_ip_address,
			floating_port_id, port_id, fixed_ip_address, router_id, status, description, dns_name, dns_domain, revision_number,
			created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14)`,
			f.ID, f.ProjectID, f.NetworkID, f.Address, f.FloatingPortID, nullStr(f.PortID, f.PortID != ""),
			nullStr(f.FixedIP, f.FixedIP != ""), nullStr(f.RouterID, f.RouterID != ""), f.Status, f.Description, f.DNSName,
			f.DNSDomain, db.FormatTime(now), db.FormatTime(now)); err != nil {
			return err
		}
		if len(tags) > 0 {
			if err := tx.setTags(ctx, "floatingip", f.ID, tags); err != nil {
				return err
			}
			f.Tags = sortedTags(tags)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"floatingip": renderFIP(f)}), nil
}

func (s *Service) updateFloatingIP(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "floatingip", "floatingips", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", []string{"port_id", "fixed_ip_address", "description"}, []string{"floating_network_id", "floating_ip_address", "id", "status"}); err != nil {
		return nil, err
	}
	ctx := r.Context()
	var out *FloatingIP
	var changed []string // ports whose floating IP changed
	err = s.withTx(ctx, func(tx *txn) error {
		f, err := s.loadFIPFor(ctx, tx, c, r.PathValue("id"), "update_floatingip", s.db.ForUpdate())
		if err != nil {
			return err
		}
		oldPort := f.PortID
		defer func() {
			changed = nil
			for _, p := range []string{oldPort, f.PortID} {
				if p != "" && (p != oldPort || p != f.PortID) {
					changed = append(changed, p)
				}
			}
		}()
		if err := ifMatch(r, f.Revision); err != nil {
			return err
		}
		if err := a.setStr("description", 255, &f.Description); err != nil {
			return err
		}
		if pid, valid, present, err := a.nullableStr("port_id"); err != nil {
			return err
		} else if present {
			if valid && !isUUID(pid) {
				return invalidAttr("port_id", "'%s' is not a valid UUID", pid)
			}
			fixed, _, err := a.str("fixed_ip_address", 0)
			if err != nil {
				return err
			}
			if err := tx.associate(ctx, c, f, pid, fixed); err != nil {
				return err
			}
		}
		f.Revision++
		f.UpdatedAt = s.nowUTC()
		_, err = tx.ExecContext(ctx, `UPDATE net_floatingips SET port_id = $1, fixed_ip_address = $2, router_id = $3, status = $4,
			description = $5, revision_number = $6, updated_at = $7 WHERE id = $8`, nullStr(f.PortID, f.PortID != ""),
			nullStr(f.FixedIP, f.FixedIP != ""), nullStr(f.RouterID, f.RouterID != ""), f.Status, f.Description, f.Revision,
			db.FormatTime(f.UpdatedAt), f.ID)
		out = f
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notifyNetworkChanged(ctx, changed)
	return apiutil.JSON(200, map[string]any{"floatingip": renderFIP(out)}), nil
}

// notifyNetworkChanged tells Compute that the addresses of servers'
// ports changed (network-changed, as Neutron does for floating IPs).
func (s *Service) notifyNetworkChanged(ctx context.Context, portIDs []string) {
	var events []ServerEvent
	for _, id := range portIDs {
		var dev, owner string
		err := s.db.Reader().QueryRowContext(ctx, `SELECT device_id, device_owner FROM net_ports WHERE id = $1`, id).Scan(&dev, &owner)
		if err == nil && dev != "" && strings.HasPrefix(owner, "compute:") {
			events = append(events, ServerEvent{Name: "network-changed", ServerUUID: dev, Tag: id, Status: "completed"})
		}
	}
	s.notify(ctx, events)
}

func (s *Service) deleteFloatingIP(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		f, err := s.loadFIPFor(ctx, tx, c, r.PathValue("id"), "delete_floatingip", s.db.ForUpdate())
		if err != nil {
			return err
		}
		if err := ifMatch(r, f.Revision); err != nil {
			return err
		}
		if err := tx.deletePFs(ctx, `floatingip_id = $1`, f.ID); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM net_tags WHERE resource_type = 'floatingip' AND resource_id = $1`, `DELETE FROM net_floatingips WHERE id = $1`} {
			if _, err := tx.ExecContext(ctx, q, f.ID); err != nil {
				return err
			}
		}
		return tx.deletePortRow(ctx, f.FloatingPortID)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
