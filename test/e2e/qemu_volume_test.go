package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/qos"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
)

// TestQEMUBootFromVolume boots the test guest on QEMU from a volume the
// build creates from the guest image (the guest lists its root disk with
// the volume's id as serial), then, inside that guest, checks that data
// written to an attached volume survives a detach and a re-attach
// through the compute API: the guest announces each new disk with the
// first bytes it holds and writes a marker onto it. Deleting the server
// deletes the root volume (delete_on_termination) and leaves the other.
// The boot volume's type has a front-end QoS spec, which QEMU enforces
// with a throttle filter under the root disk.
func TestQEMUBootFromVolume(t *testing.T) {
	guest := qemuGuest(t)
	t.Parallel()
	dataDir := shortDataDir(t)
	k := Start(t, Options{DataDir: dataDir, Args: []string{"--compute-driver", "qemu"}})
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.79"
	cinder := serviceClient(t, openstack.NewBlockStorageV3, p)
	imageID := uploadGuest(t, ctx, img, guest)
	// The boot volume's type has a front-end QoS spec (limits far above
	// what the boot needs): QEMU boots it under a throttle filter.
	spec, err := qos.Create(ctx, cinder, qos.CreateOpts{Name: "bfv-qos", Consumer: qos.ConsumerFront,
		Specs: map[string]string{"total_bytes_sec": "1073741824", "total_iops_sec": "100000"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	vt, err := volumetypes.Create(ctx, cinder, volumetypes.CreateOpts{Name: "bfv-throttled"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := qos.Associate(ctx, cinder, spec.ID, qos.AssociateOpts{VolumeTypeID: vt.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "bfv", FlavorRef: "42", Networks: "none", ConfigDrive: ptr(true),
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceImage, UUID: imageID, DestinationType: servers.DestinationVolume,
			VolumeSize: 1, DeleteOnTermination: true, VolumeType: "bfv-throttled"}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	srv := waitServer(t, ctx, nova, s.ID, "ACTIVE")
	if len(srv.AttachedVolumes) != 1 {
		t.Fatalf("volumes_attached = %+v", srv.AttachedVolumes)
	}
	root := srv.AttachedVolumes[0].ID
	out := waitConsole(t, ctx, nova, s.ID, "kumo-guest: instance-id="+s.ID, 1)
	t.Logf("boot from a new volume to the guest's console line: %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out, "kumo-guest: disk vda serial="+root[:20]) {
		t.Errorf("the guest's root disk is not the volume %s:\n%s", root, out)
	}
	if ps := qemuProcesses(s.ID); len(ps) != 1 || !cmdlineHas(ps[0], "-blockdev") {
		t.Errorf("QEMU processes of %s: %v", s.ID, ps)
	} else if b, _ := os.ReadFile(filepath.Join("/proc", ps[0], "cmdline")); !bytes.Contains(b, []byte("volume-"+root)) {
		t.Errorf("QEMU does not use the volume's file as a disk: %q", b)
	} else if !bytes.Contains(b, []byte("throttle-group,id=tg-root,x-bps-total=1073741824,x-iops-total=100000")) ||
		!bytes.Contains(b, []byte("driver=throttle,node-name=root,")) {
		t.Errorf("the boot volume is not throttled by its QoS spec: %q", b)
	}

	// Data on an attached volume survives detach and re-attach.
	v, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 1, Name: "data"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, ctx, cinder, v.ID, "available")
	attach := func(n int) {
		t.Helper()
		if _, err := volumeattach.Create(ctx, nova, s.ID, volumeattach.CreateOpts{VolumeID: v.ID}).Extract(); err != nil {
			t.Fatalf("attach: %v", err)
		}
		waitConsole(t, ctx, nova, s.ID, "serial="+v.ID[:20]+" head=", n)
	}
	attach(1)
	if out := waitConsole(t, ctx, nova, s.ID, "serial="+v.ID[:20]+" head=empty", 1); out == "" {
		t.Fatal("no console")
	}
	files, _ := filepath.Glob(filepath.Join(dataDir, "volumes", "volume-"+v.ID+".*"))
	if len(files) != 1 {
		t.Fatalf("volume file of %s: %v", v.ID, files)
	}
	for {
		b := make([]byte, 19)
		if f, err := os.Open(files[0]); err == nil {
			_, _ = f.ReadAt(b, 0)
			f.Close()
		}
		if string(b) == "kumo-guest-was-here" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the guest's write never reached the volume")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := volumeattach.Delete(ctx, nova, s.ID, v.ID).ExtractErr(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	waitConsole(t, ctx, nova, s.ID, "kumo-guest: disk removed vd", 1)
	waitVolume(t, ctx, cinder, v.ID, "available")
	attach(2)
	waitConsole(t, ctx, nova, s.ID, "serial="+v.ID[:20]+" head=kumo-guest-was-here", 1)
	waitVolume(t, ctx, cinder, v.ID, "in-use")

	if err := servers.Delete(ctx, nova, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := volumes.Get(ctx, cinder, root).Extract()
		if gophercloud.ResponseCodeIs(err, 404) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("root volume %s not deleted with its server", root)
		case <-time.After(100 * time.Millisecond):
		}
	}
	waitVolume(t, ctx, cinder, v.ID, "available")
	if l := leftovers(dataDir, s.ID); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}
