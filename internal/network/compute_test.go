package network

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

type eventLog struct {
	mu     sync.Mutex
	events []ServerEvent
}

func (l *eventLog) notify(_ context.Context, ev []ServerEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev...)
	l.mu.Unlock()
}

func (l *eventLog) take() []ServerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func TestServerPortsLifecycle(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		a := newTestAPIOn(t, d, Config{})
		var log eventLog
		a.svc.SetComputeNotifier(log.notify)
		ctx := context.Background()
		netID, subID := a.netWithSubnet("alice", "10.60.0.0/24")
		own := a.create("alice", "ports", "port", map[string]any{"network_id": netID})
		b := ServerBinding{ServerUUID: "11111111-0000-4000-8000-000000000001", ProjectID: "p-alice", Host: "h1", Zone: "nova", Hostname: "vm-one"}
		reqs := []ServerPortRequest{{NetworkID: netID, FixedIP: netip.MustParseAddr("10.60.0.20"), Tag: "a"}, {PortID: own["id"].(string)}}
		ports, err := a.svc.AllocateServerPorts(ctx, b, reqs, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) != 2 || !ports[0].ComputeCreated || ports[1].ComputeCreated || ports[0].Tag != "a" ||
			ports[0].FixedIPs[0].Address != "10.60.0.20" || ports[0].FixedIPs[0].SubnetID != subID || ports[0].FixedIPs[0].Version != 4 {
			t.Fatalf("allocated: %+v %+v", ports[0], ports[1])
		}
		created := a.must(a.do("admin", "GET", "/ports/"+ports[0].ID, nil), 200).json(t)["port"].(map[string]any)
		if created["dns_name"] != "vm-one" {
			t.Fatalf("dns_name of a server's port: %v", created["dns_name"])
		}
		for _, p := range ports {
			// No agent on h1: bound ports are plugged at once.
			if p.HostID != "h1" || p.Status != "ACTIVE" || p.DeviceOwner != "compute:nova" || p.VIFType != "bridge" {
				t.Fatalf("port: %+v", p)
			}
		}
		if ev := log.take(); len(ev) != 2 || ev[0].Name != "network-vif-plugged" || ev[0].ServerUUID != b.ServerUUID {
			t.Fatalf("events: %+v", ev)
		}
		// Again (a restarted conductor): nothing new, same ports.
		again, err := a.svc.AllocateServerPorts(ctx, b, reqs, false)
		if err != nil || len(again) != 2 || again[0].ID != ports[0].ID && again[1].ID != ports[0].ID {
			t.Fatalf("repeat: %+v %v", again, err)
		}
		if ev := log.take(); len(ev) != 0 {
			t.Fatalf("events of a repeat: %+v", ev)
		}
		// Another host (evacuation): ports follow.
		if err := a.svc.RebindServerPorts(ctx, b.ServerUUID, "h2", "nova"); err != nil {
			t.Fatal(err)
		}
		m, err := a.svc.ServerPorts(ctx, []string{b.ServerUUID})
		if err != nil || len(m[b.ServerUUID]) != 2 || m[b.ServerUUID][0].HostID != "h2" {
			t.Fatalf("after rebind: %+v %v", m, err)
		}
		// The fixed IP and the claimed port are now in use.
		if dev, used, err := a.svc.FixedIPUser(ctx, netID, netip.MustParseAddr("10.60.0.20")); err != nil || !used || dev != b.ServerUUID {
			t.Fatalf("fixed ip user: %q %v %v", dev, used, err)
		}
		other := ServerBinding{ServerUUID: "11111111-0000-4000-8000-000000000002", ProjectID: "p-alice", Host: "h1", Zone: "nova"}
		if _, err := a.svc.AllocateServerPorts(ctx, other, []ServerPortRequest{{PortID: own["id"].(string)}}, false); !errors.Is(err, ErrPortInUse) {
			t.Fatalf("claiming a port in use: %v", err)
		}
		if _, err := a.svc.AllocateServerPorts(ctx, other, []ServerPortRequest{{NetworkID: netID, FixedIP: netip.MustParseAddr("10.60.0.20")}}, false); !errors.Is(err, ErrFixedIPInUse) {
			t.Fatalf("a fixed IP in use: %v", err)
		}
		if m, _ := a.svc.ServerPorts(ctx, []string{other.ServerUUID}); len(m[other.ServerUUID]) != 0 {
			t.Fatalf("failed allocation left ports: %+v", m)
		}
		// Release: the created port goes, the user's port stays unbound;
		// releasing twice is fine.
		for range 2 {
			if err := a.svc.ReleaseServerPorts(ctx, b.ServerUUID, ""); err != nil {
				t.Fatal(err)
			}
		}
		a.must(a.do("admin", "GET", "/ports/"+ports[0].ID, nil), 404)
		kept := a.must(a.do("admin", "GET", "/ports/"+own["id"].(string), nil), 200).json(t)["port"].(map[string]any)
		if kept["device_id"] != "" || kept["binding:host_id"] != "" || kept["status"] != "DOWN" {
			t.Fatalf("user port after release: %v", kept)
		}
		if err := a.svc.ReleaseServerPorts(ctx, b.ServerUUID, own["id"].(string)); !errors.Is(err, ErrPortNotFound) {
			t.Fatalf("detaching a port the server does not have: %v", err)
		}
	})
}

func TestSetPortStatusEvents(t *testing.T) {
	a := newTestAPI(t, Config{})
	var log eventLog
	a.svc.SetComputeNotifier(log.notify)
	ctx := context.Background()
	if err := a.svc.ReportAgent(ctx, AgentReport{AgentType: L2AgentType, Binary: "kumo-agent", Topic: "N/A", Host: "h1", StartFlag: true}); err != nil {
		t.Fatal(err)
	}
	netID, _ := a.netWithSubnet("alice", "10.61.0.0/24")
	b := ServerBinding{ServerUUID: "11111111-0000-4000-8000-000000000003", ProjectID: "p-alice", Host: "h1", Zone: "nova"}
	ports, err := a.svc.AllocateServerPorts(ctx, b, []ServerPortRequest{{NetworkID: netID}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if ports[0].Status != "DOWN" {
		t.Fatalf("a port on a host with an agent is %s before the agent reports", ports[0].Status)
	}
	if ev := log.take(); len(ev) != 0 {
		t.Fatalf("events before plugging: %+v", ev)
	}
	id := ports[0].ID
	steps := []struct {
		status string
		want   []ServerEvent
	}{
		{"ACTIVE", []ServerEvent{{"network-vif-plugged", b.ServerUUID, id, "completed"}}},
		{"ACTIVE", nil},
		{"DOWN", []ServerEvent{{"network-vif-unplugged", b.ServerUUID, id, "completed"}}},
		{"ERROR", []ServerEvent{{"network-vif-plugged", b.ServerUUID, id, "failed"}}},
	}
	for _, st := range steps {
		if err := a.svc.SetPortStatus(ctx, id, st.status); err != nil {
			t.Fatal(err)
		}
		got := log.take()
		if len(got) != len(st.want) || len(got) > 0 && got[0] != st.want[0] {
			t.Fatalf("status %s: events %+v, want %+v", st.status, got, st.want)
		}
	}
	if err := a.svc.SetPortStatus(ctx, id, "BOGUS"); err == nil {
		t.Fatal("bogus status accepted")
	}
	// A port of no server sends nothing.
	plain := a.create("alice", "ports", "port", map[string]any{"network_id": netID})
	if err := a.svc.SetPortStatus(ctx, plain["id"].(string), "ACTIVE"); err != nil || len(log.take()) != 0 {
		t.Fatalf("plain port: %v", err)
	}
}

func TestAgentsAPI(t *testing.T) {
	a := newTestAPI(t, Config{})
	ctx := context.Background()
	a.must(a.do("admin", "GET", "/agents", nil), 200)
	if err := a.svc.ReportAgent(ctx, AgentReport{AgentType: L2AgentType, Binary: "kumo-agent", Topic: "N/A", Host: "h1",
		Configurations: map[string]any{"bridge_mappings": map[string]any{}}, StartFlag: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.ReportAgent(ctx, AgentReport{AgentType: L2AgentType, Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	l := a.must(a.do("admin", "GET", "/agents?host=h1&alive=true", nil), 200).json(t)["agents"].([]any)
	if len(l) != 1 {
		t.Fatalf("agents: %v", l)
	}
	ag := l[0].(map[string]any)
	if ag["agent_type"] != L2AgentType || ag["binary"] != "kumo-agent" || ag["alive"] != true || ag["description"] != nil {
		t.Fatalf("agent: %v", ag)
	}
	id := ag["id"].(string)
	a.expectErr(a.do("alice", "GET", "/agents", nil), 403, "PolicyNotAuthorized")
	a.expectErr(a.do("admin", "GET", "/agents?bogus=1", nil), 400, "HTTPBadRequest")
	up := a.must(a.do("admin", "PUT", "/agents/"+id, `{"agent": {"admin_state_up": false, "description": "maint"}}`), 200).json(t)["agent"].(map[string]any)
	if up["admin_state_up"] != false || up["description"] != "maint" {
		t.Fatalf("updated agent: %v", up)
	}
	a.expectErr(a.do("admin", "PUT", "/agents/"+id, `{"agent": {"host": "x"}}`), 400, "HTTPBadRequest")
	a.must(a.do("admin", "GET", "/agents/"+id, nil), 200)
	a.must(a.do("admin", "DELETE", "/agents/"+id, nil), 204)
	a.expectErr(a.do("admin", "GET", "/agents/"+id, nil), 404, "AgentNotFound")
}

func TestAutoAllocatedTopologyAPI(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.expectErr(a.do("alice", "GET", "/auto-allocated-topology/p-alice?fields=dry-run", nil), 409, "AutoAllocationFailure")
	ext := a.create("admin", "networks", "network", map[string]any{"name": "public", "router:external": true, "is_default": true})
	a.create("admin", "subnets", "subnet", map[string]any{"network_id": ext["id"], "cidr": "192.0.2.0/24", "ip_version": 4})
	a.expectErr(a.do("alice", "GET", "/auto-allocated-topology/p-alice?fields=dry-run", nil), 409, "AutoAllocationFailure")
	a.create("admin", "subnetpools", "subnetpool", map[string]any{"name": "pool", "prefixes": []string{"10.200.0.0/16"},
		"default_prefixlen": 24, "is_default": true, "shared": true})
	dry := a.must(a.do("alice", "GET", "/auto-allocated-topology/p-alice?fields=dry-run", nil), 200).json(t)["auto_allocated_topology"].(map[string]any)
	if dry["id"] != "dry-run=pass" {
		t.Fatalf("dry run: %v", dry)
	}
	a.expectErr(a.do("bob", "GET", "/auto-allocated-topology/p-alice", nil), 403, "PolicyNotAuthorized")
	topo := a.must(a.do("alice", "GET", "/auto-allocated-topology/p-alice", nil), 200).json(t)["auto_allocated_topology"].(map[string]any)
	again := a.must(a.do("alice", "GET", "/auto-allocated-topology/p-alice", nil), 200).json(t)["auto_allocated_topology"].(map[string]any)
	if topo["id"] == "" || topo["id"] != again["id"] || topo["project_id"] != "p-alice" {
		t.Fatalf("topology: %v %v", topo, again)
	}
	n := a.must(a.do("alice", "GET", "/networks/"+topo["id"].(string), nil), 200).json(t)["network"].(map[string]any)
	if n["admin_state_up"] != true || len(n["subnets"].([]any)) != 1 {
		t.Fatalf("auto network: %v", n)
	}
	routers := a.must(a.do("alice", "GET", "/routers", nil), 200).json(t)["routers"].([]any)
	if len(routers) != 1 || routers[0].(map[string]any)["external_gateway_info"] == nil {
		t.Fatalf("auto router: %v", routers)
	}
	a.must(a.do("alice", "DELETE", "/auto-allocated-topology/p-alice", nil), 204)
	a.must(a.do("alice", "GET", "/networks/"+topo["id"].(string), nil), 404)
	if routers := a.must(a.do("alice", "GET", "/routers", nil), 200).json(t)["routers"].([]any); len(routers) != 0 {
		t.Fatalf("routers left: %v", routers)
	}
	a.expectErr(a.do("alice", "DELETE", "/auto-allocated-topology/p-alice", nil), 404, "NotFound")
}

// Binding through the API follows the same rule: a host without an agent
// makes the port ACTIVE at once, and a server's port sends its event.
func TestBindingStatusThroughAPI(t *testing.T) {
	a := newTestAPI(t, Config{})
	var log eventLog
	a.svc.SetComputeNotifier(log.notify)
	netID, _ := a.netWithSubnet("alice", "10.62.0.0/24")
	p := a.create("admin", "ports", "port", map[string]any{"network_id": netID, "device_id": "vm-x", "device_owner": "compute:nova"})
	if p["status"] != "DOWN" {
		t.Fatalf("unbound port: %v", p["status"])
	}
	up := a.must(a.do("admin", "PUT", "/ports/"+p["id"].(string), map[string]any{"port": map[string]any{"binding:host_id": "h9"}}), 200).json(t)["port"].(map[string]any)
	if up["status"] != "ACTIVE" || up["binding:vif_type"] != "bridge" {
		t.Fatalf("bound port: %v", up)
	}
	if ev := log.take(); len(ev) != 1 || ev[0].Name != "network-vif-plugged" || ev[0].ServerUUID != "vm-x" {
		t.Fatalf("events: %+v", ev)
	}
	bound := a.create("admin", "ports", "port", map[string]any{"network_id": netID, "binding:host_id": "h9"})
	if bound["status"] != "ACTIVE" {
		t.Fatalf("port created bound: %v", bound["status"])
	}
}

// Floating IP (dis)association and port deletion reach Compute as
// network-changed and network-vif-deleted.
func TestNetworkChangedEvents(t *testing.T) {
	a := newTestAPI(t, Config{})
	var log eventLog
	a.svc.SetComputeNotifier(log.notify)
	ext := a.create("admin", "networks", "network", map[string]any{"name": "public", "router:external": true})
	a.create("admin", "subnets", "subnet", map[string]any{"network_id": ext["id"], "cidr": "192.0.2.0/24", "ip_version": 4})
	netID, subID := a.netWithSubnet("alice", "10.63.0.0/24")
	rt := a.create("alice", "routers", "router", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext["id"]}})
	a.must(a.do("alice", "PUT", "/routers/"+rt["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": subID}), 200)
	b := ServerBinding{ServerUUID: "11111111-0000-4000-8000-000000000009", ProjectID: "p-alice", Host: "h1", Zone: "nova"}
	ports, err := a.svc.AllocateServerPorts(context.Background(), b, []ServerPortRequest{{NetworkID: netID}}, false)
	if err != nil {
		t.Fatal(err)
	}
	log.take()
	fip := a.create("alice", "floatingips", "floatingip", map[string]any{"floating_network_id": ext["id"]})
	a.must(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"port_id": ports[0].ID}}), 200)
	if ev := log.take(); len(ev) != 1 || ev[0].Name != "network-changed" || ev[0].ServerUUID != b.ServerUUID || ev[0].Tag != ports[0].ID {
		t.Fatalf("events of an association: %+v", ev)
	}
	a.must(a.do("alice", "PUT", "/floatingips/"+fip["id"].(string), map[string]any{"floatingip": map[string]any{"description": "x"}}), 200)
	if ev := log.take(); len(ev) != 0 {
		t.Fatalf("events of a description change: %+v", ev)
	}
	a.must(a.do("alice", "DELETE", "/ports/"+ports[0].ID, nil), 204)
	if ev := log.take(); len(ev) != 1 || ev[0].Name != "network-vif-deleted" {
		t.Fatalf("events of a port delete: %+v", ev)
	}
}
