package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/image"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/volume"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

// newVolume builds the block storage service with its backends: the file
// backend always, the LVM backend when a volume group is configured.
func newVolume(deps service.Deps, cfg *config.Config, img *image.Service, exists func(context.Context, string) (bool, error)) (*volume.Service, error) {
	fb, err := backend.NewFile("file", filepath.Join(cfg.DataDir, "volumes"), cfg.Volume.FileFormat)
	if err != nil {
		return nil, err
	}
	backends := []backend.Backend{fb}
	if vg := cfg.Volume.LVMVolumeGroup; vg != "" {
		lb, err := backend.NewLVM(context.Background(), "lvm", vg, cfg.Volume.LVMThinPool)
		if err != nil {
			return nil, err
		}
		backends = append(backends, lb)
	}
	v, err := volume.New(deps, volume.Config{Backends: backends, Images: volumeImages{img}, InstanceExists: exists,
		BackupDir: filepath.Join(cfg.DataDir, "volume-backups")})
	if err != nil {
		return nil, fmt.Errorf("volume service: %w", err)
	}
	return v, nil
}

// volumeImages is the image service as the volume service uses it.
type volumeImages struct{ s *image.Service }

func (v volumeImages) Get(ctx context.Context, id string) (*volume.ImageInfo, error) {
	img, err := v.s.Get(ctx, id)
	if err != nil {
		if apiutil.AsError(err).Status == 404 {
			return nil, volume.ErrImageNotFound
		}
		return nil, err
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out := &volume.ImageInfo{ID: img.ID, Name: str(img.Name), Status: img.Status, DiskFormat: str(img.DiskFormat),
		ContainerFormat: str(img.ContainerFormat), Checksum: str(img.Checksum), MinDisk: img.MinDisk, MinRAM: img.MinRAM,
		Properties: img.Properties}
	if img.Size != nil {
		out.Size = *img.Size
	}
	return out, nil
}

func (v volumeImages) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	return localImages(v).Open(ctx, id)
}

func (v volumeImages) Create(ctx context.Context, name, diskFormat, containerFormat, visibility string, protected bool) (string, error) {
	img, err := v.s.Create(ctx, map[string]any{"name": name, "disk_format": diskFormat, "container_format": containerFormat,
		"visibility": visibility, "protected": protected})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

func (v volumeImages) Upload(ctx context.Context, id string, r io.Reader, size int64) error {
	return v.s.Upload(localImages(v).ctx(ctx), id, r, size)
}

// novaVolumes is the volume service as the compute API uses it.
type novaVolumes struct{ s *volume.Service }

func (n novaVolumes) Reserve(ctx context.Context, volumeID, serverID, host, device string, dot bool, tag *string) (api.VolumeAttachment, api.VolumeConnection, error) {
	a, _, info, err := n.s.CreateAttachment(ctx, volume.AttachRequest{VolumeID: volumeID, InstanceUUID: serverID,
		Connector: map[string]any{"host": host, "mountpoint": device}, DeleteOnTermination: dot, Tag: tag, Mountpoint: &device})
	if err != nil {
		if apiutil.AsError(err).Status == 404 {
			return api.VolumeAttachment{}, api.VolumeConnection{}, api.ErrVolumeNotFound
		}
		return api.VolumeAttachment{}, api.VolumeConnection{}, err
	}
	data, _ := info["data"].(map[string]any)
	conn := api.VolumeConnection{}
	conn.Path, _ = data["device_path"].(string)
	conn.Format, _ = data["format"].(string)
	conn.ReadOnly = data["access_mode"] == "ro"
	return novaAttachment(a), conn, nil
}

func novaAttachment(a *volume.Attachment) api.VolumeAttachment {
	va := api.VolumeAttachment{AttachmentID: a.ID, VolumeID: a.VolumeID, Tag: a.Tag,
		DeleteOnTermination: a.DeleteOnTermination, Attached: a.Status == volume.AttachAttached}
	if a.InstanceUUID != nil {
		va.ServerID = *a.InstanceUUID
	}
	if a.Mountpoint != nil {
		va.Device = *a.Mountpoint
	}
	return va
}

func (n novaVolumes) Complete(ctx context.Context, id, device string) error {
	return n.s.CompleteAttachment(ctx, id, device)
}

func (n novaVolumes) Abort(ctx context.Context, id string) { _, _ = n.s.DeleteAttachment(ctx, id) }

func (n novaVolumes) BeginDetach(ctx context.Context, id string) error {
	return n.s.BeginDetach(ctx, id)
}

func (n novaVolumes) RollDetach(ctx context.Context, volumeID string) { n.s.RollDetach(ctx, volumeID) }

func (n novaVolumes) Detach(ctx context.Context, id string) error {
	_, err := n.s.DeleteAttachment(ctx, id)
	return err
}

func (n novaVolumes) List(ctx context.Context, serverID string) ([]api.VolumeAttachment, error) {
	as, err := n.s.InstanceAttachments(ctx, serverID)
	if err != nil {
		return nil, err
	}
	out := make([]api.VolumeAttachment, len(as))
	for i, a := range as {
		out[i] = novaAttachment(a)
	}
	return out, nil
}
