package e2e

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// TestServicesGophercloud drives the image, compute and networking APIs
// of one process through gophercloud, found through the catalog.
func TestServicesGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.37" // "networks": "none"
	neutron := serviceClient(t, openstack.NewNetworkV2, p)

	// Image: create, upload, read back, see it active with checksums.
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	imageID := newImage(t, ctx, img, images.CreateOpts{Name: "e2e-img", DiskFormat: "raw"}, data)
	rd, err := imagedata.Download(ctx, img, imageID).Extract()
	if err != nil {
		t.Fatalf("image download: %v", err)
	}
	got, _ := io.ReadAll(rd)
	rd.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded image differs")
	}
	im, err := images.Get(ctx, img, imageID).Extract()
	if err != nil || im.Status != images.ImageStatusActive || im.SizeBytes != int64(len(data)) || im.Checksum == "" {
		t.Fatalf("image after upload: %+v %v", im, err)
	}
	// A qcow2 claim on raw data is refused and leaves the image queued.
	bad, err := images.Create(ctx, img, images.CreateOpts{Name: "liar", DiskFormat: "qcow2", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, img, bad.ID, bytes.NewReader(data)).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("mismatched format upload: %v", err)
	}
	if b, _ := images.Get(ctx, img, bad.ID).Extract(); b.Status != images.ImageStatusQueued {
		t.Fatalf("after a refused upload the image is %s", b.Status)
	}

	// Networking: a network with a subnet and a port with a real address.
	net, err := networks.Create(ctx, neutron, networks.CreateOpts{Name: "e2e-net"}).Extract()
	if err != nil {
		t.Fatalf("network create: %v", err)
	}
	sub, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.20.0.0/29", IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		t.Fatalf("subnet create: %v", err)
	}
	port, err := ports.Create(ctx, neutron, ports.CreateOpts{NetworkID: net.ID}).Extract()
	if err != nil || len(port.FixedIPs) != 1 || port.FixedIPs[0].SubnetID != sub.ID || !strings.HasPrefix(port.FixedIPs[0].IPAddress, "10.20.0.") {
		t.Fatalf("port create: %+v %v", port, err)
	}
	if err := networks.Delete(ctx, neutron, net.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("deleting a network with ports: %v", err)
	}

	// Compute: boot on the in-process host, stop, start, delete.
	srv, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "e2e-vm", ImageRef: im.ID, FlavorRef: "42", Networks: "none"}, nil).Extract()
	if err != nil {
		t.Fatalf("server create: %v", err)
	}
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	if err := servers.Stop(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitServer(t, ctx, nova, srv.ID, "SHUTOFF")
	if err := servers.Stop(ctx, nova, srv.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("stopping a stopped server: %v", err)
	}
	if err := servers.Start(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	if _, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "x", ImageRef: "00000000-0000-4000-8000-000000000000", FlavorRef: "42", Networks: "none"}, nil).Extract(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("unknown image: %v", err)
	}
	if err := servers.Delete(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	waitServerGone(t, ctx, nova, srv.ID)
}

// TestServicesOpenStackCLI runs image, network and server commands of
// Debian's openstack CLI.
func TestServicesOpenStackCLI(t *testing.T) {
	t.Parallel()
	bin := openstackCLI(t)
	k := Start(t, Options{})
	cli := newCLI(t, bin, k)
	adm := []string{"--os-cloud", "kumo"}
	file := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 512<<10)
	_, _ = rand.Read(data)
	if err := writeFile(file, data); err != nil {
		t.Fatal(err)
	}

	var im struct{ ID, Name string }
	cli.json(&im, append(adm, "image", "create", "--file", file, "--disk-format", "raw", "--container-format", "bare", "cli-img")...)
	cli.run(append(adm, "image", "set", "--property", "purpose=e2e", "--tag", "t1", "cli-img")...)
	var shown struct {
		Status string
		Size   int
		Tags   []string
	}
	cli.json(&shown, append(adm, "image", "show", "cli-img")...)
	if shown.Status != "active" || shown.Size != len(data) || len(shown.Tags) != 1 {
		t.Errorf("image show = %+v", shown)
	}
	saved := filepath.Join(t.TempDir(), "saved.raw")
	cli.run(append(adm, "image", "save", "--file", saved, "cli-img")...)
	if b, _ := readFile(saved); !bytes.Equal(b, data) {
		t.Error("image save returned other bytes")
	}
	cli.run(append(adm, "project", "create", "other")...)
	cli.run(append(adm, "image", "set", "--shared", "cli-img")...)
	cli.run(append(adm, "image", "add", "project", "cli-img", "other")...)

	cli.run(append(adm, "network", "create", "cli-net")...)
	cli.run(append(adm, "subnet", "create", "--network", "cli-net", "--subnet-range", "10.30.0.0/24", "cli-sub")...)
	cli.run(append(adm, "router", "create", "cli-router")...)
	cli.run(append(adm, "router", "add", "subnet", "cli-router", "cli-sub")...)
	cli.run(append(adm, "security", "group", "create", "cli-sg")...)
	cli.run(append(adm, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "cli-sg")...)

	cli.run(append(adm, "flavor", "list")...)
	cli.run(append(adm, "keypair", "create", "cli-key")...)
	var srv struct{ ID, Status string }
	cli.json(&srv, append(adm, "server", "create", "--image", "cli-img", "--flavor", "m1.nano", "--key-name", "cli-key", "--wait", "cli-vm")...)
	if srv.Status != "ACTIVE" {
		t.Fatalf("server create --wait: %+v", srv)
	}
	if out := cli.run(append(adm, "server", "list", "--long")...); !strings.Contains(out, "cli-vm") {
		t.Errorf("server list --long:\n%s", out)
	}
	cli.run(append(adm, "server", "stop", "cli-vm")...)
	cli.run(append(adm, "server", "start", "cli-vm")...)
	cli.run(append(adm, "server", "reboot", "cli-vm")...)
	cli.run(append(adm, "quota", "show")...)
	cli.run(append(adm, "server", "delete", "--wait", "cli-vm")...)
	cli.run(append(adm, "image", "delete", "cli-img")...)
	if out := cli.run(append(adm, "image", "list")...); strings.Contains(out, "cli-img") {
		t.Errorf("image list after delete:\n%s", out)
	}
}

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
