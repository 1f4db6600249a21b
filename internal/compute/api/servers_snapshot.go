package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// SnapshotImage is the image createImage and shelve create in the image
// service before the host uploads the disk into it.
type SnapshotImage struct {
	Name            string
	DiskFormat      string
	ContainerFormat string
	MinDisk         int64 // GiB
	MinRAM          int64 // MiB
	Properties      map[string]string
}

// ImageCreator is implemented by an ImageLookup that can also create
// (queued) images, as the caller of ctx, so that the snapshot belongs to
// the caller's project.
type ImageCreator interface {
	CreateImage(ctx context.Context, img SnapshotImage) (id string, err error)
	DeleteImage(ctx context.Context, id string) error
}

// snapshotStates are the vm_states a server can be snapshotted in.
var snapshotStates = []string{states.Active, states.Stopped, states.Paused, states.Suspended}

var actSnapshot = taskAction{"createImage", "createImage", ruleCreateImage, snapshotStates, conductor.Snapshot, states.ImageSnapshot, false}

// snapshotImage builds the image of a snapshot of i: the base image's
// formats and properties, Nova's snapshot properties, then the caller's
// metadata.
func (a *API) snapshotImage(r *http.Request, i *store.Instance, name string, md map[string]string) SnapshotImage {
	img := SnapshotImage{Name: name, DiskFormat: "qcow2", ContainerFormat: "bare", MinDisk: i.Flavor.RootGB,
		Properties: map[string]string{}}
	if i.ImageRef != "" && a.images != nil {
		if base, err := a.images.GetImage(ctx(r), i.ImageRef); err == nil {
			for k, v := range base.Properties {
				img.Properties[k] = v
			}
			switch base.DiskFormat {
			case "raw", "qcow2":
				img.DiskFormat = base.DiskFormat
			case "ami":
				img.DiskFormat, img.ContainerFormat = "ami", "ami"
			}
			img.MinRAM = base.MinRAM
			img.MinDisk = max(img.MinDisk, base.MinDisk)
		}
	}
	props := img.Properties
	props["image_type"] = "snapshot"
	props["instance_uuid"] = i.UUID
	props["base_image_ref"] = i.ImageRef
	props["image_location"] = "snapshot"
	props["user_id"] = i.UserID
	for k, v := range md {
		props[k] = v
	}
	return img
}

// snapshotFormat is the disk format the host writes for an image format
// (AMI machine images are raw disks).
func snapshotFormat(diskFormat string) string {
	if diskFormat == "qcow2" {
		return "qcow2"
	}
	return "raw"
}

// startSnapshot creates the image, then the task; if the task cannot
// start the image is deleted again.
func (a *API) startSnapshot(r *http.Request, i *store.Instance, act taskAction, img SnapshotImage, args map[string]string) (string, error) {
	ic, ok := a.images.(ImageCreator)
	if !ok {
		return "", apiutil.Errorf(501, "Snapshots need an image service, and none is configured.").WithCode("notImplemented")
	}
	// State first, so a server that cannot be snapshotted gets no image.
	if !act.noLock {
		if err := a.checkLock(r, i); err != nil {
			return "", err
		}
	}
	if err := checkState(act.name, i, act.vmStates); err != nil {
		return "", err
	}
	id, err := ic.CreateImage(ctx(r), img)
	if err != nil {
		return "", err
	}
	if args == nil {
		args = map[string]string{}
	}
	args["image_id"], args["disk_format"] = id, snapshotFormat(img.DiskFormat)
	if err := a.startTask(r, i, act, &store.Task{Args: args}, nil); err != nil {
		if derr := ic.DeleteImage(context.WithoutCancel(ctx(r)), id); derr != nil {
			a.log.Warn("delete snapshot image of a refused action", "image", id, "err", derr)
		}
		return "", err
	}
	return id, nil
}

func (a *API) createImage(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "name", "metadata")
	if err != nil {
		return nil, err
	}
	name, ok := str(m["name"])
	if !ok || strings.TrimSpace(name) == "" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute createImage. 'name' is a required property")
	}
	if len(name) > 255 {
		return nil, apiutil.BadRequest("Invalid input for field/attribute name. Value: %s. is too long", name)
	}
	var md map[string]string
	if v, ok := m["metadata"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &md); err != nil {
			return nil, apiutil.BadRequest("Invalid input for field/attribute metadata. Value: %s. is not of type 'object' with string values", string(v))
		}
	}
	i, err := a.loadServer(r, id, ruleCreateImage)
	if err != nil {
		return nil, err
	}
	vb, vas, err := a.isVolumeBacked(r, i)
	if err != nil {
		return nil, err
	}
	var imageID string
	if vb {
		imageID, err = a.snapshotVolumeBacked(r, i, vas, a.snapshotImage(r, i, name, md))
	} else {
		imageID, err = a.startSnapshot(r, i, actSnapshot, a.snapshotImage(r, i, name, md), nil)
	}
	if err != nil {
		return nil, err
	}
	if atLeast(r, V2_45) {
		return apiutil.JSON(202, map[string]any{"image_id": imageID}), nil
	}
	h := http.Header{}
	h.Set("Location", apiutil.PublicURL(r)+"/image/v2/images/"+imageID)
	return &apiutil.Response{Status: 202, Header: h}, nil
}

// shelve snapshots the server into "<name>-shelved", powers it off and
// offloads it; unshelve boots from that image and deletes it.
func (a *API) shelve(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	if _, err := args(arg); err != nil {
		return nil, err
	}
	i, err := a.loadServer(r, id, actShelve.rule)
	if err != nil {
		return nil, err
	}
	vb, _, err := a.isVolumeBacked(r, i)
	if err != nil {
		return nil, err
	}
	if _, ok := a.images.(ImageCreator); !ok || i.ImageRef == "" || vb {
		// Nothing to snapshot (volume-backed or no image service): offload only.
		if err := a.startTask(r, i, actShelve, &store.Task{}, nil); err != nil {
			return nil, err
		}
		return &apiutil.Response{Status: 202}, nil
	}
	if _, err := a.startSnapshot(r, i, actShelve, a.snapshotImage(r, i, i.Name+"-shelved", nil), nil); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}
