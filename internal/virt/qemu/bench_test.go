package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSpawn measures the driver: Spawn until it returns (the guest is
// Running) and until the guest prints its console line. Run with
// -bench Spawn -benchtime 3x; under TCG on a shared host expect seconds.
func BenchmarkSpawn(b *testing.B) {
	g := needGuest(b)
	d := newDriver(b, stateDir(b))
	ctx := context.Background()
	var running, console time.Duration
	for i := range b.N {
		uuid := fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", i)
		start := time.Now()
		if err := d.Spawn(ctx, guestInstance(g, uuid)); err != nil {
			b.Fatal(err)
		}
		running += time.Since(start)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := waitConsole(wctx, d, uuid, "kumo-guest: instance-id="+uuid); err != nil {
			b.Fatal(err)
		}
		cancel()
		console += time.Since(start)
		if err := d.Destroy(ctx, uuid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(running.Milliseconds())/float64(b.N), "ms-to-running")
	b.ReportMetric(float64(console.Milliseconds())/float64(b.N), "ms-to-console")
}

// BenchmarkPlainQEMU is the baseline: the same guest started by hand with
// a minimal command line and a pre-built config drive.
func BenchmarkPlainQEMU(b *testing.B) {
	g := needGuest(b)
	dir := b.TempDir()
	const uuid = "cccccccc-0000-4000-8000-000000000001"
	files, err := ConfigDriveFiles(guestInstance(g, uuid))
	if err != nil {
		b.Fatal(err)
	}
	iso := filepath.Join(dir, "config.iso")
	if err := WriteConfigDrive(iso, files); err != nil {
		b.Fatal(err)
	}
	img := guestImage(g)
	var console time.Duration
	for range b.N {
		log := filepath.Join(dir, "console.log")
		os.Remove(log)
		start := time.Now()
		cmd := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "128",
			"-nodefaults", "-display", "none", "-serial", "file:"+log,
			"-kernel", img.KernelPath, "-initrd", img.RamdiskPath, "-append", img.KernelArgs,
			"-drive", "file="+iso+",format=raw,if=virtio,readonly=on",
			"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			out, _ := os.ReadFile(log)
			if bytes.Contains(out, []byte("kumo-guest: instance-id="+uuid)) {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("no console line: %s", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		console += time.Since(start)
		cmd.Process.Kill()
		cmd.Wait()
	}
	b.ReportMetric(float64(console.Milliseconds())/float64(b.N), "ms-to-console")
}
