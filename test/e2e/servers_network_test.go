package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// TestServersOnNetworksGophercloud boots servers on a network and on a
// port, reads their addresses, attaches and detaches an interface and
// checks that deleting the servers cleans their ports.
func TestServersOnNetworksGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.70"
	neutron := serviceClient(t, openstack.NewNetworkV2, p)
	imageID := newRawImage(t, ctx, img, "net-img")
	net := newNetwork(t, ctx, neutron, "vmnet", "10.40.0.0/24")
	net2 := newNetwork(t, ctx, neutron, "vmnet2", "10.41.0.0/24")
	userPort, err := ports.Create(ctx, neutron, ports.CreateOpts{NetworkID: net.ID, Name: "user-port"}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	// An unknown network is refused at create.
	_, err = servers.Create(ctx, nova, servers.CreateOpts{Name: "bad", ImageRef: imageID, FlavorRef: "42",
		Networks: []servers.Network{{UUID: "5a9c27a6-0000-4000-8000-000000000000"}}}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) || !strings.Contains(err.Error(), "could not be found") {
		t.Fatalf("unknown network: %v", err)
	}

	srv, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "on-net", ImageRef: imageID, FlavorRef: "42",
		Networks: []servers.Network{{UUID: net.ID, FixedIP: "10.40.0.10"}}}, nil).Extract()
	if err != nil {
		t.Fatalf("server create: %v", err)
	}
	s := waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	addrs, _ := s.Addresses["vmnet"].([]any)
	if len(addrs) != 1 || addrs[0].(map[string]any)["addr"] != "10.40.0.10" || addrs[0].(map[string]any)["OS-EXT-IPS:type"] != "fixed" {
		t.Fatalf("addresses: %v", s.Addresses)
	}
	srvPorts := func(id string) []ports.Port {
		t.Helper()
		pages, err := ports.List(neutron, ports.ListOpts{DeviceID: id}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := ports.ExtractPorts(pages)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	if ps := srvPorts(srv.ID); len(ps) != 1 || ps[0].DeviceOwner != "compute:nova" || ps[0].Status != "ACTIVE" {
		t.Fatalf("server ports: %+v", ps)
	}

	// os-interface: attach a port on another network, list, detach.
	att, err := attachinterfaces.Create(ctx, nova, srv.ID, attachinterfaces.CreateOpts{NetworkID: net2.ID}).Extract()
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	pages, err := attachinterfaces.List(nova, srv.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ifaces, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil || len(ifaces) != 2 {
		t.Fatalf("interfaces: %+v %v", ifaces, err)
	}
	if err := attachinterfaces.Delete(ctx, nova, srv.ID, att.PortID).ExtractErr(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if _, err := ports.Get(ctx, neutron, att.PortID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("detached port still there: %v", err)
	}

	// A server on the user's port: the port is kept on delete.
	srv2, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "on-port", ImageRef: imageID, FlavorRef: "42",
		Networks: []servers.Network{{Port: userPort.ID}}}, nil).Extract()
	if err != nil {
		t.Fatalf("server create on port: %v", err)
	}
	s2 := waitServer(t, ctx, nova, srv2.ID, "ACTIVE")
	if len(s2.Addresses["vmnet"].([]any)) != 1 {
		t.Fatalf("addresses of the server on a port: %v", s2.Addresses)
	}

	for _, id := range []string{srv.ID, srv2.ID} {
		if err := servers.Delete(ctx, nova, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := servers.WaitForStatus(wctx, nova, id, "DELETED")
		cancel()
		if err != nil && !gophercloud.ResponseCodeIs(err, 404) {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(srvPorts(srv.ID)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ports of a deleted server remain: %+v", srvPorts(srv.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	up, err := ports.Get(ctx, neutron, userPort.ID).Extract()
	if err != nil || up.DeviceID != "" {
		t.Fatalf("user port after its server was deleted: %+v %v", up, err)
	}
	// The network can be deleted once its ports are gone.
	if err := ports.Delete(ctx, neutron, userPort.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := networks.Delete(ctx, neutron, net.ID).ExtractErr(); err != nil {
		t.Fatalf("network delete after servers: %v", err)
	}
}

// TestServerNetworkCLI runs `openstack server create --network … --wait`
// and `openstack port list --server`.
func TestServerNetworkCLI(t *testing.T) {
	t.Parallel()
	bin := openstackCLI(t)
	k := Start(t, Options{})
	cli := newCLI(t, bin, k)
	adm := []string{"--os-cloud", "kumo"}
	file := t.TempDir() + "/disk.raw"
	if err := writeFile(file, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	cli.run(append(adm, "image", "create", "--file", file, "--disk-format", "raw", "--container-format", "bare", "net-img")...)
	cli.run(append(adm, "network", "create", "clinet")...)
	cli.run(append(adm, "subnet", "create", "--network", "clinet", "--subnet-range", "10.50.0.0/24", "clisub")...)
	var srv struct {
		ID, Status string
		Addresses  any
	}
	cli.json(&srv, append(adm, "server", "create", "--image", "net-img", "--flavor", "m1.nano", "--network", "clinet", "--wait", "netvm")...)
	if srv.Status != "ACTIVE" {
		t.Fatalf("server create --wait: %+v", srv)
	}
	var ps []struct {
		ID               string
		FixedIPAddresses any `json:"Fixed IP Addresses"`
	}
	cli.json(&ps, append(adm, "port", "list", "--server", "netvm")...)
	if len(ps) != 1 {
		t.Fatalf("port list --server: %+v", ps)
	}
	if out := cli.run(append(adm, "server", "show", "netvm")...); !strings.Contains(out, "clinet=10.50.0.") {
		t.Errorf("server show addresses:\n%s", out)
	}
	cli.run(append(adm, "server", "delete", "--wait", "netvm")...)
	cli.json(&ps, append(adm, "port", "list", "--network", "clinet", "--device-owner", "compute:nova")...)
	if len(ps) != 0 {
		t.Errorf("ports after server delete: %+v", ps)
	}
}
