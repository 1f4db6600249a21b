package image

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func testImage(owner, name string, at time.Time) *Image {
	return &Image{ID: newUUID(), Name: ptr(name), Status: StatusQueued, Visibility: VisShared, Owner: owner,
		CreatedAt: at, UpdatedAt: at, Tags: []string{}, Properties: map[string]string{}}
}

func TestStore(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := NewSQLStore(d)
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

		img := testImage("p1", "one", t0)
		img.Tags = []string{"b", "a"}
		img.Properties = map[string]string{"os_distro": "debian"}
		img.DiskFormat = ptr("raw")
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateImage(ctx, img); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("duplicate: %v", err)
		}
		got, err := s.GetImage(ctx, img.ID)
		if err != nil {
			t.Fatal(err)
		}
		if str(got.Name) != "one" || got.ContainerFormat != nil || str(got.DiskFormat) != "raw" || !got.CreatedAt.Equal(t0) ||
			strings.Join(got.Tags, ",") != "a,b" || got.Properties["os_distro"] != "debian" || got.Size != nil {
			t.Fatalf("got %+v", got)
		}
		if _, err := s.GetImage(ctx, newUUID()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}

		// Update in a transaction; an error rolls back.
		_, err = s.UpdateImage(ctx, img.ID, func(i *Image, usage UsageFunc) error {
			i.Name = nil
			return errors.New("boom")
		})
		if err == nil {
			t.Fatal("want error")
		}
		up, err := s.UpdateImage(ctx, img.ID, func(i *Image, usage UsageFunc) error {
			used, err := usage("p1", "")
			if err != nil || used != 0 {
				return fmt.Errorf("usage %d %v", used, err)
			}
			i.Status, i.Size, i.Checksum = StatusActive, ptr(int64(100)), ptr("abc")
			i.Tags = []string{"c"}
			delete(i.Properties, "os_distro")
			i.Properties["k"] = "v"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetImage(ctx, img.ID)
		if got.Status != StatusActive || *got.Size != 100 || strings.Join(got.Tags, ",") != "c" || len(got.Properties) != 1 || up.Status != StatusActive {
			t.Fatalf("after update %+v", got)
		}
		if n, _ := s.UsedBytes(ctx, "p1", ""); n != 100 {
			t.Fatalf("used %d", n)
		}
		if n, _ := s.UsedBytes(ctx, "p1", img.ID); n != 0 {
			t.Fatalf("used excluding %d", n)
		}

		// Members.
		m := &Member{ImageID: img.ID, MemberID: "p2", Status: MemberPending, CreatedAt: t0, UpdatedAt: t0}
		if err := s.AddMember(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, m); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("dup member %v", err)
		}
		if err := s.AddMember(ctx, &Member{ImageID: newUUID(), MemberID: "p2", Status: MemberPending, CreatedAt: t0, UpdatedAt: t0}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("member of missing image %v", err)
		}
		m.Status = MemberAccepted
		if err := s.UpdateMember(ctx, m); err != nil {
			t.Fatal(err)
		}
		if gm, _ := s.GetMember(ctx, img.ID, "p2"); gm.Status != MemberAccepted {
			t.Fatalf("member %+v", gm)
		}
		if ms, _ := s.ListMembers(ctx, img.ID); len(ms) != 1 {
			t.Fatalf("members %v", ms)
		}
		if err := s.DeleteMember(ctx, img.ID, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete missing member %v", err)
		}

		// Listing: visibility scoping, filters and keyset pagination.
		names := []string{"e", "d", "c", "b", "a", "a"}
		for i, n := range names {
			im := testImage("p3", n, t0.Add(time.Duration(i)*time.Second))
			if i%2 == 0 {
				im.Visibility = VisPublic
			}
			if err := s.CreateImage(ctx, im); err != nil {
				t.Fatal(err)
			}
		}
		list := func(q ListQuery) []string {
			t.Helper()
			imgs, err := s.ListImages(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, i := range imgs {
				out = append(out, str(i.Name))
			}
			return out
		}
		if got := list(ListQuery{Project: "p2", Sort: []SortKey{{Key: "name"}}}); strings.Join(got, ",") != "a,c,e,one" {
			t.Fatalf("p2 sees %v", got)
		}
		if got := list(ListQuery{Project: "p4", Sort: []SortKey{{Key: "name"}}}); strings.Join(got, ",") != "a,c,e" {
			t.Fatalf("p4 sees %v", got)
		}
		if got := list(ListQuery{Admin: true, Project: "x"}); len(got) != 7 {
			t.Fatalf("admin sees %v", got)
		}
		// Page through all of p3's images two at a time, sorted by name
		// with duplicates, and check nothing is skipped or repeated.
		var seen []string
		q := ListQuery{Project: "p3", Sort: []SortKey{{Key: "name"}, {Key: "created_at", Desc: true}}, Limit: 2}
		for {
			imgs, err := s.ListImages(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range imgs {
				seen = append(seen, str(i.Name)+"@"+i.CreatedAt.Format("05"))
			}
			if len(imgs) < 2 {
				break
			}
			q.Marker = imgs[len(imgs)-1]
		}
		if strings.Join(seen, ",") != "a@05,a@04,b@03,c@02,d@01,e@00" {
			t.Fatalf("pages %v", seen)
		}
		lq, _, err := parseListQuery(url.Values{"name": {"in:a,b"}, "created_at": {"gte:2026-03-01T12:00:04Z"}}, 25, 1000)
		if err != nil {
			t.Fatal(err)
		}
		lq.Project = "p3"
		if got := list(lq); strings.Join(got, ",") != "a,a" {
			t.Fatalf("filtered %v", got)
		}

		// Delete with a failing check keeps the image.
		if _, err := s.DeleteImage(ctx, img.ID, func(*Image) error { return errors.New("protected") }); err == nil {
			t.Fatal("want error")
		}
		if _, err := s.DeleteImage(ctx, img.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetImage(ctx, img.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete %v", err)
		}
		if _, err := s.GetMember(ctx, img.ID, "p2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("member after delete %v", err)
		}
	})
}
