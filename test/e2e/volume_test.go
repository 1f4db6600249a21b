package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestVolumeOpenStackCLI drives the block storage service with Debian's
// openstack CLI: volumes, snapshots, a volume from a snapshot, attach and
// detach to a server on the fake driver, and the refusals Cinder gives.
func TestVolumeOpenStackCLI(t *testing.T) {
	t.Parallel()
	bin := openstackCLI(t)
	k := Start(t, Options{})
	cli := newCLI(t, bin, k)
	adm := []string{"--os-cloud", "kumo"}
	waitStatus := func(kind, name, want string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var v map[string]any
			cli.json(&v, append(append(append([]string{}, adm...), strings.Fields(kind)...), "show", name)...)
			if v["status"] == want {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s status %v, want %s", kind, name, v["status"], want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	var v struct {
		ID, Status string
		Size       int
	}
	cli.json(&v, append(adm, "volume", "create", "--size", "1", "--property", "tier=gold", "cli-vol")...)
	if v.ID == "" || v.Size != 1 {
		t.Fatalf("volume create = %+v", v)
	}
	waitStatus("volume", "cli-vol", "available")
	if out := cli.run(append(adm, "volume", "list")...); !strings.Contains(out, "cli-vol") {
		t.Errorf("volume list:\n%s", out)
	}
	cli.run(append(adm, "volume", "set", "--name", "cli-vol2", "--description", "renamed", "--property", "a=b", "cli-vol")...)
	cli.run(append(adm, "volume", "set", "--size", "2", "cli-vol2")...)
	shown := waitStatus("volume", "cli-vol2", "available")
	if shown["size"] != float64(2) || shown["description"] != "renamed" {
		t.Errorf("volume show after set = %v", shown)
	}
	if _, err := cli.try(append(adm, "volume", "set", "--size", "1", "cli-vol2")...); err == nil {
		t.Error("shrinking a volume succeeded")
	}

	cli.run(append(adm, "volume", "snapshot", "create", "--volume", "cli-vol2", "cli-snap")...)
	waitStatus("volume snapshot", "cli-snap", "available")
	cli.run(append(adm, "volume", "create", "--snapshot", "cli-snap", "--size", "2", "cli-from-snap")...)
	waitStatus("volume", "cli-from-snap", "available")

	cli.run(append(adm, "volume", "type", "create", "--property", "volume_backend_name=nowhere", "cli-none")...)
	cli.run(append(adm, "volume", "create", "--size", "1", "--type", "cli-none", "cli-unplaceable")...)
	waitStatus("volume", "cli-unplaceable", "error")
	cli.run(append(adm, "volume", "delete", "cli-unplaceable")...)

	// Attach to a server (fake driver) and detach.
	cli.run(append(adm, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", "/dev/null", "cli-img")...)
	var srv struct{ ID, Status string }
	cli.json(&srv, append(adm, "server", "create", "--image", "cli-img", "--flavor", "m1.nano", "--wait", "cli-vm")...)
	if srv.Status != "ACTIVE" {
		t.Fatalf("server create: %+v", srv)
	}
	cli.run(append(adm, "server", "add", "volume", "cli-vm", "cli-vol2")...)
	attached := waitStatus("volume", "cli-vol2", "in-use")
	if !strings.Contains(toString(attached["attachments"]), srv.ID) {
		t.Errorf("attachments = %v", attached["attachments"])
	}
	if _, err := cli.try(append(adm, "volume", "delete", "cli-vol2")...); err == nil {
		t.Error("deleting an attached volume succeeded")
	}
	if _, err := cli.try(append(adm, "server", "add", "volume", "cli-vm", "cli-vol2")...); err == nil {
		t.Error("attaching an in-use volume again succeeded")
	}
	cli.run(append(adm, "server", "remove", "volume", "cli-vm", "cli-vol2")...)
	waitStatus("volume", "cli-vol2", "available")

	cli.run(append(adm, "volume", "snapshot", "delete", "cli-snap")...)
	cli.run(append(adm, "volume", "delete", "cli-vol2", "cli-from-snap")...)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(cli.run(append(adm, "volume", "list")...), "cli-vol2") {
		if time.Now().After(deadline) {
			t.Fatal("volume still listed after delete")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cli.run(append(adm, "server", "delete", "--wait", "cli-vm")...)
}

func toString(v any) string { return fmt.Sprint(v) }
