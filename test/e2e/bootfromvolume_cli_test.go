package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestBootFromVolumeOpenStackCLI boots servers from volumes with Debian's
// openstack CLI on the fake driver: `server create --boot-from-volume`
// (a new volume from the image; the CLI asks to keep it when the server
// is deleted) and `server create --volume` (an existing bootable volume).
func TestBootFromVolumeOpenStackCLI(t *testing.T) {
	t.Parallel()
	bin := openstackCLI(t)
	k := Start(t, Options{})
	cli := newCLI(t, bin, k)
	adm := []string{"--os-cloud", "kumo"}
	arg := func(a ...string) []string { return append(append([]string{}, adm...), a...) }
	volumeStatus := func(name, want string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var v map[string]any
			cli.json(&v, arg("volume", "show", name)...)
			if v["status"] == want {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("volume %s is %v, want %s", name, v["status"], want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	cli.run(arg("image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", "/dev/null", "bfv-cli-img")...)
	var srv struct {
		ID, Status, Image string
		VolumesAttached   any
	}
	cli.json(&srv, arg("server", "create", "--image", "bfv-cli-img", "--boot-from-volume", "1", "--flavor", "m1.nano", "--wait", "bfv-cli-1")...)
	if srv.Status != "ACTIVE" {
		t.Fatalf("server create --boot-from-volume: %+v", srv)
	}
	var shown map[string]any
	cli.json(&shown, arg("server", "show", "bfv-cli-1")...)
	// (cli.json drops underscores from keys.)
	if !strings.Contains(fmtAny(shown["image"]), "booted from volume") || !strings.Contains(toString(shown["volumesattached"]), "id") {
		t.Errorf("server show of a volume-backed server: image %v, volumes_attached %v", shown["image"], shown["volumesattached"])
	}
	var vols []map[string]any
	cli.json(&vols, arg("volume", "list", "--long")...)
	root := ""
	for _, v := range vols {
		if strings.Contains(toString(v["Attached to"]), srv.ID) {
			root = toString(v["ID"])
		}
	}
	if root == "" {
		t.Fatalf("no volume attached to %s: %v", srv.ID, vols)
	}
	if v := volumeStatus(root, "in-use"); v["bootable"] != "true" {
		t.Errorf("root volume = %v", v)
	}

	cli.run(arg("volume", "create", "--image", "bfv-cli-img", "--size", "1", "--bootable", "bfv-cli-vol")...)
	volumeStatus("bfv-cli-vol", "available")
	cli.json(&srv, arg("server", "create", "--volume", "bfv-cli-vol", "--flavor", "m1.nano", "--wait", "bfv-cli-2")...)
	if srv.Status != "ACTIVE" {
		t.Fatalf("server create --volume: %+v", srv)
	}
	volumeStatus("bfv-cli-vol", "in-use")

	// Nova's refusal, through the CLI.
	if out, err := cli.try(arg("server", "create", "--volume", "bfv-cli-vol", "--flavor", "m1.nano", "bfv-cli-3")...); err == nil ||
		!strings.Contains(out, "status must be 'available'") {
		t.Errorf("boot from an in-use volume: %v\n%s", err, out)
	}

	cli.run(arg("server", "delete", "--wait", "bfv-cli-1", "bfv-cli-2")...)
	volumeStatus("bfv-cli-vol", "available")
	volumeStatus(root, "available") // the CLI sets delete_on_termination false
}

func fmtAny(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return toString(v)
}
