package l3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The kernel test builds a "host" namespace with three bridges (two tenant
// subnets and an external network), "VM" namespaces on the tenant bridges,
// an "outside" namespace on the external bridge with no route to the
// tenant subnets, and a router joining them. No traffic leaves these
// namespaces.

func requireKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root (network namespaces, nftables)")
	}
	for _, bin := range []string{"ip", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test: needs %s in PATH", bin)
		}
	}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type lab struct {
	t      *testing.T
	prefix string
	host   string
}

func newLab(t *testing.T) *lab {
	requireKernel(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	l := &lab{t: t, prefix: "kl" + hex.EncodeToString(b)}
	l.host = l.prefix + "-h"
	l.netns(l.host)
	for _, br := range []string{"bra", "brb", "bre"} {
		sh(t, "ip", "-n", l.host, "link", "add", br, "type", "bridge")
		sh(t, "ip", "-n", l.host, "link", "set", br, "up")
	}
	return l
}

func (l *lab) netns(name string) {
	sh(l.t, "ip", "netns", "add", name)
	l.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(l.t, "ip", "-n", name, "link", "set", "lo", "up")
}

// node adds a namespace on a bridge with addr (CIDR) and an optional
// default gateway.
func (l *lab) node(name, bridge, addr, gw string) string {
	ns := l.prefix + "-" + name
	l.netns(ns)
	sh(l.t, "ip", "-n", l.host, "link", "add", "v"+name, "type", "veth", "peer", "name", "eth0", "netns", ns)
	sh(l.t, "ip", "-n", l.host, "link", "set", "v"+name, "master", bridge, "up")
	sh(l.t, "ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
	sh(l.t, "ip", "-n", ns, "link", "set", "eth0", "up")
	if gw != "" {
		sh(l.t, "ip", "-n", ns, "route", "add", "default", "via", gw)
	}
	return ns
}

func (l *lab) listen(ns string, port int) {
	cmd := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-ll", "-p", fmt.Sprint(port), "-e", "/bin/echo", "hi")
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(100 * time.Millisecond)
}

func (l *lab) reach(from, ip string, port int) bool {
	out, _ := exec.Command("ip", "netns", "exec", from, "busybox", "nc", "-w", "2", ip, fmt.Sprint(port)).CombinedOutput()
	return strings.Contains(string(out), "hi")
}

func TestKernelRouter(t *testing.T) {
	l := newLab(t)
	vmA := l.node("a", "bra", "10.1.0.10/24", "10.1.0.1")
	vmB := l.node("b", "brb", "10.2.0.10/24", "10.2.0.1")
	out := l.node("o", "bre", "203.0.113.1/24", "")
	// vmB also owns 192.168.50.1, reachable only through an extra route.
	sh(t, "ip", "-n", vmB, "addr", "add", "192.168.50.1/32", "dev", "lo")
	for _, ns := range []string{vmA, vmB, out} {
		l.listen(ns, 7000)
	}
	l.listen(vmB, 22)

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
	if !l.reach(vmA, "10.2.0.10", 7000) {
		t.Fatal("router does not join the two subnets")
	}
	if !l.reach(vmA, "192.168.50.1", 7000) {
		t.Fatal("extra route not in effect")
	}
	if l.reach(vmA, "203.0.113.1", 7000) {
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
	if !l.reach(vmB, "203.0.113.1", 7000) {
		t.Fatal("SNAT: vmB cannot reach the outside")
	}
	if !l.reach(out, "203.0.113.20", 7000) {
		t.Fatal("floating IP: the outside cannot reach vmA")
	}
	if !l.reach(out, "203.0.113.30", 2222) {
		t.Fatal("port forwarding 203.0.113.30:2222 → 10.2.0.10:22 does not work")
	}
	if l.reach(out, "203.0.113.30", 7000) {
		t.Fatal("port forwarding opened more than its port")
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
	if !l.reach(out, "203.0.113.20", 7000) {
		t.Fatal("floating IP lost after resync")
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
	if l.reach(vmB, "203.0.113.1", 7000) {
		t.Fatal("vmB reaches the outside with SNAT disabled")
	}
	if l.reach(out, "203.0.113.20", 7000) {
		t.Fatal("removed floating IP still reachable")
	}
	if got := sh(t, "ip", "-n", ns, "route"); strings.Contains(got, "192.168.50.0") {
		t.Fatalf("removed extra route still there:\n%s", got)
	}
	if got := sh(t, "ip", "-n", ns, "addr", "show", "dev", "qg-eeeeeeee-33"); strings.Contains(got, "203.0.113.20") {
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
