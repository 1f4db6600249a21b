package ra

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/kumo-cloud/kumo/internal/network/linux"
)

// TestMessage checks the exact bytes of the advertisement per mode
// (RFC 4861 4.2, 4.6.1, 4.6.2, 4.6.4).
func TestMessage(t *testing.T) {
	mac := net.HardwareAddr{0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01}
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	const (
		// type 134, code 0, checksum 0 (the kernel fills it), hop limit 64
		head = "86000000" + "40"
		// router lifetime 1800 s, reachable time, retrans timer
		times = "0708" + "00000000" + "00000000"
		// prefix information: type 3, length 4, /64, flags, valid 86400 s,
		// preferred 14400 s, reserved, 2001:db8:1::
		pi     = "0304" + "40"
		piTail = "00015180" + "00003840" + "00000000" + "20010db8000100000000000000000000"
		mtu    = "0501" + "0000" + "000005aa" // MTU 1450
		sll    = "0101" + "fa163e000001"      // source link-layer address
	)
	for _, tc := range []struct {
		mode         string
		flags, pflag string
	}{
		{ModeSLAAC, "00", "c0"},     // L, A
		{ModeStateless, "40", "c0"}, // O; L, A
		{ModeStateful, "c0", "80"},  // M, O; L only
	} {
		b, err := ndp.MarshalMessage(Message(Config{Prefixes: []Prefix{{pfx, tc.mode}}, MTU: 1450}, mac))
		if err != nil {
			t.Fatal(err)
		}
		want := head + tc.flags + times + pi + tc.pflag + piTail + mtu + sll
		if got := hex.EncodeToString(b); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.mode, got, want)
		}
	}
}

// TestKernelSLAAC: a host behind a router's interface configures its
// EUI-64 address from the advertisements (accept_ra, autoconf), the
// address the networking service gives a port of a slaac subnet.
func TestKernelSLAAC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces (CI runs it as root)")
	}
	tag := strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	rtr, cli := "kra"+tag+"-r", "kra"+tag+"-c"
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, ns := range []string{rtr, cli} {
		h, err := linux.EnsureNamedNetns(ns)
		if err != nil {
			t.Skipf("kernel test: cannot create a network namespace: %v", err)
		}
		defer func(ns string) { h.Close(); _ = linux.DeleteNamedNetns(ns) }(ns)
	}
	run("ip", "-n", rtr, "link", "add", "qr-test", "type", "veth", "peer", "name", "eth0", "netns", cli)
	run("ip", "-n", cli, "link", "set", "eth0", "address", "fa:16:3e:00:00:0a")
	run("ip", "netns", "exec", cli, "sh", "-c", "echo 1 >/proc/sys/net/ipv6/conf/eth0/accept_ra && echo 1 >/proc/sys/net/ipv6/conf/eth0/autoconf")
	run("ip", "-n", rtr, "addr", "add", "2001:db8:1::1/64", "dev", "qr-test")
	run("ip", "-n", rtr, "link", "set", "qr-test", "up")
	run("ip", "-n", cli, "link", "set", "eth0", "up")

	h, err := linux.EnsureNamedNetns(rtr)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, h, Config{Interface: "qr-test", MTU: 1400, Interval: time.Hour,
			Prefixes: []Prefix{{netip.MustParsePrefix("2001:db8:1::/64"), ModeSLAAC}}}, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	// The client's solicitation at link-up (or the first advertisement)
	// configures the address; DAD takes a second.
	want := "2001:db8:1:0:f816:3eff:fe00:a/64"
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := run("ip", "-n", cli, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		if strings.Contains(out, want) && !strings.Contains(out, "tentative") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SLAAC address %s on the client:\n%s", want, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := run("ip", "-n", cli, "-6", "route", "show", "default"); !strings.Contains(out, "via fe80::") {
		t.Fatalf("no default route from the advertisement: %q", out)
	}
	// The MTU option sets the interface's IPv6 MTU.
	if out := run("ip", "netns", "exec", cli, "cat", "/proc/sys/net/ipv6/conf/eth0/mtu"); strings.TrimSpace(out) != "1400" {
		t.Fatalf("MTU option not applied: IPv6 MTU %s", out)
	}
}
