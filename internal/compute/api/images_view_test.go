package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func mapImageLinks(r *http.Request, id string) []any {
	l := links(r, "images", id)
	return append(l, map[string]any{"rel": "alternate", "type": "application/vnd.openstack.image",
		"href": apiutil.PublicURL(r) + "/image/images/" + id})
}

// mapImageView is the map-based view the typed one replaced, kept as the
// reference the appending encoder must match byte for byte.
func mapImageView(r *http.Request, img *Image, full bool) map[string]any {
	v := map[string]any{"id": img.ID, "name": img.Name, "links": mapImageLinks(r, img.ID)}
	if !full {
		return v
	}
	md := img.Properties
	if md == nil {
		md = map[string]string{}
	}
	v["minRam"], v["minDisk"] = img.MinRAM, img.MinDisk
	v["metadata"] = md
	v["created"], v["updated"] = novaTime(img.Created), novaTime(img.Updated)
	v["status"], v["progress"] = imageStatus(img.Status), imageProgress(img.Status)
	v["OS-EXT-IMG-SIZE:size"] = nil
	if img.SizeKnown {
		v["OS-EXT-IMG-SIZE:size"] = img.Size
	}
	if adc, ok := md["auto_disk_config"]; ok {
		if b, err := strconv.ParseBool(adc); err == nil && b {
			v["OS-DCF:diskConfig"] = "AUTO"
		} else {
			v["OS-DCF:diskConfig"] = "MANUAL"
		}
	}
	if sid, ok := md["instance_uuid"]; ok {
		v["server"] = map[string]any{"id": sid, "links": links(r, "servers", sid)}
	}
	return v
}

// The typed image proxy view writes what encoding/json wrote for the
// map-based one, for odd images, with and without a project in the URL.
func TestImageViewMatchesMapView(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("x", -7200))
	imgs := []*Image{
		{ID: "i-1", Name: "plain", Status: "active", MinDisk: 1, MinRAM: 64, Created: t0, Updated: t0, Size: 1 << 40, SizeKnown: true,
			Properties: map[string]string{"a": "1", "<b>": "&"}},
		{ID: "i-<2>&", Name: "queued \u2028 \xff", Status: "queued"},
		{ID: "i-3", Status: "saving", Created: t0, Properties: map[string]string{"auto_disk_config": "true", "instance_uuid": "s-<1>"}},
		{ID: "i-4", Status: "killed", Properties: map[string]string{"auto_disk_config": "False"}},
		{ID: "i-5", Status: "deactivated", Properties: map[string]string{"auto_disk_config": "maybe", "instance_uuid": ""}},
		{ID: "i-6", Status: "deleted", Size: 0, SizeKnown: true, Properties: map[string]string{}},
	}
	for _, prefix := range []string{"", "p1"} {
		r := httptest.NewRequest("GET", "http://kumo.test:8774/compute/v2.1/images/detail?limit=6&name=a%26b", nil)
		if prefix != "" {
			r = r.WithContext(context.WithValue(r.Context(), prefixKey{}, prefix))
		}
		for _, full := range []bool{false, true} {
			views := []any{}
			for _, img := range imgs {
				views = append(views, mapImageView(r, img, full))
			}
			want, _ := json.Marshal(map[string]any{"images": views, "images_links": nextLink(r, "i-6")})
			got := (&imageListBody{urls: newImageURLs(r), imgs: imgs, full: full, next: nextHref(r, "i-6")}).AppendJSON(nil)
			if !bytes.Equal(got, want) {
				t.Errorf("prefix %q full %v:\n got %s\nwant %s", prefix, full, got, want)
			}
		}
		want, _ := json.Marshal(map[string]any{"images": []any{}})
		if got := (&imageListBody{urls: newImageURLs(r)}).AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("empty list: got %s, want %s", got, want)
		}
		for _, img := range imgs {
			want, _ := json.Marshal(map[string]any{"image": mapImageView(r, img, true)})
			if got := (imageDoc{urls: newImageURLs(r), img: img}).AppendJSON(nil); !bytes.Equal(got, want) {
				t.Errorf("show %s:\n got %s\nwant %s", img.ID, got, want)
			}
		}
	}
}
