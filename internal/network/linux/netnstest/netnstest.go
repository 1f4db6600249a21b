// Package netnstest builds throwaway network namespaces for the kernel
// tests of the Linux network code: every "host" and "VM" is a namespace,
// joined by veth pairs, and all are deleted when the test ends. No
// traffic leaves them. The tests need root (CI runs them as root) and
// skip without it.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Require skips the test unless it runs as root with ip and the other
// programs bins (busybox for Listen and Reach) in PATH.
func Require(t testing.TB, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root (network namespaces, nftables)")
	}
	for _, bin := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test: needs %s in PATH", bin)
		}
	}
}

// Sh runs a command and returns its output; the test fails with the
// output when it fails.
func Sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Tag is a short random hex tag that keeps the namespaces of parallel
// runs apart.
func Tag() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Netns adds the named namespace with its loopback up; it is deleted when
// the test ends.
func Netns(t testing.TB, name string) {
	t.Helper()
	Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Sh(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// Veth joins namespace ns to host by a veth pair: eth0 in ns (left
// down, to be addressed by the caller) and hostEnd in host, up and, when
// bridge is not "", in that bridge.
func Veth(t testing.TB, host, hostEnd, ns, bridge string) {
	t.Helper()
	Sh(t, "ip", "-n", host, "link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", ns)
	if bridge != "" {
		Sh(t, "ip", "-n", host, "link", "set", hostEnd, "master", bridge)
	}
	Sh(t, "ip", "-n", host, "link", "set", hostEnd, "up")
}

// Listen serves "hi" on TCP port inside ns (busybox nc) until the test
// ends.
func Listen(t testing.TB, ns string, port int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-ll", "-p", fmt.Sprint(port), "-e", "/bin/echo", "hi")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(100 * time.Millisecond)
}

// Reach reports whether ns can open a TCP connection to ip:port and read
// Listen's greeting within 2 s.
func Reach(ns, ip string, port int) bool {
	out, _ := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-w", "2", ip, fmt.Sprint(port)).CombinedOutput()
	return strings.Contains(string(out), "hi")
}
