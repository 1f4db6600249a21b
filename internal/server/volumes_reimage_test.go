package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/volume"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

// rawImages is a volume.Images of raw images held in memory.
type rawImages map[string][]byte

func (r rawImages) Get(_ context.Context, id string) (*volume.ImageInfo, error) {
	b, ok := r[id]
	if !ok {
		return nil, volume.ErrImageNotFound
	}
	return &volume.ImageInfo{ID: id, Name: id, Status: "active", DiskFormat: "raw", ContainerFormat: "bare", Size: int64(len(b))}, nil
}
func (r rawImages) Open(_ context.Context, id string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(r[id])), nil
}
func (rawImages) Create(context.Context, string, string, string, string, bool) (string, error) {
	return "", errors.New("no uploads")
}
func (rawImages) Upload(context.Context, string, io.Reader, int64) error {
	return errors.New("no uploads")
}

// TestConductorVolumesReimage drives the conductor's re-image of a boot
// volume against the real volume service: the attachment is swapped for
// a reserved one, the volume re-imaged and connected again; a refused
// re-image leaves the volume attached as it was.
func TestConductorVolumesReimage(t *testing.T) {
	d := dbtest.OpenSQLite(t, volume.Migrations())
	fb, err := backend.NewFile("file", t.TempDir(), "raw")
	if err != nil {
		t.Fatal(err)
	}
	enf, err := policy.New(volume.PolicyDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const imgA, imgB, server = "aaaaaaaa-0000-4000-8000-00000000000a", "aaaaaaaa-0000-4000-8000-00000000000b", "5e7a1c9b-0000-4000-8000-000000000001"
	images := rawImages{imgA: bytes.Repeat([]byte("A"), 4096), imgB: bytes.Repeat([]byte("B"), 4096)}
	svc, err := volume.New(service.Deps{DB: d, Policy: enf, Auth: authtest.NewCallers()},
		volume.Config{Backends: []backend.Backend{fb}, Images: images, TmpDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	cv := conductorVolumes{s: svc}
	ctx := context.Background()
	owner := conductor.Owner{ProjectID: "p1", UserID: "alice"}
	waitStatus := func(id string, not ...string) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			v, err := cv.GetVolume(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			busy := false
			for _, n := range not {
				busy = busy || v.Status == n
			}
			if !busy {
				return v.Status
			}
		}
		t.Fatalf("volume %s stays %v", id, not)
		return ""
	}
	vol, err := cv.CreateVolume(ctx, owner, conductor.VolumeRequest{Name: "root", Size: 1, ImageID: imgA})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitStatus(vol, "creating", "downloading"); st != "available" {
		t.Fatalf("new volume %s", st)
	}
	oldAtt, _, err := cv.Attach(ctx, owner, vol, server, "host1", conductor.RootDeviceName, true, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Refused (an unknown image): attached as before.
	if _, _, err := cv.ReimageRootVolume(ctx, owner, server, "aaaaaaaa-0000-4000-8000-0000000000ff"); apiutil.AsError(err).Status != 400 {
		t.Fatalf("unknown image: %v", err)
	}
	if st := waitStatus(vol); st != "in-use" {
		t.Errorf("after a refused re-image: %s", st)
	}

	gotVol, att, err := cv.ReimageRootVolume(ctx, owner, server, imgB)
	if err != nil || gotVol != vol || att == "" || att == oldAtt {
		t.Fatalf("re-image: %s %s %v", gotVol, att, err)
	}
	if st := waitStatus(vol, "downloading"); st != "reserved" {
		t.Fatalf("after re-image: %s", st)
	}
	if err := cv.ConnectAttachment(ctx, owner, att, "host1"); err != nil {
		t.Fatal(err)
	}
	if err := cv.ConnectAttachment(ctx, owner, att, "host1"); err != nil {
		t.Errorf("connecting twice: %v", err)
	}
	vols, meta, err := cv.ServerVolumes(ctx, server)
	if err != nil || len(vols) != 1 || !vols[0].Root || meta["image_id"] != imgB {
		t.Fatalf("server volumes %+v %v %v", vols, meta, err)
	}
	if st := waitStatus(vol); st != "in-use" {
		t.Errorf("after reconnect: %s", st)
	}
	a, err := svc.GetAttachment(ownerCtx(ctx, owner), att)
	if err != nil || !a.DeleteOnTermination {
		t.Errorf("new attachment %+v %v: delete_on_termination lost", a, err)
	}
}
