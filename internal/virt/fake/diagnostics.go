package fake

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

var _ virt.Diagnoser = (*Driver)(nil)

// Diagnostics reports what the fake knows of an instance: its simulated
// vCPUs are busy whenever it runs (each has used the instance's total
// running time), it uses all its memory while running or paused, its
// disks are the flavor's and the plugged volumes (only snapshots read
// the root disk), and its NICs see no traffic.
func (d *Driver) Diagnostics(ctx context.Context, uuid string) (virt.Diagnostics, error) {
	if err := d.begin(ctx, "diagnostics"); err != nil {
		return virt.Diagnostics{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.insts[uuid]
	if !ok {
		return virt.Diagnostics{}, fmt.Errorf("%s: %w", uuid, virt.ErrNotFound)
	}
	ran := in.ran
	if in.state == virt.Running {
		ran += time.Since(in.started)
	}
	out := virt.Diagnostics{Hypervisor: "fake", HypervisorOS: "fake", ConfigDrive: in.spec.ConfigDrive}
	for range in.spec.VCPUs {
		t, u := ran.Nanoseconds(), int64(0)
		if in.state == virt.Running {
			u = 100
		}
		out.CPUs = append(out.CPUs, virt.CPUStats{Time: &t, Utilisation: &u})
	}
	used := int64(0)
	if in.state == virt.Running || in.state == virt.Paused {
		used = int64(in.spec.MemoryMB)
	}
	out.MemoryUsedMB = &used
	zero := func() *int64 { z := int64(0); return &z }
	disk := func(name string, read int64) virt.DiskStats {
		r := read
		reqs := (read + 4095) / 4096
		return virt.DiskStats{Name: name, ReadBytes: &r, ReadRequests: &reqs, WriteBytes: zero(), WriteRequests: zero(), Errors: zero()}
	}
	next := 'a'
	dev := func() string { n := "vd" + string(next); next++; return n }
	out.Disks = append(out.Disks, disk(dev(), in.snapshotBytes))
	for range in.spec.EphemeralDisks() { // each ephemeral disk is its own
		out.Disks = append(out.Disks, disk(dev(), 0))
	}
	if in.spec.SwapMB > 0 {
		out.Disks = append(out.Disks, disk(dev(), 0))
	}
	if in.spec.ConfigDrive {
		out.Disks = append(out.Disks, disk(dev(), 0))
	}
	var vols []string
	for _, v := range d.vols[uuid] {
		vols = append(vols, strings.TrimPrefix(v.Device, "/dev/"))
	}
	sort.Strings(vols)
	for _, v := range vols {
		if v == "" {
			v = dev()
		}
		out.Disks = append(out.Disks, disk(v, 0))
	}
	for _, n := range in.spec.NICs {
		out.NICs = append(out.NICs, virt.NICStats{MAC: n.MAC, Tap: n.Tap, RxOctets: zero(), RxPackets: zero(), RxErrors: zero(),
			RxDrop: zero(), TxOctets: zero(), TxPackets: zero(), TxErrors: zero(), TxDrop: zero()})
	}
	return out, nil
}
