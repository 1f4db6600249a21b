//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/agents"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/vishvananda/netns"
)

// The simulated data centre of TestDataPlaneTwoHosts:
//
//	netns A "host1": kumo serve (API, NATS, compute "compute", network agent with DHCP, metadata, L3)
//	  ul0 10.99.0.1 ══ veth "physical" link, VXLAN underlay and NATS ══ ul0 10.99.0.2   netns B "hostb"
//	  ext0 (physnet1, flat, bridged) ══ veth ══ eth0 203.0.113.1 netns O "outside"      kumo agent compute + network
//
// The outside has no route to the tenant networks: it can only answer a
// VM whose packets were translated to an address of 203.0.113.0/24.
const (
	dpUnderlayA = "10.99.0.1"
	dpUnderlayB = "10.99.0.2"
	dpOutside   = "203.0.113.1"
	dpAPIPort   = "5000"
	dpNATSPort  = "4222"
)

// dpProbe is the user data of a VM that pings targets forever and prints
// on its console each time a target's reachability changes.
func dpProbe(targets ...string) []byte {
	return []byte(`#!/bin/sh
while :; do
	for t in ` + strings.Join(targets, " ") + `; do
		if ping -c 1 -W 1 "$t" >/dev/null 2>&1; then s=up; else s=down; fi
		if [ "$s" != "$(cat /tmp/probe-$t 2>/dev/null)" ]; then
			echo "$s" >/tmp/probe-$t
			echo "kumo-guest: probe $t $s"
		fi
	done
	sleep 0.5
done
`)
}

// netnsTransport dials from inside a named network namespace: the socket
// is created on a thread switched into it.
func netnsTransport(name string) http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				runtime.UnlockOSThread()
				ch <- res{nil, err}
				return
			}
			defer orig.Close()
			h, err := netns.GetFromName(name)
			if err != nil {
				runtime.UnlockOSThread()
				ch <- res{nil, err}
				return
			}
			defer h.Close()
			if err := netns.Set(h); err != nil {
				runtime.UnlockOSThread()
				ch <- res{nil, err}
				return
			}
			c, err := d.DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread() // else the thread dies with the goroutine
			}
			ch <- res{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
	return tr
}

// dpRun runs a command, failing the test on error.
func dpRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dpNetns creates a named namespace, deleted when the test ends.
func dpNetns(t testing.TB, name string) {
	t.Helper()
	dpRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	dpRun(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// dpProcess runs a kumo agent in a namespace until the test ends.
func dpProcess(t testing.TB, ns, name string, env []string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, kumoBin}, args...)...)
	cmd.Env = append(envWithout("OS_", "KUMO_"), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exit: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop on SIGTERM", name)
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 48<<10 {
				b = b[len(b)-48<<10:]
			}
			t.Logf("%s log:\n%s", name, b)
		}
	})
}

// dpUntil polls f every 100 ms until it returns nil or d passes.
func dpUntil(t testing.TB, ctx context.Context, d time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d || ctx.Err() != nil {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDataPlaneTwoHosts boots real VMs on two simulated hosts and drives
// the network data plane through the public API: VMs on one tenant
// network reach each other across the VXLAN underlay; VMs on two networks
// do not until a router joins them; addresses come from DHCP and SSH keys
// from the metadata service; a VM reaches the outside through SNAT and the
// outside reaches a VM at its floating IP; a security group rule opens and
// closes a port.
func TestDataPlaneTwoHosts(t *testing.T) {
	guest := qemuGuest(t)
	if _, err := exec.LookPath("ip"); err != nil {
		requireOrSkip(t, "iproute2 (ip) is not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		requireOrSkip(t, "curl is not installed")
	}
	t.Parallel()
	tag := randomString("", 6)
	nsA, nsB, nsO := "kdp"+tag+"-a", "kdp"+tag+"-b", "kdp"+tag+"-o"
	prefixA, prefixB := "kdp"+tag+"a-", "kdp"+tag+"b-"
	for _, ns := range []string{nsA, nsB, nsO} {
		dpNetns(t, ns)
	}
	// Namespaces the agents made (inside ip netns exec's private mounts)
	// leave their empty mount points behind.
	t.Cleanup(func() {
		for _, p := range []string{prefixA, prefixB} {
			names, _ := filepath.Glob("/var/run/netns/" + p + "*")
			for _, n := range names {
				_ = syscall.Unmount(n, syscall.MNT_DETACH)
				_ = os.Remove(n)
			}
		}
	})
	dpRun(t, "ip", "-n", nsA, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", nsB)
	dpRun(t, "ip", "-n", nsA, "addr", "add", dpUnderlayA+"/24", "dev", "ul0")
	dpRun(t, "ip", "-n", nsB, "addr", "add", dpUnderlayB+"/24", "dev", "ul0")
	dpRun(t, "ip", "-n", nsA, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", nsO)
	dpRun(t, "ip", "-n", nsO, "addr", "add", dpOutside+"/24", "dev", "eth0")
	for _, l := range [][2]string{{nsA, "ul0"}, {nsB, "ul0"}, {nsA, "ext0"}, {nsO, "eth0"}} {
		dpRun(t, "ip", "-n", l[0], "link", "set", l[1], "up")
	}

	dataA, dataB := shortDataDir(t), shortDataDir(t)
	conf := fmt.Sprintf("network:\n  agent:\n    mode: \"on\"\n    interface_mappings: [\"physnet1:ext0\"]\n    namespace_prefix: %q\n", prefixA)
	if err := os.WriteFile(filepath.Join(dataA, "kumo.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	api := "http://" + dpUnderlayA + ":" + dpAPIPort
	natsURL := "nats://" + dpUnderlayA + ":" + dpNATSPort
	k := Start(t, Options{DataDir: dataA, Netns: nsA, Listen: dpUnderlayA + ":" + dpAPIPort, Transport: netnsTransport(nsA),
		Args: []string{"--compute-driver", "qemu", "--nats-listen", dpUnderlayA + ":" + dpNATSPort}})
	// Host B: a compute host and its network agent (L2 and security
	// groups only; DHCP, metadata and routers stay on host A). Its VXLAN
	// address is found from the route to the control plane.
	osEnv := []string{"OS_AUTH_URL=" + api + "/v3", "OS_USERNAME=admin", "OS_PASSWORD=" + k.Password, "OS_PROJECT_NAME=admin",
		"OS_DOMAIN_NAME=Default"}
	dpProcess(t, nsB, "compute-agent", osEnv, "agent", "compute", "--nats-url", natsURL, "--host", "hostb",
		"--compute-driver", "qemu", "--image-url", api+"/image", "--data-dir", dataB)
	dpProcess(t, nsB, "network-agent", nil, "agent", "network", "--nats-url", natsURL, "--host", "hostb",
		"--dhcp=false", "--metadata=false", "--l3=false", "--namespace-prefix", prefixB)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	var vms []string
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What the hosts and guests looked like, before they stop.
		for _, id := range vms {
			out, _ := servers.ShowConsoleOutput(context.Background(), nova, id, servers.ShowConsoleOutputOpts{}).Extract()
			t.Logf("console of %s:\n%s", id, out)
		}
		for _, ns := range []string{nsA, nsB} {
			for _, c := range [][]string{{"ip", "-br", "link"}, {"bridge", "fdb", "show"}, {"ip", "-br", "addr"}} {
				out, _ := exec.Command("ip", append([]string{"netns", "exec", ns}, c...)...).CombinedOutput()
				t.Logf("%s: %s:\n%s", ns, strings.Join(c, " "), out)
			}
		}
		var keep []string
		for _, l := range strings.Split(k.log(), "\n") {
			if !strings.Contains(l, "msg=request ") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 400 {
			keep = keep[len(keep)-400:]
		}
		t.Logf("kumo log without requests:\n%s", strings.Join(keep, "\n"))
	})
	nova.Microversion = "2.74" // hypervisor_hostname at create
	neutron := serviceClient(t, openstack.NewNetworkV2, p)

	// Both hosts' agents are up; host B tunnels from its underlay address.
	dpUntil(t, ctx, 2*time.Minute, "agents of both hosts alive", func() error {
		pages, err := agents.List(neutron, agents.ListOpts{}).AllPages(ctx)
		if err != nil {
			return err
		}
		list, err := agents.ExtractAgents(pages)
		if err != nil {
			return err
		}
		want := map[string]bool{"compute/Linux bridge agent": false, "hostb/Linux bridge agent": false,
			"compute/L3 agent": false, "compute/DHCP agent": false, "compute/Metadata agent": false}
		for _, a := range list {
			key := a.Host + "/" + a.AgentType
			if _, ok := want[key]; ok && a.Alive {
				want[key] = true
			}
			if key == "hostb/Linux bridge agent" && a.Configurations["tunneling_ip"] != dpUnderlayB {
				return fmt.Errorf("hostb tunnels from %v, want %s", a.Configurations["tunneling_ip"], dpUnderlayB)
			}
			if key == "compute/Linux bridge agent" && a.Configurations["tunneling_ip"] != dpUnderlayA {
				return fmt.Errorf("compute tunnels from %v, want %s", a.Configurations["tunneling_ip"], dpUnderlayA)
			}
		}
		for k, ok := range want {
			if !ok {
				return fmt.Errorf("%s not alive", k)
			}
		}
		return nil
	})
	dpUntil(t, ctx, 2*time.Minute, "compute hostb up", func() error {
		pages, err := services.List(nova, services.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
		if err != nil {
			return err
		}
		list, _ := services.ExtractServices(pages)
		for _, s := range list {
			if s.Host == "hostb" && s.State == "up" {
				return nil
			}
		}
		return fmt.Errorf("services %+v", list)
	})
	imageID := uploadGuest(t, ctx, img, guest)
	const pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g dataplane@kumo"
	if _, err := keypairs.Create(ctx, nova, keypairs.CreateOpts{Name: "dp", PublicKey: pubKey}).Extract(); err != nil {
		t.Fatalf("keypair: %v", err)
	}

	// Two tenant networks (VXLAN), an external flat network on physnet1.
	tenantNet := func(name, cidr string) (string, string) {
		t.Helper()
		n, err := networks.Create(ctx, neutron, networks.CreateOpts{Name: name}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		s, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return n.ID, s.ID
	}
	net1, sub1 := tenantNet("net1", "10.10.0.0/24")
	// net1 also has an IPv6 subnet whose addresses come by SLAAC from the
	// router's advertisements.
	sub1v6, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: net1, CIDR: "2001:db8:10::/64", IPVersion: gophercloud.IPv6,
		IPv6AddressMode: "slaac", IPv6RAMode: "slaac"}).Extract()
	if err != nil {
		t.Fatalf("IPv6 subnet: %v", err)
	}
	net2, sub2 := tenantNet("net2", "10.20.0.0/24")
	ext, err := networks.Create(ctx, neutron, external.CreateOptsExt{
		CreateOptsBuilder: flatNetwork{Name: "public", Physnet: "physnet1"}, External: ptr(true)}).Extract()
	if err != nil {
		t.Fatalf("external network: %v", err)
	}
	if _, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: ext.ID, CIDR: "203.0.113.0/24", IPVersion: gophercloud.IPv4,
		GatewayIP: ptr(dpOutside), EnableDHCP: ptr(false),
		AllocationPools: []subnets.AllocationPool{{Start: "203.0.113.100", End: "203.0.113.150"}}}).Extract(); err != nil {
		t.Fatalf("external subnet: %v", err)
	}
	// The ports' addresses come from IPAM: IPv4 from the pools, IPv6 the
	// EUI-64 of the port's MAC.
	port := func(netID string) (id, v4, v6 string) {
		t.Helper()
		pt, err := ports.Create(ctx, neutron, ports.CreateOpts{NetworkID: netID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range pt.FixedIPs {
			if strings.Contains(f.IPAddress, ":") {
				v6 = f.IPAddress
			} else {
				v4 = f.IPAddress
			}
		}
		return pt.ID, v4, v6
	}
	p1, ip1, _ := port(net1)
	p2, ip2, ip2v6 := port(net1)
	p3, ip3, _ := port(net2)
	if ip2v6 == "" {
		t.Fatalf("port %s on the slaac subnet %s has no IPv6 address", p2, sub1v6.ID)
	}

	// vm1 on host A watches vm2 (same network, other host), vm3 (other
	// network) and the outside; vm2 on host B watches the outside.
	boot := func(name, portID, host string, userData []byte) string {
		t.Helper()
		s, err := servers.Create(ctx, nova, keypairs.CreateOptsExt{KeyName: "dp", CreateOptsBuilder: servers.CreateOpts{
			Name: name, ImageRef: imageID, FlavorRef: "42", Networks: []servers.Network{{Port: portID}},
			HypervisorHostname: host, UserData: userData}}, nil).Extract()
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return s.ID
	}
	vm1 := boot("vm1", p1, "compute", dpProbe(ip2, ip3, dpOutside, ip2v6))
	vm2 := boot("vm2", p2, "hostb", dpProbe(dpOutside))
	vm3 := boot("vm3", p3, "hostb", nil)
	vms = []string{vm1, vm2, vm3}
	start := time.Now()
	for _, v := range []struct{ id, ip string }{{vm1, ip1}, {vm2, ip2}, {vm3, ip3}} {
		waitServer(t, ctx, nova, v.id, "ACTIVE")
		out := waitConsole(t, ctx, nova, v.id, "kumo-guest: instance-id=", 1)
		// DHCP gave the port's address; the metadata service (on host A,
		// across the tunnel for host B) gave the instance its key.
		if !strings.Contains(out, " ip="+v.ip) {
			t.Fatalf("%s did not get %s by DHCP:\n%s", v.id, v.ip, out)
		}
		if !strings.Contains(out, "instance-id="+v.id) || !strings.Contains(out, "source=metadata-service") || !strings.Contains(out, "ssh-key="+pubKey) {
			t.Fatalf("%s did not get its key from the metadata service:\n%s", v.id, out)
		}
	}
	t.Logf("3 VMs up with DHCP addresses and metadata keys: %v", time.Since(start).Round(time.Millisecond))

	// One network across two hosts.
	waitConsole(t, ctx, nova, vm1, "kumo-guest: probe "+ip2+" up", 1)
	// Two networks, no router: vm1 has been probing vm3 since before vm3
	// came up; give it a few more rounds.
	time.Sleep(5 * time.Second)
	out := waitConsole(t, ctx, nova, vm1, "kumo-guest: probe "+ip3+" down", 1)
	if strings.Contains(out, "probe "+ip3+" up") || strings.Contains(out, "probe "+dpOutside+" up") || strings.Contains(out, "probe "+ip2v6+" up") {
		t.Fatalf("vm1 reached another network, the outside or vm2's IPv6 address without a router:\n%s", out)
	}

	// A router joins the networks and the outside.
	r, err := routers.Create(ctx, neutron, routers.CreateOpts{Name: "r1", GatewayInfo: &routers.GatewayInfo{NetworkID: ext.ID}}).Extract()
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	for _, s := range []string{sub1, sub2, sub1v6.ID} {
		if _, err := routers.AddInterface(ctx, neutron, r.ID, routers.AddInterfaceOpts{SubnetID: s}).Extract(); err != nil {
			t.Fatalf("router interface: %v", err)
		}
	}
	start = time.Now()
	waitConsole(t, ctx, nova, vm1, "kumo-guest: probe "+ip3+" up", 1)
	t.Logf("vm1 reaches vm3 through the router %v after the interfaces were added", time.Since(start).Round(time.Millisecond))
	// The router advertises net1's IPv6 prefix: both VMs, on two hosts,
	// configure their ports' addresses.
	waitConsole(t, ctx, nova, vm1, "kumo-guest: probe "+ip2v6+" up", 1)
	// The outside has no route back to 10.x: replies prove SNAT.
	waitConsole(t, ctx, nova, vm2, "kumo-guest: probe "+dpOutside+" up", 1)
	waitConsole(t, ctx, nova, vm1, "kumo-guest: probe "+dpOutside+" up", 1)

	// The outside reaches vm1 at its floating IP (ICMP allowed by a rule).
	sgPages, err := groups.List(neutron, groups.ListOpts{Name: "default", TenantID: p1ProjectID(t, ctx, neutron, p1)}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sgs, _ := groups.ExtractGroups(sgPages)
	if len(sgs) != 1 {
		t.Fatalf("default security groups: %+v", sgs)
	}
	sg := sgs[0].ID
	if _, err := rules.Create(ctx, neutron, rules.CreateOpts{SecGroupID: sg, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolICMP}).Extract(); err != nil {
		t.Fatal(err)
	}
	fip, err := floatingips.Create(ctx, neutron, floatingips.CreateOpts{FloatingNetworkID: ext.ID, PortID: p1}).Extract()
	if err != nil {
		t.Fatalf("floating IP: %v", err)
	}
	inO := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nsO}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	dpUntil(t, ctx, time.Minute, "ping the floating IP from the outside", func() error {
		return inO("busybox", "ping", "-c", "1", "-W", "1", fip.FloatingIP)
	})
	web := func() error {
		return inO("curl", "-sf", "-o", "/dev/null", "--connect-timeout", "0.3", "-m", "1", "http://"+fip.FloatingIP+"/instance-id")
	}
	// Port 80 is closed to the outside until a rule opens it, and closed
	// again when the rule goes.
	if err := web(); err == nil {
		t.Fatal("port 80 reachable from the outside without a rule")
	}
	rule, err := rules.Create(ctx, neutron, rules.CreateOpts{SecGroupID: sg, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 80, PortRangeMax: 80, RemoteIPPrefix: "0.0.0.0/0"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	opened := dpUntil(t, ctx, 5*time.Second, "port 80 opened by the rule", web)
	if err := rules.Delete(ctx, neutron, rule.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	closed := dpUntil(t, ctx, 5*time.Second, "port 80 closed by the rule's removal", func() error {
		if web() == nil {
			return fmt.Errorf("still open")
		}
		return nil
	})
	t.Logf("security group rule: port opened %v, closed %v after the API call (the probe itself takes up to 1 s)",
		opened.Round(time.Millisecond), closed.Round(time.Millisecond))
	if opened > time.Second || closed > time.Second+300*time.Millisecond {
		t.Errorf("a security group rule change took more than a second: opened in %v, closed in %v", opened, closed)
	}
}

// p1ProjectID is the project a port belongs to.
func p1ProjectID(t testing.TB, ctx context.Context, c *gophercloud.ServiceClient, portID string) string {
	t.Helper()
	pt, err := ports.Get(ctx, c, portID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return pt.ProjectID
}

// flatNetwork asks for a flat provider network (provider:network_type).
type flatNetwork struct{ Name, Physnet string }

func (f flatNetwork) ToNetworkCreateMap() (map[string]any, error) {
	return map[string]any{"network": map[string]any{"name": f.Name, "provider:network_type": "flat",
		"provider:physical_network": f.Physnet}}, nil
}
