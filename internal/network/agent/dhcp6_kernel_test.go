package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/linux/nft"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// TestKernelAgentDHCP6 drives DHCPv6 through the agent with port
// security on and no security group rule: a VM on a dhcpv6-stateful
// subnet obtains its fixed address, one on a dhcpv6-stateless subnet gets
// its DNS servers by information-request, and the server stops once only
// a slaac subnet is left.
func TestKernelAgentDHCP6(t *testing.T) {
	netnstest.Require(t)
	tag := netnstest.Tag()
	host := newNS(t, "k6"+tag+"-h")
	f, err := os.Open("/run/netns/" + host.name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	srv := newFakeServer(t, b)
	netID := "d6c00000-" + tag + "-4000-8000-000000000001"
	pa, pb, pd := "d6porta-"+tag, "d6portb-"+tag, "d6dhcp-"+tag
	stateful := rpc.Subnet{ID: "st-" + tag, IPVersion: 6, CIDR: "2001:db8:61::/64", EnableDHCP: true, IPv6AddrMode: "dhcpv6-stateful",
		IPv6RAMode: "dhcpv6-stateful", DNSNameservers: []string{"2001:db8:61::53"}}
	stateless := rpc.Subnet{ID: "sl-" + tag, IPVersion: 6, CIDR: "2001:db8:62::/64", EnableDHCP: true, IPv6AddrMode: "dhcpv6-stateless",
		IPv6RAMode: "dhcpv6-stateless", DNSNameservers: []string{"2001:db8:62::53", "2001:db8:62::54"}}
	slaac := rpc.Subnet{ID: "sa-" + tag, IPVersion: 6, CIDR: "2001:db8:63::/64", EnableDHCP: true, IPv6AddrMode: "slaac", IPv6RAMode: "slaac"}
	state := &rpc.NetworkState{ID: netID, AdminStateUp: true, MTU: 1500, NetworkType: "local", DNSDomain: "kumo.test.",
		Subnets: []rpc.Subnet{stateful, stateless, slaac},
		Ports: []rpc.Port{
			{ID: pa, NetworkID: netID, MAC: "fa:16:3e:00:61:0a", Host: "hostD", DeviceOwner: "compute:nova", AdminStateUp: true,
				PortSecurity: true, Device: linux.TapName(pa), FixedIPs: []rpc.FixedIP{{SubnetID: stateful.ID, IPAddress: "2001:db8:61::a"}}},
			{ID: pb, NetworkID: netID, MAC: "fa:16:3e:00:62:0b", Host: "hostD", DeviceOwner: "compute:nova", AdminStateUp: true,
				PortSecurity: true, Device: linux.TapName(pb), FixedIPs: []rpc.FixedIP{{SubnetID: stateless.ID, IPAddress: "2001:db8:62::f816:3eff:fe00:620b"}}},
			{ID: pd, NetworkID: netID, MAC: "fa:16:3e:00:61:02", Host: "hostD", DeviceOwner: rpc.DeviceOwnerDHCP, DeviceID: "dhcp-hostD",
				AdminStateUp: true, Status: rpc.StatusActive, FixedIPs: []rpc.FixedIP{{SubnetID: stateful.ID, IPAddress: "2001:db8:61::2"}}},
		}}
	srv.set(state)
	h := host.h
	startAgent(t, b, Config{Host: "hostD", HostNetns: &h, NamespacePrefix: "k6" + tag + "-", DHCP: true,
		Firewall: &NFT{FW: nft.NewFirewall(nil, int(f.Fd()))}})
	vmA := vmNS(t, host, "k6"+tag+"-va", linux.TapName(pa), "fa:16:3e:00:61:0a")
	vmB := vmNS(t, host, "k6"+tag+"-vb", linux.TapName(pb), "fa:16:3e:00:62:0b")
	for _, p := range []string{pa, pb} {
		eventually(t, 10*time.Second, "port "+p+" ACTIVE", func() error {
			if s := srv.portStatus(p); s != rpc.StatusActive {
				return fmt.Errorf("status %q", s)
			}
			return nil
		})
	}
	dhcpNS := linux.DHCPNamespace("k6"+tag+"-", netID)
	listening := func() bool {
		out, _ := exec.Command("ip", "netns", "exec", dhcpNS, "ss", "-Huln6", "sport", "=", ":547").CombinedOutput()
		return strings.Contains(string(out), ":547")
	}
	eventually(t, 10*time.Second, "dhcpv6 listening", func() error {
		if !listening() {
			return fmt.Errorf("nothing on udp 547 in %s", dhcpNS)
		}
		return nil
	})
	netnstest.WaitLinkLocal(t, dhcpNS, linux.NSDevName(pd))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca := netnstest.DHCP6Client(t, vmA.name)
	reply, err := ca.RapidSolicit(ctx)
	if err != nil {
		t.Fatalf("vm A solicit: %v", err)
	}
	got := reply.Options.OneIANA()
	if got == nil || got.Options.OneAddress() == nil || got.Options.OneAddress().IPv6Addr.String() != "2001:db8:61::a" {
		t.Fatalf("vm A reply: %s", reply.Summary())
	}
	if dns := reply.Options.DNS(); len(dns) != 1 || dns[0].String() != "2001:db8:61::53" {
		t.Errorf("vm A DNS: %v", dns)
	}
	if l := reply.Options.DomainSearchList(); l == nil || !slices.Equal(l.Labels, []string{"kumo.test"}) {
		t.Errorf("vm A search list: %v", l)
	}

	cb := netnstest.DHCP6Client(t, vmB.name)
	info, err := dhcpv6.NewMessage(dhcpv6.WithRequestedOptions(dhcpv6.OptionDNSRecursiveNameServer))
	if err != nil {
		t.Fatal(err)
	}
	info.MessageType = dhcpv6.MessageTypeInformationRequest // no client id: known by its EUI-64 source
	reply, err = cb.SendAndRead(ctx, cb.RemoteAddr(), info, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		t.Fatalf("vm B information-request: %v", err)
	}
	if dns := fmt.Sprint(reply.Options.DNS()); dns != "[2001:db8:62::53 2001:db8:62::54]" {
		t.Errorf("vm B DNS: %s", dns)
	}

	// Only the slaac subnet left: DHCPv6 stops (the namespace stays for DHCPv4).
	srv.mu.Lock()
	n := srv.nets[netID]
	n.Subnets = []rpc.Subnet{slaac, {ID: "v4-" + tag, IPVersion: 4, CIDR: "10.61.0.0/24", EnableDHCP: true}}
	srv.publishLocked(n)
	srv.mu.Unlock()
	eventually(t, 10*time.Second, "dhcpv6 stopped", func() error {
		if listening() {
			return fmt.Errorf("still on udp 547 in %s", dhcpNS)
		}
		return nil
	})
}
