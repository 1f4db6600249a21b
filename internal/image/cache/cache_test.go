package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/image"
	"github.com/kumo-cloud/kumo/internal/image/cache"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

// glance starts a real image service and uploads one image.
func glance(t *testing.T, data []byte) (base, id string, fetcher *countingFetcher) {
	t.Helper()
	return glanceWith(t, data, image.Config{})
}

// glanceWith is glance with an image service configuration.
func glanceWith(t *testing.T, data []byte, cfg image.Config) (base, id string, fetcher *countingFetcher) {
	t.Helper()
	v := authtest.New()
	tok := v.Add("tok", "u1", "p1", "member", "reader")
	enf, err := policy.New(image.PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := dbtest.OpenSQLite(t, image.Migrations())
	svc, err := image.New(service.Deps{DB: d, Policy: enf, Auth: v, DataDir: t.TempDir(), PublicURL: "http://x"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	srv := httptest.NewServer(apiutil.Middleware(mux, "", nil, nil))
	t.Cleanup(srv.Close)
	do := func(method, path, ct string, body io.Reader) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, body)
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("Content-Type", ct)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := do("POST", "/image/v2/images", "application/json", bytes.NewReader([]byte(`{"name":"g","disk_format":"raw","container_format":"bare"}`)))
	var img struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&img)
	res.Body.Close()
	if res = do("PUT", "/image/v2/images/"+img.ID+"/file", "application/octet-stream", bytes.NewReader(data)); res.StatusCode != 204 {
		t.Fatalf("upload: %s", res.Status)
	}
	f := &countingFetcher{Fetcher: &cache.HTTPFetcher{BaseURL: srv.URL + "/image", Token: func(context.Context) (string, error) { return tok, nil }}}
	return srv.URL + "/image", img.ID, f
}

type countingFetcher struct {
	cache.Fetcher
	opens   atomic.Int32
	corrupt bool
}

func (f *countingFetcher) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	f.opens.Add(1)
	rc, err := f.Fetcher.Open(ctx, id)
	if err != nil || !f.corrupt {
		return rc, err
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	b[0] ^= 0xff
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestAcquireShareVerifyClean(t *testing.T) {
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	_, id, f := glance(t, data)
	dir := t.TempDir()
	c, err := cache.New(dir, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	releases := make([]func(), 8)
	for i := range releases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, rel, err := c.Acquire(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			releases[i] = rel
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, data) {
				t.Error("cached data differs")
			}
		}()
	}
	wg.Wait()
	if n := f.opens.Load(); n != 1 {
		t.Fatalf("%d fetches for concurrent users, want 1", n)
	}
	if refs, _ := c.Refs(id); refs != 8 {
		t.Fatalf("refs %d", refs)
	}
	if n, _ := c.Clean(0); n != 0 {
		t.Fatal("cleaned an image in use")
	}
	for _, rel := range releases {
		rel()
		rel() // release is idempotent
	}
	if refs, _ := c.Refs(id); refs != 0 {
		t.Fatalf("refs after release %d", refs)
	}
	if n, _ := c.Clean(time.Hour); n != 0 {
		t.Fatal("cleaned a recently used image")
	}
	// A restarted agent adopts the file without fetching again.
	c2, err := cache.New(dir, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, rel, err := c2.Acquire(ctx, id); err != nil {
		t.Fatal(err)
	} else {
		rel()
	}
	if f.opens.Load() != 1 {
		t.Fatal("restart refetched")
	}
	if n, _ := c2.Clean(0); n != 1 {
		t.Fatalf("clean removed %d", n)
	}
	if _, err := os.Stat(filepath.Join(dir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("file left after clean")
	}
}

func TestCorruptDataIsRejected(t *testing.T) {
	_, id, f := glance(t, []byte("some image bytes"))
	f.corrupt = true
	dir := t.TempDir()
	c, _ := cache.New(dir, f, nil)
	if _, _, err := c.Acquire(context.Background(), id); !errors.Is(err, cache.ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Fatalf("corrupt fetch left %v", des)
	}
	if _, _, err := c.Acquire(context.Background(), "../etc"); err == nil {
		t.Fatal("path-like id accepted")
	}
	if _, _, err := c.Acquire(context.Background(), "00000000-0000-4000-8000-000000000000"); err == nil {
		t.Fatal("unknown image accepted")
	}
}

// TestOtherHashingAlgorithm: images hashed with the image service's other
// hashing_algorithm choices are verified with that algorithm.
func TestOtherHashingAlgorithm(t *testing.T) {
	for _, algo := range []string{"sha256", "sha384"} {
		t.Run(algo, func(t *testing.T) {
			_, id, f := glanceWith(t, []byte("some image bytes"), image.Config{HashingAlgorithm: algo})
			c, _ := cache.New(t.TempDir(), f, nil)
			if _, release, err := c.Acquire(context.Background(), id); err != nil {
				t.Fatal(err)
			} else {
				release()
			}
			f.corrupt = true
			c, _ = cache.New(t.TempDir(), f, nil)
			if _, _, err := c.Acquire(context.Background(), id); !errors.Is(err, cache.ErrCorrupt) {
				t.Fatalf("want ErrCorrupt, got %v", err)
			}
		})
	}
}
