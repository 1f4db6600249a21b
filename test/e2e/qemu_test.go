package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/remoteconsoles"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// qemuGuest checks what real-VM tests need (root, QEMU, the test guest
// from tools/guest-image, built here when missing) and returns the
// guest's directory. Under CI=true a missing piece fails the test.
func qemuGuest(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no real VMs")
	}
	skip := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (mandatory under CI=true)", msg)
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		skip("real-VM tests need root (taps, QEMU state under the data dir)")
	}
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip("%s not installed (apt-get install qemu-system-x86 qemu-utils)", bin)
		}
	}
	dir := os.Getenv("KUMO_GUEST_DIR")
	if dir == "" {
		dir = "/var/cache/kumo/guest"
	}
	if out, err := exec.Command("sh", "../../tools/guest-image/build.sh", dir).CombinedOutput(); err != nil {
		skip("building the test guest: %v: %s", err, out)
	}
	return dir
}

// guestContainer is the container format of a guest image part: a
// kernel (aki) and a ramdisk (ari) are their own container, disks are bare.
func guestContainer(diskFormat string) string {
	if diskFormat == "aki" || diskFormat == "ari" {
		return diskFormat
	}
	return "bare"
}

// shortDataDir is a data directory with a short path: QEMU's unix
// sockets live under it and their paths must fit in 107 bytes.
func shortDataDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "kq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killProcessesUnder(d)
		os.RemoveAll(d)
	})
	return d
}

// killProcessesUnder ends the processes (QEMU guests) whose command line
// names dir: guests outlive kumo by design (an agent restart keeps them),
// so a test that fails half way must not leave them running.
func killProcessesUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), dir+"/") {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
}

// uploadGuest uploads the test guest as Glance images: the kernel (aki),
// the initramfs (ari) and the root disk (qcow2) naming both, for direct
// kernel boot. It returns the root disk image's id.
func uploadGuest(t testing.TB, ctx context.Context, img *gophercloud.ServiceClient, dir string) string {
	t.Helper()
	up := func(name, file, format string, props map[string]string) string {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return newImage(t, ctx, img, images.CreateOpts{Name: name, DiskFormat: format, ContainerFormat: guestContainer(format), Properties: props}, b)
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	kernel := up("kumo-guest-kernel", "vmlinuz", "aki", nil)
	ramdisk := up("kumo-guest-ramdisk", "initrd.img", "ari", nil)
	return up("kumo-guest", "disk.qcow2", "qcow2", map[string]string{
		"kernel_id": kernel, "ramdisk_id": ramdisk, "os_command_line": strings.TrimSpace(string(cmdline)),
	})
}

// waitConsole polls os-getConsoleOutput until it contains want n times
// (once per boot of the guest).
func waitConsole(t testing.TB, ctx context.Context, c *gophercloud.ServiceClient, id, want string, n int) string {
	t.Helper()
	for {
		out, err := servers.ShowConsoleOutput(ctx, c, id, servers.ShowConsoleOutputOpts{}).Extract()
		if err == nil && strings.Count(out, want) >= n {
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("console of %s never showed %q (err %v):\n%s", id, want, err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// qemuProcesses lists the QEMU processes whose command line mentions s.
func qemuProcesses(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte("qemu-system")) || !bytes.Contains(b, []byte(s)) {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

// cmdlineHas reports whether process pid has the arguments args in a row.
func cmdlineHas(pid string, args ...string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	return err == nil && bytes.Contains(b, []byte(strings.Join(args, "\x00")+"\x00"))
}

// leftovers lists what a server left on the host: QEMU processes, files
// under the QEMU state directory, taps.
func leftovers(dataDir, id string) []string {
	var out []string
	for _, p := range qemuProcesses(id) {
		out = append(out, "process "+p)
	}
	_ = filepath.Walk(filepath.Join(dataDir, "qemu"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, id) {
			out = append(out, "file "+p)
		}
		return nil
	})
	return out
}

// TestQEMUServerLifecycle boots the test guest through the public API on
// QEMU (TCG unless KVM really works), reads its console line, runs the
// server actions on the real VM, and proves that delete leaves nothing.
func TestQEMUServerLifecycle(t *testing.T) {
	guest := qemuGuest(t)
	t.Parallel()
	dataDir := shortDataDir(t)
	k := Start(t, Options{DataDir: dataDir, Args: []string{"--compute-driver", "qemu"}})
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.45" // networks "none"; createImage answers {"image_id"}
	imageID := uploadGuest(t, ctx, img, guest)

	step := func(name string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
	}
	// m1.nano with 2 GB of ephemeral space, which the boot splits into two
	// ephemeral disks of their own (blank local mappings).
	if _, err := flavors.Create(ctx, nova, flavors.CreateOpts{Name: "m1.nano.eph", ID: "4242", RAM: 128, VCPUs: 1,
		Disk: ptr(1), Ephemeral: ptr(2)}).Extract(); err != nil {
		t.Fatalf("flavor: %v", err)
	}
	var id string
	step("boot to ACTIVE", func() {
		s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "vm1", ImageRef: imageID, FlavorRef: "4242",
			Networks: "none", ConfigDrive: ptr(true), UserData: []byte("#!/bin/sh\necho hello\n"),
			BlockDevice: []servers.BlockDevice{
				{SourceType: servers.SourceImage, UUID: imageID, DestinationType: servers.DestinationLocal, BootIndex: 0},
				{SourceType: servers.SourceBlank, DestinationType: servers.DestinationLocal, VolumeSize: 1, BootIndex: -1},
				{SourceType: servers.SourceBlank, DestinationType: servers.DestinationLocal, VolumeSize: 1, BootIndex: -1}}}, nil).Extract()
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		id = s.ID
		waitServer(t, ctx, nova, id, "ACTIVE")
	})
	if ps := qemuProcesses(id); len(ps) != 1 {
		t.Fatalf("want one QEMU process for %s, got %v", id, ps)
	}
	want := "kumo-guest: instance-id=" + id
	step("console line", func() {
		out := waitConsole(t, ctx, nova, id, want, 1)
		if !strings.Contains(out, "source=config-drive") {
			t.Errorf("guest did not read its config drive:\n%s", out)
		}
		// The two ephemeral mappings are two disks, right after the root.
		if !strings.Contains(out, "disk vdb serial=ephemeral0") || !strings.Contains(out, "disk vdc serial=ephemeral1") {
			t.Errorf("guest does not see two ephemeral disks on vdb and vdc:\n%s", out)
		}
	})

	step("serial console over websocket", func() { checkSerialConsole(t, ctx, nova, id) })
	step("VNC console over websocket", func() { checkVNCConsole(t, ctx, nova, id) })

	action := func(name, status string, do func() error) {
		t.Helper()
		step(name, func() {
			if err := do(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			waitServer(t, ctx, nova, id, status)
		})
	}
	action("stop", "SHUTOFF", func() error { return servers.Stop(ctx, nova, id).ExtractErr() })
	if ps := qemuProcesses(id); len(ps) != 0 {
		t.Fatalf("stopped server still runs QEMU %v", ps)
	}
	action("start", "ACTIVE", func() error { return servers.Start(ctx, nova, id).ExtractErr() })
	// A soft reboot asks the guest by ACPI: it has to be up to listen.
	step("boot after start", func() { waitConsole(t, ctx, nova, id, want, 2) })
	action("reboot (soft)", "ACTIVE", func() error {
		return servers.Reboot(ctx, nova, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
	})
	action("pause", "PAUSED", func() error { return servers.Pause(ctx, nova, id).ExtractErr() })
	action("unpause", "ACTIVE", func() error { return servers.Unpause(ctx, nova, id).ExtractErr() })
	action("suspend", "SUSPENDED", func() error { return servers.Suspend(ctx, nova, id).ExtractErr() })
	action("resume", "ACTIVE", func() error { return servers.Resume(ctx, nova, id).ExtractErr() })
	action("rescue", "RESCUE", func() error {
		_, err := servers.Rescue(ctx, nova, id, servers.RescueOpts{}).Extract()
		return err
	})
	action("unrescue", "ACTIVE", func() error { return servers.Unrescue(ctx, nova, id).ExtractErr() })

	var snapID string
	step("createImage to active", func() {
		r := servers.CreateImage(ctx, nova, id, servers.CreateImageOpts{Name: "vm1-snap", Metadata: map[string]string{"purpose": "e2e"}})
		if r.Err != nil {
			t.Fatalf("createImage: %v", r.Err)
		}
		var body struct {
			ImageID string `json:"image_id"`
		}
		if err := r.ExtractInto(&body); err != nil || body.ImageID == "" {
			t.Fatalf("createImage body: %v %+v", err, body)
		}
		snapID = body.ImageID
		waitServer(t, ctx, nova, id, "ACTIVE")
		im := waitImage(t, ctx, img, snapID)
		for k, v := range map[string]string{"image_type": "snapshot", "instance_uuid": id, "base_image_ref": imageID, "purpose": "e2e"} {
			if im.Properties[k] != v {
				t.Errorf("snapshot property %s = %v, want %s", k, im.Properties[k], v)
			}
		}
		if im.DiskFormat != "qcow2" || im.SizeBytes == 0 {
			t.Errorf("snapshot image %s: format %s size %d", snapID, im.DiskFormat, im.SizeBytes)
		}
	})
	action("shelve", "SHELVED_OFFLOADED", func() error { return servers.Shelve(ctx, nova, id).ExtractErr() })
	if l := leftovers(dataDir, id); len(l) > 0 {
		t.Fatalf("shelve offload left behind: %v", l)
	}
	action("unshelve", "ACTIVE", func() error { return servers.Unshelve(ctx, nova, id, servers.UnshelveOpts{}).ExtractErr() })
	step("boot after unshelve", func() { waitConsole(t, ctx, nova, id, want, 1) })
	action("resize", "VERIFY_RESIZE", func() error {
		return servers.Resize(ctx, nova, id, servers.ResizeOpts{FlavorRef: "84"}).ExtractErr()
	})
	action("confirm resize", "ACTIVE", func() error { return servers.ConfirmResize(ctx, nova, id).ExtractErr() })
	if ps := qemuProcesses(id); len(ps) != 1 || !cmdlineHas(ps[0], "-m", "192") {
		t.Errorf("after resize to 192 MiB: QEMU processes %v", ps)
	} else if b, _ := os.ReadFile(filepath.Join("/proc", ps[0], "cmdline")); !bytes.Contains(b, []byte("serial=ephemeral1")) {
		t.Errorf("resize dropped the second ephemeral disk: %q", b)
	}
	step("boot after resize", func() { waitConsole(t, ctx, nova, id, want, 2) })
	step("shelved image deleted", func() {
		all, err := images.List(img, images.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := images.ExtractImages(all)
		for _, im := range list {
			if im.Name == "vm1-shelved" {
				t.Errorf("shelved image %s (%s) still exists after unshelve", im.ID, im.Status)
			}
		}
	})

	step("delete", func() {
		if err := servers.Delete(ctx, nova, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, ctx, nova, id)
	})
	if l := leftovers(dataDir, id); len(l) > 0 {
		t.Fatalf("delete left behind: %v", l)
	}
}

// waitImage polls until an image is active.
func waitImage(t testing.TB, ctx context.Context, c *gophercloud.ServiceClient, id string) *images.Image {
	t.Helper()
	for {
		im, err := images.Get(ctx, c, id).Extract()
		if err != nil {
			t.Fatalf("get image %s: %v", id, err)
		}
		if im.Status == images.ImageStatusActive {
			return im
		}
		if ctx.Err() != nil {
			t.Fatalf("image %s still %s", id, im.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consoleURL asks for a remote console (2.6+) and returns its URL.
func consoleURL(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, id string, protocol remoteconsoles.ConsoleProtocol, typ remoteconsoles.ConsoleType) string {
	t.Helper()
	c, err := remoteconsoles.Create(ctx, nova, id, remoteconsoles.CreateOpts{Protocol: protocol, Type: typ}).Extract()
	if err != nil {
		t.Fatalf("remote console %s: %v", protocol, err)
	}
	if !strings.HasPrefix(c.URL, "ws://") || !strings.Contains(c.URL, "token=") {
		t.Fatalf("remote console URL %q", c.URL)
	}
	return c.URL
}

// checkSerialConsole types a line into the guest's serial console and
// reads the guest's echo of it; the token works once.
func checkSerialConsole(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, id string) {
	url := consoleURL(t, ctx, nova, id, remoteconsoles.ConsoleProtocolSerial, remoteconsoles.ConsoleTypeSerial)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(cctx, url, nil)
	if err != nil {
		t.Fatalf("dial serial console: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(cctx, websocket.MessageBinary, []byte("hello-kumo\r")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for !bytes.Contains(got, []byte("kumo-guest: echo: hello-kumo")) {
		_, b, err := ws.Read(cctx)
		if err != nil {
			t.Fatalf("serial console: no echo from the guest (%v); read %q", err, got)
		}
		got = append(got, b...)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	if _, _, err := websocket.Dial(cctx, url, nil); err == nil {
		t.Error("a console token worked twice")
	}
}

// checkVNCConsole opens the VNC console as noVNC does (subprotocol
// "binary") and reads the RFB greeting.
func checkVNCConsole(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, id string) {
	url := consoleURL(t, ctx, nova, id, remoteconsoles.ConsoleProtocolVNC, remoteconsoles.ConsoleTypeNoVNC)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(cctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("dial VNC console: %v", err)
	}
	defer ws.CloseNow()
	if ws.Subprotocol() != "binary" {
		t.Errorf("VNC websocket subprotocol %q, want binary", ws.Subprotocol())
	}
	_, b, err := ws.Read(cctx)
	if err != nil || !bytes.HasPrefix(b, []byte("RFB 003.")) {
		t.Fatalf("VNC greeting %q: %v", b, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

func ptr[T any](v T) *T { return &v }

// TestQEMUBootFaults boots images that cannot work on QEMU: each server
// ends in ERROR with a fault that says why, and nothing stays on the host.
func TestQEMUBootFaults(t *testing.T) {
	guest := qemuGuest(t)
	t.Parallel()
	dataDir := shortDataDir(t)
	k := Start(t, Options{DataDir: dataDir, Args: []string{"--compute-driver", "qemu"}})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.45"
	up := func(name, format string, data []byte, props map[string]string) string {
		return newImage(t, ctx, img, images.CreateOpts{Name: name, DiskFormat: format, ContainerFormat: guestContainer(format), Properties: props}, data)
	}
	kernel, err := os.ReadFile(filepath.Join(guest, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	kernelID := up("kernel", "aki", kernel, nil)
	// A qcow2 whose virtual size (2 GiB) exceeds the flavor's 1 GB root
	// disk, though its file is tiny (so the API cannot tell).
	big := filepath.Join(t.TempDir(), "big.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", big, "2G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	bigData, _ := os.ReadFile(big)
	garbage := bytes.Repeat([]byte("not a kernel "), 4096)
	cases := []struct{ name, image, fault string }{
		{"kernel image booted alone", kernelID, "cannot boot on its own"},
		{"virtual size beyond the flavor", up("big", "qcow2", bigData, nil), "is larger than the root disk"},
		// Not a bzImage, with a ramdisk: QEMU exits at start.
		{"QEMU dies at start", up("bad-kernel-disk", "raw", make([]byte, 1<<20),
			map[string]string{"kernel_id": up("garbage", "aki", garbage, nil), "ramdisk_id": up("ramdisk", "ari", garbage, nil)}),
			"linux kernel too old to load a ram disk"},
	}
	for _, tc := range cases {
		s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "bad", ImageRef: tc.image, FlavorRef: "42", Networks: "none"}, nil).Extract()
		if err != nil {
			t.Fatalf("%s: create: %v", tc.name, err)
		}
		t.Logf("%s: server %s", tc.name, s.ID)
		got := waitServer(t, ctx, nova, s.ID, "ERROR")
		if got.Fault.Message == "" || !strings.Contains(got.Fault.Message, tc.fault) {
			t.Errorf("%s: fault %q, want it to mention %q", tc.name, got.Fault.Message, tc.fault)
		}
		if l := leftovers(dataDir, s.ID); len(l) > 0 {
			t.Errorf("%s: failed boot left %v", tc.name, l)
		}
		if err := servers.Delete(ctx, nova, s.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
}
