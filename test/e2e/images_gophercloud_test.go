package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
)

// TestImageMembersAndComputeProxy shares a qcow2 image with another
// project whose member accepts it (gophercloud), then reads the image
// through the compute API's /v2.1/images proxy as older clients do.
func TestImageMembersAndComputeProxy(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	eo := gophercloud.EndpointOpts{Region: "RegionOne"}
	img := serviceClient(t, openstack.NewImageV2, p)
	id := identityClient(t, p)

	// Another project with a member user.
	proj, op := k.newProjectMember(t, ctx, id, "img-other")
	oimg, err := openstack.NewImageV2(op, eo)
	if err != nil {
		t.Fatal(err)
	}

	// A qcow2 image, shared.
	im, err := images.Create(ctx, img, images.CreateOpts{Name: "shared-qcow", DiskFormat: "qcow2", ContainerFormat: "bare",
		Visibility: ptrTo(images.ImageVisibilityShared), MinRAM: 64, Properties: map[string]string{"os_distro": "kumo"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, img, im.ID, bytes.NewReader(qcow2Image(32<<20, 128<<10))).ExtractErr(); err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, err := images.Get(ctx, img, im.ID).Extract()
	if err != nil || got.Status != images.ImageStatusActive || got.VirtualSize != 32<<20 {
		t.Fatalf("image after upload: %+v %v", got, err)
	}
	if _, err := members.Create(ctx, img, im.ID, proj.ID).Extract(); err != nil {
		t.Fatalf("add member: %v", err)
	}
	// Pending: the member sees it only when asking for pending images.
	if n := countImages(t, oimg, images.ListOpts{}); n != 0 {
		t.Errorf("pending member lists %d images", n)
	}
	if n := countImages(t, oimg, images.ListOpts{MemberStatus: images.ImageMemberStatusPending}); n != 1 {
		t.Errorf("pending member lists %d pending images", n)
	}
	m, err := members.Update(ctx, oimg, im.ID, proj.ID, members.UpdateOpts{Status: "accepted"}).Extract()
	if err != nil || m.Status != "accepted" {
		t.Fatalf("accept: %+v %v", m, err)
	}
	if n := countImages(t, oimg, images.ListOpts{}); n != 1 {
		t.Errorf("accepted member lists %d images", n)
	}
	ml, err := members.List(img, im.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := members.ExtractMembers(ml); len(all) != 1 || all[0].Status != "accepted" {
		t.Errorf("members %+v", all)
	}
	rd, err := imagedata.Download(ctx, oimg, im.ID).Extract()
	if err != nil {
		t.Fatalf("member download: %v", err)
	}
	b, _ := io.ReadAll(rd)
	rd.Close()
	if len(b) != 128<<10 {
		t.Errorf("member downloaded %d bytes", len(b))
	}
	if err := images.Delete(ctx, oimg, im.ID).ExtractErr(); err == nil {
		t.Error("member deleted the owner's image")
	}

	// The compute API's image proxy, as the member.
	tok := op.Token()
	var show struct {
		Image map[string]any `json:"image"`
	}
	r := k.compute(t, "GET", "/images/"+im.ID, tok, "2.35", "")
	if r.Status != 200 || json.Unmarshal(r.Body, &show) != nil {
		t.Fatalf("proxy show: %d %s", r.Status, r.Body)
	}
	v := show.Image
	if v["status"] != "ACTIVE" || v["progress"] != float64(100) || v["minRam"] != float64(64) ||
		v["OS-EXT-IMG-SIZE:size"] != float64(128<<10) || v["metadata"].(map[string]any)["os_distro"] != "kumo" {
		t.Errorf("proxy view %v", v)
	}
	var list struct {
		Images []map[string]any `json:"images"`
	}
	r = k.compute(t, "GET", "/images/detail?minRam=64", tok, "2.1", "")
	if json.Unmarshal(r.Body, &list) != nil || len(list.Images) != 1 || list.Images[0]["id"] != im.ID {
		t.Errorf("proxy detail: %d %s", r.Status, r.Body)
	}
	r = k.compute(t, "GET", "/images?minRam=65", tok, "2.1", "")
	if json.Unmarshal(r.Body, &list) != nil || len(list.Images) != 0 {
		t.Errorf("proxy list minRam=65: %d %s", r.Status, r.Body)
	}
	if r := k.compute(t, "GET", "/images", tok, "2.36", ""); r.Status != 404 {
		t.Errorf("proxy at 2.36: %d", r.Status)
	}
	// Metadata through the proxy, as the owner; the member may not.
	if r := k.compute(t, "POST", "/images/"+im.ID+"/metadata", tok, "2.1", `{"metadata": {"x": "y"}}`); r.Status != 403 {
		t.Errorf("member metadata write: %d %s", r.Status, r.Body)
	}
	atok := p.Token()
	if r := k.compute(t, "PUT", "/images/"+im.ID+"/metadata/hw_disk_bus", atok, "2.1", `{"meta": {"hw_disk_bus": "virtio"}}`); r.Status != 200 {
		t.Errorf("owner metadata item: %d %s", r.Status, r.Body)
	}
	got, err = images.Get(ctx, img, im.ID).Extract()
	if err != nil || got.Properties["hw_disk_bus"] != "virtio" {
		t.Errorf("glance after proxy metadata: %v %v", got.Properties, err)
	}
	if r := k.compute(t, "PUT", "/images/"+im.ID+"/metadata/min_ram", atok, "2.1", `{"meta": {"min_ram": "1"}}`); r.Status != 403 {
		t.Errorf("standard attribute through the proxy: %d %s", r.Status, r.Body)
	}
	if r := k.compute(t, "DELETE", "/images/"+im.ID, atok, "2.1", ""); r.Status != 204 {
		t.Errorf("proxy delete: %d %s", r.Status, r.Body)
	}
	if _, err := images.Get(ctx, img, im.ID).Extract(); err == nil {
		t.Error("image still there after proxy delete")
	}
}

func ptrTo[T any](v T) *T { return &v }

func countImages(t *testing.T, c *gophercloud.ServiceClient, o images.ListOpts) int {
	t.Helper()
	pages, err := images.List(c, o).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// compute sends a request to the compute API at a microversion.
func (k *Kumo) compute(t *testing.T, method, path, token, version, body string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, k.URL+"/compute/v2.1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("OpenStack-API-Version", "compute "+version)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
