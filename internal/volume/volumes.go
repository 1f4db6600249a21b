package volume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

func volumeNotFound(id string) error {
	return apiutil.NotFound("Volume %s could not be found.", id)
}

// CreateRequest is a validated volume create request.
type CreateRequest struct {
	Name, Description *string
	Size              int // 0: take the source's size
	Type              string
	Zone              string
	SnapshotID        string
	SourceVolID       string
	ImageID           string
	Metadata          map[string]string
	Multiattach       bool // the pre-3.50 multiattach flag
	// restoring creates the volume for a backup restore: it is created
	// by the restore step, in status restoring-backup.
	restoring bool
}

// load reads a volume the caller may see (404 otherwise) and authorizes
// rule on it.
func (s *Service) load(ctx context.Context, c caller, id, rule string) (*Volume, error) {
	v, err := s.store.GetVolume(ctx, nil, id)
	if errors.Is(err, errNoRow) {
		return nil, volumeNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if v.ProjectID != c.project && !c.admin {
		return nil, volumeNotFound(id)
	}
	if err := s.authorize(c, rule, v.ProjectID); err != nil {
		return nil, err
	}
	return v, nil
}

// Get returns a volume.
func (s *Service) Get(ctx context.Context, id string) (*Volume, error) {
	return s.load(ctx, callerOf(ctx), id, ruleGet)
}

// resolveType finds a type by name or id that the caller may use.
func (s *Service) resolveType(ctx context.Context, c caller, key string) (*VolumeType, error) {
	if key == "" {
		key = s.cfg.DefaultType
	}
	t, err := s.store.GetType(ctx, nil, key, false)
	if errors.Is(err, errNoRow) {
		t, err = s.store.GetType(ctx, nil, key, true)
	}
	if errors.Is(err, errNoRow) {
		return nil, apiutil.NotFound("Volume type with name %s could not be found.", key)
	}
	if err != nil {
		return nil, err
	}
	if !t.IsPublic && !c.admin {
		ok, err := s.store.HasTypeAccess(ctx, t.ID, c.project)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apiutil.NotFound("Volume type with name %s could not be found.", key)
		}
	}
	return t, nil
}

func specTrue(v string) bool {
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "<is>"))
	b, _ := strconv.ParseBool(v)
	return b || strings.EqualFold(v, "true")
}

func ceilGB(bytes int64) int {
	return int((bytes + backend.GiB - 1) / backend.GiB)
}

// Create validates a request, checks quota, stores the volume as
// creating and starts the create step.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Volume, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleCreate, c.project); err != nil {
		return nil, err
	}
	if req.Zone != "" && req.Zone != s.cfg.Zone {
		return nil, apiutil.BadRequest("Availability zone '%s' is invalid.", req.Zone)
	}
	typeKey := req.Type
	now := s.now().UTC()
	v := &Volume{ID: newUUID(), ProjectID: c.project, UserID: c.user, Name: req.Name, Description: req.Description,
		Size: req.Size, Status: StatusCreating, AttachStatus: AttachDetached, Zone: s.cfg.Zone,
		Metadata: req.Metadata, ImageMeta: map[string]string{}, AdminMeta: map[string]string{},
		Task: &Task{Op: "create"}, CreatedAt: now, UpdatedAt: now}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	var srcHost *string
	switch {
	case req.SnapshotID != "":
		sn, err := s.store.GetSnapshot(ctx, nil, req.SnapshotID)
		if errors.Is(err, errNoRow) || err == nil && sn.ProjectID != c.project && !c.admin {
			return nil, apiutil.NotFound("Snapshot %s could not be found.", req.SnapshotID)
		}
		if err != nil {
			return nil, err
		}
		if sn.Status != SnapAvailable {
			return nil, apiutil.BadRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		if v.Size == 0 {
			v.Size = sn.Size
		}
		if v.Size < sn.Size {
			return nil, apiutil.BadRequest("Invalid input received: Volume size '%d' must be an integer and greater than 0 (snapshot size %dGB).", v.Size, sn.Size)
		}
		src, err := s.store.GetVolume(ctx, nil, sn.VolumeID)
		if err != nil {
			return nil, err
		}
		v.SnapshotID, srcHost = &sn.ID, src.Host
		v.Bootable, v.ImageMeta = src.Bootable, maps.Clone(src.ImageMeta)
		if typeKey == "" {
			typeKey = src.TypeID
		}
	case req.SourceVolID != "":
		src, err := s.store.GetVolume(ctx, nil, req.SourceVolID)
		if errors.Is(err, errNoRow) || err == nil && src.ProjectID != c.project && !c.admin {
			return nil, apiutil.NotFound("Volume %s could not be found.", req.SourceVolID)
		}
		if err != nil {
			return nil, err
		}
		if src.Status != StatusAvailable && src.Status != StatusInUse {
			return nil, apiutil.BadRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", src.ID, src.Status)
		}
		if v.Size == 0 {
			v.Size = src.Size
		}
		if v.Size < src.Size {
			return nil, apiutil.BadRequest("Invalid input received: Clones currently must be >= original volume size.")
		}
		v.SourceVolID, srcHost = &src.ID, src.Host
		v.Bootable, v.ImageMeta = src.Bootable, maps.Clone(src.ImageMeta)
		if typeKey == "" {
			typeKey = src.TypeID
		}
	case req.ImageID != "":
		if s.cfg.Images == nil {
			return nil, apiutil.BadRequest("Invalid image identifier or unable to access requested image.")
		}
		img, err := s.cfg.Images.Get(ctx, req.ImageID)
		if errors.Is(err, ErrImageNotFound) {
			return nil, apiutil.BadRequest("Invalid image identifier or unable to access requested image.")
		}
		if err != nil {
			return nil, err
		}
		if img.Status != "active" {
			return nil, apiutil.BadRequest("Invalid input received: Image %s is not active.", img.ID)
		}
		need := max(ceilGB(img.Size), int(img.MinDisk))
		if v.Size == 0 {
			return nil, apiutil.BadRequest("Invalid input received: Volume size must be specified when creating a volume from an image.")
		}
		if v.Size < need {
			return nil, apiutil.BadRequest("Invalid input received: Size of specified image %dGB is larger than volume size %dGB.", need, v.Size)
		}
		v.ImageID = &img.ID
		v.Bootable = true
		v.ImageMeta = imageMetadata(img)
	}
	if v.Size <= 0 {
		return nil, apiutil.BadRequest("Invalid input received: Volume size '%d' must be an integer and greater than 0.", req.Size)
	}
	t, err := s.resolveType(ctx, c, typeKey)
	if err != nil {
		return nil, err
	}
	v.TypeID, v.TypeName = t.ID, t.Name
	v.Multiattach = specTrue(t.ExtraSpecs["multiattach"]) || req.Multiattach
	if req.Multiattach && !specTrue(t.ExtraSpecs["multiattach"]) {
		return nil, apiutil.BadRequest("Invalid input received: The volume type %s does not allow multiattach; use a type with multiattach=\"<is> True\".", t.Name)
	}
	if srcHost != nil {
		v.Host = srcHost // clones and snapshots stay on their backend
	} else if b, err := s.schedule(ctx, t, v.Size); err == nil {
		host := s.hostOf(b)
		v.Host = &host
	} else {
		// As in Cinder, the volume exists, in error, when no backend
		// can hold it.
		s.log.Warn("no backend for volume", "volume", v.ID, "err", err)
		v.Status, v.Task = StatusError, nil
	}
	if req.restoring && v.Task != nil {
		v.Status, v.Task = StatusRestoringBackup, nil
	}
	err = s.store.CreateVolume(ctx, v, func(tx *sql.Tx) error {
		return s.checkQuota(ctx, tx, c.project, 1, 0, int64(v.Size), v.Size, t)
	})
	if err != nil {
		return nil, err
	}
	if v.Task != nil {
		s.log.Info("creating volume", "volume", v.ID, "size", v.Size, "type", t.Name)
		s.kickVolume(v.ID)
	}
	return v, nil
}

func imageMetadata(img *ImageInfo) map[string]string {
	m := map[string]string{}
	for k, v := range img.Properties {
		m[k] = v
	}
	m["image_id"] = img.ID
	m["image_name"] = img.Name
	m["checksum"] = img.Checksum
	m["container_format"] = img.ContainerFormat
	m["disk_format"] = img.DiskFormat
	m["min_disk"] = strconv.FormatInt(img.MinDisk, 10)
	m["min_ram"] = strconv.FormatInt(img.MinRAM, 10)
	m["size"] = strconv.FormatInt(img.Size, 10)
	return m
}

// ---- the scheduler ----

// schedule picks the backend for a volume: the one named by the type's
// volume_backend_name (any when unset) with room for size, preferring
// the most free space. Thin backends may be provisioned up to
// OverSubscription times their size.
func (s *Service) schedule(ctx context.Context, t *VolumeType, size int) (backend.Backend, error) {
	want := t.ExtraSpecs["volume_backend_name"]
	var best backend.Backend
	var bestFree float64
	states, _ := s.store.ServiceStates(ctx)
	for _, b := range s.cfg.Backends {
		if want != "" && b.Name() != want {
			continue
		}
		if st, ok := states["cinder-volume/"+s.cfg.Host+"@"+b.Name()]; ok && st.Disabled {
			continue
		}
		capa, err := b.Capacity(ctx)
		if err != nil {
			s.log.Warn("backend capacity", "backend", b.Name(), "err", err)
			continue
		}
		free := float64(capa.FreeGB)
		if capa.Thin {
			prov, err := s.store.ProvisionedGB(ctx, s.hostOf(b))
			if err != nil {
				return nil, err
			}
			free = float64(capa.TotalGB)*s.cfg.OverSubscription - float64(prov)
			if capa.FreeGB <= 0 {
				free = 0
			}
		}
		if free < float64(size) {
			continue
		}
		if best == nil || free > bestFree {
			best, bestFree = b, free
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no valid backend was found for type %s and size %dG", t.Name, size)
	}
	return best, nil
}

func (s *Service) backendOf(v *Volume) (backend.Backend, error) {
	b, ok := s.backends[v.Backend()]
	if !ok {
		return nil, fmt.Errorf("volume %s is on unknown backend %q", v.ID, v.Backend())
	}
	return b, nil
}

// ---- steps ----

// kickVolume runs the step a volume's task calls for, in the background.
func (s *Service) kickVolume(id string) {
	s.background(func(ctx context.Context) { s.stepVolume(ctx, id) })
}

func (s *Service) stepVolume(ctx context.Context, id string) {
	unlock := s.lock(id)
	defer unlock()
	v, err := s.store.GetVolume(ctx, nil, id)
	if err != nil || v.Task == nil {
		return
	}
	log := s.log.With("volume", id, "op", v.Task.Op)
	var stepErr error
	switch v.Task.Op {
	case "create":
		stepErr = s.stepCreate(ctx, v)
	case "delete":
		stepErr = s.stepDelete(ctx, v)
	case "extend":
		stepErr = s.stepExtend(ctx, v)
	case "upload":
		stepErr = s.stepUpload(ctx, v)
	case "reimage":
		stepErr = s.stepReimage(ctx, v)
	}
	if stepErr != nil {
		if ctx.Err() != nil {
			return // shutting down: the next start resumes the step
		}
		log.Warn("volume step failed", "err", stepErr)
		return
	}
	log.Debug("volume step done")
}

// finish ends a volume's task: fn sets the outcome.
func (s *Service) finish(ctx context.Context, id string, fn func(v *Volume)) {
	_, err := s.store.UpdateVolume(context.WithoutCancel(ctx), id, func(_ *sql.Tx, v *Volume) error {
		fn(v)
		v.Task = nil
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil && !errors.Is(err, errNoRow) {
		s.log.Error("finish volume step", "volume", id, "err", err)
	}
}

func (s *Service) stepCreate(ctx context.Context, v *Volume) error {
	if v.Host == nil {
		t, err := s.store.GetType(ctx, nil, v.TypeID, false)
		if err != nil {
			return err
		}
		b, err := s.schedule(ctx, t, v.Size)
		if err != nil {
			s.finish(ctx, v.ID, func(v *Volume) { v.Status = StatusError })
			return err
		}
		host := s.hostOf(b)
		if _, err := s.store.UpdateVolume(ctx, v.ID, func(_ *sql.Tx, v *Volume) error { v.Host = &host; return nil }); err != nil {
			return err
		}
		v.Host = &host
	}
	b, err := s.backendOf(v)
	if err != nil {
		s.finish(ctx, v.ID, func(v *Volume) { v.Status = StatusError })
		return err
	}
	src, cleanup, err := s.source(ctx, v)
	if err == nil {
		defer cleanup()
		var loc string
		if loc, err = b.Create(ctx, v.ID, v.Size, src); err == nil {
			s.finish(ctx, v.ID, func(v *Volume) {
				v.Location = &loc
				if v.Status == StatusCreating {
					v.Status = StatusAvailable
				}
			})
			s.log.Info("created volume", "volume", v.ID, "backend", b.Name())
			return nil
		}
	}
	if ctx.Err() != nil {
		return err
	}
	s.finish(ctx, v.ID, func(v *Volume) { v.Status = StatusError })
	return err
}

// source finds what a new volume is filled from.
func (s *Service) source(ctx context.Context, v *Volume) (*backend.Source, func(), error) {
	none := func() {}
	switch {
	case v.SnapshotID != nil:
		sn, err := s.store.GetSnapshot(ctx, nil, *v.SnapshotID)
		if err != nil || sn.Location == nil {
			return nil, none, fmt.Errorf("source snapshot %s: unavailable", *v.SnapshotID)
		}
		b, err := s.backendOf(v)
		if err != nil {
			return nil, none, err
		}
		conn, err := b.Connect(ctx, *sn.Location)
		if err != nil {
			return nil, none, err
		}
		return &backend.Source{Path: conn.Path, Format: conn.Format}, none, nil
	case v.SourceVolID != nil:
		src, err := s.store.GetVolume(ctx, nil, *v.SourceVolID)
		if err != nil || src.Location == nil {
			return nil, none, fmt.Errorf("source volume %s: unavailable", *v.SourceVolID)
		}
		b, err := s.backendOf(src)
		if err != nil {
			return nil, none, err
		}
		conn, err := b.Connect(ctx, *src.Location)
		if err != nil {
			return nil, none, err
		}
		return &backend.Source{Path: conn.Path, Format: conn.Format}, none, nil
	case v.ImageID != nil:
		if s.cfg.Images == nil {
			return nil, none, errors.New("no image service")
		}
		r, err := s.cfg.Images.Open(ctx, *v.ImageID)
		if err != nil {
			return nil, none, fmt.Errorf("open image %s: %w", *v.ImageID, err)
		}
		defer r.Close()
		f, err := os.CreateTemp(s.cfg.TmpDir, "kumo-volume-image-*")
		if err != nil {
			return nil, none, err
		}
		cleanup := func() { os.Remove(f.Name()) }
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			cleanup()
			return nil, none, fmt.Errorf("download image %s: %w", *v.ImageID, err)
		}
		format := v.ImageMeta["disk_format"]
		if format != "qcow2" {
			format = "raw"
		}
		return &backend.Source{Path: f.Name(), Format: format}, cleanup, nil
	}
	return nil, none, nil
}

func (s *Service) stepDelete(ctx context.Context, v *Volume) error {
	if v.Location != nil {
		b, err := s.backendOf(v)
		if err == nil {
			err = b.Delete(ctx, *v.Location)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.finish(ctx, v.ID, func(v *Volume) { v.Status = StatusErrorDeleting })
			}
			return err
		}
	}
	if err := s.store.DeleteVolume(context.WithoutCancel(ctx), v.ID, nil); err != nil && !errors.Is(err, errNoRow) {
		return err
	}
	s.mu.Lock()
	delete(s.locks, v.ID)
	s.mu.Unlock()
	s.log.Info("deleted volume", "volume", v.ID)
	return nil
}

func (s *Service) stepExtend(ctx context.Context, v *Volume) error {
	b, err := s.backendOf(v)
	if err == nil && v.Location != nil {
		err = b.Extend(ctx, *v.Location, v.Task.NewSize)
	} else if err == nil {
		err = errors.New("volume has no location")
	}
	if err != nil {
		if ctx.Err() == nil {
			s.finish(ctx, v.ID, func(v *Volume) { v.Status = StatusErrorExtending })
		}
		return err
	}
	n := v.Task.NewSize
	s.finish(ctx, v.ID, func(v *Volume) {
		v.Size = n
		v.Status = StatusAvailable
		if len(v.Attachments) > 0 {
			v.Status = StatusInUse
		}
	})
	return nil
}

func (s *Service) stepUpload(ctx context.Context, v *Volume) error {
	t := *v.Task
	restore := func(v *Volume) { v.Status = t.PrevStatus }
	err := func() error {
		if s.cfg.Images == nil {
			return errors.New("no image service")
		}
		b, err := s.backendOf(v)
		if err != nil {
			return err
		}
		if v.Location == nil {
			return errors.New("volume has no location")
		}
		conn, err := b.Connect(ctx, *v.Location)
		if err != nil {
			return err
		}
		f, err := os.CreateTemp(s.cfg.TmpDir, "kumo-volume-upload-*")
		if err != nil {
			return err
		}
		f.Close()
		defer os.Remove(f.Name())
		if err := backend.Export(ctx, conn, f.Name(), t.DiskFormat); err != nil {
			return err
		}
		rf, err := os.Open(f.Name())
		if err != nil {
			return err
		}
		defer rf.Close()
		st, err := rf.Stat()
		if err != nil {
			return err
		}
		return s.cfg.Images.Upload(ctx, t.ImageID, rf, st.Size())
	}()
	if err != nil && ctx.Err() != nil {
		return err
	}
	s.finish(ctx, v.ID, restore)
	if err == nil {
		s.log.Info("uploaded volume to image", "volume", v.ID, "image", t.ImageID)
	}
	return err
}

// ---- list, update, delete, actions ----

// List returns a page of volumes and whether more follow.
func (s *Service) List(ctx context.Context, q VolumeQuery, marker string) ([]*Volume, bool, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleGetAll, c.project); err != nil {
		return nil, false, err
	}
	if !c.admin || !q.AllProjects {
		q.AllProjects, q.Project = false, c.project
	}
	if marker != "" {
		m, err := s.store.GetVolume(ctx, nil, marker)
		if errors.Is(err, errNoRow) || err == nil && m.ProjectID != c.project && !c.admin {
			return nil, false, apiutil.NotFound("Marker %s could not be found.", marker)
		}
		if err != nil {
			return nil, false, err
		}
		q.Marker = m
	}
	return page(q.Limit, s.cfg.MaxLimit, func(n int) ([]*Volume, error) {
		q.Limit = n
		return s.store.ListVolumes(ctx, q)
	})
}

// UpdateRequest changes name, description and metadata.
type UpdateRequest struct {
	Name, Description *string
	SetName, SetDesc  bool
	Metadata          map[string]string
}

// Update changes a volume's name, description or metadata.
func (s *Service) Update(ctx context.Context, id string, req UpdateRequest) (*Volume, error) {
	c := callerOf(ctx)
	if _, err := s.load(ctx, c, id, ruleUpdate); err != nil {
		return nil, err
	}
	return s.store.UpdateVolume(ctx, id, func(_ *sql.Tx, v *Volume) error {
		if req.SetName {
			v.Name = req.Name
		}
		if req.SetDesc {
			v.Description = req.Description
		}
		if req.Metadata != nil {
			v.Metadata = req.Metadata
		}
		v.UpdatedAt = s.now().UTC()
		return nil
	})
}

var deletable = []string{StatusAvailable, StatusError, "error_restoring", StatusErrorExtending, "error_managing"}

// Delete starts deleting a volume; cascade deletes its snapshots first.
func (s *Service) Delete(ctx context.Context, id string, cascade, force bool) error {
	c := callerOf(ctx)
	rule := ruleDelete
	if force {
		rule = ruleForceDelete
	}
	if _, err := s.load(ctx, c, id, rule); err != nil {
		return err
	}
	var snaps []*Snapshot
	_, err := s.store.UpdateVolume(ctx, id, func(tx *sql.Tx, v *Volume) error {
		bad := !slices.Contains(deletable, v.Status) && !(force && v.Status != StatusDeleting)
		if bad || len(v.Attachments) > 0 || v.Task != nil && !force {
			return apiutil.BadRequest("Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.")
		}
		n, err := s.store.CountSnapshots(ctx, tx, id)
		if err != nil {
			return err
		}
		if n > 0 && !cascade {
			return apiutil.BadRequest("Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.")
		}
		if n > 0 {
			all, err := s.store.ListSnapshots(ctx, SnapshotQuery{AllProjects: true, VolumeID: &id})
			if err != nil {
				return err
			}
			for _, sn := range all {
				if sn.Status != SnapAvailable && sn.Status != SnapError {
					return apiutil.BadRequest("Invalid volume: Snapshot %s is %s; cannot cascade delete.", sn.ID, sn.Status)
				}
			}
			snaps = all
		}
		v.Status = StatusDeleting
		v.Task = &Task{Op: "delete"}
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	if len(snaps) > 0 {
		s.background(func(ctx context.Context) {
			for _, sn := range snaps {
				if _, err := s.store.UpdateSnapshot(ctx, sn.ID, func(_ *sql.Tx, sn *Snapshot) error {
					sn.Status, sn.Task = SnapDeleting, &Task{Op: "delete"}
					return nil
				}); err == nil {
					s.stepSnapshot(ctx, sn.ID)
				}
			}
			s.stepVolume(ctx, id)
		})
		return nil
	}
	s.kickVolume(id)
	return nil
}

// Extend grows a volume (os-extend).
func (s *Service) Extend(ctx context.Context, id string, newSize int) error {
	c := callerOf(ctx)
	if _, err := s.load(ctx, c, id, ruleExtend); err != nil {
		return err
	}
	_, err := s.store.UpdateVolume(ctx, id, func(tx *sql.Tx, v *Volume) error {
		if v.Status != StatusAvailable {
			return apiutil.BadRequest("Invalid volume: Volume %s status must be available to extend, but current status is: %s.", id, v.Status)
		}
		if newSize <= v.Size {
			return apiutil.BadRequest("Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.Size, newSize)
		}
		if err := s.checkQuota(ctx, tx, v.ProjectID, 0, 0, int64(newSize-v.Size), newSize, &VolumeType{ID: v.TypeID, Name: v.TypeName}); err != nil {
			return err
		}
		v.Status = StatusExtending
		v.Task = &Task{Op: "extend", NewSize: newSize}
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.kickVolume(id)
	return nil
}

// change applies a small synchronous change under rule.
func (s *Service) change(ctx context.Context, id, rule string, fn func(v *Volume) error) (*Volume, error) {
	c := callerOf(ctx)
	if _, err := s.load(ctx, c, id, rule); err != nil {
		return nil, err
	}
	return s.store.UpdateVolume(ctx, id, func(_ *sql.Tx, v *Volume) error {
		if err := fn(v); err != nil {
			return err
		}
		v.UpdatedAt = s.now().UTC()
		return nil
	})
}

// SetMetadata merges (replace=false) or replaces a volume's metadata.
func (s *Service) SetMetadata(ctx context.Context, id string, md map[string]string, replace bool) (map[string]string, error) {
	v, err := s.change(ctx, id, ruleMetadata, func(v *Volume) error {
		if replace {
			v.Metadata = map[string]string{}
		}
		maps.Copy(v.Metadata, md)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.Metadata, nil
}

// DeleteMetadata removes one key.
func (s *Service) DeleteMetadata(ctx context.Context, id, key string) error {
	_, err := s.change(ctx, id, ruleMetadata, func(v *Volume) error {
		if _, ok := v.Metadata[key]; !ok {
			return apiutil.NotFound("Metadata item was not found")
		}
		delete(v.Metadata, key)
		return nil
	})
	return err
}

// SetImageMetadata merges keys into volume_image_metadata.
func (s *Service) SetImageMetadata(ctx context.Context, id string, md map[string]string) (map[string]string, error) {
	v, err := s.change(ctx, id, ruleImageMetadata, func(v *Volume) error {
		maps.Copy(v.ImageMeta, md)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.ImageMeta, nil
}

// UnsetImageMetadata removes one key of volume_image_metadata.
func (s *Service) UnsetImageMetadata(ctx context.Context, id, key string) error {
	_, err := s.change(ctx, id, ruleImageMetadata, func(v *Volume) error {
		if _, ok := v.ImageMeta[key]; !ok {
			return apiutil.NotFound("Glance metadata for volume %s with key %s could not be found.", id, key)
		}
		delete(v.ImageMeta, key)
		return nil
	})
	return err
}

// SetBootable sets the bootable flag.
func (s *Service) SetBootable(ctx context.Context, id string, bootable bool) error {
	_, err := s.change(ctx, id, ruleBootable, func(v *Volume) error {
		if v.Status != StatusAvailable && v.Status != StatusInUse {
			return apiutil.BadRequest("Invalid volume: Volume status must be available or in-use.")
		}
		v.Bootable = bootable
		return nil
	})
	return err
}

// SetReadonly sets the read-only flag (admin metadata "readonly").
func (s *Service) SetReadonly(ctx context.Context, id string, readonly bool) error {
	_, err := s.change(ctx, id, ruleReadonly, func(v *Volume) error {
		if v.Status != StatusAvailable {
			return apiutil.BadRequest("Invalid volume: Volume %s status must be available to update readonly flag, but current status is: %s.", id, v.Status)
		}
		v.AdminMeta["readonly"] = strconv.FormatBool(readonly)
		if readonly {
			v.AdminMeta["readonly"] = "True"
		} else {
			v.AdminMeta["readonly"] = "False"
		}
		return nil
	})
	return err
}

var volumeStatuses = []string{StatusCreating, StatusAvailable, StatusReserved, StatusAttaching, StatusInUse, StatusDetaching,
	StatusDeleting, StatusError, StatusErrorDeleting, StatusExtending, StatusErrorExtending, StatusUploading, StatusMaintenance,
	StatusDownloading, "error_restoring", "error_managing", "backing-up", "restoring-backup", "retyping", "awaiting-transfer"}

// ResetStatus is the admin os-reset_status: it sets the fields as asked
// and drops any pending step.
func (s *Service) ResetStatus(ctx context.Context, id, status, attachStatus string) error {
	if status != "" && !slices.Contains(volumeStatuses, status) {
		return apiutil.BadRequest("Invalid input received: Must specify a valid status")
	}
	if attachStatus != "" && attachStatus != AttachAttached && attachStatus != AttachDetached {
		return apiutil.BadRequest("Invalid input received: Must specify a valid attach status")
	}
	_, err := s.change(ctx, id, ruleResetStatus, func(v *Volume) error {
		if status != "" {
			v.Status = status
		}
		if attachStatus != "" {
			v.AttachStatus = attachStatus
			if attachStatus == AttachDetached {
				v.Attachments = nil
			}
		}
		v.Task = nil
		return nil
	})
	return err
}

// UploadRequest is os-volume_upload_image.
type UploadRequest struct {
	ImageName, DiskFormat, ContainerFormat, Visibility string
	Force, Protected                                   bool
}

// UploadImage creates an image from a volume.
func (s *Service) UploadImage(ctx context.Context, id string, req UploadRequest) (*Volume, string, error) {
	c := callerOf(ctx)
	if s.cfg.Images == nil {
		return nil, "", apiutil.BadRequest("No image service is configured.")
	}
	v, err := s.load(ctx, c, id, ruleUploadImage)
	if err != nil {
		return nil, "", err
	}
	if v.Status != StatusAvailable && !(req.Force && v.Status == StatusInUse) {
		return nil, "", apiutil.BadRequest("Invalid volume: Volume %s status must be available or in-use (with force), but current status is: %s.", id, v.Status)
	}
	if req.DiskFormat == "" {
		req.DiskFormat = "raw"
	}
	if req.ContainerFormat == "" {
		req.ContainerFormat = "bare"
	}
	if req.DiskFormat != "raw" && req.DiskFormat != "qcow2" {
		return nil, "", apiutil.BadRequest("Invalid disk-format '%s' is specified. Allowed disk-formats are raw, qcow2.", req.DiskFormat)
	}
	if req.Visibility == "" {
		req.Visibility = "private"
	}
	imgID, err := s.cfg.Images.Create(ctx, req.ImageName, req.DiskFormat, req.ContainerFormat, req.Visibility, req.Protected)
	if err != nil {
		return nil, "", err
	}
	v, err = s.store.UpdateVolume(ctx, id, func(_ *sql.Tx, v *Volume) error {
		if v.Status != StatusAvailable && !(req.Force && v.Status == StatusInUse) {
			return apiutil.BadRequest("Invalid volume: Volume %s status must be available or in-use (with force), but current status is: %s.", id, v.Status)
		}
		v.Task = &Task{Op: "upload", PrevStatus: v.Status, ImageID: imgID, DiskFormat: req.DiskFormat, Force: req.Force}
		v.Status = StatusUploading
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	s.kickVolume(id)
	return v, imgID, nil
}

// page serves one page of a list: limit clamped to (0, max], one row more
// fetched than asked so the caller knows whether more follow.
func page[T any](limit, max int, fetch func(n int) ([]T, error)) ([]T, bool, error) {
	if limit <= 0 || limit > max {
		limit = max
	}
	out, err := fetch(limit + 1)
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
