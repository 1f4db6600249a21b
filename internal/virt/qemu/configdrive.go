package qemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kdomanski/iso9660"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// ConfigDriveLabel is the volume label guests (cloud-init, cloudbase-init)
// look for.
const ConfigDriveLabel = "config-2"

// metaData is openstack/latest/meta_data.json, the fields Nova writes that
// guests actually read.
type metaData struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	LaunchIndex      int               `json:"launch_index"`
	Meta             map[string]string `json:"meta,omitempty"`
	PublicKeys       map[string]string `json:"public_keys,omitempty"`
	Keys             []metaKey         `json:"keys,omitempty"`
	AdminPass        string            `json:"admin_pass,omitempty"`
	Devices          []any             `json:"devices"`
}

type metaKey struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// ConfigDriveFiles lays out the config drive of inst, OpenStack style, as
// path → content. It is pure; WriteConfigDrive puts the result on an ISO.
func ConfigDriveFiles(inst *virt.Instance) (map[string][]byte, error) {
	md := inst.Metadata
	host := md.Hostname
	if host == "" {
		host = inst.Name
	}
	m := metaData{
		UUID:       inst.UUID,
		Name:       inst.Name,
		Hostname:   host,
		Meta:       md.Extra,
		PublicKeys: md.PublicKeys,
		AdminPass:  md.AdminPass,
		Devices:    []any{},
	}
	names := make([]string, 0, len(md.PublicKeys))
	for n := range md.PublicKeys {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m.Keys = append(m.Keys, metaKey{Name: n, Type: "ssh", Data: md.PublicKeys[n]})
	}
	mdJSON, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("config drive meta_data: %w", err)
	}
	files := map[string][]byte{
		"openstack/latest/meta_data.json":    mdJSON,
		"openstack/latest/network_data.json": orJSON(md.NetworkData, `{"links":[],"networks":[],"services":[]}`),
		"openstack/latest/vendor_data.json":  []byte("{}"),
		"openstack/latest/vendor_data2.json": orJSON(md.VendorData, "{}"),
	}
	for _, p := range []string{"openstack/latest/network_data.json", "openstack/latest/vendor_data2.json"} {
		if !json.Valid(files[p]) {
			return nil, fmt.Errorf("config drive %s: not valid json", p)
		}
	}
	if len(md.UserData) > 0 {
		files["openstack/latest/user_data"] = md.UserData
	}
	return files, nil
}

func orJSON(b []byte, def string) []byte {
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte(def)
	}
	return b
}

// WriteConfigDrive writes files to an ISO9660 image at path with the label
// config-2. Names must be lowercase [a-z0-9_.] (plain ISO9660 without Rock
// Ridge, which the OpenStack "latest" layout satisfies).
func WriteConfigDrive(path string, files map[string][]byte) (err error) {
	w, err := iso9660.NewWriter()
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	defer w.Cleanup()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if strings.IndexFunc(p, notISOName) >= 0 {
			return fmt.Errorf("config drive: file name %q does not survive ISO9660 mangling", p)
		}
		if err := w.AddFile(bytes.NewReader(files[p]), p); err != nil {
			return fmt.Errorf("config drive: add %s: %w", p, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.iso")
	if err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := w.WriteTo(tmp, ConfigDriveLabel); err != nil {
		return fmt.Errorf("config drive: write iso: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	return nil
}

// notISOName reports characters the ISO writer would mangle.
func notISOName(r rune) bool {
	return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '.' && r != '/'
}
