package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/virttest"
)

// guestDir is where tools/guest-image/build.sh caches the test guest.
func guestDir() string {
	if d := os.Getenv("KUMO_GUEST_DIR"); d != "" {
		return d
	}
	return "/var/cache/kumo/guest"
}

var (
	guestOnce sync.Once
	guestErr  error
)

// needGuest skips (fails under CI=true) unless QEMU, qemu-img and the test
// guest are available; it builds the guest once (cached by content).
func needGuest(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: no real guests")
	}
	guestOnce.Do(func() {
		for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
			if _, err := exec.LookPath(bin); err != nil {
				guestErr = fmt.Errorf("%s not installed (apt-get install qemu-system-x86 qemu-utils)", bin)
				return
			}
		}
		out, err := exec.Command("sh", "../../../tools/guest-image/build.sh", guestDir()).CombinedOutput()
		if err != nil {
			guestErr = fmt.Errorf("building the test guest: %v: %s", err, out)
		}
	})
	if guestErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("qemu integration: %v", guestErr)
		}
		tb.Skipf("qemu integration skipped: %v", guestErr)
	}
	return guestDir()
}

func guestImage(dir string) virt.Image {
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	return virt.Image{
		ID: "kumo-test-guest", Path: filepath.Join(dir, "disk.qcow2"), DiskFormat: "qcow2",
		KernelPath: filepath.Join(dir, "vmlinuz"), RamdiskPath: filepath.Join(dir, "initrd.img"),
		KernelArgs: strings.TrimSpace(string(cmdline)),
	}
}

func guestInstance(dir, uuid string) *virt.Instance {
	return &virt.Instance{
		UUID: uuid, Name: "instance-" + uuid[len(uuid)-4:], VCPUs: 1, MemoryMB: 128,
		Image:       guestImage(dir),
		NICs:        []virt.NIC{{PortID: "p1", MAC: "fa:16:3e:00:00:01", Tap: "tapkumotest0"}},
		ConfigDrive: true,
		Metadata:    virt.Metadata{Hostname: "guest-" + uuid[len(uuid)-4:]},
	}
}

// stateDir is short (unix socket paths are limited) and checked empty at
// the end: destroyed instances leave nothing behind.
func stateDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "kq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			// A failed test may leave a guest: stop it before complaining.
			if b, err := os.ReadFile(filepath.Join(dir, e.Name(), "qemu.pid")); err == nil {
				var pid int
				fmt.Sscan(string(b), &pid)
				if pid > 0 && alive(pid, filepath.Join(dir, e.Name(), "qmp.sock")) {
					_ = exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
				}
			}
			if !t.Failed() {
				t.Errorf("state dir not empty after the test: %s", e.Name())
			}
		}
		os.RemoveAll(dir)
	})
	return dir
}

func newDriver(t testing.TB, dir string) *Driver {
	d, err := New(Config{StateDir: dir, Accel: "auto", UserNetworking: true, SoftRebootTimeout: 15 * time.Second, Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	g := needGuest(t)
	virttest.Run(t, virttest.Harness{
		NewDriver: func(t *testing.T) virt.Driver { return newDriver(t, stateDir(t)) },
		Instance:  func(t *testing.T, uuid string) *virt.Instance { return guestInstance(g, uuid) },
		Rescue:    func(t *testing.T) virt.Image { return guestImage(g) },
		Timeout:   60 * time.Second,
		Serial:    true,
	})
}

// waitConsole waits until the console contains want.
func waitConsole(ctx context.Context, d *Driver, uuid, want string) ([]byte, error) {
	for {
		out, err := d.ConsoleOutput(ctx, uuid, 64<<10)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(out, []byte(want)) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestGuestBootAndAdopt boots the real guest, sees it read its config
// drive and get an address, then restarts the "agent": a new Driver on the
// same state directory adopts the running guest without restarting it.
func TestGuestBootAndAdopt(t *testing.T) {
	g := needGuest(t)
	dir := stateDir(t)
	d := newDriver(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const uuid = "3b2c5e8a-1111-4222-8333-444455556666"
	inst := guestInstance(g, uuid)
	inst.EphemeralGB, inst.SwapMB = 1, 64
	if err := d.Spawn(ctx, inst); err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(context.Background(), uuid)
	for _, f := range []string{"disk.qcow2", "disk.eph0.qcow2", "disk.swap.qcow2", "config.iso", "qmp.sock", "qemu.pid", "console.log"} {
		if _, err := os.Stat(filepath.Join(dir, uuid, f)); err != nil {
			t.Errorf("after spawn: %v", err)
		}
	}
	line := "kumo-guest: instance-id=" + uuid + " ip=10.0.2.15"
	if out, err := waitConsole(ctx, d, uuid, line); err != nil {
		t.Fatalf("guest never printed %q: %v\nconsole:\n%s", line, err, out)
	}
	pid, _ := d.pid(uuid)
	// Diagnostics: a vCPU that booted a kernel used CPU time, the root
	// disk was read, the disks are the flavor's and the config drive.
	dg, err := d.Diagnostics(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	if len(dg.CPUs) != inst.VCPUs || dg.CPUs[0].Time == nil || *dg.CPUs[0].Time <= 0 || len(dg.Disks) < 3 ||
		dg.Disks[0].Name != "root" || dg.Disks[0].ReadBytes == nil || *dg.Disks[0].ReadBytes <= 0 || dg.HypervisorOS != "linux" || dg.Hypervisor == "" {
		t.Fatalf("diagnostics %+v (cpus %v, disks %+v)", dg, dg.CPUs, dg.Disks)
	}

	// The agent restarts: a new driver, same state dir.
	d2 := newDriver(t, dir)
	ids, err := d2.List(ctx)
	if err != nil || len(ids) != 1 || ids[0] != uuid {
		t.Fatalf("adopted list %v %v", ids, err)
	}
	info, err := d2.Info(ctx, uuid)
	if err != nil || info.State != virt.Running || info.MemoryMB != 128 {
		t.Fatalf("adopted info %+v %v", info, err)
	}
	if pid2, ok := d2.pid(uuid); !ok || pid2 != pid {
		t.Fatalf("guest process changed: %d -> %d", pid, pid2)
	}
	// Guest-initiated reboot stays Running; ACPI power-off ends the process.
	if err := d2.PowerOff(ctx, uuid, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if out, _ := d2.ConsoleOutput(ctx, uuid, 4096); !bytes.Contains(out, []byte("power button")) {
		t.Errorf("guest was not powered off by ACPI; console tail:\n%s", out)
	}
	if err := d2.Destroy(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, uuid)); !os.IsNotExist(err) {
		t.Fatalf("instance dir left after destroy: %v", err)
	}
}

func TestConsoleRotation(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Config{StateDir: dir, Accel: "tcg", ConsoleLogMax: 100})
	if err != nil {
		t.Fatal(err)
	}
	uuid := "u1"
	os.Mkdir(filepath.Join(dir, uuid), 0o700)
	if err := d.save(&record{Instance: virt.Instance{UUID: uuid, VCPUs: 1, MemoryMB: 64}}); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, uuid, "console.log")
	os.WriteFile(log, []byte(strings.Repeat("a", 90)+strings.Repeat("b", 60)), 0o600)
	out, err := d.ConsoleOutput(context.Background(), uuid, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("b", 50); string(out) != want {
		t.Fatalf("after rotation %q, want %q", out, want)
	}
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("cc")
	f.Close()
	if out, _ := d.ConsoleOutput(context.Background(), uuid, 4); string(out) != "bbcc" {
		t.Fatalf("tail across rotation %q", out)
	}
}
