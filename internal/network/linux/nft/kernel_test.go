package nft

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
)

// Kernel tests build a "host" namespace with a bridge and VM namespaces
// attached by veth pairs (host end = the tap), all thrown away afterwards.
// No traffic leaves these namespaces.

type lab struct {
	t      *testing.T
	prefix string
	host   string
}

type vm struct {
	ns, tap, mac, ip string
}

func newLab(t *testing.T) *lab {
	netnstest.Require(t, "busybox")
	l := &lab{t: t, prefix: "ks" + netnstest.Tag()}
	l.host = l.prefix + "-h"
	netnstest.Netns(t, l.host)
	netnstest.Sh(t, "ip", "-n", l.host, "link", "add", "br0", "type", "bridge")
	netnstest.Sh(t, "ip", "-n", l.host, "link", "set", "br0", "up")
	return l
}

// vm adds a VM namespace with eth0 (mac, ip/24) whose peer tap is in br0.
func (l *lab) vm(name, mac, ip string) vm {
	v := vm{ns: l.prefix + "-" + name, tap: "tap" + name, mac: mac, ip: ip}
	netnstest.Netns(l.t, v.ns)
	netnstest.Veth(l.t, l.host, v.tap, v.ns, "br0")
	netnstest.Sh(l.t, "ip", "-n", v.ns, "link", "set", "eth0", "address", mac)
	netnstest.Sh(l.t, "ip", "-n", v.ns, "addr", "add", ip+"/24", "dev", "eth0")
	netnstest.Sh(l.t, "ip", "-n", v.ns, "link", "set", "eth0", "up")
	return v
}

func (l *lab) firewall() *Firewall {
	f, err := os.Open("/run/netns/" + l.host)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { f.Close() })
	return NewFirewall(nil, int(f.Fd()))
}

func port(v vm, id string, groups ...string) Port {
	return Port{ID: id, Device: v.tap, MACAddress: v.mac, FixedIPs: []string{v.ip}, PortSecurityEnabled: true, SecurityGroups: groups}
}

var egressAll = []SGRule{{ID: "e4", Direction: "egress", EtherType: "IPv4"}, {ID: "e6", Direction: "egress", EtherType: "IPv6"}}

func TestKernelRuleOpensAndClosesPort(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:00:0a", "10.9.0.1")
	b := l.vm("b", "fa:16:3e:00:00:0b", "10.9.0.2")
	netnstest.Listen(t, b.ns, 8080)
	netnstest.Listen(t, b.ns, 8081)
	fw := l.firewall()
	ctx := context.Background()
	web := Group{ID: "web", Stateful: true, Rules: append([]SGRule{
		{ID: "r1", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(8080), PortRangeMax: intp(8080)},
	}, egressAll...)}
	d := Desired{
		Ports:   []Port{port(a, "pa", "default"), port(b, "pb", "web")},
		Groups:  []Group{{ID: "default", Stateful: true, Rules: egressAll}, web},
		Bridges: []string{"br0"},
	}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, b.ip, 8080) {
		t.Fatal("8080 allowed by rule r1 but unreachable")
	}
	// The flow was tracked in br0's zone.
	ct := netnstest.Sh(t, "ip", "netns", "exec", l.host, "cat", "/proc/net/nf_conntrack")
	if !strings.Contains(ct, "dport=8080") || !regexp.MustCompile(`dport=8080 .*zone=1\b`).MatchString(ct) {
		t.Fatalf("flow not tracked in zone 1:\n%s", ct)
	}
	if netnstest.Reach(a.ns, b.ip, 8081) {
		t.Fatal("8081 reachable without a rule")
	}
	// Open 8081 with a rule; only the group's ingress chain changes.
	web.Rules = append(web.Rules, SGRule{ID: "r2", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(8081), PortRangeMax: intp(8081)})
	d.Groups[1] = web
	st, err := fw.Apply(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if st.ChainsWritten != 1 || st.ElemsAdded+st.ElemsDeleted != 0 {
		t.Fatalf("rule add rewrote %+v, want one chain", st)
	}
	if !netnstest.Reach(a.ns, b.ip, 8081) {
		t.Fatal("8081 unreachable after rule r2 was added")
	}
	// Remove it again: closed within a second (Apply returns once the
	// kernel has committed the batch; the next connection attempt fails).
	web.Rules = web.Rules[:len(web.Rules)-1]
	d.Groups[1] = web
	start := time.Now()
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("applying the removal took %v", el)
	}
	if netnstest.Reach(a.ns, b.ip, 8081) {
		t.Fatal("8081 still reachable after rule r2 was removed")
	}
	// Repeating Apply changes nothing.
	st, err = fw.Apply(ctx, d)
	if err != nil || st.Changed() {
		t.Fatalf("repeat Apply: %+v, %v", st, err)
	}
	// A restarted agent (new Firewall) reads the state back and changes nothing.
	st, err = l.firewall().Apply(ctx, d)
	if err != nil || st.Changed() || st.TablesReloaded != 2 {
		t.Fatalf("resync after restart: %+v, %v", st, err)
	}
	// Egress default drop: a has no egress rule any more.
	d.Groups[0].Rules = nil
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if netnstest.Reach(a.ns, b.ip, 8080) {
		t.Fatal("a reached b without an egress rule")
	}
	// Port security off for a: no filtering for it at all.
	d.Ports[0].PortSecurityEnabled = false
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, b.ip, 8080) {
		t.Fatal("a with port security disabled cannot reach b:8080")
	}
	if err := fw.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, b.ip, 8081) {
		t.Fatal("8081 unreachable after the tables were removed")
	}
}

func TestKernelRemoteGroupMembership(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:01:0a", "10.9.1.1")
	b := l.vm("b", "fa:16:3e:00:01:0b", "10.9.1.2")
	netnstest.Listen(t, b.ns, 22)
	fw := l.firewall()
	ctx := context.Background()
	clients := Group{ID: "clients", Stateful: true, Rules: egressAll}
	servers := Group{ID: "servers", Stateful: true, Rules: append([]SGRule{
		{ID: "ssh", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(22), PortRangeMax: intp(22), RemoteGroupID: "clients"},
	}, egressAll...)}
	d := Desired{Ports: []Port{port(a, "pa", "clients"), port(b, "pb", "servers")}, Groups: []Group{clients, servers}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if netnstest.Reach(a.ns, b.ip, 22) {
		t.Fatal("reachable while a is not a member of clients")
	}
	d.Groups[0].Members = []string{a.ip, "192.0.2.0/24"}
	st, err := fw.Apply(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if st.ChainsWritten != 0 || st.ElemsAdded != 2 {
		t.Fatalf("membership change: %+v, want 2 elements and no chain", st)
	}
	if !netnstest.Reach(a.ns, b.ip, 22) {
		t.Fatal("member of clients cannot reach ssh")
	}
	if st, err := l.firewall().Apply(ctx, d); err != nil || st.Changed() {
		t.Fatalf("restart resync with interval sets: %+v, %v", st, err)
	}
	d.Groups[0].Members = []string{"192.0.2.0/24"}
	st, err = fw.Apply(ctx, d)
	if err != nil || st.ElemsDeleted != 1 || st.ChainsWritten != 0 {
		t.Fatalf("member removal: %+v, %v", st, err)
	}
	if netnstest.Reach(a.ns, b.ip, 22) {
		t.Fatal("reachable after a left clients")
	}
}

func TestKernelAntiSpoofing(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:02:0a", "10.9.2.1")
	b := l.vm("b", "fa:16:3e:00:02:0b", "10.9.2.2")
	netnstest.Listen(t, b.ns, 80)
	fw := l.firewall()
	ctx := context.Background()
	open := Group{ID: "open", Stateful: true, Rules: append([]SGRule{{ID: "in", Direction: "ingress", EtherType: "IPv4"}}, egressAll...)}
	d := Desired{Ports: []Port{port(a, "pa", "open"), port(b, "pb", "open")}, Groups: []Group{open}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, b.ip, 80) {
		t.Log(netnstest.Sh(t, "ip", "netns", "exec", l.host, "nft", "list", "ruleset"))
		t.Fatal("a cannot reach b with an allow-all group")
	}
	// a takes another address: its packets (and its ARP) are dropped.
	netnstest.Sh(t, "ip", "-n", a.ns, "addr", "flush", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", a.ns, "addr", "add", "10.9.2.99/24", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", b.ns, "neigh", "flush", "dev", "eth0")
	if netnstest.Reach(a.ns, b.ip, 80) {
		t.Fatal("spoofed source address got through")
	}
	// An allowed address pair makes the new address legal.
	d.Ports[0].AllowedAddressPairs = []AddressPair{{IPAddress: "10.9.2.96/28"}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	// The dropped attempt above may have left failed neighbour entries:
	// start clean and allow a retry (a loaded machine delays ARP).
	netnstest.Sh(t, "ip", "-n", a.ns, "neigh", "flush", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", b.ns, "neigh", "flush", "dev", "eth0")
	if !netnstest.Reach(a.ns, b.ip, 80) && !netnstest.Reach(a.ns, b.ip, 80) {
		t.Fatal("address from an allowed address pair blocked")
	}
	// A changed MAC is dropped.
	netnstest.Sh(t, "ip", "-n", a.ns, "link", "set", "eth0", "address", "fa:16:3e:00:02:99")
	netnstest.Sh(t, "ip", "-n", b.ns, "neigh", "flush", "dev", "eth0")
	if netnstest.Reach(a.ns, b.ip, 80) {
		t.Fatal("spoofed MAC got through")
	}
}

func TestKernelStatelessGroup(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:03:0a", "10.9.3.1")
	b := l.vm("b", "fa:16:3e:00:03:0b", "10.9.3.2")
	netnstest.Listen(t, b.ns, 80)
	fw := l.firewall()
	ctx := context.Background()
	d := Desired{
		Ports: []Port{port(a, "pa", "default"), port(b, "pb", "sl")},
		Groups: []Group{{ID: "default", Stateful: true, Rules: egressAll},
			{ID: "sl", Stateful: false, Rules: []SGRule{{ID: "in", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(80), PortRangeMax: intp(80)}}}},
	}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if netnstest.Reach(a.ns, b.ip, 80) {
		t.Fatal("stateless group without an egress rule let replies out")
	}
	d.Groups[1].Rules = append(d.Groups[1].Rules, SGRule{ID: "out", Direction: "egress", EtherType: "IPv4", Protocol: "tcp"})
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, b.ip, 80) {
		t.Fatal("stateless group with both directions open blocks the flow")
	}
}

func TestKernelIPv6(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:04:0a", "10.9.4.1")
	b := l.vm("b", "fa:16:3e:00:04:0b", "10.9.4.2")
	for _, v := range []struct {
		vm   vm
		addr string
	}{{a, "2001:db8:4::a"}, {b, "2001:db8:4::b"}} {
		netnstest.Sh(t, "ip", "-n", v.vm.ns, "addr", "add", v.addr+"/64", "dev", "eth0", "nodad")
	}
	netnstest.Listen(t, b.ns, 8080)
	netnstest.Listen(t, b.ns, 8081)
	fw := l.firewall()
	ctx := context.Background()
	pa, pb := port(a, "pa", "default"), port(b, "pb", "web")
	pa.FixedIPs = append(pa.FixedIPs, "2001:db8:4::a")
	pb.FixedIPs = append(pb.FixedIPs, "2001:db8:4::b")
	d := Desired{
		Ports: []Port{pa, pb},
		Groups: []Group{{ID: "default", Stateful: true, Rules: egressAll},
			{ID: "web", Stateful: true, Rules: append([]SGRule{
				{ID: "v6", Direction: "ingress", EtherType: "IPv6", Protocol: "tcp", PortRangeMin: intp(8080), PortRangeMax: intp(8080), RemoteIPPrefix: "2001:db8:4::/64"},
			}, egressAll...)}},
	}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	// Neighbour discovery must work through the filter for any of this.
	if !netnstest.Reach(a.ns, "2001:db8:4::b", 8080) {
		t.Fatal("IPv6 8080 allowed but unreachable")
	}
	if netnstest.Reach(a.ns, "2001:db8:4::b", 8081) {
		t.Fatal("IPv6 8081 reachable without a rule")
	}
	if netnstest.Reach(a.ns, b.ip, 8080) {
		t.Fatal("IPv4 8080 reachable with an IPv6-only rule")
	}
	// A source address a does not own is dropped, until it is an allowed
	// address pair.
	netnstest.Sh(t, "ip", "-n", a.ns, "addr", "del", "2001:db8:4::a/64", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", a.ns, "addr", "add", "2001:db8:4::99/64", "dev", "eth0", "nodad")
	if netnstest.Reach(a.ns, "2001:db8:4::b", 8080) {
		t.Fatal("spoofed IPv6 source got through")
	}
	d.Ports[0].AllowedAddressPairs = []AddressPair{{IPAddress: "2001:db8:4::99"}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !netnstest.Reach(a.ns, "2001:db8:4::b", 8080) {
		t.Fatal("IPv6 allowed address pair blocked")
	}
}

// udpIn opens a UDP socket bound to laddr inside namespace ns (the socket
// stays in that namespace whatever thread uses it later).
func udpIn(t *testing.T, ns, laddr string) *net.UDPConn {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(h); err != nil {
			ch <- res{nil, err}
			return
		}
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			_ = c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
			})
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", laddr)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		ch <- res{pc.(*net.UDPConn), nil}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// delivered sends one datagram from src to dst and reports whether it
// arrived within half a second.
func delivered(t *testing.T, src, dst *net.UDPConn, to string) bool {
	t.Helper()
	if _, err := src.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(to))); err != nil {
		t.Fatal(err)
	}
	_ = dst.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 16)
	n, _, err := dst.ReadFrom(buf)
	return err == nil && string(buf[:n]) == "ping"
}

func TestKernelDHCPTraffic(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:05:0a", "10.9.5.1")
	b := l.vm("b", "fa:16:3e:00:05:0b", "10.9.5.2")
	fw := l.firewall()
	// a has no rules at all; b lets DHCP requests in (it plays a server
	// someone runs in a VM).
	d := Desired{
		Ports: []Port{port(a, "pa", "none"), port(b, "pb", "srv")},
		Groups: []Group{{ID: "none", Stateful: true},
			{ID: "srv", Stateful: true, Rules: append([]SGRule{{ID: "dhcp", Direction: "ingress", EtherType: "IPv4", Protocol: "udp", PortRangeMin: intp(67), PortRangeMax: intp(67)}}, egressAll...)}},
	}
	if _, err := fw.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	client := udpIn(t, a.ns, "0.0.0.0:68")
	server := udpIn(t, b.ns, "0.0.0.0:67")
	// The client's request (68 → 67) leaves a although a allows no egress.
	if !delivered(t, client, server, "10.9.5.2:67") {
		t.Fatal("DHCP client request from a VM was dropped")
	}
	if !delivered(t, client, server, "10.9.5.255:67") {
		t.Fatal("broadcast DHCP client request was dropped")
	}
	// The VM's "server" reply (67 → 68) is dropped although a accepts DHCP replies.
	if delivered(t, server, client, "10.9.5.1:68") {
		t.Fatal("DHCP server reply from a VM got through")
	}
	// Other UDP from b to a: dropped by a's ingress (no rules).
	other := udpIn(t, b.ns, "0.0.0.0:5000")
	if delivered(t, other, client, "10.9.5.1:68") {
		t.Fatal("UDP 5000 → 68 reached a without a rule")
	}
}

// tcpIn dials addr from inside namespace ns.
func tcpIn(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(h); err != nil {
			ch <- res{nil, err}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// echoes writes msg on c and reports whether it comes back within 1.5 s.
func echoes(c net.Conn, msg string) bool {
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return err == nil && string(buf[:n]) == msg
}

func TestKernelEstablishedFlowCutByRuleRemoval(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:06:0a", "10.9.6.1")
	b := l.vm("b", "fa:16:3e:00:06:0b", "10.9.6.2")
	cmd := exec.Command("ip", "netns", "exec", b.ns, "busybox", "nc", "-ll", "-p", "8083", "-e", "/bin/cat")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(100 * time.Millisecond)
	fw := l.firewall()
	ctx := context.Background()
	echo := SGRule{ID: "echo", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(8083), PortRangeMax: intp(8083)}
	other := SGRule{ID: "other", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(9999), PortRangeMax: intp(9999)}
	d := Desired{
		Ports:  []Port{port(a, "pa", "default"), port(b, "pb", "srv")},
		Groups: []Group{{ID: "default", Stateful: true, Rules: egressAll}, {ID: "srv", Stateful: true, Rules: append([]SGRule{echo, other}, egressAll...)}},
	}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	c := tcpIn(t, a.ns, "10.9.6.2:8083")
	if !echoes(c, "one") {
		t.Fatal("no echo on an allowed connection")
	}
	// Removing an unrelated rule re-checks b's connections; this one is
	// still allowed and goes on.
	d.Groups[1].Rules = append([]SGRule{echo}, egressAll...)
	st, err := fw.Apply(ctx, d)
	if err != nil || st.PortsFlushed != 1 {
		t.Fatalf("unrelated rule removal: %+v, %v", st, err)
	}
	if !echoes(c, "two") {
		t.Fatal("an allowed connection broke when another rule was removed")
	}
	// Removing the rule that allowed it stops the established connection.
	d.Groups[1].Rules = egressAll
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if echoes(c, "three") {
		t.Fatal("established connection survived the removal of the rule allowing it")
	}
}
