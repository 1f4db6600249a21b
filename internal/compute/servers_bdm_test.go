package compute_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
)

// memVolumes is an in-memory block storage service with the three faces
// Compute uses: the API's (attachments, lookups), and the conductor's
// (create, wait, attach, release). Volumes of type "broken" end in error.
type memVolumes struct {
	dir string
	mu  sync.Mutex
	n   int
	vol map[string]*memVolume
	att map[string]*memAttachment
	// reimages counts ReimageRootVolume calls that started one.
	reimages int
}

type memVolume struct {
	id, status, typ string
	image           string // the image a re-image wrote
	size            int
	created         bool // by a build
	path            string
}

type memAttachment struct {
	id, volume, server, device string
	dot, attached              bool
}

func newMemVolumes(t *testing.T) *memVolumes {
	return &memVolumes{dir: t.TempDir(), vol: map[string]*memVolume{}, att: map[string]*memAttachment{}}
}

// add makes an available volume.
func (m *memVolumes) add(id string, size int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Join(m.dir, id)
	_ = os.WriteFile(p, nil, 0o600)
	m.vol[id] = &memVolume{id: id, status: "available", size: size, path: p}
}

func (m *memVolumes) get(id string) *memVolume {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v := m.vol[id]; v != nil {
		c := *v
		return &c
	}
	return nil
}

func (m *memVolumes) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.vol)
}

func (m *memVolumes) Reserve(_ context.Context, volumeID, serverID, host, device string, dot bool, tag *string) (api.VolumeAttachment, api.VolumeConnection, error) {
	att, conn, err := m.Attach(context.Background(), conductor.Owner{}, volumeID, serverID, host, device, dot, tag)
	if err != nil {
		return api.VolumeAttachment{}, api.VolumeConnection{}, err
	}
	return api.VolumeAttachment{AttachmentID: att, VolumeID: volumeID, ServerID: serverID, Device: device}, api.VolumeConnection{Path: conn.Path, Format: conn.Format}, nil
}
func (m *memVolumes) Complete(context.Context, string, string) error { return nil }
func (m *memVolumes) Abort(ctx context.Context, id string)           { _ = m.Detach(ctx, id) }
func (m *memVolumes) BeginDetach(context.Context, string) error      { return nil }
func (m *memVolumes) RollDetach(context.Context, string)             {}
func (m *memVolumes) Detach(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.att[id]
	if a == nil {
		return nil
	}
	delete(m.att, id)
	if v := m.vol[a.volume]; v != nil {
		v.status = "available"
	}
	return nil
}
func (m *memVolumes) List(_ context.Context, serverID string) ([]api.VolumeAttachment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []api.VolumeAttachment
	for _, a := range m.att {
		if a.server == serverID {
			out = append(out, api.VolumeAttachment{AttachmentID: a.id, VolumeID: a.volume, ServerID: a.server, Device: a.device,
				DeleteOnTermination: a.dot, Attached: true})
		}
	}
	return out, nil
}

// ListMany is the batch lookup server lists use.
func (m *memVolumes) ListMany(ctx context.Context, serverIDs []string) (map[string][]api.VolumeAttachment, error) {
	out := map[string][]api.VolumeAttachment{}
	for _, id := range serverIDs {
		as, _ := m.List(ctx, id)
		if len(as) > 0 {
			out[id] = as
		}
	}
	return out, nil
}

func (m *memVolumes) VolumeInfo(_ context.Context, id string) (api.VolumeInfo, error) {
	v := m.get(id)
	if v == nil {
		return api.VolumeInfo{}, api.ErrVolumeNotFound
	}
	return api.VolumeInfo{ID: id, Status: v.status, Size: v.size}, nil
}
func (m *memVolumes) SnapshotInfo(context.Context, string) (api.SnapshotInfo, error) {
	return api.SnapshotInfo{}, api.ErrSnapshotNotFound
}
func (m *memVolumes) VolumeTypeExists(_ context.Context, name string) (bool, error) {
	return name == "broken" || name == "fine", nil
}
func (m *memVolumes) SnapshotVolume(context.Context, string, string) (string, error) {
	return "", errors.New("no snapshots here")
}
func (m *memVolumes) DeleteSnapshot(context.Context, string) error { return nil }

func (m *memVolumes) CreateVolume(_ context.Context, _ conductor.Owner, req conductor.VolumeRequest) (string, error) {
	m.mu.Lock()
	m.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", m.n)
	m.mu.Unlock()
	m.add(id, req.Size)
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.vol[id]
	v.created, v.typ = true, req.VolumeType
	if req.VolumeType == "broken" {
		v.status = "error"
	}
	return id, nil
}
func (m *memVolumes) GetVolume(_ context.Context, id string) (conductor.VolumeInfo, error) {
	v := m.get(id)
	if v == nil {
		return conductor.VolumeInfo{}, errors.New("no such volume")
	}
	return conductor.VolumeInfo{ID: id, Status: v.status, Size: v.size}, nil
}
func (m *memVolumes) DeleteVolume(_ context.Context, _ conductor.Owner, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vol, id)
	return nil
}
func (m *memVolumes) Attach(_ context.Context, _ conductor.Owner, volumeID, serverID, _, device string, dot bool, _ *string) (string, rpc.Volume, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.vol[volumeID]
	if v == nil || v.status != "available" {
		return "", rpc.Volume{}, fmt.Errorf("volume %s is not available", volumeID)
	}
	v.status = "in-use"
	m.n++
	id := fmt.Sprintf("att-%d", m.n)
	m.att[id] = &memAttachment{id: id, volume: volumeID, server: serverID, device: device, dot: dot, attached: true}
	return id, rpc.Volume{ID: volumeID, Path: v.path, Format: "raw", Device: device}, nil
}
func (m *memVolumes) ServerVolumes(_ context.Context, serverID string) ([]rpc.Volume, map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []rpc.Volume
	for _, a := range m.att {
		if a.server == serverID {
			out = append(out, rpc.Volume{ID: a.volume, Path: m.vol[a.volume].path, Format: "raw", Device: a.device, Root: a.device == "/dev/vda"})
		}
	}
	return out, map[string]string{"kernel_id": ""}, nil
}
func (m *memVolumes) ReleaseServer(_ context.Context, serverID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, a := range m.att {
		if a.server != serverID {
			continue
		}
		delete(m.att, id)
		if a.dot {
			delete(m.vol, a.volume)
		} else if v := m.vol[a.volume]; v != nil {
			v.status = "available"
		}
	}
	return nil
}

// TestBootFromVolumeBuild drives the build's block device step on the
// fake driver: the boot volume reaches the driver as the root disk and
// the others as plugged volumes; a volume that ends in error and a spawn
// that fails both roll the mapping back (attachments removed, volumes
// the build created with delete_on_termination deleted, the user's kept);
// delete honours delete_on_termination.
func TestBootFromVolumeBuild(t *testing.T) {
	vs := newMemVolumes(t)
	e := newServerEnv(t, nil, 1, func(c *compute.Config) {
		c.Volumes = vs
		c.ConductorConfig.Volumes = vs
	})
	vs.add("aaaaaaaa-0000-4000-8000-000000000001", 1)
	const mine = "aaaaaaaa-0000-4000-8000-000000000001"
	body := func(bdm string) string {
		return `{"server": {"name": "bfv", "flavorRef": "42", "networks": "none", "block_device_mapping_v2": ` + bdm + `}}`
	}

	id := e.boot("alice", body(`[{"source_type": "image", "uuid": "`+imageID+`", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "delete_on_termination": true},
		{"source_type": "volume", "uuid": "`+mine+`", "destination_type": "volume", "boot_index": -1}]`))
	s := e.waitStatus(id, "ACTIVE")
	if s["image"] != "" {
		t.Errorf("image = %v", s["image"])
	}
	if got := fmt.Sprint(s["os-extended-volumes:volumes_attached"]); !strings.Contains(got, mine) || strings.Count(got, "id:") != 2 {
		t.Errorf("volumes_attached = %s", got)
	}
	for _, x := range list(t, e.do("alice", "GET", v21+"/servers/detail", "2.79", "").Expect(t, 200, "").Body, "servers") {
		if got := fmt.Sprint(x.(map[string]any)["os-extended-volumes:volumes_attached"]); x.(map[string]any)["id"] == id &&
			(!strings.Contains(got, mine) || strings.Count(got, "id:") != 2 || !strings.Contains(got, "delete_on_termination:true")) {
			t.Errorf("volumes_attached in the list = %s", got)
		}
	}
	spec, ok := e.driver(0).Spec(id)
	if !ok || spec.RootVolume == nil || spec.RootVolume.Device != "/dev/vda" || len(spec.Volumes) != 1 || spec.Volumes[0].ID != mine {
		t.Fatalf("driver spec = %+v", spec)
	}
	// Placement holds no root disk for it (Nova's is_bfv): the flavor's
	// root_gb lives on the volume.
	if _, allocs, err := e.pl.Allocations(t.Context(), id); err != nil {
		t.Fatal(err)
	} else {
		for _, res := range allocs {
			if res["DISK_GB"] != 0 || res["VCPU"] == 0 {
				t.Errorf("allocation of a volume-backed server: %v", allocs)
			}
		}
	}
	// Quotas count it like any server: one instance, the flavor's cores
	// and RAM (Nova has no disk quota; the root volume counts against the
	// volume service's own quota).
	fl := obj(t, e.do("alice", "GET", v21+"/flavors/42", "2.79", "").Expect(t, 200, "").Body, "flavor")
	abs := obj(t, obj(t, e.do("alice", "GET", v21+"/limits", "2.79", "").Expect(t, 200, "").Body, "limits"), "absolute")
	if abs["totalInstancesUsed"] != 1.0 || abs["totalCoresUsed"] != fl["vcpus"] || abs["totalRAMUsed"] != fl["ram"] {
		t.Errorf("usage of a volume-backed server: %v (flavor %v)", abs, fl)
	}
	root := spec.RootVolume.ID
	if v := vs.get(root); v == nil || !v.created || v.status != "in-use" {
		t.Errorf("root volume = %+v", v)
	}
	// The user's volume detaches like any other; the root one does not.
	e.do("alice", "DELETE", v21+"/servers/"+id+"/os-volume_attachments/"+root, "2.79", "").Expect(t, 400, "badRequest")

	// A resize keeps the volumes, even to a flavor with a smaller disk.
	e.action("alice", id, `{"resize": {"flavorRef": "1"}}`, 202)
	e.waitStatus(id, "VERIFY_RESIZE")
	if spec, _ := e.driver(0).Spec(id); spec.RootVolume == nil || spec.RootVolume.ID != root {
		t.Errorf("root volume after resize = %+v", spec.RootVolume)
	}
	e.action("alice", id, `{"confirmResize": null}`, 204)
	e.waitStatus(id, "ACTIVE")

	e.do("alice", "DELETE", v21+"/servers/"+id, "2.79", "").Expect(t, 204, "")
	e.waitGone(id)
	if vs.get(root) != nil {
		t.Error("root volume with delete_on_termination survived its server")
	}
	if v := vs.get(mine); v == nil || v.status != "available" {
		t.Errorf("user's volume after delete = %+v", v)
	}

	// A volume that ends in error: ERROR, nothing left.
	before := vs.count()
	id = e.boot("alice", body(`[{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "volume_type": "broken", "delete_on_termination": true},
		{"source_type": "volume", "uuid": "`+mine+`", "destination_type": "volume", "boot_index": 1}]`))
	s = e.waitStatus(id, "ERROR")
	if f := fmt.Sprint(s["fault"]); !strings.Contains(f, "Failure prepping block device") || !strings.Contains(f, "status is error") {
		t.Errorf("fault = %s", f)
	}
	if n := vs.count(); n != before {
		t.Errorf("failed mapping left %d volumes, want %d", n, before)
	}
	if v := vs.get(mine); v.status != "available" {
		t.Errorf("user's volume after a failed build = %+v", v)
	}

	// A spawn that fails after the volumes were attached.
	e.driver(0).FailNext("spawn", errors.New("no room"))
	id = e.boot("alice", body(`[{"source_type": "volume", "uuid": "`+mine+`", "destination_type": "volume", "boot_index": 0},
		{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}]`))
	e.waitStatus(id, "ERROR")
	if n := vs.count(); n != before {
		t.Errorf("failed spawn left %d volumes, want %d", n, before)
	}
	if v := vs.get(mine); v.status != "available" {
		t.Errorf("user's volume after a failed spawn = %+v", v)
	}
	if l, _ := vs.List(context.Background(), id); len(l) != 0 {
		t.Errorf("attachments of a failed build: %+v", l)
	}
}

// TestEphemeralBlockDevices: blank local mappings give the server
// ephemeral disks of their own (and a swap mapping its swap) on the
// driver, placement claims the flavor's amounts as Nova does, the
// volume lists stay empty, a resize keeps the disks, and requests beyond
// the flavor get Nova's 400s.
func TestEphemeralBlockDevices(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "eph", "ram": 64, "vcpus": 1, "disk": 1, "id": 77, "swap": 512, "OS-FLV-EXT-DATA:ephemeral": 3}}`).Expect(t, 200, "")
	e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "eph2", "ram": 128, "vcpus": 1, "disk": 1, "id": 78, "swap": 1024, "OS-FLV-EXT-DATA:ephemeral": 5}}`).Expect(t, 200, "")
	body := func(bdm string) string {
		return `{"server": {"name": "eph", "imageRef": "` + imageID + `", "flavorRef": "77", "networks": "none", "block_device_mapping_v2": ` + bdm + `}}`
	}
	const (
		eph  = `{"source_type": "blank", "destination_type": "local", "volume_size": %d}`
		swap = `{"source_type": "blank", "destination_type": "local", "guest_format": "swap", "volume_size": %d}`
	)
	for _, tc := range []struct{ name, bdm, msg string }{
		{"ephemerals beyond the flavor", "[" + fmt.Sprintf(eph, 2) + "," + fmt.Sprintf(eph, 2) + "]",
			"Ephemeral disks requested are larger than the instance type allows. If no size is given in one block device mapping, flavor ephemeral size will be used."},
		{"an ephemeral without size counts the flavor's", "[" + fmt.Sprintf(eph, 1) + `,{"source_type": "blank", "destination_type": "local"}]`,
			"Ephemeral disks requested are larger than the instance type allows."},
		{"swap beyond the flavor's", "[" + fmt.Sprintf(swap, 513) + "]", "Swap drive requested is larger than instance type allows."},
		{"two swaps", "[" + fmt.Sprintf(swap, 1) + "," + fmt.Sprintf(swap, 1) + "]", "Block Device Mapping is Invalid: More than one swap drive requested."},
		{"more local disks than allowed", "[" + fmt.Sprintf(eph, 1) + "," + fmt.Sprintf(eph, 1) + "," + fmt.Sprintf(eph, 1) + "," + fmt.Sprintf(swap, 1) + "]",
			"Block Device Mapping is Invalid: You specified more local devices than the limit allows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("alice", "POST", v21+"/servers", "2.79", body(tc.bdm)).Expect(t, 400, "badRequest")
			if msg := r.Body["badRequest"].(map[string]any)["message"]; msg != tc.msg && !strings.HasPrefix(fmt.Sprint(msg), tc.msg) {
				t.Errorf("message %q, want %q", msg, tc.msg)
			}
		})
	}
	if r := e.do("alice", "GET", v21+"/servers", "2.79", "").Expect(t, 200, ""); len(list(t, r.Body, "servers")) != 0 {
		t.Fatalf("a refused request left servers: %s", r.Raw)
	}

	id := e.boot("alice", body("["+fmt.Sprintf(eph, 1)+","+fmt.Sprintf(swap, 256)+
		`,{"source_type": "blank", "destination_type": "local", "volume_size": 2, "guest_format": "ext4"}]`))
	s := e.waitStatus(id, "ACTIVE")
	if got := fmt.Sprint(s["os-extended-volumes:volumes_attached"]); got != "[]" {
		t.Errorf("volumes_attached = %s", got)
	}
	if r := e.do("alice", "GET", v21+"/servers/"+id+"/os-volume_attachments", "2.79", "").Expect(t, 200, ""); len(list(t, r.Body, "volumeAttachments")) != 0 {
		t.Errorf("volume attachments: %s", r.Raw)
	}
	spec, _ := e.driver(0).Spec(id)
	if got := fmt.Sprint(spec.Ephemerals); got != "[{1 } {2 ext4}]" || spec.EphemeralGB != 3 || spec.SwapMB != 256 {
		t.Errorf("driver disks: ephemerals %s, ephemeral_gb %d, swap %d", got, spec.EphemeralGB, spec.SwapMB)
	}
	// Placement claims the flavor's local disk (1 + 3 + 1 for the swap),
	// whatever the mappings carve out of it.
	_, allocs, err := e.pl.Allocations(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range allocs {
		if res["DISK_GB"] != 5 {
			t.Errorf("allocation %v, want DISK_GB 5", res)
		}
	}
	// A resize keeps the mappings' disks as they are (the new flavor's
	// ephemeral and swap sizes do not apply to them).
	e.action("alice", id, `{"resize": {"flavorRef": "78"}}`, 202)
	e.waitStatus(id, "VERIFY_RESIZE")
	if spec, _ := e.driver(0).Spec(id); fmt.Sprint(spec.Ephemerals) != "[{1 } {2 ext4}]" || spec.SwapMB != 256 || spec.MemoryMB != 128 {
		t.Errorf("after resize: %+v", spec)
	}
	e.action("alice", id, `{"confirmResize": null}`, 204)
	e.waitStatus(id, "ACTIVE")

	// Without mappings the flavor's disks apply.
	id2 := e.boot("alice", `{"server": {"name": "plain", "imageRef": "`+imageID+`", "flavorRef": "77", "networks": "none"}}`)
	e.waitStatus(id2, "ACTIVE")
	if spec, _ := e.driver(0).Spec(id2); spec.Ephemerals != nil || spec.EphemeralGB != 3 || spec.SwapMB != 512 {
		t.Errorf("flavor disks: %+v", spec)
	}
}

// Images a volume-backed rebuild re-images with: the second is refused
// by the volume service at once, the third fails while re-imaging.
const (
	imageB        = "11111111-2222-4333-8444-00000000000b"
	imageRefused  = "11111111-2222-4333-8444-0000000000ef"
	imageBrokenRe = "11111111-2222-4333-8444-0000000000bd"
)

// moreImages adds the rebuild images to fakeImages.
type moreImages struct{ fakeImages }

func (m moreImages) GetImage(ctx context.Context, id string) (*api.Image, error) {
	switch id {
	case imageB, imageRefused, imageBrokenRe:
		return &api.Image{ID: id, Status: "active", Size: 1 << 20}, nil
	}
	return m.fakeImages.GetImage(ctx, id)
}

// ReimageRootVolume models the volume service's re-image: the boot
// attachment becomes an empty (reserved) one, the volume downloads, then
// is reserved again (or error, for imageBrokenRe).
func (m *memVolumes) ReimageRootVolume(_ context.Context, _ conductor.Owner, serverID, imageID string) (string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var root *memAttachment
	for _, a := range m.att {
		if a.server == serverID && a.device == conductor.RootDeviceName {
			root = a
		}
	}
	if root == nil {
		return "", "", errors.New("no boot volume")
	}
	if imageID == imageRefused {
		return "", "", apiutil.BadRequest("Invalid input received: Size of specified image 9GB is larger than volume size 1GB.")
	}
	v := m.vol[root.volume]
	delete(m.att, root.id)
	m.n++
	na := &memAttachment{id: fmt.Sprintf("att-%d", m.n), volume: root.volume, server: serverID, device: root.device, dot: root.dot}
	m.att[na.id] = na
	v.status, v.image = "downloading", imageID
	m.reimages++
	go func() {
		time.Sleep(20 * time.Millisecond)
		m.mu.Lock()
		defer m.mu.Unlock()
		if imageID == imageBrokenRe {
			v.status = "error"
		} else {
			v.status = "reserved"
		}
	}()
	return v.id, na.id, nil
}

func (m *memVolumes) reimageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reimages
}

func (m *memVolumes) ConnectAttachment(_ context.Context, _ conductor.Owner, id, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.att[id]
	if a == nil {
		return errors.New("no such attachment")
	}
	a.attached = true
	m.vol[a.volume].status = "in-use"
	return nil
}

// TestRebuildVolumeBacked: before 2.93 a volume-backed server rebuilds
// with its own image only (Nova's 400 otherwise); from 2.93 its boot
// volume is re-imaged with the new image through the volume service and
// the guest respawned on the same volume; a re-image the volume service
// refuses or fails leaves the server in ERROR with a fault, and a later
// rebuild recovers it.
func TestRebuildVolumeBacked(t *testing.T) {
	vs := newMemVolumes(t)
	e := newServerEnv(t, nil, 1, func(c *compute.Config) {
		c.Volumes = vs
		c.ConductorConfig.Volumes = vs
		c.Images = moreImages{}
	})
	id := e.boot("alice", `{"server": {"name": "bfv", "flavorRef": "42", "networks": "none", "block_device_mapping_v2": [
		{"source_type": "image", "uuid": "`+imageID+`", "destination_type": "volume", "volume_size": 1, "boot_index": 0, "delete_on_termination": true}]}}`)
	e.waitStatus(id, "ACTIVE")
	spec, _ := e.driver(0).Spec(id)
	root := spec.RootVolume.ID
	rebuild := func(version, image string, status int) resp {
		return e.do("alice", "POST", v21+"/servers/"+id+"/action", version, `{"rebuild": {"imageRef": "`+image+`"}}`).Expect(t, status, "")
	}
	for _, v := range []string{"2.1", "2.92"} {
		r := rebuild(v, imageB, 400)
		if msg := fmt.Sprint(r.Body["badRequest"].(map[string]any)["message"]); msg != "Image "+imageB+" is unacceptable: Unable to rebuild with a different image for a volume-backed server." {
			t.Errorf("%s: %s", v, msg)
		}
	}
	if vs.reimageCount() != 0 {
		t.Fatal("a refused rebuild re-imaged the volume")
	}

	r := rebuild("2.93", imageB, 202)
	if s := obj(t, r.Body, "server"); s["status"] != "REBUILD" || s["adminPass"] == "" {
		t.Errorf("rebuild answer %v", s)
	}
	s := e.waitStatus(id, "ACTIVE")
	if img := fmt.Sprint(s["image"]); !strings.Contains(img, imageB) {
		t.Errorf("image after rebuild: %s", img)
	}
	if v := vs.get(root); v.image != imageB || v.status != "in-use" {
		t.Errorf("boot volume after rebuild: %+v", v)
	}
	if spec, _ := e.driver(0).Spec(id); spec.RootVolume == nil || spec.RootVolume.ID != root {
		t.Errorf("guest not respawned on its volume: %+v", spec.RootVolume)
	}
	if got := fmt.Sprint(s["os-extended-volumes:volumes_attached"]); !strings.Contains(got, root) {
		t.Errorf("volumes_attached = %s", got)
	}

	// Refused by the volume service: ERROR, the volume attached as before.
	rebuild("2.93", imageRefused, 202)
	s = e.waitStatus(id, "ERROR")
	if f := fmt.Sprint(s["fault"]); !strings.Contains(f, "re-image the boot volume") || !strings.Contains(f, "larger than volume size") {
		t.Errorf("fault = %s", f)
	}
	if v := vs.get(root); v.image != imageB || v.status != "in-use" {
		t.Errorf("boot volume after a refused re-image: %+v", v)
	}
	// Failed while re-imaging: ERROR, the volume in error.
	rebuild("2.93", imageBrokenRe, 202)
	s = e.waitStatus(id, "ERROR")
	if f := fmt.Sprint(s["fault"]); !strings.Contains(f, "failed to re-image volume "+root) {
		t.Errorf("fault = %s", f)
	}
	if v := vs.get(root); v.status != "error" {
		t.Errorf("boot volume after a failed re-image: %+v", v)
	}
	// Rebuilding again (with the same image, which at 2.93 re-images
	// too) recovers the server.
	before := vs.reimageCount()
	rebuild("2.93", imageB, 202)
	e.waitStatus(id, "ACTIVE")
	if v := vs.get(root); v.status != "in-use" || v.image != imageB || vs.reimageCount() != before+1 {
		t.Errorf("boot volume after the retry: %+v (%d re-images)", v, vs.reimageCount()-before)
	}
}
