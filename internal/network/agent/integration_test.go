package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/network"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/service"
)

// TestKernelWithNetworkService runs the real networking service (SQLite,
// Neutron API) and an agent on a namespaced host over one bus: a port
// created through the API is wired when its tap appears, reported ACTIVE,
// served by DHCP; the agents show at /v2.0/agents; deleting the network
// removes it from the host.
func TestKernelWithNetworkService(t *testing.T) {
	netnstest.Require(t, "busybox")
	tag := netnstest.Tag()
	host := newNS(t, "ki"+tag+"-h")
	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	v := authtest.New()
	v.Add("admin", "u-admin", "p-admin", "admin", "member", "reader")
	svc, err := network.New(service.Deps{DB: dbtest.OpenSQLite(t, network.Migrations()), Bus: b, Auth: v, Log: quietLog(t)}, network.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	api := httptest.NewServer(mux)
	defer api.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	call := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, api.URL+"/networking/v2.0"+path, rd)
		req.Header.Set("X-Auth-Token", "admin")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	n := call("POST", "/networks", map[string]any{"network": map[string]any{"name": "n1"}}, 201)["network"].(map[string]any)
	netID := n["id"].(string)
	call("POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "cidr": "10.50.0.0/24", "ip_version": 4,
		"dns_nameservers": []string{"10.50.0.53"}}}, 201)
	p := call("POST", "/ports", map[string]any{"port": map[string]any{"network_id": netID, "binding:host_id": "hostI",
		"device_owner": "compute:nova", "device_id": "vm-i", "port_security_enabled": false}}, 201)["port"].(map[string]any)
	portID, mac := p["id"].(string), p["mac_address"].(string)
	ip := p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)

	h := host.h
	startAgent(t, b, Config{Host: "hostI", HostNetns: &h, NamespacePrefix: "ki" + tag + "-", DHCP: true})
	vm := vmNS(t, host, "ki"+tag+"-vm", linux.TapName(portID), mac)
	eventually(t, 15*time.Second, "port ACTIVE in the API", func() error {
		if s := call("GET", "/ports/"+portID, nil, 200)["port"].(map[string]any)["status"]; s != "ACTIVE" {
			return fmt.Errorf("status %v", s)
		}
		return nil
	})
	if got := udhcpc(t, vm); got != ip {
		t.Fatalf("DHCP gave %q, the port has %s", got, ip)
	}
	var dhcpPorts []any
	eventually(t, 5*time.Second, "DHCP port listed", func() error {
		dhcpPorts = call("GET", "/ports?device_owner=network:dhcp&network_id="+netID, nil, 200)["ports"].([]any)
		if len(dhcpPorts) != 1 {
			return fmt.Errorf("%d dhcp ports", len(dhcpPorts))
		}
		return nil
	})
	if d := dhcpPorts[0].(map[string]any); d["binding:host_id"] != "hostI" || d["device_id"] != "dhcp-hostI" {
		t.Fatalf("dhcp port: %v", d)
	}
	types := map[string]bool{}
	for _, a := range call("GET", "/agents?host=hostI&alive=true", nil, 200)["agents"].([]any) {
		types[a.(map[string]any)["agent_type"].(string)] = true
	}
	if !types["Linux bridge agent"] || !types["DHCP agent"] {
		t.Fatalf("agents of hostI: %v", types)
	}
	// The network goes: its bridge and namespace leave the host.
	call("DELETE", "/ports/"+portID, nil, 204)
	call("DELETE", "/networks/"+netID, nil, 204)
	eventually(t, 10*time.Second, "network removed from the host", func() error {
		out := netnstest.Sh(t, "ip", "-n", host.name, "link", "show")
		if strings.Contains(out, linux.BridgeName(netID)) {
			return fmt.Errorf("bridge still there")
		}
		if out := netnstest.Sh(t, "ip", "netns", "list"); strings.Contains(out, "ki"+tag+"-qdhcp-") {
			return fmt.Errorf("dhcp namespace still there")
		}
		return nil
	})
}
