package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
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

	logPath := filepath.Join(t.TempDir(), "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	agent := exec.Command(kumoBin, "agent", "compute", "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", port),
		"--host", "remote1", "--compute-driver", "fake", "--data-dir", t.TempDir())
	agent.Env = envWithout("OS_", "KUMO_")
	agent.Stdout, agent.Stderr = logf, logf
	agent.SysProcAttr = sysProcAttr()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- agent.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent exit: %v", err)
			}
		case <-time.After(15 * time.Second):
			_ = agent.Process.Kill()
			t.Error("agent did not stop on SIGTERM")
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", b)
		}
	})

	p, err := k.Authenticate(ctx, k.AdminAuth())
	if err != nil {
		t.Fatal(err)
	}
	nova, err := openstack.NewComputeV2(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	nova.Microversion = "2.74"
	glance, err := openstack.NewImageV2(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	im, err := images.Create(ctx, glance, images.CreateOpts{Name: "agent-img", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, glance, im.ID, bytes.NewReader(make([]byte, 4096))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pages, err := services.List(nova, services.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := services.ExtractServices(pages)
		found := false
		for _, s := range list {
			found = found || (s.Host == "remote1" && s.State == "up")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote1 never registered: %+v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
	srv, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "on-remote", ImageRef: im.ID, FlavorRef: "42",
		Networks: "none", HypervisorHostname: "remote1"}, nil).Extract()
	if err != nil {
		t.Fatalf("create on remote1: %v", err)
	}
	if err := servers.WaitForStatus(ctx, nova, srv.ID, "ACTIVE"); err != nil {
		t.Fatalf("server on remote1: %v", err)
	}
	got, err := servers.Get(ctx, nova, srv.ID).Extract()
	if err != nil || got.Host != "remote1" {
		t.Fatalf("server host %q, %v", got.Host, err)
	}
	use, err := resourceproviders.GetUsages(ctx, pl, rp.UUID).Extract()
	if err != nil || use.Usages["VCPU"] != 1 || use.Usages["MEMORY_MB"] != 128 {
		t.Fatalf("remote1 usages %+v %v", use, err)
	}
	if err := servers.Delete(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}
