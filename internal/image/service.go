package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/identity"
	"github.com/kumo-cloud/kumo/internal/image/format"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

// Config tunes the image service; the zero value is usable.
type Config struct {
	// StoreDir holds image data; default Deps.DataDir/images.
	StoreDir string
	// ProjectQuotaBytes caps the image bytes a project may store; 0 means
	// no quota (Glance's user_storage_quota default). Ignored when
	// UseKeystoneLimits is on, as Glance ignores user_storage_quota.
	ProjectQuotaBytes int64
	// UseKeystoneLimits enforces the projects' Keystone unified limits
	// image_size_total, image_stage_total, image_count_total and
	// image_count_uploading (Glance's use_keystone_limits; limits.go).
	UseKeystoneLimits bool
	// Limits reads those limits (the identity service); required when
	// UseKeystoneLimits is on. LimitsRegion is the region whose limits
	// win over region-less ones.
	Limits       identity.LimitReader
	LimitsRegion string
	// MaxImageBytes caps a single image; default 1 TiB (Glance's
	// image_size_cap).
	MaxImageBytes int64
	// DefaultLimit and MaxLimit bound list pages; default 25 and 1000.
	DefaultLimit, MaxLimit int
	// MaxTags, MaxMembers and MaxProperties per image; default 128 each.
	MaxTags, MaxMembers, MaxProperties int
	// ImportMethods enabled (Glance's enabled_import_methods); default
	// glance-direct and web-download.
	ImportMethods []string
	// ImportFilter limits the URIs of web-download and import tasks
	// (Glance's [import_filtering_opts], see importfilter.go).
	ImportFilter ImportFilter
	// DirectIO writes and reads image data with O_DIRECT where the file
	// system allows it instead of through the page cache: less CPU per
	// upload, downloads at the disk's speed (see dataio_linux.go).
	DirectIO bool
	// HashingAlgorithm computes os_hash_value of new image data: sha512
	// (the default, as in Glance), sha384 or sha256.
	HashingAlgorithm string
}

func (c Config) withDefaults(dataDir string) Config {
	if c.StoreDir == "" {
		c.StoreDir = filepath.Join(dataDir, "images")
	}
	if c.MaxImageBytes <= 0 {
		c.MaxImageBytes = 1 << 40
	}
	if c.DefaultLimit <= 0 {
		c.DefaultLimit = 25
	}
	if c.MaxLimit <= 0 {
		c.MaxLimit = 1000
	}
	if c.MaxTags <= 0 {
		c.MaxTags = 128
	}
	if c.MaxMembers <= 0 {
		c.MaxMembers = 128
	}
	if c.MaxProperties <= 0 {
		c.MaxProperties = 128
	}
	if c.HashingAlgorithm == "" {
		c.HashingAlgorithm = "sha512"
	}
	if len(c.ImportMethods) == 0 {
		c.ImportMethods = slices.Clone(importMethods)
	}
	c.ImportFilter = c.ImportFilter.withDefaults()
	return c
}

// storeID names the one backing store, as listed at /v2/info/stores.
const storeID = "file"

// Service is the image service: Glance v2 API, logic and data store.
type Service struct {
	deps   service.Deps
	cfg    Config
	store  Store
	blobs  *blobs
	policy *policy.Enforcer
	log    *slog.Logger
	now    func() time.Time

	importClient *http.Client // fetches of web-download and import tasks

	tasks   sync.WaitGroup
	baseCtx context.Context
	cancel  context.CancelFunc
}

// New builds the service. When deps.Policy is nil it enforces
// PolicyDefaults.
func New(deps service.Deps, cfg Config) (*Service, error) {
	if deps.DB == nil {
		return nil, errors.New("image: no database")
	}
	cfg = cfg.withDefaults(deps.DataDir)
	if err := cfg.validateImport(); err != nil {
		return nil, err
	}
	if cfg.StoreDir == "images" && deps.DataDir == "" {
		return nil, errors.New("image: no store directory")
	}
	if cfg.UseKeystoneLimits && cfg.Limits == nil {
		return nil, errors.New("image: use_keystone_limits needs the identity service's limits")
	}
	b, err := newBlobs(cfg.StoreDir, cfg.HashingAlgorithm, cfg.DirectIO)
	if err != nil {
		return nil, err
	}
	enf := deps.Policy
	if enf == nil {
		if enf, err = policy.New(PolicyDefaults(), nil); err != nil {
			return nil, fmt.Errorf("image: policy: %w", err)
		}
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{deps: deps, cfg: cfg, store: NewSQLStore(deps.DB), blobs: b, policy: enf,
		log: log.With("service", "image"), now: time.Now, baseCtx: ctx, cancel: cancel,
		importClient: newImportClient(cfg.ImportFilter)}, nil
}

// Catalog implements service.API.
func (s *Service) Catalog() []service.CatalogEntry {
	return []service.CatalogEntry{{Type: "image", Name: "glance", Path: "/image"}}
}

// Run recovers from interrupted uploads and imports, then waits for ctx.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Recover(ctx); err != nil && ctx.Err() == nil {
		// (A shutdown right after start cancels the recovery: not an error.)
		s.log.Error("recover interrupted uploads", "err", err)
	}
	if err := s.recoverTasks(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("recover interrupted tasks", "err", err)
	}
	<-ctx.Done()
	s.cancel()
	s.tasks.Wait()
	return nil
}

// Recover returns images left in saving or importing by a previous run to
// a state a client can retry from, and removes partial data.
func (s *Service) Recover(ctx context.Context) error {
	if err := s.blobs.sweepTmp(); err != nil {
		return fmt.Errorf("sweep temporary files: %w", err)
	}
	ids, err := s.store.ImagesInStatus(ctx, StatusSaving, StatusImporting, StatusUploading)
	if err != nil {
		return err
	}
	for _, id := range ids {
		_, err := s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
			staged := fileExists(s.blobs.stagingPath(id))
			switch {
			case img.Status == StatusSaving:
				img.Status = StatusQueued
				_ = os.Remove(s.blobs.path(id))
			case staged:
				img.Status = StatusUploading
			default:
				img.Status = StatusQueued
			}
			img.UpdatedAt = s.now().UTC()
			s.log.Info("recovered interrupted image", "image", id, "status", img.Status)
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// WaitTasks waits for background imports (for tests).
func (s *Service) WaitTasks() { s.tasks.Wait() }

// Close stops background work.
func (s *Service) Close() {
	s.cancel()
	s.tasks.Wait()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// caller is who makes a request.
type caller struct {
	project string
	admin   bool
	creds   policy.Credentials
}

func callerOf(ctx context.Context) caller {
	c := auth.From(ctx)
	if c == nil {
		return caller{}
	}
	creds := c.Policy()
	creds.IsAdmin = c.IsAdmin()
	return caller{project: c.ProjectID, admin: c.IsAdmin(), creds: creds}
}

func (s *Service) authorize(c caller, rule string, target map[string]string) error {
	err := s.policy.Authorize(rule, c.creds, target)
	if err == nil {
		return nil
	}
	if errors.Is(err, policy.ErrForbidden) {
		return &apiutil.Error{Status: 403, Message: "You are not authorized to complete " + rule + " action.", Err: apiutil.ErrForbidden}
	}
	return fmt.Errorf("authorize %s: %w", rule, err)
}

func target(img *Image, memberID string) map[string]string {
	return map[string]string{"project_id": img.Owner, "owner": img.Owner, "visibility": img.Visibility, "member_id": memberID}
}

func notFound(id string) error { return apiutil.NotFound("No image found with ID %s", id) }

// load returns the image when the caller may see it, else a 404. It also
// reports whether the caller is a member of the image (any member status).
func (s *Service) load(ctx context.Context, c caller, id string) (*Image, bool, error) {
	if !isUUID(id) {
		return nil, false, notFound(id)
	}
	img, err := s.store.GetImage(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, false, notFound(id)
	}
	if err != nil {
		return nil, false, err
	}
	if c.admin || img.Owner == c.project || img.Visibility == VisPublic || img.Visibility == VisCommunity {
		return img, false, nil
	}
	if img.Visibility == VisShared && c.project != "" {
		_, err := s.store.GetMember(ctx, img.ID, c.project)
		if err == nil {
			return img, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, false, err
		}
	}
	return nil, false, notFound(id)
}

func (s *Service) memberTarget(img *Image, c caller, isMember bool) map[string]string {
	m := ""
	if isMember {
		m = c.project
	}
	return target(img, m)
}

// Get returns an image.
func (s *Service) Get(ctx context.Context, id string) (*Image, error) {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleGetImage, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	return img, nil
}

// Create makes a queued image from a create request body.
func (s *Service) Create(ctx context.Context, body map[string]any) (*Image, error) {
	c := callerOf(ctx)
	now := s.now().UTC()
	img := &Image{ID: newUUID(), Status: StatusQueued, Visibility: VisShared, Owner: c.project,
		CreatedAt: now, UpdatedAt: now, Tags: []string{}, Properties: map[string]string{}}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := body[k]
		switch k {
		case "id":
			id, ok := v.(string)
			if !ok || !isUUID(id) {
				return nil, schemaError("%s is not a valid image id", jsonText(v))
			}
			img.ID = id
			continue
		case "owner":
			o, ok := v.(string)
			if !ok && v != nil {
				return nil, schemaError("%s is not of type 'string'", jsonText(v))
			}
			if len(o) > 255 {
				return nil, schemaError("owner is too long")
			}
			img.Owner = o
			continue
		}
		if err := setAttr(img, k, v, true); err != nil {
			return nil, err
		}
	}
	if err := s.checkLimits(img); err != nil {
		return nil, err
	}
	if img.Owner != c.project && !c.admin {
		return nil, apiutil.Forbidden("You are not permitted to create images owned by '%s'.", img.Owner)
	}
	if err := s.authorize(c, ruleAddImage, target(img, "")); err != nil {
		return nil, err
	}
	if err := s.checkVisibilityChange(c, img, ""); err != nil {
		return nil, err
	}
	unlock, err := s.reserveImageCount(ctx, img.Owner)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.store.CreateImage(ctx, img); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return nil, apiutil.Conflict("Image with identifier %s already exists!", img.ID)
		}
		return nil, err
	}
	s.log.Info("created image", "image", img.ID, "owner", img.Owner)
	return img, nil
}

func (s *Service) checkLimits(img *Image) error {
	if len(img.Tags) > s.cfg.MaxTags {
		return &apiutil.Error{Status: 413, Err: apiutil.ErrOverLimit,
			Message: fmt.Sprintf("Maximum number of tags exceeded. Attempted: %d, Maximum: %d", len(img.Tags), s.cfg.MaxTags)}
	}
	if len(img.Properties) > s.cfg.MaxProperties {
		return &apiutil.Error{Status: 413, Err: apiutil.ErrOverLimit,
			Message: fmt.Sprintf("Maximum number of image properties exceeded. Attempted: %d, Maximum: %d", len(img.Properties), s.cfg.MaxProperties)}
	}
	return nil
}

func (s *Service) checkVisibilityChange(c caller, img *Image, old string) error {
	if img.Visibility == old {
		return nil
	}
	switch img.Visibility {
	case VisPublic:
		return s.authorize(c, rulePublicizeImage, target(img, ""))
	case VisCommunity:
		return s.authorize(c, ruleCommunitizeImage, target(img, ""))
	}
	return nil
}

// List returns a page of the images the caller can see, plus whether
// there are more.
func (s *Service) List(ctx context.Context, q ListQuery, marker string) ([]*Image, bool, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleGetImages, map[string]string{"project_id": c.project, "owner": c.project}); err != nil {
		return nil, false, err
	}
	q.Admin, q.Project = c.admin, c.project
	if marker != "" {
		m, _, err := s.load(ctx, c, marker)
		if err != nil {
			return nil, false, apiutil.BadRequest("Invalid marker. Image %s could not be found.", marker)
		}
		q.Marker = m
	}
	limit := q.Limit
	q.Limit = limit + 1
	imgs, err := s.store.ListImages(ctx, q)
	if err != nil {
		return nil, false, err
	}
	more := len(imgs) > limit
	if more {
		imgs = imgs[:limit]
	}
	return imgs, more, nil
}

// Update applies a JSON patch.
func (s *Service) Update(ctx context.Context, id string, ops []patchOp) (*Image, error) {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleModifyImage, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	return s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		oldVis, oldOwner := img.Visibility, img.Owner
		if err := applyPatch(img, ops); err != nil {
			return err
		}
		if img.Owner != oldOwner && !c.admin {
			return apiutil.Forbidden("Owner can't be updated by non admin.")
		}
		if err := s.checkLimits(img); err != nil {
			return err
		}
		if err := s.checkVisibilityChange(c, img, oldVis); err != nil {
			return err
		}
		img.UpdatedAt = s.now().UTC()
		return nil
	})
}

// Delete removes an image and its data.
func (s *Service) Delete(ctx context.Context, id string) error {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.authorize(c, ruleDeleteImage, s.memberTarget(img, c, isMember)); err != nil {
		return err
	}
	_, err = s.store.DeleteImage(ctx, id, func(img *Image) error {
		if img.Protected {
			return apiutil.Forbidden("Image %s is protected and cannot be deleted.", id)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return notFound(id)
	}
	if err != nil {
		return err
	}
	for _, p := range []string{s.blobs.path(id), s.blobs.stagingPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove image data", "image", id, "err", err)
		}
	}
	s.log.Info("deleted image", "image", id)
	return nil
}

// SetActive deactivates (active=false) or reactivates an image.
func (s *Service) SetActive(ctx context.Context, id string, active bool) error {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return err
	}
	rule, verb := ruleDeactivate, "deactivate"
	if active {
		rule, verb = ruleReactivate, "reactivate"
	}
	if err := s.authorize(c, rule, s.memberTarget(img, c, isMember)); err != nil {
		return err
	}
	_, err = s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		if img.Status != StatusActive && img.Status != StatusDeactivated {
			return apiutil.BadRequest("Not allowed to %s image in status '%s'", verb, img.Status)
		}
		want := StatusDeactivated
		if active {
			want = StatusActive
		}
		if img.Status != want {
			img.Status = want
			img.UpdatedAt = s.now().UTC()
		}
		return nil
	})
	return mapNotFound(err, id)
}

func mapNotFound(err error, id string) error {
	if errors.Is(err, ErrNotFound) {
		return notFound(id)
	}
	return err
}

// AddTag tags an image.
func (s *Service) AddTag(ctx context.Context, id, tag string) error {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.authorize(c, ruleModifyImage, s.memberTarget(img, c, isMember)); err != nil {
		return err
	}
	if len(tag) > 255 {
		return schemaError("tag %q is too long", tag)
	}
	_, err = s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		if slices.Contains(img.Tags, tag) {
			return nil
		}
		img.Tags = append(img.Tags, tag)
		if err := s.checkLimits(img); err != nil {
			return err
		}
		img.UpdatedAt = s.now().UTC()
		return nil
	})
	return mapNotFound(err, id)
}

// DeleteTag removes a tag.
func (s *Service) DeleteTag(ctx context.Context, id, tag string) error {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.authorize(c, ruleModifyImage, s.memberTarget(img, c, isMember)); err != nil {
		return err
	}
	_, err = s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return apiutil.NotFound("Tag %s not found.", tag)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		img.UpdatedAt = s.now().UTC()
		return nil
	})
	return mapNotFound(err, id)
}

func overQuota(size, remaining int64) error {
	return &apiutil.Error{Status: http.StatusRequestEntityTooLarge, Err: apiutil.ErrOverLimit, Message: fmt.Sprintf(
		"Denying attempt to upload image because it exceeds the quota: The size of the data %d will exceed the limit. %d bytes remaining.",
		size, max(remaining, 0))}
}

func (s *Service) tooBig() error {
	return &apiutil.Error{Status: http.StatusRequestEntityTooLarge, Err: apiutil.ErrOverLimit,
		Message: fmt.Sprintf("Image exceeds the maximum image size of %d bytes.", s.cfg.MaxImageBytes)}
}

// room returns how many bytes the owner may still store in image id.
func (s *Service) room(ctx context.Context, owner, id string) (int64, error) {
	if s.cfg.ProjectQuotaBytes <= 0 || s.cfg.UseKeystoneLimits {
		return s.cfg.MaxImageBytes, nil
	}
	used, err := s.store.UsedBytes(ctx, owner, id)
	if err != nil {
		return 0, err
	}
	return min(s.cfg.ProjectQuotaBytes-used, s.cfg.MaxImageBytes), nil
}

func (s *Service) checkQuota(owner string, size int64, usage UsageFunc, id string) error {
	if size > s.cfg.MaxImageBytes {
		return s.tooBig()
	}
	if s.cfg.ProjectQuotaBytes <= 0 || s.cfg.UseKeystoneLimits {
		return nil
	}
	used, err := usage(owner, id)
	if err != nil {
		return err
	}
	if used+size > s.cfg.ProjectQuotaBytes {
		return overQuota(size, s.cfg.ProjectQuotaBytes-used)
	}
	return nil
}

// transition moves an image from one of the statuses in from to to, or
// fails with conflict.
func (s *Service) transition(ctx context.Context, id string, from []string, to string, check func(*Image) error) (*Image, error) {
	img, err := s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		if !slices.Contains(from, img.Status) {
			return apiutil.Conflict("Image status transition from %s to %s is not allowed", img.Status, to)
		}
		if check != nil {
			if err := check(img); err != nil {
				return err
			}
		}
		img.Status = to
		img.UpdatedAt = s.now().UTC()
		return nil
	})
	return img, mapNotFound(err, id)
}

// revert puts an image back to queued after a failed upload, if it is
// still in status from.
func (s *Service) revert(id, from string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.baseCtx), 30*time.Second)
	defer cancel()
	_, err := s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		if img.Status == from {
			img.Status = StatusQueued
			img.UpdatedAt = s.now().UTC()
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("revert image to queued", "image", id, "err", err)
	}
}

// ingestErr maps a failure while receiving data.
func (s *Service) ingestErr(err error, room int64) error {
	switch {
	case errors.Is(err, errTooLarge):
		if room >= s.cfg.MaxImageBytes {
			return s.tooBig()
		}
		return overQuota(room+1, room)
	case errors.Is(err, errReadBody), errors.Is(err, context.Canceled):
		return apiutil.BadRequest("Client disconnected before sending all data to backend")
	}
	return err
}

// prepareData loads an image for an upload or a stage, checks the upload
// rule, and returns the bytes the owner may still store; a declared
// length beyond that is refused before any byte is read.
func (s *Service) prepareData(ctx context.Context, c caller, id string, contentLength int64) (*Image, int64, error) {
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return nil, 0, err
	}
	if err := s.authorize(c, ruleUploadImage, s.memberTarget(img, c, isMember)); err != nil {
		return nil, 0, err
	}
	room, err := s.roomFor(ctx, img.Owner, id, contentLength)
	if err != nil {
		return nil, 0, err
	}
	return img, room, nil
}

// roomFor is room, refusing at once data whose declared length (-1:
// unknown) does not fit: 413 over the size cap, else over the quota.
func (s *Service) roomFor(ctx context.Context, owner, id string, length int64) (int64, error) {
	room, err := s.room(ctx, owner, id)
	if err != nil {
		return 0, err
	}
	if length > room {
		if room >= s.cfg.MaxImageBytes {
			return 0, s.tooBig()
		}
		return 0, overQuota(length, room)
	}
	return room, nil
}

// Upload stores image data: PUT /v2/images/{id}/file.
func (s *Service) Upload(ctx context.Context, id string, body io.Reader, contentLength int64) error {
	c := callerOf(ctx)
	img, room, err := s.prepareData(ctx, c, id, contentLength)
	if err != nil {
		return err
	}
	lim, err := s.dataLimitFor(ctx, img.Owner, id, false, contentLength)
	if err != nil {
		return err
	}
	room = lim.clamp(room)
	img, err = s.transition(ctx, id, []string{StatusQueued}, StatusSaving, func(img *Image) error {
		if img.DiskFormat == nil || img.ContainerFormat == nil {
			return apiutil.BadRequest("Properties disk_format, container_format must be set prior to saving data.")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.checkUploading(ctx, img.Owner); err != nil {
		s.revert(id, StatusSaving)
		return err
	}
	log := s.log.With("image", id)
	in, err := s.blobs.ingest(ctx, body, room)
	if err == nil && contentLength >= 0 && in.size != contentLength {
		in.remove()
		err = fmt.Errorf("%w: got %d of %d bytes", errReadBody, in.size, contentLength)
	}
	if err != nil {
		s.revert(id, StatusSaving)
		log.Info("upload failed", "err", err)
		return lim.ingestErr(s, err, room)
	}
	if err := s.activate(ctx, id, in, StatusSaving, in.tmp, s.blobs.path(id), str(img.DiskFormat)); err != nil {
		in.remove()
		s.revert(id, StatusSaving)
		log.Info("upload refused", "err", err)
		return err
	}
	log.Info("uploaded image data", "size", in.size)
	return nil
}

// activate inspects data at src, verifies it against the declared disk
// format, and in one transaction checks the quota, moves the file to dst
// and marks the image active with its checksums.
func (s *Service) activate(ctx context.Context, id string, in *ingested, from, src, dst, diskFormat string) error {
	info, err := inspect(src, in.size, diskFormat)
	if err != nil {
		return err
	}
	renamed := false
	_, err = s.store.UpdateImage(context.WithoutCancel(ctx), id, func(img *Image, usage UsageFunc) error {
		if img.Status != from {
			return &apiutil.Error{Status: http.StatusGone, Message: fmt.Sprintf(
				"Image %s could not be found after upload. The image may have been deleted during the upload.", id)}
		}
		if str(img.DiskFormat) != diskFormat {
			return apiutil.Conflict("The disk format of image %s changed during the upload.", id)
		}
		if err := s.checkQuota(img.Owner, in.size, usage, id); err != nil {
			return err
		}
		if err := s.checkSizeLimit(ctx, img.Owner, id, in.size, usage); err != nil {
			return err
		}
		img.Status = StatusActive
		img.Size = ptr(in.size)
		img.VirtualSize = nil
		if info.VirtualSize > 0 || in.size == 0 {
			img.VirtualSize = ptr(info.VirtualSize)
		}
		img.Checksum, img.HashAlgo, img.HashValue = ptr(in.md5), ptr(in.algo), ptr(in.hash)
		img.UpdatedAt = s.now().UTC()
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("commit image data: %w", err)
		}
		renamed = true
		return nil
	})
	if err != nil {
		if renamed {
			_ = os.Remove(dst)
		}
		if errors.Is(err, ErrNotFound) {
			return &apiutil.Error{Status: http.StatusGone, Message: fmt.Sprintf(
				"Image %s could not be found after upload. The image may have been deleted during the upload.", id)}
		}
		return err
	}
	in.tmp = ""
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func inspect(path string, size int64, diskFormat string) (format.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return format.Info{}, fmt.Errorf("inspect image data: %w", err)
	}
	defer f.Close()
	info, err := format.Check(f, size, diskFormat)
	if errors.Is(err, format.ErrUnsafe) {
		detail := strings.TrimPrefix(err.Error(), format.ErrUnsafe.Error()+": ")
		return info, apiutil.BadRequest("Image format verification failed: %s", detail)
	}
	return info, err
}

// Data is what a download returns: the open file and the range to send.
type Data struct {
	Image  *Image
	File   *os.File // nil when the image has no data (204)
	Size   int64
	Offset int64
	Length int64
	// Partial is set for a satisfied Range request.
	Partial bool
	// NoData is set when the image has no data yet.
	NoData bool
}

// Download opens image data for GET /v2/images/{id}/file. rng is the
// Range header (may be empty); open is false for HEAD-like callers that do
// not want the file opened.
func (s *Service) Download(ctx context.Context, id, rng string, open bool) (*Data, error) {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleDownloadImage, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	if img.Status == StatusDeactivated && !c.admin {
		return nil, apiutil.Forbidden("The requested image has been deactivated. Image data download is forbidden.")
	}
	if (img.Status != StatusActive && img.Status != StatusDeactivated) || img.Size == nil {
		return &Data{Image: img, NoData: true}, nil
	}
	d := &Data{Image: img, Size: *img.Size, Length: *img.Size}
	if rng != "" {
		off, n, err := parseRange(rng, d.Size)
		if err != nil {
			return nil, err
		}
		d.Offset, d.Length, d.Partial = off, n, true
	}
	if !open {
		return d, nil
	}
	f, err := os.Open(s.blobs.path(id))
	if err != nil {
		return nil, fmt.Errorf("open image data %s: %w", id, err)
	}
	d.File = f
	return d, nil
}

// Stage stores data for a glance-direct import: PUT /v2/images/{id}/stage.
func (s *Service) Stage(ctx context.Context, id string, body io.Reader, contentLength int64) error {
	c := callerOf(ctx)
	if !slices.Contains(s.cfg.ImportMethods, "glance-direct") {
		return apiutil.NotFound("Image import is not enabled.")
	}
	img, room, err := s.prepareData(ctx, c, id, contentLength)
	if err != nil {
		return err
	}
	lim, err := s.dataLimitFor(ctx, img.Owner, id, true, contentLength)
	if err != nil {
		return err
	}
	room = lim.clamp(room)
	if _, err := s.transition(ctx, id, []string{StatusQueued}, StatusUploading, nil); err != nil {
		return err
	}
	if err := s.checkUploading(ctx, img.Owner); err != nil {
		s.revert(id, StatusUploading)
		return err
	}
	in, err := s.blobs.ingest(ctx, body, room)
	if err == nil && contentLength >= 0 && in.size != contentLength {
		in.remove()
		err = fmt.Errorf("%w: got %d of %d bytes", errReadBody, in.size, contentLength)
	}
	if err == nil {
		if err = s.recheckStage(context.WithoutCancel(ctx), lim, id, in.size); err != nil {
			in.remove()
		}
	}
	if err != nil {
		s.revert(id, StatusUploading)
		return lim.ingestErr(s, err, room)
	}
	if err := s.blobs.commit(in, s.blobs.stagingPath(id)); err != nil {
		in.remove()
		s.revert(id, StatusUploading)
		return err
	}
	// The image may have been deleted while staging.
	if _, err := s.store.GetImage(context.WithoutCancel(ctx), id); errors.Is(err, ErrNotFound) {
		_ = os.Remove(s.blobs.stagingPath(id))
		return &apiutil.Error{Status: http.StatusGone, Message: fmt.Sprintf(
			"Image %s could not be found after upload. The image may have been deleted during the upload.", id)}
	}
	s.log.Info("staged image data", "image", id, "size", in.size)
	return nil
}

// ImportRequest is the body of POST /v2/images/{id}/import.
type ImportRequest struct {
	Method *struct {
		Name string `json:"name"`
		URI  string `json:"uri,omitempty"`
	} `json:"method"`
	Stores               []string `json:"stores,omitempty"`
	AllStores            *bool    `json:"all_stores,omitempty"`
	AllStoresMustSucceed *bool    `json:"all_stores_must_succeed,omitempty"`
}

// Import starts a glance-direct or web-download (import_web.go) import;
// the work runs in the background.
func (s *Service) Import(ctx context.Context, id string, req ImportRequest) error {
	c := callerOf(ctx)
	if req.Method == nil || req.Method.Name == "" {
		return apiutil.BadRequest("Import request requires a 'method' field.")
	}
	if !slices.Contains(s.cfg.ImportMethods, req.Method.Name) {
		return apiutil.BadRequest("Import method %s is not valid. Available methods: %v", req.Method.Name, s.cfg.ImportMethods)
	}
	if req.AllStores != nil && *req.AllStores && len(req.Stores) > 0 {
		return apiutil.BadRequest("All_stores parameter can't be used with x-image-meta-store header or stores parameter")
	}
	for _, st := range req.Stores {
		if st != storeID {
			return apiutil.Conflict("Store for identifier %s not found", st)
		}
	}
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.authorize(c, ruleImportImage, s.memberTarget(img, c, isMember)); err != nil {
		return err
	}
	if err := s.checkImportLimits(ctx, img, req.Method.Name); err != nil {
		return err
	}
	img, err = s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		if err := s.importReady(img, req); err != nil {
			return err
		}
		img.Status = StatusImporting
		img.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return mapNotFound(err, id)
	}
	taskID, run := s.startImageTask(ctx, img, req), s.importRunner(req)
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		s.finishImageTask(taskID, img.ID, run(img))
	}()
	return nil
}

func (s *Service) runImport(img *Image) error {
	ctx := s.baseCtx
	log := s.log.With("image", img.ID, "task", "import")
	staged := s.blobs.stagingPath(img.ID)
	fail := func(err error) error {
		log.Warn("import failed", "err", err)
		_ = os.Remove(staged)
		s.revert(img.ID, StatusImporting)
		return err
	}
	f, err := os.Open(staged)
	if err != nil {
		return fail(err)
	}
	md, sh := s.blobs.newHashes()
	size, err := pipeline(ctx, f, s.cfg.MaxImageBytes, io.Discard, md, sh)
	f.Close()
	if err != nil {
		return fail(err)
	}
	in := &ingested{tmp: staged, size: size, md5: hexSum(md), algo: s.blobs.algo, hash: hexSum(sh)}
	if err := s.activate(ctx, img.ID, in, StatusImporting, staged, s.blobs.path(img.ID), str(img.DiskFormat)); err != nil {
		return fail(err)
	}
	log.Info("imported image", "size", size)
	return nil
}

var _ service.API = (*Service)(nil)

// ValidStatus reports whether s is an image status Glance knows.
func ValidStatus(s string) bool { return slices.Contains(allStatuses, s) }

// UpdateProperties changes an image's custom properties through fn, which
// gets a copy to edit (the compute API's image metadata proxy). Keys that
// name standard, read-only or reserved attributes are refused with 403,
// as a JSON patch of them would be.
func (s *Service) UpdateProperties(ctx context.Context, id string, fn func(props map[string]string) error) (*Image, error) {
	c := callerOf(ctx)
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleModifyImage, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	out, err := s.store.UpdateImage(ctx, id, func(img *Image, _ UsageFunc) error {
		props := make(map[string]string, len(img.Properties))
		for k, v := range img.Properties {
			props[k] = v
		}
		if err := fn(props); err != nil {
			return err
		}
		for k, v := range props {
			if old, ok := img.Properties[k]; ok && old == v {
				continue
			}
			switch {
			case slices.Contains(readOnlyAttrs, k):
				return apiutil.Forbidden("Attribute '%s' is read-only.", k)
			case isReserved(k), slices.Contains(baseAttrs, k):
				return apiutil.Forbidden("Attribute '%s' is reserved.", k)
			}
		}
		img.Properties = props
		img.UpdatedAt = s.now().UTC()
		return nil
	})
	return out, mapNotFound(err, id)
}
