package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/virt"
)

var _ virt.Diagnoser = (*Driver)(nil)

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat
// (100 on every Linux architecture Kumo runs on).
const clockTicks = 100

// blockStats is one entry of QMP query-blockstats.
type blockStats struct {
	Device string `json:"device"`
	QDev   string `json:"qdev"`
	Node   string `json:"node-name"`
	Stats  struct {
		RdBytes    int64 `json:"rd_bytes"`
		WrBytes    int64 `json:"wr_bytes"`
		RdOps      int64 `json:"rd_operations"`
		WrOps      int64 `json:"wr_operations"`
		FailedRdOp int64 `json:"failed_rd_operations"`
		FailedWrOp int64 `json:"failed_wr_operations"`
	} `json:"stats"`
}

// cpuInfo is one entry of QMP query-cpus-fast.
type cpuInfo struct {
	Index    int `json:"cpu-index"`
	ThreadID int `json:"thread-id"`
}

// Diagnostics reports an instance's counters: per vCPU the CPU time of
// its QEMU thread, per disk QMP's block statistics, per NIC its tap's
// counters turned to the guest's side. Counters a stopped guest does not
// have are left unknown.
func (d *Driver) Diagnostics(ctx context.Context, uuid string) (virt.Diagnostics, error) {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return virt.Diagnostics{}, err
	}
	defer h.unlock()
	accel, _ := d.accelerator(ctx)
	hyp := map[string]string{"kvm": "kvm", "tcg": "qemu"}[accel]
	out := virt.Diagnostics{Hypervisor: hyp, HypervisorOS: "linux", ConfigDrive: rec.Instance.ConfigDrive}
	out.CPUs = make([]virt.CPUStats, rec.Instance.VCPUs)
	for _, n := range rec.Instance.NICs {
		out.NICs = append(out.NICs, tapStats(n))
	}
	if st != virt.Running && st != virt.Paused {
		return out, nil
	}
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		return virt.Diagnostics{}, err
	}
	var blocks []blockStats
	if err := c.Execute(ctx, "query-blockstats", nil, &blocks); err != nil {
		return virt.Diagnostics{}, fmt.Errorf("qemu: %s: query-blockstats: %w", uuid, err)
	}
	for _, b := range blocks {
		// The node name is the disk's id on the command line (root,
		// eph0, ...); the qdev path is /machine/peripheral/<id>/...
		name := b.Node
		if name == "" {
			name = b.Device
		}
		if name == "" {
			name = strings.Split(strings.TrimPrefix(b.QDev, "/machine/peripheral/"), "/")[0]
		}
		s := b.Stats
		errs := s.FailedRdOp + s.FailedWrOp
		out.Disks = append(out.Disks, virt.DiskStats{Name: name, ReadBytes: &s.RdBytes, ReadRequests: &s.RdOps,
			WriteBytes: &s.WrBytes, WriteRequests: &s.WrOps, Errors: &errs})
	}
	var cpus []cpuInfo
	if err := c.Execute(ctx, "query-cpus-fast", nil, &cpus); err == nil {
		pid, _ := d.pid(uuid)
		for _, cpu := range cpus {
			if cpu.Index < 0 || cpu.Index >= len(out.CPUs) {
				continue
			}
			if t, ok := threadCPUTime(pid, cpu.ThreadID); ok {
				out.CPUs[cpu.Index].Time = &t
			}
		}
	}
	return out, nil
}

// threadCPUTime is a thread's user+system time in nanoseconds.
func threadCPUTime(pid, tid int) (int64, bool) {
	if pid <= 0 || tid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, false
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime+stime (fields 14 and 15) of a /proc stat line,
// whose second field (the command) may hold spaces and parentheses.
func parseStatCPU(stat string) (int64, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (u + s) * (1_000_000_000 / clockTicks), true
}

// tapStats reads a tap's counters; what the host receives on the tap the
// guest sent, so rx and tx swap.
func tapStats(n virt.NIC) virt.NICStats {
	s := virt.NICStats{MAC: n.MAC, Tap: n.Tap}
	if n.Tap == "" {
		return s
	}
	read := func(name string) *int64 {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", n.Tap, "statistics", name))
		if err != nil {
			return nil
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil
		}
		return &v
	}
	s.RxOctets, s.RxPackets, s.RxErrors, s.RxDrop = read("tx_bytes"), read("tx_packets"), read("tx_errors"), read("tx_dropped")
	s.TxOctets, s.TxPackets, s.TxErrors, s.TxDrop = read("rx_bytes"), read("rx_packets"), read("rx_errors"), read("rx_dropped")
	return s
}
