package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/qemu"
)

// qemuCloud starts kumo on QEMU with the test guest uploaded and returns
// the compute client, the guest image id, the data dir and the guest dir.
func qemuCloud(b *testing.B) (*gophercloud.ServiceClient, string, string, string) {
	guest := qemuGuest(b)
	dataDir := shortDataDir(b)
	k := Start(b, Options{DataDir: dataDir, Args: []string{"--compute-driver", "qemu"}})
	ctx := context.Background()
	p, err := k.Authenticate(ctx, k.AdminAuth())
	if err != nil {
		b.Fatal(err)
	}
	img := serviceClient(b, openstack.NewImageV2, p)
	nova := serviceClient(b, openstack.NewComputeV2, p)
	nova.Microversion = "2.45"
	return nova, uploadGuest(b, ctx, img, guest), dataDir, guest
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkQEMUBootThroughAPI measures, on a cached image: POST /servers
// → ACTIVE (QEMU running), → the guest's console line (read through
// os-getConsoleOutput), DELETE → everything gone; and, in the same run,
// the console line of the same guest started by plain QEMU. Run:
//
//	go test ./test/e2e -run X -bench QEMUBoot -benchtime 5x
func BenchmarkQEMUBootThroughAPI(b *testing.B) {
	nova, imageID, dataDir, guest := qemuCloud(b)
	ctx := context.Background()
	// Warm the image cache (the target is for cached images).
	bootAndDelete(b, ctx, nova, imageID, dataDir, "warm")
	var active, console, gone, plain []time.Duration
	for i := range b.N {
		a, c, g := bootAndDelete(b, ctx, nova, imageID, dataDir, fmt.Sprintf("bench-%d", i))
		active, console, gone = append(active, a), append(console, c), append(gone, g)
		plain = append(plain, plainQEMU(b, guest))
	}
	b.ReportMetric(float64(p50(active).Milliseconds()), "ms-p50-active")
	b.ReportMetric(float64(p50(console).Milliseconds()), "ms-p50-console")
	b.ReportMetric(float64(p50(plain).Milliseconds()), "ms-p50-plain-qemu-console")
	b.ReportMetric(float64(p50(gone).Milliseconds()), "ms-p50-delete-gone")
}

func bootAndDelete(b *testing.B, ctx context.Context, nova *gophercloud.ServiceClient, imageID, dataDir, name string) (active, console, gone time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: name, ImageRef: imageID, FlavorRef: "42", Networks: "none", ConfigDrive: ptr(true)}, nil).Extract()
	if err != nil {
		b.Fatal(err)
	}
	waitServer(b, ctx, nova, s.ID, "ACTIVE")
	active = time.Since(start)
	waitConsole(b, ctx, nova, s.ID, "kumo-guest: instance-id="+s.ID, 1)
	console = time.Since(start)
	start = time.Now()
	if err := servers.Delete(ctx, nova, s.ID).ExtractErr(); err != nil {
		b.Fatal(err)
	}
	for len(leftovers(dataDir, s.ID)) > 0 || !gophercloud.ResponseCodeIs(servers.Get(ctx, nova, s.ID).Err, 404) {
		if ctx.Err() != nil {
			b.Fatalf("server %s not cleaned: %v", s.ID, leftovers(dataDir, s.ID))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return active, console, time.Since(start)
}

// plainQEMU boots the guest with a minimal QEMU command line (TCG) and
// returns the time to its console line. Like the servers above it has a
// config drive and no network (without either, the guest would wait for
// a metadata service that is not there).
func plainQEMU(b *testing.B, guest string) time.Duration {
	dir := b.TempDir()
	log := filepath.Join(dir, "console.log")
	cmdline, _ := os.ReadFile(filepath.Join(guest, "cmdline"))
	files, err := qemu.ConfigDriveFiles(&virt.Instance{UUID: "cccccccc-0000-4000-8000-000000000001", Name: "plain", VCPUs: 1,
		MemoryMB: 128, ConfigDrive: true, Metadata: virt.Metadata{Hostname: "plain"}})
	if err != nil {
		b.Fatal(err)
	}
	iso := filepath.Join(dir, "config.iso")
	if err := qemu.WriteConfigDrive(iso, files); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "128",
		"-nodefaults", "-display", "none", "-serial", "file:"+log,
		"-kernel", filepath.Join(guest, "vmlinuz"), "-initrd", filepath.Join(guest, "initrd.img"),
		"-append", strings.TrimSpace(string(cmdline)),
		"-drive", "file="+iso+",format=raw,if=virtio,readonly=on")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for {
		out, _ := os.ReadFile(log)
		if bytes.Contains(out, []byte("kumo-guest: instance-id=")) {
			return time.Since(start)
		}
		if time.Since(start) > 3*time.Minute {
			b.Fatalf("plain QEMU: no console line: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkQEMUConcurrentBoots measures 10 servers created at once until
// all are ACTIVE (QEMU running), then deletes them.
func BenchmarkQEMUConcurrentBoots(b *testing.B) {
	nova, imageID, dataDir, _ := qemuCloud(b)
	ctx := context.Background()
	bootAndDelete(b, ctx, nova, imageID, dataDir, "warm")
	var all []time.Duration
	for range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		ids := make([]string, 10)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: fmt.Sprintf("c%d", i), ImageRef: imageID, FlavorRef: "42", Networks: "none"}, nil).Extract()
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = s.ID
				deadline := time.Now().Add(3 * time.Minute)
				for {
					got, err := servers.Get(ctx, nova, s.ID).Extract()
					if err == nil && got.Status == "ACTIVE" {
						return
					}
					if err != nil || got.Status == "ERROR" || time.Now().After(deadline) {
						b.Errorf("server %s: %v %+v", s.ID, err, got)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		all = append(all, time.Since(start))
		for _, id := range ids {
			if id != "" {
				_ = servers.Delete(ctx, nova, id).ExtractErr()
			}
		}
		for _, id := range ids {
			for id != "" && !gophercloud.ResponseCodeIs(servers.Get(ctx, nova, id).Err, 404) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	b.ReportMetric(float64(p50(all).Milliseconds()), "ms-p50-10-active")
}

// BenchmarkQEMUAgentRSS measures the memory of a `kumo agent compute`
// process (QEMU driver) managing 10 running guests (target ≤ 40 MB), and
// the CPU it spends on them over 30 s of heartbeats. The guests are the
// test guest under TCG, 128 MiB each, booted through the API onto the
// agent's host. Run:
//
//	go test ./test/e2e -run X -bench QEMUAgentRSS -benchtime 1x
func BenchmarkQEMUAgentRSS(b *testing.B) {
	guest := qemuGuest(b)
	port, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	k := Start(b, Options{DataDir: shortDataDir(b), Args: []string{"--compute-driver", "qemu", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", port)}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	startRemoteAgent(b, k, port, "rss1", shortDataDir(b), "qemu")
	p, err := k.Authenticate(ctx, k.AdminAuth())
	if err != nil {
		b.Fatal(err)
	}
	img := serviceClient(b, openstack.NewImageV2, p)
	nova := serviceClient(b, openstack.NewComputeV2, p)
	nova.Microversion = "2.74"
	waitComputeUp(b, ctx, nova, "rss1")
	imageID := uploadGuest(b, ctx, img, guest)
	v, _ := agentPID.Load("rss1")
	pid := v.(int)
	b.ReportMetric(procMem(b, pid, "VmRSS:")/1024, "MB-agent-rss-no-guests")
	for range b.N {
		var ids []string
		for i := range 10 {
			s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: fmt.Sprintf("rss%d", i), ImageRef: imageID, FlavorRef: "42",
				Networks: "none", HypervisorHostname: "rss1", ConfigDrive: ptr(true)}, nil).Extract()
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, s.ID)
		}
		for _, id := range ids {
			waitServer(b, ctx, nova, id, "ACTIVE")
		}
		cpu0 := procCPU(b, pid)
		time.Sleep(30 * time.Second) // three heartbeats, each reading every guest's state over QMP
		cpu := procCPU(b, pid) - cpu0
		rss, hwm := procMem(b, pid, "VmRSS:"), procMem(b, pid, "VmHWM:")
		b.ReportMetric(rss/1024, "MB-agent-rss")
		b.ReportMetric(hwm/1024, "MB-agent-rss-peak")
		b.ReportMetric(float64(cpu.Milliseconds())/30, "agent-cpu-ms/s")
		for _, id := range ids {
			_ = servers.Delete(ctx, nova, id).ExtractErr()
		}
		for _, id := range ids {
			for !gophercloud.ResponseCodeIs(servers.Get(ctx, nova, id).Err, 404) {
				if ctx.Err() != nil {
					b.Fatalf("server %s not deleted", id)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// procMem reads a kB field of /proc/PID/status.
func procMem(b *testing.B, pid int, field string) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// procCPU is the user+system CPU time of a process.
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
