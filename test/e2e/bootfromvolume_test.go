package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// TestBootFromVolumeGophercloud drives boot from volume on the fake
// driver with gophercloud: Nova's refusals of bad block device mappings
// (and that none leaves a volume or a server behind), servers booted from
// a new volume, from an existing one and from a volume-backed snapshot
// image, createImage of a volume-backed server, the rebuild refusal, a
// build whose volume cannot be created (rolled back), and
// delete_on_termination at delete.
func TestBootFromVolumeGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	cinder := serviceClient(t, openstack.NewBlockStorageV3, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.79"
	glance := serviceClient(t, openstack.NewImageV2, p)
	token := p.Token()
	img := newImage(t, ctx, glance, images.CreateOpts{Name: "bfv-img", DiskFormat: "raw"}, bytes.Repeat([]byte{0x5a}, 1<<20))
	bigImg := newImage(t, ctx, glance, images.CreateOpts{Name: "bfv-big", DiskFormat: "raw", MinDisk: 2}, []byte("min disk 2"))
	countVolumes := func() int {
		t.Helper()
		pages, err := volumes.List(cinder, volumes.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := volumes.ExtractVolumes(pages)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	countServers := func() int {
		t.Helper()
		pages, err := servers.List(nova, servers.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := servers.ExtractServers(pages)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}

	// A volume in use elsewhere, for the refusals.
	busy, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 1, Name: "busy"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, ctx, cinder, busy.ID, "available")
	if err := volumes.Reserve(ctx, cinder, busy.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, ctx, cinder, busy.ID, "attaching")

	// ---- bad mappings: Nova's 400s, nothing created ----
	baseVolumes, baseServers := countVolumes(), countServers()
	create := func(version, bdm, extra string) rawResponse {
		body := fmt.Sprintf(`{"server": {"name": "bad", "flavorRef": "42", "networks": "none", "block_device_mapping_v2": %s%s}}`, bdm, extra)
		return k.compute(t, "POST", "/servers", token, version, body)
	}
	bad := []struct {
		name, version, bdm, extra, want string
	}{
		{"no boot device", "2.79", `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": -1}]`, "",
			"Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."},
		{"boot index gap", "2.79", `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "volume", "volume_size": 1, "boot_index": 0},
			{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 2}]`, "", "Boot sequence"},
		{"image to volume without size", "2.79", `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "volume", "boot_index": 0}]`, "",
			"Images with destination_type 'volume' need to have a non-zero size specified"},
		{"blank volume without size", "2.79", `[{"source_type": "blank", "destination_type": "volume", "boot_index": 1}]`, `, "imageRef": "` + img + `"`,
			"Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size"},
		{"no uuid", "2.79", `[{"source_type": "volume", "destination_type": "volume", "boot_index": 0}]`, "", "Block Device Mapping is Invalid: Missing device UUID."},
		{"image to local not booting", "2.79", `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 1}]`, `, "imageRef": "` + img + `"`,
			"Mapping image to local is not supported."},
		{"volume to local", "2.79", `[{"source_type": "volume", "uuid": "` + busy.ID + `", "destination_type": "local", "boot_index": 0}]`, "", "Mapping volume to local is not supported."},
		{"unknown source type", "2.79", `[{"source_type": "floppy", "uuid": "x", "destination_type": "volume", "boot_index": 0}]`, "", "source_type"},
		{"missing volume", "2.79", `[{"source_type": "volume", "uuid": "6a1f1a6e-0000-4000-8000-000000000000", "destination_type": "volume", "boot_index": 0}]`, "",
			"Block Device Mapping is Invalid: failed to get volume 6a1f1a6e-0000-4000-8000-000000000000."},
		{"volume not available", "2.79", `[{"source_type": "volume", "uuid": "` + busy.ID + `", "destination_type": "volume", "boot_index": 0}]`, "",
			"Invalid volume: volume '" + busy.ID + "' status must be 'available'. Currently in 'attaching'"},
		{"missing snapshot", "2.79", `[{"source_type": "snapshot", "uuid": "6a1f1a6e-0000-4000-8000-000000000001", "destination_type": "volume", "boot_index": 0}]`, "",
			"failed to get snapshot 6a1f1a6e-0000-4000-8000-000000000001."},
		{"missing image", "2.79", `[{"source_type": "image", "uuid": "6a1f1a6e-0000-4000-8000-000000000002", "destination_type": "volume", "volume_size": 1, "boot_index": 0}]`, "",
			"failed to get image 6a1f1a6e-0000-4000-8000-000000000002."},
		{"volume smaller than min_disk", "2.79", `[{"source_type": "image", "uuid": "` + bigImg + `", "destination_type": "volume", "volume_size": 1, "boot_index": 0}]`, "",
			"Volume is smaller than the minimum size specified in image metadata. Volume size is 1073741824 bytes, minimum size is 2147483648 bytes."},
		{"volume_type before 2.67", "2.66", `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "volume_type": "x"}]`, "",
			"Additional properties are not allowed ('volume_type' was unexpected)"},
		{"unknown volume_type", "2.67", `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "volume_type": "nope"}]`, "",
			"Volume type nope could not be found."},
		{"volume_type on local", "2.67", `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 0, "volume_type": "x"}]`, "",
			"Specifying a volume_type with destination_type=local is not supported."},
		{"tag before 2.42", "2.41", `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "tag": "t"}]`, "",
			"Additional properties are not allowed ('tag' was unexpected)"},
		{"existing volume to many servers", "2.79", `[{"source_type": "volume", "uuid": "` + busy.ID + `", "destination_type": "volume", "boot_index": 0}]`, `, "min_count": 2`,
			"Cannot attach one or more volumes to multiple instances"},
		{"ephemeral beyond the flavor", "2.79", `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 0},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1, "boot_index": -1}]`, "",
			"Ephemeral disks requested are larger than the instance type allows."},
		{"unsupported bus", "2.79", `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "disk_bus": "ide"}]`, "", "disk_bus"},
	}
	for _, c := range bad {
		got := create(c.version, c.bdm, c.extra)
		var fault struct {
			BadRequest struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"badRequest"`
		}
		_ = json.Unmarshal(got.Body, &fault)
		if got.Status != 400 || fault.BadRequest.Code != 400 || !strings.Contains(fault.BadRequest.Message, c.want) {
			t.Errorf("%s: %d %s, want 400 with %q", c.name, got.Status, got.Body, c.want)
		}
	}
	if n, m := countVolumes(), countServers(); n != baseVolumes || m != baseServers {
		t.Errorf("refused requests left %d volumes (want %d) and %d servers (want %d)", n, baseVolumes, m, baseServers)
	}

	// ---- boot from a new volume made from the image ----
	tag := "root-disk"
	srv, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "bfv-new", FlavorRef: "42", Networks: "none",
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceImage, UUID: img, DestinationType: servers.DestinationVolume,
			VolumeSize: 1, DeleteOnTermination: true, Tag: tag}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s := waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	if s.Image != nil {
		t.Errorf("image of a volume-backed server = %v, want \"\"", s.Image)
	}
	if len(s.AttachedVolumes) != 1 {
		t.Fatalf("volumes_attached = %+v", s.AttachedVolumes)
	}
	rootID := s.AttachedVolumes[0].ID
	pages, err := volumeattach.List(nova, srv.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	atts, _ := volumeattach.ExtractVolumeAttachments(pages)
	if len(atts) != 1 || atts[0].Device != "/dev/vda" || atts[0].Tag == nil || *atts[0].Tag != tag || atts[0].DeleteOnTermination == nil || !*atts[0].DeleteOnTermination {
		t.Errorf("attachments = %+v", atts)
	}
	root := waitVolume(t, ctx, cinder, rootID, "in-use")
	if root.Bootable != "true" || root.Size != 1 || root.VolumeImageMetadata["image_id"] != img {
		t.Errorf("root volume = %+v", root)
	}
	// The root volume cannot be detached.
	if r := k.compute(t, "DELETE", "/servers/"+srv.ID+"/os-volume_attachments/"+rootID, token, "2.79", ""); r.Status != 400 ||
		!strings.Contains(string(r.Body), "Cannot detach a root device volume") {
		t.Errorf("detach of the root volume: %d %s", r.Status, r.Body)
	}

	// ---- rebuild with another image is refused; with the same image it
	// keeps the volume ----
	r := k.compute(t, "POST", "/servers/"+srv.ID+"/action", token, "2.79", `{"rebuild": {"imageRef": "`+bigImg+`"}}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), "Unable to rebuild with a different image for a volume-backed server.") {
		t.Errorf("rebuild with a new image: %d %s", r.Status, r.Body)
	}

	// ---- createImage: volume snapshots and an image of size 0 ----
	snapImg, err := servers.CreateImage(ctx, nova, srv.ID, servers.CreateImageOpts{Name: "bfv-snap"}).ExtractImageID()
	if err != nil {
		t.Fatal(err)
	}
	im, err := images.Get(ctx, glance, snapImg).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if im.Status != "active" || im.SizeBytes != 0 || !strings.EqualFold(fmt.Sprint(im.Properties["bdm_v2"]), "true") ||
		im.Properties["root_device_name"] != "/dev/vda" {
		t.Errorf("snapshot image = status %s size %d properties %v", im.Status, im.SizeBytes, im.Properties)
	}
	var mapping []map[string]any
	if err := json.Unmarshal([]byte(fmt.Sprint(im.Properties["block_device_mapping"])), &mapping); err != nil || len(mapping) != 1 {
		t.Fatalf("block_device_mapping = %v (%v)", im.Properties["block_device_mapping"], err)
	}
	snapID, _ := mapping[0]["snapshot_id"].(string)
	if mapping[0]["source_type"] != "snapshot" || mapping[0]["boot_index"] != float64(0) || snapID == "" {
		t.Errorf("block_device_mapping = %v", mapping)
	}
	if sn, err := snapshots.Get(ctx, cinder, snapID).Extract(); err != nil || sn.VolumeID != rootID || sn.Status != "available" {
		t.Errorf("snapshot %s = %+v, %v", snapID, sn, err)
	}

	// ---- boot from the snapshot image: a new volume from the snapshot ----
	srv2, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "bfv-from-snap", FlavorRef: "42", Networks: "none", ImageRef: snapImg}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s2 := waitServer(t, ctx, nova, srv2.ID, "ACTIVE")
	if len(s2.AttachedVolumes) != 1 || s2.AttachedVolumes[0].ID == rootID {
		t.Fatalf("volumes of the server from the snapshot image = %+v", s2.AttachedVolumes)
	}
	fromSnap := waitVolume(t, ctx, cinder, s2.AttachedVolumes[0].ID, "in-use")
	if fromSnap.SnapshotID != snapID || fromSnap.Attachments[0].Device != "/dev/vda" {
		t.Errorf("volume from the snapshot image = %+v", fromSnap)
	}

	// ---- boot from an existing volume, with a second, blank one ----
	mine, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 1, ImageID: img, Name: "bfv-mine"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, ctx, cinder, mine.ID, "available")
	srv3, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "bfv-existing", FlavorRef: "42", Networks: "none",
		BlockDevice: []servers.BlockDevice{
			{SourceType: servers.SourceVolume, UUID: mine.ID, DestinationType: servers.DestinationVolume},
			{SourceType: servers.SourceBlank, DestinationType: servers.DestinationVolume, VolumeSize: 1, BootIndex: -1, DeleteOnTermination: true},
		}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s3 := waitServer(t, ctx, nova, srv3.ID, "ACTIVE")
	if len(s3.AttachedVolumes) != 2 {
		t.Fatalf("volumes of the server from an existing volume = %+v", s3.AttachedVolumes)
	}
	blank := s3.AttachedVolumes[0].ID
	if blank == mine.ID {
		blank = s3.AttachedVolumes[1].ID
	}
	if v := waitVolume(t, ctx, cinder, mine.ID, "in-use"); v.Attachments[0].Device != "/dev/vda" {
		t.Errorf("existing volume attached as %+v", v.Attachments)
	}
	if v := waitVolume(t, ctx, cinder, blank, "in-use"); v.Attachments[0].Device != "/dev/vdb" || v.Bootable == "true" {
		t.Errorf("blank volume = %+v", v)
	}
	// The blank volume is an ordinary attached volume: it can be detached.
	if err := volumeattach.Delete(ctx, nova, srv3.ID, blank).ExtractErr(); err != nil {
		t.Errorf("detach the blank volume: %v", err)
	}
	waitVolume(t, ctx, cinder, blank, "available")

	// ---- shelve offloads without an image; unshelve boots from the
	// same volume ----
	if err := servers.Shelve(ctx, nova, srv3.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitServer(t, ctx, nova, srv3.ID, "SHELVED_OFFLOADED")
	if v := waitVolume(t, ctx, cinder, mine.ID, "in-use"); len(v.Attachments) != 1 {
		t.Errorf("boot volume of the shelved server = %+v", v.Attachments)
	}
	if list, err := images.List(glance, images.ListOpts{Name: "bfv-existing-shelved"}).AllPages(ctx); err != nil {
		t.Fatal(err)
	} else if all, _ := images.ExtractImages(list); len(all) != 0 {
		t.Errorf("shelve of a volume-backed server made an image: %+v", all)
	}
	if err := servers.Unshelve(ctx, nova, srv3.ID, servers.UnshelveOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if s := waitServer(t, ctx, nova, srv3.ID, "ACTIVE"); len(s.AttachedVolumes) != 1 || s.AttachedVolumes[0].ID != mine.ID {
		t.Errorf("volumes after unshelve = %+v", s.AttachedVolumes)
	}

	// ---- a build whose volume cannot be created is rolled back ----
	if r := k.do(t, ctx, "POST", "/volume/v3/types", token, `{"volume_type": {"name": "nowhere", "extra_specs": {"volume_backend_name": "nowhere"}}}`); r.Status != 200 {
		t.Fatalf("create type: %d %s", r.Status, r.Body)
	}
	before := countVolumes()
	r = k.compute(t, "POST", "/servers", token, "2.79", `{"server": {"name": "bfv-fails", "flavorRef": "42", "networks": "none",
		"block_device_mapping_v2": [{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "volume_type": "nowhere", "delete_on_termination": true}]}}`)
	if r.Status != 202 {
		t.Fatalf("create with an unplaceable volume: %d %s", r.Status, r.Body)
	}
	var created struct{ Server struct{ ID string } }
	_ = json.Unmarshal(r.Body, &created)
	if f := waitServer(t, ctx, nova, created.Server.ID, "ERROR"); !strings.Contains(fmt.Sprint(f.Fault.Message), "Failure prepping block device") {
		t.Errorf("fault = %+v", f.Fault)
	}
	deadline := time.Now().Add(30 * time.Second)
	for countVolumes() != before {
		if time.Now().After(deadline) {
			t.Fatalf("failed build left %d volumes, want %d", countVolumes(), before)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// ---- delete honours delete_on_termination ----
	for _, id := range []string{srv.ID, srv2.ID, srv3.ID, created.Server.ID} {
		if err := servers.Delete(ctx, nova, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{srv.ID, srv2.ID, srv3.ID} {
		if err := servers.WaitForStatus(ctx, nova, id, "DELETED"); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
			t.Fatal(err)
		}
	}
	waitVolumeGone(t, ctx, cinder, fromSnap.ID)      // delete_on_termination from the image's mapping
	waitVolume(t, ctx, cinder, mine.ID, "available") // not marked: kept
	// The first root volume has a snapshot: as in Nova, Cinder refuses to
	// delete it, and it stays available.
	waitVolume(t, ctx, cinder, rootID, "available")
}
