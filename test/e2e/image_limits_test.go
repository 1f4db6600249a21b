package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/registeredlimits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// TestImageKeystoneLimits runs kumo with image.use_keystone_limits on,
// registers the image service's limits and a project override through the
// identity API with gophercloud, and hits them through image create and
// upload as a project member: Glance's 413, nothing stored on refusal,
// and /v2/info/usage showing limits and usage.
func TestImageKeystoneLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kumo.yaml"), []byte("image:\n  use_keystone_limits: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := Start(t, Options{DataDir: dir})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	admin := identityClient(t, p)

	// A project with a member user.
	proj, up := k.newProjectMember(t, ctx, admin, "limited")
	glance := serviceClient(t, openstack.NewImageV2, up)

	// Registered limits for the image service, and a project override.
	sp, err := services.List(admin, services.ListOpts{ServiceType: "image"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := services.ExtractServices(sp)
	if len(svcs) != 1 {
		t.Fatalf("image services: %+v", svcs)
	}
	if _, err := registeredlimits.BatchCreate(ctx, admin, registeredlimits.BatchCreateOpts{
		{ServiceID: svcs[0].ID, ResourceName: "image_count_total", DefaultLimit: 2},
		{ServiceID: svcs[0].ID, ResourceName: "image_size_total", DefaultLimit: 1},
		{ServiceID: svcs[0].ID, ResourceName: "image_stage_total", DefaultLimit: 1},
		{ServiceID: svcs[0].ID, ResourceName: "image_count_uploading", DefaultLimit: -1},
	}).Extract(); err != nil {
		t.Fatalf("register limits: %v", err)
	}
	if _, err := limits.BatchCreate(ctx, admin, limits.BatchCreateOpts{
		{ServiceID: svcs[0].ID, ProjectID: proj.ID, ResourceName: "image_count_total", ResourceLimit: 3},
	}).Extract(); err != nil {
		t.Fatalf("project limit: %v", err)
	}

	wantOver := func(what string, err error, resource string) {
		t.Helper()
		var ue gophercloud.ErrUnexpectedResponseCode
		if !errors.As(err, &ue) || ue.Actual != 413 || !bytes.Contains(ue.Body, []byte("Resource "+resource+" is over limit")) {
			t.Fatalf("%s: got %v, want 413 for %s", what, err, resource)
		}
	}
	create := func(name string) (string, error) {
		im, err := images.Create(ctx, glance, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			return "", err
		}
		return im.ID, nil
	}

	// image_count_total: the project override (3) beats the default (2).
	var ids []string
	for i := range 3 {
		id, err := create("img" + string(rune('a'+i)))
		if err != nil {
			t.Fatalf("create image %d of 3: %v", i+1, err)
		}
		ids = append(ids, id)
	}
	_, err = create("one too many")
	wantOver("fourth image", err, "image_count_total")

	// image_size_total (1 MiB): exactly 1 MiB fits, one byte more does not.
	if err := imagedata.Upload(ctx, glance, ids[0], bytes.NewReader(make([]byte, 1<<20))).ExtractErr(); err != nil {
		t.Fatalf("upload 1 MiB: %v", err)
	}
	err = imagedata.Upload(ctx, glance, ids[1], bytes.NewReader([]byte{1})).ExtractErr()
	wantOver("upload past image_size_total", err, "image_size_total")
	if im, err := images.Get(ctx, glance, ids[1]).Extract(); err != nil || im.Status != images.ImageStatusQueued {
		t.Fatalf("refused image: %+v, %v", im, err)
	}
	// image_stage_total (1 MiB) is separate: staging fits, importing it does not.
	if err := imagedata.Stage(ctx, glance, ids[2], bytes.NewReader(make([]byte, 1000))).ExtractErr(); err != nil {
		t.Fatalf("stage: %v", err)
	}
	r := k.do(t, ctx, "POST", "/image/v2/images/"+ids[2]+"/import", up.Token(), `{"method": {"name": "glance-direct"}}`)
	if r.Status != 413 || !strings.Contains(string(r.Body), "image_size_total") {
		t.Fatalf("import past image_size_total: %d %s", r.Status, r.Body)
	}

	// The usage call as the member.
	r = k.do(t, ctx, "GET", "/image/v2/info/usage", up.Token(), "")
	var usage struct {
		Usage map[string]struct{ Limit, Usage int64 } `json:"usage"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &usage) != nil {
		t.Fatalf("usage: %d %s", r.Status, r.Body)
	}
	want := map[string]struct{ Limit, Usage int64 }{
		"image_size_total": {1, 1}, "image_stage_total": {1, 0}, "image_count_total": {3, 3}, "image_count_uploading": {-1, 1},
	}
	for k, v := range want {
		if usage.Usage[k] != v {
			t.Errorf("usage %s = %+v, want %+v (%s)", k, usage.Usage[k], v, r.Body)
		}
	}
	// Freeing room lets the refused operations through.
	if err := images.Delete(ctx, glance, ids[0]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := create("after delete"); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if err := imagedata.Upload(ctx, glance, ids[1], bytes.NewReader([]byte{1})).ExtractErr(); err != nil {
		t.Fatalf("upload after delete: %v", err)
	}

	// Discovery: stores detail is admin-only; the versions list ends at 2.12.
	if r := k.do(t, ctx, "GET", "/image/v2/info/stores/detail", up.Token(), ""); r.Status != 403 {
		t.Errorf("stores detail as member: %d %s", r.Status, r.Body)
	}
	if r := k.do(t, ctx, "GET", "/image/v2/info/stores/detail", p.Token(), ""); r.Status != 200 || !strings.Contains(string(r.Body), `"type":"file"`) {
		t.Errorf("stores detail as admin: %d %s", r.Status, r.Body)
	}
	r = k.do(t, ctx, "GET", "/image", "", "")
	var vs struct {
		Versions []struct{ ID, Status string } `json:"versions"`
	}
	if r.Status != 300 || json.Unmarshal(r.Body, &vs) != nil || len(vs.Versions) == 0 ||
		vs.Versions[0].ID != "v2.12" || vs.Versions[0].Status != "CURRENT" {
		t.Errorf("versions: %d %s", r.Status, r.Body)
	}
}
