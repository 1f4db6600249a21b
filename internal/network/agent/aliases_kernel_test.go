package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// TestKernelAgentAliases: one agent wires the ports of every host name
// whose VMs run on its machine (the in-process agent of a kumo serve that
// simulates compute1 and compute2), reports each port's status as the
// host it is bound to, and does not tunnel to its own aliases.
func TestKernelAgentAliases(t *testing.T) {
	netnstest.Require(t, "busybox")
	tag := netnstest.Tag()
	host := newNS(t, "kl"+tag+"-h")
	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := newFakeServer(t, b)
	// Had compute2 a tunnel address of its own, it still is this machine.
	srv.mu.Lock()
	srv.tunnels["compute2"] = "10.98.0.9"
	srv.mu.Unlock()
	netID := "a11a5000-" + tag + "-4000-8000-000000000001"
	p1, p2 := "lport1-"+tag, "lport2-"+tag
	port := func(id, h, mac, ip string) rpc.Port {
		return rpc.Port{ID: id, NetworkID: netID, MAC: mac, Host: h, DeviceOwner: "compute:nova", DeviceID: "vm-" + id,
			AdminStateUp: true, Status: "DOWN", Device: linux.TapName(id), FixedIPs: []rpc.FixedIP{{SubnetID: "s-" + tag, IPAddress: ip}}}
	}
	srv.set(&rpc.NetworkState{ID: netID, AdminStateUp: true, MTU: 1450, NetworkType: "vxlan", SegmentationID: 4343,
		Subnets: []rpc.Subnet{{ID: "s-" + tag, IPVersion: 4, CIDR: "10.70.0.0/24"}},
		Ports:   []rpc.Port{port(p1, "compute1", "fa:16:3e:00:70:01", "10.70.0.11"), port(p2, "compute2", "fa:16:3e:00:70:02", "10.70.0.12")}})
	h := host.h
	a, _ := startAgent(t, b, Config{Host: "compute1", Aliases: []string{"compute2"}, HostNetns: &h, NamespacePrefix: "kl" + tag + "-"})
	vm1 := vmNS(t, host, "kl"+tag+"-v1", linux.TapName(p1), "fa:16:3e:00:70:01")
	vm2 := vmNS(t, host, "kl"+tag+"-v2", linux.TapName(p2), "fa:16:3e:00:70:02")
	netnstest.Sh(t, "ip", "-n", vm1.name, "addr", "add", "10.70.0.11/24", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", vm2.name, "addr", "add", "10.70.0.12/24", "dev", "eth0")
	for p, want := range map[string]string{p1: "compute1", p2: "compute2"} {
		eventually(t, 10*time.Second, "port "+p+" ACTIVE", func() error {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if s, from := srv.status[p], srv.from[p]; s != rpc.StatusActive || from != want {
				return fmt.Errorf("status %q reported by %q, want ACTIVE by %s", s, from, want)
			}
			return nil
		})
	}
	netnstest.Sh(t, "ip", "netns", "exec", vm1.name, "busybox", "ping", "-c", "1", "-W", "2", "10.70.0.12")
	// compute2 is this machine: no tunnel peer for it.
	a.mu.Lock()
	spec := networkSpec(a.desired[netID], a.hosts())
	a.mu.Unlock()
	if len(spec.Peers) != 0 {
		t.Fatalf("peers %+v, want none (both hosts are local)", spec.Peers)
	}
}
