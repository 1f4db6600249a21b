package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// diagnostics answers the diagnostics op (1.6) from the driver's
// counters and the instance's info.
func (a *Agent) diagnostics(ctx context.Context, uuid string, info virt.Info) (rpc.OpReply, error) {
	dg, ok := a.driver.(virt.Diagnoser)
	if !ok {
		return rpc.OpReply{}, fmt.Errorf("diagnostics of the %s driver: %w", a.driver.Name(), virt.ErrUnsupported)
	}
	vd, err := dg.Diagnostics(ctx, uuid)
	if err != nil {
		return rpc.OpReply{}, err
	}
	return rpc.OpReply{PowerState: int(info.State), Diagnostics: toRPCDiagnostics(a.driver.Name(), info, vd)}, nil
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toRPCDiagnostics(driver string, info virt.Info, vd virt.Diagnostics) *rpc.Diagnostics {
	out := &rpc.Diagnostics{State: info.State.String(), Driver: driver, Hypervisor: strOrNil(vd.Hypervisor),
		HypervisorOS: strOrNil(vd.HypervisorOS), ConfigDrive: vd.ConfigDrive, MemoryUsedMB: vd.MemoryUsedMB,
		CPUs: []rpc.CPUDiag{}, Disks: []rpc.DiskDiag{}, NICs: []rpc.NICDiag{}}
	if info.State == virt.NoState {
		out.State = "pending"
	}
	if !info.StartedAt.IsZero() && (info.State == virt.Running || info.State == virt.Paused) {
		up := int64(time.Since(info.StartedAt).Seconds())
		out.Uptime = &up
	}
	if info.MemoryMB > 0 {
		m := int64(info.MemoryMB)
		out.MemoryMaxMB = &m
	}
	for i, c := range vd.CPUs {
		out.CPUs = append(out.CPUs, rpc.CPUDiag{ID: i, Time: c.Time, Utilisation: c.Utilisation})
	}
	for _, d := range vd.Disks {
		out.Disks = append(out.Disks, rpc.DiskDiag{Name: d.Name, ReadBytes: d.ReadBytes, ReadRequests: d.ReadRequests,
			WriteBytes: d.WriteBytes, WriteRequests: d.WriteRequests, ErrorsCount: d.Errors})
	}
	for _, n := range vd.NICs {
		out.NICs = append(out.NICs, rpc.NICDiag{Name: n.Tap, MAC: n.MAC, RxOctets: n.RxOctets, RxPackets: n.RxPackets,
			RxErrors: n.RxErrors, RxDrop: n.RxDrop, TxOctets: n.TxOctets, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDrop: n.TxDrop})
	}
	return out
}

// hostUptime answers host_uptime (1.6): the host's uptime line in the
// format of uptime(1), from /proc (the agent runs on the host).
func hostUptime(now time.Time) (rpc.OpReply, error) {
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return rpc.OpReply{}, fmt.Errorf("host uptime: %w: %w", err, virt.ErrUnsupported)
	}
	load, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return rpc.OpReply{}, fmt.Errorf("host load: %w: %w", err, virt.ErrUnsupported)
	}
	line, err := uptimeLine(now, string(up), string(load))
	if err != nil {
		return rpc.OpReply{}, err
	}
	return rpc.OpReply{Uptime: line}, nil
}

// uptimeLine renders " HH:MM:SS up D days, H:MM,  load average: a, b, c"
// from the contents of /proc/uptime and /proc/loadavg.
func uptimeLine(now time.Time, procUptime, procLoad string) (string, error) {
	f := strings.Fields(procUptime)
	l := strings.Fields(procLoad)
	if len(f) < 1 || len(l) < 3 {
		return "", fmt.Errorf("host uptime: unexpected /proc contents %q, %q", procUptime, procLoad)
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", fmt.Errorf("host uptime: %w", err)
	}
	total := int64(secs)
	days, hours, mins := total/86400, total%86400/3600, total%3600/60
	var b strings.Builder
	fmt.Fprintf(&b, " %s up ", now.Format("15:04:05"))
	switch days {
	case 0:
	case 1:
		b.WriteString("1 day, ")
	default:
		fmt.Fprintf(&b, "%d days, ", days)
	}
	if hours > 0 {
		fmt.Fprintf(&b, "%2d:%02d", hours, mins)
	} else {
		fmt.Fprintf(&b, "%d min", mins)
	}
	fmt.Fprintf(&b, ",  load average: %s, %s, %s", strings.TrimSuffix(l[0], ","), l[1], l[2])
	return b.String(), nil
}
