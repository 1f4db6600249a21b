package network

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
	"github.com/kumo-cloud/kumo/internal/service"
)

// agentSide is a stand-in network agent on the bus: it records the
// desired states the service publishes.
type agentSide struct {
	mu     sync.Mutex
	states map[string]rpc.NetworkState
	rtrs   map[string]rpc.RouterState
}

func (a *agentSide) net(id string) (rpc.NetworkState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.states[id]
	return n, ok
}

func newDataPlaneAPI(t *testing.T) (*testAPI, *bus.Bus, *agentSide) {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	v := authtest.New()
	v.Add("admin", "u-admin", "p-admin", "admin", "member", "reader")
	v.Add("alice", "u-alice", "p-alice", "member", "reader")
	d := dbtest.OpenSQLite(t, Migrations())
	svc, err := New(service.Deps{DB: d, Bus: b, Auth: v, Log: slog.New(slog.DiscardHandler)}, Config{AgentDownTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "service on the bus", func() bool {
		return b.Request(ctx, rpc.SubjectServer, rpc.MsgSync, rpc.SyncVersion, rpc.SyncRequest{Host: "probe"}, nil) == nil
	})
	ag := &agentSide{states: map[string]rpc.NetworkState{}, rtrs: map[string]rpc.RouterState{}}
	sub, err := b.Subscribe(rpc.SubjectAgents, "", map[string]bus.Version{rpc.MsgNetworkState: rpc.NetworkStateVersion, rpc.MsgRouterState: rpc.RouterStateVersion},
		func(_ context.Context, m *bus.Message) (any, error) {
			ag.mu.Lock()
			defer ag.mu.Unlock()
			switch m.Type {
			case rpc.MsgNetworkState:
				var n rpc.NetworkState
				if err := m.Decode(&n); err != nil {
					return nil, err
				}
				if old, ok := ag.states[n.ID]; !ok || old.Generation < n.Generation {
					ag.states[n.ID] = n
				}
			case rpc.MsgRouterState:
				var r rpc.RouterState
				if err := m.Decode(&r); err != nil {
					return nil, err
				}
				ag.rtrs[r.ID] = r
			}
			return nil, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return &testAPI{t: t, srv: srv, svc: svc}, b, ag
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDataPlaneStateStatusAndAgents(t *testing.T) {
	api, b, ag := newDataPlaneAPI(t)
	ctx := context.Background()
	// Two L2 agents report in.
	for host, ip := range map[string]string{"host1": "192.0.2.1", "host2": "192.0.2.2"} {
		if err := b.Publish(ctx, rpc.SubjectServer, rpc.MsgAgentReport, rpc.ReportVersion, rpc.AgentReport{Host: host,
			AgentType: "Linux bridge agent", Binary: "kumo-agent-network", TunnelIP: ip, StartedAt: time.Now().UTC().Format(time.RFC3339),
			Configurations: map[string]any{"tunneling_ip": ip}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, rpc.SubjectServer, rpc.MsgAgentReport, rpc.ReportVersion, rpc.AgentReport{Host: "host1",
		AgentType: "DHCP agent", Binary: "kumo-agent-network", StartedAt: time.Now().UTC().Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	var agents []any
	waitFor(t, "agents registered", func() bool {
		agents = api.must(api.do("admin", "GET", "/agents", nil), 200).json(t)["agents"].([]any)
		return len(agents) == 3
	})
	a0 := agents[0].(map[string]any)
	if a0["host"] != "host1" || a0["alive"] != true || a0["availability_zone"] != "nova" || a0["agent_type"] != "DHCP agent" {
		t.Fatalf("agent: %v", a0)
	}
	if got := api.must(api.do("admin", "GET", "/agents?agent_type=Linux+bridge+agent&host=host2", nil), 200).json(t)["agents"].([]any); len(got) != 1 ||
		got[0].(map[string]any)["configurations"].(map[string]any)["tunneling_ip"] != "192.0.2.2" {
		t.Fatalf("filtered agents: %v", got)
	}
	api.expectErr(api.do("alice", "GET", "/agents", nil), 403, "PolicyNotAuthorized")
	id := a0["id"].(string)
	upd := api.must(api.do("admin", "PUT", "/agents/"+id, `{"agent": {"admin_state_up": false, "description": "drain"}}`), 200).json(t)["agent"].(map[string]any)
	if upd["admin_state_up"] != false || upd["description"] != "drain" {
		t.Fatalf("updated agent: %v", upd)
	}
	api.expectErr(api.do("admin", "PUT", "/agents/"+id, `{"agent": {"host": "x"}}`), 400, "HTTPBadRequest")
	api.expectErr(api.do("admin", "GET", "/agents/nope", nil), 404, "AgentNotFound")

	// A network with a port on each host: the state lists both hosts with
	// their tunnel addresses, and every port.
	netID, subID := api.netWithSubnet("alice", "10.1.0.0/24")
	p1 := api.create("admin", "ports", "port", map[string]any{"network_id": netID, "binding:host_id": "host1", "device_owner": "compute:nova", "device_id": "vm1"})
	api.create("admin", "ports", "port", map[string]any{"network_id": netID, "binding:host_id": "host2", "device_owner": "compute:nova", "device_id": "vm2"})
	var st rpc.NetworkState
	waitFor(t, "state with two ports", func() bool {
		var ok bool
		st, ok = ag.net(netID)
		return ok && len(st.Ports) == 2 && len(st.Hosts) == 2
	})
	if st.NetworkType != "vxlan" || st.SegmentationID == 0 || st.MTU != 1450 || len(st.Subnets) != 1 || st.Subnets[0].ID != subID ||
		!st.Subnets[0].EnableDHCP || st.Hosts[0] != (rpc.Host{Host: "host1", TunnelIP: "192.0.2.1"}) || len(st.SecurityGroups) != 1 {
		t.Fatalf("state: %+v", st)
	}
	if len(st.SecurityGroups[0].Rules) == 0 || len(st.SecurityGroups[0].MemberIPs) != 2 {
		t.Fatalf("security group state: %+v", st.SecurityGroups[0])
	}

	// The DHCP port: created once per host, then the same.
	var dp, dp2 rpc.Port
	if err := b.Request(ctx, rpc.SubjectServer, rpc.MsgDHCPPort, rpc.DHCPPortVersion, rpc.DHCPPortRequest{Host: "host1", NetworkID: netID}, &dp); err != nil {
		t.Fatal(err)
	}
	if err := b.Request(ctx, rpc.SubjectServer, rpc.MsgDHCPPort, rpc.DHCPPortVersion, rpc.DHCPPortRequest{Host: "host1", NetworkID: netID}, &dp2); err != nil {
		t.Fatal(err)
	}
	if dp.ID == "" || dp.ID != dp2.ID || dp.DeviceOwner != "network:dhcp" || dp.Host != "host1" || len(dp.FixedIPs) != 1 {
		t.Fatalf("dhcp port: %+v / %+v", dp, dp2)
	}
	err := b.Request(ctx, rpc.SubjectServer, rpc.MsgDHCPPort, rpc.DHCPPortVersion, rpc.DHCPPortRequest{Host: "host1", NetworkID: "missing"}, nil)
	if e, ok := err.(*bus.Error); !ok || e.Code != bus.CodeNotFound {
		t.Fatalf("dhcp port of a missing network: %v", err)
	}

	// Port status: only the bound host may set it; the API shows it.
	set := func(host, status string) {
		t.Helper()
		if err := b.Request(ctx, rpc.SubjectServer, rpc.MsgPortStatus, rpc.PortStatusVersion,
			rpc.PortStatusRequest{Host: host, Ports: []rpc.PortStatus{{ID: p1["id"].(string), Status: status}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var hooked []string
	var hmu sync.Mutex
	api.svc.SetComputeNotifier(func(_ context.Context, events []ServerEvent) {
		hmu.Lock()
		for _, e := range events {
			hooked = append(hooked, e.Tag+"/"+e.ServerUUID+"/"+e.Name)
		}
		hmu.Unlock()
	})
	set("host2", "ACTIVE")
	if s := api.must(api.do("admin", "GET", "/ports/"+p1["id"].(string), nil), 200).json(t)["port"].(map[string]any)["status"]; s != "DOWN" {
		t.Fatalf("status set by another host: %v", s)
	}
	set("host1", "ACTIVE")
	if s := api.must(api.do("admin", "GET", "/ports/"+p1["id"].(string), nil), 200).json(t)["port"].(map[string]any)["status"]; s != "ACTIVE" {
		t.Fatalf("status after report: %v", s)
	}
	hmu.Lock()
	if len(hooked) != 1 || hooked[0] != p1["id"].(string)+"/vm1/network-vif-plugged" {
		t.Fatalf("hook calls: %v", hooked)
	}
	hmu.Unlock()
	err = b.Request(ctx, rpc.SubjectServer, rpc.MsgPortStatus, rpc.PortStatusVersion,
		rpc.PortStatusRequest{Host: "host1", Ports: []rpc.PortStatus{{ID: p1["id"].(string), Status: "HAPPY"}}}, nil)
	if e, ok := err.(*bus.Error); !ok || e.Code != bus.CodeBadRequest {
		t.Fatalf("bad status: %v", err)
	}
	waitFor(t, "state with the status and the DHCP port", func() bool {
		st, _ = ag.net(netID)
		active := false
		for _, p := range st.Ports {
			if p.ID == p1["id"] && p.Status == "ACTIVE" {
				active = true
			}
		}
		return active && len(st.Ports) == 3
	})

	// Full sync answers everything at once.
	var rep rpc.SyncReply
	if err := b.Request(ctx, rpc.SubjectServer, rpc.MsgSync, rpc.SyncVersion, rpc.SyncRequest{Host: "host1"}, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Networks) != 1 || rep.Networks[0].ID != netID || len(rep.Networks[0].Ports) != 3 {
		t.Fatalf("sync: %+v", rep)
	}

	// A router with an interface on the network is published too.
	r := api.create("alice", "routers", "router", map[string]any{"name": "r1"})
	api.must(api.do("alice", "PUT", "/routers/"+r["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": subID}), 200)
	waitFor(t, "router state", func() bool {
		ag.mu.Lock()
		defer ag.mu.Unlock()
		rs, ok := ag.rtrs[r["id"].(string)]
		return ok && len(rs.Interfaces) == 1 && rs.Interfaces[0].FixedIPs[0].IPAddress == "10.1.0.1"
	})

	// Deleting the network publishes its removal.
	for _, p := range api.must(api.do("admin", "GET", "/ports?network_id="+netID, nil), 200).json(t)["ports"].([]any) {
		pm := p.(map[string]any)
		if pm["device_owner"] == "network:router_interface" {
			api.must(api.do("alice", "PUT", "/routers/"+r["id"].(string)+"/remove_router_interface", map[string]any{"subnet_id": subID}), 200)
			continue
		}
		if pm["device_owner"] != "network:dhcp" {
			api.must(api.do("admin", "DELETE", "/ports/"+pm["id"].(string), nil), 204)
		}
	}
	api.must(api.do("alice", "DELETE", "/networks/"+netID, nil), 204)
	waitFor(t, "deleted state", func() bool {
		st, _ = ag.net(netID)
		return st.Deleted
	})

	// Agents stop reporting: dead after the down time.
	waitFor(t, "agents dead", func() bool {
		got := api.must(api.do("admin", "GET", "/agents?alive=false", nil), 200).json(t)["agents"].([]any)
		return len(got) == 3
	})
	api.must(api.do("admin", "DELETE", "/agents/"+id, nil), 204)
	if got := api.must(api.do("admin", "GET", "/agents", nil), 200).json(t)["agents"].([]any); len(got) != 2 {
		t.Fatalf("after delete: %d agents", len(got))
	}
}
