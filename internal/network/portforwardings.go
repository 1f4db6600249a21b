package network

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Floating IP port forwardings (floating-ip-port-forwarding): traffic to
// one protocol port of a floating IP goes to a port of one of a Neutron
// port's IPv4 addresses. A floating IP with port forwardings cannot be
// associated with a port, nor the other way round; the first forwarding
// pins the floating IP to the router that joins the internal subnet to
// the floating network. Deleting the internal port deletes its
// forwardings; deleting the floating IP deletes its own.

// PortForwarding is a row of net_port_forwardings.
type PortForwarding struct {
	ID, FloatingIPID, InternalPortID, InternalIP, Protocol, Description string
	InternalPort, ExternalPort                                          int
}

var pfProtocols = []string{"tcp", "udp", "udplite", "sctp", "dccp"}

const pfCols = `id, floatingip_id, internal_port_id, internal_ip_address, protocol, description, internal_port, external_port`

func scanPF(row interface{ Scan(...any) error }) (*PortForwarding, error) {
	p := &PortForwarding{}
	err := row.Scan(&p.ID, &p.FloatingIPID, &p.InternalPortID, &p.InternalIP, &p.Protocol, &p.Description, &p.InternalPort, &p.ExternalPort)
	return p, err
}

func renderPF(p *PortForwarding) map[string]any {
	return map[string]any{"id": p.ID, "internal_port_id": p.InternalPortID, "internal_ip_address": p.InternalIP,
		"internal_port": p.InternalPort, "external_port": p.ExternalPort, "protocol": p.Protocol, "description": p.Description}
}

func pfNotFound(id string) error {
	return notFound("PortForwardingNotFound", "Port Forwarding %s could not be found.", id)
}

func pfBad(format string, args ...any) *apiutil.Error {
	return badRequest("BadRequest", "Bad port_forwarding request: "+format+".", args...)
}

func (s *Service) portForwardingRoutes(rt func(string, string, apiutil.Handler) apiutil.Route) []apiutil.Route {
	return []apiutil.Route{
		rt("GET", "/floatingips/{id}/port_forwardings", s.listPortForwardings),
		rt("POST", "/floatingips/{id}/port_forwardings", s.createPortForwarding),
		rt("GET", "/floatingips/{id}/port_forwardings/{pf_id}", s.showPortForwarding),
		rt("PUT", "/floatingips/{id}/port_forwardings/{pf_id}", s.updatePortForwarding),
		rt("DELETE", "/floatingips/{id}/port_forwardings/{pf_id}", s.deletePortForwarding),
	}
}

func fipPortForwardings(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, fipID string) ([]*PortForwarding, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+pfCols+" FROM net_port_forwardings WHERE floatingip_id = $1 ORDER BY external_port, protocol, id", fipID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*PortForwarding
	for rows.Next() {
		p, err := scanPF(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

var pfFilters = map[string]bool{"id": true, "external_port": true, "internal_port": true, "protocol": true,
	"internal_port_id": true, "internal_ip_address": true, "description": true}

func (s *Service) listPortForwardings(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	q := s.db.Reader()
	f, err := s.loadFIPFor(ctx, q, c, r.PathValue("id"), "get_floatingip_port_forwarding", "")
	if err != nil {
		return nil, err
	}
	pfs, err := fipPortForwardings(ctx, q, f.ID)
	if err != nil {
		return nil, err
	}
	query := r.URL.Query()
	for k := range query {
		if !pfFilters[k] && k != "fields" && k != "sort_key" && k != "sort_dir" && k != "limit" && k != "marker" {
			return nil, badInput("['%s'] is invalid attribute for filtering", k)
		}
	}
	items := []map[string]any{}
	for _, p := range pfs {
		m := renderPF(p)
		keep := true
		for k := range pfFilters {
			if vals, ok := query[k]; ok && !slices.Contains(vals, render(m[k])) {
				keep = false
			}
		}
		if keep {
			items = append(items, selectFields(m, showFields(r)))
		}
	}
	return apiutil.JSON(200, map[string]any{"port_forwardings": items}), nil
}

func (s *Service) loadPF(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, fipID, id string) (*PortForwarding, error) {
	p, err := scanPF(q.QueryRowContext(ctx, "SELECT "+pfCols+" FROM net_port_forwardings WHERE id = $1 AND floatingip_id = $2", id, fipID))
	if err == sql.ErrNoRows {
		return nil, pfNotFound(id)
	}
	return p, err
}

func (s *Service) showPortForwarding(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	q := s.db.Reader()
	f, err := s.loadFIPFor(ctx, q, c, r.PathValue("id"), "get_floatingip_port_forwarding", "")
	if err != nil {
		return nil, err
	}
	p, err := s.loadPF(ctx, q, f.ID, r.PathValue("pf_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"port_forwarding": selectFields(renderPF(p), showFields(r))}), nil
}

// parsePF applies the attributes of a create or update to p.
func parsePF(a attrs, p *PortForwarding) error {
	if v, ok, err := a.str("protocol", 0); err != nil {
		return err
	} else if ok {
		if !slices.Contains(pfProtocols, v) {
			return invalidAttr("protocol", "'%s' is not in %v", v, pfProtocols)
		}
		p.Protocol = v
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"internal_port", &p.InternalPort}, {"external_port", &p.ExternalPort}} {
		if n, valid, present, err := a.integer(f.name, 1, 65535, false); err != nil {
			return err
		} else if present && valid {
			*f.dst = int(n)
		}
	}
	if v, ok, err := a.uuid("internal_port_id"); err != nil {
		return err
	} else if ok {
		p.InternalPortID = v
	}
	if v, ok, err := a.str("internal_ip_address", 0); err != nil {
		return err
	} else if ok {
		ip, err := parseIP("internal_ip_address", v)
		if err != nil {
			return err
		}
		p.InternalIP = ip.String()
	}
	if err := a.setStr("description", 255, &p.Description); err != nil {
		return err
	}
	return nil
}

var pfAttrs = []string{"protocol", "internal_port", "external_port", "internal_port_id", "internal_ip_address", "description"}

// placePF checks a forwarding's internal side and finds the router
// joining it to the floating network; it pins the floating IP to it.
func (tx *txn) placePF(ctx context.Context, c *caller, f *FloatingIP, p *PortForwarding, ipGiven bool) error {
	port, err := loadPort(ctx, tx, p.InternalPortID, "")
	if err != nil {
		return err
	}
	if !c.admin && port.ProjectID != c.ProjectID {
		return portNotFound(p.InternalPortID)
	}
	var v4 []fixedIP
	for _, ip := range port.FixedIPs {
		if a, err := netip.ParseAddr(ip.IPAddress); err == nil && a.Is4() {
			v4 = append(v4, ip)
		}
	}
	if len(v4) == 0 {
		return pfBad("Requested internal port %s must allocate an IPv4 address at least", port.ID)
	}
	chosen := v4[0]
	if ipGiven {
		i := slices.IndexFunc(v4, func(x fixedIP) bool { return x.IPAddress == p.InternalIP })
		if i < 0 {
			return pfBad("Requested internal IP address %s is not suitable for internal neutron port %s, as its fixed_ips are %v", p.InternalIP, port.ID, v4)
		}
		chosen = v4[i]
	}
	p.InternalIP = chosen.IPAddress
	var router string
	err = tx.QueryRowContext(ctx, `SELECT rt.id FROM net_routers rt WHERE rt.gw_network_id = $1 AND rt.id IN (
		SELECT pp.device_id FROM net_ports pp JOIN net_ip_allocations a ON a.port_id = pp.id
		WHERE pp.device_owner = 'network:router_interface' AND a.subnet_id = $2) ORDER BY rt.id`, f.NetworkID, chosen.SubnetID).Scan(&router)
	if err == sql.ErrNoRows {
		return pfBad("External network %s is not reachable from subnet %s. Cannot set Port forwarding for port %s with Floating IP %s", f.NetworkID, chosen.SubnetID, port.ID, f.ID)
	}
	if err != nil {
		return err
	}
	if f.RouterID != "" && f.RouterID != router {
		return pfBad("The Floating IP %s had been set on router %s, the internal Neutron port %s can not reach it", f.ID, f.RouterID, port.ID)
	}
	if f.RouterID == "" {
		f.RouterID = router
		_, err = tx.ExecContext(ctx, `UPDATE net_floatingips SET router_id = $1, revision_number = revision_number + 1 WHERE id = $2`, router, f.ID)
	}
	return err
}

// checkPFUnique refuses a forwarding that repeats an external port of the
// floating IP or an internal address and port.
func (tx *txn) checkPFUnique(ctx context.Context, p *PortForwarding) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_port_forwardings WHERE id <> $1 AND protocol = $2 AND
		((floatingip_id = $3 AND external_port = $4) OR (internal_port_id = $5 AND internal_ip_address = $6 AND internal_port = $7))`,
		p.ID, p.Protocol, p.FloatingIPID, p.ExternalPort, p.InternalPortID, p.InternalIP, p.InternalPort).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return pfBad("A duplicate port forwarding entry with same attributes already exists, conflicting values are {'floatingip_id': '%s', 'external_port': %d}", p.FloatingIPID, p.ExternalPort)
	}
	return nil
}

func (tx *txn) savePF(ctx context.Context, p *PortForwarding, insert bool) error {
	q := `UPDATE net_port_forwardings SET floatingip_id = $2, internal_port_id = $3, internal_ip_address = $4, internal_port = $5,
		internal_port_end = $5, external_port = $6, external_port_end = $6, protocol = $7, description = $8 WHERE id = $1`
	if insert {
		q = `INSERT INTO net_port_forwardings (id, floatingip_id, internal_port_id, internal_ip_address, internal_port,
			internal_port_end, external_port, external_port_end, protocol, description) VALUES ($1, $2, $3, $4, $5, $5, $6, $6, $7, $8)`
	}
	_, err := tx.ExecContext(ctx, q, p.ID, p.FloatingIPID, p.InternalPortID, p.InternalIP, p.InternalPort, p.ExternalPort, p.Protocol, p.Description)
	return err
}

func (s *Service) createPortForwarding(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "port_forwarding", "port_forwardings", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("POST", pfAttrs, []string{"id", "floatingip_id"}); err != nil {
		return nil, err
	}
	p := &PortForwarding{ID: newID()}
	if err := parsePF(a, p); err != nil {
		return nil, err
	}
	for _, k := range []string{"protocol", "internal_port", "external_port", "internal_port_id"} {
		if !a.has(k) {
			return nil, badInput("Failed to parse request. Required attribute '%s' not specified", k)
		}
	}
	ctx := r.Context()
	err = s.withTx(ctx, func(tx *txn) error {
		f, err := s.loadFIPFor(ctx, tx, c, r.PathValue("id"), "create_floatingip_port_forwarding", s.db.ForUpdate())
		if err != nil {
			return err
		}
		if f.PortID != "" {
			return conflict("FloatingIPPortAlreadyAssociated", "Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
				f.Address, f.ID, p.InternalPortID, p.InternalIP, f.NetworkID)
		}
		p.FloatingIPID = f.ID
		if err := tx.placePF(ctx, c, f, p, a.has("internal_ip_address")); err != nil {
			return err
		}
		if err := tx.checkPFUnique(ctx, p); err != nil {
			return err
		}
		return tx.savePF(ctx, p, true)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"port_forwarding": renderPF(p)}), nil
}

func (s *Service) updatePortForwarding(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "port_forwarding", "port_forwardings", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", pfAttrs, []string{"id", "floatingip_id"}); err != nil {
		return nil, err
	}
	ctx := r.Context()
	var out *PortForwarding
	err = s.withTx(ctx, func(tx *txn) error {
		f, err := s.loadFIPFor(ctx, tx, c, r.PathValue("id"), "update_floatingip_port_forwarding", s.db.ForUpdate())
		if err != nil {
			return err
		}
		p, err := s.loadPF(ctx, tx, f.ID, r.PathValue("pf_id"))
		if err != nil {
			return err
		}
		oldPort := p.InternalPortID
		if err := parsePF(a, p); err != nil {
			return err
		}
		if p.InternalPortID != oldPort || a.has("internal_ip_address") {
			if p.InternalPortID != oldPort && !a.has("internal_ip_address") {
				p.InternalIP = ""
			}
			if err := tx.placePF(ctx, c, f, p, p.InternalIP != ""); err != nil {
				return err
			}
		}
		if err := tx.checkPFUnique(ctx, p); err != nil {
			return err
		}
		out = p
		return tx.savePF(ctx, p, false)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"port_forwarding": renderPF(out)}), nil
}

func (s *Service) deletePortForwarding(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		f, err := s.loadFIPFor(ctx, tx, c, r.PathValue("id"), "delete_floatingip_port_forwarding", s.db.ForUpdate())
		if err != nil {
			return err
		}
		p, err := s.loadPF(ctx, tx, f.ID, r.PathValue("pf_id"))
		if err != nil {
			return err
		}
		return tx.deletePFs(ctx, `id = $1`, p.ID)
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// deletePFs deletes forwardings matching cond (one argument) and frees
// the router of floating IPs left without forwardings or port.
func (tx *txn) deletePFs(ctx context.Context, cond string, arg any) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT floatingip_id FROM net_port_forwardings WHERE `+cond, arg)
	if err != nil {
		return err
	}
	var fips []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		fips = append(fips, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM net_port_forwardings WHERE `+cond, arg); err != nil {
		return err
	}
	for _, id := range fips {
		if _, err := tx.ExecContext(ctx, `UPDATE net_floatingips SET router_id = NULL WHERE id = $1 AND port_id IS NULL
			AND NOT EXISTS (SELECT 1 FROM net_port_forwardings WHERE floatingip_id = $1)`, id); err != nil {
			return err
		}
	}
	return nil
}

// fipForwardingsView is the "port_forwardings" of a floating IP view.
func fipForwardingsView(pfs []*PortForwarding) []any {
	out := []any{}
	for _, p := range pfs {
		out = append(out, map[string]any{"protocol": p.Protocol, "internal_ip_address": p.InternalIP,
			"internal_port": p.InternalPort, "external_port": p.ExternalPort})
	}
	return out
}

// loadFIPForwardings fills PortForwardings of floating IPs.
func loadFIPForwardings(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, fips []*FloatingIP) error {
	if len(fips) == 0 {
		return nil
	}
	byID := make(map[string]*FloatingIP, len(fips))
	ids := make([]string, len(fips))
	for i, f := range fips {
		byID[f.ID], ids[i] = f, f.ID
	}
	return inChunks(ids, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, "SELECT "+pfCols+" FROM net_port_forwardings WHERE floatingip_id IN ("+
			placeholders(len(chunk))+") ORDER BY external_port, protocol, id", chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPF(rows)
			if err != nil {
				return err
			}
			byID[p.FloatingIPID].PortForwardings = append(byID[p.FloatingIPID].PortForwardings, p)
		}
		return rows.Err()
	})
}

func placeholders(n int) string {
	out := make([]byte, 0, n*4)
	for i := 1; i <= n; i++ {
		if i > 1 {
			out = append(out, ", "...)
		}
		out = append(out, '$')
		out = strconv.AppendInt(out, int64(i), 10)
	}
	return string(out)
}
