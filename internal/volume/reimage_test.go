package volume_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
)

// TestReimage: os-reimage replaces a volume's data with an image's in
// place (same id, size, new volume_image_metadata), for available and
// error volumes and for reserved ones only with reimage_reserved; the
// image must be active and fit; a failed refill leaves the volume in error.
func TestReimage(t *testing.T) {
	e := newEnv(t, nil, nil)
	const imgA, imgB, big, queued = "aaaaaaaa-bbbb-4ccc-8ddd-000000000001", "aaaaaaaa-bbbb-4ccc-8ddd-000000000002",
		"aaaaaaaa-bbbb-4ccc-8ddd-000000000003", "aaaaaaaa-bbbb-4ccc-8ddd-000000000004"
	dataA, dataB := bytes.Repeat([]byte("AAAA"), 1<<10), bytes.Repeat([]byte("BBBB"), 1<<10)
	e.images.add(imgA, "raw", dataA)
	e.images.add(imgB, "raw", dataB)
	e.images.add(big, "raw", nil)
	e.images.images[big].info.Size = 2<<30 + 1
	e.images.add(queued, "raw", dataB)
	e.images.images[queued].info.Status = "queued"
	alice := auth.With(t.Context(), &auth.Context{UserID: "alice", ProjectID: "p1", Roles: []auth.Role{{Name: "member"}, {Name: "reader"}}})
	bob := auth.With(t.Context(), &auth.Context{UserID: "bob", ProjectID: "p2", Roles: []auth.Role{{Name: "member"}, {Name: "reader"}}})

	v := e.createVolume("alice", `{"volume": {"size": 1, "imageRef": "`+imgA+`"}}`)
	id := v["id"].(string)
	file := filepath.Join(e.dir, "volume-"+id+".raw")

	for _, tc := range []struct {
		name, image string
		reserved    bool
		status      int
		msg         string
	}{
		{"unknown image", "aaaaaaaa-bbbb-4ccc-8ddd-00000000000f", false, 400, "Invalid image identifier or unable to access requested image."},
		{"image not active", queued, false, 400, "Invalid input received: Image " + queued + " is not active."},
		{"image larger than the volume", big, false, 400, "Invalid input received: Size of specified image 3GB is larger than volume size 1GB."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.svc.Reimage(alice, id, tc.image, tc.reserved)
			if ae := apiutil.AsError(err); err == nil || ae.Status != tc.status || ae.Message != tc.msg {
				t.Errorf("err = %v, want %d %q", err, tc.status, tc.msg)
			}
		})
	}
	if err := e.svc.Reimage(bob, id, imgB, false); apiutil.AsError(err).Status != 404 {
		t.Errorf("another project's volume: %v", err)
	}

	// An available volume: downloading, then available with the new image.
	if err := e.svc.Reimage(alice, id, imgB, false); err != nil {
		t.Fatal(err)
	}
	got := e.wait("alice", "volumes", id, "downloading")
	if got["status"] != "available" || obj(t, got, "volume_image_metadata")["image_id"] != imgB || got["size"] != 1.0 {
		t.Errorf("after reimage: %v", got)
	}
	if b, err := readHead(file, int64(len(dataB))); err != nil || !bytes.Equal(b[:len(dataB)], dataB) {
		t.Errorf("volume does not hold the new image: %v", err)
	}

	// Reserved (an attachment without connector, as Compute's rebuild
	// leaves it): only with reimage_reserved, and reserved afterwards.
	e.do("alice", "POST", v3+"/attachments", "3.27", `{"attachment": {"volume_uuid": "`+id+`", "instance_uuid": "9a3e1b2c-1111-4222-8333-444455556666"}}`).Expect(t, 200, "")
	if err := e.svc.Reimage(alice, id, imgA, false); apiutil.AsError(err).Status != 400 {
		t.Errorf("reserved volume without reimage_reserved: %v", err)
	}
	if err := e.svc.Reimage(alice, id, imgA, true); err != nil {
		t.Fatal(err)
	}
	if got := e.wait("alice", "volumes", id, "downloading"); got["status"] != "reserved" || obj(t, got, "volume_image_metadata")["image_id"] != imgA {
		t.Errorf("after reimage of a reserved volume: %v", got)
	}
	if b, err := readHead(file, int64(len(dataA))); err != nil || !bytes.Equal(b[:len(dataA)], dataA) {
		t.Errorf("volume does not hold image A again: %v", err)
	}

	// A refill that fails (the image's data is gone): error.
	w := e.createVolume("alice", `{"volume": {"size": 1}}`)
	e.images.mu.Lock()
	e.images.images[imgB].data = nil
	e.images.images[imgB].info.DiskFormat = "qcow2" // not a qcow2 file: the backend cannot read it
	e.images.mu.Unlock()
	if err := e.svc.Reimage(alice, w["id"].(string), imgB, false); err != nil {
		t.Fatal(err)
	}
	if got := e.wait("alice", "volumes", w["id"].(string), "downloading"); got["status"] != "error" {
		t.Errorf("failed reimage: %v", got)
	}
	// An error volume can be re-imaged again.
	if err := e.svc.Reimage(alice, w["id"].(string), imgA, false); err != nil {
		t.Errorf("reimage of an error volume: %v", err)
	}
	if got := e.wait("alice", "volumes", w["id"].(string), "downloading"); got["status"] != "available" {
		t.Errorf("reimage of an error volume: %v", got)
	}
}
