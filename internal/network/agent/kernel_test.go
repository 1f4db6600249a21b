package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// fakeServer plays the networking control plane on the bus: it holds the
// desired state, answers syncs, takes port statuses and creates DHCP
// ports, republishing the network after every change, as the real
// service does. It also plays compute for metadata.
type fakeServer struct {
	t  testing.TB
	b  *bus.Bus
	mu sync.Mutex

	nets    map[string]*rpc.NetworkState
	gen     int64
	tunnels map[string]string
	status  map[string]string
	errs    map[string]string // last error reported per port
	from    map[string]string // host that reported each port
	syncs   int
	md      map[string]*rpc.InstanceMetadata
}

func newFakeServer(t testing.TB, b *bus.Bus) *fakeServer {
	f := &fakeServer{t: t, b: b, nets: map[string]*rpc.NetworkState{}, tunnels: map[string]string{}, status: map[string]string{}, errs: map[string]string{}, from: map[string]string{},
		md: map[string]*rpc.InstanceMetadata{}}
	sub, err := b.Subscribe(rpc.SubjectServer, rpc.QueueServer, map[string]bus.Version{
		rpc.MsgSync: rpc.SyncVersion, rpc.MsgAgentReport: rpc.ReportVersion, rpc.MsgPortStatus: rpc.PortStatusVersion,
		rpc.MsgDHCPPort: rpc.DHCPPortVersion}, f.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	msub, err := b.Subscribe(rpc.SubjectMetadata, rpc.QueueMetadata, map[string]bus.Version{rpc.MsgMetadata: rpc.MetadataVersion},
		func(_ context.Context, m *bus.Message) (any, error) {
			var req rpc.MetadataRequest
			if err := m.Decode(&req); err != nil {
				return nil, err
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			md, ok := f.md[req.InstanceID]
			if !ok {
				return nil, bus.NewError(bus.CodeNotFound, "no instance %s", req.InstanceID)
			}
			return md, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = msub.Unsubscribe() })
	return f
}

func (f *fakeServer) handle(_ context.Context, m *bus.Message) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m.Type {
	case rpc.MsgSync:
		f.syncs++
		var rep rpc.SyncReply
		for _, n := range f.nets {
			rep.Networks = append(rep.Networks, *f.render(n))
		}
		return rep, nil
	case rpc.MsgAgentReport:
		var r rpc.AgentReport
		_ = m.Decode(&r)
		if r.AgentType == TypeL2 && f.tunnels[r.Host] != r.TunnelIP {
			f.tunnels[r.Host] = r.TunnelIP
			for _, n := range f.nets {
				f.publishLocked(n)
			}
		}
	case rpc.MsgPortStatus:
		var req rpc.PortStatusRequest
		_ = m.Decode(&req)
		for _, p := range req.Ports {
			f.status[p.ID] = p.Status
			f.errs[p.ID] = p.Error
			f.from[p.ID] = req.Host
		}
		for _, n := range f.nets {
			f.publishLocked(n)
		}
		return struct{}{}, nil
	case rpc.MsgDHCPPort:
		var req rpc.DHCPPortRequest
		_ = m.Decode(&req)
		n := f.nets[req.NetworkID]
		for _, p := range n.Ports {
			if p.DeviceOwner == rpc.DeviceOwnerDHCP && p.Host == req.Host {
				return p, nil
			}
		}
		p := rpc.Port{ID: "dhcp-" + req.Host + "-" + n.ID[:4], NetworkID: n.ID, MAC: "fa:16:3e:00:01:02", DeviceOwner: rpc.DeviceOwnerDHCP,
			DeviceID: "dhcp-" + req.Host, Host: req.Host, AdminStateUp: true, Status: rpc.StatusActive,
			FixedIPs: []rpc.FixedIP{{SubnetID: n.Subnets[0].ID, IPAddress: "10.30.0.2"}}}
		p.Device = linux.TapName(p.ID)
		n.Ports = append(n.Ports, p)
		f.publishLocked(n)
		return p, nil
	}
	return nil, nil
}

// render fills hosts and statuses as the real service does.
func (f *fakeServer) render(n *rpc.NetworkState) *rpc.NetworkState {
	cp := *n
	cp.Ports = nil
	hosts := map[string]bool{}
	for _, p := range n.Ports {
		if s, ok := f.status[p.ID]; ok {
			p.Status = s
		}
		cp.Ports = append(cp.Ports, p)
		if p.Host != "" {
			hosts[p.Host] = true
		}
	}
	cp.Hosts = nil
	for h := range hosts {
		cp.Hosts = append(cp.Hosts, rpc.Host{Host: h, TunnelIP: f.tunnels[h]})
	}
	f.gen++
	cp.Generation = f.gen
	return &cp
}

func (f *fakeServer) publishLocked(n *rpc.NetworkState) {
	if err := f.b.Publish(context.Background(), rpc.SubjectAgents, rpc.MsgNetworkState, rpc.NetworkStateVersion, f.render(n)); err != nil && !errors.Is(err, bus.ErrClosed) {
		f.t.Errorf("publish: %v", err)
	}
}

func (f *fakeServer) set(n *rpc.NetworkState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nets[n.ID] = n
	f.publishLocked(n)
}

func (f *fakeServer) portStatus(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status[id]
}

type testNS struct {
	name string
	h    netns.NsHandle
}

func newNS(t testing.TB, name string) testNS {
	t.Helper()
	h, err := linux.EnsureNamedNetns(name)
	if err != nil {
		t.Skipf("kernel test: cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { h.Close(); _ = linux.DeleteNamedNetns(name) })
	netnstest.Sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return testNS{name, h}
}

func eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func startAgent(t testing.TB, b *bus.Bus, cfg Config) (*Agent, context.CancelFunc) {
	t.Helper()
	cfg.ReportInterval = 200 * time.Millisecond
	log := testLog(t)
	if _, bench := t.(*testing.B); bench {
		log = quietLog(t)
	}
	a, err := New(b, cfg, log.With("agent", cfg.Host))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stop := func() { cancel(); <-done; a.Close() }
	t.Cleanup(stop)
	var once sync.Once
	return a, func() { once.Do(stop) }
}

// vmNS is a "VM": a namespace whose eth0 is the peer of its tap.
func vmNS(t testing.TB, host testNS, name, tap, mac string) testNS {
	v := newNS(t, name)
	netnstest.Sh(t, "ip", "-n", host.name, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", v.name)
	netnstest.Sh(t, "ip", "-n", v.name, "link", "set", "eth0", "address", mac)
	netnstest.Sh(t, "ip", "-n", v.name, "link", "set", "eth0", "up")
	return v
}

const udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
  ip addr add "$ip/$mask" dev "$interface"
  for r in $staticroutes; do :; done
  set -- $staticroutes
  while [ $# -ge 2 ]; do ip route add "$1" via "$2" dev "$interface" 2>/dev/null; shift 2; done
  echo "$ip" > "$OUT"
  ;;
esac
`

func udhcpc(t testing.TB, v testNS) string {
	t.Helper()
	dir := t.TempDir()
	script, out := filepath.Join(dir, "s"), filepath.Join(dir, "out")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", v.name, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "1",
		"-s", script, "-O", "staticroutes")
	cmd.Env = append(os.Environ(), "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("udhcpc in %s: %v\n%s", v.name, err, b)
	}
	b, _ := os.ReadFile(out)
	return strings.TrimSpace(string(b))
}

// TestKernelAgentsTwoHosts runs two agents on two namespaced hosts joined
// by a veth underlay: VXLAN between them, DHCP and metadata on host A
// reached from a VM on host B, port statuses reported, leftovers cleaned,
// and an agent restart that does not drop a single ping.
func TestKernelAgentsTwoHosts(t *testing.T) {
	netnstest.Require(t, "busybox")
	tag := netnstest.Tag()
	hostA, hostB := newNS(t, "ka"+tag+"-ha"), newNS(t, "ka"+tag+"-hb")
	netnstest.Sh(t, "ip", "-n", hostA.name, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", hostB.name)
	netnstest.Sh(t, "ip", "-n", hostA.name, "addr", "add", "10.98.0.1/24", "dev", "ul0")
	netnstest.Sh(t, "ip", "-n", hostB.name, "addr", "add", "10.98.0.2/24", "dev", "ul0")
	netnstest.Sh(t, "ip", "-n", hostA.name, "link", "set", "ul0", "up")
	netnstest.Sh(t, "ip", "-n", hostB.name, "link", "set", "ul0", "up")
	// Leftovers of a crash on host A.
	netnstest.Sh(t, "ip", "-n", hostA.name, "link", "add", "brqdeadbeef-00", "type", "bridge")
	prefixA := "ka" + tag + "a-"
	stale := prefixA + linux.DHCPNSPrefix + "gone-network"
	if _, err := linux.EnsureNamedNetns(stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = linux.DeleteNamedNetns(stale) })

	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := newFakeServer(t, b)
	netID := "c0ffee00-" + tag + "-4000-8000-000000000001"
	pa, pb := "porta-"+tag, "portb-"+tag
	srv.set(&rpc.NetworkState{ID: netID, AdminStateUp: true, MTU: 1450, NetworkType: "vxlan", SegmentationID: 4242, DNSDomain: "kumo.test.",
		Subnets: []rpc.Subnet{{ID: "sub-" + tag, IPVersion: 4, CIDR: "10.30.0.0/24", GatewayIP: "10.30.0.1", EnableDHCP: true}},
		Ports: []rpc.Port{
			{ID: pa, NetworkID: netID, MAC: "fa:16:3e:00:00:0a", Host: "hostA", DeviceOwner: "compute:nova", DeviceID: "vm-a",
				AdminStateUp: true, Status: "DOWN", Device: linux.TapName(pa), FixedIPs: []rpc.FixedIP{{SubnetID: "sub-" + tag, IPAddress: "10.30.0.10"}}},
			{ID: pb, NetworkID: netID, MAC: "fa:16:3e:00:00:0b", Host: "hostB", DeviceOwner: "compute:nova", DeviceID: "vm-b",
				AdminStateUp: true, Status: "DOWN", Device: linux.TapName(pb), FixedIPs: []rpc.FixedIP{{SubnetID: "sub-" + tag, IPAddress: "10.30.0.11"}}},
		}})
	srv.md["vm-b"] = &rpc.InstanceMetadata{UUID: "vm-b", Name: "vm-b", Hostname: "vm-b", ProjectID: "p",
		PublicKeys: map[string]string{"k": "ssh-ed25519 AAAAkey"}}

	hA, hB := hostA.h, hostB.h
	cfgA := Config{Host: "hostA", LocalIP: netip.MustParseAddr("10.98.0.1"), DHCP: true, Metadata: true, HostNetns: &hA, NamespacePrefix: prefixA}
	_, stopA := startAgent(t, b, cfgA)
	startAgent(t, b, Config{Host: "hostB", LocalIP: netip.MustParseAddr("10.98.0.2"), HostNetns: &hB, NamespacePrefix: "ka" + tag + "b-"})

	// The VMs start after the agents: their taps appear later.
	vmA := vmNS(t, hostA, "ka"+tag+"-va", linux.TapName(pa), "fa:16:3e:00:00:0a")
	vmB := vmNS(t, hostB, "ka"+tag+"-vb", linux.TapName(pb), "fa:16:3e:00:00:0b")
	for _, p := range []string{pa, pb} {
		eventually(t, 10*time.Second, "port "+p+" ACTIVE", func() error {
			if s := srv.portStatus(p); s != rpc.StatusActive {
				return fmt.Errorf("status %q", s)
			}
			return nil
		})
	}
	eventually(t, 10*time.Second, "leftovers removed", func() error {
		if out := netnstest.Sh(t, "ip", "-n", hostA.name, "link", "show"); strings.Contains(out, "brqdeadbeef-00") {
			return fmt.Errorf("stale bridge still there")
		}
		if _, err := os.Stat(filepath.Join(linux.NetnsDir, stale)); err == nil {
			return fmt.Errorf("stale namespace still there")
		}
		return nil
	})
	// DHCP across the VXLAN tunnel: B's VM asks A's DHCP.
	if ip := udhcpc(t, vmB); ip != "10.30.0.11" {
		t.Fatalf("vm B got %q by DHCP", ip)
	}
	if ip := udhcpc(t, vmA); ip != "10.30.0.10" {
		t.Fatalf("vm A got %q by DHCP", ip)
	}
	netnstest.Sh(t, "ip", "netns", "exec", vmA.name, "busybox", "ping", "-c", "1", "-W", "2", "10.30.0.11")
	// Metadata from B's VM through the route DHCP handed out.
	var body string
	eventually(t, 10*time.Second, "metadata from vm B", func() error {
		out, err := exec.Command("ip", "netns", "exec", vmB.name, "curl", "-sf", "-m", "2", "http://169.254.169.254/openstack/latest/meta_data.json").CombinedOutput()
		body = string(out)
		return err
	})
	if !strings.Contains(body, `"uuid":"vm-b"`) || !strings.Contains(body, "ssh-ed25519 AAAAkey") {
		t.Fatalf("meta_data.json: %s", body)
	}
	if out, err := exec.Command("ip", "netns", "exec", vmA.name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
		"http://169.254.169.254/openstack/latest/meta_data.json").CombinedOutput(); err != nil || string(out) != "404" {
		t.Fatalf("vm A has no instance record: want 404, got %s %v", out, err)
	}

	// Restart agent A while B's VM pings A's: not one packet lost.
	ping := exec.Command("ip", "netns", "exec", vmB.name, "busybox", "ping", "-c", "40", "-i", "0.05", "-W", "1", "10.30.0.10")
	pingOut := &strings.Builder{}
	ping.Stdout, ping.Stderr = pingOut, pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	stopA()
	syncs := srv.syncs
	_, _ = startAgent(t, b, cfgA)
	eventually(t, 10*time.Second, "restarted agent synced", func() error {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if srv.syncs == syncs {
			return fmt.Errorf("no sync yet")
		}
		return nil
	})
	if err := ping.Wait(); err != nil {
		t.Fatalf("ping during restart: %v\n%s", err, pingOut)
	}
	if !strings.Contains(pingOut.String(), " 0% packet loss") {
		t.Fatalf("packets lost during agent restart:\n%s", pingOut)
	}
	// DHCP still answers after the restart.
	if ip := udhcpc(t, vmB); ip != "10.30.0.11" {
		t.Fatalf("after restart vm B got %q", ip)
	}

	// The port leaves host B: its tap leaves the bridge; the network is
	// then gone from B (no ports there).
	srv.mu.Lock()
	n := srv.nets[netID]
	n.Ports = n.Ports[:1]
	n.Ports = append(n.Ports, srv.nets[netID].Ports[1:]...)
	var kept []rpc.Port
	for _, p := range n.Ports {
		if p.ID != pb {
			kept = append(kept, p)
		}
	}
	n.Ports = kept
	srv.publishLocked(n)
	srv.mu.Unlock()
	eventually(t, 10*time.Second, "network removed from host B", func() error {
		if out := netnstest.Sh(t, "ip", "-n", hostB.name, "link", "show"); strings.Contains(out, linux.BridgeName(netID)) || strings.Contains(out, "vxlan-4242") {
			return fmt.Errorf("still wired:\n%s", out)
		}
		return nil
	})
}
