package compute_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/image/cache"
)

// memImages is an image service in memory: the API's lookup and creator,
// the conductor's deleter and the agents' cache and uploader in one.
type memImages struct {
	mu       sync.Mutex
	n        int
	images   map[string]*memImage
	acquired []string
	failUp   bool
}

type memImage struct {
	api.SnapshotImage
	status string
	data   []byte
}

func newMemImages() *memImages {
	return &memImages{images: map[string]*memImage{imageID: {SnapshotImage: api.SnapshotImage{Name: "base", DiskFormat: "qcow2",
		ContainerFormat: "bare", Properties: map[string]string{"os_distro": "kumo"}}, status: "active"}}}
}

func (m *memImages) GetImage(ctx context.Context, id string) (*api.Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	im, ok := m.images[id]
	if !ok {
		return nil, api.ErrImageNotFound
	}
	return &api.Image{ID: id, Name: im.Name, Status: im.status, DiskFormat: im.DiskFormat, ContainerFormat: im.ContainerFormat,
		Properties: im.Properties, Size: int64(len(im.data))}, nil
}

func (m *memImages) CreateImage(ctx context.Context, s api.SnapshotImage) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	id := fmt.Sprintf("22222222-2222-4333-8444-%012d", m.n)
	m.images[id] = &memImage{SnapshotImage: s, status: "queued"}
	return id, nil
}

func (m *memImages) DeleteImage(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.images, id)
	return nil
}

func (m *memImages) Acquire(ctx context.Context, id string) (string, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.images[id]; !ok {
		return "", nil, fmt.Errorf("image %s: not found", id)
	}
	m.acquired = append(m.acquired, id)
	return "/images/" + id, func() {}, nil
}

func (m *memImages) Meta(ctx context.Context, id string) (cache.Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	im, ok := m.images[id]
	if !ok {
		return cache.Meta{}, fmt.Errorf("image %s: not found", id)
	}
	return cache.Meta{ID: id, DiskFormat: im.DiskFormat, Properties: im.Properties}, nil
}

func (m *memImages) Upload(ctx context.Context, id string, r io.Reader) error {
	m.mu.Lock()
	im, ok := m.images[id]
	fail := m.failUp
	if ok {
		im.status = "saving"
	}
	m.mu.Unlock()
	if !ok {
		return errors.New("no such image")
	}
	b, err := io.ReadAll(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || fail {
		im.status = "queued"
		return errors.Join(err, errors.New("store refused the upload"))
	}
	im.data, im.status = b, "active"
	return nil
}

func (m *memImages) get(id string) (memImage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	im, ok := m.images[id]
	if !ok {
		return memImage{}, false
	}
	return *im, true
}

func (m *memImages) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.images)
}

func newSnapshotEnv(t *testing.T) (*env, *memImages) {
	imgs := newMemImages()
	e := newServerEnv(t, nil, 1, func(c *compute.Config) {
		c.Images, c.ImageCache, c.ConductorConfig.Images = imgs, imgs, imgs
	})
	return e, imgs
}

func TestCreateImage(t *testing.T) {
	t.Parallel()
	e, imgs := newSnapshotEnv(t)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")

	// 2.45 and later: the image id in the body.
	r := e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.45", `{"createImage": {"name": "snap1", "metadata": {"k": "v"}}}`).Expect(t, 202, "")
	snap, _ := r.Body["image_id"].(string)
	if snap == "" {
		t.Fatalf("no image_id in %s", r.Raw)
	}
	e.eventually(func() bool { im, _ := imgs.get(snap); return im.status == "active" }, "snapshot uploaded")
	e.waitStatus(id, "ACTIVE")
	im, _ := imgs.get(snap)
	if !bytes.HasPrefix(im.data, []byte("QFI\xfb")) || !bytes.Contains(im.data, []byte("KUMO-FAKE-SNAPSHOT "+id)) {
		t.Errorf("snapshot data is not the fake qcow2 of %s: %q", id, im.data[:32])
	}
	for k, v := range map[string]string{"image_type": "snapshot", "instance_uuid": id, "base_image_ref": imageID,
		"k": "v", "os_distro": "kumo", "image_location": "snapshot"} {
		if im.Properties[k] != v {
			t.Errorf("property %s = %q, want %q", k, im.Properties[k], v)
		}
	}
	if im.Name != "snap1" || im.DiskFormat != "qcow2" || im.ContainerFormat != "bare" || im.MinDisk != 1 {
		t.Errorf("snapshot image %+v", im.SnapshotImage)
	}
	acts := list(t, e.do("alice", "GET", v21+"/servers/"+id+"/os-instance-actions", "2.96", "").Body, "instanceActions")
	if acts[0].(map[string]any)["action"] != "createImage" {
		t.Errorf("last action %v", acts[0])
	}

	// Before 2.45: a Location header and no body.
	r = e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.44", `{"createImage": {"name": "snap2"}}`).Expect(t, 202, "")
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "/image/v2/images/") || r.Raw != "" {
		t.Errorf("2.44 answer: Location %q body %q", loc, r.Raw)
	}
	e.waitStatus(id, "ACTIVE")

	// A stopped server snapshots too and stays stopped.
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "", `{"os-stop": null}`).Expect(t, 202, "")
	e.waitStatus(id, "SHUTOFF")
	r = e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", `{"createImage": {"name": "snap3"}}`).Expect(t, 202, "")
	snap3 := r.Body["image_id"].(string)
	e.eventually(func() bool { im, _ := imgs.get(snap3); return im.status == "active" }, "stopped snapshot uploaded")
	e.waitStatus(id, "SHUTOFF")

	// Refusals create no image.
	before := imgs.count()
	for _, tc := range []struct{ body, msg string }{
		{`{"createImage": {}}`, "'name' is a required property"},
		{`{"createImage": {"name": "x", "bogus": 1}}`, "Additional properties are not allowed"},
		{`{"createImage": {"name": "x", "metadata": "no"}}`, "metadata"},
	} {
		r := e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", tc.body).Expect(t, 400, "badRequest")
		if !strings.Contains(r.Raw, tc.msg) {
			t.Errorf("%s: %s lacks %q", tc.body, r.Raw, tc.msg)
		}
	}
	e.do("bob", "POST", v21+"/servers/"+id+"/action", "2.96", `{"createImage": {"name": "x"}}`).Expect(t, 404, "itemNotFound")
	// A server in a task (here: rescued is not a snapshot state) is refused.
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "", `{"rescue": null}`).Expect(t, 200, "")
	e.waitStatus(id, "RESCUE")
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", `{"createImage": {"name": "x"}}`).Expect(t, 409, "conflictingRequest")
	if n := imgs.count(); n != before {
		t.Errorf("refused requests created images: %d → %d", before, n)
	}
}

func TestCreateImageUploadFailure(t *testing.T) {
	t.Parallel()
	e, imgs := newSnapshotEnv(t)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	imgs.mu.Lock()
	imgs.failUp = true
	imgs.mu.Unlock()
	r := e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", `{"createImage": {"name": "doomed"}}`).Expect(t, 202, "")
	snap := r.Body["image_id"].(string)
	e.eventually(func() bool { _, ok := imgs.get(snap); return !ok }, "failed snapshot's image deleted")
	e.waitStatus(id, "ACTIVE")
}

func TestShelveSnapshotsAndUnshelveBootsFromIt(t *testing.T) {
	t.Parallel()
	e, imgs := newSnapshotEnv(t)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "", `{"shelve": null}`).Expect(t, 202, "")
	e.waitStatus(id, "SHELVED_OFFLOADED")
	var shelved string
	imgs.mu.Lock()
	for iid, im := range imgs.images {
		if im.Name == "vm1-shelved" && im.status == "active" && im.Properties["instance_uuid"] == id {
			shelved = iid
		}
	}
	imgs.mu.Unlock()
	if shelved == "" {
		t.Fatal("no active vm1-shelved image after shelve")
	}
	if ids, _ := e.driver(0).List(context.Background()); len(ids) != 0 {
		t.Errorf("offloaded server still on the host: %v", ids)
	}
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "", `{"unshelve": null}`).Expect(t, 202, "")
	e.waitStatus(id, "ACTIVE")
	if _, ok := imgs.get(shelved); ok {
		t.Error("shelved image still exists after unshelve")
	}
	imgs.mu.Lock()
	last := imgs.acquired[len(imgs.acquired)-1]
	imgs.mu.Unlock()
	if last != shelved {
		t.Errorf("unshelve booted from %s, want the shelved image %s", last, shelved)
	}
	if s := e.server(id); s["image"].(map[string]any)["id"] != imageID {
		t.Errorf("server image after unshelve: %v", s["image"])
	}
}
