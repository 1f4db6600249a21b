package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
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
	conn.QoS, _ = data["qos_specs"].(map[string]string)
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

// ListMany implements the compute API's batch lookup for server lists.
func (n novaVolumes) ListMany(ctx context.Context, serverIDs []string) (map[string][]api.VolumeAttachment, error) {
	m, err := n.s.InstancesAttachments(ctx, serverIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]api.VolumeAttachment, len(m))
	for id, as := range m {
		for _, a := range as {
			out[id] = append(out[id], novaAttachment(a))
		}
	}
	return out, nil
}

// conductorVolumes is the volume service as the compute conductor uses
// it for block device mappings: volumes and attachments are made as the
// server's owner (the project pays the quota), the rest as the compute
// service.
type conductorVolumes struct{ s *volume.Service }

func ownerCtx(ctx context.Context, o conductor.Owner) context.Context {
	return auth.With(ctx, &auth.Context{UserID: o.UserID, ProjectID: o.ProjectID,
		Roles: []auth.Role{{Name: "member"}, {Name: "reader"}}})
}

func (c conductorVolumes) CreateVolume(ctx context.Context, o conductor.Owner, req conductor.VolumeRequest) (string, error) {
	name, desc := req.Name, req.Description
	v, err := c.s.Create(ownerCtx(ctx, o), volume.CreateRequest{Name: &name, Description: &desc, Size: req.Size,
		Type: req.VolumeType, ImageID: req.ImageID, SnapshotID: req.SnapshotID})
	if err != nil {
		return "", err
	}
	return v.ID, nil
}

func (c conductorVolumes) GetVolume(ctx context.Context, id string) (conductor.VolumeInfo, error) {
	v, err := c.s.Get(localImages{}.ctx(ctx), id)
	if err != nil {
		return conductor.VolumeInfo{}, err
	}
	return conductor.VolumeInfo{ID: v.ID, Status: v.Status, Size: v.Size}, nil
}

func (c conductorVolumes) DeleteVolume(ctx context.Context, o conductor.Owner, id string) error {
	err := c.s.Delete(ownerCtx(ctx, o), id, false, false)
	if err != nil && apiutil.AsError(err).Status == 404 {
		return nil
	}
	return err
}

func (c conductorVolumes) Attach(ctx context.Context, o conductor.Owner, volumeID, serverID, host, device string, dot bool, tag *string) (string, rpc.Volume, error) {
	octx := ownerCtx(ctx, o)
	a, _, info, err := c.s.CreateAttachment(octx, volume.AttachRequest{VolumeID: volumeID, InstanceUUID: serverID,
		Connector: map[string]any{"host": host, "mountpoint": device}, DeleteOnTermination: dot, Tag: tag, Mountpoint: &device})
	if err != nil {
		return "", rpc.Volume{}, err
	}
	if err := c.s.CompleteAttachment(octx, a.ID, device); err != nil {
		_, _ = c.s.DeleteAttachment(context.WithoutCancel(octx), a.ID)
		return "", rpc.Volume{}, err
	}
	return a.ID, connVolume(volumeID, device, info), nil
}

func connVolume(id, device string, info map[string]any) rpc.Volume {
	data, _ := info["data"].(map[string]any)
	v := rpc.Volume{ID: id, Device: device}
	v.Path, _ = data["device_path"].(string)
	v.Format, _ = data["format"].(string)
	v.ReadOnly = data["access_mode"] == "ro"
	v.QoS, _ = data["qos_specs"].(map[string]string)
	return v
}

func (c conductorVolumes) Detach(ctx context.Context, attachmentID string) error {
	_, err := c.s.DeleteAttachment(localImages{}.ctx(ctx), attachmentID)
	if err != nil && apiutil.AsError(err).Status == 404 {
		return nil
	}
	return err
}

func (c conductorVolumes) ServerVolumes(ctx context.Context, serverID string) ([]rpc.Volume, map[string]string, error) {
	conns, err := c.s.InstanceConnections(ctx, serverID)
	if err != nil {
		return nil, nil, err
	}
	var out []rpc.Volume
	var meta map[string]string
	for _, ic := range conns {
		dev := ""
		if ic.Attachment.Mountpoint != nil {
			dev = *ic.Attachment.Mountpoint
		}
		v := connVolume(ic.Volume.ID, dev, ic.Info)
		if dev == conductor.RootDeviceName {
			v.Root, meta = true, ic.Volume.ImageMeta
		}
		out = append(out, v)
	}
	return out, meta, nil
}

func (c conductorVolumes) ReleaseServer(ctx context.Context, serverID string) error {
	return c.s.ReleaseInstance(ctx, serverID)
}

// ReimageRootVolume implements conductor.VolumeReimager as Nova's
// compute does it: the boot volume's attachment is replaced by an empty
// one (the volume stays reserved for the server), then the volume is
// re-imaged with reimage_reserved. A boot attachment that is already
// empty (a rebuild retried after a failed re-image) is used as it is.
func (c conductorVolumes) ReimageRootVolume(ctx context.Context, o conductor.Owner, serverID, imageID string) (string, string, error) {
	octx := ownerCtx(ctx, o)
	atts, err := c.s.InstanceAttachments(ctx, serverID)
	if err != nil {
		return "", "", err
	}
	var root *volume.Attachment
	for _, a := range atts {
		if a.Mountpoint != nil && *a.Mountpoint == conductor.RootDeviceName {
			root = a
		}
	}
	if root == nil {
		return "", "", fmt.Errorf("server %s has no boot volume", serverID)
	}
	att := root
	if root.Status == volume.AttachAttached {
		if _, err := c.s.DeleteAttachment(octx, root.ID); err != nil {
			return "", "", err
		}
		dev := conductor.RootDeviceName
		na, _, _, err := c.s.CreateAttachment(octx, volume.AttachRequest{VolumeID: root.VolumeID, InstanceUUID: serverID,
			DeleteOnTermination: root.DeleteOnTermination, Tag: root.Tag, Mountpoint: &dev, Mode: root.Mode})
		if err != nil {
			c.restoreRoot(octx, root, serverID)
			return "", "", err
		}
		att = na
	}
	if err := c.s.Reimage(octx, root.VolumeID, imageID, true); err != nil {
		// Refused: nothing changed on the volume; attach it back.
		if cerr := c.ConnectAttachment(ctx, o, att.ID, hostOf(root)); cerr != nil {
			return "", "", errors.Join(err, cerr)
		}
		return "", "", err
	}
	return root.VolumeID, att.ID, nil
}

// restoreRoot attaches the boot volume again after a failed swap.
func (c conductorVolumes) restoreRoot(ctx context.Context, old *volume.Attachment, serverID string) {
	dev := conductor.RootDeviceName
	ctx = context.WithoutCancel(ctx)
	a, _, _, err := c.s.CreateAttachment(ctx, volume.AttachRequest{VolumeID: old.VolumeID, InstanceUUID: serverID,
		Connector: map[string]any{"host": hostOf(old), "mountpoint": dev}, DeleteOnTermination: old.DeleteOnTermination,
		Tag: old.Tag, Mountpoint: &dev, Mode: old.Mode})
	if err == nil {
		_ = c.s.CompleteAttachment(ctx, a.ID, dev)
	}
}

func hostOf(a *volume.Attachment) string {
	if a.Host != nil {
		return *a.Host
	}
	return ""
}

// ConnectAttachment implements conductor.VolumeReimager.
func (c conductorVolumes) ConnectAttachment(ctx context.Context, o conductor.Owner, attachmentID, host string) error {
	octx := ownerCtx(ctx, o)
	a, err := c.s.GetAttachment(octx, attachmentID)
	if err != nil {
		return err
	}
	if a.Status == volume.AttachAttached {
		return nil
	}
	dev := conductor.RootDeviceName
	if a.Mountpoint != nil {
		dev = *a.Mountpoint
	}
	if _, _, _, err := c.s.UpdateAttachment(octx, attachmentID, map[string]any{"host": host, "mountpoint": dev}); err != nil {
		return err
	}
	return c.s.CompleteAttachment(octx, attachmentID, dev)
}

var (
	_ conductor.VolumeService  = conductorVolumes{}
	_ conductor.VolumeReimager = conductorVolumes{}
)

// VolumeInfo implements api.BlockDeviceService.
func (n novaVolumes) VolumeInfo(ctx context.Context, id string) (api.VolumeInfo, error) {
	v, err := n.s.Get(ctx, id)
	if err != nil {
		if apiutil.AsError(err).Status == 404 {
			return api.VolumeInfo{}, api.ErrVolumeNotFound
		}
		return api.VolumeInfo{}, err
	}
	return api.VolumeInfo{ID: v.ID, Status: v.Status, Size: v.Size, Bootable: v.Bootable, Zone: v.Zone}, nil
}

func (n novaVolumes) SnapshotInfo(ctx context.Context, id string) (api.SnapshotInfo, error) {
	s, err := n.s.GetSnapshot(ctx, id)
	if err != nil {
		if apiutil.AsError(err).Status == 404 {
			return api.SnapshotInfo{}, api.ErrSnapshotNotFound
		}
		return api.SnapshotInfo{}, err
	}
	return api.SnapshotInfo{ID: s.ID, Status: s.Status, Size: s.Size}, nil
}

func (n novaVolumes) VolumeTypeExists(ctx context.Context, key string) (bool, error) {
	_, err := n.s.GetType(ctx, key)
	if err != nil && apiutil.AsError(err).Status == 404 {
		return false, nil
	}
	return err == nil, err
}

func (n novaVolumes) SnapshotVolume(ctx context.Context, volumeID, name string) (string, error) {
	desc := "snapshot of a volume-backed server"
	s, err := n.s.CreateSnapshot(ctx, volume.SnapshotRequest{VolumeID: volumeID, Name: &name, Description: &desc, Force: true})
	if err != nil {
		return "", err
	}
	return s.ID, nil
}

func (n novaVolumes) DeleteSnapshot(ctx context.Context, id string) error {
	return n.s.DeleteSnapshot(ctx, id)
}

var _ api.BlockDeviceService = novaVolumes{}
