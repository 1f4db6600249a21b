package server

import (
	"context"
	"log/slog"
	"os/exec"
	"time"
)

// ComputeDriver resolves the configured compute driver: "auto" is qemu
// when qemu-system-x86_64 and qemu-img are installed and QEMU runs, else
// fake. The choice is logged, and a fake driver always with a warning:
// its servers are simulated.
func ComputeDriver(configured string, log *slog.Logger) string {
	driver := configured
	if configured == "auto" {
		if reason := qemuUnusable(); reason != "" {
			log.Warn("compute driver auto: QEMU cannot run here, using the fake driver", "reason", reason)
			driver = "fake"
		} else {
			log.Info("compute driver auto: using qemu (accelerator chosen by qemu_accel, KVM verified by a probe)")
			driver = "qemu"
		}
	}
	if driver == "fake" {
		log.Warn("compute driver is fake: servers are simulated, no real VMs run (use --compute-driver qemu)")
	}
	return driver
}

// qemuUnusable says why QEMU cannot be used, or "" when it can.
func qemuUnusable() string {
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "-version").CombinedOutput(); err != nil {
		return "qemu-system-x86_64 -version: " + err.Error() + ": " + string(out)
	}
	return ""
}
