package linux

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
)

func testTable() *DHCPTable {
	return &DHCPTable{ServerIP: netip.MustParseAddr("10.20.0.2"), LeaseTime: time.Hour, ByMAC: map[string]Lease{
		"fa:16:3e:00:00:07": {MAC: "fa:16:3e:00:00:07", IP: netip.MustParseAddr("10.20.0.7"), Subnet: netip.MustParsePrefix("10.20.0.0/24"),
			Gateway: netip.MustParseAddr("10.20.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.20.0.53")},
			Routes: []Route{{Dst: netip.MustParsePrefix("169.254.169.254/32"), Via: netip.MustParseAddr("10.20.0.2")}},
			MTU:    1400, Hostname: "vm-7", Domain: "openstacklocal."},
	}}
}

func request(t testing.TB, mac string, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(typ)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRespond(t *testing.T) {
	tbl := testTable()
	offer, err := Respond(tbl, request(t, "FA:16:3E:00:00:07", dhcpv4.MessageTypeDiscover))
	if err != nil || offer == nil {
		t.Fatalf("offer %v, %v", offer, err)
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.YourIPAddr.String() != "10.20.0.7" {
		t.Fatalf("offer: %s", offer.Summary())
	}
	checks := map[string]string{
		"mask":   net.IP(offer.SubnetMask()).String(),
		"router": offer.Router()[0].String(),
		"dns":    offer.DNS()[0].String(),
		"server": offer.ServerIdentifier().String(),
		"lease":  offer.IPAddressLeaseTime(0).String(),
		"host":   offer.HostName(),
		"domain": offer.DomainName(),
	}
	want := map[string]string{"mask": "255.255.255.0", "router": "10.20.0.1", "dns": "10.20.0.53", "server": "10.20.0.2",
		"lease": "1h0m0s", "host": "vm-7", "domain": "openstacklocal"}
	for k, v := range want {
		if checks[k] != v {
			t.Errorf("%s = %q, want %q", k, checks[k], v)
		}
	}
	if mtu := offer.GetOneOption(dhcpv4.OptionInterfaceMTU); len(mtu) != 2 || binary.BigEndian.Uint16(mtu) != 1400 {
		t.Errorf("mtu option = %v", mtu)
	}
	routes := offer.ClasslessStaticRoute()
	if len(routes) != 2 || routes[0].String() != "route to 0.0.0.0/0 via 10.20.0.1" || routes[1].String() != "route to 169.254.169.254/32 via 10.20.0.2" {
		t.Errorf("option 121 = %v", routes)
	}

	ack, _ := Respond(tbl, request(t, "fa:16:3e:00:00:07", dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.20.0.7"))), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.20.0.2")))))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.20.0.7" {
		t.Fatalf("ack: %v", ack)
	}
	nak, _ := Respond(tbl, request(t, "fa:16:3e:00:00:07", dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.20.0.99")))))
	if nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("request for another address: %v", nak)
	}
	other, _ := Respond(tbl, request(t, "fa:16:3e:00:00:07", dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.20.0.3")))))
	if other != nil {
		t.Fatalf("answered a request meant for another server: %v", other)
	}
	if unknown, _ := Respond(tbl, request(t, "fa:16:3e:00:00:99", dhcpv4.MessageTypeDiscover)); unknown != nil {
		t.Fatalf("answered an unknown MAC: %v", unknown)
	}
	if rel, _ := Respond(tbl, request(t, "fa:16:3e:00:00:07", dhcpv4.MessageTypeRelease)); rel != nil {
		t.Fatalf("answered a release: %v", rel)
	}
}

const udhcpcScript = `#!/bin/sh
[ "$1" = bound ] || exit 0
env | grep -E '^(ip|subnet|router|dns|mtu|staticroutes|lease|hostname|domain|serverid)=' > "$OUT"
`

// runUDHCPC runs busybox's DHCP client in the VM namespace and returns
// the options it was bound with.
func runUDHCPC(t testing.TB, vmNS string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("kernel test: needs busybox (package busybox-static) for udhcpc")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", vmNS, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1",
		"-s", script, "-O", "staticroutes", "-O", "mtu", "-O", "hostname", "-O", "domain")
	cmd.Env = append(os.Environ(), "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	return env
}

func TestKernelDHCP(t *testing.T) {
	netnstest.Require(t)
	tag := netnstest.Tag()
	host := newNS(t, "kt"+tag+"-h")
	l := newL2(t, host)
	plan, _ := Render(Config{}, NetworkSpec{ID: "dhcp-net-" + tag, MTU: 1400, Segment: Segment{Type: "local"}})
	if err := l.EnsureNetwork(plan); err != nil {
		t.Fatal(err)
	}
	nsName := "kt" + tag + "-dhcp"
	t.Cleanup(func() { _ = DeleteNamedNetns(nsName) })
	sp := ServicePort{Namespace: nsName, PortID: "dhcpport-" + tag, MAC: "fa:16:3e:00:00:02", Bridge: plan.Bridge.Name, MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.20.0.2/24"), netip.MustParsePrefix("169.254.169.254/32")}}
	ns, err := l.EnsureServicePort(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// Again: nothing to do, the same pair stays.
	ns2, err := l.EnsureServicePort(sp)
	if err != nil {
		t.Fatal(err)
	}
	ns2.Close()
	if out := netnstest.Sh(t, "ip", "-n", nsName, "-o", "addr", "show", "dev", NSDevName(sp.PortID)); !strings.Contains(out, "10.20.0.2/24") || !strings.Contains(out, "169.254.169.254/32") {
		t.Fatalf("service port addresses: %s", out)
	}
	srv, err := ListenDHCP(ns, NSDevName(sp.PortID), slogT(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTable(testTable())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	tap := TapName("vmport-" + tag)
	v := vm(t, host, "kt"+tag+"-vm", tap, "fa:16:3e:00:00:07", "")
	if err := l.Plug(tap, plan.Bridge.Name, 1400); err != nil {
		t.Fatal(err)
	}
	env := runUDHCPC(t, v.name)
	want := map[string]string{"ip": "10.20.0.7", "subnet": "255.255.255.0", "router": "10.20.0.1", "dns": "10.20.0.53",
		"mtu": "1400", "serverid": "10.20.0.2", "lease": "3600", "hostname": "vm-7", "domain": "openstacklocal",
		"staticroutes": "0.0.0.0/0 10.20.0.1 169.254.169.254/32 10.20.0.2"}
	for k, w := range want {
		if env[k] != w {
			t.Errorf("udhcpc %s = %q, want %q (all: %v)", k, env[k], w, env)
		}
	}
}
