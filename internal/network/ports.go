package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Port is a row of net_ports with its addresses, groups and tags.
type Port struct {
	ID, ProjectID, NetworkID, Name, Description string
	MAC, Status, DeviceID, DeviceOwner          string
	AdminStateUp, PortSecurity                  bool
	AddressPairs                                []addressPair
	HostID, VNICType, VIFType                   string
	VIFDetails, Profile                         map[string]any
	DNSName                                     string
	Revision                                    int64
	CreatedAt, UpdatedAt                        time.Time
	FixedIPs                                    []fixedIP
	SecurityGroups, Tags                        []string
}

type fixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

type addressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

const portCols = `p.id, p.project_id, p.network_id, p.name, p.description, p.mac_address, p.admin_state_up, p.status,
	p.device_id, p.device_owner, p.port_security_enabled, p.allowed_address_pairs, p.binding_host_id, p.binding_vnic_type,
	p.binding_vif_type, p.binding_vif_details, p.binding_profile, p.dns_name, p.revision_number, p.created_at, p.updated_at`

func scanPort(row interface{ Scan(...any) error }) (*Port, error) {
	p := &Port{}
	var pairs, details, profile string
	var created, updated sql.NullString
	if err := row.Scan(&p.ID, &p.ProjectID, &p.NetworkID, &p.Name, &p.Description, &p.MAC, &p.AdminStateUp, &p.Status,
		&p.DeviceID, &p.DeviceOwner, &p.PortSecurity, &pairs, &p.HostID, &p.VNICType, &p.VIFType, &details, &profile,
		&p.DNSName, &p.Revision, &created, &updated); err != nil {
		return nil, err
	}
	// Most ports have none of these: skip decoding the empty values.
	if pairs != "[]" {
		_ = json.Unmarshal([]byte(pairs), &p.AddressPairs)
	}
	if details != "{}" {
		_ = json.Unmarshal([]byte(details), &p.VIFDetails)
	}
	if profile != "{}" {
		_ = json.Unmarshal([]byte(profile), &p.Profile)
	}
	p.CreatedAt, p.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return p, nil
}

var portDef = &listDef{
	resource: "port", collection: "ports", notFound: "PortNotFound", table: "net_ports", alias: "p",
	cols: map[string]column{
		"id": {expr: "p.id"}, "name": {expr: "p.name"}, "description": {expr: "p.description"},
		"project_id": {expr: "p.project_id"}, "tenant_id": {expr: "p.project_id"}, "network_id": {expr: "p.network_id"},
		"mac_address": {expr: "p.mac_address"}, "admin_state_up": {expr: "p.admin_state_up", kind: kBool},
		"status": {expr: "p.status"}, "device_id": {expr: "p.device_id"}, "device_owner": {expr: "p.device_owner"},
		"port_security_enabled": {expr: "p.port_security_enabled", kind: kBool},
		"binding:host_id":       {expr: "p.binding_host_id"}, "binding:vnic_type": {expr: "p.binding_vnic_type"},
		"binding:vif_type": {expr: "p.binding_vif_type"}, "dns_name": {expr: "p.dns_name"},
		"revision_number": {expr: "p.revision_number", kind: kInt},
		"created_at":      {expr: "p.created_at"}, "updated_at": {expr: "p.updated_at"},
	},
	special: map[string]func(b *qb, vals []string) error{
		"fixed_ips": func(b *qb, vals []string) error {
			// fixed_ips=ip_address=10.0.0.2&fixed_ips=subnet_id=...: every
			// given key must match one of the port's addresses.
			var conds []string
			for _, v := range vals {
				k, val, ok := strings.Cut(v, "=")
				if !ok {
					return badInput("Invalid input for fixed_ips. Reason: '%s' is not of the form key=value.", v)
				}
				switch k {
				case "ip_address":
					conds = append(conds, "p.id IN (SELECT port_id FROM net_ip_allocations WHERE ip_address = "+b.arg(val)+")")
				case "ip_address_substr":
					conds = append(conds, "p.id IN (SELECT port_id FROM net_ip_allocations WHERE ip_address LIKE "+b.arg("%"+val+"%")+")")
				case "subnet_id":
					conds = append(conds, "p.id IN (SELECT port_id FROM net_ip_allocations WHERE subnet_id = "+b.arg(val)+")")
				default:
					return badInput("Invalid input for fixed_ips. Reason: '%s' is not a valid key.", k)
				}
			}
			b.add("(" + strings.Join(conds, " AND ") + ")")
			return nil
		},
		"security_groups": func(b *qb, vals []string) error {
			b.add("p.id IN (SELECT port_id FROM net_port_security_groups WHERE security_group_id IN (" + b.in(anys(vals)) + "))")
			return nil
		},
	},
	attrs: []string{"allowed_address_pairs", "binding:vif_details", "binding:profile", "dns_assignment", "tags", "ip_allocation"},
}

// portView is a port as the API shows it. It is a struct (not a map) so
// that long lists encode fast; binding attributes are only filled for
// callers allowed to see them.
type portView struct {
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	ProjectID      string          `json:"project_id"`
	TenantID       string          `json:"tenant_id"`
	NetworkID      string          `json:"network_id"`
	MAC            string          `json:"mac_address"`
	AdminStateUp   bool            `json:"admin_state_up"`
	Status         string          `json:"status"`
	DeviceID       string          `json:"device_id"`
	DeviceOwner    string          `json:"device_owner"`
	FixedIPs       []fixedIP       `json:"fixed_ips"`
	PortSecurity   bool            `json:"port_security_enabled"`
	SecurityGroups []string        `json:"security_groups"`
	AddressPairs   []addressPair   `json:"allowed_address_pairs"`
	VNICType       string          `json:"binding:vnic_type"`
	DNSName        string          `json:"dns_name"`
	DNSAssignment  []dnsAssignment `json:"dns_assignment"`
	IPAllocation   string          `json:"ip_allocation"`
	Tags           []string        `json:"tags"`
	Revision       int64           `json:"revision_number"`
	CreatedAt      string          `json:"created_at"`
	UpdatedAt      string          `json:"updated_at"`
	*portBindingView
}

type portBindingView struct {
	HostID     string         `json:"binding:host_id"`
	VIFType    string         `json:"binding:vif_type"`
	VIFDetails map[string]any `json:"binding:vif_details"`
	Profile    map[string]any `json:"binding:profile"`
}

type dnsAssignment struct {
	Hostname  string `json:"hostname"`
	IPAddress string `json:"ip_address"`
	FQDN      string `json:"fqdn"`
}

func (s *Service) portView(c *caller, p *Port) *portView {
	fips := p.FixedIPs
	if fips == nil {
		fips = []fixedIP{}
	}
	pairs := p.AddressPairs
	if pairs == nil {
		pairs = []addressPair{}
	}
	sgs := p.SecurityGroups
	if sgs == nil {
		sgs = []string{}
	}
	dns := make([]dnsAssignment, 0, len(fips))
	for _, f := range fips {
		host := p.DNSName
		if host == "" {
			host = "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(f.IPAddress)
		}
		dns = append(dns, dnsAssignment{Hostname: host, IPAddress: f.IPAddress, FQDN: host + "." + s.cfg.DNSDomain})
	}
	v := &portView{ID: p.ID, Name: p.Name, Description: p.Description, ProjectID: p.ProjectID, TenantID: p.ProjectID,
		NetworkID: p.NetworkID, MAC: p.MAC, AdminStateUp: p.AdminStateUp, Status: p.Status, DeviceID: p.DeviceID,
		DeviceOwner: p.DeviceOwner, FixedIPs: fips, PortSecurity: p.PortSecurity, SecurityGroups: sgs, AddressPairs: pairs,
		VNICType: p.VNICType, DNSName: p.DNSName, DNSAssignment: dns, IPAllocation: "immediate", Tags: nonNil(p.Tags),
		Revision: p.Revision, CreatedAt: stamp(p.CreatedAt), UpdatedAt: stamp(p.UpdatedAt)}
	if s.can(c, "get_port:binding:vif_type", ownerTarget(p.ProjectID)) {
		v.portBindingView = &portBindingView{HostID: p.HostID, VIFType: p.VIFType, VIFDetails: mapOrEmpty(p.VIFDetails),
			Profile: mapOrEmpty(p.Profile)}
	}
	return v
}

// renderPort is portView as a map, for field selection.
func (s *Service) renderPort(c *caller, p *Port, _ string) map[string]any {
	b, _ := json.Marshal(s.portView(c, p))
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// fillPorts loads addresses, security groups and tags of ports in batches.
// The ids go as one JSON array parameter: a statement with hundreds of
// placeholders costs SQLite more to prepare than to run.
func fillPorts(ctx context.Context, q db.Querier, ports []*Port) error {
	if len(ports) == 0 {
		return nil
	}
	byID := make(map[string]*Port, len(ports))
	ids := make([]string, len(ports))
	for i, p := range ports {
		byID[p.ID] = p
		ids[i] = p.ID
	}
	in, arg := idsIn(q, ids)
	rows, err := q.QueryContext(ctx, "SELECT a.port_id, a.subnet_id, a.ip_address FROM net_ip_allocations a JOIN net_subnets s ON s.id = a.subnet_id WHERE a.port_id "+
		in+" ORDER BY s.created_at, s.id, a.ip_address", arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pid string
		var f fixedIP
		if err := rows.Scan(&pid, &f.SubnetID, &f.IPAddress); err != nil {
			return err
		}
		byID[pid].FixedIPs = append(byID[pid].FixedIPs, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows2, err := q.QueryContext(ctx, "SELECT port_id, security_group_id FROM net_port_security_groups WHERE port_id "+in+" ORDER BY security_group_id", arg)
	if err != nil {
		return err
	}
	defer rows2.Close()
	for rows2.Next() {
		var pid, sg string
		if err := rows2.Scan(&pid, &sg); err != nil {
			return err
		}
		byID[pid].SecurityGroups = append(byID[pid].SecurityGroups, sg)
	}
	if err := rows2.Err(); err != nil {
		return err
	}
	return loadTags(ctx, q, "port", ids, func(id string, t []string) { byID[id].Tags = t })
}

// idsIn is "IN (…)" over ids passed as one JSON array parameter ($1), in
// the SQL of the querier's engine.
func idsIn(q db.Querier, ids []string) (string, any) {
	arg, _ := json.Marshal(ids)
	if isPostgres(q) {
		return "IN (SELECT jsonb_array_elements_text($1::jsonb))", string(arg)
	}
	return "IN (SELECT value FROM json_each($1))", string(arg)
}

func loadPort(ctx context.Context, q db.Querier, id, forUpdate string) (*Port, error) {
	p, err := scanPort(q.QueryRowContext(ctx, "SELECT "+portCols+" FROM net_ports p WHERE p.id = $1"+forUpdate, id))
	if err == sql.ErrNoRows {
		return nil, portNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return p, fillPorts(ctx, q, []*Port{p})
}

func networkOwner(ctx context.Context, q db.Querier, networkID string) string {
	var owner string
	_ = q.QueryRowContext(ctx, `SELECT project_id FROM net_networks WHERE id = $1`, networkID).Scan(&owner)
	return owner
}

func portTarget(p *Port, netOwner string) map[string]string {
	t := ownerTarget(p.ProjectID)
	t["network:project_id"] = netOwner
	t["network:tenant_id"] = netOwner
	t["device_owner"] = p.DeviceOwner
	return t
}

// portVisible: own ports and ports on networks the caller owns.
func portVisible(c *caller, p *Port, netOwner string) bool {
	return c.admin || p.ProjectID == c.ProjectID || netOwner == c.ProjectID
}

func (s *Service) listPorts(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	lq, err := portDef.parseList(r, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		// Binding attributes are admin-only, so are filters on them.
		for _, k := range []string{"binding:host_id", "binding:vif_type"} {
			if r.URL.Query().Has(k) {
				lq.b.add("FALSE")
			}
		}
		pp := lq.b.arg(c.ProjectID)
		lq.b.add("(p.project_id = " + pp + " OR p.network_id IN (SELECT id FROM net_networks WHERE project_id = " + pp + "))")
	}
	ctx := r.Context()
	q := s.db.Reader()
	ports, more, err := listRows(ctx, q, portDef, lq, portCols, func(rows *sql.Rows) (*Port, error) { return scanPort(rows) })
	if err != nil {
		return nil, err
	}
	if err := fillPorts(ctx, q, ports); err != nil {
		return nil, err
	}
	if len(lq.fields) > 0 {
		items := make([]map[string]any, len(ports))
		for i, p := range ports {
			items[i] = selectFields(s.renderPort(c, p, ""), lq.fields)
		}
		return s.listResponse(r, lq, "ports", items, more), nil
	}
	items := make([]*portView, len(ports))
	for i, p := range ports {
		items[i] = s.portView(c, p)
	}
	var first, last string
	if len(items) > 0 {
		first, last = items[0].ID, items[len(items)-1].ID
	}
	return s.listResponseOf(r, lq, "ports", items, len(items), first, last, more), nil
}

func (s *Service) showPort(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	ctx := r.Context()
	q := s.db.Reader()
	p, err := loadPort(ctx, q, r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	owner := networkOwner(ctx, q, p.NetworkID)
	if !portVisible(c, p, owner) || s.authorize(c, "get_port", portTarget(p, owner)) != nil {
		return nil, portNotFound(p.ID)
	}
	return apiutil.JSON(200, map[string]any{"port": selectFields(s.renderPort(c, p, owner), showFields(r))}), nil
}

var portPostAttrs = []string{"name", "description", "network_id", "mac_address", "admin_state_up", "fixed_ips",
	"device_id", "device_owner", "security_groups", "port_security_enabled", "allowed_address_pairs",
	"binding:host_id", "binding:vnic_type", "binding:profile", "dns_name", "project_id", "tenant_id", "tags"}
var portPutAttrs = []string{"name", "description", "mac_address", "admin_state_up", "fixed_ips", "device_id",
	"device_owner", "security_groups", "port_security_enabled", "allowed_address_pairs", "binding:host_id",
	"binding:vnic_type", "binding:profile", "dns_name"}
var portKnownAttrs = []string{"id", "status", "revision_number", "created_at", "updated_at", "binding:vif_type",
	"binding:vif_details", "dns_assignment", "ip_allocation"}

var vnicTypes = []string{"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
	"smart-nic", "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed"}

const maxAddressPairs = 10

var dnsNameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// ipRequest is one requested fixed IP.
type ipRequest struct {
	subnetID string
	ip       netip.Addr
}

// portReq is a validated port create or update.
type portReq struct {
	a       attrs
	p       Port
	ips     []ipRequest
	ipsSet  bool
	sgs     []string
	sgsSet  bool
	pairSet bool
	psSet   bool
	tags    []string
}

func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || hw[0]&1 == 1 || hw.String() == "00:00:00:00:00:00" {
		return "", invalidAttr("mac_address", "'%s' is not a valid MAC address", s)
	}
	return hw.String(), nil
}

// parsePortAttrs reads the attributes common to create and update.
func parsePortAttrs(a attrs, req *portReq) error {
	p := &req.p
	var err error
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"name", &p.Name, 255}, {"description", &p.Description, 255}, {"device_id", &p.DeviceID, 255},
		{"device_owner", &p.DeviceOwner, 255}, {"binding:host_id", &p.HostID, 255}} {
		if v, ok, err := a.str(f.name, f.max); err != nil {
			return err
		} else if ok {
			*f.dst = v
		}
	}
	if v, ok, err := a.str("dns_name", 255); err != nil {
		return err
	} else if ok {
		if v != "" && !dnsNameRE.MatchString(v) {
			return invalidAttr("dns_name", "'%s' not a valid PQDN or FQDN", v)
		}
		p.DNSName = v
	}
	if v, ok, err := a.str("binding:vnic_type", 0); err != nil {
		return err
	} else if ok {
		if !slices.Contains(vnicTypes, v) {
			return invalidAttr("binding:vnic_type", "'%s' is not in %v", v, vnicTypes)
		}
		p.VNICType = v
	}
	if v, ok := a["binding:profile"]; ok {
		m, isMap := v.(map[string]any)
		if v != nil && !isMap {
			return invalidAttr("binding:profile", "'%v' is not a dictionary", render(v))
		}
		p.Profile = m
	}
	if err := a.setBool("admin_state_up", &p.AdminStateUp); err != nil {
		return err
	}
	if v, ok, err := a.boolean("port_security_enabled"); err != nil {
		return err
	} else if ok {
		p.PortSecurity, req.psSet = v, true
	}
	if v, ok, err := a.str("mac_address", 0); err != nil {
		return err
	} else if ok {
		if p.MAC, err = parseMAC(v); err != nil {
			return err
		}
	}
	if list, ok, err := a.objList("fixed_ips"); err != nil {
		return err
	} else if ok {
		req.ipsSet = true
		req.ips = nil
		for _, f := range list {
			if err := f.checkKeys("POST", []string{"subnet_id", "ip_address"}, nil); err != nil {
				return invalidAttr("fixed_ips", "unrecognized keys in fixed ip")
			}
			var ir ipRequest
			if ir.subnetID, _, err = f.uuid("subnet_id"); err != nil {
				return err
			}
			if v, ok, err := f.str("ip_address", 0); err != nil {
				return err
			} else if ok {
				if ir.ip, err = parseIP("ip_address", v); err != nil {
					return err
				}
			}
			if ir.subnetID == "" && !ir.ip.IsValid() {
				return invalidAttr("fixed_ips", "each fixed ip needs a subnet_id or an ip_address")
			}
			if ir.ip.IsValid() && slices.ContainsFunc(req.ips, func(o ipRequest) bool { return o.ip == ir.ip }) {
				return invalidAttr("fixed_ips", "Duplicate IP address '%s'", ir.ip)
			}
			req.ips = append(req.ips, ir)
		}
	}
	if list, ok, err := a.strList("security_groups"); err != nil {
		return err
	} else if ok {
		req.sgsSet = true
		req.sgs = nil
		for _, sg := range list {
			if !isUUID(sg) {
				return invalidAttr("security_groups", "'%s' is not a valid UUID", sg)
			}
			if !slices.Contains(req.sgs, sg) {
				req.sgs = append(req.sgs, sg)
			}
		}
	}
	if list, ok, err := a.objList("allowed_address_pairs"); err != nil {
		return err
	} else if ok {
		req.pairSet = true
		if len(list) > maxAddressPairs {
			return badRequest("AllowedAddressPairExhausted", "The number of allowed address pair exceeds the maximum %d.", maxAddressPairs)
		}
		p.AddressPairs = []addressPair{}
		for _, x := range list {
			if err := x.checkKeys("POST", []string{"ip_address", "mac_address"}, nil); err != nil {
				return badRequest("AddressPairMissingIP", "Allowed address pair must contain ip_address")
			}
			ip, ok, err := x.str("ip_address", 0)
			if err != nil || !ok {
				return badRequest("AddressPairMissingIP", "Allowed address pair must contain ip_address")
			}
			if pr, err := netip.ParsePrefix(ip); err == nil {
				ip = pr.Masked().String()
				if pr.Bits() == pr.Addr().BitLen() {
					ip = pr.Addr().String()
				}
			} else if a, err := netip.ParseAddr(ip); err == nil {
				ip = a.String()
			} else {
				return invalidAttr("allowed_address_pairs", "'%s' is not a valid IP address or CIDR", ip)
			}
			mac, _, err := x.str("mac_address", 0)
			if err != nil {
				return err
			}
			if mac != "" {
				if mac, err = parseMAC(mac); err != nil {
					return err
				}
			}
			pair := addressPair{IPAddress: ip, MACAddress: mac}
			if slices.Contains(p.AddressPairs, pair) {
				return badRequest("DuplicateAddressPairInRequest", "Request contains duplicate address pair: mac_address %s ip_address %s.", mac, ip)
			}
			p.AddressPairs = append(p.AddressPairs, pair)
		}
	}
	if req.tags, _, err = a.strList("tags"); err != nil {
		return err
	}
	return validateTags(req.tags)
}

// authorizePortAttrs checks the attribute rules for the attributes the
// request sets.
func (s *Service) authorizePortAttrs(c *caller, action string, req *portReq, target map[string]string, networkShared bool) error {
	a := req.a
	check := func(attr string) error { return s.authorize(c, action+"_port:"+attr, target) }
	for _, k := range []string{"mac_address", "binding:host_id", "binding:profile", "binding:vnic_type", "port_security_enabled", "allowed_address_pairs"} {
		if a.has(k) {
			if err := check(k); err != nil {
				return err
			}
		}
	}
	if a.has("device_owner") && strings.HasPrefix(req.p.DeviceOwner, "network:") {
		if err := check("device_owner"); err != nil {
			return err
		}
	}
	for _, ir := range req.ips {
		if ir.ip.IsValid() {
			if err := check("fixed_ips:ip_address"); err != nil {
				return err
			}
		} else if ir.subnetID != "" && !networkShared {
			if err := check("fixed_ips:subnet_id"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) createPorts(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, bulk, err := readBody(r, "port", "ports", true)
	if err != nil {
		return nil, err
	}
	reqs := make([]*portReq, len(objs))
	for i, a := range objs {
		if err := a.checkKeys("POST", portPostAttrs, portKnownAttrs); err != nil {
			return nil, err
		}
		req := &portReq{a: a, p: Port{AdminStateUp: true, VNICType: "normal", Status: "DOWN"}}
		var ok bool
		if req.p.NetworkID, ok, err = a.uuid("network_id"); err != nil {
			return nil, err
		} else if !ok {
			return nil, badInput("Failed to parse request. Required attribute 'network_id' not specified")
		}
		if req.p.ProjectID, err = a.project(c.ProjectID); err != nil {
			return nil, err
		}
		if err := parsePortAttrs(a, req); err != nil {
			return nil, err
		}
		reqs[i] = req
	}
	ctx := r.Context()
	var created []*Port
	err = s.withTx(ctx, func(tx *txn) error {
		created = created[:0]
		for _, req := range reqs {
			r2 := *req
			p, err := tx.createPort(ctx, c, &r2)
			if err != nil {
				return err
			}
			created = append(created, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return createdResponse(bulk, "ports", "port", created, func(p *Port) map[string]any { return s.renderPort(c, p, "") }), nil
}

// createPort is the whole port create inside a transaction: policy,
// quota, MAC, addresses, security groups, binding.
func (tx *txn) createPort(ctx context.Context, c *caller, req *portReq) (*Port, error) {
	s := tx.s
	n, err := s.usableNetwork(ctx, tx, c, req.p.NetworkID)
	if err != nil {
		return nil, err
	}
	p := req.p
	if c != systemCaller {
		target := portTarget(&p, n.ProjectID)
		if err := s.authorize(c, "create_port", target); err != nil {
			return nil, err
		}
		if err := s.authorizePortAttrs(c, "create", req, target, n.Shared); err != nil {
			return nil, err
		}
		if err := tx.checkQuota(ctx, "port", p.ProjectID, 1); err != nil {
			return nil, err
		}
	}
	if !req.psSet {
		p.PortSecurity = n.PortSecurity
	}
	if len(p.AddressPairs) > 0 && !p.PortSecurity {
		return nil, conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
	}
	p.ID = newID()
	if p.MAC == "" {
		if p.MAC, err = tx.freeMAC(ctx, n.ID); err != nil {
			return nil, err
		}
	} else if err := tx.checkMAC(ctx, n.ID, p.MAC, ""); err != nil {
		return nil, err
	}
	if err := tx.resolveSecurityGroups(ctx, c, &p, req); err != nil {
		return nil, err
	}
	s.bindPort(&p, n)
	if p.HostID != "" {
		if p.Status, err = tx.boundStatus(ctx, &p); err != nil {
			return nil, err
		}
	}
	now := s.nowUTC()
	p.CreatedAt, p.UpdatedAt, p.Revision = now, now, 1
	_, err = tx.ExecContext(ctx, `INSERT INTO net_ports (id, project_id, network_id, name, description, mac_address,
		admin_state_up, status, device_id, device_owner, port_security_enabled, allowed_address_pairs, binding_host_id,
		binding_vnic_type, binding_vif_type, binding_vif_details, binding_profile, dns_name, revision_number, created_at,
		updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		p.ID, p.ProjectID, p.NetworkID, p.Name, p.Description, p.MAC, p.AdminStateUp, p.Status, p.DeviceID, p.DeviceOwner,
		p.PortSecurity, jsonText(pairsOrEmpty(p.AddressPairs)), p.HostID, p.VNICType, p.VIFType, jsonText(mapOrEmpty(p.VIFDetails)),
		jsonText(mapOrEmpty(p.Profile)), p.DNSName, p.Revision, db.FormatTime(now), db.FormatTime(now))
	if err != nil {
		if db.IsUniqueViolation(err) && req.a.has("mac_address") {
			return nil, conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", n.ID, p.MAC)
		}
		return nil, err
	}
	if p.FixedIPs, err = tx.allocateIPs(ctx, n, &p, req.ips, req.ipsSet, nil); err != nil {
		return nil, err
	}
	for _, sg := range p.SecurityGroups {
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_port_security_groups (port_id, security_group_id) VALUES ($1, $2)`, p.ID, sg); err != nil {
			return nil, err
		}
	}
	if len(req.tags) > 0 {
		if err := tx.setTags(ctx, "port", p.ID, req.tags); err != nil {
			return nil, err
		}
		p.Tags = sortedTags(req.tags)
	}
	return &p, nil
}

func pairsOrEmpty(p []addressPair) []addressPair {
	if p == nil {
		return []addressPair{}
	}
	return p
}

func mapOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// bindPort asks the backend to bind a port that names a host.
func (s *Service) bindPort(p *Port, n *Network) {
	if p.HostID == "" {
		p.VIFType, p.VIFDetails = "unbound", map[string]any{}
		return
	}
	b := s.backend.bind(PortBinding{PortID: p.ID, NetworkID: n.ID, Host: p.HostID, VNICType: p.VNICType,
		DeviceOwner: p.DeviceOwner, Segment: n.Segment, PortSecurity: p.PortSecurity})
	p.VIFType, p.VIFDetails = b.VIFType, b.VIFDetails
}

// freeMAC generates a MAC not used on the network.
func (tx *txn) freeMAC(ctx context.Context, networkID string) (string, error) {
	for range 16 {
		mac := tx.s.newMAC()
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND mac_address = $2`, networkID, mac).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return mac, nil
		}
	}
	return "", nerr(503, "MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", networkID)
}

func (tx *txn) checkMAC(ctx context.Context, networkID, mac, portID string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND mac_address = $2 AND id <> $3`,
		networkID, mac, portID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", networkID, mac)
	}
	return nil
}

// allocateIPs gives a port its addresses. With no explicit request it
// takes one address from the first IPv4 subnet with room, one from the
// first stateful IPv6 subnet with room, and a SLAAC address on every
// SLAAC subnet. kept are addresses the port holds already (an update):
// a SLAAC subnet among them needs no new address.
func (tx *txn) allocateIPs(ctx context.Context, n *Network, p *Port, reqs []ipRequest, explicit bool, kept []fixedIP) ([]fixedIP, error) {
	all, err := networkSubnets(ctx, tx, n.ID, tx.s.db.ForUpdate())
	if err != nil {
		return nil, err
	}
	// Only the subnets serving the port's device owner (service_types).
	subs := serviceSubnets(all, p.DeviceOwner)
	if len(subs) == 0 && len(all) > 0 {
		return nil, noServiceSubnet(n.ID, p.DeviceOwner)
	}
	byID := map[string]*Subnet{}
	for _, sn := range all {
		byID[sn.ID] = sn
	}
	router := isRouterInterface(p.DeviceOwner)
	var out []fixedIP
	add := func(sn *Subnet, ip netip.Addr) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO net_ip_allocations (subnet_id, ip_address, network_id, port_id) VALUES ($1, $2, $3, $4)`,
			sn.ID, ip.String(), n.ID, p.ID)
		if err != nil {
			return err
		}
		out = append(out, fixedIP{SubnetID: sn.ID, IPAddress: ip.String()})
		return nil
	}
	// addSLAAC gives the port its EUI-64 address on a SLAAC subnet (not
	// to router interfaces, which take the gateway).
	addSLAAC := func(sn *Subnet) error {
		if router {
			return nil
		}
		ip, ok := eui64(sn.CIDR, p.MAC)
		if !ok {
			return nil
		}
		if err := tx.claimSpecific(ctx, sn, ip, p); err != nil {
			return err
		}
		return add(sn, ip)
	}
	if !explicit {
		var v4, v6 bool
		for _, sn := range subs {
			switch {
			case sn.IPVersion == 6 && isSLAAC(sn.AddressMode):
				if err := addSLAAC(sn); err != nil {
					return nil, err
				}
			case sn.IPVersion == 4 && !v4, sn.IPVersion == 6 && !v6:
				ip, ok, err := tx.pickAddress(ctx, sn)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				if err := add(sn, ip); err != nil {
					return nil, err
				}
				if sn.IPVersion == 4 {
					v4 = true
				} else {
					v6 = true
				}
			}
		}
		if len(out) == 0 && len(subs) > 0 {
			return nil, conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
		}
		return out, nil
	}
	for _, r := range reqs {
		var sn *Subnet
		if r.subnetID != "" {
			sn = byID[r.subnetID]
			if sn == nil {
				return nil, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s", n.ID, r.subnetID)
			}
			if !slices.Contains(subs, sn) {
				return nil, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s", n.ID, r.subnetID)
			}
		} else {
			for _, x := range subs {
				if x.CIDR.Contains(r.ip) {
					sn = x
					break
				}
			}
			if sn == nil {
				return nil, badRequest("InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", r.ip)
			}
		}
		ip := r.ip
		switch {
		case ip.IsValid():
			if err := tx.claimSpecific(ctx, sn, ip, p); err != nil {
				return nil, err
			}
		case sn.IPVersion == 6 && isSLAAC(sn.AddressMode):
			var ok bool
			if ip, ok = eui64(sn.CIDR, p.MAC); !ok {
				return nil, conflict("IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", sn.ID)
			}
			if err := tx.claimSpecific(ctx, sn, ip, p); err != nil {
				return nil, err
			}
		default:
			var ok bool
			var err error
			if ip, ok, err = tx.pickAddress(ctx, sn); err != nil {
				return nil, err
			} else if !ok {
				return nil, conflict("IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", sn.ID)
			}
		}
		if err := add(sn, ip); err != nil {
			return nil, err
		}
	}
	// As in Neutron, a port that is not a router interface also gets its
	// address on every SLAAC (or DHCPv6-stateless) subnet of the network,
	// whatever fixed_ips asked for: the guest configures it from the
	// router's advertisements anyway.
	for _, sn := range subs {
		has := func(f fixedIP) bool { return f.SubnetID == sn.ID }
		if sn.IPVersion != 6 || !isSLAAC(sn.AddressMode) || slices.ContainsFunc(out, has) || slices.ContainsFunc(kept, has) {
			continue
		}
		if err := addSLAAC(sn); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// isRouterInterface reports whether a port of this device owner is a
// router's interface on its subnets (it takes their gateway, never a
// SLAAC address).
func isRouterInterface(owner string) bool {
	return strings.HasPrefix(owner, "network:router_interface") || owner == "network:ha_router_replicated_interface"
}

// claimSpecific checks that a requested address may be given to the port.
func (tx *txn) claimSpecific(ctx context.Context, sn *Subnet, ip netip.Addr, p *Port) error {
	if !sn.CIDR.Contains(ip) {
		return badRequest("InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", ip)
	}
	first, last := firstLast(sn.CIDR)
	if host := sn.CIDR.Addr().BitLen() - sn.CIDR.Bits(); host > 1 && (ip == first || (ip.Is4() && ip == last)) {
		return badRequest("InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", ip)
	}
	router := strings.HasPrefix(p.DeviceOwner, "network:router")
	if sn.Gateway == ip && !router {
		return conflict("IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, sn.ID)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ip_allocations WHERE subnet_id = $1 AND ip_address = $2`, sn.ID, ip.String()).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return conflict("IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, sn.ID)
	}
	return nil
}

// pickAddress chooses a free address in the subnet's pools.
func (tx *txn) pickAddress(ctx context.Context, sn *Subnet) (netip.Addr, bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT ip_address FROM net_ip_allocations WHERE subnet_id = $1`, sn.ID)
	if err != nil {
		return netip.Addr{}, false, err
	}
	used := map[netip.Addr]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return netip.Addr{}, false, err
		}
		if a, err := netip.ParseAddr(s); err == nil {
			used[a] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return netip.Addr{}, false, err
	}
	ip, ok := pickFree(sn.Pools, func(a netip.Addr) bool { return used[a] || a == sn.Gateway })
	return ip, ok, nil
}

func (s *Service) updatePort(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	objs, _, err := readBody(r, "port", "ports", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", portPutAttrs, append(portKnownAttrs, portPostAttrs...)); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out *Port
	var events []ServerEvent
	err = s.withTx(ctx, func(tx *txn) error {
		events = nil
		p, err := loadPort(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		n, err := loadNetwork(ctx, tx, p.NetworkID, "")
		if err != nil {
			return err
		}
		target := portTarget(p, n.ProjectID)
		if !portVisible(c, p, n.ProjectID) {
			return portNotFound(id)
		}
		if err := s.authorize(c, "update_port", target); err != nil {
			return err
		}
		if err := ifMatch(r, p.Revision); err != nil {
			return err
		}
		req := &portReq{a: a, p: *p}
		oldMAC, oldHost, oldVNIC := p.MAC, p.HostID, p.VNICType
		if err := parsePortAttrs(a, req); err != nil {
			return err
		}
		if err := s.authorizePortAttrs(c, "update", req, target, n.Shared); err != nil {
			return err
		}
		np := &req.p
		if np.MAC != oldMAC {
			if p.VIFType != "unbound" && p.VIFType != "binding_failed" && p.HostID != "" {
				return conflict("PortBound", "Unable to complete operation on port %s, port is already bound, port type: %s, old_mac %s, new_mac %s.", id, p.VIFType, oldMAC, np.MAC)
			}
			if err := tx.checkMAC(ctx, n.ID, np.MAC, id); err != nil {
				return err
			}
		}
		if len(np.AddressPairs) > 0 && !np.PortSecurity {
			return conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
		}
		if req.psSet && !np.PortSecurity && !req.sgsSet && len(p.SecurityGroups) > 0 {
			return conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or ip address until security group is removed.")
		}
		if req.sgsSet || (req.psSet && !np.PortSecurity) {
			if err := tx.resolveSecurityGroups(ctx, c, np, req); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM net_port_security_groups WHERE port_id = $1`, id); err != nil {
				return err
			}
			for _, sg := range np.SecurityGroups {
				if _, err := tx.ExecContext(ctx, `INSERT INTO net_port_security_groups (port_id, security_group_id) VALUES ($1, $2)`, id, sg); err != nil {
					return err
				}
			}
		}
		if req.ipsSet {
			old := slices.Clone(p.FixedIPs)
			if _, err := tx.ExecContext(ctx, `DELETE FROM net_ip_allocations WHERE port_id = $1`, id); err != nil {
				return err
			}
			fips, err := tx.allocateIPsKeeping(ctx, n, np, req.ips, old)
			if err != nil {
				return err
			}
			np.FixedIPs = fips
		}
		if np.HostID != oldHost || np.VNICType != oldVNIC || np.HostID != "" && p.VIFType == "binding_failed" {
			s.bindPort(np, n)
			if np.Status, err = tx.boundStatus(ctx, np); err != nil {
				return err
			}
			events = statusEvents(np, p.Status)
		}
		if np.MAC != oldMAC {
			// SLAAC addresses follow the MAC.
			for i, f := range np.FixedIPs {
				for _, sn := range mustSubnets(ctx, tx, n.ID) {
					if sn.ID == f.SubnetID && isSLAAC(sn.AddressMode) {
						if ip, ok := eui64(sn.CIDR, np.MAC); ok {
							if _, err := tx.ExecContext(ctx, `UPDATE net_ip_allocations SET ip_address = $1 WHERE subnet_id = $2 AND ip_address = $3`,
								ip.String(), sn.ID, f.IPAddress); err != nil {
								return err
							}
							np.FixedIPs[i].IPAddress = ip.String()
						}
					}
				}
			}
		}
		np.Revision++
		np.UpdatedAt = s.nowUTC()
		_, err = tx.ExecContext(ctx, `UPDATE net_ports SET name = $1, description = $2, mac_address = $3, admin_state_up = $4,
			device_id = $5, device_owner = $6, port_security_enabled = $7, allowed_address_pairs = $8, binding_host_id = $9,
			binding_vnic_type = $10, binding_vif_type = $11, binding_vif_details = $12, binding_profile = $13, dns_name = $14,
			revision_number = $15, updated_at = $16, status = $17 WHERE id = $18`, np.Name, np.Description, np.MAC, np.AdminStateUp,
			np.DeviceID, np.DeviceOwner, np.PortSecurity, jsonText(pairsOrEmpty(np.AddressPairs)), np.HostID, np.VNICType,
			np.VIFType, jsonText(mapOrEmpty(np.VIFDetails)), jsonText(mapOrEmpty(np.Profile)), np.DNSName, np.Revision,
			db.FormatTime(np.UpdatedAt), np.Status, id)
		out = np
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notify(ctx, events)
	return apiutil.JSON(200, map[string]any{"port": s.renderPort(c, out, "")}), nil
}

func mustSubnets(ctx context.Context, q db.Querier, networkID string) []*Subnet {
	subs, _ := networkSubnets(ctx, q, networkID, "")
	return subs
}

// allocateIPsKeeping re-allocates a port's addresses on update: requested
// addresses the port already has are kept, the others allocated anew,
// and the port keeps (or gets) its address on every SLAAC subnet of the
// network whether fixed_ips names it or not, as on create.
func (tx *txn) allocateIPsKeeping(ctx context.Context, n *Network, p *Port, reqs []ipRequest, old []fixedIP) ([]fixedIP, error) {
	var keep []fixedIP
	var rest []ipRequest
	for _, r := range reqs {
		i := slices.IndexFunc(old, func(f fixedIP) bool {
			if r.ip.IsValid() {
				return f.IPAddress == r.ip.String() && (r.subnetID == "" || r.subnetID == f.SubnetID)
			}
			return f.SubnetID == r.subnetID
		})
		if i < 0 {
			rest = append(rest, r)
			continue
		}
		keep = append(keep, old[i])
		old = slices.Delete(old, i, i+1)
	}
	for _, f := range keep {
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_ip_allocations (subnet_id, ip_address, network_id, port_id) VALUES ($1, $2, $3, $4)`,
			f.SubnetID, f.IPAddress, n.ID, p.ID); err != nil {
			return nil, err
		}
	}
	added, err := tx.allocateIPs(ctx, n, p, rest, true, keep)
	if err != nil {
		return nil, err
	}
	return append(keep, added...), nil
}

func (s *Service) deletePort(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	var events []ServerEvent
	err := s.withTx(ctx, func(tx *txn) error {
		events = nil
		p, err := loadPort(ctx, tx, id, s.db.ForUpdate())
		if err != nil {
			return err
		}
		if strings.HasPrefix(p.DeviceOwner, "compute:") && p.DeviceID != "" {
			events = []ServerEvent{{Name: "network-vif-deleted", ServerUUID: p.DeviceID, Tag: p.ID, Status: "completed"}}
		}
		owner := networkOwner(ctx, tx, p.NetworkID)
		if !portVisible(c, p, owner) {
			return portNotFound(id)
		}
		if err := s.authorize(c, "delete_port", portTarget(p, owner)); err != nil {
			return err
		}
		if err := ifMatch(r, p.Revision); err != nil {
			return err
		}
		switch p.DeviceOwner {
		case "network:router_interface", "network:router_gateway", "network:floatingip", "network:router_interface_distributed":
			var exists int
			_ = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_routers WHERE id = $1`, p.DeviceID).Scan(&exists)
			if exists > 0 || p.DeviceOwner == "network:floatingip" {
				return conflict("L3PortInUse", "Port %s has owner %s and therefore cannot be deleted directly via the port API.", id, p.DeviceOwner)
			}
		}
		return tx.deletePortRow(ctx, id)
	})
	if err != nil {
		return nil, err
	}
	s.notify(ctx, events)
	return apiutil.NoContent(), nil
}

// deletePortRow removes a port with its addresses, and unlinks floating
// IPs pointing at it.
func (tx *txn) deletePortRow(ctx context.Context, id string) error {
	if err := tx.deletePFs(ctx, `internal_port_id = $1`, id); err != nil {
		return err
	}
	for _, q := range []string{
		`UPDATE net_floatingips SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, status = 'DOWN' WHERE port_id = $1`,
		`DELETE FROM net_ip_allocations WHERE port_id = $1`,
		`DELETE FROM net_port_security_groups WHERE port_id = $1`,
		`DELETE FROM net_tags WHERE resource_type = 'port' AND resource_id = $1`,
		`DELETE FROM net_ports WHERE id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// isPostgres tells the engine behind a querier: a transaction of the
// service knows its database; a pool knows its driver.
func isPostgres(q db.Querier) bool {
	switch v := q.(type) {
	case *txn:
		return v.s.db.Dialect() == db.Postgres
	case *sql.DB:
		return strings.Contains(fmt.Sprintf("%T", v.Driver()), "stdlib") // pgx's database/sql driver
	}
	return false
}
