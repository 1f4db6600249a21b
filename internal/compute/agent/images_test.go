package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/image/cache"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

// testImages is an image cache over a map of metadata, counting refs.
type testImages struct {
	mu     sync.Mutex
	meta   map[string]cache.Meta
	refs   map[string]int
	upload map[string]string
}

func (m *testImages) Acquire(_ context.Context, id string) (string, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.meta[id]; !ok {
		return "", nil, errors.New("no image " + id)
	}
	m.refs[id]++
	var once sync.Once
	return "/cache/" + id, func() {
		once.Do(func() { m.mu.Lock(); m.refs[id]--; m.mu.Unlock() })
	}, nil
}

func (m *testImages) Meta(_ context.Context, id string) (cache.Meta, error) {
	mt, ok := m.meta[id]
	if !ok {
		return cache.Meta{}, errors.New("no image " + id)
	}
	return mt, nil
}

func (m *testImages) Upload(_ context.Context, id string, r io.Reader) error {
	b, err := io.ReadAll(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.upload[id] = string(b)
	return err
}

func (m *testImages) held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.refs {
		n += r
	}
	return n
}

func TestImageResolution(t *testing.T) {
	imgs := &testImages{refs: map[string]int{}, upload: map[string]string{}, meta: map[string]cache.Meta{
		"disk":   {DiskFormat: "qcow2", Properties: map[string]string{"kernel_id": "k", "ramdisk_id": "r", "os_command_line": "console=ttyS0 quiet"}},
		"k":      {DiskFormat: "aki"},
		"r":      {DiskFormat: "ari"},
		"ami":    {DiskFormat: "ami"},
		"nokern": {DiskFormat: "qcow2", Properties: map[string]string{"kernel_id": "missing"}},
	}}
	a := &Agent{images: imgs, cfg: Config{Host: "h"}, driver: fake.New(fake.Config{})}
	ctx := t.Context()
	tests := []struct {
		id       string
		want     virt.Image
		err      string
		heldWhen int
	}{
		{id: "disk", want: virt.Image{ID: "disk", Path: "/cache/disk", DiskFormat: "qcow2", KernelPath: "/cache/k", RamdiskPath: "/cache/r", KernelArgs: "console=ttyS0 quiet"}, heldWhen: 3},
		{id: "ami", want: virt.Image{ID: "ami", Path: "/cache/ami", DiskFormat: "raw"}, heldWhen: 1},
		{id: "k", err: "cannot boot on its own"},
		{id: "nokern", err: "fetch kernel missing"},
		{id: "", want: virt.Image{}},
	}
	for _, tc := range tests {
		img, release, err := a.image(ctx, tc.id)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.id, err, tc.err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", tc.id, err)
		} else {
			img.Properties = nil
			if !reflect.DeepEqual(img, tc.want) {
				t.Errorf("%s: got %+v, want %+v", tc.id, img, tc.want)
			}
			if n := imgs.held(); n != tc.heldWhen {
				t.Errorf("%s: %d references held, want %d", tc.id, n, tc.heldWhen)
			}
			release()
		}
		if n := imgs.held(); n != 0 {
			t.Errorf("%s: %d references left after release/failure", tc.id, n)
		}
	}
}

func TestNICsAndNetworkData(t *testing.T) {
	vifs := []rpc.VIF{{PortID: "1234abcd-5678-4e00-8000-000000000001", NetworkID: "net1", MAC: "fa:16:3e:00:00:01", MTU: 1450},
		{PortID: "short", MAC: "fa:16:3e:00:00:02", Bridge: "brq1"}}
	n := nics(vifs)
	if n[0].Tap != "tap1234abcd-56" || n[1].Tap != "tapshort" || n[0].MTU != 1450 || n[1].Bridge != "brq1" {
		t.Fatalf("nics %+v", n)
	}
	var m map[string][]map[string]any
	if err := json.Unmarshal(NetworkData(vifs), &m); err != nil {
		t.Fatal(err)
	}
	l0, n0 := m["links"][0], m["networks"][0]
	if l0["id"] != "tap1234abcd-56" || l0["vif_id"] != vifs[0].PortID || l0["ethernet_mac_address"] != vifs[0].MAC || l0["mtu"] != 1450.0 || l0["type"] != "tap" {
		t.Errorf("link %v", l0)
	}
	if m["links"][1]["type"] != "bridge" || m["links"][1]["mtu"] != nil {
		t.Errorf("second link %v", m["links"][1])
	}
	if n0["type"] != "ipv4_dhcp" || n0["link"] != "tap1234abcd-56" || n0["network_id"] != "net1" {
		t.Errorf("network %v", n0)
	}
	if string(NetworkData(nil)) != `{"links":[],"networks":[],"services":[]}` {
		t.Errorf("empty network data %s", NetworkData(nil))
	}
}

func TestSnapshotUploadsDriverOutput(t *testing.T) {
	imgs := &testImages{refs: map[string]int{}, upload: map[string]string{}, meta: map[string]cache.Meta{}}
	d := fake.New(fake.Config{})
	a := &Agent{images: imgs, cfg: Config{Host: "h"}, driver: d}
	ctx := t.Context()
	const id = "00000000-0000-4000-8000-000000000009"
	if err := d.Spawn(ctx, &virt.Instance{UUID: id, VCPUs: 1, MemoryMB: 64}); err != nil {
		t.Fatal(err)
	}
	if err := a.snapshot(ctx, id, &rpc.Snapshot{ImageID: "snap", DiskFormat: "raw"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(imgs.upload["snap"], "KUMO-FAKE-SNAPSHOT "+id) {
		t.Errorf("uploaded %q", imgs.upload["snap"][:40])
	}
	if err := a.snapshot(ctx, id, nil); err == nil {
		t.Error("snapshot without a target accepted")
	}
	if err := a.snapshot(ctx, id, &rpc.Snapshot{ImageID: "snap2", DiskFormat: "vmdk"}); !errors.Is(err, virt.ErrUnsupported) {
		t.Errorf("vmdk snapshot: %v", err)
	}
}
