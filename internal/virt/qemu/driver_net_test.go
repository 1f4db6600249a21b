package qemu

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/virt"
)

func TestValidTap(t *testing.T) {
	for name, want := range map[string]bool{
		"tap1234abcd-56": true, "tapx": true, "": false, "tap/../../x": false, "tap with space": false,
		"tap0123456789ab": true, "tap0123456789abc": false, "..": false, "tap:1": false,
	} {
		if got := validTap(name); got != want {
			t.Errorf("validTap(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestTapsPlugAndUnplug creates a VIF's tap as spawn does (persistent, up,
// with its MTU) and removes it as destroy does. Needs root and iproute2.
func TestTapsPlugAndUnplug(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("tap test needs root (mandatory under CI=true)")
		}
		t.Skip("tap test needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 not installed")
	}
	d, err := New(Config{StateDir: t.TempDir(), Accel: "tcg"})
	if err != nil {
		t.Fatal(err)
	}
	nics := []virt.NIC{{PortID: "p", Tap: "tapkumot" + strings.Repeat("0", 4), MTU: 1400}}
	tap := nics[0].Tap
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", tap).Run() })
	for range 2 { // idempotent: an existing tap is reused
		if err := d.plugTaps(t.Context(), nics); err != nil {
			t.Fatal(err)
		}
	}
	mtu, err := os.ReadFile("/sys/class/net/" + tap + "/mtu")
	if err != nil || strings.TrimSpace(string(mtu)) != "1400" {
		t.Fatalf("tap %s: mtu %q %v", tap, mtu, err)
	}
	d.unplugTaps(t.Context(), nics)
	if _, err := os.Stat("/sys/class/net/" + tap); !os.IsNotExist(err) {
		t.Fatalf("tap %s still exists after unplug: %v", tap, err)
	}
	if err := d.plugTaps(t.Context(), []virt.NIC{{Tap: "bad/name"}}); err == nil {
		t.Error("invalid tap name accepted")
	}
}
