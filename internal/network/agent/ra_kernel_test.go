package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/network/linux/l3"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// TestKernelRouterSLAAC: a router with an interface on a slaac subnet
// advertises it from its namespace; a VM on the network (accept_ra)
// configures the EUI-64 address of its MAC, which is the fixed IP the
// networking service gives its port on such a subnet. Removing the
// subnet's ra_mode stops the advertiser.
func TestKernelRouterSLAAC(t *testing.T) {
	netnstest.Require(t, "busybox")
	tag := netnstest.Tag()
	host := newNS(t, "kr"+tag+"-h")
	prefix := "kr" + tag + "-"
	m, err := l3.New(testLog(t), l3.Options{HostNetNS: "/run/netns/" + host.name, NamespacePrefix: prefix + "qrouter-"})
	if err != nil {
		t.Fatal(err)
	}
	l := &L3{M: m, nsPref: prefix + "qrouter-", log: testLog(t), ras: map[string]*raRun{}}
	defer func() {
		_ = l.M.Apply(context.Background(), l3.Desired{}) // removes the router namespace
		l.Close()
	}()
	net6 := &rpc.NetworkState{ID: "net-" + tag, AdminStateUp: true, MTU: 1450, Subnets: []rpc.Subnet{
		{ID: "s6", IPVersion: 6, CIDR: "2001:db8:7::/64", GatewayIP: "2001:db8:7::1", IPv6RAMode: "slaac", IPv6AddrMode: "slaac"}}}
	rp := rpc.Port{ID: "rp" + tag + "-0000000", NetworkID: net6.ID, MAC: "fa:16:3e:00:07:01", Host: "h",
		FixedIPs: []rpc.FixedIP{{SubnetID: "s6", IPAddress: "2001:db8:7::1"}}}
	r := &rpc.RouterState{ID: "r" + tag, AdminStateUp: true, Interfaces: []rpc.Port{rp}}
	nets := map[string]*rpc.NetworkState{net6.ID: net6}
	if err := l.Apply(context.Background(), "h", []*rpc.RouterState{r}, nets); err != nil {
		t.Fatal(err)
	}
	// The L2 agent's part: the router's host end and the VM's tap in the
	// network's bridge.
	_, tap := l3.DeviceNames(rp.ID, false)
	netnstest.Sh(t, "ip", "-n", host.name, "link", "add", "br6", "type", "bridge")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "set", "br6", "up")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "set", tap, "master", "br6", "up")
	vm := vmNS(t, host, "kr"+tag+"-vm", "tapvm"+tag, "fa:16:3e:00:07:0a")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "set", "tapvm"+tag, "master", "br6", "up")
	// The port's fixed IP on the slaac subnet (EUI-64 of its MAC).
	want := "2001:db8:7:0:f816:3eff:fe00:70a/64"
	eventually(t, 30*time.Second, "SLAAC address on the VM", func() error {
		out := netnstest.Sh(t, "ip", "-n", vm.name, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		if !strings.Contains(out, want) || strings.Contains(out, "tentative") {
			return errString("addresses: " + out)
		}
		return nil
	})
	// ra_mode cleared: no advertiser any more.
	net6.Subnets[0].IPv6RAMode = ""
	if err := l.Apply(context.Background(), "h", []*rpc.RouterState{r}, nets); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	n := len(l.ras)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d advertisers still running", n)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
