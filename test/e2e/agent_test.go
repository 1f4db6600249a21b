package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
)

// TestRemoteComputeAgent runs `kumo agent compute` as a second process
// that joins the control plane only through its NATS, and boots a server
// on it.
func TestRemoteComputeAgent(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	k := Start(t, Options{Args: []string{"--nats-listen", fmt.Sprintf("127.0.0.1:%d", port)}})
	ctx := testContext(t)

	stopAgent := startRemoteAgent(t, k, port, "remote1", t.TempDir(), "fake")
	p := k.adminProvider(t, ctx)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.74"
	glance := serviceClient(t, openstack.NewImageV2, p)
	imageID := newRawImage(t, ctx, glance, "agent-img")
	waitComputeUp(t, ctx, nova, "remote1")
	// The agent's resource tracker reported its provider through the bus.
	pl, err := openstack.NewPlacementV1(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	pl.Microversion = "1.36"
	var rp resourceproviders.ResourceProvider
	for deadline := time.Now().Add(30 * time.Second); ; {
		pages, err := resourceproviders.List(pl, resourceproviders.ListOpts{Name: "remote1"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rps, _ := resourceproviders.ExtractResourceProviders(pages)
		if len(rps) == 1 {
			rp = rps[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no resource provider for remote1: %+v", rps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	inv, err := resourceproviders.GetInventories(ctx, pl, rp.UUID).Extract()
	if err != nil || inv.Inventories["VCPU"].Total != 16 || inv.Inventories["VCPU"].AllocationRatio != 16 || inv.Inventories["MEMORY_MB"].Total == 0 {
		t.Fatalf("remote1 inventories %+v %v", inv, err)
	}
	srv, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "on-remote", ImageRef: imageID, FlavorRef: "42",
		Networks: "none", HypervisorHostname: "remote1"}, nil).Extract()
	if err != nil {
		t.Fatalf("create on remote1: %v", err)
	}
	if got := waitServer(t, ctx, nova, srv.ID, "ACTIVE"); got.Host != "remote1" {
		t.Fatalf("server host %q", got.Host)
	}
	use, err := resourceproviders.GetUsages(ctx, pl, rp.UUID).Extract()
	if err != nil || use.Usages["VCPU"] != 1 || use.Usages["MEMORY_MB"] != 128 {
		t.Fatalf("remote1 usages %+v %v", use, err)
	}

	// Deleting the compute service: refused while it hosts the server,
	// then it takes the node's resource provider with it.
	sp, err := services.List(nova, services.ListOpts{Binary: "nova-compute", Host: "remote1"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := services.ExtractServices(sp)
	if len(svcs) != 1 {
		t.Fatalf("compute services on remote1: %+v", svcs)
	}
	wantFault(t, services.Delete(ctx, nova, svcs[0].ID).ExtractErr(), 409, "conflictingRequest")
	if err := servers.Delete(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitServerGone(t, ctx, nova, srv.ID)
	stopAgent()
	if err := services.Delete(ctx, nova, svcs[0].ID).ExtractErr(); err != nil {
		t.Fatalf("delete the compute service of remote1: %v", err)
	}
	if _, err := resourceproviders.Get(ctx, pl, rp.UUID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("remote1's resource provider after its service was deleted: %v, want 404", err)
	}
	wantFault(t, services.Delete(ctx, nova, svcs[0].ID).ExtractErr(), 404, "itemNotFound")
}
