package nft

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

	"github.com/google/nftables"
)

// Kernel tests build a "host" namespace with a bridge and VM namespaces
// attached by veth pairs (host end = the tap), all thrown away afterwards.
// No traffic leaves these namespaces.

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

type vm struct {
	ns, tap, mac, ip string
}

func newLab(t *testing.T) *lab {
	requireKernel(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	l := &lab{t: t, prefix: "ks" + hex.EncodeToString(b)}
	l.host = l.prefix + "-h"
	l.netns(l.host)
	sh(t, "ip", "-n", l.host, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", l.host, "link", "set", "br0", "up")
	return l
}

func (l *lab) netns(name string) {
	sh(l.t, "ip", "netns", "add", name)
	l.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(l.t, "ip", "-n", name, "link", "set", "lo", "up")
}

// vm adds a VM namespace with eth0 (mac, ip/24) whose peer tap is in br0.
func (l *lab) vm(name, mac, ip string) vm {
	v := vm{ns: l.prefix + "-" + name, tap: "tap" + name, mac: mac, ip: ip}
	l.netns(v.ns)
	sh(l.t, "ip", "-n", l.host, "link", "add", v.tap, "type", "veth", "peer", "name", "eth0", "netns", v.ns)
	sh(l.t, "ip", "-n", l.host, "link", "set", v.tap, "master", "br0", "up")
	sh(l.t, "ip", "-n", v.ns, "link", "set", "eth0", "address", mac)
	sh(l.t, "ip", "-n", v.ns, "addr", "add", ip+"/24", "dev", "eth0")
	sh(l.t, "ip", "-n", v.ns, "link", "set", "eth0", "up")
	return v
}

// listen serves "hi" on a TCP port inside the VM until the test ends.
func (l *lab) listen(v vm, port int) {
	cmd := exec.Command("ip", "netns", "exec", v.ns, "busybox", "nc", "-ll", "-p", fmt.Sprint(port), "-e", "/bin/echo", "hi")
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(100 * time.Millisecond)
}

// reach reports whether from can open a TCP connection to ip:port (1 s).
func (l *lab) reach(from vm, ip string, port int) bool {
	out, _ := exec.Command("ip", "netns", "exec", from.ns, "busybox", "nc", "-w", "1", ip, fmt.Sprint(port)).CombinedOutput()
	return strings.Contains(string(out), "hi")
}

func (l *lab) firewall() *Firewall {
	f, err := os.Open("/run/netns/" + l.host)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { f.Close() })
	return NewFirewall(nil, func() (*nftables.Conn, error) {
		return nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	})
}

func port(v vm, id string, groups ...string) Port {
	return Port{ID: id, Device: v.tap, MACAddress: v.mac, FixedIPs: []string{v.ip}, PortSecurityEnabled: true, SecurityGroups: groups}
}

var egressAll = []SGRule{{ID: "e4", Direction: "egress", EtherType: "IPv4"}, {ID: "e6", Direction: "egress", EtherType: "IPv6"}}

func TestKernelRuleOpensAndClosesPort(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:00:0a", "10.9.0.1")
	b := l.vm("b", "fa:16:3e:00:00:0b", "10.9.0.2")
	l.listen(b, 8080)
	l.listen(b, 8081)
	fw := l.firewall()
	ctx := context.Background()
	web := Group{ID: "web", Stateful: true, Rules: append([]SGRule{
		{ID: "r1", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(8080), PortRangeMax: intp(8080)},
	}, egressAll...)}
	d := Desired{
		Ports:  []Port{port(a, "pa", "default"), port(b, "pb", "web")},
		Groups: []Group{{ID: "default", Stateful: true, Rules: egressAll}, web},
	}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !l.reach(a, b.ip, 8080) {
		t.Fatal("8080 allowed by rule r1 but unreachable")
	}
	if l.reach(a, b.ip, 8081) {
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
	if !l.reach(a, b.ip, 8081) {
		t.Fatal("8081 unreachable after rule r2 was added")
	}
	// Remove it again: closed within a second.
	web.Rules = web.Rules[:len(web.Rules)-1]
	d.Groups[1] = web
	start := time.Now()
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if l.reach(a, b.ip, 8081) {
		t.Fatal("8081 still reachable after rule r2 was removed")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("closing took %v", el)
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
	if l.reach(a, b.ip, 8080) {
		t.Fatal("a reached b without an egress rule")
	}
	// Port security off for a: no filtering for it at all.
	d.Ports[0].PortSecurityEnabled = false
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !l.reach(a, b.ip, 8080) {
		t.Fatal("a with port security disabled cannot reach b:8080")
	}
	if err := fw.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if !l.reach(a, b.ip, 8081) {
		t.Fatal("8081 unreachable after the tables were removed")
	}
}

func TestKernelRemoteGroupMembership(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:01:0a", "10.9.1.1")
	b := l.vm("b", "fa:16:3e:00:01:0b", "10.9.1.2")
	l.listen(b, 22)
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
	if l.reach(a, b.ip, 22) {
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
	if !l.reach(a, b.ip, 22) {
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
	if l.reach(a, b.ip, 22) {
		t.Fatal("reachable after a left clients")
	}
}

func TestKernelAntiSpoofing(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:02:0a", "10.9.2.1")
	b := l.vm("b", "fa:16:3e:00:02:0b", "10.9.2.2")
	l.listen(b, 80)
	fw := l.firewall()
	ctx := context.Background()
	open := Group{ID: "open", Stateful: true, Rules: append([]SGRule{{ID: "in", Direction: "ingress", EtherType: "IPv4"}}, egressAll...)}
	d := Desired{Ports: []Port{port(a, "pa", "open"), port(b, "pb", "open")}, Groups: []Group{open}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !l.reach(a, b.ip, 80) {
		t.Log(sh(t, "ip", "netns", "exec", l.host, "nft", "list", "ruleset"))
		t.Fatal("a cannot reach b with an allow-all group")
	}
	// a takes another address: its packets (and its ARP) are dropped.
	sh(t, "ip", "-n", a.ns, "addr", "flush", "dev", "eth0")
	sh(t, "ip", "-n", a.ns, "addr", "add", "10.9.2.99/24", "dev", "eth0")
	sh(t, "ip", "-n", b.ns, "neigh", "flush", "dev", "eth0")
	if l.reach(a, b.ip, 80) {
		t.Fatal("spoofed source address got through")
	}
	// An allowed address pair makes the new address legal.
	d.Ports[0].AllowedAddressPairs = []AddressPair{{IPAddress: "10.9.2.96/28"}}
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !l.reach(a, b.ip, 80) {
		t.Fatal("address from an allowed address pair blocked")
	}
	// A changed MAC is dropped.
	sh(t, "ip", "-n", a.ns, "link", "set", "eth0", "address", "fa:16:3e:00:02:99")
	sh(t, "ip", "-n", b.ns, "neigh", "flush", "dev", "eth0")
	if l.reach(a, b.ip, 80) {
		t.Fatal("spoofed MAC got through")
	}
}

func TestKernelStatelessGroup(t *testing.T) {
	l := newLab(t)
	a := l.vm("a", "fa:16:3e:00:03:0a", "10.9.3.1")
	b := l.vm("b", "fa:16:3e:00:03:0b", "10.9.3.2")
	l.listen(b, 80)
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
	if l.reach(a, b.ip, 80) {
		t.Fatal("stateless group without an egress rule let replies out")
	}
	d.Groups[1].Rules = append(d.Groups[1].Rules, SGRule{ID: "out", Direction: "egress", EtherType: "IPv4", Protocol: "tcp"})
	if _, err := fw.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !l.reach(a, b.ip, 80) {
		t.Fatal("stateless group with both directions open blocks the flow")
	}
}
