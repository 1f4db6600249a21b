package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Nova's policy rules of os-volume_attachments.
const (
	ruleVolAttIndex  = "os_compute_api:os-volumes-attachments:index"
	ruleVolAttShow   = "os_compute_api:os-volumes-attachments:show"
	ruleVolAttCreate = "os_compute_api:os-volumes-attachments:create"
	ruleVolAttDelete = "os_compute_api:os-volumes-attachments:delete"
)

func volumeAttachmentRules() []policy.Rule {
	const (
		projectReader = "role:admin or (role:reader and project_id:%(project_id)s)"
		projectMember = "role:admin or (role:member and project_id:%(project_id)s)"
	)
	return []policy.Rule{
		{Name: ruleVolAttIndex, Check: projectReader, Description: "List the volume attachments of a server."},
		{Name: ruleVolAttShow, Check: projectReader, Description: "Show a volume attachment of a server."},
		{Name: ruleVolAttCreate, Check: projectMember, Description: "Attach a volume to a server."},
		{Name: ruleVolAttDelete, Check: projectMember, Description: "Detach a volume from a server."},
	}
}

// VolumeAttachment is a volume attached to a server, as the block
// storage service keeps it.
type VolumeAttachment struct {
	AttachmentID        string
	VolumeID            string
	ServerID            string
	Device              string
	Tag                 *string
	DeleteOnTermination bool
	Attached            bool // false while reserved or attaching
}

// VolumeConnection is how the host reaches a volume.
type VolumeConnection struct {
	Path, Format string
	ReadOnly     bool
	QoS          map[string]string // Cinder's qos_specs (front-end limits)
}

// ErrVolumeNotFound is returned by VolumeService for a volume the caller
// cannot see.
var ErrVolumeNotFound = errors.New("volume not found")

// VolumeService is the block storage service as the compute API uses it
// (Nova's cinder client). Calls carry the caller's context; errors that
// are *apiutil.Error pass through to the client (Cinder's 400s).
type VolumeService interface {
	// Reserve creates an attachment of volumeID for server and connects
	// it for host.
	Reserve(ctx context.Context, volumeID, serverID, host, device string, deleteOnTermination bool, tag *string) (VolumeAttachment, VolumeConnection, error)
	// Complete marks the attachment attached (volume in-use).
	Complete(ctx context.Context, attachmentID, device string) error
	// Abort drops an attachment that did not complete.
	Abort(ctx context.Context, attachmentID string)
	// BeginDetach marks the volume detaching; RollDetach undoes it.
	BeginDetach(ctx context.Context, attachmentID string) error
	RollDetach(ctx context.Context, volumeID string)
	// Detach removes the attachment (the volume becomes available).
	Detach(ctx context.Context, attachmentID string) error
	// List returns the attachments of a server.
	List(ctx context.Context, serverID string) ([]VolumeAttachment, error)
}

// volumePlugger reaches the agent of a host (conductor.Client).
type volumePlugger interface {
	AttachVolume(ctx context.Context, host, uuid string, v rpc.Volume) error
	DetachVolume(ctx context.Context, host, uuid string, v rpc.Volume) error
}

func (a *API) volumeAttachmentView(r *http.Request, va VolumeAttachment) map[string]any {
	out := map[string]any{"device": va.Device, "serverId": va.ServerID, "volumeId": va.VolumeID}
	if !atLeast(r, apiutil.Version{Major: 2, Minor: 89}) {
		out["id"] = va.VolumeID
	} else {
		out["attachment_id"] = va.AttachmentID
		out["bdm_uuid"] = va.AttachmentID
	}
	if atLeast(r, apiutil.Version{Major: 2, Minor: 70}) {
		out["tag"] = va.Tag
	}
	if atLeast(r, apiutil.Version{Major: 2, Minor: 79}) {
		out["delete_on_termination"] = va.DeleteOnTermination
	}
	return out
}

func (a *API) serverVolumes(r *http.Request, i *store.Instance) ([]VolumeAttachment, error) {
	if a.volumes == nil {
		return nil, nil
	}
	return a.volumes.List(ctx(r), i.UUID)
}

func (a *API) listVolumeAttachments(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleVolAttIndex)
	if err != nil {
		return nil, err
	}
	vas, err := a.serverVolumes(r, i)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, va := range vas {
		if va.Attached {
			out = append(out, a.volumeAttachmentView(r, va))
		}
	}
	return apiutil.JSON(200, map[string]any{"volumeAttachments": out}), nil
}

func (a *API) findVolumeAttachment(r *http.Request, i *store.Instance, volumeID string) (VolumeAttachment, error) {
	vas, err := a.serverVolumes(r, i)
	if err != nil {
		return VolumeAttachment{}, err
	}
	for _, va := range vas {
		if va.VolumeID == volumeID && va.Attached {
			return va, nil
		}
	}
	return VolumeAttachment{}, apiutil.NotFound("Volume %s is not attached to the server %s", volumeID, i.UUID)
}

func (a *API) showVolumeAttachment(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleVolAttShow)
	if err != nil {
		return nil, err
	}
	va, err := a.findVolumeAttachment(r, i, r.PathValue("volume_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"volumeAttachment": a.volumeAttachmentView(r, va)}), nil
}

var volumeAttachSchema = apiutil.MustSchema("compute-volume-attach", `{"type": "object",
	"properties": {"volumeAttachment": {"type": "object", "properties": {
		"volumeId": {"type": "string", "format": "uuid"},
		"device": {"type": ["string", "null"], "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"},
		"tag": {"type": "string", "minLength": 1, "maxLength": 60},
		"delete_on_termination": {"type": "boolean"}
	}, "required": ["volumeId"], "additionalProperties": false}},
	"required": ["volumeAttachment"], "additionalProperties": false}`)

// attachableStates are the vm_states a volume can be hot-plugged in.
var attachableStates = []string{states.Active, states.Paused}

func (a *API) attachVolume(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		VolumeAttachment struct {
			VolumeID            string  `json:"volumeId"`
			Device              *string `json:"device"`
			Tag                 *string `json:"tag"`
			DeleteOnTermination *bool   `json:"delete_on_termination"`
		} `json:"volumeAttachment"`
	}
	if err := apiutil.DecodeJSON(r, volumeAttachSchema, &body); err != nil {
		return nil, err
	}
	b := body.VolumeAttachment
	if b.Tag != nil && !atLeast(r, apiutil.Version{Major: 2, Minor: 49}) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('tag' was unexpected)")
	}
	if b.DeleteOnTermination != nil && !atLeast(r, apiutil.Version{Major: 2, Minor: 79}) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('delete_on_termination' was unexpected)")
	}
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleVolAttCreate)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if a.volumes == nil {
		return nil, apiutil.NotFound("Volume %s could not be found.", b.VolumeID)
	}
	plug, ok := a.servers.(volumePlugger)
	if !ok || i.Host == nil {
		return nil, conflictState("attach_volume", i)
	}
	if !slices.Contains(attachableStates, i.VMState) || i.TaskState != nil {
		return nil, conflictState("attach_volume", i)
	}
	vas, err := a.serverVolumes(r, i)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{"/dev/vda": true}
	for _, va := range vas {
		if va.VolumeID == b.VolumeID {
			return nil, apiutil.BadRequest("Invalid volume: volume %s is already attached to instance %s.", b.VolumeID, i.UUID)
		}
		used[va.Device] = true
	}
	device := ""
	for c := 'b'; c <= 'z'; c++ {
		if d := fmt.Sprintf("/dev/vd%c", c); !used[d] {
			device = d
			break
		}
	}
	if device == "" {
		return nil, apiutil.Forbidden("The maximum number of volumes is attached to instance %s.", i.UUID)
	}
	dot := b.DeleteOnTermination != nil && *b.DeleteOnTermination
	va, conn, err := a.volumes.Reserve(ctx(r), b.VolumeID, i.UUID, *i.Host, device, dot, b.Tag)
	if errors.Is(err, ErrVolumeNotFound) {
		return nil, apiutil.NotFound("Volume %s could not be found.", b.VolumeID)
	}
	if err != nil {
		return nil, err
	}
	rv := rpc.Volume{ID: b.VolumeID, Path: conn.Path, Format: conn.Format, Device: device, ReadOnly: conn.ReadOnly, QoS: conn.QoS}
	if err := plug.AttachVolume(ctx(r), *i.Host, i.UUID, rv); err != nil {
		a.volumes.Abort(context.WithoutCancel(ctx(r)), va.AttachmentID)
		a.log.Warn("attach volume failed", "server", i.UUID, "volume", b.VolumeID, "err", err)
		return nil, agentError("attach volume", err)
	}
	if err := a.volumes.Complete(ctx(r), va.AttachmentID, device); err != nil {
		return nil, err
	}
	va.Device, va.Attached = device, true
	return apiutil.JSON(200, map[string]any{"volumeAttachment": a.volumeAttachmentView(r, va)}), nil
}

// agentError maps an agent failure to Nova's answers.
func agentError(what string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "unsupported") || strings.Contains(msg, "cannot attach") {
		return &apiutil.Error{Status: 409, Message: fmt.Sprintf("Unable to %s: the hypervisor does not support it.", what), Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (a *API) detachVolume(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleVolAttDelete)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	va, err := a.findVolumeAttachment(r, i, r.PathValue("volume_id"))
	if err != nil {
		return nil, err
	}
	if va.Device == conductor.RootDeviceName {
		return nil, apiutil.BadRequest("Cannot detach a root device volume")
	}
	plug, ok := a.servers.(volumePlugger)
	if !ok || i.Host == nil || !slices.Contains(append(attachableStates, states.Stopped), i.VMState) || i.TaskState != nil {
		return nil, conflictState("detach_volume", i)
	}
	if err := a.volumes.BeginDetach(ctx(r), va.AttachmentID); err != nil {
		return nil, err
	}
	if err := plug.DetachVolume(ctx(r), *i.Host, i.UUID, rpc.Volume{ID: va.VolumeID, Device: va.Device}); err != nil {
		a.volumes.RollDetach(context.WithoutCancel(ctx(r)), va.VolumeID)
		return nil, agentError("detach volume", err)
	}
	if err := a.volumes.Detach(ctx(r), va.AttachmentID); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: http.StatusAccepted}, nil
}
