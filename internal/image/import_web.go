package image

// The web-download import method and the fetch it shares with import
// tasks (tasks.go).
//
//	POST /import {"method": {"name": "web-download", "uri": …}}
//	    queued ──▶ importing ──fetch, ingest, inspect, commit──▶ active
//	                   │
//	                   └──any failure──▶ queued   (no data kept)
//
// The request is refused with 409 unless the image is queued with both
// formats set, and with 400 when the URI does not pass the import filter
// (importfilter.go). The fetch then runs in the background, recorded as
// an api_image_import task (GET /v2/images/{id}/tasks): the body streams
// through the same ingest as PUT /file (checksums, size cap, quota) into
// a temporary file, which activate inspects and renames into place. On
// failure the image goes back to queued, as in Glance, and the task ends
// in failure with the reason. A restart during the fetch leaves the image
// importing with no staged data: Recover returns it to queued.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Import methods.
const (
	methodGlanceDirect = "glance-direct"
	methodWebDownload  = "web-download"
)

var importMethods = []string{methodGlanceDirect, methodWebDownload}

// validateImport checks the import settings of a Config with defaults.
func (c Config) validateImport() error {
	for _, m := range c.ImportMethods {
		if !slices.Contains(importMethods, m) {
			return fmt.Errorf("image: unknown import method %q (known: %v)", m, importMethods)
		}
	}
	return c.ImportFilter.validate()
}

// importReady checks, inside the update that moves img to importing,
// that img can start the import req asks for.
func (s *Service) importReady(img *Image, req ImportRequest) error {
	switch {
	case img.Status == StatusActive:
		return apiutil.Conflict("Image with status active cannot be target for import")
	case req.Method.Name == methodWebDownload && img.Status != StatusQueued:
		return apiutil.Conflict("Image needs to be in 'queued' state to use '%s' method", methodWebDownload)
	case req.Method.Name == methodGlanceDirect && img.Status != StatusUploading:
		return apiutil.Conflict("Image needs to be staged before 'glance-direct' method can be used")
	case img.DiskFormat == nil:
		return apiutil.Conflict("'disk_format' needs to be set before import")
	case img.ContainerFormat == nil:
		return apiutil.Conflict("'container_format' needs to be set before import")
	}
	if req.Method.Name == methodWebDownload {
		if err := s.cfg.ImportFilter.checkRaw(req.Method.URI); req.Method.URI == "" || err != nil {
			uri := req.Method.URI
			if uri == "" {
				uri = "None"
			}
			s.log.Info("web-download URI refused", "image", img.ID, "uri", redact(uri), "reason", err)
			return apiutil.BadRequest("URI for web-download does not pass filtering: %s", uri)
		}
	}
	return nil
}

// importRunner is the background part of the import req asks for.
func (s *Service) importRunner(req ImportRequest) func(*Image) error {
	if req.Method.Name == methodWebDownload {
		uri := req.Method.URI
		return func(img *Image) error { return s.runWebDownload(img, uri) }
	}
	return s.runImport
}

// runWebDownload fetches uri into img, which is importing.
func (s *Service) runWebDownload(img *Image, uri string) error {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(s.baseCtx))
	defer cancel(nil)
	defer context.AfterFunc(s.baseCtx, func() { cancel(errShutdown) })()
	log := s.log.With("image", img.ID, "task", "web-download")
	err := s.fetch(ctx, uri, func(ctx context.Context, body io.Reader, length int64) error {
		return s.ingestInto(ctx, img, StatusImporting, body, length)
	})
	if err != nil {
		log.Info("web-download failed", "uri", redact(uri), "err", err)
		s.revert(img.ID, StatusImporting)
		return err
	}
	log.Info("web-download imported image", "uri", redact(uri))
	return nil
}

// ingestInto streams body (length bytes, or -1 when unknown) into img,
// which is in status from, and activates it: the ingest and commit of an
// upload, for data that arrives without a request of its own.
func (s *Service) ingestInto(ctx context.Context, img *Image, from string, body io.Reader, length int64) error {
	room, err := s.roomFor(ctx, img.Owner, img.ID, length)
	if err != nil {
		return err
	}
	in, err := s.blobs.ingest(ctx, body, room)
	if err == nil && length >= 0 && in.size != length {
		in.remove()
		err = fmt.Errorf("%w: got %d of %d bytes", errReadBody, in.size, length)
	}
	if err != nil {
		return s.ingestErr(err, room)
	}
	if err := s.activate(ctx, img.ID, in, from, in.tmp, s.blobs.path(img.ID), str(img.DiskFormat)); err != nil {
		in.remove()
		return err
	}
	return nil
}

// redact hides the password of a URI for logs.
func redact(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		return u.Redacted()
	}
	return "(unparsable URI)"
}

// fetchError is a failure to get the data from an import URI.
type fetchError struct{ msg string }

func (e *fetchError) Error() string { return e.msg }

// fetch GETs uri with the import client (filtered, see importfilter.go)
// and hands the body and its declared length (-1: unknown) to store. A
// failure to get or read the data is a fetchError naming uri.
func (s *Service) fetch(ctx context.Context, uri string, store func(ctx context.Context, body io.Reader, length int64) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return &fetchError{fmt.Sprintf("Unable to fetch %s: %v", uri, err)}
	}
	req.Header.Set("User-Agent", "kumo-image-import")
	res, err := s.importClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if c := context.Cause(ctx); c != nil {
			err = c
		}
		return &fetchError{fmt.Sprintf("Unable to fetch %s: %v", uri, err)}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return &fetchError{fmt.Sprintf("Unable to fetch %s: HTTP %s", uri, res.Status)}
	}
	body := &watchedReader{r: res.Body}
	body.stall = time.AfterFunc(importStall, func() {
		cancel(fmt.Errorf("no data received for %s", importStall))
	})
	defer body.stall.Stop()
	err = store(ctx, body, res.ContentLength)
	if err != nil && (body.err != nil || context.Cause(ctx) != nil) {
		cause := body.err
		if c := context.Cause(ctx); c != nil {
			cause = c
		}
		return &fetchError{fmt.Sprintf("Error reading image data from %s: %v", uri, cause)}
	}
	return err
}

// watchedReader remembers the first read error of the source and pushes
// back the stall timer on every read.
type watchedReader struct {
	r     io.Reader
	err   error
	stall *time.Timer
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.stall.Reset(importStall)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}
