package volume

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func snapshotNotFound(id string) error {
	return apiutil.NotFound("Snapshot %s could not be found.", id)
}

func (s *Service) loadSnapshot(ctx context.Context, c caller, id, rule string) (*Snapshot, error) {
	sn, err := s.store.GetSnapshot(ctx, nil, id)
	if errors.Is(err, errNoRow) {
		return nil, snapshotNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if sn.ProjectID != c.project && !c.admin {
		return nil, snapshotNotFound(id)
	}
	if err := s.authorize(c, rule, sn.ProjectID); err != nil {
		return nil, err
	}
	return sn, nil
}

// GetSnapshot returns a snapshot.
func (s *Service) GetSnapshot(ctx context.Context, id string) (*Snapshot, error) {
	return s.loadSnapshot(ctx, callerOf(ctx), id, ruleSnapGet)
}

// SnapshotRequest is a validated snapshot create request.
type SnapshotRequest struct {
	VolumeID          string
	Name, Description *string
	Force             bool
	Metadata          map[string]string
}

// CreateSnapshot starts a snapshot of a volume.
func (s *Service) CreateSnapshot(ctx context.Context, req SnapshotRequest) (*Snapshot, error) {
	c := callerOf(ctx)
	v, err := s.store.GetVolume(ctx, nil, req.VolumeID)
	if errors.Is(err, errNoRow) || err == nil && v.ProjectID != c.project && !c.admin {
		return nil, volumeNotFound(req.VolumeID)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleSnapCreate, v.ProjectID); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	sn := &Snapshot{ID: newUUID(), ProjectID: v.ProjectID, UserID: c.user, VolumeID: v.ID, Name: req.Name,
		Description: req.Description, Size: v.Size, Status: SnapCreating, Progress: "0%", Metadata: req.Metadata,
		Task: &Task{Op: "create"}, CreatedAt: now, UpdatedAt: now}
	if sn.Metadata == nil {
		sn.Metadata = map[string]string{}
	}
	err = s.store.CreateSnapshot(ctx, sn, func(tx *sql.Tx) error {
		cur, err := s.store.GetVolume(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		ok := cur.Status == StatusAvailable || req.Force && cur.Status == StatusInUse
		if !ok {
			if cur.Status == StatusInUse {
				return apiutil.BadRequest("Invalid volume: Volume %s status must be available, but current status is: in-use. Use force to snapshot an in-use volume.", v.ID)
			}
			return apiutil.BadRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", v.ID, cur.Status)
		}
		return s.checkQuota(ctx, tx, v.ProjectID, 0, 1, int64(v.Size), 0, &VolumeType{ID: cur.TypeID, Name: cur.TypeName})
	})
	if err != nil {
		return nil, err
	}
	s.kickSnapshot(sn.ID)
	return sn, nil
}

func (s *Service) kickSnapshot(id string) {
	s.background(func(ctx context.Context) { s.stepSnapshot(ctx, id) })
}

// stepSnapshot runs a snapshot's pending step (create or delete).
func (s *Service) stepSnapshot(ctx context.Context, id string) {
	unlock := s.lock(id)
	defer unlock()
	sn, err := s.store.GetSnapshot(ctx, nil, id)
	if err != nil || sn.Task == nil {
		return
	}
	v, err := s.store.GetVolume(ctx, nil, sn.VolumeID)
	if err != nil {
		return
	}
	b, err := s.backendOf(v)
	fail := func(status string) {
		if ctx.Err() != nil {
			return
		}
		_, _ = s.store.UpdateSnapshot(context.WithoutCancel(ctx), id, func(_ *sql.Tx, sn *Snapshot) error {
			sn.Status, sn.Task, sn.UpdatedAt = status, nil, s.now().UTC()
			return nil
		})
		s.log.Warn("snapshot step failed", "snapshot", id, "err", err)
	}
	switch sn.Task.Op {
	case "create":
		var loc string
		if err == nil && v.Location == nil {
			err = errors.New("volume has no location")
		}
		if err == nil {
			loc, err = b.Snapshot(ctx, *v.Location, id)
		}
		if err != nil {
			fail(SnapError)
			return
		}
		_, _ = s.store.UpdateSnapshot(context.WithoutCancel(ctx), id, func(_ *sql.Tx, sn *Snapshot) error {
			sn.Status, sn.Progress, sn.Location, sn.Task, sn.UpdatedAt = SnapAvailable, "100%", &loc, nil, s.now().UTC()
			return nil
		})
	case "delete":
		if err == nil && sn.Location != nil {
			err = b.DeleteSnapshot(ctx, *sn.Location)
		}
		if err != nil {
			fail(SnapErrorDeleting)
			return
		}
		_ = s.store.DeleteSnapshot(context.WithoutCancel(ctx), id)
	}
}

// ListSnapshots returns a page of snapshots and whether more follow.
func (s *Service) ListSnapshots(ctx context.Context, q SnapshotQuery, marker string) ([]*Snapshot, bool, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleSnapGetAll, c.project); err != nil {
		return nil, false, err
	}
	if !c.admin || !q.AllProjects {
		q.AllProjects, q.Project = false, c.project
	}
	if marker != "" {
		m, err := s.store.GetSnapshot(ctx, nil, marker)
		if errors.Is(err, errNoRow) || err == nil && m.ProjectID != c.project && !c.admin {
			return nil, false, apiutil.NotFound("Marker %s could not be found.", marker)
		}
		if err != nil {
			return nil, false, err
		}
		q.Marker = m
	}
	return page(q.Limit, s.cfg.MaxLimit, func(n int) ([]*Snapshot, error) {
		q.Limit = n
		return s.store.ListSnapshots(ctx, q)
	})
}

// UpdateSnapshot changes name, description or metadata.
func (s *Service) UpdateSnapshot(ctx context.Context, id string, req UpdateRequest, replaceMeta bool) (*Snapshot, error) {
	c := callerOf(ctx)
	rule := ruleSnapUpdate
	if req.Metadata != nil {
		rule = ruleSnapMetadata
	}
	if _, err := s.loadSnapshot(ctx, c, id, rule); err != nil {
		return nil, err
	}
	return s.store.UpdateSnapshot(ctx, id, func(_ *sql.Tx, sn *Snapshot) error {
		if req.SetName {
			sn.Name = req.Name
		}
		if req.SetDesc {
			sn.Description = req.Description
		}
		if req.Metadata != nil {
			if replaceMeta {
				sn.Metadata = map[string]string{}
			}
			maps.Copy(sn.Metadata, req.Metadata)
		}
		sn.UpdatedAt = s.now().UTC()
		return nil
	})
}

// DeleteSnapshotMetadata removes one key.
func (s *Service) DeleteSnapshotMetadata(ctx context.Context, id, key string) error {
	c := callerOf(ctx)
	if _, err := s.loadSnapshot(ctx, c, id, ruleSnapMetadata); err != nil {
		return err
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(_ *sql.Tx, sn *Snapshot) error {
		if _, ok := sn.Metadata[key]; !ok {
			return apiutil.NotFound("Metadata item was not found")
		}
		delete(sn.Metadata, key)
		sn.UpdatedAt = s.now().UTC()
		return nil
	})
	return err
}

// DeleteSnapshot starts deleting a snapshot. Volumes created from it
// keep their own copy of the data, so they do not block the delete.
func (s *Service) DeleteSnapshot(ctx context.Context, id string) error {
	c := callerOf(ctx)
	if _, err := s.loadSnapshot(ctx, c, id, ruleSnapDelete); err != nil {
		return err
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(_ *sql.Tx, sn *Snapshot) error {
		if !slices.Contains([]string{SnapAvailable, SnapError}, sn.Status) {
			return apiutil.BadRequest("Invalid snapshot: Volume Snapshot status must be available or error.")
		}
		sn.Status, sn.Task, sn.UpdatedAt = SnapDeleting, &Task{Op: "delete"}, s.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.kickSnapshot(id)
	return nil
}

// ResetSnapshotStatus is the admin os-reset_status on a snapshot.
func (s *Service) ResetSnapshotStatus(ctx context.Context, id, status string) error {
	c := callerOf(ctx)
	if _, err := s.loadSnapshot(ctx, c, id, ruleSnapResetStatus); err != nil {
		return err
	}
	if !slices.Contains([]string{SnapCreating, SnapAvailable, SnapDeleting, SnapError, SnapErrorDeleting}, status) {
		return apiutil.BadRequest("Invalid input received: Must specify a valid status")
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(_ *sql.Tx, sn *Snapshot) error {
		sn.Status, sn.Task, sn.UpdatedAt = status, nil, s.now().UTC()
		return nil
	})
	return err
}
