package server

import (
	"context"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/image"
)

// novaImage is the compute API's view of an image.
func novaImage(img *image.Image) *api.Image {
	out := &api.Image{ID: img.ID, Status: img.Status, MinDisk: img.MinDisk, MinRAM: img.MinRAM,
		Created: img.CreatedAt, Updated: img.UpdatedAt, Properties: img.Properties}
	if img.Name != nil {
		out.Name = *img.Name
	}
	if img.Size != nil {
		out.Size, out.SizeKnown = *img.Size, true
	}
	return out
}

// ListImages serves the compute API's /images proxy, as the caller.
func (n novaImages) ListImages(ctx context.Context, q api.ImageQuery) ([]*api.Image, error) {
	lq := image.ListQuery{Limit: q.Limit, Props: q.Props, MinRAM: q.MinRAM, MinDisk: q.MinDisk}
	if q.Name != "" {
		lq.Names = []string{q.Name}
	}
	if q.Status != "" {
		if !image.ValidStatus(q.Status) {
			return nil, apiutil.BadRequest("Invalid status value: %s", q.Status)
		}
		lq.Statuses = []string{q.Status}
	}
	if q.ChangesSince != nil {
		lq.Times = []image.TimeFilter{{Column: "updated_at", Op: "gte", Time: q.ChangesSince.Truncate(time.Second)}}
	}
	imgs, _, err := n.s.List(ctx, lq, q.Marker)
	if err != nil {
		return nil, err
	}
	out := make([]*api.Image, len(imgs))
	for i, img := range imgs {
		out[i] = novaImage(img)
	}
	return out, nil
}

// DeleteImage deletes an image as the caller.
func (n novaImages) DeleteImage(ctx context.Context, id string) error { return n.s.Delete(ctx, id) }

// UpdateImageProperties edits an image's properties as the caller.
func (n novaImages) UpdateImageProperties(ctx context.Context, id string, fn func(map[string]string) error) (*api.Image, error) {
	img, err := n.s.UpdateProperties(ctx, id, fn)
	if err != nil {
		return nil, err
	}
	return novaImage(img), nil
}

var _ api.ImageProxy = novaImages{}
