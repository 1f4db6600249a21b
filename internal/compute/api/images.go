package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
)

// The image proxy: /images and /images/{id}/metadata, Nova's read-mostly
// view of the image service for clients older than microversion 2.36
// (from 2.36 on every route here answers 404, as Nova's do). Images are
// read and changed through the image service's Go API as the caller, so
// Glance's visibility and policy rules apply unchanged.

// ImageQuery is a proxied image list request.
type ImageQuery struct {
	Name         string
	Status       string // Glance's (lowercase) status
	ChangesSince *time.Time
	Props        map[string]string // property-NAME filters
	MinRAM       *int64
	MinDisk      *int64
	Limit        int
	Marker       string
}

// ImageProxy is what the /images proxy needs beyond ImageLookup. Errors
// that are *apiutil.Error keep their status (403, 404, 409).
type ImageProxy interface {
	ImageLookup
	ListImages(ctx context.Context, q ImageQuery) ([]*Image, error)
	DeleteImage(ctx context.Context, id string) error
	// UpdateImageProperties edits the image's properties through fn, in
	// one transaction of the image service.
	UpdateImageProperties(ctx context.Context, id string, fn func(props map[string]string) error) (*Image, error)
}

// V2_36 removed the proxy APIs (see versions.go).

func (a *API) imageRoutes() []apiutil.Route {
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: a.imageProxy(h)}
	}
	return []apiutil.Route{
		// GET /images/detail is served by showImageOrDetail (see flavors).
		rt("GET", "/images", a.listImages(false)),
		rt("GET", "/images/{image_id}", a.showImageOrDetail),
		rt("DELETE", "/images/{image_id}", a.deleteImage),
		rt("GET", "/images/{image_id}/metadata", a.listImageMeta),
		rt("POST", "/images/{image_id}/metadata", a.writeImageMeta(false)),
		rt("PUT", "/images/{image_id}/metadata", a.writeImageMeta(true)),
		rt("GET", "/images/{image_id}/metadata/{key}", a.showImageMeta),
		rt("PUT", "/images/{image_id}/metadata/{key}", a.updateImageMetaItem),
		rt("DELETE", "/images/{image_id}/metadata/{key}", a.deleteImageMetaItem),
	}
}

// imageProxy answers 404 from 2.36 on, and when there is no image service.
func (a *API) imageProxy(h apiutil.Handler) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		if atLeast(r, V2_36) {
			return nil, apiutil.NotFound("The resource could not be found.")
		}
		return h(r)
	}
}

func (a *API) imageService() (ImageProxy, bool) {
	p, ok := a.images.(ImageProxy)
	return p, ok
}

func imageNotFound() error { return apiutil.NotFound("Image not found.") }

// imageErr keeps the image service's 400/403/409 and turns its 404 into
// Nova's message.
func imageErr(err error) error {
	if errors.Is(err, ErrImageNotFound) {
		return imageNotFound()
	}
	var ae *apiutil.Error
	if errors.As(err, &ae) {
		if ae.Status == 404 {
			return imageNotFound()
		}
		return err
	}
	return internal(err)
}

// imageStatus is Nova's status of a Glance image status.
func imageStatus(s string) string {
	switch s {
	case "active":
		return "ACTIVE"
	case "queued", "saving", "uploading", "importing":
		return "SAVING"
	case "deleted", "pending_delete":
		return "DELETED"
	case "killed":
		return "ERROR"
	}
	return "UNKNOWN"
}

func imageProgress(s string) int {
	switch s {
	case "queued":
		return 25
	case "saving", "uploading", "importing":
		return 50
	case "active":
		return 100
	}
	return 0
}

func (a *API) listImages(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		q := r.URL.Query()
		iq := ImageQuery{Props: map[string]string{}}
		limit, err := pageLimit(q)
		if err != nil {
			return nil, err
		}
		iq.Limit = limit
		iq.Marker, _ = queryLast(q, "marker")
		if v, ok := queryLast(q, "name"); ok {
			iq.Name = v
		}
		if v, ok := queryLast(q, "status"); ok {
			iq.Status = strings.ToLower(v)
		}
		if v, ok := queryLast(q, "changes-since"); ok {
			t, err := parseTime("changes-since", v)
			if err != nil {
				return nil, err
			}
			iq.ChangesSince = &t
		}
		if v, ok := queryLast(q, "server"); ok {
			// A server reference may be its URL.
			iq.Props["instance_uuid"] = v[strings.LastIndex(v, "/")+1:]
		}
		if v, ok := queryLast(q, "type"); ok {
			iq.Props["image_type"] = v
		}
		for k := range q {
			if name, ok := strings.CutPrefix(k, "property-"); ok && name != "" {
				iq.Props[name], _ = queryLast(q, k)
			}
		}
		for _, f := range []struct {
			key string
			dst **int64
		}{{"minRam", &iq.MinRAM}, {"minDisk", &iq.MinDisk}} {
			v, ok := queryLast(q, f.key)
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, apiutil.BadRequest("Invalid %s filter [%s]", f.key, v)
			}
			*f.dst = &n
		}
		body := &imageListBody{urls: newImageURLs(r), full: detail}
		p, ok := a.imageService()
		if !ok {
			return apiutil.JSON(200, body), nil
		}
		imgs, err := p.ListImages(ctx(r), iq)
		if err != nil {
			return nil, imageErr(err)
		}
		body.imgs = imgs
		if len(imgs) > 0 && len(imgs) == limit {
			body.next = nextHref(r, imgs[len(imgs)-1].ID)
		}
		return apiutil.JSON(200, body), nil
	}
}

func (a *API) getImage(r *http.Request) (*Image, error) {
	p, ok := a.imageService()
	if !ok {
		return nil, imageNotFound()
	}
	img, err := p.GetImage(ctx(r), r.PathValue("image_id"))
	if err != nil {
		return nil, imageErr(err)
	}
	return img, nil
}

func (a *API) showImageOrDetail(r *http.Request) (*apiutil.Response, error) {
	if r.PathValue("image_id") == "detail" {
		return a.listImages(true)(r)
	}
	img, err := a.getImage(r)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, imageDoc{urls: newImageURLs(r), img: img}), nil
}

func (a *API) deleteImage(r *http.Request) (*apiutil.Response, error) {
	p, ok := a.imageService()
	if !ok {
		return nil, imageNotFound()
	}
	if err := p.DeleteImage(ctx(r), r.PathValue("image_id")); err != nil {
		var ae *apiutil.Error
		if errors.As(err, &ae) && ae.Status == 403 {
			return nil, apiutil.Forbidden("You are not allowed to delete the image.")
		}
		return nil, imageErr(err)
	}
	return apiutil.NoContent(), nil
}

func (a *API) listImageMeta(r *http.Request) (*apiutil.Response, error) {
	img, err := a.getImage(r)
	if err != nil {
		return nil, err
	}
	md := img.Properties
	if md == nil {
		md = map[string]string{}
	}
	return apiutil.JSON(200, map[string]any{"metadata": md}), nil
}

func (a *API) showImageMeta(r *http.Request) (*apiutil.Response, error) {
	img, err := a.getImage(r)
	if err != nil {
		return nil, err
	}
	k := r.PathValue("key")
	v, ok := img.Properties[k]
	if !ok {
		return nil, apiutil.NotFound("Image metadata item %s not found", k)
	}
	return apiutil.JSON(200, map[string]any{"meta": map[string]string{k: v}}), nil
}

// editImageMeta applies fn to the image's properties, refusing a result
// with more items than the metadata_items quota of the caller's project.
func (a *API) editImageMeta(r *http.Request, fn func(props map[string]string) error) (map[string]string, error) {
	p, ok := a.imageService()
	if !ok {
		return nil, imageNotFound()
	}
	limits, err := a.quota.Limits(ctx(r), a.st.DB().Reader(), caller(r).ProjectID, "")
	if err != nil {
		return nil, internal(err)
	}
	var out map[string]string
	_, err = p.UpdateImageProperties(ctx(r), r.PathValue("image_id"), func(props map[string]string) error {
		if err := fn(props); err != nil {
			return err
		}
		if l := limits[quota.MetadataItems]; l >= 0 && int64(len(props)) > l {
			return apiutil.Forbidden("Image metadata limit exceeded")
		}
		out = props
		return nil
	})
	if errors.Is(err, errNoImageMetaKey) {
		return nil, apiutil.NotFound("Invalid metadata key")
	}
	if err != nil {
		return nil, imageErr(err)
	}
	return out, nil
}

func (a *API) writeImageMeta(replace bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		var body struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := apiutil.DecodeJSON(r, metadataSchema, &body); err != nil {
			return nil, err
		}
		md, err := a.editImageMeta(r, func(props map[string]string) error {
			if replace {
				clear(props)
			}
			for k, v := range body.Metadata {
				props[k] = v
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if replace {
			// Nova answers with the request's metadata.
			md = body.Metadata
		}
		return apiutil.JSON(200, map[string]any{"metadata": md}), nil
	}
}

func (a *API) updateImageMetaItem(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if err := apiutil.DecodeJSON(r, metaItemSchema, &body); err != nil {
		return nil, err
	}
	k := r.PathValue("key")
	v, ok := body.Meta[k]
	if !ok {
		return nil, apiutil.BadRequest("Request body and URI mismatch")
	}
	if _, err := a.editImageMeta(r, func(props map[string]string) error {
		props[k] = v
		return nil
	}); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"meta": body.Meta}), nil
}

// errNoImageMetaKey ends a metadata item delete of a missing key.
var errNoImageMetaKey = errors.New("no such image metadata key")

func (a *API) deleteImageMetaItem(r *http.Request) (*apiutil.Response, error) {
	k := r.PathValue("key")
	if _, err := a.editImageMeta(r, func(props map[string]string) error {
		if _, ok := props[k]; !ok {
			return errNoImageMetaKey
		}
		delete(props, k)
		return nil
	}); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
