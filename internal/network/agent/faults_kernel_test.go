package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// lockedBuffer collects an agent's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKernelAgentFaults: networks the host cannot carry (a physical network
// without an interface mapping, a flat interface another network holds)
// put their ports in ERROR with the reason, in the report to the control
// plane and in the agent's log, while the ports of a good network keep
// their traffic (a ping between them loses nothing); when the bad
// network goes, its bridge goes too.
func TestKernelAgentFaults(t *testing.T) {
	netnstest.Require(t, "busybox")
	tag := netnstest.Tag()
	host := newNS(t, "kf"+tag+"-h")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "set", "eth1", "up")

	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := newFakeServer(t, b)
	port := func(id, netID, mac, ip string) rpc.Port {
		return rpc.Port{ID: id, NetworkID: netID, MAC: mac, Host: "hostF", DeviceOwner: "compute:nova", DeviceID: "vm-" + id,
			AdminStateUp: true, Status: "DOWN", Device: linux.TapName(id), FixedIPs: []rpc.FixedIP{{SubnetID: "s-" + netID, IPAddress: ip}}}
	}
	flat := func(id, physnet string, ports ...rpc.Port) *rpc.NetworkState {
		return &rpc.NetworkState{ID: id, AdminStateUp: true, MTU: 1500, NetworkType: "flat", PhysicalNetwork: physnet,
			Subnets: []rpc.Subnet{{ID: "s-" + id, IPVersion: 4, CIDR: "10.60.0.0/24"}}, Ports: ports}
	}
	// Networks are applied in id order: the good one first holds eth1.
	good, unmapped, clash := "a0000000-"+tag+"-good", "b0000000-"+tag+"-nomap", "c0000000-"+tag+"-clash"
	pa, pb := "fporta-"+tag, "fportb-"+tag
	pn, pc := "fportn-"+tag, "fportc-"+tag
	srv.set(flat(good, "physnet1", port(pa, good, "fa:16:3e:00:60:0a", "10.60.0.10"), port(pb, good, "fa:16:3e:00:60:0b", "10.60.0.11")))

	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := host.h
	a, err := New(b, Config{Host: "hostF", HostNetns: &h, NamespacePrefix: "kf" + tag + "-", ReportInterval: 200 * time.Millisecond,
		InterfaceMappings: map[string]string{"physnet1": "eth1"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})

	vmA := vmNS(t, host, "kf"+tag+"-va", linux.TapName(pa), "fa:16:3e:00:60:0a")
	vmB := vmNS(t, host, "kf"+tag+"-vb", linux.TapName(pb), "fa:16:3e:00:60:0b")
	netnstest.Sh(t, "ip", "-n", vmA.name, "addr", "add", "10.60.0.10/24", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", vmB.name, "addr", "add", "10.60.0.11/24", "dev", "eth0")
	status := func(p, want string) func() error {
		return func() error {
			if s := srv.portStatus(p); s != want {
				return fmt.Errorf("status %q, want %s", s, want)
			}
			return nil
		}
	}
	eventually(t, 10*time.Second, "good ports ACTIVE", func() error {
		if err := status(pa, rpc.StatusActive)(); err != nil {
			return err
		}
		return status(pb, rpc.StatusActive)()
	})

	// The faulty networks arrive while A pings B.
	ping := exec.Command("ip", "netns", "exec", vmA.name, "busybox", "ping", "-c", "60", "-i", "0.05", "-W", "1", "10.60.0.11")
	out := &strings.Builder{}
	ping.Stdout, ping.Stderr = out, out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	vmNS(t, host, "kf"+tag+"-vn", linux.TapName(pn), "fa:16:3e:00:60:0c")
	vmNS(t, host, "kf"+tag+"-vc", linux.TapName(pc), "fa:16:3e:00:60:0d")
	srv.set(flat(unmapped, "physnet9", port(pn, unmapped, "fa:16:3e:00:60:0c", "10.60.0.12")))
	srv.set(flat(clash, "physnet1", port(pc, clash, "fa:16:3e:00:60:0d", "10.60.0.13")))
	for _, c := range []struct{ port, reason string }{
		{pn, `no interface mapping for physical network "physnet9"`},
		{pc, "uplink already used by another network: eth1 carries network " + good},
	} {
		eventually(t, 10*time.Second, "port "+c.port+" ERROR", status(c.port, StatusError))
		srv.mu.Lock()
		reason := srv.errs[c.port]
		srv.mu.Unlock()
		if !strings.Contains(reason, c.reason) {
			t.Errorf("port %s: reported reason %q, want it to say %q", c.port, reason, c.reason)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, strings.ReplaceAll(c.reason, `"`, `\"`)) {
			t.Errorf("agent log does not say %q:\n%s", c.reason, l)
		}
	}
	if err := ping.Wait(); err != nil || !strings.Contains(out.String(), " 0% packet loss") {
		t.Fatalf("traffic of the good network cut while the others failed (%v):\n%s", err, out)
	}
	if s := srv.portStatus(pa); s != rpc.StatusActive {
		t.Fatalf("good port became %s", s)
	}
	for _, name := range []string{"brq" + unmapped[:11], "brq" + clash[:11]} {
		if out := netnstest.Sh(t, "ip", "-n", host.name, "-o", "link", "show", "master", "eth1"); strings.Contains(out, name) {
			t.Fatalf("eth1 moved to %s", name)
		}
	}
	// The clashing network goes: its ports and bridge leave the host, and
	// the good network still holds eth1.
	srv.mu.Lock()
	n := srv.nets[clash]
	n.Deleted = true
	srv.publishLocked(n)
	srv.mu.Unlock()
	eventually(t, 10*time.Second, "clashing network removed", func() error {
		if out := netnstest.Sh(t, "ip", "-n", host.name, "-o", "link", "show"); strings.Contains(out, linux.BridgeName(clash)) {
			return fmt.Errorf("bridge %s still there", linux.BridgeName(clash))
		}
		return nil
	})
	if out := netnstest.Sh(t, "ip", "-n", host.name, "-o", "link", "show", "eth1"); !strings.Contains(out, "master "+linux.BridgeName(good)) {
		t.Fatalf("eth1 left the good network's bridge: %s", out)
	}
	netnstest.Sh(t, "ip", "netns", "exec", vmA.name, "busybox", "ping", "-c", "1", "-W", "2", "10.60.0.11")
}
