package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kumo-cloud/kumo/internal/qmp"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// ConsoleOutput returns up to the last maxBytes of the serial console
// (console.log.0 then console.log).
func (d *Driver) ConsoleOutput(ctx context.Context, uuid string, maxBytes int) ([]byte, error) {
	h, _, err := d.lock(uuid)
	if err != nil {
		return nil, err
	}
	defer h.unlock()
	d.rotateConsole(uuid)
	if maxBytes <= 0 {
		maxBytes = int(d.cfg.ConsoleLogMax)
	}
	cur := tail(d.path(uuid, "console.log"), int64(maxBytes))
	if len(cur) < maxBytes {
		old := tail(d.path(uuid, "console.log.0"), int64(maxBytes-len(cur)))
		cur = append(old, cur...)
	}
	return cur, nil
}

// tail reads the last n bytes of a file; a missing file is empty.
func tail(path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(fi.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	return b
}

// rotateConsole keeps the console log bounded: once console.log passes
// ConsoleLogMax its last half moves to console.log.0 and it is truncated.
// QEMU appends (O_APPEND), so its next write lands at the new end. Output
// written between the copy and the truncation is lost, which a console
// log can afford.
func (d *Driver) rotateConsole(uuid string) {
	p := d.path(uuid, "console.log")
	fi, err := os.Stat(p)
	if err != nil || fi.Size() <= d.cfg.ConsoleLogMax {
		return
	}
	keep := tail(p, d.cfg.ConsoleLogMax/2)
	if err := os.WriteFile(p+".0", keep, 0o600); err != nil {
		return
	}
	_ = os.Truncate(p, 0)
}

// Resources reports the host: CPUs, memory, the state directory's disk,
// and traits including the accelerator in use.
func (d *Driver) Resources(ctx context.Context) (virt.Resources, error) {
	accel, err := d.accelerator(ctx)
	if err != nil {
		return virt.Resources{}, err
	}
	mem, err := memTotalMB()
	if err != nil {
		return virt.Resources{}, err
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.cfg.StateDir, &fs); err != nil {
		return virt.Resources{}, fmt.Errorf("qemu resources: %w", err)
	}
	return virt.Resources{
		VCPUs:    runtime.NumCPU(),
		MemoryMB: mem,
		DiskGB:   int(fs.Blocks * uint64(fs.Bsize) / gib),
		Traits:   traits(accel),
	}, nil
}

// traits lists what every instance of this driver gets.
func traits(accel string) []string {
	return []string{
		"CUSTOM_KUMO_ACCEL_" + strings.ToUpper(accel),
		"HW_ARCH_X86_64",
		"COMPUTE_NET_VIF_MODEL_VIRTIO",
		"COMPUTE_STORAGE_BUS_VIRTIO",
		"COMPUTE_IMAGE_TYPE_QCOW2",
		"COMPUTE_IMAGE_TYPE_RAW",
	}
}

func memTotalMB() (int, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("qemu resources: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				return 0, fmt.Errorf("qemu resources: meminfo: %w", err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("qemu resources: no MemTotal in /proc/meminfo")
}

// Accelerator reports the accelerator instances start with, probing KVM
// once when configured as auto.
func (d *Driver) Accelerator(ctx context.Context) (string, error) { return d.accelerator(ctx) }

func (d *Driver) accelerator(ctx context.Context) (string, error) {
	d.accelOnce.Do(func() {
		switch d.cfg.Accel {
		case "tcg", "kvm":
			d.accel = d.cfg.Accel
		default:
			if err := probeKVM(ctx, d.cfg.QEMU, d.cfg.ProbeKernel); err != nil {
				d.log.Info("KVM unusable, using TCG", "reason", err)
				d.accel = "tcg"
			} else {
				d.accel = "kvm"
			}
		}
	})
	return d.accel, d.accelErr
}

// hostKernel returns the running kernel's image in /boot, else the newest
// one there, else "" (when none is readable).
func hostKernel() string {
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		if p := "/boot/vmlinuz-" + string(b); readable(p) {
			return p
		}
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	for i := len(ks) - 1; i >= 0; i-- {
		if readable(ks[i]) {
			return ks[i]
		}
	}
	return ""
}

func readable(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// probeKVM checks that KVM really runs a guest, not only that /dev/kvm
// exists: some hosts (nested, restricted) open it fine and then fail with
// emulation errors. Without a kernel it runs the firmware for a moment and
// asks QMP whether the VM is still running; with one it boots the kernel to
// its "no root" panic, which must end the process cleanly (panic=-1 with
// -no-reboot).
func probeKVM(ctx context.Context, qemuBin, kernel string) error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /dev/kvm: %w", err)
	}
	f.Close()
	dir, err := os.MkdirTemp("", "kumo-kvm-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sock := filepath.Join(dir, "qmp.sock")
	args := []string{"-no-user-config", "-nodefaults", "-display", "none", "-machine", "q35", "-accel", "kvm",
		"-cpu", "host", "-m", "64", "-no-reboot",
		"-chardev", "socket,id=qmp,path=" + escape(sock) + ",server=on,wait=off", "-mon", "chardev=qmp,mode=control"}
	if kernel != "" {
		args = append(args, "-kernel", kernel, "-append", "panic=-1 console=ttyS0", "-serial", "null")
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, qemuBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if kernel != "" {
		select {
		case err := <-exited:
			if err != nil || bytes.Contains(out.Bytes(), []byte("KVM")) {
				return fmt.Errorf("kvm probe boot: %v: %s", err, bytes.TrimSpace(out.Bytes()))
			}
			return nil
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("kvm probe boot did not finish: %s", bytes.TrimSpace(out.Bytes()))
		}
	}
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	var c *qmp.Client
	for c == nil {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("kvm probe: qemu exited: %v: %s", err, bytes.TrimSpace(out.Bytes()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		c, _ = qmp.Dial(ctx, sock)
	}
	defer c.Close()
	time.Sleep(500 * time.Millisecond)
	s, err := c.QueryStatus(ctx)
	if err != nil {
		return fmt.Errorf("kvm probe: %w", err)
	}
	if s.Status != qmp.StatusRunning {
		return fmt.Errorf("kvm probe: vm %s under kvm", s.Status)
	}
	return nil
}
