package qemu

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// TestBootFromVolume boots the real guest with a volume made from its
// image as the root disk (no disk.qcow2 of the driver's own) and a second
// volume plugged at spawn: the guest lists both disks with the volumes'
// serials, the root one as vda. The second volume can be detached like
// a hot-plugged one, and destroying the instance leaves both volume files.
func TestBootFromVolume(t *testing.T) {
	g := needGuest(t)
	dir := stateDir(t)
	d := newDriver(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	vols := t.TempDir()
	root := filepath.Join(vols, "root.raw")
	// A volume created from the image, as the file backend makes it.
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(g, "disk.qcow2"), root).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	data := filepath.Join(vols, "data.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", data, "32M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	const uuid = "4c2c5e8a-2222-4222-8333-444455556666"
	inst := guestInstance(g, uuid)
	inst.Image.Path, inst.Image.DiskFormat = "", "" // the kernel only: the disk is the volume
	inst.RootVolume = &virt.Volume{ID: "0b0c0d0e-1111-4222-8333-aaaabbbbcccc", Path: root, Format: "raw", Device: "/dev/vda"}
	inst.Volumes = []virt.Volume{{ID: "7d7e7f70-1111-4222-8333-aaaabbbbcccc", Path: data, Format: "qcow2", Device: "/dev/vdb"}}
	if err := d.Spawn(ctx, inst); err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(context.Background(), uuid)
	out, err := waitConsole(ctx, d, uuid, "kumo-guest: instance-id=")
	if err != nil {
		t.Fatalf("guest did not boot from its volume: %v\n%s", err, consoleTail(out))
	}
	// The root volume is the first disk; the other comes after the config
	// drive (the guest names disks in bus order).
	for _, want := range []string{"disk vda serial=" + inst.RootVolume.ID[:20], " serial=" + inst.Volumes[0].ID[:20]} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("console lacks %q:\n%s", want, consoleTail(out))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, uuid, "disk.qcow2")); err == nil {
		t.Error("a volume-backed instance got a root disk of its own")
	}
	if err := d.DetachVolume(ctx, uuid, inst.Volumes[0].ID); err != nil {
		t.Fatal(err)
	}
	if out, err := waitConsole(ctx, d, uuid, "kumo-guest: disk removed vd"); err != nil {
		t.Fatalf("guest never saw the spawn-time volume go: %v\n%s", err, consoleTail(out))
	}
	var buf bytes.Buffer
	if err := d.Snapshot(ctx, uuid, "qcow2", &buf); err == nil {
		t.Error("driver snapshot of a volume-backed instance succeeded; the volume service snapshots it")
	}
	if err := d.Destroy(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{root, data} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("destroy removed volume file %s: %v", p, err)
		}
	}
}
