package network

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/db"
)

// This file is the Go API the compute service uses in process, the part
// of Neutron that Nova's network API talks to: which networks a project
// may boot on, ports created and bound for a server on its host, their
// release when the server goes, and the events (network-vif-plugged…)
// sent back to Compute when a port's status changes.
//
// Ports a server owns have device_id = the server's UUID and device_owner
// "compute:<zone>". Ports Compute created for a server are marked
// (compute_created) so that releasing the server deletes them, while a
// port the user created and passed in is only unbound and kept, as Nova
// does with "preserve_on_delete".

// ServerEvent is an external instance event for Compute
// (os-server-external-events): name, server, tag (the port id) and status.
type ServerEvent struct {
	Name, ServerUUID, Tag, Status string
}

// ComputeNotifier delivers server events to Compute; it is called after
// the change that caused them committed.
type ComputeNotifier func(ctx context.Context, events []ServerEvent)

// SetComputeNotifier installs where port events go (nil: nowhere).
func (s *Service) SetComputeNotifier(n ComputeNotifier) {
	s.notifyMu.Lock()
	s.notifier = n
	s.notifyMu.Unlock()
}

func (s *Service) notify(ctx context.Context, events []ServerEvent) {
	if len(events) == 0 {
		return
	}
	s.notifyMu.Lock()
	n := s.notifier
	s.notifyMu.Unlock()
	if n != nil {
		n(context.WithoutCancel(ctx), events)
	}
}

// NetInfo is a network as Compute sees it.
type NetInfo struct {
	ID, Name, ProjectID            string
	Shared, External, AdminStateUp bool
	MTU                            int
	Subnets                        []SubnetInfo
}

// SubnetInfo is a subnet of a NetInfo.
type SubnetInfo struct {
	ID        string
	CIDR      netip.Prefix
	IPVersion int
}

// ServerPort is a port as Compute sees it.
type ServerPort struct {
	ID, ProjectID, NetworkID, NetworkName string
	MAC, Status, DeviceID, DeviceOwner    string
	HostID, VIFType, VNICType, Tag        string
	VIFDetails                            map[string]any
	MTU                                   int
	ComputeCreated                        bool
	FixedIPs                              []PortIP
	FloatingIPs                           []FloatingAddr
}

// PortIP is a fixed address of a port.
type PortIP struct {
	SubnetID, Address string
	Version           int
}

// FloatingAddr is a floating IP associated with one of a port's addresses.
type FloatingAddr struct {
	Address, FixedIP string
}

// ServerPortRequest asks for one interface: an existing port, or a new
// port on a network (optionally with a fixed IP).
type ServerPortRequest struct {
	NetworkID, PortID string
	FixedIP           netip.Addr
	Tag               string
}

// ServerBinding says whose ports these are and where they are bound.
type ServerBinding struct {
	ServerUUID, ProjectID, Host, Zone string
}

// Errors of the compute API, matched with errors.Is.
var (
	ErrNetworkNotFound = errors.New("network not found")
	ErrPortNotFound    = errors.New("port not found")
	ErrPortInUse       = errors.New("port in use")
	ErrFixedIPInUse    = errors.New("fixed ip in use")
	ErrNoAutoTopology  = errors.New("auto allocation impossible")
)

// asCaller is how a Go API call is authorized: as the request's caller
// when ctx carries one, else as the service itself.
func (s *Service) asCaller(ctx context.Context) *caller {
	if ac := auth.From(ctx); ac != nil {
		return &caller{Context: ac, admin: ac.IsAdmin(), creds: ac.Policy()}
	}
	return systemCaller
}

// projectCaller acts for Compute on behalf of a project: ports it creates
// belong to and count against the project, and it may set bindings.
func projectCaller(project string) *caller {
	ac := &auth.Context{UserID: "kumo-compute", ProjectID: project,
		Roles: []auth.Role{{Name: "admin"}, {Name: "member"}, {Name: "reader"}, {Name: "service"}}}
	return &caller{Context: ac, admin: true, creds: ac.Policy()}
}

func netInfo(ctx context.Context, q db.Querier, n *Network) (*NetInfo, error) {
	subs, err := networkSubnets(ctx, q, n.ID, "")
	if err != nil {
		return nil, err
	}
	out := &NetInfo{ID: n.ID, Name: n.Name, ProjectID: n.ProjectID, Shared: n.Shared, External: n.External,
		AdminStateUp: n.AdminStateUp, MTU: n.MTU}
	for _, sn := range subs {
		out.Subnets = append(out.Subnets, SubnetInfo{ID: sn.ID, CIDR: sn.CIDR, IPVersion: sn.IPVersion})
	}
	return out, nil
}

// GetNetwork returns a network the caller of ctx can see, or an error
// wrapping ErrNetworkNotFound.
func (s *Service) GetNetwork(ctx context.Context, id string) (*NetInfo, error) {
	c := s.asCaller(ctx)
	q := s.db.Reader()
	if !isUUID(id) {
		return nil, fmt.Errorf("network %s: %w", id, ErrNetworkNotFound)
	}
	n, err := loadNetwork(ctx, q, id, "")
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("network %s: %w", id, ErrNetworkNotFound)
		}
		return nil, err
	}
	if !networkVisible(c, n) {
		return nil, fmt.Errorf("network %s: %w", id, ErrNetworkNotFound)
	}
	return netInfo(ctx, q, n)
}

// AvailableNetworks lists the networks a server of project boots on when
// it names none (Nova's rule): the project's own non-shared networks
// that are up, then the shared ones.
func (s *Service) AvailableNetworks(ctx context.Context, project string) ([]*NetInfo, error) {
	q := s.db.Reader()
	rows, err := q.QueryContext(ctx, "SELECT "+networkCols+` FROM net_networks n WHERE (n.project_id = $1 AND NOT n.shared
		AND n.admin_state_up) OR n.shared ORDER BY n.shared, n.created_at, n.id`, project)
	if err != nil {
		return nil, err
	}
	var nets []*Network
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		nets = append(nets, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*NetInfo, 0, len(nets))
	for _, n := range nets {
		ni, err := netInfo(ctx, q, n)
		if err != nil {
			return nil, err
		}
		out = append(out, ni)
	}
	return out, nil
}

func isNotFound(err error) bool {
	e := asNeutron(err)
	return e != nil && e.Status == 404
}

func asNeutron(err error) *apiutil.Error {
	var e *apiutil.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// GetPort returns a port the caller of ctx can see, or an error wrapping
// ErrPortNotFound.
func (s *Service) GetPort(ctx context.Context, id string) (*ServerPort, error) {
	c := s.asCaller(ctx)
	q := s.db.Reader()
	if !isUUID(id) {
		return nil, fmt.Errorf("port %s: %w", id, ErrPortNotFound)
	}
	p, err := loadPort(ctx, q, id, "")
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("port %s: %w", id, ErrPortNotFound)
		}
		return nil, err
	}
	if !portVisible(c, p, networkOwner(ctx, q, p.NetworkID)) {
		return nil, fmt.Errorf("port %s: %w", id, ErrPortNotFound)
	}
	out, err := s.serverPorts(ctx, q, []*Port{p})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// FixedIPUser returns the device using ip on a network ("" when free).
func (s *Service) FixedIPUser(ctx context.Context, networkID string, ip netip.Addr) (string, bool, error) {
	var dev string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT p.device_id FROM net_ip_allocations a JOIN net_ports p ON p.id = a.port_id
		WHERE a.network_id = $1 AND a.ip_address = $2`, networkID, ip.String()).Scan(&dev)
	if err == sql.ErrNoRows {
		return "", false, nil
	}
	return dev, err == nil, err
}

// serverPorts converts ports (with their addresses loaded) for Compute.
func (s *Service) serverPorts(ctx context.Context, q db.Querier, ports []*Port) ([]*ServerPort, error) {
	out := make([]*ServerPort, len(ports))
	if len(ports) == 0 {
		return out, nil
	}
	netIDs := map[string]bool{}
	portIDs := make([]string, len(ports))
	for i, p := range ports {
		netIDs[p.NetworkID] = true
		portIDs[i] = p.ID
	}
	type netRow struct {
		name string
		mtu  int
	}
	nets := map[string]netRow{}
	ids := make([]string, 0, len(netIDs))
	for id := range netIDs {
		ids = append(ids, id)
	}
	versions := map[string]int{}
	err := inChunks(ids, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, "SELECT id, name, mtu FROM net_networks WHERE id IN ("+db.Placeholders(1, len(chunk))+")", chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var n netRow
			if err := rows.Scan(&id, &n.name, &n.mtu); err != nil {
				return err
			}
			nets[id] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows2, err := q.QueryContext(ctx, "SELECT id, ip_version FROM net_subnets WHERE network_id IN ("+db.Placeholders(1, len(chunk))+")", chunk...)
		if err != nil {
			return err
		}
		defer rows2.Close()
		for rows2.Next() {
			var id string
			var v int
			if err := rows2.Scan(&id, &v); err != nil {
				return err
			}
			versions[id] = v
		}
		return rows2.Err()
	})
	if err != nil {
		return nil, err
	}
	fips := map[string][]FloatingAddr{}
	err = inChunks(portIDs, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, "SELECT port_id, floating_ip_address, fixed_ip_address FROM net_floatingips WHERE port_id IN ("+
			db.Placeholders(1, len(chunk))+") ORDER BY floating_ip_address", chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var pid, addr string
			var fixed sql.NullString
			if err := rows.Scan(&pid, &addr, &fixed); err != nil {
				return err
			}
			fips[pid] = append(fips[pid], FloatingAddr{Address: addr, FixedIP: fixed.String})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	extra, err := computeMarks(ctx, q, portIDs)
	if err != nil {
		return nil, err
	}
	for i, p := range ports {
		sp := &ServerPort{ID: p.ID, ProjectID: p.ProjectID, NetworkID: p.NetworkID, NetworkName: nets[p.NetworkID].name,
			MTU: nets[p.NetworkID].mtu, MAC: p.MAC, Status: p.Status, DeviceID: p.DeviceID, DeviceOwner: p.DeviceOwner,
			HostID: p.HostID, VIFType: p.VIFType, VNICType: p.VNICType, VIFDetails: p.VIFDetails,
			FloatingIPs: fips[p.ID], ComputeCreated: extra[p.ID].created, Tag: extra[p.ID].tag}
		for _, f := range p.FixedIPs {
			v := versions[f.SubnetID]
			if v == 0 {
				v = 4
				if a, err := netip.ParseAddr(f.IPAddress); err == nil && a.Is6() {
					v = 6
				}
			}
			sp.FixedIPs = append(sp.FixedIPs, PortIP{SubnetID: f.SubnetID, Address: f.IPAddress, Version: v})
		}
		out[i] = sp
	}
	return out, nil
}

type computeMark struct {
	created bool
	tag     string
}

func computeMarks(ctx context.Context, q db.Querier, portIDs []string) (map[string]computeMark, error) {
	out := map[string]computeMark{}
	err := inChunks(portIDs, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, "SELECT id, compute_created, compute_tag FROM net_ports WHERE id IN ("+
			db.Placeholders(1, len(chunk))+")", chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var m computeMark
			if err := rows.Scan(&id, &m.created, &m.tag); err != nil {
				return err
			}
			out[id] = m
		}
		return rows.Err()
	})
	return out, err
}

// loadServerPorts reads the ports of servers (device_id in uuids).
func loadServerPorts(ctx context.Context, q db.Querier, uuids []string, forUpdate string) ([]*Port, error) {
	var ports []*Port
	err := inChunks(uuids, func(chunk []any) error {
		rows, err := q.QueryContext(ctx, "SELECT "+portCols+" FROM net_ports p WHERE p.device_id IN ("+db.Placeholders(1, len(chunk))+
			") AND p.device_owner LIKE 'compute:%' ORDER BY p.created_at, p.id"+forUpdate, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPort(rows)
			if err != nil {
				return err
			}
			ports = append(ports, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return ports, fillPorts(ctx, q, ports)
}

// ServerPorts returns the ports of each server, in creation order.
func (s *Service) ServerPorts(ctx context.Context, uuids []string) (map[string][]*ServerPort, error) {
	q := s.db.Reader()
	ports, err := loadServerPorts(ctx, q, uuids, "")
	if err != nil {
		return nil, err
	}
	sps, err := s.serverPorts(ctx, q, ports)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]*ServerPort, len(uuids))
	for _, sp := range sps {
		out[sp.DeviceID] = append(out[sp.DeviceID], sp)
	}
	return out, nil
}

// AllocateServerPorts gives a server its interfaces, in one transaction:
// requested ports are claimed, ports on requested networks created, and
// every port of the server bound to b.Host. Repeating it is harmless:
// once the server has ports, it only (re)binds them, so a restarted
// conductor, an evacuation or an unshelve call it again. add (os-interface
// attach) creates the requested interfaces even when the server has
// ports already.
func (s *Service) AllocateServerPorts(ctx context.Context, b ServerBinding, reqs []ServerPortRequest, add bool) ([]*ServerPort, error) {
	var events []ServerEvent
	var result []*Port
	err := s.withTx(ctx, func(tx *txn) error {
		events, result = events[:0], result[:0]
		existing, err := loadServerPorts(ctx, tx, []string{b.ServerUUID}, s.db.ForUpdate())
		if err != nil {
			return err
		}
		var touched []*Port
		if len(existing) == 0 || add {
			for _, r := range reqs {
				p, err := tx.serverPort(ctx, b, r)
				if err != nil {
					return err
				}
				touched = append(touched, p)
			}
		}
		if !add {
			touched = append(existing, touched...)
		}
		for _, p := range touched {
			ev, err := tx.bindServerPort(ctx, p, b)
			if err != nil {
				return err
			}
			events = append(events, ev...)
		}
		result = touched
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(ctx, events)
	return s.serverPorts(ctx, s.db.Reader(), result)
}

// serverPort claims or creates the port of one request.
func (tx *txn) serverPort(ctx context.Context, b ServerBinding, r ServerPortRequest) (*Port, error) {
	owner := "compute:" + b.Zone
	if r.PortID != "" {
		p, err := loadPort(ctx, tx, r.PortID, tx.s.db.ForUpdate())
		if err != nil {
			if isNotFound(err) {
				return nil, fmt.Errorf("port %s: %w", r.PortID, ErrPortNotFound)
			}
			return nil, err
		}
		if p.DeviceID != "" && p.DeviceID != b.ServerUUID {
			return nil, fmt.Errorf("port %s: %w", r.PortID, ErrPortInUse)
		}
		p.DeviceID, p.DeviceOwner = b.ServerUUID, owner
		if _, err := tx.ExecContext(ctx, `UPDATE net_ports SET device_id = $1, device_owner = $2, compute_tag = $3,
			revision_number = revision_number + 1 WHERE id = $4`, p.DeviceID, p.DeviceOwner, r.Tag, p.ID); err != nil {
			return nil, err
		}
		return p, nil
	}
	req := &portReq{a: attrs{}, p: Port{NetworkID: r.NetworkID, ProjectID: b.ProjectID, DeviceID: b.ServerUUID,
		DeviceOwner: owner, AdminStateUp: true, VNICType: "normal", Status: "DOWN"}}
	if r.FixedIP.IsValid() {
		req.ipsSet, req.ips = true, []ipRequest{{ip: r.FixedIP}}
	}
	p, err := tx.createPort(ctx, projectCaller(b.ProjectID), req)
	if err != nil {
		if e := asNeutron(err); e != nil && e.Code == "NetworkNotFound" {
			return nil, fmt.Errorf("network %s: %w", r.NetworkID, ErrNetworkNotFound)
		}
		if e := asNeutron(err); e != nil && e.Code == "IpAddressAlreadyAllocated" {
			return nil, fmt.Errorf("%s: %w", e.Message, ErrFixedIPInUse)
		}
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE net_ports SET compute_created = TRUE, compute_tag = $1 WHERE id = $2`, r.Tag, p.ID); err != nil {
		return nil, err
	}
	return p, nil
}

// bindServerPort binds a port to a host (or unbinds it for host "") and
// sets its status: a port bound where no L2 agent runs is ACTIVE at once
// (there is nothing that would plug it: Neutron's noop mechanism), else
// DOWN until the agent reports it up (SetPortStatus).
func (tx *txn) bindServerPort(ctx context.Context, p *Port, b ServerBinding) ([]ServerEvent, error) {
	if p.HostID == b.Host && p.VIFType != "binding_failed" && (b.Host == "" || p.VIFType != "unbound") {
		return nil, nil
	}
	n, err := loadNetwork(ctx, tx, p.NetworkID, "")
	if err != nil {
		return nil, err
	}
	old := p.Status
	p.HostID = b.Host
	tx.s.bindPort(p, n)
	status := "DOWN"
	if b.Host != "" && p.VIFType != "binding_failed" && p.AdminStateUp {
		agent, err := tx.hostHasAgent(ctx, b.Host)
		if err != nil {
			return nil, err
		}
		if !agent {
			status = "ACTIVE"
		}
	}
	if b.Host != "" && p.VIFType == "binding_failed" {
		status = "DOWN"
	}
	p.Status = status
	_, err = tx.ExecContext(ctx, `UPDATE net_ports SET binding_host_id = $1, binding_vif_type = $2, binding_vif_details = $3,
		status = $4, revision_number = revision_number + 1, updated_at = $5 WHERE id = $6`, p.HostID, p.VIFType,
		jsonText(mapOrEmpty(p.VIFDetails)), p.Status, db.FormatTime(tx.s.nowUTC()), p.ID)
	if err != nil {
		return nil, err
	}
	return statusEvents(p, old), nil
}

// statusEvents are the events Neutron's Nova notifier sends for a port of
// a server whose status changed.
func statusEvents(p *Port, old string) []ServerEvent {
	if !strings.HasPrefix(p.DeviceOwner, "compute:") || p.DeviceID == "" || old == p.Status {
		return nil
	}
	switch {
	case p.Status == "ACTIVE":
		return []ServerEvent{{Name: "network-vif-plugged", ServerUUID: p.DeviceID, Tag: p.ID, Status: "completed"}}
	case p.Status == "ERROR":
		return []ServerEvent{{Name: "network-vif-plugged", ServerUUID: p.DeviceID, Tag: p.ID, Status: "failed"}}
	case old == "ACTIVE":
		return []ServerEvent{{Name: "network-vif-unplugged", ServerUUID: p.DeviceID, Tag: p.ID, Status: "completed"}}
	}
	return nil
}

// RebindServerPorts moves every port of a server to host ("" unbinds
// them, as a shelve offload does).
func (s *Service) RebindServerPorts(ctx context.Context, uuid, host, zone string) error {
	_, err := s.AllocateServerPorts(ctx, ServerBinding{ServerUUID: uuid, Host: host, Zone: zone}, nil, false)
	return err
}

// ReleaseServerPorts frees the ports of a server: the ones Compute
// created are deleted (their floating IPs disassociated), the others
// unbound and kept. portID limits it to one port (interface detach).
// Releasing what is already released is not an error.
func (s *Service) ReleaseServerPorts(ctx context.Context, uuid, portID string) error {
	var events []ServerEvent
	err := s.withTx(ctx, func(tx *txn) error {
		events = events[:0]
		ports, err := loadServerPorts(ctx, tx, []string{uuid}, s.db.ForUpdate())
		if err != nil {
			return err
		}
		marks, err := computeMarks(ctx, tx, portIDsOf(ports))
		if err != nil {
			return err
		}
		found := false
		for _, p := range ports {
			if portID != "" && p.ID != portID {
				continue
			}
			found = true
			events = append(events, ServerEvent{Name: "network-vif-deleted", ServerUUID: uuid, Tag: p.ID, Status: "completed"})
			if marks[p.ID].created {
				if err := tx.deletePortRow(ctx, p.ID); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE net_ports SET device_id = '', device_owner = '', binding_host_id = '',
				binding_vif_type = 'unbound', binding_vif_details = '{}', status = 'DOWN', compute_tag = '',
				revision_number = revision_number + 1, updated_at = $1 WHERE id = $2`, db.FormatTime(s.nowUTC()), p.ID); err != nil {
				return err
			}
		}
		if portID != "" && !found {
			return fmt.Errorf("port %s: %w", portID, ErrPortNotFound)
		}
		return nil
	})
	return err
}

func portIDsOf(ports []*Port) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = p.ID
	}
	return out
}

// SetPortStatus records a port's status as the L2 agent sees it (ACTIVE
// once its device is plugged and wired, DOWN when it goes away) and tells
// Compute: network-vif-plugged when a server's port becomes ACTIVE,
// network-vif-unplugged when it goes down.
func (s *Service) SetPortStatus(ctx context.Context, portID, status string) error {
	if !slices.Contains([]string{"ACTIVE", "DOWN", "BUILD", "ERROR"}, status) {
		return badInput("Invalid port status %s", status)
	}
	var events []ServerEvent
	err := s.withTx(ctx, func(tx *txn) error {
		p, err := loadPort(ctx, tx, portID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		old := p.Status
		if old == status {
			events = nil
			return nil
		}
		p.Status = status
		if _, err := tx.ExecContext(ctx, `UPDATE net_ports SET status = $1, revision_number = revision_number + 1, updated_at = $2
			WHERE id = $3`, status, db.FormatTime(s.nowUTC()), portID); err != nil {
			return err
		}
		events = statusEvents(p, old)
		return nil
	})
	if err != nil {
		return err
	}
	s.notify(ctx, events)
	return nil
}

// AutoAllocatedNetwork returns the project's network from Neutron's
// auto-allocated-topology (get-me-a-network), creating it when needed.
func (s *Service) AutoAllocatedNetwork(ctx context.Context, project string, dryRun bool) (string, error) {
	return s.autoAllocate(ctx, project, dryRun)
}
