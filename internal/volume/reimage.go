package volume

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Re-imaging a volume (Cinder's os-reimage action, volume API 3.68): the
// volume's data is replaced by an image's, in place, keeping its id, size,
// type, attachments and snapshots. It is how Compute rebuilds a
// volume-backed server with a new image (Nova 2.93): the server's
// attachment is swapped for an empty one (the volume stays reserved for
// it), the volume is re-imaged, then attached again.
//
//	available|error ──reimage──▶ downloading ──▶ available (attachments: reserved)
//	reserved (reimage_reserved) ──▶ downloading ──▶ reserved
//	                                  └─ failure ─▶ error
//
// Served to Compute in process; the HTTP action waits until the volume
// API's microversion reaches 3.68 (docs/support-matrix.md).

const (
	ruleReimage         = "volume:reimage"
	ruleReimageReserved = "volume:reimage_reserved"
)

// Reimage starts re-imaging volume id with imageID. Only available and
// error volumes can be re-imaged, and reserved ones when reimageReserved
// is set; the image must be active and fit the volume.
func (s *Service) Reimage(ctx context.Context, id, imageID string, reimageReserved bool) error {
	c := callerOf(ctx)
	rule := ruleReimage
	if reimageReserved {
		rule = ruleReimageReserved
	}
	v, err := s.load(ctx, c, id, rule)
	if err != nil {
		return err
	}
	if s.cfg.Images == nil {
		return apiutil.BadRequest("Invalid image identifier or unable to access requested image.")
	}
	img, err := s.cfg.Images.Get(ctx, imageID)
	if errors.Is(err, ErrImageNotFound) {
		return apiutil.BadRequest("Invalid image identifier or unable to access requested image.")
	}
	if err != nil {
		return err
	}
	if img.Status != "active" {
		return apiutil.BadRequest("Invalid input received: Image %s is not active.", img.ID)
	}
	if need := ceilGB(img.Size); need > v.Size {
		return apiutil.BadRequest("Invalid input received: Size of specified image %dGB is larger than volume size %dGB.", need, v.Size)
	}
	if int(img.MinDisk) > v.Size {
		return apiutil.BadRequest("Invalid input received: Volume size %dGB cannot be smaller than the image minDisk size %dGB.", v.Size, img.MinDisk)
	}
	_, err = s.store.UpdateVolume(ctx, id, func(_ *sql.Tx, v *Volume) error {
		ok := (v.Status == StatusAvailable || v.Status == StatusError || reimageReserved && v.Status == StatusReserved) && v.Task == nil
		if !ok {
			allowed := "available, error"
			if reimageReserved {
				allowed += ", reserved"
			}
			return apiutil.BadRequest("Invalid volume: Volume %s status must be %s to reimage, but current status is: %s.", v.ID, allowed, v.Status)
		}
		v.Task = &Task{Op: "reimage", PrevStatus: v.Status, ImageID: img.ID, DiskFormat: img.DiskFormat}
		v.Status = StatusDownloading
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("re-imaging volume", "volume", id, "image", img.ID)
	s.kickVolume(id)
	return nil
}

// stepReimage refills the volume from the task's image: the backend
// recreates it from scratch under the same id (a file backend swaps the
// new file in only once it is complete).
func (s *Service) stepReimage(ctx context.Context, v *Volume) error {
	t := *v.Task
	err := func() error {
		b, err := s.backendOf(v)
		if err != nil {
			return err
		}
		img, err := s.cfg.Images.Get(ctx, t.ImageID)
		if err != nil {
			return err
		}
		from := *v
		from.SnapshotID, from.SourceVolID, from.ImageID = nil, nil, &t.ImageID
		from.ImageMeta = map[string]string{"disk_format": t.DiskFormat}
		src, cleanup, err := s.source(ctx, &from)
		if err != nil {
			return err
		}
		defer cleanup()
		loc, err := b.Create(ctx, v.ID, v.Size, src)
		if err != nil {
			return err
		}
		s.finish(ctx, v.ID, func(v *Volume) {
			v.Location = &loc
			v.ImageID, v.ImageMeta, v.Bootable = &img.ID, imageMetadata(img), true
			volumeStatusAfter(v)
		})
		return nil
	}()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		s.finish(ctx, v.ID, func(v *Volume) { v.Status = StatusError })
		return err
	}
	s.log.Info("re-imaged volume", "volume", v.ID, "image", t.ImageID)
	return nil
}
