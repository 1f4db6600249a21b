// Package agent is the network agent: it receives each network's full
// desired state over the bus (internal/network/rpc), converges the host
// to it idempotently through internal/network/linux, serves DHCP (v4 and v6) and the
// metadata API in per-network namespaces, and reports port status and
// heartbeats back to the control plane.
//
// One goroutine (the loop) owns the host: bus events and link events only
// record what changed and kick it. A state applied twice changes nothing,
// so the agent may be restarted at any time: it asks for everything
// (network.sync), re-applies it without touching links that are right,
// and only then removes leftovers no network claims.
//
//	bus network.state ─┐                      ┌─ linux.L2 (bridges, vxlan, vlan, taps)
//	netlink link events ┼─> dirty sets ─> loop ┼─ DHCPv4/v6 + metadata in qdhcp-<net>
//	resync timer ───────┘                      └─ network.port.status, Firewall, Routers hooks
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// Agent types as /v2.0/agents shows them.
const (
	TypeL2       = "Linux bridge agent"
	TypeDHCP     = "DHCP agent"
	TypeMetadata = "Metadata agent"
	TypeL3       = "L3 agent"
)

// StatusError marks a port the agent failed to wire.
const StatusError = "ERROR"

// Firewall filters this host's ports (security groups, anti-spoofing):
// those bound to one of hosts (the agent's host and its aliases); the
// agent calls it after every pass with the networks it carries.
type Firewall interface {
	Apply(ctx context.Context, hosts []string, nets []*rpc.NetworkState) error
}

// Routers converges the routers on an L3 host (namespaces, SNAT,
// floating IPs): every call gets all routers and networks, and the host
// runs those with a port on it.
type Routers interface {
	Apply(ctx context.Context, host string, routers []*rpc.RouterState, nets map[string]*rpc.NetworkState) error
}

// Config configures an agent.
type Config struct {
	Host string
	// Aliases are more host names whose ports live on this machine: the
	// in-process agent of a `kumo serve` that simulates several compute
	// hosts (compute1, compute2, …) wires them all. Heartbeats, the DHCP
	// ports and routers belong to Host.
	Aliases []string
	// LocalIP is the VXLAN underlay address of this host.
	LocalIP netip.Addr
	// InterfaceMappings: physical network -> interface (flat, VLAN).
	InterfaceMappings map[string]string
	VXLANPort         int
	// DHCP serves DHCP for every network with DHCP enabled; Metadata
	// adds the metadata API in the same namespace.
	DHCP, Metadata bool
	LeaseTime      time.Duration
	// ReportInterval is the heartbeat (default 10s); ResyncInterval the
	// safety-net full sync (default 5m).
	ReportInterval, ResyncInterval time.Duration
	// HostNetns is the namespace playing the host (tests); nil: the
	// process's own.
	HostNetns *netns.NsHandle
	// NamespacePrefix prefixes the agent's namespace names, so simulated
	// hosts on one machine do not collide.
	NamespacePrefix string
	Firewall        Firewall
	Routers         Routers
	Binary          string
}

type portState struct {
	network, host, status, err string
}

type dhcpService struct {
	portID string
	ns     netns.NsHandle
	srv    *linux.DHCPServer
	srv6   *linux.DHCP6Server // nil without DHCPv6 subnets
	meta   *metadataServer
	ctx    context.Context
	stop   context.CancelFunc
}

// Agent is a running network agent.
type Agent struct {
	b       *bus.Bus
	cfg     Config
	log     *slog.Logger
	l2      *linux.L2
	lcfg    linux.Config
	started time.Time
	meta    *Metadata

	mu        sync.Mutex
	desired   map[string]*rpc.NetworkState
	routers   map[string]*rpc.RouterState
	dirty     map[string]bool // networks
	dirtyTaps map[string]bool
	dirtyRtr  map[string]bool
	tapIndex  map[string]string // tap -> port id
	dhcpReq   map[string]time.Time
	needSync  bool
	synced    bool
	kick      chan struct{}

	// Owned by the loop.
	runCtx   context.Context
	links    linux.Links // the host's links at the start of a pass
	applied  map[string]linux.NetworkPlan
	netErr   map[string]error
	ports    map[string]portState // local ports: last status
	reported map[string]string
	dhcp     map[string]*dhcpService
	cleaned  bool

	passDone func() // tests: called after each pass
}

// New builds an agent.
func New(b *bus.Bus, cfg Config, log *slog.Logger) (*Agent, error) {
	if cfg.Host == "" {
		return nil, errors.New("network agent: no host name")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = 10 * time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 5 * time.Minute
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = linux.DefaultLeaseTime
	}
	if cfg.Binary == "" {
		cfg.Binary = "kumo-agent-network"
	}
	ns := netns.None()
	if cfg.HostNetns != nil {
		ns = *cfg.HostNetns
	}
	l2, err := linux.NewL2(ns, log)
	if err != nil {
		return nil, err
	}
	a := &Agent{b: b, cfg: cfg, log: log, l2: l2, started: time.Now().UTC(),
		lcfg:    linux.Config{LocalIP: cfg.LocalIP, InterfaceMappings: cfg.InterfaceMappings, VXLANPort: cfg.VXLANPort},
		desired: map[string]*rpc.NetworkState{}, routers: map[string]*rpc.RouterState{},
		dirty: map[string]bool{}, dirtyTaps: map[string]bool{}, dirtyRtr: map[string]bool{},
		tapIndex: map[string]string{}, dhcpReq: map[string]time.Time{}, kick: make(chan struct{}, 1),
		applied: map[string]linux.NetworkPlan{}, netErr: map[string]error{}, ports: map[string]portState{},
		reported: map[string]string{}, dhcp: map[string]*dhcpService{}}
	a.meta = newMetadata(a)
	return a, nil
}

// Close releases the agent's netlink handle (Run must have returned).
func (a *Agent) Close() { a.l2.Close() }

// hosts are the host names whose ports this agent wires.
func (a *Agent) hosts() hostSet { return append(hostSet{a.cfg.Host}, a.cfg.Aliases...) }

func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run runs the agent until ctx is done. Wired links stay as they are when
// it returns: a stopped agent does not cut traffic.
func (a *Agent) Run(ctx context.Context) error {
	a.runCtx = ctx
	sub, err := a.b.Subscribe(rpc.SubjectAgents, "", map[string]bus.Version{
		rpc.MsgNetworkState: rpc.NetworkStateVersion, rpc.MsgRouterState: rpc.RouterStateVersion,
	}, a.onEvent)
	if err != nil {
		return fmt.Errorf("network agent: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	stopWatch, err := a.watchLinks(ctx)
	if err != nil {
		a.log.Warn("link events unavailable; taps are wired at the next pass", "err", err)
	} else {
		defer stopWatch()
	}
	go a.heartbeat(ctx)
	a.mu.Lock()
	a.needSync = true
	a.mu.Unlock()
	a.wake()
	resync := time.NewTicker(a.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case <-a.kick:
		case <-resync.C:
			a.mu.Lock()
			a.needSync = true
			a.mu.Unlock()
		case <-retry.C:
		}
		if again := a.pass(ctx); again > 0 {
			retry.Reset(again)
		}
	}
}

// onEvent records a desired state; the loop applies it.
func (a *Agent) onEvent(_ context.Context, m *bus.Message) (any, error) {
	switch m.Type {
	case rpc.MsgNetworkState:
		var n rpc.NetworkState
		if err := m.Decode(&n); err != nil {
			return nil, err
		}
		a.setNetwork(&n)
	case rpc.MsgRouterState:
		var r rpc.RouterState
		if err := m.Decode(&r); err != nil {
			return nil, err
		}
		a.mu.Lock()
		if old := a.routers[r.ID]; old == nil || old.Generation <= r.Generation {
			a.routers[r.ID] = &r
			a.dirtyRtr[r.ID] = true
		}
		a.mu.Unlock()
	}
	a.wake()
	return nil, nil
}

func (a *Agent) setNetwork(n *rpc.NetworkState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.desired[n.ID]; old != nil && old.Generation > n.Generation {
		return
	}
	a.desired[n.ID] = n
	a.dirty[n.ID] = true
	local := a.hosts()
	for _, p := range n.Ports {
		if local.has(p.Host) && p.DeviceOwner != rpc.DeviceOwnerDHCP {
			a.tapIndex[devName(p)] = p.ID
		}
	}
}

func devName(p rpc.Port) string {
	if p.Device != "" {
		return p.Device
	}
	return linux.TapName(p.ID)
}

// fullSync replaces the desired state with the server's.
func (a *Agent) fullSync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rep rpc.SyncReply
	err := a.b.Request(ctx, rpc.SubjectServer, rpc.MsgSync, rpc.SyncVersion, rpc.SyncRequest{Host: a.cfg.Host}, &rep)
	if errors.Is(err, &bus.Error{Code: bus.CodeUnsupportedVersion}) {
		// A server older than this agent: ask in the version it knows.
		err = a.b.Request(ctx, rpc.SubjectServer, rpc.MsgSync, bus.V(1, 0), rpc.SyncRequest{Host: a.cfg.Host}, &rep)
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	local := a.hosts()
	for i := range rep.Networks {
		n := &rep.Networks[i]
		seen[n.ID] = true
		a.desired[n.ID] = n
		a.dirty[n.ID] = true
		for _, p := range n.Ports {
			if local.has(p.Host) && p.DeviceOwner != rpc.DeviceOwnerDHCP {
				a.tapIndex[devName(p)] = p.ID
			}
		}
	}
	for id := range a.desired {
		if !seen[id] {
			delete(a.desired, id)
			a.dirty[id] = true
		}
	}
	for id := range a.applied {
		a.dirty[id] = true
	}
	rseen := map[string]bool{}
	for i := range rep.Routers {
		r := &rep.Routers[i]
		rseen[r.ID] = true
		a.routers[r.ID] = r
		a.dirtyRtr[r.ID] = true
	}
	for id := range a.routers {
		if !rseen[id] {
			a.routers[id] = &rpc.RouterState{ID: id, Deleted: true}
			a.dirtyRtr[id] = true
		}
	}
	clear(a.reported)
	a.synced = true
	return nil
}

// pass applies everything dirty; it returns when to retry, 0 for never.
func (a *Agent) pass(ctx context.Context) time.Duration {
	a.mu.Lock()
	needSync := a.needSync
	a.needSync = false
	a.mu.Unlock()
	if needSync {
		if err := a.fullSync(ctx); err != nil {
			a.log.Warn("full sync failed; retrying", "err", err)
			a.mu.Lock()
			a.needSync = true
			a.mu.Unlock()
			return 2 * time.Second
		}
		a.log.Info("full sync done", "networks", len(a.desired))
	}
	a.mu.Lock()
	if !a.synced {
		a.mu.Unlock()
		return 0
	}
	nets := a.dirty
	taps := a.dirtyTaps
	rtrs := a.dirtyRtr
	a.dirty, a.dirtyTaps, a.dirtyRtr = map[string]bool{}, map[string]bool{}, map[string]bool{}
	states := make(map[string]*rpc.NetworkState, len(nets))
	for id := range nets {
		states[id] = a.desired[id]
	}
	tapPorts := map[string]string{}
	for tap := range taps {
		if pid, ok := a.tapIndex[tap]; ok {
			tapPorts[pid] = tap
		}
	}
	a.mu.Unlock()

	var reports []rpc.PortStatus
	retry := time.Duration(0)
	a.links = nil
	if len(states) > 0 { // whole networks to check: one dump beats a lookup per port
		if links, err := a.l2.Snapshot(); err == nil {
			a.links = links
		} else {
			a.log.Warn("link dump", "err", err)
		}
	}
	defer func() { a.links = nil }()
	ids := make([]string, 0, len(states))
	for id := range states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// Filtering first, so that a port is never in its bridge unfiltered;
	// routers next, so that their devices exist when the networks plug them.
	if a.cfg.Firewall != nil && len(ids) > 0 {
		if err := a.cfg.Firewall.Apply(ctx, a.hosts(), a.wanted()); err != nil {
			a.log.Error("security groups", "err", err)
			retry = 2 * time.Second
		}
	}
	if a.routerPass(ctx, rtrs, len(ids)) {
		retry = 2 * time.Second
	}
	for _, id := range ids {
		r, again := a.reconcile(ctx, id, states[id])
		reports = append(reports, r...)
		if again {
			retry = 2 * time.Second
		}
	}
	// Taps that appeared on networks not otherwise touched in this pass.
	for pid := range tapPorts {
		if r := a.rewirePort(pid, nets); r != nil {
			reports = append(reports, *r)
		}
	}
	if !a.cleaned {
		a.cleanup()
		a.cleaned = true
	}

	if len(reports) > 0 {
		// One report per host: the control plane takes a port's status
		// only from the host it is bound to.
		byHost := map[string][]rpc.PortStatus{}
		for _, r := range reports {
			h := a.ports[r.ID].host
			if h == "" {
				h = a.cfg.Host
			}
			byHost[h] = append(byHost[h], r)
		}
		for h, rs := range byHost {
			go a.report(ctx, h, rs)
		}
	}
	if a.passDone != nil {
		a.passDone()
	}
	return retry
}

// wanted lists the networks this host carries or is about to.
func (a *Agent) wanted() []*rpc.NetworkState {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*rpc.NetworkState
	for _, n := range a.desired {
		if a.relevant(n) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(x, y *rpc.NetworkState) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// relevant: the host carries a network when it has ports on it or serves
// its DHCP.
func (a *Agent) relevant(n *rpc.NetworkState) bool {
	if n == nil || n.Deleted {
		return false
	}
	return len(localPorts(n, a.hosts())) > 0 || a.cfg.DHCP && wantsDHCP(n)
}

// reconcile converges one network and its local ports.
func (a *Agent) reconcile(ctx context.Context, id string, n *rpc.NetworkState) ([]rpc.PortStatus, bool) {
	var reports []rpc.PortStatus
	retry := false
	local := map[string]bool{}
	if a.relevant(n) {
		plan, err := linux.Render(a.lcfg, networkSpec(n, a.hosts()))
		if err == nil {
			err = a.uplinkFree(id, plan)
		}
		if err == nil {
			err = a.l2.EnsureNetwork(plan)
		}
		if err != nil {
			a.log.Error("network not wired", "network", id, "err", err)
			a.netErr[id] = err
			retry = true
		} else {
			delete(a.netErr, id)
		}
		a.applied[id] = plan
		for _, p := range localPorts(n, a.hosts()) {
			local[p.ID] = true
			if r := a.wire(n, p, err); r != nil {
				reports = append(reports, *r)
			}
		}
		if err == nil {
			if a.ensureDHCP(ctx, n) {
				retry = true
			}
		}
	} else if plan, ok := a.applied[id]; ok {
		a.stopDHCP(id, true)
		if err := a.l2.DeleteNetwork(id, plan.Uplink); err != nil {
			a.log.Error("network teardown", "network", id, "err", err)
		} else {
			a.log.Info("network removed from host", "network", id)
		}
		delete(a.applied, id)
		delete(a.netErr, id)
	}
	// Ports that left this host or the network: out of the bridge.
	for pid, st := range a.ports {
		if st.network != id || local[pid] {
			continue
		}
		if err := a.l2.Unplug(linux.TapName(pid)); err != nil {
			a.log.Warn("unplug", "port", pid, "err", err)
		}
		delete(a.ports, pid)
		a.mu.Lock()
		delete(a.reported, pid)
		delete(a.tapIndex, linux.TapName(pid))
		a.mu.Unlock()
	}
	return reports, retry
}

// uplinkFree rejects a second network on an uplink another one holds.
func (a *Agent) uplinkFree(id string, plan linux.NetworkPlan) error {
	if plan.Uplink == nil {
		return nil
	}
	for other, p := range a.applied {
		if other != id && p.Uplink != nil && p.Uplink.Name == plan.Uplink.Name && a.netErr[other] == nil {
			return fmt.Errorf("network %s: %w: %s carries network %s", id, linux.ErrUplinkInUse, p.Uplink.Name, other)
		}
	}
	return nil
}

// wire plugs one local port and returns a status report when its status
// differs from what the server has.
func (a *Agent) wire(n *rpc.NetworkState, p rpc.Port, netErr error) *rpc.PortStatus {
	st := portState{network: n.ID, host: p.Host}
	switch {
	case netErr != nil:
		st.status, st.err = StatusError, netErr.Error()
	case !p.AdminStateUp || !n.AdminStateUp:
		if err := a.l2.Unplug(devName(p)); err != nil {
			a.log.Warn("unplug", "port", p.ID, "err", err)
		}
		st.status = rpc.StatusDown
	default:
		err := a.l2.PlugCached(a.links, devName(p), linux.BridgeName(n.ID), n.MTU)
		switch {
		case err == nil:
			st.status = rpc.StatusActive
		case errors.Is(err, linux.ErrNoDevice):
			st.status = rpc.StatusDown // the VM has not created its tap yet
		default:
			a.log.Error("port not wired", "port", p.ID, "device", devName(p), "err", err)
			st.status, st.err = StatusError, err.Error()
		}
	}
	prev := a.ports[p.ID]
	a.ports[p.ID] = st
	if prev.status != st.status && st.status == rpc.StatusActive {
		a.log.Info("port wired", "port", p.ID, "network", n.ID, "device", devName(p))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if st.status == p.Status || a.reported[p.ID] == st.status {
		return nil
	}
	a.reported[p.ID] = st.status
	return &rpc.PortStatus{ID: p.ID, Status: st.status, Error: st.err}
}

// rewirePort handles a tap that appeared for a port whose network was not
// reconciled in this pass.
func (a *Agent) rewirePort(pid string, done map[string]bool) *rpc.PortStatus {
	a.mu.Lock()
	var n *rpc.NetworkState
	var port rpc.Port
	local := a.hosts()
	for _, cand := range a.desired {
		for _, p := range cand.Ports {
			if p.ID == pid && local.has(p.Host) && p.DeviceOwner != rpc.DeviceOwnerDHCP {
				n, port = cand, p
			}
		}
	}
	a.mu.Unlock()
	if n == nil || done[n.ID] {
		return nil
	}
	if _, ok := a.applied[n.ID]; !ok {
		return nil
	}
	return a.wire(n, port, a.netErr[n.ID])
}

func (a *Agent) report(ctx context.Context, host string, ports []rpc.PortStatus) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := a.b.Request(ctx, rpc.SubjectServer, rpc.MsgPortStatus, rpc.PortStatusVersion,
		rpc.PortStatusRequest{Host: host, Ports: ports}, nil)
	if err != nil {
		a.log.Warn("port status report failed; resending at the next sync", "ports", len(ports), "err", err)
		a.mu.Lock()
		for _, p := range ports {
			if a.reported[p.ID] == p.Status {
				delete(a.reported, p.ID)
			}
		}
		a.mu.Unlock()
	}
}

// cleanup removes bridges, VXLAN devices and namespaces no network claims
// (left over from a crash or from networks deleted while the agent was
// down). It runs once, after the first full sync was applied.
func (a *Agent) cleanup() {
	keep := map[string]bool{}
	for id, p := range a.applied {
		keep[linux.BridgeName(id)] = true
		if p.Uplink != nil {
			keep[p.Uplink.Name] = true
		}
	}
	links, err := a.l2.Managed()
	if err != nil {
		a.log.Warn("list links for cleanup", "err", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if keep[name] {
			continue
		}
		if err := a.l2.DeleteLink(name); err != nil {
			a.log.Warn("remove leftover link", "link", name, "err", err)
			continue
		}
		a.log.Info("removed leftover link", "link", name)
	}
	prefix := a.cfg.NamespacePrefix + linux.DHCPNSPrefix
	names, err := linux.ListNamedNetns(prefix)
	if err != nil {
		a.log.Warn("list namespaces for cleanup", "err", err)
	}
	for _, name := range names {
		id := name[len(prefix):]
		if _, ok := a.dhcp[id]; ok {
			continue
		}
		if err := linux.DeleteNamedNetns(name); err != nil {
			a.log.Warn("remove leftover namespace", "netns", name, "err", err)
			continue
		}
		a.log.Info("removed leftover namespace", "netns", name)
	}
}

// routerPass converges the host's routers when a router or a network
// changed (a network's subnets feed the routers' addresses).
func (a *Agent) routerPass(ctx context.Context, rtrs map[string]bool, nets int) bool {
	if a.cfg.Routers == nil || len(rtrs) == 0 && nets == 0 {
		return false
	}
	a.mu.Lock()
	var routers []*rpc.RouterState
	for id, r := range a.routers {
		if r.Deleted {
			delete(a.routers, id)
			continue
		}
		routers = append(routers, r)
	}
	nstates := make(map[string]*rpc.NetworkState, len(a.desired))
	for id, n := range a.desired {
		nstates[id] = n
	}
	a.mu.Unlock()
	if err := a.cfg.Routers.Apply(ctx, a.cfg.Host, routers, nstates); err != nil {
		a.log.Error("routers", "err", err)
		return true
	}
	return false
}

// watchLinks marks taps dirty as soon as they appear, so a VM's port is
// wired without waiting for a pass.
func (a *Agent) watchLinks(ctx context.Context) (func(), error) {
	ch := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	opts := netlink.LinkSubscribeOptions{ErrorCallback: func(err error) { a.log.Debug("link events", "err", err) }}
	if a.cfg.HostNetns != nil {
		ns := *a.cfg.HostNetns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return nil, err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				if u.Header.Type != unix.RTM_NEWLINK || u.Link == nil {
					continue
				}
				name := u.Link.Attrs().Name
				a.mu.Lock()
				_, ours := a.tapIndex[name]
				if ours {
					a.dirtyTaps[name] = true
				}
				a.mu.Unlock()
				if ours {
					a.wake()
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}

func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(a.cfg.ReportInterval)
	defer t.Stop()
	for first := true; ; first = false {
		a.sendReports(ctx, first)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) sendReports(ctx context.Context, start bool) {
	a.mu.Lock()
	nports := len(a.tapIndex)
	nnets := len(a.desired)
	a.mu.Unlock()
	tunnel := ""
	if a.cfg.LocalIP.IsValid() {
		tunnel = a.cfg.LocalIP.String()
	}
	base := rpc.AgentReport{Host: a.cfg.Host, Binary: a.cfg.Binary, TunnelIP: tunnel,
		StartedAt: a.started.Format(time.RFC3339), Ports: nports, Networks: nnets, Start: start}
	l2 := base
	l2.AgentType = TypeL2
	l2.Configurations = map[string]any{"interface_mappings": a.cfg.InterfaceMappings, "tunnel_types": []string{"vxlan"},
		"tunneling_ip": tunnel, "devices": nports}
	reps := []rpc.AgentReport{l2}
	if a.cfg.DHCP {
		d := base
		d.AgentType, d.Binary = TypeDHCP, a.cfg.Binary
		d.Configurations = map[string]any{"dhcp_driver": "kumo", "networks": len(a.dhcpSnapshot()), "dhcp_lease_duration": int(a.cfg.LeaseTime / time.Second)}
		reps = append(reps, d)
	}
	if a.cfg.Routers != nil {
		l := base
		l.AgentType = TypeL3
		l.Configurations = map[string]any{"agent_mode": "legacy", "routers": a.routerCount()}
		reps = append(reps, l)
	}
	if a.cfg.Metadata {
		m := base
		m.AgentType = TypeMetadata
		m.Configurations = map[string]any{"metadata_proxy_socket": "", "nova_metadata_host": "bus"}
		reps = append(reps, m)
	}
	for _, r := range reps {
		if err := a.b.Publish(ctx, rpc.SubjectServer, rpc.MsgAgentReport, rpc.ReportVersion, r); err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat", "err", err)
		}
	}
}

func (a *Agent) routerCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.routers)
}

func (a *Agent) dhcpSnapshot() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id, n := range a.desired {
		if a.cfg.DHCP && wantsDHCP(n) {
			out = append(out, id)
		}
	}
	return out
}

// shutdown stops the services; links stay so that traffic keeps flowing.
func (a *Agent) shutdown() {
	for id := range a.dhcp {
		a.stopDHCP(id, false)
	}
}
