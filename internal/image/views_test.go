package image

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/image_views.json from the current code")

// Fixed ids of the images TestImageViewsGolden renders.
const (
	gvFull      = "11111111-0000-4000-8000-000000000001" // p-alice private active, everything set
	gvEmpty     = "11111111-0000-4000-8000-000000000002" // p-alice shared queued, every nullable null
	gvAccepted  = "11111111-0000-4000-8000-000000000003" // p-bob shared deactivated, p-alice accepted
	gvPending   = "11111111-0000-4000-8000-000000000004" // p-bob shared, p-alice pending
	gvPublic    = "11111111-0000-4000-8000-000000000005" // p-bob public active
	gvCommunity = "11111111-0000-4000-8000-000000000006" // p-bob community saving
	gvHidden    = "11111111-0000-4000-8000-000000000007" // p-alice public, os_hidden
	gvCarol     = "11111111-0000-4000-8000-000000000008" // p-carol private
	gvOddProps  = "11111111-0000-4000-8000-000000000009" // p-alice: properties named like attributes
	gvCreated   = "11111111-0000-4000-8000-00000000000a" // created through the API by the test
)

// seedImageViews stores images covering every optional part of an image
// view, with fixed ids and times, straight through the store (some hold
// what the API would refuse, to pin the encoder's behaviour).
func seedImageViews(t testing.TB, st Store) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	n := 0
	img := func(id, owner, vis, status string) *Image {
		n++
		at := t0.Add(time.Duration(n) * time.Minute)
		return &Image{ID: id, Name: ptr(fmt.Sprintf("image %d", n)), Status: status, Visibility: vis, Owner: owner,
			CreatedAt: at, UpdatedAt: at.Add(90 * time.Second), Tags: []string{}, Properties: map[string]string{}}
	}
	full := img(gvFull, "p-alice", VisPrivate, StatusActive)
	full.Name = ptr(`web <"server"> & more ☃`)
	full.DiskFormat, full.ContainerFormat = ptr("qcow2"), ptr("bare")
	full.Size, full.VirtualSize = ptr(int64(1<<30+7)), ptr(int64(10<<30))
	full.Checksum, full.HashAlgo, full.HashValue = ptr("0123456789abcdef0123456789abcdef"), ptr("sha512"), ptr(strings.Repeat("ab", 64))
	full.MinDisk, full.MinRAM, full.Protected = 10, 512, true
	full.Tags = []string{"zeta", "alpha", "<tag> & \"q\"", "ünï"}
	full.Properties = map[string]string{
		"os_distro": "debian", "hw_disk_bus": "virtio", "a_first": "before checksum", "zz_last": "after visibility",
		"<html>&key": "v<&>", "ctl": "tab\tnl\ncr\r\x01del\x7f", "seps": "line\u2028para\u2029",
		"empty": "", "ﾃﾞ": "unicode key", "Upper": "capital sorts first", "tagz": "between tags and updated_at",
	}
	empty := img(gvEmpty, "p-alice", VisShared, StatusQueued)
	empty.Name = nil
	accepted := img(gvAccepted, "p-bob", VisShared, StatusDeactivated)
	accepted.DiskFormat, accepted.ContainerFormat, accepted.Size = ptr("raw"), ptr("bare"), ptr(int64(4096))
	accepted.Tags = []string{"shared"}
	pending := img(gvPending, "p-bob", VisShared, StatusActive)
	pending.Size = ptr(int64(0))
	public := img(gvPublic, "p-bob", VisPublic, StatusActive)
	public.DiskFormat, public.ContainerFormat, public.Size = ptr("iso"), ptr("bare"), ptr(int64(100))
	public.Properties = map[string]string{"os_distro": "ubuntu"}
	community := img(gvCommunity, "p-bob", VisCommunity, StatusSaving)
	hidden := img(gvHidden, "p-alice", VisPublic, StatusActive)
	hidden.Hidden = true
	carol := img(gvCarol, "p-carol", VisPrivate, StatusQueued)
	odd := img(gvOddProps, "p-alice", VisPrivate, StatusQueued)
	// "stores" shows while the image has no data; "owner" and "self" are
	// always hidden behind the attributes of the same name.
	odd.Properties = map[string]string{"stores": "property", "owner": "property", "self": "property", "tags": "property"}
	for _, im := range []*Image{full, empty, accepted, pending, public, community, hidden, carol, odd} {
		if err := st.CreateImage(ctx, im); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*Member{
		{ImageID: gvAccepted, MemberID: "p-alice", Status: MemberAccepted},
		{ImageID: gvPending, MemberID: "p-alice", Status: MemberPending},
		{ImageID: gvPending, MemberID: "p-carol", Status: MemberRejected},
	} {
		m.CreatedAt, m.UpdatedAt = t0, t0
		if err := st.AddMember(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// imageViewRequests are the requests whose bodies the golden file holds:
// lists with every filter, sort syntax and pagination, shows, and the
// create and update answers.
func imageViewRequests() [][3]string {
	var reqs [][3]string
	get := func(who, path string) { reqs = append(reqs, [3]string{who, "GET", path}) }
	for _, who := range []string{"alice", "bob", "carol", "admin"} {
		get(who, "/v2/images")
		get(who, "/v2/images?visibility=all&member_status=all")
	}
	for _, q := range []string{
		"?limit=2", "?limit=2&marker=" + gvEmpty, "?limit=3&sort=name:asc&marker=" + gvEmpty,
		"?visibility=shared", "?visibility=shared&member_status=pending", "?visibility=shared&member_status=all",
		"?visibility=community", "?visibility=public", "?visibility=private", "?os_hidden=true",
		"?sort=name:asc,size:desc", "?sort=status,created_at:asc", "?sort_key=size&sort_dir=asc",
		"?sort_key=disk_format&sort_key=id&sort_dir=desc&sort_dir=asc", "?tag=alpha", "?tag=shared&member_status=all",
		"?os_distro=debian", "?status=in:active,deactivated", "?size_min=1&size_max=5000", "?disk_format=qcow2",
		"?container_format=bare&sort=name:asc", "?name=in:%22image%202%22,image%205", "?id=" + gvFull,
		"?owner=p-bob", "?created_at=gte:2026-01-02T03:07:00Z", "?updated_at=lt:2026-01-02T03:08:00Z",
		"?protected=true", "?checksum=0123456789abcdef0123456789abcdef", "?limit=0", "?unknown=x",
	} {
		get("alice", "/v2/images"+q)
	}
	get("admin", "/v2/images?visibility=all&limit=4&sort=updated_at:asc")
	get("admin", "/v2/images?visibility=all&limit=4&sort=name:desc")
	for _, id := range []string{gvFull, gvEmpty, gvAccepted, gvPending, gvPublic, gvCommunity, gvHidden, gvOddProps} {
		get("alice", "/v2/images/"+id)
	}
	get("admin", "/v2/images/"+gvCarol)
	reqs = append(reqs,
		[3]string{"alice", "POST", `{"id": "` + gvCreated + `", "name": "new <one>", "disk_format": "raw", "container_format": "bare", "tags": ["b", "a"], "min_ram": 64, "x_prop": "y & z"}`},
		[3]string{"alice", "PATCH", `[{"op": "add", "path": "/os_distro", "value": "fedora"}, {"op": "replace", "path": "/name", "value": null}, {"op": "remove", "path": "/x_prop"}]`},
	)
	return reqs
}

// TestImageViewsGolden renders the images of seedImageViews through every
// route that shows an image, for the image owner, a member, a stranger
// and an admin, and compares the bodies byte for byte with
// testdata/image_views.json (stored indented; compacting an entry gives
// the body back exactly). The golden file was written by the map-based
// views encoded with encoding/json, before the typed views replaced
// them. `go test -run TestImageViewsGolden -update` rewrites it (review
// the diff).
func TestImageViewsGolden(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		a := newTestAPIOn(t, d, Config{})
		a.svc.now = func() time.Time { return time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC) }
		seedImageViews(t, a.svc.store)
		got := map[string]json.RawMessage{}
		var keys []string
		for _, q := range imageViewRequests() {
			who, method, arg := q[0], q[1], q[2]
			var r resp
			key := who + " " + method + " " + arg
			switch method {
			case "GET":
				r = a.do(who, "GET", "/image"+arg, nil)
			case "POST":
				r = a.do(who, "POST", "/image/v2/images", arg)
				key = who + " POST /v2/images"
			case "PATCH":
				r = a.patch(who, gvCreated, arg)
				key = who + " PATCH /v2/images/" + gvCreated
			}
			if r.status != 200 && r.status != 201 {
				t.Fatalf("%s: status %d: %s", key, r.status, r.body)
			}
			if !json.Valid(r.body) {
				t.Fatalf("%s: invalid JSON %s", key, r.body)
			}
			got[key] = r.body
			keys = append(keys, key)
		}
		path := filepath.Join("testdata", "image_views.json")
		if *updateGolden && d.Dialect() == db.SQLite {
			b, err := json.MarshalIndent(got, "", " ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			var w bytes.Buffer
			if err := json.Compact(&w, want[k]); err != nil {
				t.Fatalf("%s: not in the golden file (run with -update and review the diff)", k)
			}
			if !bytes.Equal(got[k], w.Bytes()) {
				t.Errorf("%s:\n got %s\nwant %s", k, got[k], w.Bytes())
			}
		}
		for k := range want {
			if !slices.Contains(keys, k) {
				t.Errorf("%s: in the golden file, not requested", k)
			}
		}
	})
}

// mapImageView is the map-based image view the typed one replaced, kept
// as the reference the appending encoder must match byte for byte.
func mapImageView(img *Image) map[string]any {
	v := make(map[string]any, 24+len(img.Properties))
	for k, p := range img.Properties {
		v[k] = p
	}
	nz := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	ni := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	v["id"] = img.ID
	v["name"] = nz(img.Name)
	v["status"] = img.Status
	v["visibility"] = img.Visibility
	v["owner"] = img.Owner
	v["disk_format"] = nz(img.DiskFormat)
	v["container_format"] = nz(img.ContainerFormat)
	v["size"] = ni(img.Size)
	v["virtual_size"] = ni(img.VirtualSize)
	v["checksum"] = nz(img.Checksum)
	v["os_hash_algo"] = nz(img.HashAlgo)
	v["os_hash_value"] = nz(img.HashValue)
	v["min_disk"] = img.MinDisk
	v["min_ram"] = img.MinRAM
	v["protected"] = img.Protected
	v["os_hidden"] = img.Hidden
	v["tags"] = tags
	v["created_at"] = img.CreatedAt.UTC().Format(timeLayout)
	v["updated_at"] = img.UpdatedAt.UTC().Format(timeLayout)
	v["self"] = "/v2/images/" + img.ID
	v["file"] = "/v2/images/" + img.ID + "/file"
	v["schema"] = "/v2/schemas/image"
	if img.Status == StatusActive || img.Status == StatusDeactivated {
		v["stores"] = storeID
	}
	return v
}

// TestAppendImageMatchesMapView encodes images the API cannot produce
// (invalid UTF-8, properties named like attributes, nil tags) and random
// ones, with the typed view and with encoding/json on the map-based view.
func TestAppendImageMatchesMapView(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 999999999, time.FixedZone("x", 3600))
	imgs := []*Image{
		{ID: "x", Status: StatusActive, CreatedAt: t0, UpdatedAt: t0},
		{ID: "<id>&", Status: StatusDeactivated, Name: ptr("bad \xff utf-8"), Tags: []string{"\xc3", "a\u2028"},
			Properties: map[string]string{"id": "p", "stores": "p", "visibility": "p", "zzz": "\x00", "": "empty key", "\xff": "k"}},
		{ID: "y", Status: StatusQueued, Properties: map[string]string{"stores": "shown", "checksum": "hidden", "a": "1", "checksun": "2", "virtual_size~": "3"},
			Size: ptr(int64(-1)), VirtualSize: ptr(int64(1 << 62)), MinDisk: -5, Protected: true, Hidden: true},
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	words := []string{"", "a", "os_distro", "checksum", "stores", "tags", "zz", "<b>", "é", "\u2029", "min_disk", "min_diska", "schema", "s"}
	word := func() string { return words[rnd.IntN(len(words))] + words[rnd.IntN(len(words))] }
	for i := 0; i < 300; i++ {
		img := &Image{ID: word(), Status: allStatuses[rnd.IntN(len(allStatuses))], Visibility: word(), Owner: word(),
			CreatedAt: t0.Add(time.Duration(rnd.Int64N(1e15))), UpdatedAt: t0, Properties: map[string]string{}}
		for j := rnd.IntN(6); j > 0; j-- {
			img.Properties[word()] = word()
			img.Tags = append(img.Tags, word())
		}
		if rnd.IntN(2) == 0 {
			img.Name, img.Checksum, img.Size = ptr(word()), ptr(word()), ptr(rnd.Int64())
		}
		imgs = append(imgs, img)
	}
	for _, img := range imgs {
		want, err := json.Marshal(mapImageView(img))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := appendImage([]byte(nil), img, nil)
		if !bytes.Equal(got, want) {
			t.Errorf("appendImage:\n got %s\nwant %s", got, want)
		}
	}
	l := &imageList{imgs: imgs[:3], first: "/v2/images?a=1&b=<2>", next: "/v2/images?marker=x"}
	want, _ := json.Marshal(map[string]any{"first": l.first, "next": l.next, "schema": "/v2/schemas/images",
		"images": []any{mapImageView(imgs[0]), mapImageView(imgs[1]), mapImageView(imgs[2])}})
	if got := l.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Errorf("imageList:\n got %s\nwant %s", got, want)
	}
}
