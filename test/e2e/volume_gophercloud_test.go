package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestVolumeGophercloud drives the block storage API (found in the
// catalog as block-storage) and the compute API's os-volume_attachments
// with gophercloud: volumes from scratch, from an image and from a
// snapshot, pagination, extend, the v3 attachments API, attach/detach
// to a server on the fake driver and delete_on_termination.
func TestVolumeGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	cinder := serviceClient(t, openstack.NewBlockStorageV3, p)
	cinder.Microversion = "3.44"
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.79"
	glance := serviceClient(t, openstack.NewImageV2, p)

	// Volumes: create three, page through them one at a time.
	var ids []string
	for _, name := range []string{"gc-a", "gc-b", "gc-c"} {
		v, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 1, Name: name, Metadata: map[string]string{"e2e": "yes"}}, nil).Extract()
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		ids = append(ids, v.ID)
	}
	for _, id := range ids {
		waitVolume(t, ctx, cinder, id, "available")
	}
	var seen int
	err := volumes.List(cinder, volumes.ListOpts{Limit: 1, Sort: "name:asc"}).EachPage(ctx, func(_ context.Context, pg pagination.Page) (bool, error) {
		vs, err := volumes.ExtractVolumes(pg)
		seen += len(vs)
		return true, err
	})
	if err != nil || seen != 3 {
		t.Fatalf("paged list: %d volumes, %v", seen, err)
	}
	name := "gc-renamed"
	if _, err := volumes.Update(ctx, cinder, ids[0], volumes.UpdateOpts{Name: &name}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := volumes.ExtendSize(ctx, cinder, ids[0], volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if v := waitVolume(t, ctx, cinder, ids[0], "available"); v.Size != 2 || v.Name != name {
		t.Errorf("after extend: %+v", v)
	}
	if err := volumes.ExtendSize(ctx, cinder, ids[0], volumes.ExtendSizeOpts{NewSize: 1}).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("shrink: %v", err)
	}
	if _, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 100000}, nil).Extract(); !gophercloud.ResponseCodeIs(err, 413) {
		t.Errorf("over quota: %v", err)
	}

	// Snapshot and a volume from it.
	sn, err := snapshots.Create(ctx, cinder, snapshots.CreateOpts{VolumeID: ids[1], Name: "gc-snap"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := snapshots.WaitForStatus(wctx, cinder, sn.ID, "available"); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	cancel()
	fromSnap, err := volumes.Create(ctx, cinder, volumes.CreateOpts{SnapshotID: sn.ID, Size: 1}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v := waitVolume(t, ctx, cinder, fromSnap.ID, "available"); v.SnapshotID != sn.ID {
		t.Errorf("from snapshot: %+v", v)
	}

	// A volume from an image is bootable and holds the image.
	data := bytes.Repeat([]byte("kumo-image!"), 10000)
	imageID := newImage(t, ctx, glance, images.CreateOpts{Name: "gc-img", DiskFormat: "raw"}, data)
	fromImg, err := volumes.Create(ctx, cinder, volumes.CreateOpts{ImageID: imageID, Size: 1}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v := waitVolume(t, ctx, cinder, fromImg.ID, "available"); v.Bootable != "true" || v.VolumeImageMetadata["image_id"] != imageID {
		t.Errorf("from image: %+v", v)
	}

	// v3 attachments API: reserve, connect, complete, delete.
	const inst = "3f0c1d2e-aaaa-4bbb-8ccc-000000000001"
	att, err := attachments.Create(ctx, cinder, attachments.CreateOpts{VolumeUUID: ids[2], InstanceUUID: inst,
		Connector: map[string]any{"host": "elsewhere"}}).Extract()
	if err != nil {
		t.Fatalf("attachment create: %v", err)
	}
	if att.ConnectionInfo["driver_volume_type"] != "local" {
		t.Errorf("connection_info = %v", att.ConnectionInfo)
	}
	if err := attachments.Complete(ctx, cinder, att.ID).ExtractErr(); err != nil {
		t.Fatalf("complete: %v", err)
	}
	waitVolume(t, ctx, cinder, ids[2], "in-use")
	if err := volumes.Delete(ctx, cinder, ids[2], nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("deleting an attached volume: %v", err)
	}
	if err := attachments.Delete(ctx, cinder, att.ID).ExtractErr(); err != nil {
		t.Fatalf("attachment delete: %v", err)
	}
	waitVolume(t, ctx, cinder, ids[2], "available")

	// Compute: attach to a server on the fake driver, detach, attach
	// with delete_on_termination and delete the server.
	srv, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "gc-vm", ImageRef: imageID, FlavorRef: "42", Networks: "none"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	// A stopped server cannot take a hot-plug: 409, and the volume stays
	// available.
	if err := servers.Stop(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitServer(t, ctx, nova, srv.ID, "SHUTOFF")
	if _, err := volumeattach.Create(ctx, nova, srv.ID, volumeattach.CreateOpts{VolumeID: ids[1]}).Extract(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Errorf("attach to a stopped server: %v", err)
	}
	waitVolume(t, ctx, cinder, ids[1], "available")
	if err := servers.Start(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	va, err := volumeattach.Create(ctx, nova, srv.ID, volumeattach.CreateOpts{VolumeID: ids[1]}).Extract()
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if va.Device != "/dev/vdb" || va.VolumeID != ids[1] || va.ServerID != srv.ID {
		t.Errorf("attachment = %+v", va)
	}
	if v := waitVolume(t, ctx, cinder, ids[1], "in-use"); len(v.Attachments) != 1 || v.Attachments[0].ServerID != srv.ID {
		t.Errorf("attached volume = %+v", v)
	}
	if _, err := volumeattach.Create(ctx, nova, srv.ID, volumeattach.CreateOpts{VolumeID: ids[1]}).Extract(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("second attach: %v", err)
	}
	if _, err := volumeattach.Create(ctx, nova, srv.ID, volumeattach.CreateOpts{VolumeID: "00000000-0000-4000-8000-000000000000"}).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("attach unknown volume: %v", err)
	}
	all, err := volumeattach.List(nova, srv.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := volumeattach.ExtractVolumeAttachments(all); len(l) != 1 {
		t.Errorf("attachments list = %+v", l)
	}
	if err := volumeattach.Delete(ctx, nova, srv.ID, ids[1]).ExtractErr(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	waitVolume(t, ctx, cinder, ids[1], "available")
	if _, err := volumeattach.Create(ctx, nova, srv.ID, volumeattach.CreateOpts{VolumeID: fromSnap.ID, DeleteOnTermination: true}).Extract(); err != nil {
		t.Fatalf("attach with delete_on_termination: %v", err)
	}
	waitVolume(t, ctx, cinder, fromSnap.ID, "in-use")
	if err := servers.Delete(ctx, nova, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, ctx, cinder, fromSnap.ID)
}
