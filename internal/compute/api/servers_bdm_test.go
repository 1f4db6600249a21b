package api

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// TestPlanBlockDevices checks Nova's rules on block_device_mapping_v2
// that need no other service, entry by entry and as a whole.
func TestPlanBlockDevices(t *testing.T) {
	const img = "1e0c6a7e-0000-4000-8000-000000000001"
	flavor := &store.Flavor{RootGB: 1, EphemeralGB: 2, Swap: 512}
	cases := []struct {
		name, version, bdm, imageRef string
		maxCount                     int64
		err                          string // substring of the 400's message; "" for success
		volumeBacked                 bool
		devices                      int
		ephemerals                   string // the ephemeral disks' sizes, "1,1"
		swapMB                       int64  // -1: no swap mapping
		wantImage                    string
	}{
		{name: "image to new volume", bdm: `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "volume", "volume_size": 2, "boot_index": "0"}]`,
			volumeBacked: true, devices: 1},
		{name: "existing volume, destination implied", bdm: `[{"source_type": "volume", "uuid": "v1", "boot_index": 0}]`, volumeBacked: true, devices: 1},
		{name: "image to local is the image boot", bdm: `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 0}]`,
			wantImage: img},
		{name: "image boot plus a blank volume", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": null}]`,
			devices: 1, wantImage: img},
		{name: "ephemeral disks within the flavor", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "volume_size": 1},
			{"source_type": "blank", "destination_type": "local"}]`, err: "larger than the instance type allows"},
		{name: "one ephemeral disk of the flavor's size", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local"}]`, ephemerals: "2"},
		{name: "two ephemeral disks summing to the flavor's", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "volume_size": 1},
			{"source_type": "blank", "destination_type": "local", "volume_size": "1", "guest_format": "ext4"}]`, ephemerals: "1,1"},
		{name: "ephemeral disks beyond the flavor", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "volume_size": 2},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1}]`,
			err: "Ephemeral disks requested are larger than the instance type allows. If no size is given in one block device mapping, flavor ephemeral size will be used."},
		{name: "ephemeral disk on a flavor without ephemeral space", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "volume_size": 3}]`,
			err: "Ephemeral disks requested are larger than the instance type allows."},
		{name: "swap beyond the flavor (MiB)", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 513}]`,
			err: "Swap drive requested is larger than instance type allows."},
		{name: "smaller swap replaces the flavor's", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 256}]`,
			swapMB: 256},
		{name: "swap without size is the flavor's", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "guest_format": "swap"}]`,
			swapMB: 512},
		{name: "two swap disks", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 1},
			{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 1}]`,
			err: "Block Device Mapping is Invalid: More than one swap drive requested."},
		{name: "two ephemerals and swap", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "volume_size": 1},
			{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": 128},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1}]`, ephemerals: "1,1", swapMB: 128},
		{name: "two ephemerals, swap and the image root", imageRef: img, bdm: `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 0},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1}, {"source_type": "blank", "destination_type": "local", "volume_size": 1},
			{"source_type": "blank", "destination_type": "local", "guest_format": "swap"}]`,
			err: "Block Device Mapping is Invalid: You specified more local devices than the limit allows"},
		{name: "three local disks are the limit", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "local", "volume_size": 1},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1}, {"source_type": "blank", "destination_type": "local", "guest_format": "swap"}]`,
			ephemerals: "1,1", swapMB: 512},
		{name: "no boot device", bdm: `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1}]`, err: "Boot sequence"},
		{name: "two boot index 0", bdm: `[{"source_type": "volume", "uuid": "a", "boot_index": 0}, {"source_type": "volume", "uuid": "b", "boot_index": 0}]`, err: "Boot sequence"},
		{name: "boot index gap", bdm: `[{"source_type": "volume", "uuid": "a", "boot_index": 0}, {"source_type": "volume", "uuid": "b", "boot_index": 2}]`, err: "Boot sequence"},
		{name: "no source type", bdm: `[{"uuid": "a", "boot_index": 0}]`, err: "Some required fields are missing"},
		{name: "blank with uuid", bdm: `[{"source_type": "blank", "uuid": "a", "destination_type": "volume", "volume_size": 1, "boot_index": 0}]`, err: "Invalid device UUID."},
		{name: "volume without uuid", bdm: `[{"source_type": "volume", "boot_index": 0}]`, err: "Missing device UUID."},
		{name: "snapshot to local", bdm: `[{"source_type": "snapshot", "uuid": "s", "destination_type": "local", "boot_index": 0}]`, err: "Mapping snapshot to local is not supported."},
		{name: "image to local not first", imageRef: img, bdm: `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 1}]`,
			err: "Mapping image to local is not supported."},
		{name: "image volume without size", bdm: `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "volume", "boot_index": 0}]`,
			err: "Images with destination_type 'volume' need to have a non-zero size specified"},
		{name: "blank volume without size", imageRef: img, bdm: `[{"source_type": "blank", "destination_type": "volume"}]`, err: "Blank volumes"},
		{name: "volume_type before 2.67", version: "2.66", bdm: `[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "volume_type": "t"}]`,
			err: "('volume_type' was unexpected)"},
		{name: "volume_type of an existing volume", version: "2.67", bdm: `[{"source_type": "volume", "uuid": "v", "boot_index": 0, "volume_type": "t"}]`,
			err: "Specifying volume type to existing volume is not supported."},
		{name: "tag at 2.32", version: "2.32", bdm: `[{"source_type": "volume", "uuid": "v", "boot_index": 0, "tag": "x"}]`, volumeBacked: true, devices: 1},
		{name: "tag at 2.33", version: "2.33", bdm: `[{"source_type": "volume", "uuid": "v", "boot_index": 0, "tag": "x"}]`, err: "('tag' was unexpected)"},
		{name: "existing volume to two servers", maxCount: 2, bdm: `[{"source_type": "volume", "uuid": "v", "boot_index": 0}]`,
			err: "Cannot attach one or more volumes to multiple instances"},
		{name: "ide bus", bdm: `[{"source_type": "volume", "uuid": "v", "boot_index": 0, "disk_bus": "ide"}]`, err: "disk_bus"},
		{name: "cdrom", bdm: `[{"source_type": "volume", "uuid": "v", "boot_index": 0, "device_type": "cdrom"}]`, err: "device_type"},
		{name: "too many local disks", imageRef: img, bdm: `[{"source_type": "image", "uuid": "` + img + `", "destination_type": "local", "boot_index": 0},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1}, {"source_type": "blank", "destination_type": "local", "guest_format": "swap"},
			{"source_type": "blank", "destination_type": "local", "volume_size": 1}]`, err: "more local devices than the limit allows"},
		{name: "no_device entries are skipped", imageRef: img, bdm: `[{"device_name": "/dev/vdb", "no_device": true}]`, wantImage: img},
	}
	mv := Microversions
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/servers", nil)
			v := c.version
			if v == "" {
				v = "2.79"
			}
			r.Header.Set("OpenStack-API-Version", "compute "+v)
			r, err := mv.Before(r)
			if err != nil {
				t.Fatal(err)
			}
			var items []bdmItem
			if err := json.Unmarshal([]byte(c.bdm), &items); err != nil {
				t.Fatal(err)
			}
			max := c.maxCount
			if max == 0 {
				max = 1
			}
			p, err := planBlockDevices(r, items, c.imageRef, flavor, max)
			if c.err != "" {
				ae := apiutil.AsError(err)
				if err == nil || ae.Status != 400 || !strings.Contains(ae.Message, c.err) {
					t.Fatalf("err = %v, want a 400 with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var eph []string
			for _, e := range p.ephemerals {
				eph = append(eph, strconv.FormatInt(e.SizeGB, 10))
			}
			swap := int64(-1)
			if p.hasSwap {
				swap = p.swapMB
			}
			if c.swapMB == 0 {
				c.swapMB = -1
			}
			if p.volumeBacked != c.volumeBacked || len(p.devices) != c.devices || p.imageRef != c.wantImage && c.wantImage != "" ||
				strings.Join(eph, ",") != c.ephemerals || swap != c.swapMB {
				t.Errorf("plan = %+v", p)
			}
		})
	}
}

// TestMergeImageBlockDevices: a request's mapping replaces the image's
// entry of the same device, and its boot device replaces the image's.
func TestMergeImageBlockDevices(t *testing.T) {
	image := []bdmItem{
		{SourceType: "snapshot", SnapshotID: "s-root", BootIndex: json.RawMessage("0"), DeviceName: "/dev/vda"},
		{SourceType: "snapshot", SnapshotID: "s-data", DeviceName: "/dev/vdb"},
	}
	got := mergeImageBlockDevices(image, []bdmItem{{SourceType: "blank", DeviceName: "/dev/vdb", VolumeSize: json.RawMessage("1")}})
	if len(got) != 2 || got[0].SnapshotID != "s-root" || got[1].SourceType != "blank" {
		t.Errorf("device override: %+v", got)
	}
	got = mergeImageBlockDevices(image, []bdmItem{{SourceType: "volume", UUID: "v", BootIndex: json.RawMessage("0")}})
	if len(got) != 2 || got[0].SnapshotID != "s-data" || got[1].UUID != "v" {
		t.Errorf("boot override: %+v", got)
	}
}
