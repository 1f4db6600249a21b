package network

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// The control-plane side of the network agents (internal/network/rpc):
// after every change the service recomputes each network's full desired
// state and publishes the networks whose state changed; it answers an
// agent's full sync, records heartbeats and port statuses, and creates
// the DHCP ports agents ask for.
//
// Changes are noticed twice: every successful write through the API
// kicks the publisher at once, and a cheap fingerprint of the tables is
// polled every second for writes made elsewhere (another API process, the
// compute side binding ports through the Go API).

// dataPlane is the publisher's state.
type dataPlane struct {
	kick chan struct{}

	mu      sync.Mutex
	gen     int64
	netHash map[string][32]byte
	rtrHash map[string][32]byte
	finger  string
}

func (d *dataPlane) init() {
	if d.kick == nil {
		d.kick = make(chan struct{}, 1)
		d.gen = time.Now().UnixNano()
		d.netHash = map[string][32]byte{}
		d.rtrHash = map[string][32]byte{}
	}
}

func (d *dataPlane) next() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	return d.gen
}

// changed tells the publisher that the desired state may have moved.
func (s *Service) changed() {
	select {
	case s.dp.kick <- struct{}{}:
	default:
	}
}

// notifyAfter wraps a writing handler so that a success kicks the publisher.
func (s *Service) notifyAfter(h apiutil.Handler) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		resp, err := h(r)
		if err == nil {
			s.changed()
		}
		return resp, err
	}
}

// runDataPlane serves the agents until ctx ends.
func (s *Service) runDataPlane(ctx context.Context) error {
	b := s.deps.Bus
	sub, err := b.Subscribe(rpc.SubjectServer, rpc.QueueServer, map[string]bus.Version{
		rpc.MsgSync: rpc.SyncVersion, rpc.MsgAgentReport: rpc.ReportVersion,
		rpc.MsgPortStatus: rpc.PortStatusVersion, rpc.MsgDHCPPort: rpc.DHCPPortVersion,
	}, s.onAgentMessage)
	if err != nil {
		return fmt.Errorf("network: subscribe %s: %w", rpc.SubjectServer, err)
	}
	defer sub.Unsubscribe()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.dp.kick:
			// Let a burst of writes settle into one publication.
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
		case <-poll.C:
			f, err := s.fingerprint(ctx)
			if err != nil {
				s.log.Warn("data plane fingerprint", "err", err)
				continue
			}
			s.dp.mu.Lock()
			same := f == s.dp.finger
			s.dp.mu.Unlock()
			if same {
				continue
			}
		}
		if err := s.publishChanges(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("publish desired state", "err", err)
		}
	}
}

// fingerprint summarizes the tables the desired state is made of.
func (s *Service) fingerprint(ctx context.Context) (string, error) {
	var parts []string
	for _, t := range []string{"net_networks", "net_subnets", "net_ports", "net_routers", "net_floatingips", "net_security_group_rules", "net_security_groups", "net_address_groups"} {
		var n, rev int64
		var upd sql.NullString
		if err := s.db.Reader().QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(revision_number), 0), MAX(updated_at) FROM "+t).Scan(&n, &rev, &upd); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprint(n, rev, upd.String))
	}
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM net_port_security_groups`).Scan(&n); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprint(n))
	return strings.Join(parts, "|"), nil
}

func hashOf(v any) [32]byte {
	b, _ := json.Marshal(v)
	return sha256.Sum256(b)
}

// publishChanges publishes the state of every network and router whose
// state differs from the last one published (deleted ones included).
func (s *Service) publishChanges(ctx context.Context) error {
	finger, err := s.fingerprint(ctx)
	if err != nil {
		return err
	}
	nets, rtrs, err := s.desiredState(ctx)
	if err != nil {
		return err
	}
	s.dp.mu.Lock()
	var pubN []*rpc.NetworkState
	seen := map[string]bool{}
	for _, n := range nets {
		seen[n.ID] = true
		h := hashOf(n)
		if s.dp.netHash[n.ID] != h {
			s.dp.netHash[n.ID] = h
			pubN = append(pubN, n)
		}
	}
	for id := range s.dp.netHash {
		if !seen[id] {
			delete(s.dp.netHash, id)
			pubN = append(pubN, &rpc.NetworkState{ID: id, Deleted: true})
		}
	}
	var pubR []*rpc.RouterState
	seen = map[string]bool{}
	for _, r := range rtrs {
		seen[r.ID] = true
		h := hashOf(r)
		if s.dp.rtrHash[r.ID] != h {
			s.dp.rtrHash[r.ID] = h
			pubR = append(pubR, r)
		}
	}
	for id := range s.dp.rtrHash {
		if !seen[id] {
			delete(s.dp.rtrHash, id)
			pubR = append(pubR, &rpc.RouterState{ID: id, Deleted: true})
		}
	}
	s.dp.finger = finger
	s.dp.mu.Unlock()
	b := s.deps.Bus
	ver := b.VersionFor(rpc.MsgNetworkState, rpc.NetworkStateVersion)
	for _, n := range pubN {
		n.Generation = s.dp.next()
		if err := b.Publish(ctx, rpc.SubjectAgents, rpc.MsgNetworkState, rpc.NetworkStateVersion, n.ForVersion(ver)); err != nil {
			s.forget(n.ID, "")
			return err
		}
	}
	for _, r := range pubR {
		r.Generation = s.dp.next()
		if err := b.Publish(ctx, rpc.SubjectAgents, rpc.MsgRouterState, rpc.RouterStateVersion, r); err != nil {
			s.forget("", r.ID)
			return err
		}
	}
	if len(pubN)+len(pubR) > 0 {
		s.log.Debug("desired state published", "networks", len(pubN), "routers", len(pubR))
	}
	return nil
}

// forget drops a published hash so the next round publishes again.
func (s *Service) forget(netID, rtrID string) {
	s.dp.mu.Lock()
	defer s.dp.mu.Unlock()
	if netID != "" {
		delete(s.dp.netHash, netID)
	}
	if rtrID != "" {
		delete(s.dp.rtrHash, rtrID)
	}
	s.dp.finger = ""
}

func (s *Service) onAgentMessage(ctx context.Context, m *bus.Message) (any, error) {
	switch m.Type {
	case rpc.MsgAgentReport:
		var r rpc.AgentReport
		if err := m.Decode(&r); err != nil {
			return nil, err
		}
		return nil, s.recordHeartbeat(ctx, r)
	case rpc.MsgSync:
		var req rpc.SyncRequest
		if err := m.Decode(&req); err != nil {
			return nil, err
		}
		nets, rtrs, err := s.desiredState(ctx)
		if err != nil {
			return nil, err
		}
		rep := rpc.SyncReply{Networks: make([]rpc.NetworkState, 0, len(nets))}
		for _, n := range nets {
			n.Generation = s.dp.next()
			rep.Networks = append(rep.Networks, *n.ForVersion(m.Version))
		}
		for _, r := range rtrs {
			r.Generation = s.dp.next()
			rep.Routers = append(rep.Routers, *r)
		}
		s.log.Info("network agent synced", "host", req.Host, "networks", len(rep.Networks), "routers", len(rep.Routers))
		return rep, nil
	case rpc.MsgPortStatus:
		var req rpc.PortStatusRequest
		if err := m.Decode(&req); err != nil {
			return nil, err
		}
		return struct{}{}, s.setPortStatuses(ctx, req)
	case rpc.MsgDHCPPort:
		var req rpc.DHCPPortRequest
		if err := m.Decode(&req); err != nil {
			return nil, err
		}
		return s.ensureDHCPPort(ctx, req)
	}
	return nil, bus.NewError(bus.CodeUnknownType, "unknown message %s", m.Type)
}

// recordHeartbeat stores a heartbeat (ReportAgent); a new agent or a
// changed tunnel address changes the other hosts' forwarding entries.
func (s *Service) recordHeartbeat(ctx context.Context, r rpc.AgentReport) error {
	if r.Host == "" || r.AgentType == "" {
		return bus.NewError(bus.CodeBadRequest, "host and agent_type are required")
	}
	before, known, err := s.agentTunnel(ctx, r.AgentType, r.Host)
	if err != nil {
		return err
	}
	conf := map[string]any{}
	for k, v := range r.Configurations {
		conf[k] = v
	}
	if r.TunnelIP != "" {
		conf["tunneling_ip"] = r.TunnelIP
	}
	az := ""
	if r.AgentType == "DHCP agent" || r.AgentType == "L3 agent" {
		az = s.cfg.AvailabilityZone // Neutron shows zones for DHCP and L3 agents only
	}
	topic := "N/A"
	if err := s.ReportAgent(ctx, AgentReport{AgentType: r.AgentType, Binary: r.Binary, Topic: topic, Host: r.Host,
		AvailabilityZone: az, Configurations: conf, StartFlag: r.Start || !known}); err != nil {
		return err
	}
	if !known || before != r.TunnelIP {
		s.log.Info("network agent registered", "host", r.Host, "type", r.AgentType, "tunnel_ip", r.TunnelIP)
		s.forgetAll()
		s.changed()
	}
	return nil
}

// agentTunnel is the tunnel address an agent reported last.
func (s *Service) agentTunnel(ctx context.Context, typ, host string) (string, bool, error) {
	var conf string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT configurations FROM net_agents WHERE agent_type = $1 AND host = $2`, typ, host).Scan(&conf)
	if err == sql.ErrNoRows {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(conf), &m)
	ip, _ := m["tunneling_ip"].(string)
	return ip, true, nil
}

// l3Host is the host routers run on: the first live, enabled L3 agent
// ("" without one).
func (s *Service) l3Host(ctx context.Context, q db.Querier) (string, error) {
	since := db.FormatTime(s.nowUTC().Add(-s.agentDownTime()))
	var host string
	err := q.QueryRowContext(ctx, `SELECT host FROM net_agents WHERE agent_type = 'L3 agent' AND admin_state_up
		AND heartbeat_at >= $1 ORDER BY host LIMIT 1`, since).Scan(&host)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return host, err
}

// tunnelIPs maps hosts to the VXLAN address their L2 agent reported.
func (s *Service) tunnelIPs(ctx context.Context, q db.Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT host, configurations FROM net_agents WHERE agent_type = $1`, L2AgentType)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, conf string
		if err := rows.Scan(&h, &conf); err != nil {
			return nil, err
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(conf), &m)
		if ip, ok := m["tunneling_ip"].(string); ok {
			out[h] = ip
		}
	}
	return out, rows.Err()
}

func (s *Service) forgetAll() {
	s.dp.mu.Lock()
	s.dp.finger = ""
	clear(s.dp.netHash)
	s.dp.mu.Unlock()
}

// setPortStatuses applies an agent's port statuses through SetPortStatus
// (which tells Compute: network-vif-plugged and friends); only the host a
// port is bound to may change it.
func (s *Service) setPortStatuses(ctx context.Context, req rpc.PortStatusRequest) error {
	for _, p := range req.Ports {
		switch p.Status {
		case rpc.StatusActive, rpc.StatusDown, rpc.StatusBuild, "ERROR":
		default:
			return bus.NewError(bus.CodeBadRequest, "port %s: unknown status %q", p.ID, p.Status)
		}
	}
	changed := false
	for _, p := range req.Ports {
		var host, status string
		err := s.db.Reader().QueryRowContext(ctx, `SELECT binding_host_id, status FROM net_ports WHERE id = $1`, p.ID).Scan(&host, &status)
		if err == sql.ErrNoRows || err == nil && (host != req.Host || status == p.Status) {
			continue
		}
		if err != nil {
			return err
		}
		if p.Error != "" {
			s.log.Warn("port not wired on host", "port", p.ID, "host", req.Host, "status", p.Status, "reason", p.Error)
		}
		if err := s.SetPortStatus(ctx, p.ID, p.Status); err != nil {
			if isNotFound(err) {
				continue
			}
			return err
		}
		s.log.Info("port status", "port", p.ID, "host", req.Host, "status", p.Status)
		changed = true
	}
	if changed {
		s.changed()
	}
	return nil
}

// ensureDHCPPort returns (creating it once) a network's DHCP port on a
// host.
func (s *Service) ensureDHCPPort(ctx context.Context, req rpc.DHCPPortRequest) (*rpc.Port, error) {
	if req.Host == "" || req.NetworkID == "" {
		return nil, bus.NewError(bus.CodeBadRequest, "host and network_id are required")
	}
	device := "dhcp-" + req.Host
	var out *Port
	err := s.withTx(ctx, func(tx *txn) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM net_ports WHERE network_id = $1 AND device_owner = $2 AND device_id = $3`,
			req.NetworkID, rpc.DeviceOwnerDHCP, device).Scan(&id)
		if err == nil {
			out, err = loadPort(ctx, tx, id, "")
			return err
		}
		if err != sql.ErrNoRows {
			return err
		}
		n, err := loadNetwork(ctx, tx, req.NetworkID, s.db.ForUpdate())
		if err != nil {
			return err
		}
		out, err = tx.createPort(ctx, systemCaller, &portReq{a: attrs{}, psSet: true, p: Port{
			ProjectID: n.ProjectID, NetworkID: n.ID, DeviceOwner: rpc.DeviceOwnerDHCP, DeviceID: device,
			HostID: req.Host, AdminStateUp: true, VNICType: "normal", Status: rpc.StatusActive, PortSecurity: false}})
		return err
	})
	if err != nil {
		if e := apiutil.AsError(err); e.Status == 404 {
			return nil, bus.NewError(bus.CodeNotFound, "network %s not found", req.NetworkID)
		}
		return nil, err
	}
	s.changed()
	p := rpcPort(out)
	return &p, nil
}

func rpcPort(p *Port) rpc.Port {
	out := rpc.Port{ID: p.ID, NetworkID: p.NetworkID, ProjectID: p.ProjectID, MAC: p.MAC, DeviceID: p.DeviceID,
		DeviceOwner: p.DeviceOwner, Host: p.HostID, VIFType: p.VIFType, AdminStateUp: p.AdminStateUp, Status: p.Status,
		DNSName: p.DNSName, PortSecurity: p.PortSecurity, SecurityGroups: p.SecurityGroups}
	if p.HostID != "" {
		out.Device = TapName(p.ID)
	}
	for _, f := range p.FixedIPs {
		out.FixedIPs = append(out.FixedIPs, rpc.FixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress})
	}
	for _, a := range p.AddressPairs {
		out.AddressPairs = append(out.AddressPairs, rpc.AddressPair{IPAddress: a.IPAddress, MACAddress: a.MACAddress})
	}
	return out
}

// desiredState computes every network's and router's desired state from
// the database in a handful of queries.
func (s *Service) desiredState(ctx context.Context) ([]*rpc.NetworkState, []*rpc.RouterState, error) {
	q := s.db.Reader()
	var nets []*Network
	rows, err := q.QueryContext(ctx, "SELECT "+networkCols+" FROM net_networks n ORDER BY n.id")
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		nets = append(nets, n)
	}
	rows.Close()
	subsBy := map[string][]*Subnet{}
	rows, err = q.QueryContext(ctx, "SELECT "+subnetCols+" FROM net_subnets s ORDER BY s.created_at, s.id")
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		sn, err := scanSubnet(rows)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		subsBy[sn.NetworkID] = append(subsBy[sn.NetworkID], sn)
	}
	rows.Close()
	var ports []*Port
	rows, err = q.QueryContext(ctx, "SELECT "+portCols+" FROM net_ports p ORDER BY p.id")
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		p, err := scanPort(rows)
		if err != nil {
			rows.Close()
			return nil, nil, err
		}
		ports = append(ports, p)
	}
	rows.Close()
	if err := fillPorts(ctx, q, ports); err != nil {
		return nil, nil, err
	}
	tunnels, err := s.tunnelIPs(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	groups, err := s.groupStates(ctx, q, ports)
	if err != nil {
		return nil, nil, err
	}
	addrGroups, err := addressGroupStates(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	l3Host, err := s.l3Host(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	portsBy := map[string][]*Port{}
	byID := map[string]*Port{}
	for _, p := range ports {
		if p.HostID == "" && l3Host != "" && (strings.HasPrefix(p.DeviceOwner, rpc.DeviceOwnerRIntf) || p.DeviceOwner == rpc.DeviceOwnerRGW) {
			p.HostID = l3Host // routers run on the L3 agent's host
		}
		portsBy[p.NetworkID] = append(portsBy[p.NetworkID], p)
		byID[p.ID] = p
	}
	out := make([]*rpc.NetworkState, 0, len(nets))
	for _, n := range nets {
		st := &rpc.NetworkState{ID: n.ID, ProjectID: n.ProjectID, Name: n.Name, AdminStateUp: n.AdminStateUp, MTU: n.MTU,
			External: n.External, DNSDomain: n.DNSDomain, NetworkType: n.Segment.NetworkType,
			PhysicalNetwork: n.Segment.PhysicalNetwork, SegmentationID: n.Segment.SegmentationID}
		if st.DNSDomain == "" {
			st.DNSDomain = s.cfg.DNSDomain
		}
		for _, sn := range subsBy[n.ID] {
			rs := rpc.Subnet{ID: sn.ID, IPVersion: sn.IPVersion, CIDR: sn.CIDR.String(), EnableDHCP: sn.EnableDHCP,
				DNSNameservers: sn.DNSNameservers, IPv6RAMode: sn.RAMode, IPv6AddrMode: sn.AddressMode}
			if sn.Gateway.IsValid() {
				rs.GatewayIP = sn.Gateway.String()
			}
			for _, r := range sn.HostRoutes {
				rs.HostRoutes = append(rs.HostRoutes, rpc.HostRoute{Destination: r.Destination, Nexthop: r.Nexthop})
			}
			st.Subnets = append(st.Subnets, rs)
		}
		hosts := map[string]bool{}
		sgs := map[string]bool{}
		for _, p := range portsBy[n.ID] {
			st.Ports = append(st.Ports, rpcPort(p))
			if p.HostID != "" {
				hosts[p.HostID] = true
			}
			for _, g := range p.SecurityGroups {
				sgs[g] = true
			}
		}
		for h := range hosts {
			st.Hosts = append(st.Hosts, rpc.Host{Host: h, TunnelIP: tunnels[h]})
		}
		sort.Slice(st.Hosts, func(i, j int) bool { return st.Hosts[i].Host < st.Hosts[j].Host })
		for g := range sgs { // remote groups the rules name
			for _, r := range groups[g].Rules {
				if r.RemoteGroupID != "" {
					sgs[r.RemoteGroupID] = true
				}
			}
		}
		ids := make([]string, 0, len(sgs))
		for g := range sgs {
			ids = append(ids, g)
		}
		slices.Sort(ids)
		ags := map[string]bool{}
		for _, g := range ids {
			if gs, ok := groups[g]; ok {
				st.SecurityGroups = append(st.SecurityGroups, gs)
				for _, r := range gs.Rules {
					if r.RemoteAddressGroupID != "" {
						ags[r.RemoteAddressGroupID] = true
					}
				}
			}
		}
		for _, ag := range addrGroups { // sorted by id
			if ags[ag.ID] {
				st.AddressGroups = append(st.AddressGroups, ag)
			}
		}
		out = append(out, st)
	}
	rtrs, err := s.routerStates(ctx, q, ports, byID)
	if err != nil {
		return nil, nil, err
	}
	return out, rtrs, nil
}

// groupStates loads every security group used by a port with its rules
// and its members' addresses.
func (s *Service) groupStates(ctx context.Context, q db.Querier, ports []*Port) (map[string]rpc.SecurityGroup, error) {
	out := map[string]rpc.SecurityGroup{}
	rows, err := q.QueryContext(ctx, `SELECT id, stateful FROM net_security_groups`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var g rpc.SecurityGroup
		if err := rows.Scan(&g.ID, &g.Stateful); err != nil {
			rows.Close()
			return nil, err
		}
		out[g.ID] = g
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, "SELECT "+ruleCols+" FROM net_security_group_rules r ORDER BY r.id")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		g, ok := out[r.SecurityGroupID]
		if !ok {
			continue
		}
		rr := rpc.Rule{ID: r.ID, Direction: r.Direction, Ethertype: r.Ethertype, Protocol: r.Protocol,
			RemoteIPPrefix: r.RemoteIPPrefix, RemoteGroupID: r.RemoteGroupID, RemoteAddressGroupID: r.RemoteAddressGroupID}
		if r.PortMin.Valid {
			v := int(r.PortMin.Int64)
			rr.PortRangeMin = &v
		}
		if r.PortMax.Valid {
			v := int(r.PortMax.Int64)
			rr.PortRangeMax = &v
		}
		g.Rules = append(g.Rules, rr)
		out[r.SecurityGroupID] = g
	}
	rows.Close()
	for _, p := range ports {
		for _, gid := range p.SecurityGroups {
			g, ok := out[gid]
			if !ok {
				continue
			}
			for _, f := range p.FixedIPs {
				g.MemberIPs = append(g.MemberIPs, f.IPAddress)
			}
			for _, a := range p.AddressPairs {
				g.MemberIPs = append(g.MemberIPs, a.IPAddress)
			}
			out[gid] = g
		}
	}
	for id, g := range out {
		slices.Sort(g.MemberIPs)
		g.MemberIPs = slices.Compact(g.MemberIPs)
		out[id] = g
	}
	return out, nil
}

// addressGroupStates loads every address group with its addresses,
// sorted by id.
func addressGroupStates(ctx context.Context, q db.Querier) ([]rpc.AddressGroup, error) {
	rows, err := q.QueryContext(ctx, `SELECT g.id, a.address FROM net_address_groups g
		LEFT JOIN net_address_group_addresses a ON a.address_group_id = g.id ORDER BY g.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rpc.AddressGroup
	for rows.Next() {
		var id string
		var addr sql.NullString
		if err := rows.Scan(&id, &addr); err != nil {
			return nil, err
		}
		if k := len(out); k == 0 || out[k-1].ID != id {
			out = append(out, rpc.AddressGroup{ID: id})
		}
		if addr.Valid {
			out[len(out)-1].Addresses = append(out[len(out)-1].Addresses, addr.String)
		}
	}
	for i := range out {
		sortCIDRs(out[i].Addresses)
	}
	return out, rows.Err()
}

// routerStates renders every router for the L3 agents.
func (s *Service) routerStates(ctx context.Context, q db.Querier, ports []*Port, byID map[string]*Port) ([]*rpc.RouterState, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+routerCols+" FROM net_routers rt ORDER BY rt.id")
	if err != nil {
		return nil, err
	}
	var rtrs []*Router
	for rows.Next() {
		rt, err := scanRouter(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		rtrs = append(rtrs, rt)
	}
	rows.Close()
	fips := map[string][]rpc.FloatingIP{}
	rows, err = q.QueryContext(ctx, "SELECT "+fipCols+" FROM net_floatingips fi WHERE fi.router_id IS NOT NULL AND fi.port_id IS NOT NULL ORDER BY fi.id")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		f, err := scanFIP(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		fips[f.RouterID] = append(fips[f.RouterID], rpc.FloatingIP{ID: f.ID, FloatingIP: f.Address, FixedIP: f.FixedIP, PortID: f.PortID})
	}
	rows.Close()
	pfs := map[string][]rpc.PortForwarding{}
	rows, err = q.QueryContext(ctx, `SELECT fi.router_id, fi.floating_ip_address, pf.protocol, pf.external_port, pf.internal_ip_address,
		pf.internal_port FROM net_port_forwardings pf JOIN net_floatingips fi ON fi.id = pf.floatingip_id
		WHERE fi.router_id IS NOT NULL ORDER BY pf.id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var rid string
		var pf rpc.PortForwarding
		if err := rows.Scan(&rid, &pf.FloatingIP, &pf.Protocol, &pf.ExternalPort, &pf.InternalIP, &pf.InternalPort); err != nil {
			rows.Close()
			return nil, err
		}
		pfs[rid] = append(pfs[rid], pf)
	}
	rows.Close()
	ifaces := map[string][]rpc.Port{}
	for _, p := range ports {
		if strings.HasPrefix(p.DeviceOwner, rpc.DeviceOwnerRIntf) {
			ifaces[p.DeviceID] = append(ifaces[p.DeviceID], rpcPort(p))
		}
	}
	out := make([]*rpc.RouterState, 0, len(rtrs))
	for _, rt := range rtrs {
		st := &rpc.RouterState{ID: rt.ID, ProjectID: rt.ProjectID, AdminStateUp: rt.AdminStateUp, EnableSNAT: rt.EnableSNAT,
			Interfaces: ifaces[rt.ID], FloatingIPs: fips[rt.ID], PortForwardings: pfs[rt.ID]}
		if gw := byID[rt.GwPortID]; gw != nil {
			p := rpcPort(gw)
			st.Gateway = &p
		}
		for _, r := range rt.Routes {
			st.Routes = append(st.Routes, rpc.HostRoute{Destination: r.Destination, Nexthop: r.Nexthop})
		}
		out = append(out, st)
	}
	return out, nil
}
