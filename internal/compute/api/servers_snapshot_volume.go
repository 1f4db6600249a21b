package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// ImageUploader is implemented by an ImageCreator that can upload image
// data as the caller of ctx (the empty data of a volume-backed snapshot
// image, which makes it active).
type ImageUploader interface {
	UploadImage(ctx context.Context, id string, r io.Reader, size int64) error
}

// volumeSnapshotWait bounds how long createImage of a volume-backed
// server waits for its volume snapshots.
const volumeSnapshotWait = 2 * time.Minute

// imageBDM is one entry of the block_device_mapping property of a
// volume-backed snapshot image (Nova's bdm_v2 format).
type imageBDM struct {
	SourceType          string  `json:"source_type"`
	DestinationType     string  `json:"destination_type"`
	SnapshotID          string  `json:"snapshot_id"`
	VolumeID            *string `json:"volume_id"`
	ImageID             *string `json:"image_id"`
	VolumeSize          int     `json:"volume_size"`
	BootIndex           *int    `json:"boot_index"`
	DeviceName          string  `json:"device_name"`
	DeleteOnTermination bool    `json:"delete_on_termination"`
	DiskBus             string  `json:"disk_bus"`
	DeviceType          string  `json:"device_type"`
	GuestFormat         *string `json:"guest_format"`
	NoDevice            *bool   `json:"no_device"`
	Tag                 *string `json:"tag"`
	VolumeType          *string `json:"volume_type"`
}

// snapshotVolumeBacked is createImage of a volume-backed server, as Nova
// does it: each attached volume is snapshotted in the block storage
// service, and the image holds no data (size 0) but the mapping that
// recreates the volumes from those snapshots (block_device_mapping,
// bdm_v2, root_device_name). Booting from the image creates a
// volume-backed server again. On failure the snapshots already taken are
// deleted.
func (a *API) snapshotVolumeBacked(r *http.Request, i *store.Instance, vas []VolumeAttachment, img SnapshotImage) (string, error) {
	ic, ok := a.images.(ImageCreator)
	bs, ok2 := a.volumes.(BlockDeviceService)
	if !ok || !ok2 {
		return "", apiutil.Errorf(501, "Snapshots of volume-backed servers need the image and block storage services.").WithCode("notImplemented")
	}
	if err := a.checkLock(r, i); err != nil {
		return "", err
	}
	if err := checkState("createImage", i, snapshotStates); err != nil {
		return "", err
	}
	if i.TaskState != nil {
		return "", conflictState("createImage", i)
	}
	var snaps []string
	undo := func() {
		for _, id := range snaps {
			if err := bs.DeleteSnapshot(context.WithoutCancel(ctx(r)), id); err != nil {
				a.log.Warn("delete snapshot of a failed server snapshot", "snapshot", id, "err", err)
			}
		}
	}
	var bdms []imageBDM
	for _, va := range vas {
		if !va.Attached {
			continue
		}
		v, err := bs.VolumeInfo(ctx(r), va.VolumeID)
		if err != nil {
			undo()
			return "", err
		}
		id, err := bs.SnapshotVolume(ctx(r), va.VolumeID, "snapshot for "+img.Name)
		if err != nil {
			undo()
			return "", err
		}
		snaps = append(snaps, id)
		b := imageBDM{SourceType: "snapshot", DestinationType: "volume", SnapshotID: id, VolumeSize: v.Size,
			DeviceName: va.Device, DeleteOnTermination: va.DeleteOnTermination, DiskBus: "virtio", DeviceType: "disk", Tag: va.Tag}
		if va.Device == conductor.RootDeviceName {
			zero := 0
			b.BootIndex = &zero
		}
		bdms = append(bdms, b)
	}
	slices.SortStableFunc(bdms, func(x, y imageBDM) int {
		if x.BootIndex != nil && y.BootIndex == nil {
			return -1
		}
		if x.BootIndex == nil && y.BootIndex != nil {
			return 1
		}
		return 0
	})
	if err := a.waitSnapshots(r, bs, snaps); err != nil {
		undo()
		return "", err
	}
	raw, err := json.Marshal(bdms)
	if err != nil {
		undo()
		return "", internal(err)
	}
	img.Properties[bdmImageProperty] = string(raw)
	img.Properties[bdmV2Property] = "True"
	img.Properties[rootDeviceProperty] = conductor.RootDeviceName
	// The data is empty: a raw disk of size 0 (Nova drops the formats;
	// the image service wants them to make the image active).
	img.MinDisk, img.DiskFormat, img.ContainerFormat = 0, "raw", "bare"
	id, err := ic.CreateImage(ctx(r), img)
	if err != nil {
		undo()
		return "", err
	}
	if up, ok := a.images.(ImageUploader); ok {
		// No data: the image is a bucket of properties, active at size 0.
		if err := up.UploadImage(ctx(r), id, bytes.NewReader(nil), 0); err != nil {
			if derr := ic.DeleteImage(context.WithoutCancel(ctx(r)), id); derr != nil {
				a.log.Warn("delete image of a failed server snapshot", "image", id, "err", derr)
			}
			undo()
			return "", err
		}
	}
	a.log.Info("snapshot of volume-backed server", "server", i.UUID, "image", id, "snapshots", snaps)
	return id, nil
}

// waitSnapshots waits for volume snapshots to be available.
func (a *API) waitSnapshots(r *http.Request, bs BlockDeviceService, ids []string) error {
	deadline := time.Now().Add(volumeSnapshotWait)
	for _, id := range ids {
		for {
			s, err := bs.SnapshotInfo(ctx(r), id)
			if err != nil {
				return err
			}
			if s.Status == "available" {
				break
			}
			if s.Status != "creating" || time.Now().After(deadline) {
				return fmt.Errorf("volume snapshot %s is %s", id, s.Status)
			}
			select {
			case <-ctx(r).Done():
				return ctx(r).Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
