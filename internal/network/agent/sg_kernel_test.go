package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/linux/nft"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// TestKernelAgentSecurityGroups drives the nftables firewall through the
// agent: a rule change published by the control plane opens and closes a
// port within a second, and a VM that forges its address is cut off.
func TestKernelAgentSecurityGroups(t *testing.T) {
	netnstest.Require(t, "busybox")
	tag := netnstest.Tag()
	host := newNS(t, "ks"+tag+"-h")
	f, err := os.Open("/run/netns/" + host.name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fw := nft.NewFirewall(nil, int(f.Fd()))

	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := newFakeServer(t, b)
	netID := "5ec00000-" + tag + "-4000-8000-000000000001"
	pa, pb := "sgporta-"+tag, "sgportb-"+tag
	tcp22 := 22
	rules := func(open bool) []rpc.Rule {
		r := []rpc.Rule{{ID: "e4", Direction: "egress", Ethertype: "IPv4"}}
		if open {
			r = append(r, rpc.Rule{ID: "ssh", Direction: "ingress", Ethertype: "IPv4", Protocol: "tcp", PortRangeMin: &tcp22, PortRangeMax: &tcp22})
		}
		return r
	}
	state := func(open bool) *rpc.NetworkState {
		return &rpc.NetworkState{ID: netID, AdminStateUp: true, MTU: 1500, NetworkType: "local",
			Subnets: []rpc.Subnet{{ID: "sub-" + tag, IPVersion: 4, CIDR: "10.40.0.0/24"}},
			Ports: []rpc.Port{
				{ID: pa, NetworkID: netID, MAC: "fa:16:3e:00:40:05", Host: "hostS", DeviceOwner: "compute:nova", AdminStateUp: true,
					PortSecurity: true, SecurityGroups: []string{"sg"}, Device: linux.TapName(pa),
					FixedIPs: []rpc.FixedIP{{SubnetID: "sub-" + tag, IPAddress: "10.40.0.5"}}},
				{ID: pb, NetworkID: netID, MAC: "fa:16:3e:00:40:06", Host: "hostS", DeviceOwner: "compute:nova", AdminStateUp: true,
					PortSecurity: true, SecurityGroups: []string{"sg"}, Device: linux.TapName(pb),
					FixedIPs: []rpc.FixedIP{{SubnetID: "sub-" + tag, IPAddress: "10.40.0.6"}}},
			},
			SecurityGroups: []rpc.SecurityGroup{{ID: "sg", Stateful: true, Rules: rules(open), MemberIPs: []string{"10.40.0.5", "10.40.0.6"}}},
		}
	}
	srv.set(state(true))
	h := host.h
	startAgent(t, b, Config{Host: "hostS", HostNetns: &h, NamespacePrefix: "ks" + tag + "-", Firewall: &NFT{FW: fw}})
	vmA := vmNS(t, host, "ks"+tag+"-va", linux.TapName(pa), "fa:16:3e:00:40:05")
	vmB := vmNS(t, host, "ks"+tag+"-vb", linux.TapName(pb), "fa:16:3e:00:40:06")
	netnstest.Sh(t, "ip", "-n", vmA.name, "addr", "add", "10.40.0.5/24", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", vmB.name, "addr", "add", "10.40.0.6/24", "dev", "eth0")
	for _, p := range []string{pa, pb} {
		eventually(t, 10*time.Second, "port "+p+" ACTIVE", func() error {
			if s := srv.portStatus(p); s != rpc.StatusActive {
				return fmt.Errorf("status %q", s)
			}
			return nil
		})
	}
	srvCmd := exec.Command("ip", "netns", "exec", vmB.name, "busybox", "nc", "-ll", "-p", "22", "-e", "/bin/echo", "hi")
	if err := srvCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srvCmd.Process.Kill(); _ = srvCmd.Wait() }()
	reach := func(from testNS, ip string) bool {
		out, _ := exec.Command("ip", "netns", "exec", from.name, "busybox", "nc", "-w", "1", ip, "22").CombinedOutput()
		return strings.Contains(string(out), "hi")
	}
	eventually(t, 5*time.Second, "ssh open", func() error {
		if !reach(vmA, "10.40.0.6") {
			return fmt.Errorf("A cannot reach B:22")
		}
		return nil
	})
	// Close: the rule goes away; within a second nothing gets through.
	start := time.Now()
	srv.set(state(false))
	eventually(t, time.Second, "ssh closed", func() error {
		if reach(vmA, "10.40.0.6") {
			return fmt.Errorf("A still reaches B:22")
		}
		return nil
	})
	t.Logf("rule removal checked closed after %v (including the 1 s connect timeout of the check)", time.Since(start).Round(time.Millisecond))
	srv.set(state(true))
	eventually(t, 2*time.Second, "ssh reopened", func() error {
		if !reach(vmA, "10.40.0.6") {
			return fmt.Errorf("A cannot reach B:22")
		}
		return nil
	})
	// Anti-spoofing: A sends from an address that is not its own.
	netnstest.Sh(t, "ip", "-n", vmA.name, "addr", "flush", "dev", "eth0")
	netnstest.Sh(t, "ip", "-n", vmA.name, "addr", "add", "10.40.0.99/24", "dev", "eth0")
	if reach(vmA, "10.40.0.6") {
		t.Fatal("a forged source address got through")
	}
}
