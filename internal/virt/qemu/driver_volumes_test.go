package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// TestVolumeHotplug boots the real guest, hot-plugs a raw volume and
// checks the guest sees a new virtio disk with the volume's serial (the
// guest announces new disks on its console), unplugs it (the guest sees
// it go), plugs it again and checks that what the guest wrote the first
// time is still there. It also measures attach-to-visible time.
func TestVolumeHotplug(t *testing.T) {
	g := needGuest(t)
	dir := stateDir(t)
	d := newDriver(t, dir)
	// Generous: under TCG on a loaded machine the boot alone can take
	// minutes; the attach time is measured separately below.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const uuid = "4c2c5e8a-1111-4222-8333-444455556666"
	if err := d.Spawn(ctx, guestInstance(g, uuid)); err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(context.Background(), uuid)
	if out, err := waitConsole(ctx, d, uuid, "kumo-guest: instance-id="); err != nil {
		t.Fatalf("guest did not boot: %v\n%s", err, out)
	}
	volPath := filepath.Join(t.TempDir(), "vol.raw")
	if err := os.WriteFile(volPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(volPath, 64<<20); err != nil {
		t.Fatal(err)
	}
	vol := virt.Volume{ID: "9f1e2d3c-aaaa-4bbb-8ccc-ddddeeeeffff", Path: volPath, Format: "raw", Device: "/dev/vdb"}
	start := time.Now()
	if err := d.AttachVolume(ctx, uuid, vol); err != nil {
		t.Fatal(err)
	}
	added := "kumo-guest: disk added vd"
	out, err := waitConsole(ctx, d, uuid, added)
	if err != nil {
		t.Fatalf("guest never saw the volume: %v\n%s", err, out)
	}
	t.Logf("attach visible in the guest after %s", time.Since(start).Round(time.Millisecond))
	if !bytes.Contains(out, []byte("serial="+vol.ID[:20]+" head=empty")) {
		t.Errorf("new disk line lacks the serial or is not blank:\n%s", consoleTail(out))
	}
	// Idempotent.
	if err := d.AttachVolume(ctx, uuid, vol); err != nil {
		t.Errorf("second attach: %v", err)
	}
	// Give the guest a moment to write its marker, then unplug.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(volPath)
		if bytes.HasPrefix(b, []byte("kumo-guest-was-here")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest's write never reached the volume")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := d.DetachVolume(ctx, uuid, vol.ID); err != nil {
		t.Fatal(err)
	}
	if out, err := waitConsole(ctx, d, uuid, "kumo-guest: disk removed vd"); err != nil {
		t.Fatalf("guest never saw the volume go: %v\n%s", err, consoleTail(out))
	}
	if err := d.DetachVolume(ctx, uuid, vol.ID); err != nil {
		t.Errorf("second detach: %v", err)
	}
	rec, err := d.load(uuid)
	if err != nil || len(rec.Volumes) != 0 {
		t.Errorf("record after detach: %+v %v", rec, err)
	}
	// Re-attach, throttled this time (a front-end QoS spec): the guest
	// reads back what it wrote, through the throttle filter QEMU reports.
	vol.QoS = map[string]string{"total_bytes_sec": "10485760", "total_iops_sec": "1000", "total_iops_sec_max": "2000"}
	if err := d.AttachVolume(ctx, uuid, vol); err != nil {
		t.Fatal(err)
	}
	if out, err := waitConsole(ctx, d, uuid, "head=kumo-guest-was-here"); err != nil {
		t.Fatalf("data did not survive detach and re-attach: %v\n%s", err, consoleTail(out))
	}
	drv, limits := queryThrottle(ctx, t, d, uuid, volumeNode(vol.ID))
	if drv != "throttle" || limits["bps-total"] != 10485760 || limits["iops-total"] != 1000 || limits["iops-total-max"] != 2000 {
		t.Errorf("throttled volume: query-block drv %q, limits %v", drv, limits)
	}
	if err := d.DetachVolume(ctx, uuid, vol.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.AttachVolume(ctx, "no-such-instance", vol); err == nil {
		t.Error("attach to a missing instance succeeded")
	}
}

func consoleTail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
