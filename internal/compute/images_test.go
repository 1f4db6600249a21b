package compute_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/api"
)

// proxyImages is an in-memory image service for the /images proxy.
type proxyImages struct {
	mu   sync.Mutex
	imgs map[string]*api.Image
}

func newProxyImages(n int) *proxyImages {
	p := &proxyImages{imgs: map[string]*api.Image{}}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		p.imgs[id] = &api.Image{ID: id, Name: fmt.Sprintf("img-%d", i), Status: "active", MinRAM: int64(64 * i),
			MinDisk: int64(i), Size: int64(1000 + i), SizeKnown: true, Created: base.Add(time.Duration(i) * time.Minute),
			Updated: base.Add(time.Duration(i) * time.Minute), Properties: map[string]string{"n": fmt.Sprint(i)}}
	}
	return p
}

func (p *proxyImages) GetImage(_ context.Context, id string) (*api.Image, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	img, ok := p.imgs[id]
	if !ok {
		return nil, api.ErrImageNotFound
	}
	c := *img
	c.Properties = maps.Clone(img.Properties)
	return &c, nil
}

func (p *proxyImages) ListImages(_ context.Context, q api.ImageQuery) ([]*api.Image, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := slices.Sorted(maps.Keys(p.imgs))
	var out []*api.Image
	past := q.Marker == ""
	for _, id := range ids {
		img := p.imgs[id]
		if !past {
			past = id == q.Marker
			continue
		}
		if q.Name != "" && img.Name != q.Name || q.Status != "" && img.Status != q.Status ||
			q.MinRAM != nil && img.MinRAM < *q.MinRAM || q.MinDisk != nil && img.MinDisk < *q.MinDisk {
			continue
		}
		match := true
		for k, v := range q.Props {
			if img.Properties[k] != v {
				match = false
			}
		}
		if match && len(out) < q.Limit {
			out = append(out, img)
		}
	}
	return out, nil
}

func (p *proxyImages) DeleteImage(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	img, ok := p.imgs[id]
	if !ok {
		return apiutil.NotFound("No image found with ID %s", id)
	}
	if img.Properties["protected"] == "yes" {
		return apiutil.Forbidden("Image %s is protected and cannot be deleted.", id)
	}
	delete(p.imgs, id)
	return nil
}

func (p *proxyImages) UpdateImageProperties(_ context.Context, id string, fn func(map[string]string) error) (*api.Image, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	img, ok := p.imgs[id]
	if !ok {
		return nil, apiutil.NotFound("No image found with ID %s", id)
	}
	props := maps.Clone(img.Properties)
	if err := fn(props); err != nil {
		return nil, err
	}
	img.Properties = props
	return img, nil
}

func TestImageProxy(t *testing.T) {
	imgs := newProxyImages(5)
	e := newEnv(t, nil, compute.Config{Images: imgs})
	id0, id1 := "00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001"

	t.Run("list", func(t *testing.T) {
		r := e.do("alice", "GET", v21+"/images", "2.1", "").Expect(t, 200, "")
		l := list(t, r.Body, "images")
		if len(l) != 5 {
			t.Fatalf("%d images", len(l))
		}
		first := l[0].(map[string]any)
		if len(first) != 3 || first["id"] != id0 || first["name"] != "img-0" {
			t.Errorf("list entry %v", first)
		}
		links := first["links"].([]any)
		if len(links) != 3 || links[2].(map[string]any)["rel"] != "alternate" ||
			links[2].(map[string]any)["href"] != publicURL+"/image/images/"+id0 {
			t.Errorf("links %v", links)
		}
	})
	t.Run("detail and paging", func(t *testing.T) {
		r := e.do("alice", "GET", v21+"/images/detail?limit=2", "2.35", "").Expect(t, 200, "")
		l := list(t, r.Body, "images")
		if len(l) != 2 {
			t.Fatalf("%d images", len(l))
		}
		d := l[1].(map[string]any)
		want := map[string]any{"id": id1, "name": "img-1", "minRam": float64(64), "minDisk": float64(1), "status": "ACTIVE",
			"progress": float64(100), "OS-EXT-IMG-SIZE:size": float64(1001), "created": "2026-01-02T03:05:05Z",
			"updated": "2026-01-02T03:05:05Z"}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("%s = %#v, want %#v", k, d[k], v)
			}
		}
		if md := d["metadata"].(map[string]any); md["n"] != "1" {
			t.Errorf("metadata %v", md)
		}
		next := list(t, r.Body, "images_links")[0].(map[string]any)["href"].(string)
		if !strings.Contains(next, "marker="+id1) || !strings.Contains(next, "/images/detail") {
			t.Errorf("next link %s", next)
		}
	})
	t.Run("filters", func(t *testing.T) {
		r := e.do("alice", "GET", v21+"/images/detail?minRam=192&minDisk=4", "2.1", "").Expect(t, 200, "")
		if l := list(t, r.Body, "images"); len(l) != 1 || l[0].(map[string]any)["name"] != "img-4" {
			t.Errorf("minRam/minDisk filter: %v", l)
		}
		r = e.do("alice", "GET", v21+"/images?property-n=2", "2.1", "").Expect(t, 200, "")
		if l := list(t, r.Body, "images"); len(l) != 1 || l[0].(map[string]any)["name"] != "img-2" {
			t.Errorf("property filter: %v", l)
		}
		r = e.do("alice", "GET", v21+"/images?status=SAVING", "2.1", "").Expect(t, 200, "")
		if l := list(t, r.Body, "images"); len(l) != 0 {
			t.Errorf("status filter: %v", l)
		}
		e.do("alice", "GET", v21+"/images?minRam=x", "2.1", "").Expect(t, 400, "badRequest")
		e.do("alice", "GET", v21+"/images?limit=-1", "2.1", "").Expect(t, 400, "badRequest")
		e.do("alice", "GET", v21+"/images?changes-since=yesterday", "2.1", "").Expect(t, 400, "badRequest")
	})
	t.Run("show", func(t *testing.T) {
		imgs.imgs[id1].Properties["auto_disk_config"] = "True"
		imgs.imgs[id1].Properties["instance_uuid"] = "9d2e1f8a-0000-4000-8000-000000000001"
		imgs.imgs[id1].Status = "queued"
		r := e.do("alice", "GET", v21+"/images/"+id1, "2.1", "").Expect(t, 200, "")
		im := obj(t, r.Body, "image")
		if im["OS-DCF:diskConfig"] != "AUTO" || im["status"] != "SAVING" || im["progress"] != float64(25) {
			t.Errorf("image %v", im)
		}
		if s := im["server"].(map[string]any); s["id"] != "9d2e1f8a-0000-4000-8000-000000000001" || len(s["links"].([]any)) != 2 {
			t.Errorf("server %v", s)
		}
		r = e.do("alice", "GET", v21+"/images/"+id0, "2.1", "").Expect(t, 200, "")
		if _, ok := obj(t, r.Body, "image")["OS-DCF:diskConfig"]; ok {
			t.Error("diskConfig without auto_disk_config")
		}
		r = e.do("alice", "GET", v21+"/images/00000000-0000-4000-8000-999999999999", "2.1", "").Expect(t, 404, "itemNotFound")
		if m := r.Body["itemNotFound"].(map[string]any)["message"]; m != "Image not found." {
			t.Errorf("message %v", m)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		p := v21 + "/images/" + id0 + "/metadata"
		r := e.do("alice", "POST", p, "2.1", `{"metadata": {"a": "1", "b": "2"}}`).Expect(t, 200, "")
		if md := r.Body["metadata"].(map[string]any); len(md) != 3 || md["a"] != "1" || md["n"] != "0" {
			t.Errorf("create merged %v", md)
		}
		r = e.do("alice", "PUT", p+"/a", "2.1", `{"meta": {"a": "x"}}`).Expect(t, 200, "")
		if m := obj(t, r.Body, "meta"); m["a"] != "x" {
			t.Errorf("update item %v", m)
		}
		e.do("alice", "PUT", p+"/a", "2.1", `{"meta": {"b": "x"}}`).Expect(t, 400, "badRequest")
		e.do("alice", "PUT", p+"/a", "2.1", `{"meta": {}}`).Expect(t, 400, "badRequest")
		r = e.do("alice", "GET", p+"/a", "2.1", "").Expect(t, 200, "")
		if m := obj(t, r.Body, "meta"); m["a"] != "x" {
			t.Errorf("show item %v", m)
		}
		e.do("alice", "GET", p+"/zzz", "2.1", "").Expect(t, 404, "itemNotFound")
		e.do("alice", "DELETE", p+"/b", "2.1", "").Expect(t, 204, "")
		r = e.do("alice", "DELETE", p+"/b", "2.1", "").Expect(t, 404, "itemNotFound")
		if m := r.Body["itemNotFound"].(map[string]any)["message"]; m != "Invalid metadata key" {
			t.Errorf("message %v", m)
		}
		r = e.do("alice", "PUT", p, "2.1", `{"metadata": {"only": "this"}}`).Expect(t, 200, "")
		if md := r.Body["metadata"].(map[string]any); len(md) != 1 || md["only"] != "this" {
			t.Errorf("update all %v", md)
		}
		r = e.do("alice", "GET", p, "2.1", "").Expect(t, 200, "")
		if md := r.Body["metadata"].(map[string]any); len(md) != 1 {
			t.Errorf("after update all %v", md)
		}
		e.do("alice", "POST", p, "2.1", `{"metadata": {"a": 1}}`).Expect(t, 400, "badRequest")
		e.do("alice", "POST", p, "2.1", `{"meta": {}}`).Expect(t, 400, "badRequest")
		// The metadata_items quota (128 by default) bounds the result.
		e.do("admin", "PUT", v21+"/os-quota-sets/p1", "2.1", `{"quota_set": {"metadata_items": 2}}`).Expect(t, 200, "")
		r = e.do("alice", "POST", p, "2.1", `{"metadata": {"x": "1", "y": "2"}}`).Expect(t, 403, "forbidden")
		if m := r.Body["forbidden"].(map[string]any)["message"]; m != "Image metadata limit exceeded" {
			t.Errorf("message %v", m)
		}
		e.do("alice", "POST", v21+"/images/00000000-0000-4000-8000-999999999999/metadata", "2.1", `{"metadata": {"x": "1"}}`).Expect(t, 404, "itemNotFound")
	})
	t.Run("delete", func(t *testing.T) {
		imgs.imgs[id1].Properties["protected"] = "yes"
		r := e.do("alice", "DELETE", v21+"/images/"+id1, "2.1", "").Expect(t, 403, "forbidden")
		if m := r.Body["forbidden"].(map[string]any)["message"]; m != "You are not allowed to delete the image." {
			t.Errorf("message %v", m)
		}
		e.do("alice", "DELETE", v21+"/images/"+id0, "2.1", "").Expect(t, 204, "")
		e.do("alice", "DELETE", v21+"/images/"+id0, "2.1", "").Expect(t, 404, "itemNotFound")
	})
	t.Run("gone in 2.36", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/images", ""}, {"GET", "/images/detail", ""}, {"GET", "/images/" + id1, ""},
			{"DELETE", "/images/" + id1, ""}, {"GET", "/images/" + id1 + "/metadata", ""},
			{"POST", "/images/" + id1 + "/metadata", `{"metadata": {}}`}, {"DELETE", "/images/" + id1 + "/metadata/n", ""},
		} {
			e.do("alice", c.method, v21+c.path, "2.36", c.body).Expect(t, 404, "itemNotFound")
		}
	})
}
