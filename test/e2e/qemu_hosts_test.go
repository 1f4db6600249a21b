package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/remoteconsoles"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
)

// TestQEMUTwoHosts runs two QEMU compute hosts on this machine: the one
// inside `kumo serve` ("compute") and a `kumo agent compute` process
// ("remote1") that reaches the control plane only through NATS and the
// image API. One guest, under TCG:
//
//   - resize across hosts: the guest's root disk moves with it (the marker
//     the guest wrote on its first boot is still there), and revert starts
//     the guest the source kept, same disk;
//   - cold migration to remote1, confirmed: the source keeps nothing;
//   - QEMU killed (SIGKILL) on remote1: the server is SHUTOFF within
//     seconds, with a "stop" instance action;
//   - the serial console of the guest on remote1 through the API's proxy;
//   - live migration to compute and back: disks mirrored over NBD and
//     memory copied, the guest keeps its boot id and a word it wrote to
//     its disk just before;
//   - delete leaves nothing on either host.
func TestQEMUTwoHosts(t *testing.T) {
	guest := qemuGuest(t)
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := shortDataDir(t)
	k := Start(t, Options{DataDir: dataDir, Args: []string{"--compute-driver", "qemu", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", port)}})
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	remoteDir := shortDataDir(t)
	stopRemote := startRemoteAgent(t, k, port, "remote1", remoteDir, "qemu")

	p := k.adminProvider(t, ctx)
	img := serviceClient(t, openstack.NewImageV2, p)
	nova := serviceClient(t, openstack.NewComputeV2, p)
	nova.Microversion = "2.74" // hypervisor_hostname at create; migrate to a host (2.56)
	waitComputeUp(t, ctx, nova, "remote1")
	imageID := uploadGuest(t, ctx, img, guest)

	step := func(name string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
	}
	host := func(id string) string {
		var body struct {
			Server map[string]any `json:"server"`
		}
		if _, err := nova.Get(ctx, nova.ServiceURL("servers", id), &body, nil); err != nil {
			t.Fatal(err)
		}
		h, _ := body.Server["OS-EXT-SRV-ATTR:host"].(string)
		return h
	}
	var id, marker string
	step("boot on compute", func() {
		s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "mover", ImageRef: imageID, FlavorRef: "42",
			Networks: "none", HypervisorHostname: "compute", ConfigDrive: ptr(true)}, nil).Extract()
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		id = s.ID
		waitServer(t, ctx, nova, id, "ACTIVE")
		out := waitConsole(t, ctx, nova, id, "kumo-guest: instance-id="+id, 1)
		m := regexp.MustCompile(`root-disk marker=(kumo-root-[0-9a-f]+) new`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the guest wrote no marker on its root disk:\n%s", out)
		}
		marker = m[1]
	})
	kept := "root-disk marker=" + marker + " kept"

	// Only remote1 takes new guests: the resize has to cross hosts.
	setServiceStatus(t, ctx, nova, "compute", services.ServiceDisabled)
	action := func(name, status string, do func() error) {
		t.Helper()
		step(name, func() {
			if err := do(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			waitServer(t, ctx, nova, id, status)
		})
	}
	action("resize to remote1", "VERIFY_RESIZE", func() error {
		return servers.Resize(ctx, nova, id, servers.ResizeOpts{FlavorRef: "84"}).ExtractErr()
	})
	if h := host(id); h != "remote1" {
		t.Fatalf("resized onto %q, want remote1", h)
	}
	step("disk moved with the guest", func() { waitConsole(t, ctx, nova, id, kept, 1) })
	if ps := qemuProcesses(id); len(ps) != 1 || !cmdlineHas(ps[0], "-m", "192") {
		t.Errorf("after resize to 192 MiB: QEMU processes %v", ps)
	}
	action("revert resize", "ACTIVE", func() error { return servers.RevertResize(ctx, nova, id).ExtractErr() })
	if h := host(id); h != "compute" {
		t.Fatalf("reverted onto %q, want compute", h)
	}
	step("source guest back, same disk", func() { waitConsole(t, ctx, nova, id, kept, 1) })
	if l := leftoversOn(remoteDir, id); len(l) > 0 {
		t.Errorf("revert left on remote1: %v", l)
	}
	setServiceStatus(t, ctx, nova, "compute", services.ServiceEnabled)

	action("cold migrate to remote1", "VERIFY_RESIZE", func() error {
		r, err := nova.Post(ctx, nova.ServiceURL("servers", id, "action"), map[string]any{"migrate": map[string]any{"host": "remote1"}}, nil,
			&gophercloud.RequestOpts{OkCodes: []int{202}})
		if err == nil {
			r.Body.Close()
		}
		return err
	})
	action("confirm", "ACTIVE", func() error { return servers.ConfirmResize(ctx, nova, id).ExtractErr() })
	if l := leftoversOn(dataDir, id); len(l) > 0 {
		t.Errorf("confirmed migration left on compute: %v", l)
	}
	step("disk moved again", func() { waitConsole(t, ctx, nova, id, kept, 1) })

	step("QEMU killed: SHUTOFF", func() {
		ps := qemuProcesses(id)
		if len(ps) != 1 {
			t.Fatalf("QEMU processes of %s: %v", id, ps)
		}
		pid, _ := strconv.Atoi(ps[0])
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		waitServer(t, wctx, nova, id, "SHUTOFF")
		t.Logf("SHUTOFF %v after the kill", time.Since(killed).Round(time.Millisecond))
		if got := actionNames(t, ctx, nova, id); !strings.HasPrefix(got, "stop,") {
			t.Errorf("instance actions %s: want a stop first", got)
		}
	})
	action("start", "ACTIVE", func() error { return servers.Start(ctx, nova, id).ExtractErr() })
	step("boot after start", func() { waitConsole(t, ctx, nova, id, kept, 2) })
	step("serial console on remote1", func() { checkSerialConsole(t, ctx, nova, id) })
	step("VNC console on remote1", func() { checkVNCConsole(t, ctx, nova, id) })

	// Live migration there and back: disks mirrored, memory copied, the
	// guest never restarts (same boot id), and a word it wrote to its root
	// disk just before is read back from the new host's disk.
	note := fmt.Sprintf("live-%d", time.Now().UnixNano())
	var bootID string
	step("guest writes a note", func() {
		serialExchange(t, ctx, nova, id, "kumo-note "+note, `kumo-guest: noted`)
		bootID = serialExchange(t, ctx, nova, id, "kumo-status", `status boot=([0-9a-f]+) note=`)[1]
	})
	for _, to := range []string{"compute", "remote1"} {
		from := host(id)
		action("live-migrate to "+to, "ACTIVE", func() error {
			r, err := nova.Post(ctx, nova.ServiceURL("servers", id, "action"),
				map[string]any{"os-migrateLive": map[string]any{"host": to, "block_migration": "auto"}}, nil,
				&gophercloud.RequestOpts{OkCodes: []int{202}})
			if err == nil {
				r.Body.Close()
			}
			return err
		})
		if h := host(id); h != to {
			t.Fatalf("live-migrated onto %q, want %s", h, to)
		}
		dir := map[string]string{"compute": dataDir, "remote1": remoteDir}[from]
		if l := leftoversOn(dir, id); len(l) > 0 {
			t.Errorf("live migration left on %s: %v", from, l)
		}
		step("same boot, same disk on "+to, func() {
			defer func() {
				if t.Failed() {
					out, err := servers.ShowConsoleOutput(ctx, nova, id, servers.ShowConsoleOutputOpts{}).Extract()
					t.Logf("console on %s since the migration (%v):\n%s", to, err, out)
				}
			}()
			m := serialExchange(t, ctx, nova, id, "kumo-status", `status boot=([0-9a-f]+) note=(\S+) up=`)
			if m[1] != bootID || m[2] != note {
				t.Fatalf("after the live migration to %s: boot %s note %s, want boot %s note %s (a restarted guest or a lost disk)",
					to, m[1], m[2], bootID, note)
			}
		})
		if st := lastMigrationStatus(t, ctx, nova, id); st != "completed" {
			t.Errorf("live migration to %s: migration status %q", to, st)
		}
	}

	// remote1 goes down (its agent stops; the guest runs on, unmanaged):
	// evacuation cannot copy its disk and rebuilds the guest from the
	// image on compute, which writes a fresh marker. The agent back, the
	// stale guest on remote1 is destroyed.
	step("remote1 down", func() {
		stopRemote()
		setServiceForcedDown(t, ctx, nova, "remote1", true)
	})
	action("evacuate to compute", "ACTIVE", func() error {
		r, err := nova.Post(ctx, nova.ServiceURL("servers", id, "action"), map[string]any{"evacuate": map[string]any{}}, nil,
			&gophercloud.RequestOpts{OkCodes: []int{200}})
		if err == nil {
			r.Body.Close()
		}
		return err
	})
	if h := host(id); h != "compute" {
		t.Fatalf("evacuated onto %q, want compute", h)
	}
	step("evacuated guest rebuilt from the image", func() {
		out := waitConsole(t, ctx, nova, id, "kumo-guest: instance-id="+id, 1)
		if strings.Contains(out, marker) || !strings.Contains(out, "root-disk marker=kumo-root-") {
			t.Errorf("evacuated guest's console (want a fresh disk, not marker %s):\n%s", marker, out)
		}
	})
	step("remote1 back: stale guest destroyed", func() {
		setServiceForcedDown(t, ctx, nova, "remote1", false)
		startRemoteAgent(t, k, port, "remote1", remoteDir, "qemu")
		for len(leftoversOn(remoteDir, id)) > 0 {
			if ctx.Err() != nil {
				t.Fatalf("stale guest on remote1: %v", leftoversOn(remoteDir, id))
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	step("delete", func() {
		if err := servers.Delete(ctx, nova, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, ctx, nova, id)
	})
	if l := append(leftoversOn(dataDir, id), leftoversOn(remoteDir, id)...); len(l) > 0 {
		t.Fatalf("delete left behind: %v", l)
	}
}

// setServiceForcedDown forces host's compute service down (or lifts it).
func setServiceForcedDown(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, host string, down bool) {
	t.Helper()
	pages, err := services.List(nova, services.ListOpts{Binary: "nova-compute", Host: host}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := services.ExtractServices(pages)
	if len(list) != 1 {
		t.Fatalf("compute services of %s: %+v", host, list)
	}
	r, err := nova.Put(ctx, nova.ServiceURL("os-services", list[0].ID), map[string]any{"forced_down": down}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		t.Fatalf("service %s forced_down=%v: %v", host, down, err)
	}
	r.Body.Close()
}

// waitComputeUp waits until host's compute service is up.
func waitComputeUp(t testing.TB, ctx context.Context, nova *gophercloud.ServiceClient, host string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		pages, err := services.List(nova, services.ListOpts{Binary: "nova-compute", Host: host}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := services.ExtractServices(pages)
		if len(list) == 1 && list[0].State == "up" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("compute service of %s never came up: %+v", host, list)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// setServiceStatus enables or disables host's compute service.
func setServiceStatus(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, host string, st services.ServiceStatus) {
	t.Helper()
	pages, err := services.List(nova, services.ListOpts{Binary: "nova-compute", Host: host}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := services.ExtractServices(pages)
	if len(list) != 1 {
		t.Fatalf("compute services of %s: %+v", host, list)
	}
	if _, err := services.Update(ctx, nova, list[0].ID, services.UpdateOpts{Status: st}).Extract(); err != nil {
		t.Fatalf("service %s %s: %v", host, st, err)
	}
}

// actionNames lists a server's instance actions, newest first.
func actionNames(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, id string) string {
	t.Helper()
	var body struct {
		Actions []struct {
			Action string `json:"action"`
		} `json:"instanceActions"`
	}
	if _, err := nova.Get(ctx, nova.ServiceURL("servers", id, "os-instance-actions"), &body, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range body.Actions {
		names = append(names, a.Action)
	}
	return strings.Join(names, ",")
}

// leftoversOn is leftovers for the host whose data directory is dir:
// another host on this machine may run the same guest.
func leftoversOn(dir, id string) []string {
	var out []string
	for _, l := range leftovers(dir, id) {
		if pid, ok := strings.CutPrefix(l, "process "); ok {
			if b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline")); err != nil || !strings.Contains(string(b), dir+"/") {
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

// serialExchange types a line into the guest's serial console through the
// API's console proxy and returns the first match of re in what comes
// back.
func serialExchange(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, id, line, re string) []string {
	t.Helper()
	url := consoleURL(t, ctx, nova, id, remoteconsoles.ConsoleProtocolSerial, remoteconsoles.ConsoleTypeSerial)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(cctx, url, nil)
	if err != nil {
		t.Fatalf("dial serial console: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(cctx, websocket.MessageBinary, []byte(line+"\r")); err != nil {
		t.Fatal(err)
	}
	rx := regexp.MustCompile(re)
	var got []byte
	for {
		if m := rx.FindStringSubmatch(string(got)); m != nil {
			ws.Close(websocket.StatusNormalClosure, "")
			return m
		}
		_, b, err := ws.Read(cctx)
		if err != nil {
			t.Fatalf("serial console: no %q after %q (%v); read %q", re, line, err, got)
		}
		got = append(got, b...)
	}
}

// lastMigrationStatus is the status of the server's newest migration.
func lastMigrationStatus(t *testing.T, ctx context.Context, nova *gophercloud.ServiceClient, id string) string {
	t.Helper()
	var body struct {
		Migrations []struct {
			ID     int    `json:"id"`
			Status string `json:"status"`
		} `json:"migrations"`
	}
	if _, err := nova.Get(ctx, nova.ServiceURL("os-migrations")+"?instance_uuid="+id, &body, nil); err != nil {
		t.Fatal(err)
	}
	st, last := "", -1
	for _, m := range body.Migrations {
		if m.ID > last {
			st, last = m.Status, m.ID
		}
	}
	return st
}
