// Package cache is the per-host image cache of compute agents: images are
// fetched once from the image service, verified against their SHA-512
// (os_hash_value), stored under the cache directory, shared by every
// instance on the host that uses them, and removed some time after the
// last user let go.
//
// Files are written to a temporary name and renamed into place only once
// their hash matches, so a crash never leaves a half-written image that
// looks complete. Concurrent requests for the same image share one fetch.
package cache

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Meta is what the cache needs to know about an image before fetching it.
type Meta struct {
	ID         string
	Size       int64
	HashAlgo   string // "sha512"
	HashValue  string // hex
	DiskFormat string
	// Properties are the image's custom properties (kernel_id,
	// ramdisk_id, os_command_line, hw_* ...).
	Properties map[string]string
}

// Fetcher reads images from the image service.
type Fetcher interface {
	Meta(ctx context.Context, id string) (Meta, error)
	Open(ctx context.Context, id string) (io.ReadCloser, error)
}

// Uploader stores image data: the agents' way to upload snapshots. A
// Fetcher may implement it.
type Uploader interface {
	Upload(ctx context.Context, id string, r io.Reader) error
}

// ErrNoUpload is returned by Upload when the fetcher cannot upload.
var ErrNoUpload = errors.New("image cache: this image source cannot store images")

// ErrCorrupt is returned when fetched data does not match its hash or size.
var ErrCorrupt = errors.New("image data does not match its checksum")

type entry struct {
	path     string
	refs     int
	lastUsed time.Time
}

type fetch struct {
	done chan struct{}
	path string
	err  error
}

// Cache is safe for concurrent use.
type Cache struct {
	dir   string
	fetch Fetcher
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	entries  map[string]*entry
	inflight map[string]*fetch
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// New opens (creating) a cache in dir. Complete files left from an earlier
// run are adopted, unreferenced; leftover temporary files are removed.
func New(dir string, f Fetcher, log *slog.Logger) (*Cache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	c := &Cache{dir: dir, fetch: f, log: log, now: time.Now, entries: map[string]*entry{}, inflight: map[string]*fetch{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, ".part"):
			_ = os.Remove(filepath.Join(dir, name))
		case idPattern.MatchString(name) && de.Type().IsRegular():
			info, _ := de.Info()
			c.entries[name] = &entry{path: filepath.Join(dir, name), lastUsed: info.ModTime()}
		}
	}
	return c, nil
}

// Acquire returns the local path of an image, fetching and verifying it
// when the cache does not hold it, and counts a user. Call release when
// the user (an instance) no longer needs the file.
func (c *Cache) Acquire(ctx context.Context, id string) (path string, release func(), err error) {
	if !idPattern.MatchString(id) {
		return "", nil, fmt.Errorf("image cache: invalid image id %q", id)
	}
	for {
		c.mu.Lock()
		if e, ok := c.entries[id]; ok {
			e.refs++
			e.lastUsed = c.now()
			c.mu.Unlock()
			return e.path, c.releaser(id), nil
		}
		f, ok := c.inflight[id]
		if !ok {
			f = &fetch{done: make(chan struct{})}
			c.inflight[id] = f
			c.mu.Unlock()
			f.path, f.err = c.download(ctx, id)
			c.mu.Lock()
			delete(c.inflight, id)
			if f.err == nil {
				c.entries[id] = &entry{path: f.path, lastUsed: c.now()}
			}
			close(f.done)
			c.mu.Unlock()
			if f.err != nil {
				return "", nil, f.err
			}
			continue // take the reference through the normal path
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-f.done:
			if f.err != nil {
				return "", nil, f.err
			}
		}
	}
}

func (c *Cache) releaser(id string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if e, ok := c.entries[id]; ok && e.refs > 0 {
				e.refs--
				e.lastUsed = c.now()
			}
			c.mu.Unlock()
		})
	}
}

// hashAlgos are the os_hash_algo values an image is verified with (the
// image service's hashing_algorithm choices); "" verifies with SHA-512,
// which is what os_hash_value holds when no algorithm is named.
var hashAlgos = map[string]func() hash.Hash{"": sha512.New, "sha512": sha512.New, "sha384": sha512.New384, "sha256": sha256.New}

func (c *Cache) download(ctx context.Context, id string) (string, error) {
	meta, err := c.fetch.Meta(ctx, id)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", id, err)
	}
	newHash, known := hashAlgos[meta.HashAlgo]
	if !known {
		return "", fmt.Errorf("image %s: unsupported hash algorithm %q", id, meta.HashAlgo)
	}
	rc, err := c.fetch.Open(ctx, id)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", id, err)
	}
	defer rc.Close()
	final := filepath.Join(c.dir, id)
	tmp, err := os.CreateTemp(c.dir, id+".*.part")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := newHash()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if err != nil {
		return "", fmt.Errorf("image %s: fetch: %w", id, err)
	}
	if meta.Size > 0 && n != meta.Size {
		return "", fmt.Errorf("image %s: got %d bytes, want %d: %w", id, n, meta.Size, ErrCorrupt)
	}
	if meta.HashValue != "" && !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), meta.HashValue) {
		return "", fmt.Errorf("image %s: %w", id, ErrCorrupt)
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	// Instances use overlays on the base file: it must never change.
	if err := os.Chmod(tmp.Name(), 0o440); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	ok = true
	c.log.Info("image cached", "image", id, "bytes", n)
	return final, nil
}

// Meta returns what the image service says about an image (disk format,
// properties); it asks every time, so changes made since it was cached
// are seen.
func (c *Cache) Meta(ctx context.Context, id string) (Meta, error) {
	if !idPattern.MatchString(id) {
		return Meta{}, fmt.Errorf("image cache: invalid image id %q", id)
	}
	m, err := c.fetch.Meta(ctx, id)
	if err != nil {
		return Meta{}, fmt.Errorf("image %s: %w", id, err)
	}
	return m, nil
}

// Upload stores data as the image id's content through the fetcher,
// when it can (snapshots).
func (c *Cache) Upload(ctx context.Context, id string, r io.Reader) error {
	u, ok := c.fetch.(Uploader)
	if !ok {
		return ErrNoUpload
	}
	return u.Upload(ctx, id, r)
}

// Clean removes images no instance uses that were last used more than
// unusedFor ago, and returns how many it removed.
func (c *Cache) Clean(unusedFor time.Duration) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	removed := 0
	var errs []error
	for id, e := range c.entries {
		if e.refs > 0 || c.now().Sub(e.lastUsed) < unusedFor {
			continue
		}
		if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		delete(c.entries, id)
		removed++
		c.log.Info("image removed from cache", "image", id)
	}
	return removed, errors.Join(errs...)
}

// Refs reports how many users hold an image (for tests and metrics).
func (c *Cache) Refs(id string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return 0, false
	}
	return e.refs, true
}
