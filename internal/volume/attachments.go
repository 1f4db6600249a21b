package volume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// AttachRequest creates an attachment (Cinder's attachment_create, or
// Nova's reservation step of os-volume_attachments).
type AttachRequest struct {
	VolumeID     string
	InstanceUUID string
	Connector    map[string]any // optional: connect at once
	Mode         string         // rw (default) or ro
	// DeleteOnTermination and Tag are kept for the Compute API.
	DeleteOnTermination bool
	Tag                 *string
	Mountpoint          *string
}

func attachmentNotFound(id string) error {
	return apiutil.NotFound("Volume attachment could not be found with filter: attachment_id = %s.", id)
}

// volumeStatusAfter computes a volume's status from its attachments.
func volumeStatusAfter(v *Volume) {
	attached, pending := false, false
	for _, a := range v.Attachments {
		switch a.Status {
		case AttachAttached:
			attached = true
		default:
			pending = true
		}
	}
	switch {
	case attached:
		v.Status, v.AttachStatus = StatusInUse, AttachAttached
	case pending:
		v.AttachStatus = AttachDetached
		v.Status = StatusReserved
		for _, a := range v.Attachments {
			if a.Status == AttachAttaching {
				v.Status, v.AttachStatus = StatusAttaching, AttachAttaching
			}
		}
	default:
		v.Status, v.AttachStatus = StatusAvailable, AttachDetached
	}
}

// CreateAttachment reserves a volume for an instance; with a connector
// it also connects and returns the connection info.
func (s *Service) CreateAttachment(ctx context.Context, req AttachRequest) (*Attachment, *Volume, map[string]any, error) {
	c := callerOf(ctx)
	if _, err := s.load(ctx, c, req.VolumeID, ruleAttachCreate); err != nil {
		return nil, nil, nil, err
	}
	if req.Mode == "" {
		req.Mode = "rw"
	}
	if req.Mode != "rw" && req.Mode != "ro" {
		return nil, nil, nil, apiutil.BadRequest("Invalid input received: Invalid attach mode %s, must be rw or ro.", req.Mode)
	}
	now := s.now().UTC()
	a := &Attachment{ID: newUUID(), VolumeID: req.VolumeID, Status: AttachReserved, Mode: req.Mode,
		DeleteOnTermination: req.DeleteOnTermination, Tag: req.Tag, Mountpoint: req.Mountpoint, CreatedAt: now, UpdatedAt: now}
	if req.InstanceUUID != "" {
		a.InstanceUUID = &req.InstanceUUID
	}
	v, err := s.store.UpdateVolume(ctx, req.VolumeID, func(_ *sql.Tx, v *Volume) error {
		a.ProjectID = v.ProjectID
		if v.AdminMeta["readonly"] == "True" {
			a.Mode = "ro"
		}
		for _, o := range v.Attachments {
			if req.InstanceUUID != "" && o.InstanceUUID != nil && *o.InstanceUUID == req.InstanceUUID {
				return apiutil.BadRequest("Invalid volume: volume %s is already attached to instance %s.", v.ID, req.InstanceUUID)
			}
		}
		ok := v.Status == StatusAvailable && v.Task == nil ||
			v.Multiattach && (v.Status == StatusInUse || v.Status == StatusReserved || v.Status == StatusAttaching)
		if !ok {
			if !v.Multiattach && len(v.Attachments) > 0 {
				return apiutil.BadRequest("Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s. The volume type does not allow multiattach.", v.ID, v.Status)
			}
			return apiutil.BadRequest("Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", v.ID, v.Status)
		}
		v.Attachments = append(v.Attachments, a)
		volumeStatusAfter(v)
		v.UpdatedAt = now
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if req.Connector == nil {
		return a, v, nil, nil
	}
	return s.UpdateAttachment(ctx, a.ID, req.Connector)
}

// loadAttachment finds an attachment the caller may act on.
func (s *Service) loadAttachment(ctx context.Context, c caller, id, rule string) (*Attachment, error) {
	a, err := s.store.GetAttachment(ctx, id)
	if errors.Is(err, errNoRow) {
		return nil, attachmentNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if a.ProjectID != c.project && !c.admin {
		return nil, attachmentNotFound(id)
	}
	if err := s.authorize(c, rule, a.ProjectID); err != nil {
		return nil, err
	}
	return a, nil
}

// GetAttachment returns an attachment.
func (s *Service) GetAttachment(ctx context.Context, id string) (*Attachment, error) {
	return s.loadAttachment(ctx, callerOf(ctx), id, ruleAttachGet)
}

// ListAttachments lists attachments.
func (s *Service) ListAttachments(ctx context.Context, q AttachmentQuery) ([]*Attachment, bool, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleAttachGet, c.project); err != nil {
		return nil, false, err
	}
	if !c.admin || !q.AllProjects {
		q.AllProjects, q.Project = false, c.project
	}
	return page(q.Limit, s.cfg.MaxLimit, func(n int) ([]*Attachment, error) {
		q.Limit = n
		return s.store.ListAttachments(ctx, q)
	})
}

// UpdateAttachment connects an attachment for the connector's host and
// returns the connection info.
func (s *Service) UpdateAttachment(ctx context.Context, id string, connector map[string]any) (*Attachment, *Volume, map[string]any, error) {
	c := callerOf(ctx)
	a, err := s.loadAttachment(ctx, c, id, ruleAttachUpdate)
	if err != nil {
		return nil, nil, nil, err
	}
	if connector == nil {
		return nil, nil, nil, apiutil.BadRequest("Invalid input received: connector is required.")
	}
	var out *Attachment
	v, err := s.store.UpdateVolume(ctx, a.VolumeID, func(_ *sql.Tx, v *Volume) error {
		for _, x := range v.Attachments {
			if x.ID != id {
				continue
			}
			if x.Status == AttachAttached {
				return apiutil.BadRequest("Invalid volume: attachment %s is already attached.", id)
			}
			x.Connector = connector
			if h, ok := connector["host"].(string); ok && h != "" {
				x.Host = &h
			}
			if mp, ok := connector["mountpoint"].(string); ok && mp != "" {
				x.Mountpoint = &mp
			}
			x.Status = AttachAttaching
			x.UpdatedAt = s.now().UTC()
			out = x
		}
		if out == nil {
			return attachmentNotFound(id)
		}
		volumeStatusAfter(v)
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	info, err := s.connectionInfo(ctx, v, out)
	if err != nil {
		return nil, nil, nil, err
	}
	return out, v, info, nil
}

func (s *Service) connectionInfo(ctx context.Context, v *Volume, a *Attachment) (map[string]any, error) {
	b, err := s.backendOf(v)
	if err != nil {
		return nil, err
	}
	if v.Location == nil {
		return nil, errors.New("volume has no location")
	}
	conn, err := b.Connect(ctx, *v.Location)
	if err != nil {
		return nil, err
	}
	info := conn.Info(a.Mode == "ro")
	data := info["data"].(map[string]any)
	data["volume_id"] = v.ID
	data["attachment_id"] = a.ID
	data["serial"] = v.ID
	// Cinder's qos_specs: the limits of a front-end spec, else null.
	qos, err := s.frontendQoS(ctx, v)
	if err != nil {
		return nil, err
	}
	data["qos_specs"] = nil
	if qos != nil {
		data["qos_specs"] = qos
	}
	return info, nil
}

// CompleteAttachment marks an attachment attached (os-complete).
func (s *Service) CompleteAttachment(ctx context.Context, id, mountpoint string) error {
	c := callerOf(ctx)
	a, err := s.loadAttachment(ctx, c, id, ruleAttachComplete)
	if err != nil {
		return err
	}
	_, err = s.store.UpdateVolume(ctx, a.VolumeID, func(_ *sql.Tx, v *Volume) error {
		found := false
		for _, x := range v.Attachments {
			if x.ID == id {
				found = true
				x.Status = AttachAttached
				x.AttachTime = s.now().UTC()
				x.UpdatedAt = x.AttachTime
				if mountpoint != "" {
					x.Mountpoint = &mountpoint
				}
			}
		}
		if !found {
			return attachmentNotFound(id)
		}
		volumeStatusAfter(v)
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	return err
}

// BeginDetach marks a volume detaching for the attachment (Nova's first
// step of a detach), refusing when the volume is busy.
func (s *Service) BeginDetach(ctx context.Context, id string) error {
	c := callerOf(ctx)
	a, err := s.loadAttachment(ctx, c, id, ruleAttachDelete)
	if err != nil {
		return err
	}
	_, err = s.store.UpdateVolume(ctx, a.VolumeID, func(_ *sql.Tx, v *Volume) error {
		if v.Status != StatusInUse {
			return apiutil.BadRequest("Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
		}
		v.Status = StatusDetaching
		v.AttachStatus = AttachDetaching
		return nil
	})
	return err
}

// RollDetach undoes BeginDetach after a failed detach.
func (s *Service) RollDetach(ctx context.Context, volumeID string) {
	_, _ = s.store.UpdateVolume(context.WithoutCancel(ctx), volumeID, func(_ *sql.Tx, v *Volume) error {
		volumeStatusAfter(v)
		return nil
	})
}

// DeleteAttachment removes an attachment; the volume becomes available
// when it was the last one. It returns the volume afterwards.
func (s *Service) DeleteAttachment(ctx context.Context, id string) (*Volume, error) {
	c := callerOf(ctx)
	a, err := s.loadAttachment(ctx, c, id, ruleAttachDelete)
	if err != nil {
		return nil, err
	}
	return s.store.UpdateVolume(ctx, a.VolumeID, func(_ *sql.Tx, v *Volume) error {
		kept := v.Attachments[:0]
		for _, x := range v.Attachments {
			if x.ID != id {
				kept = append(kept, x)
			}
		}
		v.Attachments = kept
		volumeStatusAfter(v)
		v.UpdatedAt = s.now().UTC()
		return nil
	})
}

// rollbackAttach settles a volume left attaching or detaching by a
// previous process: attachments that never completed are dropped,
// completed ones stay, and the status follows from what is left.
func (s *Service) rollbackAttach(ctx context.Context, id string) {
	_, err := s.store.UpdateVolume(ctx, id, func(_ *sql.Tx, v *Volume) error {
		kept := v.Attachments[:0]
		for _, a := range v.Attachments {
			if a.Status == AttachAttached {
				kept = append(kept, a)
			}
		}
		v.Attachments = kept
		volumeStatusAfter(v)
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		s.log.Warn("roll back interrupted attachment", "volume", id, "err", err)
		return
	}
	s.log.Info("rolled back interrupted attach/detach", "volume", id)
}

// InstanceAttachments lists the attachments of an instance (all projects:
// the caller has already been authorized on the instance).
func (s *Service) InstanceAttachments(ctx context.Context, instance string) ([]*Attachment, error) {
	return s.store.ListAttachments(ctx, AttachmentQuery{AllProjects: true, InstanceUUID: &instance})
}

// InstancesAttachments returns the attachments of instances, by instance,
// with one query.
func (s *Service) InstancesAttachments(ctx context.Context, instances []string) (map[string][]*Attachment, error) {
	out := map[string][]*Attachment{}
	if len(instances) == 0 {
		return out, nil
	}
	as, err := s.store.ListAttachments(ctx, AttachmentQuery{AllProjects: true, InstanceUUIDs: instances})
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.InstanceUUID != nil {
			out[*a.InstanceUUID] = append(out[*a.InstanceUUID], a)
		}
	}
	return out, nil
}

// ReapInstances settles the attachments of instances that no longer
// exist: their attachments are dropped and volumes marked
// delete_on_termination are deleted.
func (s *Service) ReapInstances(ctx context.Context, exists func(ctx context.Context, uuid string) (bool, error)) error {
	ids, err := s.store.InstancesWithAttachments(ctx)
	if err != nil {
		return err
	}
	for _, inst := range ids {
		ok, err := exists(ctx, inst)
		if err != nil || ok {
			continue
		}
		if err := s.ReleaseInstance(ctx, inst); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseInstance settles the attachments of a deleted instance: each is
// dropped, and volumes marked delete_on_termination (and attached nowhere
// else) are deleted. Compute calls it as it deletes a server; the reaper
// catches the servers deleted while it could not.
func (s *Service) ReleaseInstance(ctx context.Context, inst string) error {
	atts, err := s.InstanceAttachments(ctx, inst)
	if err != nil {
		return err
	}
	for _, a := range atts {
		v, err := s.store.UpdateVolume(ctx, a.VolumeID, func(tx *sql.Tx, v *Volume) error {
			kept := v.Attachments[:0]
			for _, x := range v.Attachments {
				if x.ID != a.ID {
					kept = append(kept, x)
				}
			}
			v.Attachments = kept
			volumeStatusAfter(v)
			if a.DeleteOnTermination && len(kept) == 0 {
				// As in Nova, a volume Cinder refuses to delete (it has
				// snapshots) stays, available.
				n, err := s.store.CountSnapshots(ctx, tx, v.ID)
				if err != nil {
					return err
				}
				if n == 0 {
					v.Status, v.Task = StatusDeleting, &Task{Op: "delete"}
				}
			}
			v.UpdatedAt = s.now().UTC()
			return nil
		})
		if err != nil {
			continue
		}
		s.log.Info("detached volume of deleted instance", "volume", a.VolumeID, "instance", inst, "delete", a.DeleteOnTermination)
		if v.Task != nil && v.Task.Op == "delete" {
			s.kickVolume(v.ID)
		}
	}
	return nil
}

// InstanceConnection is an attachment of an instance with how its host
// reaches the volume.
type InstanceConnection struct {
	Attachment *Attachment
	Volume     *Volume
	Info       map[string]any // Cinder's connection_info
}

// InstanceConnections lists the attached volumes of an instance with
// their connection info (Compute respawning a server on a host).
func (s *Service) InstanceConnections(ctx context.Context, instance string) ([]InstanceConnection, error) {
	atts, err := s.InstanceAttachments(ctx, instance)
	if err != nil {
		return nil, err
	}
	var out []InstanceConnection
	for _, a := range atts {
		if a.Status != AttachAttached {
			continue
		}
		v, err := s.store.GetVolume(ctx, nil, a.VolumeID)
		if err != nil {
			return nil, err
		}
		info, err := s.connectionInfo(ctx, v, a)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.ID, err)
		}
		out = append(out, InstanceConnection{Attachment: a, Volume: v, Info: info})
	}
	return out, nil
}

// reapLoop runs ReapInstances every interval.
func (s *Service) reapLoop(ctx context.Context, every time.Duration, exists func(ctx context.Context, uuid string) (bool, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.ReapInstances(ctx, exists); err != nil && ctx.Err() == nil {
				s.log.Warn("reap attachments of deleted instances", "err", err)
			}
		}
	}
}
