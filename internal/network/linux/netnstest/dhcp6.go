package netnstest

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/vishvananda/netns"
)

// WaitLinkLocal waits until dev's link-local address in ns has passed
// duplicate address detection: a tentative address can neither be bound
// nor answer.
func WaitLinkLocal(t testing.TB, ns, dev string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		out := Sh(t, "ip", "-n", ns, "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
		if strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s in %s: no usable link-local address", dev, ns)
}

// DHCP6Client is a DHCPv6 client (the dhcp library's nclient6) on eth0
// of the namespace ns, closed when the test ends. Debian's busybox has no
// udhcpc6.
func DHCP6Client(t testing.TB, ns string) *nclient6.Client {
	t.Helper()
	WaitLinkLocal(t, ns, "eth0")
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := func() (*nclient6.Client, error) {
		// The socket is made inside ns; the thread is then let go only
		// if it is back in its own namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			return nil, err
		}
		c, cerr := nclient6.New("eth0", nclient6.WithTimeout(time.Second), nclient6.WithRetry(5))
		if err := netns.Set(orig); err != nil {
			return nil, err // the thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		return c, cerr
	}()
	if err != nil {
		t.Fatalf("dhcpv6 client in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
