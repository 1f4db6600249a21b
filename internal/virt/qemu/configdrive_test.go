package qemu

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"

	"github.com/kumo-cloud/kumo/internal/virt"
)

func testInstance() *virt.Instance {
	return &virt.Instance{
		UUID: "6f1d0c1e-0000-4000-8000-00000000002a", Name: "instance-0000002a", VCPUs: 1, MemoryMB: 128,
		ConfigDrive: true,
		Metadata: virt.Metadata{
			Hostname:    "web-1",
			UserData:    []byte("#!/bin/sh\necho hello\n"),
			PublicKeys:  map[string]string{"mykey": "ssh-ed25519 AAAA test@kumo", "other": "ssh-rsa BBBB x"},
			AdminPass:   "s3cret",
			NetworkData: []byte(`{"links":[{"id":"tap1","type":"phy","ethernet_mac_address":"fa:16:3e:00:00:01"}],"networks":[{"id":"n0","link":"tap1","type":"ipv4_dhcp"}],"services":[]}`),
			Extra:       map[string]string{"role": "web"},
		},
	}
}

func TestConfigDriveFilesGolden(t *testing.T) {
	files, err := ConfigDriveFiles(testInstance())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString("== " + n + "\n" + string(files[n]) + "\n")
	}
	golden(t, "configdrive", b.String())

	bad := testInstance()
	bad.Metadata.NetworkData = []byte("{not json")
	if _, err := ConfigDriveFiles(bad); err == nil {
		t.Error("invalid network_data accepted")
	}
}

// TestConfigDriveISO writes the ISO and reads it back: label and paths as
// a guest sees them.
func TestConfigDriveISO(t *testing.T) {
	files, err := ConfigDriveFiles(testInstance())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.iso")
	if err := WriteConfigDrive(p, files); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := iso9660.OpenImage(f)
	if err != nil {
		t.Fatal(err)
	}
	label, err := img.Label()
	if err != nil || label != ConfigDriveLabel {
		t.Fatalf("label %q %v", label, err)
	}
	got := map[string]string{}
	root, err := img.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	var walk func(dir *iso9660.File, prefix string)
	walk = func(dir *iso9660.File, prefix string) {
		kids, err := dir.GetChildren()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			name := prefix + strings.TrimSuffix(k.Name(), ";1")
			if k.IsDir() {
				walk(k, name+"/")
				continue
			}
			b := make([]byte, k.Size())
			if _, err := k.Reader().Read(b); err != nil && k.Size() > 0 {
				t.Fatal(err)
			}
			got[name] = string(b)
		}
	}
	walk(root, "")
	for name, want := range files {
		if got[name] != string(want) {
			t.Errorf("%s: got %q, want %q", name, got[name], want)
		}
	}
	if len(got) != len(files) {
		t.Errorf("iso has %d files, want %d: %v", len(got), len(files), got)
	}

	if err := WriteConfigDrive(p, map[string][]byte{"openstack/2012-08-10/meta_data.json": nil}); err == nil {
		t.Error("a name the ISO writer would mangle was accepted")
	}
}
