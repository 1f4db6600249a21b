package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("qemu-img not installed")
		}
		t.Skip("qemu-img not installed (apt-get install qemu-utils)")
	}
}

// conformance runs every backend through the same steps: blank create,
// data in, snapshot, volumes from snapshot and from volume, extend,
// refusals, and idempotent deletes.
func conformance(t *testing.T, b Backend, write func(path string, off int64, data []byte), read func(path string, off int64, n int) []byte) {
	ctx := context.Background()
	loc, err := b.Create(ctx, "v1", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := b.Connect(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Type != "local" || conn.Path == "" {
		t.Fatalf("connection = %+v", conn)
	}
	if got := read(conn.Path, 0, 8); !bytes.Equal(got, make([]byte, 8)) {
		t.Errorf("a new volume is not blank: %q", got)
	}
	if vs, err := VirtualSize(ctx, conn.Path, conn.Format); err != nil || vs != GiB {
		t.Errorf("virtual size %d %v", vs, err)
	}
	write(conn.Path, 1<<20, []byte("kumo-backend"))
	snap, err := b.Snapshot(ctx, loc, "s1")
	if err != nil {
		t.Fatal(err)
	}
	write(conn.Path, 1<<20, []byte("changed-after"))
	sconn, err := b.Connect(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(sconn.Path, 1<<20, 12); string(got) != "kumo-backend" {
		t.Errorf("snapshot holds %q", got)
	}
	fromSnap, err := b.Create(ctx, "v2", 2, &Source{Path: sconn.Path, Format: sconn.Format})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := b.Connect(ctx, fromSnap)
	if got := read(c2.Path, 1<<20, 12); string(got) != "kumo-backend" {
		t.Errorf("volume from snapshot holds %q", got)
	}
	if vs, _ := VirtualSize(ctx, c2.Path, c2.Format); vs != 2*GiB {
		t.Errorf("volume from snapshot is %d bytes", vs)
	}
	if _, err := b.Create(ctx, "v3", 1, &Source{Path: c2.Path, Format: c2.Format}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("2 GiB into 1 GiB: %v", err)
	}
	if err := b.Extend(ctx, loc, 2); err != nil {
		t.Fatal(err)
	}
	if vs, _ := VirtualSize(ctx, conn.Path, conn.Format); vs != 2*GiB {
		t.Errorf("extended volume is %d bytes", vs)
	}
	if got := read(conn.Path, 1<<20, 13); string(got) != "changed-after" {
		t.Errorf("extend lost data: %q", got)
	}
	// Creating again (a resumed step) starts from scratch.
	if _, err := b.Create(ctx, "v1", 1, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(conn.Path, 1<<20, 13); bytes.Contains(got, []byte("changed")) {
		t.Error("a recreated volume kept old data")
	}
	for _, l := range []string{loc, fromSnap} {
		if err := b.Delete(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, l); err != nil {
			t.Errorf("second delete: %v", err)
		}
	}
	if err := b.DeleteSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(ctx, loc); err == nil {
		t.Error("connect to a deleted volume succeeded")
	}
	if err := b.Delete(ctx, "/etc/passwd"); err == nil {
		t.Error("deleting outside the backend succeeded")
	}
	c, err := b.Capacity(ctx)
	if err != nil || c.TotalGB <= 0 {
		t.Errorf("capacity %+v %v", c, err)
	}
}

func fileIO() (func(string, int64, []byte), func(string, int64, int) []byte) {
	write := func(p string, off int64, data []byte) {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(data, off); err != nil {
			panic(err)
		}
	}
	read := func(p string, off int64, n int) []byte {
		f, err := os.Open(p)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		b := make([]byte, n)
		_, _ = f.ReadAt(b, off)
		return b
	}
	return write, read
}

func TestFileRaw(t *testing.T) {
	needQemuImg(t)
	b, err := NewFile("file", t.TempDir(), "raw")
	if err != nil {
		t.Fatal(err)
	}
	w, r := fileIO()
	conformance(t, b, w, r)
}

// TestFileQcow2 goes through qemu-io for data, as qcow2 files are not
// flat.
func TestFileQcow2(t *testing.T) {
	needQemuImg(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed")
	}
	b, err := NewFile("file", t.TempDir(), "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	write := func(p string, off int64, data []byte) {
		// qemu-io writes a pattern; write byte by byte with -P.
		for i, c := range data {
			if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("write -P %d %d 1", c, off+int64(i)), p).CombinedOutput(); err != nil {
				t.Fatalf("qemu-io: %v %s", err, out)
			}
		}
	}
	read := func(p string, off int64, n int) []byte {
		tmp := filepath.Join(t.TempDir(), "flat.raw")
		if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", p, tmp).CombinedOutput(); err != nil {
			t.Fatalf("convert: %v %s", err, out)
		}
		_, rd := fileIO()
		return rd(tmp, off, n)
	}
	conformance(t, b, write, read)
}

// TestLVM runs the conformance steps on a volume group made on a loop
// device. It needs root, lvm2 and a kernel with device-mapper; it skips
// (with the reason) otherwise.
func TestLVM(t *testing.T) {
	needQemuImg(t)
	if os.Geteuid() != 0 {
		t.Skip("LVM test needs root")
	}
	if _, err := exec.LookPath("lvcreate"); err != nil {
		t.Skip("lvm2 not installed (apt-get install lvm2)")
	}
	_ = exec.Command("modprobe", "dm_mod").Run()
	if out, err := exec.Command("dmsetup", "version").CombinedOutput(); err != nil || !strings.Contains(string(out), "Driver version") {
		t.Skipf("the kernel has no device-mapper driver, LVM cannot run here: %s", strings.TrimSpace(string(out)))
	}
	t.Setenv("DM_DISABLE_UDEV", "1")
	img := filepath.Join(t.TempDir(), "pv.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 4<<30); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("no loop device: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	vg := fmt.Sprintf("kumotest%d", os.Getpid())
	t.Cleanup(func() {
		_ = exec.Command("vgremove", "-f", "-y", vg).Run()
		_ = exec.Command("pvremove", "-y", loop).Run()
		_ = exec.Command("losetup", "-d", loop).Run()
	})
	for _, args := range [][]string{{"pvcreate", "-y", loop}, {"vgcreate", vg, loop}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	w, r := fileIO()
	t.Run("thick", func(t *testing.T) {
		b, err := NewLVM(context.Background(), "lvm", vg, "")
		if err != nil {
			t.Fatal(err)
		}
		conformance(t, b, w, r)
	})
	t.Run("thin", func(t *testing.T) {
		if out, err := exec.Command("lvcreate", "-y", "--type", "thin-pool", "-L", "3g", "-n", "pool", vg).CombinedOutput(); err != nil {
			t.Skipf("no thin pool support: %v %s", err, out)
		}
		b, err := NewLVM(context.Background(), "lvm-thin", vg, "pool")
		if err != nil {
			t.Fatal(err)
		}
		conformance(t, b, w, r)
	})
}
