package l3

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s", name, got)
	}
}

func TestRenderGolden(t *testing.T) {
	r := Router{
		ID: "8f6b2c1e-0000-4000-8000-000000000001",
		Interfaces: []Interface{
			{PortID: "bbbbbbbb-0002", MACAddress: "fa:16:3e:00:00:02", IPs: []string{"10.2.0.1/24", "2001:db8:2::1/64"}, MTU: 1450},
			{PortID: "aaaaaaaa-0001", MACAddress: "fa:16:3e:00:00:01", IPs: []string{"10.1.0.1/24"}, Bridge: "brq-net1"},
		},
		Gateway: &Gateway{
			Interface: Interface{PortID: "eeeeeeee-0003", MACAddress: "fa:16:3e:00:00:03", IPs: []string{"203.0.113.10/24"}},
			NextHops:  []string{"203.0.113.1"},
		},
		EnableSNAT: true,
		Routes:     []Route{{Destination: "192.168.50.7/24", NextHop: "10.2.0.10"}, {Destination: "2001:db8:99::/48", NextHop: "2001:db8:2::10"}},
		FloatingIPs: []FloatingIP{
			{FloatingIP: "203.0.113.21", FixedIP: "10.2.0.10"},
			{FloatingIP: "203.0.113.20", FixedIP: "10.1.0.10"},
		},
		PortForwardings: []PortForwarding{
			{FloatingIP: "203.0.113.30", Protocol: "tcp", ExternalPort: 2222, InternalIP: "10.2.0.11", InternalPort: 22},
			{FloatingIP: "203.0.113.30", Protocol: "udp", ExternalPort: 5353, InternalIP: "10.2.0.11", InternalPort: 53},
		},
	}
	p, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "router.txt", p.String())

	// Without SNAT and without a gateway.
	r.EnableSNAT, r.Gateway, r.FloatingIPs, r.PortForwardings, r.Routes = false, nil, nil, nil, nil
	p, err = Render(r)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "router-internal.txt", p.String())
}

func TestRenderErrors(t *testing.T) {
	r := Router{
		ID:          "r",
		Interfaces:  []Interface{{PortID: "p1", MACAddress: "nope", IPs: []string{"10.0.0.1"}}},
		Routes:      []Route{{Destination: "10.9.0.0/16", NextHop: "2001:db8::1"}},
		FloatingIPs: []FloatingIP{{FloatingIP: "203.0.113.5", FixedIP: "10.0.0.5"}},
	}
	_, err := Render(r)
	for _, want := range []string{"invalid mac_address", "invalid address \"10.0.0.1\"", "invalid route", "floating IPs need an external gateway"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	r = Router{ID: "r", EnableSNAT: true,
		Gateway:     &Gateway{Interface: Interface{PortID: "g", IPs: []string{"2001:db8::5/64"}}, NextHops: []string{"x"}},
		FloatingIPs: []FloatingIP{{FloatingIP: "203.0.113.5", FixedIP: "2001:db8::9"}},
		PortForwardings: []PortForwarding{{FloatingIP: "203.0.113.5", Protocol: "icmp", ExternalPort: 1, InternalIP: "10.0.0.1", InternalPort: 1},
			{FloatingIP: "203.0.113.5", Protocol: "tcp", ExternalPort: 0, InternalIP: "10.0.0.1", InternalPort: 70000}},
	}
	_, err = Render(r)
	for _, want := range []string{"enable_snat without an IPv4 gateway", "invalid gateway next hop", "invalid IPv4 addresses", "invalid protocol", "ports must be 1-65535"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestDeviceNames(t *testing.T) {
	in, host := DeviceNames("0123456789abcdef", false)
	if in != "qr-0123456789a" || host != "tap0123456789a" {
		t.Errorf("qr names %s %s", in, host)
	}
	in, _ = DeviceNames("0123456789abcdef", true)
	if in != "qg-0123456789a" {
		t.Errorf("qg name %s", in)
	}
	got := HostDevices(Desired{Routers: []Router{{ID: "r", Interfaces: []Interface{{PortID: "p1"}}, Gateway: &Gateway{Interface: Interface{PortID: "p2"}}}}})
	if len(got) != 2 || got["tapp1"] != "p1" || got["tapp2"] != "p2" {
		t.Errorf("HostDevices = %v", got)
	}
}
