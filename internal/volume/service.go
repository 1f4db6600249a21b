// Package volume is Kumo's Block Storage service, wire-compatible with
// OpenStack Cinder's v3 API: volumes, volume types with extra specs and
// access, snapshots, the v3 attachments API, quotas and limits,
// availability zones and os-services. Storage lives in backends
// (internal/volume/backend); the scheduler here picks one by type
// (volume_backend_name) and capacity. Long steps (create, delete, extend,
// upload, snapshot create and delete) run as persisted tasks: the row
// holds the step's status and arguments, and Recover finishes or fails
// whatever a previous process left (see the diagram in model.go).
package volume

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

// ImageInfo is what the volume service reads of an image.
type ImageInfo struct {
	ID, Name, Status, DiskFormat, ContainerFormat, Checksum string
	Size                                                    int64
	MinDisk, MinRAM                                         int64
	Properties                                              map[string]string
}

// ErrImageNotFound is returned by Images.Get for an image the caller
// cannot see.
var ErrImageNotFound = errors.New("image not found")

// Images is the image service as the volume service uses it.
type Images interface {
	// Get reads an image as the caller in ctx sees it.
	Get(ctx context.Context, id string) (*ImageInfo, error)
	// Open reads an image's data (as the service itself).
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// Create makes a queued image owned by the caller in ctx.
	Create(ctx context.Context, name, diskFormat, containerFormat, visibility string, protected bool) (string, error)
	// Upload stores an image's data, as the service itself (the image
	// was created by, and belongs to, the caller).
	Upload(ctx context.Context, id string, r io.Reader, size int64) error
}

// Config tunes the volume service.
type Config struct {
	// Host is the service host name shown in os-services and in
	// os-vol-host-attr:host ("kumo").
	Host string
	// Zone is the availability zone (default "nova").
	Zone string
	// Backends are the storage pools; at least one.
	Backends []backend.Backend
	// DefaultType names the default volume type (default "__DEFAULT__").
	DefaultType string
	// Quotas overrides Cinder's default quotas by resource name.
	Quotas map[string]int64
	// OverSubscription is the max_over_subscription_ratio of thin
	// backends (default 20).
	OverSubscription float64
	// Images is the image service; nil refuses imageRef and uploads.
	Images Images
	// TmpDir holds image downloads (default: system temp).
	TmpDir string
	// BackupDir holds backups (compressed qcow2 files); empty turns the
	// backups API off (501).
	BackupDir string
	// DefaultLimit and MaxLimit bound list pages (default 1000 both,
	// Cinder's osapi_max_limit).
	MaxLimit int
	// InstanceExists, when set, lets the service drop the attachments of
	// deleted instances (and delete their delete_on_termination volumes).
	InstanceExists func(ctx context.Context, uuid string) (bool, error)
	// ReapInterval is how often that runs (default 2s).
	ReapInterval time.Duration
}

// Service is the block storage service.
type Service struct {
	deps     service.Deps
	cfg      Config
	store    *Store
	policy   *policy.Enforcer
	log      *slog.Logger
	now      func() time.Time
	backends map[string]backend.Backend

	mu    sync.Mutex
	locks map[string]*sync.Mutex

	tasks   sync.WaitGroup
	baseCtx context.Context
	cancel  context.CancelFunc
}

// New builds the service.
func New(deps service.Deps, cfg Config) (*Service, error) {
	if deps.DB == nil {
		return nil, errors.New("volume: no database")
	}
	if len(cfg.Backends) == 0 {
		return nil, errors.New("volume: no backend")
	}
	if cfg.Host == "" {
		cfg.Host = "kumo"
	}
	if cfg.Zone == "" {
		cfg.Zone = "nova"
	}
	if cfg.DefaultType == "" {
		cfg.DefaultType = "__DEFAULT__"
	}
	if cfg.OverSubscription <= 0 {
		cfg.OverSubscription = 20
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 1000
	}
	if cfg.BackupDir != "" {
		if err := os.MkdirAll(cfg.BackupDir, 0o700); err != nil {
			return nil, fmt.Errorf("volume: backup dir: %w", err)
		}
		tmps, _ := filepath.Glob(filepath.Join(cfg.BackupDir, "*.tmp"))
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	enf := deps.Policy
	if enf == nil {
		var err error
		if enf, err = policy.New(PolicyDefaults(), nil); err != nil {
			return nil, fmt.Errorf("volume: policy: %w", err)
		}
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bs := map[string]backend.Backend{}
	for _, b := range cfg.Backends {
		if _, dup := bs[b.Name()]; dup {
			return nil, fmt.Errorf("volume: two backends named %q", b.Name())
		}
		bs[b.Name()] = b
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{deps: deps, cfg: cfg, store: NewStore(deps.DB), policy: enf, log: log.With("service", "volume"),
		now: time.Now, backends: bs, locks: map[string]*sync.Mutex{}, baseCtx: ctx, cancel: cancel}, nil
}

// Catalog implements service.API: Cinder's two service types.
func (s *Service) Catalog() []service.CatalogEntry {
	return []service.CatalogEntry{
		{Type: "block-storage", Name: "cinder", Path: "/volume/v3"},
		{Type: "volumev3", Name: "cinderv3", Path: "/volume/v3"},
	}
}

// Run recovers interrupted tasks, then waits for ctx.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Recover(ctx); err != nil && ctx.Err() == nil {
		// (A shutdown right after start cancels the recovery: not an error.)
		s.log.Error("recover interrupted volume tasks", "err", err)
	}
	if s.cfg.InstanceExists != nil {
		every := s.cfg.ReapInterval
		if every <= 0 {
			every = 2 * time.Second
		}
		go s.reapLoop(ctx, every, s.cfg.InstanceExists)
	}
	<-ctx.Done()
	s.Close()
	return nil
}

// Close stops background work and waits for running steps.
func (s *Service) Close() {
	s.cancel()
	s.tasks.Wait()
}

// WaitTasks waits for the running steps (tests, benchmarks).
func (s *Service) WaitTasks() { s.tasks.Wait() }

// Store returns the store (tests).
func (s *Service) Store() *Store { return s.store }

func (s *Service) hostOf(b backend.Backend) string {
	return s.cfg.Host + "@" + b.Name() + "#" + b.Name()
}

// lock serialises the steps on one resource.
func (s *Service) lock(id string) func() {
	s.mu.Lock()
	l, ok := s.locks[id]
	if !ok {
		l = &sync.Mutex{}
		s.locks[id] = l
	}
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
	}
}

// caller is who makes a request.
type caller struct {
	project string
	user    string
	admin   bool
	creds   policy.Credentials
	ctx     *auth.Context
}

func callerOf(ctx context.Context) caller {
	c := auth.From(ctx)
	if c == nil {
		return caller{}
	}
	creds := c.Policy()
	creds.IsAdmin = c.IsAdmin()
	return caller{project: c.ProjectID, user: c.UserID, admin: c.IsAdmin(), creds: creds, ctx: c}
}

func (s *Service) authorize(c caller, rule, project string) error {
	err := s.policy.Authorize(rule, c.creds, map[string]string{"project_id": project})
	if err == nil {
		return nil
	}
	if errors.Is(err, policy.ErrForbidden) {
		return apiutil.Forbidden("Policy doesn't allow %s to be performed.", rule)
	}
	return err
}

// can reports whether a rule allows c on project, without an error.
func (s *Service) can(c caller, rule, project string) bool {
	return s.authorize(c, rule, project) == nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// background runs fn as a task step outside the request's lifetime.
func (s *Service) background(fn func(ctx context.Context)) {
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		fn(s.baseCtx)
	}()
}

// Recover finishes or fails the steps a previous process left: volumes
// and snapshots in a transitional status are driven again from the task
// stored on their row; attachments half-way are rolled back.
func (s *Service) Recover(ctx context.Context) error {
	ids, err := s.store.VolumeIDsInStatus(ctx, StatusCreating, StatusDeleting, StatusExtending, StatusUploading,
		StatusDownloading, StatusAttaching, StatusDetaching)
	if err != nil {
		return err
	}
	for _, id := range ids {
		v, err := s.store.GetVolume(ctx, nil, id)
		if err != nil {
			continue
		}
		switch v.Status {
		case StatusAttaching, StatusDetaching:
			s.rollbackAttach(ctx, id)
		default:
			s.log.Info("resuming interrupted volume step", "volume", id, "status", v.Status)
			s.kickVolume(id)
		}
	}
	backups, err := s.store.BackupIDsInStatus(ctx, BackupCreating, BackupRestoring, BackupDeleting)
	if err != nil {
		return err
	}
	for _, id := range backups {
		s.log.Info("resuming interrupted backup step", "backup", id)
		s.kickBackup(id)
	}
	snaps, err := s.store.SnapshotIDsInStatus(ctx, SnapCreating, SnapDeleting)
	if err != nil {
		return err
	}
	for _, id := range snaps {
		s.log.Info("resuming interrupted snapshot step", "snapshot", id)
		s.kickSnapshot(id)
	}
	return nil
}
