package l3

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
)

// The kernel test builds a "host" namespace with three bridges (two tenant
// subnets and an external network), "VM" namespaces on the tenant bridges,
// an "outside" namespace on the external bridge with no route to the
// tenant subnets, and a router joining them. No traffic leaves these
// namespaces.

type lab struct {
	t      *testing.T
	prefix string
	host   string
}

func newLab(t *testing.T) *lab {
	netnstest.Require(t, "busybox")
	l := &lab{t: t, prefix: "kl" + netnstest.Tag()}
	l.host = l.prefix + "-h"
	netnstest.Netns(t, l.host)
	for _, br := range []string{"bra", "brb", "bre"} {
		netnstest.Sh(t, "ip", "-n", l.host, "link", "add", br, "type", "bridge")
		netnstest.Sh(t, "ip", "-n", l.host, "link", "set", br, "up")
	}
	return l
}

// node adds a namespace on a bridge with addr (CIDR) and an optional
// default gateway.
func (l *lab) node(name, bridge, addr, gw string) string {
	ns := l.prefix + "-" + name
	netnstest.Netns(l.t, ns)
	netnstest.Veth(l.t, l.host, "v"+name, ns, bridge)
	netnstest.Sh(l.t, "ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
	netnstest.Sh(l.t, "ip", "-n", ns, "link", "set", "eth0", "up")
	if gw != "" {
		netnstest.Sh(l.t, "ip", "-n", ns, "route", "add", "default", "via", gw)
	}
	return ns
}

func TestKernelRouter(t *testing.T) {
	l := newLab(t)
	vmA := l.node("a", "bra", "10.1.0.10/24", "10.1.0.1")
	vmB := l.node("b", "brb", "10.2.0.10/24", "10.2.0.1")
	vmA2 := l.node("c", "bra", "10.1.0.11/24", "10.1.0.1")
	out := l.node("o", "bre", "203.0.113.1/24", "")
	// vmB also owns 192.168.50.1, reachable only through an extra route.
	netnstest.Sh(t, "ip", "-n", vmB, "addr", "add", "192.168.50.1/32", "dev", "lo")
	for _, ns := range []string{vmA, vmB, out} {
		netnstest.Listen(t, ns, 7000)
	}
	netnstest.Listen(t, vmB, 22)

	m, err := New(nil, Options{HostNetNS: "/run/netns/" + l.host, NamespacePrefix: l.prefix + "-qr-"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	r := Router{
		ID: "r1",
		Interfaces: []Interface{
			{PortID: "aaaaaaaa-1111", MACAddress: "fa:16:3e:00:10:01", IPs: []string{"10.1.0.1/24"}, Bridge: "bra"},
			{PortID: "bbbbbbbb-2222", MACAddress: "fa:16:3e:00:10:02", IPs: []string{"10.2.0.1/24"}, Bridge: "brb"},
		},
		Routes: []Route{{Destination: "192.168.50.0/24", NextHop: "10.2.0.10"}},
	}
	d := Desired{Routers: []Router{r}}
	if err := m.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	ns := l.prefix + "-qr-r1"
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if !netnstest.Reach(vmA, "10.2.0.10", 7000) {
		t.Fatal("router does not join the two subnets")
	}
	if !netnstest.Reach(vmA, "192.168.50.1", 7000) {
		t.Fatal("extra route not in effect")
	}
	if netnstest.Reach(vmA, "203.0.113.1", 7000) {
		t.Fatal("outside reachable without a gateway")
	}

	// Gateway with SNAT, a floating IP for vmA, a port forwarding to vmB.
	r.Gateway = &Gateway{Interface: Interface{PortID: "eeeeeeee-3333", MACAddress: "fa:16:3e:00:10:03", IPs: []string{"203.0.113.10/24"}, Bridge: "bre"},
		NextHops: []string{"203.0.113.1"}}
	r.EnableSNAT = true
	r.FloatingIPs = []FloatingIP{{FloatingIP: "203.0.113.20", FixedIP: "10.1.0.10"}}
	r.PortForwardings = []PortForwarding{{FloatingIP: "203.0.113.30", Protocol: "tcp", ExternalPort: 2222, InternalIP: "10.2.0.10", InternalPort: 22}}
	d.Routers[0] = r
	if err := m.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(vmB, "203.0.113.1", 7000) {
		t.Fatal("SNAT: vmB cannot reach the outside")
	}
	if !netnstest.Reach(out, "203.0.113.20", 7000) {
		t.Fatal("floating IP: the outside cannot reach vmA")
	}
	if !netnstest.Reach(vmA2, "203.0.113.20", 7000) {
		t.Fatal("hairpin: a VM on vmA's subnet cannot reach vmA's floating IP")
	}
	if !netnstest.Reach(out, "203.0.113.30", 2222) {
		t.Fatal("port forwarding 203.0.113.30:2222 → 10.2.0.10:22 does not work")
	}
	if netnstest.Reach(out, "203.0.113.30", 7000) {
		t.Fatal("port forwarding opened more than its port")
	}
	// A new floating IP is announced by gratuitous ARP: with arp_accept the
	// outside learns it without sending anything.
	netnstest.Sh(t, "ip", "netns", "exec", out, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_accept")
	r.FloatingIPs = append(r.FloatingIPs, FloatingIP{FloatingIP: "203.0.113.21", FixedIP: "10.1.0.11"})
	d.Routers[0] = r
	if err := m.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := netnstest.Sh(t, "ip", "-n", out, "neigh", "show", "203.0.113.21"); !strings.Contains(got, "fa:16:3e:00:10:03") {
		t.Fatalf("no gratuitous ARP for 203.0.113.21 seen outside: %q", got)
	}
	// Idempotent: a second Apply, and a new Manager (restarted agent).
	if err := m.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	m2, err := New(nil, Options{HostNetNS: "/run/netns/" + l.host, NamespacePrefix: l.prefix + "-qr-"})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := m2.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(out, "203.0.113.20", 7000) {
		t.Fatal("floating IP lost after resync")
	}

	if ct := netnstest.Sh(t, "ip", "netns", "exec", ns, "cat", "/proc/net/nf_conntrack"); !strings.Contains(ct, "203.0.113.20") {
		t.Fatalf("no tracked connection through the floating IP:\n%s", ct)
	}
	// SNAT off: vmB (no floating IP) cannot get out; vmA still can via its FIP.
	r.EnableSNAT = false
	r.FloatingIPs = nil
	r.PortForwardings = nil
	r.Routes = nil
	d.Routers[0] = r
	if err := m2.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if netnstest.Reach(vmB, "203.0.113.1", 7000) {
		t.Fatal("vmB reaches the outside with SNAT disabled")
	}
	if ct := netnstest.Sh(t, "ip", "netns", "exec", ns, "cat", "/proc/net/nf_conntrack"); strings.Contains(ct, "203.0.113.20") {
		t.Fatalf("connections of a removed floating IP still tracked:\n%s", ct)
	}
	if netnstest.Reach(out, "203.0.113.20", 7000) {
		t.Fatal("removed floating IP still reachable")
	}
	if got := netnstest.Sh(t, "ip", "-n", ns, "route"); strings.Contains(got, "192.168.50.0") {
		t.Fatalf("removed extra route still there:\n%s", got)
	}
	if got := netnstest.Sh(t, "ip", "-n", ns, "addr", "show", "dev", "qg-eeeeeeee-33"); strings.Contains(got, "203.0.113.20") {
		t.Fatalf("floating address still on the gateway:\n%s", got)
	}
	// Interface removed: its devices go, on both sides.
	r.Interfaces = r.Interfaces[:1]
	d.Routers[0] = r
	if err := m2.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "-n", l.host, "link", "show", "tapbbbbbbbb-2").Run(); err == nil {
		t.Fatal("host end of a removed interface still exists")
	}
	// Router gone: its namespace is removed.
	if err := m2.Apply(ctx, Desired{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + ns); err == nil {
		t.Fatal("namespace of a removed router still exists")
	}
}
