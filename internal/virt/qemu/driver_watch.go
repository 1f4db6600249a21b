package qemu

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// Exit watching (virt.ExitWatcher). Every QEMU process the driver starts
// or finds running is watched through a pidfd, which the Go runtime's
// poller wakes when the process ends: no thread and no polling per guest.
// Exits the driver causes (power off, reboot, resize, suspend, destroy)
// are announced on the instance's handle first (expectExit) and not
// reported; anything else (the guest powered itself off, QEMU crashed or
// was killed) is.

// WatchExits reports guests that end on their own to fn until ctx ends.
func (d *Driver) WatchExits(ctx context.Context, fn func(uuid string)) {
	d.mu.Lock()
	d.exitFn, d.watchCtx = fn, ctx
	d.mu.Unlock()
	ids, err := d.List(ctx)
	if err != nil {
		d.log.Warn("watch guests", "err", err)
		return
	}
	for _, id := range ids {
		if pid, ok := d.pid(id); ok {
			d.watchPID(id, pid)
		}
	}
}

// watchPID watches one QEMU process, if anybody listens.
func (d *Driver) watchPID(uuid string, pid int) {
	d.mu.Lock()
	fn, ctx := d.exitFn, d.watchCtx
	d.mu.Unlock()
	if fn == nil || ctx.Err() != nil {
		return
	}
	h := d.handle(uuid)
	marker := d.path(uuid, "qmp.sock")
	go func() {
		if err := waitExit(ctx, pid, marker); err != nil {
			return
		}
		if h.expected.Load() == int64(pid) {
			return
		}
		d.log.Warn("guest ended outside Kumo", "instance", uuid, "pid", pid)
		fn(uuid)
	}()
}

// expectExit marks pid's coming exit as the driver's own doing.
func (h *handle) expectExit(pid int) { h.expected.Store(int64(pid)) }

// waitExit returns nil once process pid (the QEMU owning marker) has
// ended, or ctx's error.
func waitExit(ctx context.Context, pid int, marker string) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return pollExit(ctx, pid, marker)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	if !alive(pid, marker) { // gone, or the pid is another program's now
		return nil
	}
	// A file the poller cannot take (old kernel) fails this; poll then.
	if f.SetReadDeadline(time.Time{}) != nil {
		return pollExit(ctx, pid, marker)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return pollExit(ctx, pid, marker)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	// The pidfd becomes readable when the process exits.
	err = rc.Read(func(uintptr) bool { return !alive(pid, "") })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return pollExit(ctx, pid, marker)
	}
	return nil
}

// pollExit is waitExit without pidfd: a look every second.
func pollExit(ctx context.Context, pid int, marker string) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for alive(pid, marker) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

var _ virt.ExitWatcher = (*Driver)(nil)
