package compute_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/netalloc"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/network"
	"github.com/kumo-cloud/kumo/internal/service"
)

// netEnv is a server env whose servers get their ports from a real
// networking service on the same database.
type netEnv struct {
	*env
	neutron *network.Service
	nh      http.Handler
}

func newNetEnv(t *testing.T, mod func(*compute.Config)) *netEnv {
	t.Helper()
	d := dbtest.OpenSQLite(t, compute.Migrations(), network.Migrations())
	v := authtest.NewCallers()
	neutron, err := network.New(service.Deps{DB: d, Auth: v}, network.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	neutron.Routes().Register(mux)
	e := newServerEnv(t, d, 1, func(c *compute.Config) {
		c.Network = netalloc.New(neutron)
		c.Networking = mux
		if mod != nil {
			mod(c)
		}
	})
	neutron.SetComputeNotifier(netalloc.Notifier(e.svc))
	return &netEnv{env: e, neutron: neutron, nh: apiutil.Middleware(mux, publicURL, nil, nil)}
}

// net sends a networking API request and checks its status.
func (e *netEnv) net(token, method, path, body string, status int) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/networking/v2.0"+path, rd)
	req.Header.Set("X-Auth-Token", token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.nh.ServeHTTP(w, req)
	if w.Code != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, w.Code, status, w.Body.String())
	}
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// network creates a network with an IPv4 subnet and returns their ids.
func (e *netEnv) network(token, name, cidr string) (string, string) {
	e.t.Helper()
	n := obj(e.t, e.net(token, "POST", "/networks", `{"network": {"name": "`+name+`"}}`, 201), "network")["id"].(string)
	s := obj(e.t, e.net(token, "POST", "/subnets", `{"subnet": {"network_id": "`+n+`", "ip_version": 4, "cidr": "`+cidr+`"}}`, 201), "subnet")["id"].(string)
	return n, s
}

func (e *netEnv) ports(token, query string) []any {
	e.t.Helper()
	return list(e.t, e.net(token, "GET", "/ports?"+query, "", 200), "ports")
}

func bootOn(name, networks string) string {
	return `{"server": {"name": "` + name + `", "imageRef": "` + imageID + `", "flavorRef": "42", "networks": ` + networks + `}}`
}

func TestServerOnNetwork(t *testing.T) {
	e := newNetEnv(t, nil)
	netID, subID := e.network("alice", "net1", "10.1.0.0/24")
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`"}]`))
	s := e.waitStatus(id, "ACTIVE")

	ports := e.ports("admin", "device_id="+id)
	if len(ports) != 1 {
		t.Fatalf("ports of the server: %v", ports)
	}
	p := ports[0].(map[string]any)
	if p["binding:host_id"] != "compute" || p["device_owner"] != "compute:nova" || p["status"] != "ACTIVE" ||
		p["project_id"] != "p1" || p["binding:vif_type"] != "bridge" {
		t.Fatalf("port: %v", p)
	}
	ip := p["fixed_ips"].([]any)[0].(map[string]any)
	if ip["subnet_id"] != subID {
		t.Fatalf("fixed ip: %v", ip)
	}
	addrs := s["addresses"].(map[string]any)["net1"].([]any)
	a := addrs[0].(map[string]any)
	if len(addrs) != 1 || a["addr"] != ip["ip_address"] || a["version"] != 4.0 || a["OS-EXT-IPS:type"] != "fixed" ||
		a["OS-EXT-IPS-MAC:mac_addr"] != p["mac_address"] {
		t.Fatalf("addresses: %v", s["addresses"])
	}
	ips := e.do("alice", "GET", v21+"/servers/"+id+"/ips", "2.1", "").Expect(t, 200, "").Body
	if got := ips["addresses"].(map[string]any)["net1"].([]any)[0].(map[string]any); got["addr"] != ip["ip_address"] || len(got) != 2 {
		t.Fatalf("ips: %v", ips)
	}
	e.do("alice", "GET", v21+"/servers/"+id+"/ips/net1", "2.1", "").Expect(t, 200, "")
	e.do("alice", "GET", v21+"/servers/"+id+"/ips/other", "2.1", "").Expect(t, 404, "itemNotFound")
	detail := e.do("alice", "GET", v21+"/servers/detail", "2.1", "").Expect(t, 200, "").Body
	if d := list(t, detail, "servers")[0].(map[string]any); len(d["addresses"].(map[string]any)) != 1 {
		t.Fatalf("detail addresses: %v", d["addresses"])
	}

	// Delete removes the port Compute created.
	e.do("alice", "DELETE", v21+"/servers/"+id, "2.1", "").Expect(t, 204, "")
	e.waitGone(id)
	if ports := e.ports("admin", "device_id="+id); len(ports) != 0 {
		t.Fatalf("ports left after delete: %v", ports)
	}
}

func TestServerOnPortKeepsPort(t *testing.T) {
	e := newNetEnv(t, nil)
	netID, _ := e.network("alice", "net1", "10.2.0.0/24")
	port := obj(t, e.net("alice", "POST", "/ports", `{"port": {"network_id": "`+netID+`", "name": "mine"}}`, 201), "port")
	pid := port["id"].(string)
	id := e.boot("alice", bootOn("vm", `[{"port": "`+pid+`"}]`))
	e.waitStatus(id, "ACTIVE")
	p := obj(t, e.net("admin", "GET", "/ports/"+pid, "", 200), "port")
	if p["device_id"] != id || p["binding:host_id"] != "compute" {
		t.Fatalf("port after boot: %v", p)
	}
	// The port is in use now.
	e.do("alice", "POST", v21+"/servers", "2.96", bootOn("vm2", `[{"port": "`+pid+`"}]`)).Expect(t, 409, "conflictingRequest")

	e.do("alice", "DELETE", v21+"/servers/"+id, "2.1", "").Expect(t, 204, "")
	e.waitGone(id)
	p = obj(t, e.net("admin", "GET", "/ports/"+pid, "", 200), "port")
	if p["device_id"] != "" || p["device_owner"] != "" || p["binding:host_id"] != "" || p["binding:vif_type"] != "unbound" {
		t.Fatalf("user port after server delete: %v", p)
	}
}

func TestServerNetworkValidation(t *testing.T) {
	e := newNetEnv(t, nil)
	netID, _ := e.network("alice", "net1", "10.3.0.0/24")
	bobNet, _ := e.network("bob", "bobnet", "10.4.0.0/24")
	missing := "9b7d0a4e-0000-4000-8000-000000000001"
	obj(t, e.net("alice", "POST", "/ports", `{"port": {"network_id": "`+netID+`", "fixed_ips": [{"ip_address": "10.3.0.50"}]}}`, 201), "port")
	cases := []struct {
		name, networks string
		status         int
		msg            string
	}{
		{"unknown network", `[{"uuid": "` + missing + `"}]`, 400, "Network " + missing + " could not be found."},
		{"other project's network", `[{"uuid": "` + bobNet + `"}]`, 400, "Network " + bobNet + " could not be found."},
		{"unknown port", `[{"port": "` + missing + `"}]`, 400, "Port id " + missing + " could not be found."},
		{"fixed ip outside", `[{"uuid": "` + netID + `", "fixed_ip": "192.168.9.9"}]`, 400, "Invalid fixed IP address (192.168.9.9)"},
		{"fixed ip garbage", `[{"uuid": "` + netID + `", "fixed_ip": "nope"}]`, 400, "Invalid fixed IP address (nope)"},
		{"fixed ip in use", `[{"uuid": "` + netID + `", "fixed_ip": "10.3.0.50"}]`, 400, "Fixed IP address 10.3.0.50 is already in use"},
		{"bad uuid", `[{"uuid": "zzz"}]`, 400, "Bad networks format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("alice", "POST", v21+"/servers", "2.96", bootOn("x", c.networks)).Expect(t, c.status, "")
			if !strings.Contains(r.Raw, c.msg) {
				t.Fatalf("message %s, want %q", r.Raw, c.msg)
			}
		})
	}
	// "auto" and "none" need 2.37.
	e.do("alice", "POST", v21+"/servers", "2.36", bootOn("x", `"none"`)).Expect(t, 400, "badRequest")
	// Two networks: "auto" is ambiguous.
	e.network("alice", "net2", "10.5.0.0/24")
	e.do("alice", "POST", v21+"/servers", "2.96", bootOn("x", `"auto"`)).Expect(t, 409, "conflictingRequest")
	// A fixed IP for several servers is refused.
	body := `{"server": {"name": "x", "imageRef": "` + imageID + `", "flavorRef": "42", "max_count": 2, "networks": [{"uuid": "` + netID + `", "fixed_ip": "10.3.0.60"}]}}`
	e.do("alice", "POST", v21+"/servers", "2.96", body).Expect(t, 400, "badRequest")
	// Nothing was created by the refused requests.
	if ports := e.ports("admin", "device_owner=compute:nova"); len(ports) != 0 {
		t.Fatalf("ports after refused creates: %v", ports)
	}
}

func TestServerFixedIPAndNoNetwork(t *testing.T) {
	e := newNetEnv(t, nil)
	netID, _ := e.network("alice", "net1", "10.6.0.0/24")
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`", "fixed_ip": "10.6.0.77", "tag": "nic1"}]`))
	s := e.waitStatus(id, "ACTIVE")
	if a := s["addresses"].(map[string]any)["net1"].([]any)[0].(map[string]any); a["addr"] != "10.6.0.77" {
		t.Fatalf("addresses: %v", s["addresses"])
	}
	// "none" gets no interface; before 2.37 nothing means the one network.
	none := e.boot("alice", bootOn("vm2", `"none"`))
	if s := e.waitStatus(none, "ACTIVE"); len(s["addresses"].(map[string]any)) != 0 {
		t.Fatalf("addresses of a server without networks: %v", s["addresses"])
	}
	r := e.do("alice", "POST", v21+"/servers", "2.1", `{"server": {"name": "old", "imageRef": "`+imageID+`", "flavorRef": "42"}}`).Expect(t, 202, "")
	old := obj(t, r.Body, "server")["id"].(string)
	if s := e.waitStatus(old, "ACTIVE"); len(s["addresses"].(map[string]any)["net1"].([]any)) != 1 {
		t.Fatalf("addresses of a server booted without networks: %v", s["addresses"])
	}
}

func TestInterfaceAttachDetach(t *testing.T) {
	e := newNetEnv(t, nil)
	net1, _ := e.network("alice", "net1", "10.7.0.0/24")
	net2, _ := e.network("alice", "net2", "10.8.0.0/24")
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+net1+`"}]`))
	e.waitStatus(id, "ACTIVE")
	base := v21 + "/servers/" + id + "/os-interface"

	l := list(t, e.do("alice", "GET", base, "2.1", "").Expect(t, 200, "").Body, "interfaceAttachments")
	if len(l) != 1 || l[0].(map[string]any)["net_id"] != net1 || l[0].(map[string]any)["port_state"] != "ACTIVE" {
		t.Fatalf("interfaces: %v", l)
	}
	if _, ok := l[0].(map[string]any)["tag"]; ok {
		t.Fatal("tag shown before 2.70")
	}
	// tag needs 2.49.
	e.do("alice", "POST", base, "2.48", `{"interfaceAttachment": {"net_id": "`+net2+`", "tag": "t"}}`).Expect(t, 400, "badRequest")
	att := obj(t, e.do("alice", "POST", base, "2.70", `{"interfaceAttachment": {"net_id": "`+net2+`", "fixed_ips": [{"ip_address": "10.8.0.9"}], "tag": "t"}}`).Expect(t, 200, "").Body, "interfaceAttachment")
	pid := att["port_id"].(string)
	if att["net_id"] != net2 || att["tag"] != "t" || att["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.8.0.9" {
		t.Fatalf("attached: %v", att)
	}
	shown := obj(t, e.do("alice", "GET", base+"/"+pid, "2.70", "").Expect(t, 200, "").Body, "interfaceAttachment")
	if shown["port_id"] != pid || shown["tag"] != "t" {
		t.Fatalf("show: %v", shown)
	}
	if s := e.server(id); len(s["addresses"].(map[string]any)) != 2 {
		t.Fatalf("addresses after attach: %v", s["addresses"])
	}
	// Bad requests.
	missing := "9b7d0a4e-0000-4000-8000-000000000002"
	e.do("alice", "POST", base, "2.1", `{"interfaceAttachment": {"net_id": "`+missing+`"}}`).Expect(t, 404, "itemNotFound")
	e.do("alice", "POST", base, "2.1", `{"interfaceAttachment": {"net_id": "`+net1+`", "port_id": "`+pid+`"}}`).Expect(t, 400, "badRequest")
	e.do("alice", "POST", base, "2.1", `{"interfaceAttachment": {"port_id": "`+pid+`"}}`).Expect(t, 409, "conflictingRequest")
	e.do("rob", "POST", base, "2.1", `{"interfaceAttachment": {"net_id": "`+net2+`"}}`).Expect(t, 403, "forbidden")
	e.do("bob", "GET", base, "2.1", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "GET", base+"/"+missing, "2.1", "").Expect(t, 404, "itemNotFound")

	// Detach deletes the port Compute made; a user port comes back unbound.
	e.do("alice", "DELETE", base+"/"+pid, "2.1", "").Expect(t, 202, "")
	e.net("admin", "GET", "/ports/"+pid, "", 404)
	e.do("alice", "DELETE", base+"/"+pid, "2.1", "").Expect(t, 404, "itemNotFound")
	mine := obj(t, e.net("alice", "POST", "/ports", `{"port": {"network_id": "`+net2+`"}}`, 201), "port")["id"].(string)
	e.do("alice", "POST", base, "2.1", `{"interfaceAttachment": {"port_id": "`+mine+`"}}`).Expect(t, 200, "")
	e.do("alice", "DELETE", base+"/"+mine, "2.1", "").Expect(t, 202, "")
	if p := obj(t, e.net("admin", "GET", "/ports/"+mine, "", 200), "port"); p["device_id"] != "" {
		t.Fatalf("user port after detach: %v", p)
	}
	if !strings.Contains(actionNames(t, e.env, id), "detach_interface") {
		t.Fatalf("actions: %s", actionNames(t, e.env, id))
	}
	// Not on a locked server, nor during a task.
	e.action("alice", id, `{"lock": null}`, 202)
	e.do("alice", "POST", base, "2.1", `{"interfaceAttachment": {"net_id": "`+net2+`"}}`).Expect(t, 409, "conflictingRequest")
	e.action("alice", id, `{"unlock": null}`, 202)
}

func TestExternalEvents(t *testing.T) {
	e := newNetEnv(t, nil)
	netID, _ := e.network("alice", "net1", "10.9.0.0/24")
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`"}]`))
	e.waitStatus(id, "ACTIVE")
	missing := "9b7d0a4e-0000-4000-8000-000000000003"
	ev := func(server string) string {
		return `{"name": "network-vif-plugged", "server_uuid": "` + server + `", "tag": "p1"}`
	}
	r := e.do("admin", "POST", v21+"/os-server-external-events", "2.1", `{"events": [`+ev(id)+`]}`).Expect(t, 200, "")
	got := list(t, r.Body, "events")[0].(map[string]any)
	if got["code"] != 200.0 || got["status"] != "completed" || got["tag"] != "p1" {
		t.Fatalf("event: %v", got)
	}
	r = e.do("admin", "POST", v21+"/os-server-external-events", "2.1", `{"events": [`+ev(id)+`, `+ev(missing)+`]}`).Expect(t, 207, "")
	if got := list(t, r.Body, "events")[1].(map[string]any); got["code"] != 404.0 || got["status"] != "failed" {
		t.Fatalf("event for a missing server: %v", got)
	}
	e.do("admin", "POST", v21+"/os-server-external-events", "2.1", `{"events": [`+ev(missing)+`]}`).Expect(t, 404, "itemNotFound")
	e.do("alice", "POST", v21+"/os-server-external-events", "2.1", `{"events": [`+ev(id)+`]}`).Expect(t, 403, "forbidden")
	e.do("admin", "POST", v21+"/os-server-external-events", "2.1", `{"events": []}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", v21+"/os-server-external-events", "2.1", `{"events": [{"name": "power-update", "server_uuid": "`+id+`"}]}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", v21+"/os-server-external-events", "2.76", `{"events": [{"name": "power-update", "server_uuid": "`+id+`"}]}`).Expect(t, 200, "")
}

// With a network agent on the host, a build waits for the port to be
// plugged: the agent's status report (SetPortStatus) sends
// network-vif-plugged and the server becomes ACTIVE.
func TestBuildWaitsForVIFPlugged(t *testing.T) {
	e := newNetEnv(t, nil)
	ctx := context.Background()
	if err := e.neutron.ReportAgent(ctx, network.AgentReport{AgentType: network.L2AgentType, Binary: "kumo-agent-network",
		Topic: "N/A", Host: "compute", StartFlag: true}); err != nil {
		t.Fatal(err)
	}
	agents := list(t, e.net("admin", "GET", "/agents", "", 200), "agents")
	if len(agents) != 1 || agents[0].(map[string]any)["alive"] != true || agents[0].(map[string]any)["host"] != "compute" {
		t.Fatalf("agents: %v", agents)
	}
	netID, _ := e.network("alice", "net1", "10.10.0.0/24")
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`"}]`))
	var pid string
	e.eventually(func() bool {
		ps := e.ports("admin", "device_id="+id)
		if len(ps) == 1 {
			pid = ps[0].(map[string]any)["id"].(string)
		}
		return pid != ""
	}, "port allocated")
	time.Sleep(300 * time.Millisecond)
	if s := e.server(id); s["status"] != "BUILD" {
		t.Fatalf("server did not wait for its port: %v", s["status"])
	}
	if p := obj(t, e.net("admin", "GET", "/ports/"+pid, "", 200), "port"); p["status"] != "DOWN" {
		t.Fatalf("port bound to a host with an agent: %v", p["status"])
	}
	if err := e.neutron.SetPortStatus(ctx, pid, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(id, "ACTIVE")
}

func TestVIFPluggingTimeout(t *testing.T) {
	for _, fatal := range []bool{true, false} {
		e := newNetEnv(t, func(c *compute.Config) {
			c.ConductorConfig.VIFPluggingTimeout = 300 * time.Millisecond
			c.ConductorConfig.VIFPluggingNotFatal = !fatal
		})
		if err := e.neutron.ReportAgent(context.Background(), network.AgentReport{AgentType: network.L2AgentType, Host: "compute"}); err != nil {
			t.Fatal(err)
		}
		netID, _ := e.network("alice", "net1", "10.11.0.0/24")
		id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`"}]`))
		if !fatal {
			e.waitStatus(id, "ACTIVE")
			continue
		}
		s := e.waitStatus(id, "ERROR")
		if f, _ := s["fault"].(map[string]any); f == nil || !strings.Contains(f["message"].(string), "Virtual Interface creation failed") {
			t.Fatalf("fault: %v", s["fault"])
		}
		if ps := e.ports("admin", "device_id="+id); len(ps) != 0 {
			t.Fatalf("ports left by a failed build: %v", ps)
		}
		if g, _ := e.driver(0).List(context.Background()); len(g) != 0 {
			t.Fatalf("guests left by a failed build: %v", g)
		}
	}
}

// A floating IP on a server's port shows in its addresses as floating.
func TestServerFloatingIPAddress(t *testing.T) {
	e := newNetEnv(t, nil)
	ext := obj(t, e.net("admin", "POST", "/networks", `{"network": {"name": "public", "router:external": true}}`, 201), "network")["id"].(string)
	e.net("admin", "POST", "/subnets", `{"subnet": {"network_id": "`+ext+`", "ip_version": 4, "cidr": "203.0.113.0/24"}}`, 201)
	netID, subID := e.network("alice", "net1", "10.12.0.0/24")
	rt := obj(t, e.net("alice", "POST", "/routers", `{"router": {"name": "r", "external_gateway_info": {"network_id": "`+ext+`"}}}`, 201), "router")["id"].(string)
	e.net("alice", "PUT", "/routers/"+rt+"/add_router_interface", `{"subnet_id": "`+subID+`"}`, 200)
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`"}]`))
	e.waitStatus(id, "ACTIVE")
	pid := e.ports("admin", "device_id="+id)[0].(map[string]any)["id"].(string)
	fip := obj(t, e.net("alice", "POST", "/floatingips", `{"floatingip": {"floating_network_id": "`+ext+`", "port_id": "`+pid+`"}}`, 201), "floatingip")
	addrs := e.server(id)["addresses"].(map[string]any)["net1"].([]any)
	if len(addrs) != 2 || addrs[1].(map[string]any)["OS-EXT-IPS:type"] != "floating" || addrs[1].(map[string]any)["addr"] != fip["floating_ip_address"] {
		t.Fatalf("addresses with a floating IP: %v", addrs)
	}
	// Deleting the server frees the floating IP.
	e.do("alice", "DELETE", v21+"/servers/"+id, "2.1", "").Expect(t, 204, "")
	e.waitGone(id)
	if f := obj(t, e.net("alice", "GET", "/floatingips/"+fip["id"].(string), "", 200), "floatingip"); f["port_id"] != nil {
		t.Fatalf("floating IP after server delete: %v", f)
	}
}

// "auto" with no network available allocates the project's topology
// from the default external network and subnet pool.
func TestAutoAllocatedNetwork(t *testing.T) {
	e := newNetEnv(t, nil)
	// Without a default external network "auto" cannot work.
	e.do("bob", "POST", v21+"/servers", "2.96", bootOn("x", `"auto"`)).Expect(t, 400, "badRequest")
	ext := obj(t, e.net("admin", "POST", "/networks", `{"network": {"name": "public", "router:external": true, "is_default": true}}`, 201), "network")["id"].(string)
	e.net("admin", "POST", "/subnets", `{"subnet": {"network_id": "`+ext+`", "ip_version": 4, "cidr": "198.51.100.0/24"}}`, 201)
	e.net("admin", "POST", "/subnetpools", `{"subnetpool": {"name": "default", "prefixes": ["10.128.0.0/16"], "default_prefixlen": 26, "is_default": true, "shared": true}}`, 201)
	id := e.boot("bob", bootOn("vm", `"auto"`))
	s := e.waitStatus(id, "ACTIVE")
	addrs, ok := s["addresses"].(map[string]any)["auto_allocated_network"].([]any)
	if !ok || len(addrs) != 1 || !strings.HasPrefix(addrs[0].(map[string]any)["addr"].(string), "10.128.") {
		t.Fatalf("addresses of an auto server: %v", s["addresses"])
	}
	topo := obj(t, e.net("bob", "GET", "/auto-allocated-topology/p2", "", 200), "auto_allocated_topology")
	id2 := e.boot("bob", bootOn("vm2", `"auto"`))
	e.waitStatus(id2, "ACTIVE")
	if ps := e.ports("admin", "device_id="+id2); ps[0].(map[string]any)["network_id"] != topo["id"] {
		t.Fatalf("second auto server not on the same network: %v %v", ps, topo)
	}
}
