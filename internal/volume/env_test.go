package volume_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/apiutil/apitest"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/volume"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

const publicURL = "http://kumo.test"

// env is a volume API on a fresh database with a file backend and four
// callers: admin (project p-admin), alice (member of p1), rob (reader of
// p1) and bob (member of p2).
type env struct {
	t      testing.TB
	h      http.Handler
	svc    *volume.Service
	db     *db.DB
	dir    string
	images *fakeImages
}

func newEnv(t testing.TB, d *db.DB, mutate func(*volume.Config)) *env {
	t.Helper()
	if d == nil {
		d = dbtest.OpenSQLite(t, volume.Migrations())
	}
	dir := t.TempDir()
	fb, err := backend.NewFile("file", dir, "raw")
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.New(volume.PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := authtest.NewCallers()
	imgs := &fakeImages{images: map[string]*fakeImage{}}
	cfg := volume.Config{Backends: []backend.Backend{fb}, Images: imgs, TmpDir: t.TempDir(), BackupDir: t.TempDir()}
	if mutate != nil {
		mutate(&cfg)
	}
	deps := service.Deps{DB: d, Policy: enf, Auth: v}
	if os.Getenv("KUMO_TEST_VOLUME_LOG") != "" {
		deps.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := volume.New(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	return &env{t: t, h: apiutil.Middleware(mux, publicURL, nil, nil), svc: svc, db: d, dir: dir, images: imgs}
}

const v3 = "/volume/v3"

// resp is a recorded answer of the API.
type resp = apitest.Response

// do sends a request; version "" sends no microversion header.
func (e *env) do(token, method, path, version, body string) resp {
	e.t.Helper()
	return apitest.Do(e.t, e.h, "volume", token, method, path, version, body)
}

func obj(t testing.TB, v any, key string) map[string]any {
	t.Helper()
	return apitest.Obj(t, v, key)
}

func list(t testing.TB, v map[string]any, key string) []any {
	t.Helper()
	return apitest.List(t, v, key)
}

// createVolume creates a volume and waits until it leaves creating.
func (e *env) createVolume(token, body string) map[string]any {
	e.t.Helper()
	r := e.do(token, "POST", v3+"/volumes", "", body).Expect(e.t, 202, "")
	id := obj(e.t, r.Body, "volume")["id"].(string)
	return e.wait(token, "volumes", id, "creating")
}

// wait polls a volume or snapshot until its status is not from.
func (e *env) wait(token, coll, id, from string) map[string]any {
	e.t.Helper()
	key := strings.TrimSuffix(coll, "s")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.do(token, "GET", v3+"/"+coll+"/"+id, "", "")
		if r.Status == 404 {
			return nil
		}
		r.Expect(e.t, 200, "")
		o := obj(e.t, r.Body, key)
		if o["status"] != from {
			return o
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s %s still %s", coll, id, from)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeImages is an in-memory image service.
type fakeImages struct {
	mu     sync.Mutex
	images map[string]*fakeImage
}

type fakeImage struct {
	info volume.ImageInfo
	data []byte
}

func (f *fakeImages) add(id, format string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[id] = &fakeImage{info: volume.ImageInfo{ID: id, Name: "img-" + id[:4], Status: "active", DiskFormat: format,
		ContainerFormat: "bare", Size: int64(len(data)), Properties: map[string]string{"hw_disk_bus": "virtio"}}, data: data}
}

func (f *fakeImages) Get(_ context.Context, id string) (*volume.ImageInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok {
		return nil, volume.ErrImageNotFound
	}
	info := img.info
	return &info, nil
}

func (f *fakeImages) Open(_ context.Context, id string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok {
		return nil, volume.ErrImageNotFound
	}
	return io.NopCloser(bytes.NewReader(img.data)), nil
}

func (f *fakeImages) Create(_ context.Context, name, diskFormat, containerFormat, _ string, _ bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "11111111-2222-4333-8444-" + strings.Repeat("0", 12-len(name)%12) + strings.Repeat("a", len(name)%12)
	f.images[id] = &fakeImage{info: volume.ImageInfo{ID: id, Name: name, Status: "queued", DiskFormat: diskFormat, ContainerFormat: containerFormat}}
	return id, nil
}

func (f *fakeImages) Upload(_ context.Context, id string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.images[id]
	img.data, img.info.Size, img.info.Status = b, int64(len(b)), "active"
	return nil
}
