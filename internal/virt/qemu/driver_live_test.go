package qemu

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// serialLine types a line into the guest's serial console and waits for
// the console to show want (a regexp); it returns the first match.
func serialLine(t *testing.T, ctx context.Context, d *Driver, uuid, line, want string) []string {
	t.Helper()
	c, err := net.Dial("unix", d.path(uuid, "serial.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(line + "\r")); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(want)
	for {
		out, err := d.ConsoleOutput(ctx, uuid, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if m := re.FindStringSubmatch(string(out)); m != nil {
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatalf("console of %s never showed %q after %q:\n%s", uuid, want, line, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestLiveMigration moves a running guest between two drivers (two hosts'
// state directories, each with its own copy of the image) with its disks
// mirrored over NBD on 127.0.0.1: the guest goes on without rebooting (same
// boot id, uptime grows), what it wrote to its root disk is on the
// destination's disk, and the source keeps a stopped guest until it is
// destroyed. A destination that cannot be reached fails the migration and
// the source guest runs on.
func TestLiveMigration(t *testing.T) {
	g := needGuest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, dst := newDriver(t, stateDir(t)), newDriver(t, stateDir(t))
	// Each host has its own copy of the image.
	b, err := os.ReadFile(filepath.Join(g, "disk.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	imgB := filepath.Join(t.TempDir(), "cached.qcow2")
	if err := os.WriteFile(imgB, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const uuid = "5d0c1e2f-3a4b-4c5d-8e6f-708192a3b4c5"
	inst := guestInstance(g, uuid)
	inst.EphemeralGB, inst.SwapMB = 1, 32
	if err := src.Spawn(ctx, inst); err != nil {
		t.Fatal(err)
	}
	defer src.Destroy(context.Background(), uuid)
	defer dst.Destroy(context.Background(), uuid)
	if out, err := waitConsole(ctx, src, uuid, "kumo-guest: instance-id="+uuid); err != nil {
		t.Fatalf("guest did not boot: %v\n%s", err, out)
	}
	serialLine(t, ctx, src, uuid, "kumo-note written-before-migration", `kumo-guest: noted`)
	before := serialLine(t, ctx, src, uuid, "kumo-status", `status boot=([0-9a-f]+) note=(\S+) up=`)

	disks, err := src.LiveDisks(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 3 || disks[0].BackingImage != "kumo-test-guest" || disks[1].BackingImage != "" || disks[1].VirtualSize != gib {
		t.Fatalf("live disks %+v", disks)
	}
	destInst := guestInstance(g, uuid)
	destInst.EphemeralGB, destInst.SwapMB = 1, 32
	destInst.Image.Path = imgB

	// An unreachable destination (nothing listens): the source runs on.
	if err := src.MigrateLive(ctx, uuid, virt.Incoming{Host: "127.0.0.1", NBDPort: 1, MigrationPort: 1}, disks, virt.LiveOptions{}); err == nil {
		t.Fatal("migration to nowhere succeeded")
	}
	if info, err := src.Info(ctx, uuid); err != nil || info.State != virt.Running {
		t.Fatalf("source after a failed migration: %+v %v", info, err)
	}

	in, err := dst.PrepareIncoming(ctx, destInst, disks, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var last virt.MigrationProgress
	start := time.Now()
	if err := src.MigrateLive(ctx, uuid, in, disks, virt.LiveOptions{Progress: func(p virt.MigrationProgress) { last = p }}); err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishIncoming(ctx, uuid, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("migrated in %v, last progress %+v", time.Since(start).Round(time.Millisecond), last)
	if last.MemoryTotal == 0 || last.DiskTotal == 0 {
		t.Errorf("progress not reported: %+v", last)
	}
	if info, err := src.Info(ctx, uuid); err != nil || info.State != virt.Paused {
		t.Errorf("source after the migration: %+v %v", info, err)
	}
	if info, err := dst.Info(ctx, uuid); err != nil || info.State != virt.Running {
		t.Fatalf("destination after the migration: %+v %v", info, err)
	}
	if err := src.Destroy(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	// The console socket on the destination answers too (the console
	// proxy reads it rather than the log).
	sc, err := net.Dial("unix", dst.path(uuid, "serial.sock"))
	if err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte("kumo-status\r"))
	sc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !regexp.MustCompile(`status boot=`).Match(got) {
		n, err := sc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("serial socket on the destination: %v; read %q", err, got)
		}
	}
	sc.Close()
	t.Logf("serial socket: %q", got)
	after := serialLine(t, ctx, dst, uuid, "kumo-status", `status boot=([0-9a-f]+) note=(\S+) up=`)
	if after[1] != before[1] || after[2] != "written-before-migration" {
		t.Errorf("after the migration: boot %s note %s; before: boot %s note %s", after[1], after[2], before[1], before[2])
	}
	if err := dst.Destroy(ctx, uuid); err != nil {
		t.Fatal(err)
	}
}
