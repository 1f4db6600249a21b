package qemu

import (
	"context"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// TestDiskMigration moves a stopped instance's disks between two drivers
// (two hosts' state directories, each with its own copy of the image):
// what the guest wrote arrives, the overlay is rebased onto the
// destination's image, and a corrupted copy is refused without leftovers.
// No guest runs: both sides stay shut down.
func TestDiskMigration(t *testing.T) {
	for _, bin := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed", bin)
			}
			t.Skipf("%s not installed (apt-get install qemu-utils)", bin)
		}
	}
	ctx := context.Background()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
		return string(out)
	}
	tmp := t.TempDir()
	// The image, cached on each host (same content, different paths).
	baseA, baseB := filepath.Join(tmp, "cacheA.qcow2"), filepath.Join(tmp, "cacheB.qcow2")
	run("qemu-img", "create", "-q", "-f", "qcow2", baseA, "64M")
	run("qemu-io", "-c", "write -P 0x11 1M 64k", baseA)
	b, err := os.ReadFile(baseA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(baseB, b, 0o600); err != nil {
		t.Fatal(err)
	}
	newDriver := func(dir string) *Driver {
		d, err := New(Config{StateDir: filepath.Join(tmp, dir), Accel: "tcg"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	src, dst := newDriver("a"), newDriver("b")
	const uuid = "6f1c3a52-0d1e-4a8e-9a43-1d0d8f1e2b77"
	inst := func(base string) *virt.Instance {
		return &virt.Instance{UUID: uuid, VCPUs: 1, MemoryMB: 128, RootGB: 1, EphemeralGB: 1,
			Image: virt.Image{ID: "img-1", Path: base, DiskFormat: "qcow2"}}
	}
	// The source instance: created stopped from a root overlay the "guest"
	// wrote a marker to.
	overlay := filepath.Join(tmp, "written.qcow2")
	run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", baseA, overlay, "1G")
	run("qemu-io", "-c", "write -P 0x42 4M 64k", overlay)
	sum, err := fileSHA256(ctx, overlay)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(overlay)
	fromFile := func(p string) func(context.Context, virt.DiskFile, io.WriterAt) error {
		return func(_ context.Context, _ virt.DiskFile, w io.WriterAt) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = w.WriteAt(b, 0)
			return err
		}
	}
	err = src.SpawnMigrated(ctx, inst(baseA), []virt.DiskFile{{Name: "disk.qcow2", Size: fi.Size(), SHA256: sum, BackingImage: "img-1"}},
		fromFile(overlay), true)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := src.Info(ctx, uuid); err != nil || info.State != virt.Shutdown {
		t.Fatalf("source %+v %v", info, err)
	}

	files, err := src.ExportDisks(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Name != "disk.qcow2" || files[0].BackingImage != "img-1" || files[1].Name != "disk.eph0.qcow2" || files[1].BackingImage != "" {
		t.Fatalf("exported %+v", files)
	}
	if _, err := src.OpenDisk(ctx, uuid, "instance.json"); err == nil {
		t.Fatal("OpenDisk served a file that is not a disk")
	}
	copyFrom := func(corrupt bool) func(context.Context, virt.DiskFile, io.WriterAt) error {
		return func(ctx context.Context, f virt.DiskFile, w io.WriterAt) error {
			r, err := src.OpenDisk(ctx, uuid, f.Name)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(&offsetWriter{w: w}, io.NewSectionReader(r, 0, f.Size))
			if corrupt {
				_, _ = w.WriteAt([]byte("x"), f.Size/2)
			}
			return err
		}
	}
	// A copy that does not match what the source reported is refused.
	err = dst.SpawnMigrated(ctx, inst(baseB), files, copyFrom(true), true)
	if err == nil || !strings.Contains(err.Error(), "does not match the source") {
		t.Fatalf("corrupt copy: %v", err)
	}
	if _, err := os.Stat(dst.dir(uuid)); !os.IsNotExist(err) {
		t.Fatalf("a refused copy left %s: %v", dst.dir(uuid), err)
	}
	// Bigger flavor at the destination: the disks grow.
	big := inst(baseB)
	big.RootGB, big.EphemeralGB = 2, 2
	if err := dst.SpawnMigrated(ctx, big, files, copyFrom(false), true); err != nil {
		t.Fatal(err)
	}
	root := dst.path(uuid, "disk.qcow2")
	info := run("qemu-img", "info", root)
	if !strings.Contains(info, "backing file: "+baseB) {
		t.Errorf("destination overlay not rebased onto its own image:\n%s", info)
	}
	run("qemu-io", "-r", "-c", "read -P 0x42 4M 64k", "-c", "read -P 0x11 1M 64k", root)
	for disk, want := range map[string]int64{"disk.qcow2": 2 << 30, "disk.eph0.qcow2": 2 << 30} {
		if got, err := dst.virtualSize(ctx, dst.path(uuid, disk)); err != nil || got != want {
			t.Errorf("%s: %d bytes (%v), want %d", disk, got, err, want)
		}
	}
	for _, d := range []*Driver{src, dst} {
		if err := d.Destroy(ctx, uuid); err != nil {
			t.Fatal(err)
		}
	}
}

// offsetWriter turns an io.WriterAt into an io.Writer from offset 0.
type offsetWriter struct {
	w   io.WriterAt
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// TestEphemeralDisksMoveAndResize: an instance with two ephemeral disks
// of block device mappings (no guest started: qemu-img only) has a file
// per disk of its own size; a cold migration exports and copies both
// with their contents, and a resize keeps them as they are.
func TestEphemeralDisksMoveAndResize(t *testing.T) {
	for _, bin := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed", bin)
			}
			t.Skipf("%s not installed (apt-get install qemu-utils)", bin)
		}
	}
	ctx := context.Background()
	tmp := t.TempDir()
	newDriver := func(dir string) *Driver {
		d, err := New(Config{StateDir: filepath.Join(tmp, dir), Accel: "tcg"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	src, dst := newDriver("a"), newDriver("b")
	const uuid = "6f1c3a52-0d1e-4a8e-9a43-1d0d8f1e2b78"
	inst := func() *virt.Instance {
		return &virt.Instance{UUID: uuid, VCPUs: 1, MemoryMB: 128, RootGB: 1, EphemeralGB: 3, SwapMB: 32,
			Ephemerals: []virt.Ephemeral{{SizeGB: 1}, {SizeGB: 2, GuestFormat: "ext4"}}}
	}
	// No image: a blank root; SpawnMigrated with only a root disk makes
	// the ephemeral disks blank, as a spawn does.
	root := filepath.Join(tmp, "root.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", root, "1G").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sum, _ := fileSHA256(ctx, root)
	fi, _ := os.Stat(root)
	fromFile := func(_ context.Context, _ virt.DiskFile, w io.WriterAt) error {
		b, err := os.ReadFile(root)
		if err == nil {
			_, err = w.WriteAt(b, 0)
		}
		return err
	}
	if err := src.SpawnMigrated(ctx, inst(), []virt.DiskFile{{Name: "disk.qcow2", Size: fi.Size(), SHA256: sum}}, fromFile, true); err != nil {
		t.Fatal(err)
	}
	sizes := func(d *Driver) map[string]int64 {
		out := map[string]int64{}
		for _, n := range []string{"disk.eph0.qcow2", "disk.eph1.qcow2", "disk.eph2.qcow2", "disk.swap.qcow2"} {
			if s, err := d.virtualSize(ctx, d.path(uuid, n)); err == nil {
				out[n] = s
			}
		}
		return out
	}
	want := map[string]int64{"disk.eph0.qcow2": 1 << 30, "disk.eph1.qcow2": 2 << 30, "disk.swap.qcow2": 32 << 20}
	if got := sizes(src); !maps.Equal(got, want) {
		t.Fatalf("source disks %v, want %v", got, want)
	}
	if out, err := exec.Command("qemu-io", "-c", "write -P 0x5a 1M 64k", src.path(uuid, "disk.eph1.qcow2")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	files, err := src.ExportDisks(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "disk.qcow2,disk.eph0.qcow2,disk.eph1.qcow2" {
		t.Fatalf("exported %v", names)
	}
	copyFrom := func(ctx context.Context, f virt.DiskFile, w io.WriterAt) error {
		r, err := src.OpenDisk(ctx, uuid, f.Name)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(&offsetWriter{w: w}, io.NewSectionReader(r, 0, f.Size))
		return err
	}
	if err := dst.SpawnMigrated(ctx, inst(), files, copyFrom, true); err != nil {
		t.Fatal(err)
	}
	if got := sizes(dst); !maps.Equal(got, want) {
		t.Errorf("destination disks %v, want %v", got, want)
	}
	if out, err := exec.Command("qemu-io", "-r", "-c", "read -P 0x5a 1M 64k", dst.path(uuid, "disk.eph1.qcow2")).CombinedOutput(); err != nil ||
		strings.Contains(string(out), "Pattern verification failed") {
		t.Errorf("second ephemeral disk lost its contents: %v: %s", err, out)
	}
	// A resize to a flavor with another ephemeral size keeps the
	// mappings' disks; swap follows the request.
	bigger := &virt.Instance{UUID: uuid, VCPUs: 2, MemoryMB: 256, RootGB: 2, EphemeralGB: 5, SwapMB: 64}
	if err := dst.Resize(ctx, bigger); err != nil {
		t.Fatal(err)
	}
	want["disk.swap.qcow2"] = 64 << 20
	if got := sizes(dst); !maps.Equal(got, want) {
		t.Errorf("after resize %v, want %v", got, want)
	}
	for _, d := range []*Driver{src, dst} {
		if err := d.Destroy(ctx, uuid); err != nil {
			t.Fatal(err)
		}
	}
}
