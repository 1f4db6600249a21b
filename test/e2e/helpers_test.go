package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// The setup steps most tests share: an admin session, an image with
// data, a network with a subnet, and waiting for a server or a volume to
// reach a status.

// adminProvider authenticates as the cloud's admin; the test fails when
// that does not work.
func (k *Kumo) adminProvider(t testing.TB, ctx context.Context) *gophercloud.ProviderClient {
	t.Helper()
	p, err := k.Authenticate(ctx, k.AdminAuth())
	if err != nil {
		t.Fatalf("authenticate as admin: %v", err)
	}
	return p
}

// newImage creates an image with o (container format "bare" unless o
// says otherwise), uploads data to it and returns its id.
func newImage(t testing.TB, ctx context.Context, glance *gophercloud.ServiceClient, o images.CreateOpts, data []byte) string {
	t.Helper()
	if o.ContainerFormat == "" {
		o.ContainerFormat = "bare"
	}
	im, err := images.Create(ctx, glance, o).Extract()
	if err != nil {
		t.Fatalf("image create %s: %v", o.Name, err)
	}
	if err := imagedata.Upload(ctx, glance, im.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("image upload %s: %v", o.Name, err)
	}
	return im.ID
}

// newRawImage is an active raw image of 64 KiB of zeros, enough for the
// fake driver to boot.
func newRawImage(t testing.TB, ctx context.Context, glance *gophercloud.ServiceClient, name string) string {
	t.Helper()
	return newImage(t, ctx, glance, images.CreateOpts{Name: name, DiskFormat: "raw"}, make([]byte, 64<<10))
}

// newNetwork creates a network named name with one IPv4 subnet of cidr.
func newNetwork(t testing.TB, ctx context.Context, neutron *gophercloud.ServiceClient, name, cidr string) *networks.Network {
	t.Helper()
	n, err := networks.Create(ctx, neutron, networks.CreateOpts{Name: name}).Extract()
	if err != nil {
		t.Fatalf("network create %s: %v", name, err)
	}
	if _, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4}).Extract(); err != nil {
		t.Fatalf("subnet create %s: %v", cidr, err)
	}
	return n
}

// poll calls check every interval until it reports done, failing the
// test with check's last word when ctx ends. check may fail the test
// itself (an unexpected error).
func poll(t testing.TB, ctx context.Context, interval time.Duration, check func() (done bool, now string)) {
	t.Helper()
	for {
		done, now := check()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(now)
		case <-time.After(interval):
		}
	}
}

// waitServer polls until the server reaches status with no task running,
// failing on ERROR unless that is what is awaited, or when ctx ends.
func waitServer(t testing.TB, ctx context.Context, c *gophercloud.ServiceClient, id, status string) *servers.Server {
	t.Helper()
	var s *servers.Server
	poll(t, ctx, 100*time.Millisecond, func() (bool, string) {
		var err error
		if s, err = servers.Get(ctx, c, id).Extract(); err != nil {
			t.Fatalf("get server %s: %v", id, err)
		}
		if s.Status == "ERROR" && status != "ERROR" {
			t.Fatalf("server %s went to ERROR awaiting %s: %+v", id, status, s.Fault)
		}
		return s.Status == status && s.TaskState == "", fmt.Sprintf("server %s: still %s/%s awaiting %s", id, s.Status, s.TaskState, status)
	})
	return s
}

// waitServerGone polls until the server is not found, failing when ctx
// ends.
func waitServerGone(t testing.TB, ctx context.Context, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	poll(t, ctx, 50*time.Millisecond, func() (bool, string) {
		s, err := servers.Get(ctx, c, id).Extract()
		return gophercloud.ResponseCodeIs(err, 404), fmt.Sprintf("server %s not gone: %+v %v", id, s, err)
	})
}

// waitVolume polls until the volume has status, failing when ctx ends.
func waitVolume(t testing.TB, ctx context.Context, cinder *gophercloud.ServiceClient, id, status string) *volumes.Volume {
	t.Helper()
	var v *volumes.Volume
	poll(t, ctx, 100*time.Millisecond, func() (bool, string) {
		var err error
		if v, err = volumes.Get(ctx, cinder, id).Extract(); err != nil {
			t.Fatalf("volume %s: %v", id, err)
		}
		return v.Status == status, fmt.Sprintf("volume %s is %s, want %s", id, v.Status, status)
	})
	return v
}

// waitVolumeGone polls until the volume is not found, failing when ctx
// ends.
func waitVolumeGone(t testing.TB, ctx context.Context, cinder *gophercloud.ServiceClient, id string) {
	t.Helper()
	poll(t, ctx, 100*time.Millisecond, func() (bool, string) {
		v, err := volumes.Get(ctx, cinder, id).Extract()
		return gophercloud.ResponseCodeIs(err, 404), fmt.Sprintf("volume %s still there: %+v %v", id, v, err)
	})
}

// startRemoteAgent runs `kumo agent compute` with driver (fake, qemu) as
// host, its state under dir, joining k through its NATS at natsPort,
// until the test ends or stop is called (SIGTERM: the guests stay). The agent's pid is agentPID[host].
func startRemoteAgent(t testing.TB, k *Kumo, natsPort int, host, dir, driver string) (stop func()) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(kumoBin, "agent", "compute", "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", natsPort),
		"--host", host, "--compute-driver", driver, "--data-dir", dir, "--image-url", k.URL+"/image")
	agent.Env = append(envWithout("OS_", "KUMO_"), "OS_AUTH_URL="+k.URL+"/v3", "OS_USERNAME=admin", "OS_PASSWORD="+k.Password,
		"OS_PROJECT_NAME=admin", "OS_DOMAIN_NAME=Default")
	agent.Stdout, agent.Stderr = logf, logf
	agent.SysProcAttr = sysProcAttr()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = agent.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- agent.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent exit: %v", err)
				}
			case <-time.After(15 * time.Second):
				_ = agent.Process.Kill()
				t.Error("agent did not stop on SIGTERM")
			}
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				t.Logf("agent %s log:\n%s", host, b)
			}
		})
	}
	t.Cleanup(stop)
	agentPID.Store(host, agent.Process.Pid)
	return stop
}

// agentPID holds the pid of each remote agent the tests started, by host.
var agentPID sync.Map

// openstackCLI is the path of Debian's openstack CLI; the test is skipped
// without it (failed under CI=true).
func openstackCLI(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("openstack")
	if err != nil {
		requireOrSkip(t, "the openstack CLI is not installed (Debian: apt-get install python3-openstackclient)")
	}
	return bin
}

// newProjectMember creates project name with a user who holds the member
// role on it, and returns the project and that user's project-scoped
// provider.
func (k *Kumo) newProjectMember(t *testing.T, ctx context.Context, admin *gophercloud.ServiceClient, name string) (*projects.Project, *gophercloud.ProviderClient) {
	t.Helper()
	proj, err := projects.Create(ctx, admin, projects.CreateOpts{Name: name, DomainID: "default"}).Extract()
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	user, pw := name+"-user", name+"-pw"
	u, err := users.Create(ctx, admin, users.CreateOpts{Name: user, DomainID: "default", Password: pw, DefaultProjectID: proj.ID}).Extract()
	if err != nil {
		t.Fatalf("create user %s: %v", user, err)
	}
	if err := roles.Assign(ctx, admin, roleID(t, ctx, admin, "member"), roles.AssignOpts{UserID: u.ID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatalf("grant member on %s: %v", name, err)
	}
	p, err := k.Authenticate(ctx, gophercloud.AuthOptions{Username: user, Password: pw, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectID: proj.ID}})
	if err != nil {
		t.Fatalf("authenticate as %s: %v", user, err)
	}
	return proj, p
}
