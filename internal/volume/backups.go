package volume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

// Backup rules (Cinder's names).
const (
	ruleBackupCreate  = "backup:create"
	ruleBackupGet     = "backup:get"
	ruleBackupGetAll  = "backup:get_all"
	ruleBackupDelete  = "backup:delete"
	ruleBackupRestore = "backup:restore"
	ruleBackupUpdate  = "backup:update"
	ruleBackupAdmin   = "volume_extension:backup_admin_actions:reset_status"
	ruleBackupForce   = "volume_extension:backup_admin_actions:force_delete"
)

func backupRules() []policy.Rule {
	const (
		admin  = "role:admin"
		member = "role:admin or (role:member and project_id:%(project_id)s)"
		reader = "role:admin or (role:reader and project_id:%(project_id)s)"
	)
	return []policy.Rule{
		{Name: ruleBackupCreate, Check: member, Description: "Back up a volume."},
		{Name: ruleBackupGet, Check: reader, Description: "Show a backup."},
		{Name: ruleBackupGetAll, Check: reader, Description: "List backups."},
		{Name: ruleBackupDelete, Check: member, Description: "Delete a backup."},
		{Name: ruleBackupRestore, Check: member, Description: "Restore a backup to a volume."},
		{Name: ruleBackupUpdate, Check: member, Description: "Update a backup's name or description."},
		{Name: ruleBackupAdmin, Check: admin, Description: "Reset a backup's status."},
		{Name: ruleBackupForce, Check: admin, Description: "Force-delete a backup."},
	}
}

func backupNotFound(id string) error { return apiutil.NotFound("Backup %s could not be found.", id) }

func (s *Service) backupsOn() error {
	if s.cfg.BackupDir == "" {
		return &apiutil.Error{Status: 501, Message: "Backups are not configured.", Err: apiutil.ErrUnsupported}
	}
	return nil
}

func (s *Service) loadBackup(ctx context.Context, c caller, id, rule string) (*Backup, error) {
	if err := s.backupsOn(); err != nil {
		return nil, err
	}
	b, err := s.store.GetBackup(ctx, nil, id)
	if errors.Is(err, errNoRow) || err == nil && b.ProjectID != c.project && !c.admin {
		return nil, backupNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, rule, b.ProjectID); err != nil {
		return nil, err
	}
	return b, nil
}

// GetBackup returns a backup.
func (s *Service) GetBackup(ctx context.Context, id string) (*Backup, error) {
	return s.loadBackup(ctx, callerOf(ctx), id, ruleBackupGet)
}

// BackupRequest creates a backup.
type BackupRequest struct {
	VolumeID          string
	Name, Description *string
	Force             bool
	Incremental       bool
}

// CreateBackup starts a full backup of a volume.
func (s *Service) CreateBackup(ctx context.Context, req BackupRequest) (*Backup, error) {
	c := callerOf(ctx)
	if err := s.backupsOn(); err != nil {
		return nil, err
	}
	if req.Incremental {
		return nil, apiutil.BadRequest("Invalid backup: Incremental backups are not supported; make a full backup.")
	}
	v, err := s.store.GetVolume(ctx, nil, req.VolumeID)
	if errors.Is(err, errNoRow) || err == nil && v.ProjectID != c.project && !c.admin {
		return nil, volumeNotFound(req.VolumeID)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleBackupCreate, v.ProjectID); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	b := &Backup{ID: newUUID(), ProjectID: v.ProjectID, UserID: c.user, VolumeID: v.ID, Name: req.Name,
		Description: req.Description, Size: v.Size, Status: BackupCreating, Task: &Task{Op: "create"}, CreatedAt: now, UpdatedAt: now}
	err = s.store.CreateBackupWith(ctx, b, func(tx *sql.Tx) error {
		l, err := s.limitsOf(ctx, tx, v.ProjectID)
		if err != nil {
			return err
		}
		n, gb, err := s.store.BackupUsage(ctx, tx, v.ProjectID)
		if err != nil {
			return err
		}
		if lim := l["backups"]; lim >= 0 && n+1 > lim {
			return overLimit("BackupLimitExceeded: Maximum number of backups allowed (%d) exceeded", lim)
		}
		if lim := l["backup_gigabytes"]; lim >= 0 && gb+int64(v.Size) > lim {
			return overLimit("VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.", v.Size, lim, gb)
		}
		return nil
	}, func(_ *sql.Tx, v *Volume) error {
		if v.Status != StatusAvailable && !(req.Force && v.Status == StatusInUse) {
			return apiutil.BadRequest("Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"%s\".", v.Status)
		}
		if v.Location == nil {
			return apiutil.BadRequest("Invalid volume: Volume %s has no data to back up.", v.ID)
		}
		v.AdminMeta["backup_prev_status"] = v.Status
		v.Status = StatusBackingUp
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.kickBackup(b.ID)
	return b, nil
}

func (s *Service) kickBackup(id string) {
	s.background(func(ctx context.Context) { s.stepBackup(ctx, id) })
}

func (s *Service) backupPath(id string) string {
	return filepath.Join(s.cfg.BackupDir, "backup-"+id+".qcow2")
}

// stepBackup runs a backup's pending step: create, restore or delete.
func (s *Service) stepBackup(ctx context.Context, id string) {
	unlock := s.lock(id)
	defer unlock()
	b, err := s.store.GetBackup(ctx, nil, id)
	if err != nil || b.Task == nil {
		return
	}
	var stepErr error
	switch b.Task.Op {
	case "create":
		stepErr = s.backupCreate(ctx, b)
	case "restore":
		stepErr = s.backupRestore(ctx, b)
	case "delete":
		if stepErr = os.Remove(s.backupPath(id)); errors.Is(stepErr, os.ErrNotExist) {
			stepErr = nil
		}
		if stepErr == nil {
			stepErr = s.store.DeleteBackup(context.WithoutCancel(ctx), id)
		}
	}
	if stepErr != nil && ctx.Err() == nil {
		s.log.Warn("backup step failed", "backup", id, "op", b.Task.Op, "err", stepErr)
		reason := stepErr.Error()
		_, _ = s.store.UpdateBackup(context.WithoutCancel(ctx), id, func(_ *sql.Tx, b *Backup) error {
			b.Status, b.Task, b.FailReason, b.UpdatedAt = BackupError, nil, &reason, s.now().UTC()
			return nil
		})
	}
}

// settleVolume puts a volume back after a backup step.
func (s *Service) settleVolume(ctx context.Context, id string, fn func(v *Volume)) {
	_, _ = s.store.UpdateVolume(context.WithoutCancel(ctx), id, func(_ *sql.Tx, v *Volume) error {
		fn(v)
		v.UpdatedAt = s.now().UTC()
		return nil
	})
}

func (s *Service) backupCreate(ctx context.Context, b *Backup) error {
	v, err := s.store.GetVolume(ctx, nil, b.VolumeID)
	if err != nil {
		return err
	}
	restore := func(v *Volume) {
		if v.Status == StatusBackingUp {
			v.Status = v.AdminMeta["backup_prev_status"]
			if v.Status == "" {
				v.Status = StatusAvailable
			}
		}
		delete(v.AdminMeta, "backup_prev_status")
	}
	err = func() error {
		bk, err := s.backendOf(v)
		if err != nil || v.Location == nil {
			return fmt.Errorf("volume %s has no data: %v", v.ID, err)
		}
		conn, err := bk.Connect(ctx, *v.Location)
		if err != nil {
			return err
		}
		tmp := s.backupPath(b.ID) + ".tmp"
		_ = os.Remove(tmp)
		if err := backend.ExportCompressed(ctx, conn, tmp); err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, s.backupPath(b.ID))
	}()
	if err != nil {
		if ctx.Err() == nil {
			s.settleVolume(ctx, v.ID, restore)
		}
		return err
	}
	loc := s.backupPath(b.ID)
	s.settleVolume(ctx, v.ID, restore)
	_, err = s.store.UpdateBackup(context.WithoutCancel(ctx), b.ID, func(_ *sql.Tx, b *Backup) error {
		b.Status, b.Location, b.Task, b.UpdatedAt = BackupAvailable, &loc, nil, s.now().UTC()
		return nil
	})
	s.log.Info("backed up volume", "backup", b.ID, "volume", v.ID)
	return err
}

func (s *Service) backupRestore(ctx context.Context, b *Backup) error {
	target := b.Task.VolumeID
	v, err := s.store.GetVolume(ctx, nil, target)
	if err != nil {
		return err
	}
	err = func() error {
		bk, err := s.backendOf(v)
		if err != nil {
			return err
		}
		if v.Location == nil {
			loc, err := bk.Create(ctx, v.ID, v.Size, nil)
			if err != nil {
				return err
			}
			if _, err := s.store.UpdateVolume(ctx, v.ID, func(_ *sql.Tx, v *Volume) error { v.Location = &loc; return nil }); err != nil {
				return err
			}
			v.Location = &loc
		}
		conn, err := bk.Connect(ctx, *v.Location)
		if err != nil {
			return err
		}
		return backend.Import(ctx, b.Location, conn)
	}()
	if err != nil {
		if ctx.Err() == nil {
			s.settleVolume(ctx, v.ID, func(v *Volume) { v.Status = "error_restoring" })
			_, _ = s.store.UpdateBackup(context.WithoutCancel(ctx), b.ID, func(_ *sql.Tx, b *Backup) error {
				b.Status, b.Task, b.UpdatedAt = BackupAvailable, nil, s.now().UTC()
				return nil
			})
		}
		return err
	}
	s.settleVolume(ctx, v.ID, func(v *Volume) { v.Status = StatusAvailable })
	_, err = s.store.UpdateBackup(context.WithoutCancel(ctx), b.ID, func(_ *sql.Tx, b *Backup) error {
		b.Status, b.Task, b.UpdatedAt = BackupAvailable, nil, s.now().UTC()
		return nil
	})
	s.log.Info("restored backup", "backup", b.ID, "volume", v.ID)
	return err
}

// ListBackups lists backups and whether more follow.
func (s *Service) ListBackups(ctx context.Context, q BackupQuery) ([]*Backup, bool, error) {
	c := callerOf(ctx)
	if err := s.backupsOn(); err != nil {
		return nil, false, err
	}
	if err := s.authorize(c, ruleBackupGetAll, c.project); err != nil {
		return nil, false, err
	}
	if !c.admin || !q.AllProjects {
		q.AllProjects, q.Project = false, c.project
	}
	return page(q.Limit, s.cfg.MaxLimit, func(n int) ([]*Backup, error) {
		q.Limit = n
		return s.store.ListBackups(ctx, q)
	})
}

// UpdateBackup changes a backup's name or description.
func (s *Service) UpdateBackup(ctx context.Context, id string, req UpdateRequest) (*Backup, error) {
	c := callerOf(ctx)
	if _, err := s.loadBackup(ctx, c, id, ruleBackupUpdate); err != nil {
		return nil, err
	}
	return s.store.UpdateBackup(ctx, id, func(_ *sql.Tx, b *Backup) error {
		if req.SetName {
			b.Name = req.Name
		}
		if req.SetDesc {
			b.Description = req.Description
		}
		b.UpdatedAt = s.now().UTC()
		return nil
	})
}

// DeleteBackup starts deleting a backup (force: any status but deleting).
func (s *Service) DeleteBackup(ctx context.Context, id string, force bool) error {
	c := callerOf(ctx)
	rule := ruleBackupDelete
	if force {
		rule = ruleBackupForce
	}
	if _, err := s.loadBackup(ctx, c, id, rule); err != nil {
		return err
	}
	_, err := s.store.UpdateBackup(ctx, id, func(_ *sql.Tx, b *Backup) error {
		ok := b.Status == BackupAvailable || b.Status == BackupError || force && b.Status != BackupDeleting
		if !ok {
			return apiutil.BadRequest("Invalid backup: Backup status must be available or error")
		}
		b.Status, b.Task, b.UpdatedAt = BackupDeleting, &Task{Op: "delete"}, s.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.kickBackup(id)
	return nil
}

// ResetBackupStatus is the admin os-reset_status of a backup.
func (s *Service) ResetBackupStatus(ctx context.Context, id, status string) error {
	c := callerOf(ctx)
	if _, err := s.loadBackup(ctx, c, id, ruleBackupAdmin); err != nil {
		return err
	}
	if status != BackupAvailable && status != BackupError {
		return apiutil.BadRequest("Invalid input received: Must specify a valid status (available or error).")
	}
	_, err := s.store.UpdateBackup(ctx, id, func(_ *sql.Tx, b *Backup) error {
		b.Status, b.Task, b.UpdatedAt = status, nil, s.now().UTC()
		return nil
	})
	return err
}

// RestoreBackup writes a backup into volumeID, or into a new volume when
// volumeID is empty; it returns the target volume.
func (s *Service) RestoreBackup(ctx context.Context, id, volumeID string, name *string) (*Volume, error) {
	c := callerOf(ctx)
	b, err := s.loadBackup(ctx, c, id, ruleBackupRestore)
	if err != nil {
		return nil, err
	}
	if b.Status != BackupAvailable {
		return nil, apiutil.BadRequest("Invalid backup: Backup status must be available")
	}
	var target *Volume
	if volumeID == "" {
		t, err := s.resolveType(ctx, c, "")
		if err != nil {
			return nil, err
		}
		n := name
		if n == nil {
			s := "restore_backup_" + b.ID
			n = &s
		}
		nv, err := s.Create(ctx, CreateRequest{Name: n, Size: b.Size, Type: t.ID, restoring: true})
		if err != nil {
			return nil, err
		}
		target = nv
	} else {
		v, err := s.load(ctx, c, volumeID, ruleUpdate)
		if err != nil {
			return nil, err
		}
		target, err = s.store.UpdateVolume(ctx, v.ID, func(_ *sql.Tx, v *Volume) error {
			if v.Status != StatusAvailable {
				return apiutil.BadRequest("Invalid volume: Volume to be restored to must be available")
			}
			if v.Size < b.Size {
				return apiutil.BadRequest("Invalid volume: volume size %d is too small to restore backup of size %d.", v.Size, b.Size)
			}
			v.Status = StatusRestoringBackup
			v.UpdatedAt = s.now().UTC()
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	_, err = s.store.UpdateBackup(ctx, id, func(_ *sql.Tx, b *Backup) error {
		if b.Status != BackupAvailable {
			return apiutil.BadRequest("Invalid backup: Backup status must be available")
		}
		b.Status, b.Task, b.UpdatedAt = BackupRestoring, &Task{Op: "restore", VolumeID: target.ID}, s.now().UTC()
		return nil
	})
	if err != nil {
		s.settleVolume(ctx, target.ID, func(v *Volume) {
			if v.Status == StatusRestoringBackup {
				v.Status = StatusAvailable
			}
		})
		return nil, err
	}
	s.kickBackup(id)
	return target, nil
}
