package linux

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
)

// Kernel tests run in throwaway network namespaces: every "host" and
// "VM" is a namespace, joined by veth pairs. They need root; CI runs
// them as root.

type testNS struct {
	name string
	h    netns.NsHandle
}

func newNS(t testing.TB, name string) testNS {
	t.Helper()
	h, err := EnsureNamedNetns(name)
	if err != nil {
		t.Skipf("kernel test: cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		_ = DeleteNamedNetns(name)
	})
	netnstest.Sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return testNS{name: name, h: h}
}

func newL2(t testing.TB, ns testNS) *L2 {
	t.Helper()
	l, err := NewL2(ns.h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// vm makes a namespace with eth0 (given MAC and address) whose peer is
// the "tap" device in the host namespace.
func vm(t testing.TB, host testNS, name, tap, mac, addr string) testNS {
	t.Helper()
	v := newNS(t, name)
	netnstest.Sh(t, "ip", "-n", host.name, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", v.name)
	netnstest.Sh(t, "ip", "-n", v.name, "link", "set", "eth0", "address", mac)
	if addr != "" {
		netnstest.Sh(t, "ip", "-n", v.name, "addr", "add", addr, "dev", "eth0")
	}
	netnstest.Sh(t, "ip", "-n", v.name, "link", "set", "eth0", "up")
	return v
}

func TestKernelVXLANBetweenTwoHosts(t *testing.T) {
	netnstest.Require(t)
	tag := netnstest.Tag()
	hostA, hostB := newNS(t, "kt"+tag+"-ha"), newNS(t, "kt"+tag+"-hb")
	// The "physical" underlay between the two hosts.
	netnstest.Sh(t, "ip", "-n", hostA.name, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", hostB.name)
	netnstest.Sh(t, "ip", "-n", hostA.name, "addr", "add", "10.99.0.1/24", "dev", "ul0")
	netnstest.Sh(t, "ip", "-n", hostB.name, "addr", "add", "10.99.0.2/24", "dev", "ul0")
	netnstest.Sh(t, "ip", "-n", hostA.name, "link", "set", "ul0", "up")
	netnstest.Sh(t, "ip", "-n", hostB.name, "link", "set", "ul0", "up")

	ipA, ipB := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	netID := "aaaabbbb-cccc-dddd-eeee-ffff00001111"
	macA, macB := "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b"
	seg := Segment{Type: "vxlan", SegmentationID: 1001}
	planA, err := Render(Config{LocalIP: ipA}, NetworkSpec{ID: netID, MTU: 1450, Segment: seg, Peers: []Peer{{IP: ipB, MACs: []string{macB}}}})
	if err != nil {
		t.Fatal(err)
	}
	planB, err := Render(Config{LocalIP: ipB}, NetworkSpec{ID: netID, MTU: 1450, Segment: seg, Peers: []Peer{{IP: ipA, MACs: []string{macA}}}})
	if err != nil {
		t.Fatal(err)
	}
	l2A, l2B := newL2(t, hostA), newL2(t, hostB)
	for _, c := range []struct {
		l    *L2
		plan NetworkPlan
	}{{l2A, planA}, {l2B, planB}} {
		if err := c.l.EnsureNetwork(c.plan); err != nil {
			t.Fatal(err)
		}
	}
	tapA, tapB := TapName("port-a-0001"), TapName("port-b-0001")
	vmA := vm(t, hostA, "kt"+tag+"-va", tapA, macA, "10.10.0.5/24")
	vmB := vm(t, hostB, "kt"+tag+"-vb", tapB, macB, "10.10.0.6/24")
	if err := l2A.Plug(tapA, planA.Bridge.Name, 1450); err != nil {
		t.Fatal(err)
	}
	if err := l2B.Plug(tapB, planB.Bridge.Name, 1450); err != nil {
		t.Fatal(err)
	}
	netnstest.Sh(t, "ip", "netns", "exec", vmA.name, "busybox", "ping", "-c", "2", "-W", "2", "10.10.0.6")
	netnstest.Sh(t, "ip", "netns", "exec", vmB.name, "busybox", "ping", "-c", "1", "-W", "2", "10.10.0.5")

	// Re-applying changes nothing: the same links stay (no flap).
	br1, _ := l2A.h.LinkByName(planA.Bridge.Name)
	vx1, _ := l2A.h.LinkByName(planA.Uplink.Name)
	if err := l2A.EnsureNetwork(planA); err != nil {
		t.Fatal(err)
	}
	if err := l2A.Plug(tapA, planA.Bridge.Name, 1450); err != nil {
		t.Fatal(err)
	}
	br2, _ := l2A.h.LinkByName(planA.Bridge.Name)
	vx2, _ := l2A.h.LinkByName(planA.Uplink.Name)
	if br1.Attrs().Index != br2.Attrs().Index || vx1.Attrs().Index != vx2.Attrs().Index {
		t.Fatal("re-applying the plan recreated links")
	}
	fdb := netnstest.Sh(t, "bridge", "-n", hostA.name, "fdb", "show", "dev", planA.Uplink.Name)
	for _, want := range []string{"00:00:00:00:00:00 dst 10.99.0.2", macB + " dst 10.99.0.2"} {
		if !strings.Contains(fdb, want) {
			t.Errorf("fdb of %s lacks %q:\n%s", planA.Uplink.Name, want, fdb)
		}
	}
	if mtu := netnstest.Sh(t, "ip", "-n", hostA.name, "-o", "link", "show", tapA); !strings.Contains(mtu, "mtu 1450") || !strings.Contains(mtu, "master "+planA.Bridge.Name) {
		t.Errorf("tap not in bridge with the network MTU: %s", mtu)
	}

	// A peer that left: its entries go, the others stay.
	planA.FDB = nil
	if err := l2A.EnsureNetwork(planA); err != nil {
		t.Fatal(err)
	}
	if fdb := netnstest.Sh(t, "bridge", "-n", hostA.name, "fdb", "show", "dev", planA.Uplink.Name); strings.Contains(fdb, "dst 10.99.0.2") {
		t.Errorf("stale fdb entries stayed:\n%s", fdb)
	}

	// Teardown removes bridge and VXLAN device; the tap stays (the VM's).
	if err := l2A.DeleteNetwork(netID, planA.Uplink); err != nil {
		t.Fatal(err)
	}
	if l2A.LinkExists(planA.Bridge.Name) || l2A.LinkExists(planA.Uplink.Name) || !l2A.LinkExists(tapA) {
		t.Fatal("teardown left links or removed the tap")
	}
}

func TestKernelPlugMissingTap(t *testing.T) {
	netnstest.Require(t)
	host := newNS(t, "kt"+netnstest.Tag()+"-h")
	l := newL2(t, host)
	plan, _ := Render(Config{}, NetworkSpec{ID: "local-net-1", MTU: 1500, Segment: Segment{Type: "local"}})
	if err := l.EnsureNetwork(plan); err != nil {
		t.Fatal(err)
	}
	if err := l.Plug("tapnothere", plan.Bridge.Name, 1500); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("err = %v, want ErrNoDevice", err)
	}
}

func TestKernelVLAN(t *testing.T) {
	netnstest.Require(t)
	host := newNS(t, "kt"+netnstest.Tag()+"-h")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
	l := newL2(t, host)
	plan, err := Render(Config{InterfaceMappings: map[string]string{"physnet1": "eth1"}},
		NetworkSpec{ID: "vlan-net-1", MTU: 1500, Segment: Segment{Type: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 100}})
	if err != nil {
		t.Fatal(err)
	}
	err = l.EnsureNetwork(plan)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("kernel test: this kernel has no 802.1Q VLAN support (8021q module missing); VLAN is covered by TestVLANAddMessage: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	out := netnstest.Sh(t, "ip", "-n", host.name, "-d", "-o", "link", "show", "eth1.100")
	if !strings.Contains(out, "vlan protocol 802.1Q id 100") || !strings.Contains(out, "master "+plan.Bridge.Name) {
		t.Fatalf("vlan link: %s", out)
	}
	if err := l.EnsureNetwork(plan); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
}

func TestKernelFlat(t *testing.T) {
	netnstest.Require(t)
	host := newNS(t, "kt"+netnstest.Tag()+"-h")
	netnstest.Sh(t, "ip", "-n", host.name, "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
	l := newL2(t, host)
	plan, err := Render(Config{InterfaceMappings: map[string]string{"ext": "eth2"}},
		NetworkSpec{ID: "flat-net-1", MTU: 1500, Segment: Segment{Type: "flat", PhysicalNetwork: "ext"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureNetwork(plan); err != nil {
		t.Fatal(err)
	}
	if out := netnstest.Sh(t, "ip", "-n", host.name, "-o", "link", "show", "eth2"); !strings.Contains(out, "master "+plan.Bridge.Name) {
		t.Fatalf("flat interface not in the bridge: %s", out)
	}
	// A missing mapped interface is a clear error.
	plan2, _ := Render(Config{InterfaceMappings: map[string]string{"ext": "eth9"}},
		NetworkSpec{ID: "flat-net-2", MTU: 1500, Segment: Segment{Type: "flat", PhysicalNetwork: "ext"}})
	if err := l.EnsureNetwork(plan2); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("err = %v, want ErrNoDevice", err)
	}
	// Deleting the network releases the interface, it does not delete it.
	if err := l.DeleteNetwork("flat-net-1", plan.Uplink); err != nil {
		t.Fatal(err)
	}
	if !l.LinkExists("eth2") {
		t.Fatal("physical interface deleted")
	}
}
