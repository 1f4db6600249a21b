package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Block device mapping: a build with volumes (Nova's
// block_device_mapping_v2) runs one more step between the network and the
// spawn:
//
//	block_device_mapping: create the volumes (from image, snapshot or
//	blank; "volume" sources exist already) → wait until available →
//	attach each to the server on its host (volume in-use) → the spawn
//	request carries them, the boot_index 0 one as the root disk.
//
// Each created volume and each attachment is written to the task as soon
// as it exists, so a conductor that restarts mid-step resumes without
// creating a volume twice. If the step or a later one fails, the
// attachments are removed and the volumes the build created with
// delete_on_termination are deleted: nothing stays half-created.

// Root device names of the boot disk and the disks after it.
const RootDeviceName = "/dev/vda"

// BlockDevice is one validated entry of a server's block device mapping,
// as the API hands it to the build (task argument "bdms").
type BlockDevice struct {
	SourceType          string  `json:"source_type"`      // image, volume, snapshot, blank
	DestinationType     string  `json:"destination_type"` // volume or local
	UUID                string  `json:"uuid,omitempty"`
	BootIndex           int     `json:"boot_index"` // -1: not bootable
	VolumeSize          int     `json:"volume_size,omitempty"`
	DeleteOnTermination bool    `json:"delete_on_termination,omitempty"`
	DeviceName          string  `json:"device_name,omitempty"`
	VolumeType          string  `json:"volume_type,omitempty"`
	GuestFormat         string  `json:"guest_format,omitempty"`
	Tag                 *string `json:"tag,omitempty"`

	// Filled in by the build as it goes.
	VolumeID     string      `json:"volume_id,omitempty"`
	Created      bool        `json:"created,omitempty"` // the build created the volume
	AttachmentID string      `json:"attachment_id,omitempty"`
	Conn         *rpc.Volume `json:"conn,omitempty"`
}

// Owner is the project and user a volume is created for.
type Owner struct{ ProjectID, UserID string }

// VolumeRequest is a volume a build creates.
type VolumeRequest struct {
	Name        string
	Size        int
	ImageID     string
	SnapshotID  string
	VolumeType  string
	Description string
}

// VolumeInfo is a volume as the build waits for it.
type VolumeInfo struct {
	ID     string
	Status string
	Size   int
}

// VolumeService is the block storage service as the conductor uses it
// (Nova's cinder client on the compute side). Volumes and attachments are
// made for the server's owner, whatever context the call carries.
type VolumeService interface {
	CreateVolume(ctx context.Context, owner Owner, req VolumeRequest) (string, error)
	GetVolume(ctx context.Context, id string) (VolumeInfo, error)
	DeleteVolume(ctx context.Context, owner Owner, id string) error
	// Attach creates an attachment of the volume to server on host and
	// completes it (in-use); conn is how the host reaches the disk.
	Attach(ctx context.Context, owner Owner, volumeID, serverID, host, device string, deleteOnTermination bool, tag *string) (attachmentID string, conn rpc.Volume, err error)
	// Detach removes an attachment (the volume becomes available).
	Detach(ctx context.Context, attachmentID string) error
	// ServerVolumes are the volumes attached to a server, as the host
	// plugs them (the one on RootDeviceName marked root), with the image
	// metadata of the root volume.
	ServerVolumes(ctx context.Context, serverID string) ([]rpc.Volume, map[string]string, error)
	// ReleaseServer detaches every volume of a deleted server and deletes
	// those marked delete_on_termination.
	ReleaseServer(ctx context.Context, serverID string) error
}

// VolumeReimager is implemented by a VolumeService that can re-image a
// server's boot volume (Cinder's os-reimage; Nova's rebuild of a
// volume-backed server from 2.93).
type VolumeReimager interface {
	// ReimageRootVolume starts re-imaging the server's boot volume with
	// the image: its attachment is replaced by an empty one (the volume
	// stays reserved for the server, Nova's flow) and the volume service
	// refills the volume in the background (status downloading, then
	// reserved, or error). It returns the volume and the new attachment;
	// when the volume service refuses, the volume is attached as before.
	ReimageRootVolume(ctx context.Context, owner Owner, serverID, imageID string) (volumeID, attachmentID string, err error)
	// ConnectAttachment connects a reserved attachment for host and
	// completes it (in-use); an attachment already attached is left so.
	ConnectAttachment(ctx context.Context, owner Owner, attachmentID, host string) error
}

// ErrNoVolumeService fails builds with volumes where there is no block
// storage service.
var ErrNoVolumeService = errors.New("no block storage service")

// blockDevices reads the build's mapping from its task.
func (r *run) blockDevices() ([]BlockDevice, error) {
	raw := r.task.Args["bdms"]
	if raw == "" {
		return nil, nil
	}
	var bdms []BlockDevice
	if err := json.Unmarshal([]byte(raw), &bdms); err != nil {
		return nil, fmt.Errorf("block device mapping of %s: %w", r.inst.UUID, err)
	}
	return bdms, nil
}

// saveBlockDevices writes the mapping's progress to the task at once.
func (r *run) saveBlockDevices(ctx context.Context, bdms []BlockDevice) error {
	b, err := json.Marshal(bdms)
	if err != nil {
		return err
	}
	r.task.Args["bdms"] = string(b)
	return r.c.st.UpdateInstance(ctx, nil, r.inst.UUID, r.cond(), store.Set{"task": r.task})
}

var blockDeviceStep = step{name: "block_device_mapping", run: prepBlockDevices, undo: cleanupBlockDevices}

func prepBlockDevices(ctx context.Context, r *run) error {
	bdms, err := r.blockDevices()
	if err != nil || !slices.ContainsFunc(bdms, func(b BlockDevice) bool { return b.DestinationType == "volume" }) {
		r.noop = err == nil
		return err
	}
	if err := r.mapBlockDevices(ctx, bdms); err != nil {
		if ctx.Err() != nil {
			return err // the conductor stops: a successor resumes the step
		}
		// Failed, or the task was replaced (the server is being deleted):
		// nothing this build made may stay.
		r.log.Warn("block device mapping failed", "err", err)
		if cerr := cleanupBlockDevices(context.WithoutCancel(ctx), r); cerr != nil {
			r.log.Warn("clean up block devices", "err", cerr)
		}
		if errors.Is(err, errPreempted) {
			return err
		}
		return fmt.Errorf("Build of instance %s aborted: Failure prepping block device. %w", r.inst.UUID, err)
	}
	return nil
}

func (r *run) mapBlockDevices(ctx context.Context, bdms []BlockDevice) error {
	vs := r.c.cfg.Volumes
	if vs == nil {
		return ErrNoVolumeService
	}
	owner := Owner{ProjectID: r.inst.ProjectID, UserID: r.inst.UserID}
	// 1. Create the volumes, each persisted as soon as it exists.
	for i := range bdms {
		b := &bdms[i]
		if b.DestinationType != "volume" || b.VolumeID != "" {
			continue
		}
		if b.SourceType == "volume" {
			b.VolumeID = b.UUID
			continue
		}
		req := VolumeRequest{Name: r.inst.UUID + "-blank-vol", Size: b.VolumeSize, VolumeType: b.VolumeType,
			Description: "created for server " + r.inst.UUID}
		switch b.SourceType {
		case "image":
			req.ImageID, req.Name = b.UUID, r.inst.UUID+"-image-vol"
		case "snapshot":
			req.SnapshotID, req.Name = b.UUID, r.inst.UUID+"-snapshot-vol"
		}
		id, err := vs.CreateVolume(ctx, owner, req)
		if err != nil {
			return fmt.Errorf("create volume from %s %s: %w", b.SourceType, b.UUID, err)
		}
		b.VolumeID, b.Created = id, true
		if err := r.saveBlockDevices(ctx, bdms); err != nil {
			return err
		}
	}
	// 2. Wait for the new ones to be available.
	for _, b := range bdms {
		if b.Created && b.AttachmentID == "" {
			if err := r.waitVolume(ctx, b.VolumeID); err != nil {
				return err
			}
		}
	}
	// 3. Attach them, the boot volume on the root device, the others
	// after the local disks (ephemeral, then swap: /dev/vdb, ...).
	used := map[string]bool{}
	for n := range localDisks(r.inst.Flavor) {
		used[fmt.Sprintf("/dev/vd%c", 'b'+n)] = true
	}
	for _, b := range bdms {
		if b.Conn != nil {
			used[b.Conn.Device] = true
		}
	}
	for i := range bdms {
		b := &bdms[i]
		if b.DestinationType != "volume" || b.AttachmentID != "" {
			continue
		}
		dev := deviceFor(b, used)
		used[dev] = true
		att, conn, err := vs.Attach(ctx, owner, b.VolumeID, r.inst.UUID, r.inst.HostName(), dev, b.DeleteOnTermination, b.Tag)
		if err != nil {
			return fmt.Errorf("attach volume %s: %w", b.VolumeID, err)
		}
		conn.ID, conn.Device, conn.Root = b.VolumeID, dev, b.BootIndex == 0
		b.AttachmentID, b.Conn = att, &conn
		if err := r.saveBlockDevices(ctx, bdms); err != nil {
			return err
		}
	}
	return nil
}

// localDisks counts the disks after the root the driver makes: the
// ephemeral disks (the mappings' or the flavor's one) and swap.
func localDisks(f store.InstanceFlavor) int {
	n, swap := f.LocalDisks()
	if swap {
		n++
	}
	return n
}

// deviceFor names the guest device of a mapping: the root device for the
// boot volume, else the requested name when free, else the next free
// /dev/vdX.
func deviceFor(b *BlockDevice, used map[string]bool) string {
	if b.BootIndex == 0 {
		return RootDeviceName
	}
	if b.DeviceName != "" && !used[b.DeviceName] && b.DeviceName != RootDeviceName {
		return b.DeviceName
	}
	for c := 'b'; c <= 'z'; c++ {
		if d := fmt.Sprintf("/dev/vd%c", c); !used[d] {
			return d
		}
	}
	return ""
}

// waitVolume waits until a volume the build created is available (Nova's
// block_device_allocate_retries).
func (r *run) waitVolume(ctx context.Context, id string) error {
	wait := r.c.cfg.VolumeWait
	deadline := time.Now().Add(wait)
	attempts := 0
	for {
		attempts++
		v, err := r.c.cfg.Volumes.GetVolume(ctx, id)
		if err != nil {
			return err
		}
		switch v.Status {
		case "available":
			return nil
		case "creating", "downloading":
		default:
			return fmt.Errorf("Volume %s did not finish being created even after we waited %d seconds or %d attempts. And its status is %s.",
				id, int(time.Since(deadline.Add(-wait)).Seconds()), attempts, v.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Volume %s did not finish being created even after we waited %d seconds or %d attempts. And its status is %s.",
				id, int(wait.Seconds()), attempts, v.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanupBlockDevices undoes a build's mapping: attachments removed,
// volumes the build created with delete_on_termination deleted.
func cleanupBlockDevices(ctx context.Context, r *run) error {
	bdms, err := r.blockDevices()
	if err != nil || len(bdms) == 0 || r.c.cfg.Volumes == nil {
		return err
	}
	vs := r.c.cfg.Volumes
	owner := Owner{ProjectID: r.inst.ProjectID, UserID: r.inst.UserID}
	var errs []error
	for i := range bdms {
		b := &bdms[i]
		if b.AttachmentID != "" {
			if err := vs.Detach(ctx, b.AttachmentID); err != nil {
				errs = append(errs, fmt.Errorf("detach volume %s: %w", b.VolumeID, err))
				continue
			}
			b.AttachmentID, b.Conn = "", nil
		}
		if b.Created && b.DeleteOnTermination && b.VolumeID != "" {
			if err := r.deleteWhenSettled(ctx, owner, b.VolumeID); err != nil {
				errs = append(errs, fmt.Errorf("delete volume %s: %w", b.VolumeID, err))
				continue
			}
			b.VolumeID, b.Created = "", false
		}
	}
	b, _ := json.Marshal(bdms)
	r.task.Args["bdms"] = string(b)
	delete(r.task.Args, "block_devices")
	return errors.Join(errs...)
}

// deleteWhenSettled deletes a volume once it has left creating (a volume
// cannot be deleted while its data is being written).
func (r *run) deleteWhenSettled(ctx context.Context, owner Owner, id string) error {
	deadline := time.Now().Add(r.c.cfg.VolumeWait)
	for {
		v, err := r.c.cfg.Volumes.GetVolume(ctx, id)
		if err != nil {
			return err
		}
		if (v.Status != "creating" && v.Status != "downloading") || time.Now().After(deadline) {
			return r.c.cfg.Volumes.DeleteVolume(ctx, owner, id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// spawnVolumes are the volumes a spawn request carries: those the build
// attached (in the task), or, for any other spawn (rebuild, resize,
// evacuate, unshelve), the server's attached volumes as the block storage
// service lists them.
func (r *run) spawnVolumes(ctx context.Context, req *rpc.OpRequest) error {
	if r.task != nil && r.task.Kind == kindBuild {
		bdms, err := r.blockDevices()
		if err != nil {
			return err
		}
		for _, b := range bdms {
			if b.Conn != nil {
				req.Instance.BlockDevices = append(req.Instance.BlockDevices, *b.Conn)
			}
		}
		if len(req.Instance.BlockDevices) == 0 || r.c.cfg.Volumes == nil {
			return nil
		}
		_, meta, err := r.c.cfg.Volumes.ServerVolumes(ctx, r.inst.UUID)
		req.Instance.ImageMeta = meta
		return err
	}
	if r.c.cfg.Volumes == nil {
		return nil
	}
	vols, meta, err := r.c.cfg.Volumes.ServerVolumes(ctx, r.inst.UUID)
	if err != nil {
		return fmt.Errorf("volumes of %s: %w", r.inst.UUID, err)
	}
	req.Instance.BlockDevices, req.Instance.ImageMeta = vols, meta
	return nil
}

// releaseVolumesStep detaches the volumes of a deleted server and
// deletes those marked delete_on_termination (Nova's compute does it as
// it terminates the instance). A failure does not stop the delete: the
// volume service's reaper settles the attachments of deleted servers.
var releaseVolumesStep = step{name: "detach_volumes", light: true, run: func(ctx context.Context, r *run) error {
	if r.c.cfg.Volumes == nil {
		return nil
	}
	if err := r.c.cfg.Volumes.ReleaseServer(ctx, r.inst.UUID); err != nil {
		r.log.Warn("release volumes of deleted server; the volume service's reaper will", "err", err)
	}
	return nil
}}

// reimageStep re-images a volume-backed server's boot volume with the
// rebuild's image (task argument reimage_boot_volume, set by the API from
// microversion 2.93), between destroying the old guest and spawning the
// new one on the same volume. The attachment and volume it works on are
// kept in the task, so a restarted conductor waits for the same re-image
// instead of starting another. A volume that ends in error fails the
// rebuild (the server goes to ERROR; rebuilding again retries).
var reimageStep = step{name: "reimage_boot_volume", run: func(ctx context.Context, r *run) error {
	if r.task.Args["reimage_boot_volume"] != "true" {
		return nil
	}
	vr, ok := r.c.cfg.Volumes.(VolumeReimager)
	if !ok {
		return fmt.Errorf("rebuild of volume-backed server %s: %w", r.inst.UUID, ErrNoVolumeService)
	}
	owner := Owner{ProjectID: r.inst.ProjectID, UserID: r.inst.UserID}
	vol, att := r.task.Args["reimage_volume"], r.task.Args["reimage_attachment"]
	if att == "" {
		var err error
		if vol, att, err = vr.ReimageRootVolume(ctx, owner, r.inst.UUID, r.inst.ImageRef); err != nil {
			return fmt.Errorf("re-image the boot volume with image %s: %w", r.inst.ImageRef, err)
		}
		r.task.Args["reimage_volume"], r.task.Args["reimage_attachment"] = vol, att
		if err := r.c.st.UpdateInstance(ctx, nil, r.inst.UUID, r.cond(), store.Set{"task": r.task}); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(r.c.cfg.VolumeWait)
	for {
		v, err := r.c.cfg.Volumes.GetVolume(ctx, vol)
		if err != nil {
			return err
		}
		if v.Status == "error" {
			return fmt.Errorf("the volume service failed to re-image volume %s with image %s (volume status is error)", vol, r.inst.ImageRef)
		}
		if v.Status != "downloading" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("volume %s is still being re-imaged after %s", vol, r.c.cfg.VolumeWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return vr.ConnectAttachment(ctx, owner, att, r.inst.HostName())
}}
