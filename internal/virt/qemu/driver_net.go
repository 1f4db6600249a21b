package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// plugTaps creates the instance's tap devices that do not exist yet
// (persistent, so they outlive QEMU restarts and a network agent can find
// them), brings them up with their MTU and, when a NIC names a bridge,
// puts them on it. With UserNetworking no taps are used.
func (d *Driver) plugTaps(ctx context.Context, nics []virt.NIC) error {
	if d.cfg.UserNetworking {
		return nil
	}
	for _, n := range nics {
		if n.Tap == "" {
			continue
		}
		if !validTap(n.Tap) {
			return fmt.Errorf("qemu: tap name %q is not a valid device name", n.Tap)
		}
		if _, err := os.Stat("/sys/class/net/" + n.Tap); errors.Is(err, os.ErrNotExist) {
			if err := ip(ctx, "tuntap", "add", "dev", n.Tap, "mode", "tap"); err != nil {
				return fmt.Errorf("qemu: create tap for port %s: %w", n.PortID, err)
			}
		}
		args := []string{"link", "set", "dev", n.Tap, "up"}
		if n.MTU > 0 {
			args = append(args, "mtu", strconv.Itoa(n.MTU))
		}
		if n.Bridge != "" {
			args = append(args, "master", n.Bridge)
		}
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("qemu: set up tap %s: %w", n.Tap, err)
		}
	}
	return nil
}

// unplugTaps deletes the instance's taps (best effort: a tap already gone
// is fine).
func (d *Driver) unplugTaps(ctx context.Context, nics []virt.NIC) {
	if d.cfg.UserNetworking {
		return
	}
	for _, n := range nics {
		if n.Tap == "" || !validTap(n.Tap) {
			continue
		}
		if _, err := os.Stat("/sys/class/net/" + n.Tap); err != nil {
			continue
		}
		if err := ip(ctx, "link", "del", "dev", n.Tap); err != nil {
			d.log.Warn("delete tap", "tap", n.Tap, "err", err)
		}
	}
}

// validTap accepts Linux interface names (at most 15 bytes, no slashes
// or spaces).
func validTap(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == ':' || r > '~' {
			return false
		}
	}
	return true
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %v: %w: %s", args, err, bytes.TrimSpace(out))
	}
	return nil
}

// ConsoleSocket implements virt.Consoler: the serial port's or the VNC
// display's unix socket of a running instance.
func (d *Driver) ConsoleSocket(ctx context.Context, uuid, kind string) (string, error) {
	var name string
	switch kind {
	case "serial":
		name = "serial.sock"
	case "vnc":
		name = "vnc.sock"
	default:
		return "", fmt.Errorf("console type %q: %w", kind, virt.ErrUnsupported)
	}
	if d.cfg.NoConsoles {
		return "", fmt.Errorf("consoles are disabled on this host: %w", virt.ErrUnsupported)
	}
	h, _, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return "", err
	}
	defer h.unlock()
	if st != virt.Running && st != virt.Paused {
		return "", errState("console", uuid, st)
	}
	p := d.path(uuid, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("qemu console %s: %w", uuid, err)
	}
	return p, nil
}

var _ virt.Consoler = (*Driver)(nil)
