package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// TestComputeOpenStackCLI drives flavors, key pairs, quotas, images with
// their members, and the server actions of issues 3 and 4 with Debian's
// openstack CLI, on two fake compute hosts (so that migrate has
// somewhere to go).
func TestComputeOpenStackCLI(t *testing.T) {
	t.Parallel()
	bin := openstackCLI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kumo.yaml"), []byte("compute:\n  hosts: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := Start(t, Options{DataDir: dir})
	// Some sixty CLI runs of a few seconds each: a longer bound than
	// testContext's.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cli := newCLI(t, bin, k)
	adm := []string{"--os-cloud", "kumo"}
	nova, token := k.computeClient(t, ctx, k.AdminAuth())

	// Flavors.
	fl := cli.object(append(adm, "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1",
		"--property", "hw:cpu_policy=shared", "e2e.small")...)
	if fl["name"] != "e2e.small" || fl["ram"] != float64(256) || fl["vcpus"] != float64(1) || prop(fl, "hw:cpu_policy") != "shared" {
		t.Fatalf("flavor create: %v", fl)
	}
	cli.run(append(adm, "flavor", "create", "--ram", "512", "--disk", "1", "--vcpus", "2", "e2e.big")...)
	if out := cli.run(append(adm, "flavor", "list", "-f", "value", "-c", "Name")...); !strings.Contains(out, "e2e.small") || !strings.Contains(out, "e2e.big") {
		t.Errorf("flavor list:\n%s", out)
	}
	cli.run(append(adm, "flavor", "set", "--property", "quota:disk_read_iops_sec=100", "e2e.small")...)
	fl = cli.object(append(adm, "flavor", "show", "e2e.small")...)
	if prop(fl, "quota:disk_read_iops_sec") != "100" || prop(fl, "hw:cpu_policy") != "shared" {
		t.Errorf("flavor show after set: %v", fl)
	}
	cli.run(append(adm, "flavor", "unset", "--property", "hw:cpu_policy", "e2e.small")...)
	fl = cli.object(append(adm, "flavor", "show", "e2e.small")...)
	if prop(fl, "hw:cpu_policy") != nil {
		t.Errorf("flavor unset kept the property: %v", fl)
	}

	// Key pairs: generated and imported.
	out := cli.run(append(adm, "keypair", "create", "kp-gen")...)
	if !strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("keypair create printed no private key:\n%s", out)
	}
	pubFile := filepath.Join(t.TempDir(), "id.pub")
	pub := ed25519PublicKey(t)
	if err := os.WriteFile(pubFile, []byte(pub+" e2e@kumo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var kp struct{ Name, Fingerprint, Type string }
	cli.json(&kp, append(adm, "keypair", "create", "--public-key", pubFile, "kp-imp")...)
	if kp.Name != "kp-imp" || !strings.Contains(kp.Fingerprint, ":") {
		t.Errorf("keypair create --public-key: %+v", kp)
	}
	if out := cli.run(append(adm, "keypair", "list", "-f", "value", "-c", "Name")...); !strings.Contains(out, "kp-gen") || !strings.Contains(out, "kp-imp") {
		t.Errorf("keypair list:\n%s", out)
	}
	var shown struct{ Name, Fingerprint string }
	cli.json(&shown, append(adm, "keypair", "show", "kp-imp")...)
	if shown.Fingerprint != kp.Fingerprint {
		t.Errorf("keypair show %+v, created %+v", shown, kp)
	}
	if out := cli.run(append(adm, "keypair", "show", "--public-key", "kp-imp")...); !strings.Contains(out, pub) {
		t.Errorf("keypair show --public-key:\n%s", out)
	}
	cli.run(append(adm, "keypair", "delete", "kp-gen")...)
	if out, err := cli.try(append(adm, "keypair", "show", "kp-gen")...); err == nil {
		t.Errorf("deleted keypair still shown:\n%s", out)
	}

	// Quotas.
	cli.run(append(adm, "quota", "set", "--instances", "17", "--cores", "33", "admin")...)
	out = cli.run(append(adm, "quota", "show", "-f", "json", "admin")...)
	if !quotaHas(out, "instances", 17) || !quotaHas(out, "cores", 33) {
		t.Errorf("quota show after set:\n%s", out)
	}

	// Images: a qcow2 upload, properties, sharing with another project.
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := os.WriteFile(disk, qcow2Image(64<<20, 256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	var im struct {
		ID, Status, DiskFormat string
		VirtualSize            int64
	}
	cli.json(&im, append(adm, "image", "create", "--file", disk, "--disk-format", "qcow2", "--container-format", "bare", "e2e-qcow")...)
	cli.json(&im, append(adm, "image", "show", "e2e-qcow")...)
	if im.Status != "active" || im.DiskFormat != "qcow2" || im.VirtualSize != 64<<20 {
		t.Fatalf("image show after create --file: %+v", im)
	}
	cli.run(append(adm, "image", "set", "--property", "os_distro=kumo", "--property", "gone=soon", "--min-ram", "64", "e2e-qcow")...)
	cli.run(append(adm, "image", "unset", "--property", "gone", "e2e-qcow")...)
	props := cli.object(append(adm, "image", "show", "e2e-qcow")...)
	if props["min_ram"] != float64(64) || prop(props, "os_distro") != "kumo" || prop(props, "gone") != nil {
		t.Errorf("image show after set/unset: %v", props)
	}
	if out := cli.run(append(adm, "image", "list", "-f", "value", "-c", "Name")...); !strings.Contains(out, "e2e-qcow") {
		t.Errorf("image list:\n%s", out)
	}
	const otherPW = "other-secret-pw"
	cli.run(append(adm, "project", "create", "e2e-other")...)
	cli.run(append(adm, "user", "create", "--password", otherPW, "--project", "e2e-other", "e2e-other-user")...)
	cli.run(append(adm, "role", "add", "--project", "e2e-other", "--user", "e2e-other-user", "member")...)
	other := []string{"--os-auth-url", k.URL + "/v3", "--os-identity-api-version", "3",
		"--os-username", "e2e-other-user", "--os-password", otherPW, "--os-user-domain-name", "Default",
		"--os-project-name", "e2e-other", "--os-project-domain-name", "Default", "--os-region-name", "RegionOne"}
	cli.run(append(adm, "image", "set", "--shared", "e2e-qcow")...)
	cli.run(append(adm, "image", "add", "project", "e2e-qcow", "e2e-other")...)
	if out := cli.run(append(other, "image", "list", "-f", "value", "-c", "ID")...); strings.Contains(out, im.ID) {
		t.Errorf("pending member lists the image:\n%s", out)
	}
	cli.run(append(other, "image", "set", "--accept", im.ID)...)
	if out := cli.run(append(other, "image", "list", "-f", "value", "-c", "ID")...); !strings.Contains(out, im.ID) {
		t.Errorf("accepted member does not list the image:\n%s", out)
	}
	if out, err := cli.try(append(other, "image", "set", "--property", "x=y", im.ID)...); err == nil {
		t.Errorf("member changed the owner's image:\n%s", out)
	}

	// Servers and their actions.
	var srv struct{ ID, Status string }
	cli.json(&srv, append(adm, "server", "create", "--image", "e2e-qcow", "--flavor", "e2e.small", "--key-name", "kp-imp", "--wait", "e2e-vm")...)
	if srv.Status != "ACTIVE" {
		t.Fatalf("server create --wait: %+v", srv)
	}
	flavorOf := func() string {
		s, err := servers.Get(ctx, nova, srv.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		name, _ := s.Flavor["original_name"].(string)
		return name
	}
	cli.run(append(adm, "server", "resize", "--flavor", "e2e.big", "--wait", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "VERIFY_RESIZE")
	cli.run(append(adm, "server", "resize", "confirm", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	if f := flavorOf(); f != "e2e.big" {
		t.Errorf("flavor after confirmed resize: %s", f)
	}
	cli.run(append(adm, "server", "resize", "--flavor", "e2e.small", "--wait", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "VERIFY_RESIZE")
	cli.run(append(adm, "server", "resize", "revert", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	if f := flavorOf(); f != "e2e.big" {
		t.Errorf("flavor after reverted resize: %s", f)
	}

	cli.run(append(adm, "server", "rebuild", "--image", "e2e-qcow", "--wait", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")

	cli.run(append(adm, "--os-compute-api-version", "2.73", "server", "lock", "--reason", "e2e says so", "e2e-vm")...)
	var locked struct {
		Server struct {
			Locked       bool   `json:"locked"`
			LockedReason string `json:"locked_reason"`
		} `json:"server"`
	}
	k.getJSON(t, ctx, "/compute/v2.1/servers/"+srv.ID, token, "2.73", &locked)
	if !locked.Server.Locked || locked.Server.LockedReason != "e2e says so" {
		t.Errorf("after lock: %+v", locked.Server)
	}
	cli.run(append(adm, "server", "unlock", "e2e-vm")...)
	k.getJSON(t, ctx, "/compute/v2.1/servers/"+srv.ID, token, "2.73", &locked)
	if locked.Server.Locked {
		t.Errorf("after unlock: %+v", locked.Server)
	}

	for _, step := range []struct{ cmd, status string }{
		{"pause", "PAUSED"}, {"unpause", "ACTIVE"}, {"suspend", "SUSPENDED"}, {"resume", "ACTIVE"},
	} {
		cli.run(append(adm, "server", step.cmd, "e2e-vm")...)
		waitServer(t, ctx, nova, srv.ID, step.status)
	}

	// Cold migration between the two fake hosts.
	hostOf := func() string {
		var v struct {
			Server map[string]any `json:"server"`
		}
		k.getJSON(t, ctx, "/compute/v2.1/servers/"+srv.ID, token, "2.96", &v)
		h, _ := v.Server["OS-EXT-SRV-ATTR:host"].(string)
		return h
	}
	before := hostOf()
	cli.run(append(adm, "server", "migrate", "--wait", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "VERIFY_RESIZE")
	cli.run(append(adm, "server", "resize", "confirm", "e2e-vm")...)
	waitServer(t, ctx, nova, srv.ID, "ACTIVE")
	if after := hostOf(); after == before || after == "" {
		t.Errorf("migrate: host %q -> %q", before, after)
	}

	if out := cli.run(append(adm, "server", "event", "list", "-f", "value", "-c", "Action", "e2e-vm")...); !strings.Contains(out, "migrate") || !strings.Contains(out, "rebuild") {
		t.Errorf("server event list:\n%s", out)
	}
	cli.run(append(adm, "server", "delete", "--wait", "e2e-vm")...)
	cli.run(append(adm, "flavor", "delete", "e2e.small", "e2e.big")...)
	cli.run(append(adm, "keypair", "delete", "kp-imp")...)
	cli.run(append(adm, "image", "delete", "e2e-qcow")...)
	if out := cli.run(append(adm, "flavor", "list", "-f", "value", "-c", "Name")...); strings.Contains(out, "e2e.") {
		t.Errorf("flavor list after delete:\n%s", out)
	}
}

// object runs the CLI with -f json and returns the object it printed, keys
// as they are.
func (c *cli) object(args ...string) map[string]any {
	c.t.Helper()
	cmd := append(args, "-f", "json")
	out := c.run(cmd...)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		c.t.Fatalf("openstack %s: output is not a JSON object: %v\n%s", redact(cmd), err, out)
	}
	return v
}

// prop finds a property in a CLI object: in its "properties" (an object,
// or "k='v', ..." text in older clients) or at the top level.
func prop(v map[string]any, key string) any {
	switch p := v["properties"].(type) {
	case map[string]any:
		if x, ok := p[key]; ok {
			return x
		}
	case string:
		for _, kv := range strings.Split(p, ", ") {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				return strings.Trim(val, "'")
			}
		}
	}
	return v[key]
}

// computeClient authenticates and returns a compute client (2.96) and
// the token.
func (k *Kumo) computeClient(t *testing.T, ctx context.Context, o gophercloud.AuthOptions) (*gophercloud.ServiceClient, string) {
	t.Helper()
	p, err := k.Authenticate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := openstack.NewComputeV2(p, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	c.Microversion = "2.96"
	return c, p.Token()
}

// getJSON GETs path with a compute microversion and decodes the answer.
func (k *Kumo) getJSON(t *testing.T, ctx context.Context, path, token, version string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", k.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("OpenStack-API-Version", "compute "+version)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// quotaHas finds a resource's limit in `quota show -f json` output, which
// is a list of {Resource, Limit} rows in recent clients and an object in
// older ones.
func quotaHas(out, resource string, limit int) bool {
	var rows []struct {
		Resource string
		Limit    int
	}
	if json.Unmarshal([]byte(out), &rows) == nil {
		for _, r := range rows {
			if r.Resource == resource {
				return r.Limit == limit
			}
		}
		return false
	}
	var obj map[string]any
	if json.Unmarshal([]byte(out), &obj) != nil {
		return false
	}
	n, ok := obj[resource].(float64)
	return ok && int(n) == limit
}

// ed25519PublicKey returns a fresh OpenSSH "ssh-ed25519 AAAA..." key.
func ed25519PublicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob)
}

// qcow2Image returns a minimal valid qcow2 (version 3, no backing file)
// of the given virtual size, padded to fileSize bytes.
func qcow2Image(virtualSize uint64, fileSize int) []byte {
	b := make([]byte, fileSize)
	be := binary.BigEndian
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], 3)            // version
	be.PutUint32(b[20:], 16)          // cluster_bits
	be.PutUint64(b[24:], virtualSize) // size
	be.PutUint32(b[96:], 4)           // refcount_order
	be.PutUint32(b[100:], 104)        // header_length
	return b
}
