package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted (as by
// `ip netns add`).
const NetnsDir = "/var/run/netns"

// InNetns runs fn on a thread switched into ns, and switches back. Sockets
// fn opens stay in ns: that is how the DHCP and metadata services listen
// inside a network's namespace.
func InNetns(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: do not let Go reuse it.
		runtime.UnlockOSThread()
		return errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
	}
	return ferr
}

// EnsureNamedNetns opens the named namespace, creating it when missing
// (like `ip netns add`, without moving the caller into it).
func EnsureNamedNetns(name string) (netns.NsHandle, error) {
	if h, err := netns.GetFromName(name); err == nil {
		return h, nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		runtime.UnlockOSThread()
		if err == nil {
			h.Close()
		}
		return netns.None(), fmt.Errorf("restore netns: %w", serr)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("create netns %s: %w", name, err)
	}
	return h, nil
}

// DeleteNamedNetns removes a named namespace; a missing one is fine.
func DeleteNamedNetns(name string) error {
	p := filepath.Join(NetnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
}

// ListNamedNetns lists named namespaces starting with prefix.
func ListNamedNetns(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
