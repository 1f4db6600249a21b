package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Block device mapping (block_device_mapping_v2) on server create: the
// request is checked here, as Nova's API checks it, and handed to the
// build as a list of conductor.BlockDevice; the conductor creates and
// attaches the volumes (conductor/volumes.go).

// bdmItemSchema is one block_device_mapping_v2 entry (Nova's schema; tag
// and volume_type are checked against the microversion after it).
const bdmItemSchema = `{"type": "object", "properties": {
	"source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
	"uuid": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]*$"},
	"image_id": {"type": "string", "format": "uuid"},
	"destination_type": {"type": "string", "enum": ["local", "volume"]},
	"guest_format": {"type": "string", "maxLength": 255},
	"device_type": {"type": "string", "maxLength": 255},
	"disk_bus": {"type": "string", "maxLength": 255},
	"boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
	"device_name": {"type": "string", "maxLength": 255},
	"volume_size": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1, "maximum": 2147483647},
	"delete_on_termination": ` + booleanSchema + `,
	"no_device": {},
	"connection_info": {"type": "string", "maxLength": 16777215},
	"tag": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"},
	"volume_type": {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
}, "additionalProperties": false}`

// bdmItem is one block_device_mapping_v2 entry as the client sent it.
type bdmItem struct {
	SourceType          string          `json:"source_type"`
	DestinationType     string          `json:"destination_type"`
	UUID                string          `json:"uuid"`
	BootIndex           json.RawMessage `json:"boot_index"`
	VolumeSize          json.RawMessage `json:"volume_size"`
	DeleteOnTermination json.RawMessage `json:"delete_on_termination"`
	DeviceName          string          `json:"device_name"`
	DiskBus             string          `json:"disk_bus"`
	DeviceType          string          `json:"device_type"`
	GuestFormat         string          `json:"guest_format"`
	VolumeType          *string         `json:"volume_type"`
	Tag                 *string         `json:"tag"`
	NoDevice            json.RawMessage `json:"no_device"`
	// The snapshot/volume ids of image-defined mappings (the
	// block_device_mapping property of a volume-backed snapshot).
	SnapshotID string `json:"snapshot_id"`
	VolumeID   string `json:"volume_id"`
}

// Nova's messages.
const (
	msgBDMInvalid      = "Block Device Mapping is Invalid: "
	msgBootSequence    = msgBDMInvalid + "Boot sequence for the instance and image/block device mapping combination is not valid."
	maxLocalBlockDevs  = 3 // Nova's max_local_block_devices
	bdmImageProperty   = "block_device_mapping"
	bdmV2Property      = "bdm_v2"
	rootDeviceProperty = "root_device_name"
)

func bdmError(format string, args ...any) error {
	return apiutil.BadRequest(msgBDMInvalid+format, args...)
}

// flexInt reads an integer sent as a number or a string; null or absent
// gives def.
func flexInt(raw json.RawMessage, def int) int {
	if len(raw) == 0 || string(raw) == "null" {
		return def
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return def
}

// bdmPlan is a create request's mapping after the structural checks.
type bdmPlan struct {
	devices []conductor.BlockDevice // what the build maps (no image-to-local root)
	// imageRef is the image the server boots from when the mapping's
	// boot device is the image itself (source image, destination local).
	imageRef string
	// volumeBacked: the boot device (boot_index 0) is a volume.
	volumeBacked bool
	// ephemerals are the blank local mappings' disks in request order,
	// each its own disk replacing the flavor's ephemeral disk; swapMB is
	// the swap mapping's size (MiB, Nova's unit for swap) and hasSwap
	// tells whether one was given.
	ephemerals []store.LocalDisk
	swapMB     int64
	hasSwap    bool
}

// planBlockDevices applies Nova's rules that need no other service: the
// fields of each entry, the source/destination combinations, the boot
// sequence and the local disk limits of the flavor.
func planBlockDevices(r *http.Request, items []bdmItem, imageRef string, flavor *store.Flavor, maxCount int64) (*bdmPlan, error) {
	p := &bdmPlan{imageRef: imageRef}
	var boots []int
	locals, swaps := 0, 0
	ephemeralGB, swapMB := int64(0), int64(0)
	for n, it := range items {
		if it.Tag != nil && !(atLeast(r, apiutil.Version{Major: 2, Minor: 42}) || isVersion(r, 2, 32)) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute %d. Additional properties are not allowed ('tag' was unexpected)", n)
		}
		if it.VolumeType != nil && !atLeast(r, apiutil.Version{Major: 2, Minor: 67}) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute %d. Additional properties are not allowed ('volume_type' was unexpected)", n)
		}
		if len(it.NoDevice) > 0 && string(it.NoDevice) != "null" && string(it.NoDevice) != "false" {
			continue // suppresses a device; nothing to map
		}
		if it.SourceType == "" {
			return nil, bdmError("Some required fields are missing")
		}
		uuid := it.UUID
		if uuid == "" {
			uuid = map[string]string{"snapshot": it.SnapshotID, "volume": it.VolumeID}[it.SourceType]
		}
		dst := it.DestinationType
		if dst == "" {
			dst = "local"
			if it.SourceType == "volume" || it.SourceType == "snapshot" {
				dst = "volume"
			}
		}
		boot := flexInt(it.BootIndex, -1)
		if boot < 0 {
			boot = -1
		}
		size := flexInt(it.VolumeSize, 0)
		volType := ""
		if it.VolumeType != nil {
			volType = *it.VolumeType
		}
		switch {
		case it.SourceType == "blank" && uuid != "":
			return nil, bdmError("Invalid device UUID.")
		case it.SourceType != "blank" && uuid == "":
			return nil, bdmError("Missing device UUID.")
		case it.SourceType == "image" && dst == "local" && boot != 0:
			return nil, bdmError("Mapping image to local is not supported.")
		case dst == "local" && (it.SourceType == "volume" || it.SourceType == "snapshot"):
			return nil, bdmError("Mapping %s to local is not supported.", it.SourceType)
		case volType != "" && dst == "local":
			return nil, bdmError("Specifying a volume_type with destination_type=local is not supported.")
		case volType != "" && it.SourceType == "volume":
			return nil, bdmError("Specifying volume type to existing volume is not supported.")
		case it.SourceType == "image" && dst == "volume" && size == 0:
			return nil, apiutil.BadRequest("Images with destination_type 'volume' need to have a non-zero size specified")
		case it.SourceType == "blank" && dst == "volume" && size == 0:
			return nil, apiutil.BadRequest("Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size")
		case it.DiskBus != "" && it.DiskBus != "virtio":
			return nil, bdmError("disk_bus %q is not supported: disks are attached as virtio.", it.DiskBus)
		case it.DeviceType != "" && it.DeviceType != "disk":
			return nil, bdmError("device_type %q is not supported: only disks are.", it.DeviceType)
		case dst == "volume" && it.SourceType == "volume" && maxCount > 1:
			return nil, apiutil.BadRequest("Cannot attach one or more volumes to multiple instances")
		}
		if it.DeviceName != "" && (strings.ContainsAny(it.DeviceName, " \t") || len(it.DeviceName) > 255) {
			return nil, bdmError("Device name contains spaces.")
		}
		if boot >= 0 {
			boots = append(boots, boot)
		}
		if dst == "local" {
			locals++
			if it.SourceType == "image" {
				// The image itself is the root disk: an ordinary image boot.
				if p.imageRef == "" {
					p.imageRef = uuid
				}
				continue
			}
			// Blank local: a swap disk (its volume_size in MiB, compared
			// with the flavor's swap as Nova does) or an ephemeral disk of
			// its own, sized from the flavor's ephemeral space.
			if it.GuestFormat == "swap" {
				swaps++
				if swaps == 1 {
					swapMB = int64(size)
				}
				continue
			}
			gb := int64(size)
			if size == 0 {
				gb = flavor.EphemeralGB
			}
			ephemeralGB += gb
			if gb > 0 {
				p.ephemerals = append(p.ephemerals, store.LocalDisk{SizeGB: gb, GuestFormat: it.GuestFormat})
			}
			continue
		}
		bd := conductor.BlockDevice{SourceType: it.SourceType, DestinationType: dst, UUID: uuid, BootIndex: boot,
			VolumeSize: size, DeleteOnTermination: len(it.DeleteOnTermination) > 0 && boolValue(it.DeleteOnTermination),
			DeviceName: it.DeviceName, VolumeType: volType, GuestFormat: it.GuestFormat, Tag: it.Tag}
		if boot == 0 {
			p.volumeBacked = true
		}
		p.devices = append(p.devices, bd)
	}
	// Nova's checks, in Nova's order.
	if ephemeralGB > flavor.EphemeralGB {
		return nil, apiutil.BadRequest("Ephemeral disks requested are larger than the instance type allows. If no size is given in one block device mapping, flavor ephemeral size will be used.")
	}
	if swaps > 1 {
		return nil, bdmError("More than one swap drive requested.")
	}
	if swapMB > flavor.Swap {
		return nil, apiutil.BadRequest("Swap drive requested is larger than instance type allows.")
	}
	if locals > maxLocalBlockDevs {
		return nil, bdmError("You specified more local devices than the limit allows")
	}
	if swaps == 1 {
		p.hasSwap, p.swapMB = true, swapMB
		if swapMB == 0 {
			p.swapMB = flavor.Swap
		}
	}
	slices.Sort(boots)
	for i, b := range boots {
		if b != i {
			return nil, apiutil.BadRequest(msgBootSequence)
		}
	}
	if len(boots) == 0 && p.imageRef == "" {
		return nil, apiutil.BadRequest(msgBootSequence)
	}
	return p, nil
}

func isVersion(r *http.Request, major, minor int) bool {
	v := apiutil.VersionOf(r.Context())
	return v.Major == major && v.Minor == minor
}

// VolumeInfo is a volume as server create checks it.
type VolumeInfo struct {
	ID, Status string
	Size       int // GiB
	Bootable   bool
	Zone       string
}

// SnapshotInfo is a volume snapshot as server create checks it.
type SnapshotInfo struct {
	ID, Status string
	Size       int // GiB
}

// ErrSnapshotNotFound is returned by a BlockDeviceService for a snapshot
// the caller cannot see.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// BlockDeviceService is implemented by a VolumeService that can also look
// up volumes, snapshots and types (server create with volumes) and
// snapshot volumes (createImage of a volume-backed server), as the caller
// of ctx.
type BlockDeviceService interface {
	VolumeInfo(ctx context.Context, id string) (VolumeInfo, error)
	SnapshotInfo(ctx context.Context, id string) (SnapshotInfo, error)
	// VolumeTypeExists reports whether a type of that name or id exists.
	VolumeTypeExists(ctx context.Context, nameOrID string) (bool, error)
	// SnapshotVolume snapshots a volume even while it is attached.
	SnapshotVolume(ctx context.Context, volumeID, name string) (string, error)
	DeleteSnapshot(ctx context.Context, id string) error
}

// checkBlockDevices applies the rules that ask the volume and image
// services: the sources exist and are usable, the volume types exist,
// and the boot volume is not smaller than its image needs.
func (a *API) checkBlockDevices(r *http.Request, p *bdmPlan) error {
	if len(p.devices) == 0 {
		return nil
	}
	bs, ok := a.volumes.(BlockDeviceService)
	if a.volumes == nil || !ok {
		return bdmError("volumes are not available: this cloud has no block storage service.")
	}
	for i := range p.devices {
		d := &p.devices[i]
		switch d.SourceType {
		case "volume":
			v, err := bs.VolumeInfo(ctx(r), d.UUID)
			if errors.Is(err, ErrVolumeNotFound) || apiutil.AsError(err).Status == 404 {
				return bdmError("failed to get volume %s.", d.UUID)
			}
			if err != nil {
				return err
			}
			if v.Status != "available" {
				return apiutil.BadRequest("Invalid volume: volume '%s' status must be 'available'. Currently in '%s'", v.ID, v.Status)
			}
			d.VolumeSize = v.Size
		case "snapshot":
			s, err := bs.SnapshotInfo(ctx(r), d.UUID)
			if errors.Is(err, ErrSnapshotNotFound) || apiutil.AsError(err).Status == 404 {
				return bdmError("failed to get snapshot %s.", d.UUID)
			}
			if err != nil {
				return err
			}
			if s.Status != "available" {
				return apiutil.BadRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values")
			}
			if d.VolumeSize == 0 {
				d.VolumeSize = s.Size
			}
			if d.VolumeSize < s.Size {
				return apiutil.BadRequest("Invalid input received: Volume size '%d' must be an integer and greater than 0 (snapshot size %dGB).", d.VolumeSize, s.Size)
			}
		case "image":
			if a.images == nil {
				break
			}
			img, err := a.images.GetImage(ctx(r), d.UUID)
			if errors.Is(err, ErrImageNotFound) || apiutil.AsError(err).Status == 404 {
				return bdmError("failed to get image %s.", d.UUID)
			}
			if err != nil {
				return internal(err)
			}
			if img.Status != "active" {
				return apiutil.BadRequest("Image %s is not active.", d.UUID)
			}
			const gib = 1 << 30
			size := int64(d.VolumeSize) * gib
			if img.MinDisk*gib > size {
				return apiutil.BadRequest("Volume is smaller than the minimum size specified in image metadata. Volume size is %d bytes, minimum size is %d bytes.", size, img.MinDisk*gib)
			}
			if img.Size > size {
				return apiutil.BadRequest("Volume is smaller than the minimum size specified in image metadata. Volume size is %d bytes, minimum size is %d bytes.", size, img.Size)
			}
		}
		if d.VolumeType != "" {
			ok, err := bs.VolumeTypeExists(ctx(r), d.VolumeType)
			if err != nil {
				return err
			}
			if !ok {
				return apiutil.BadRequest("Volume type %s could not be found.", d.VolumeType)
			}
		}
	}
	return nil
}

// imageBlockDevices returns the mapping an image defines (the
// block_device_mapping property of a volume-backed server's snapshot,
// with bdm_v2 true), nil for an ordinary image.
func imageBlockDevices(img *Image) ([]bdmItem, error) {
	if img == nil || !strings.EqualFold(img.Properties[bdmV2Property], "true") || img.Properties[bdmImageProperty] == "" {
		return nil, nil
	}
	var items []bdmItem
	if err := json.Unmarshal([]byte(img.Properties[bdmImageProperty]), &items); err != nil {
		return nil, apiutil.BadRequest("Image %s is unacceptable: its block_device_mapping property is not a list of mappings.", img.ID)
	}
	return items, nil
}

// mergeImageBlockDevices puts the request's mappings over the image's:
// a request entry replaces the image's entry of the same device, and a
// request boot device replaces the image's boot device.
func mergeImageBlockDevices(image, req []bdmItem) []bdmItem {
	reqBoot := slices.ContainsFunc(req, func(b bdmItem) bool { return flexInt(b.BootIndex, -1) == 0 })
	var out []bdmItem
	for _, ib := range image {
		if reqBoot && flexInt(ib.BootIndex, -1) == 0 {
			continue
		}
		if ib.DeviceName != "" && slices.ContainsFunc(req, func(b bdmItem) bool { return b.DeviceName == ib.DeviceName }) {
			continue
		}
		out = append(out, ib)
	}
	return append(out, req...)
}

// isVolumeBacked reports whether a server boots from a volume (a volume
// attached on the root device).
func (a *API) isVolumeBacked(r *http.Request, i *store.Instance) (bool, []VolumeAttachment, error) {
	vas, err := a.serverVolumes(r, i)
	if err != nil {
		return false, nil, err
	}
	for _, va := range vas {
		if va.Device == conductor.RootDeviceName {
			return true, vas, nil
		}
	}
	return false, vas, nil
}
