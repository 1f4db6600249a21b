package agent

import (
	"runtime"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// ResourceConfig tunes the resource tracker: what the host offers to
// placement. Zero ratios get Nova's initial allocation ratios (16 vCPUs,
// 1.5 MiB of RAM and 1 GiB of disk per physical unit); reserved amounts
// are kept for the host itself (Nova's reserved_host_* options).
type ResourceConfig struct {
	CPUAllocationRatio   float64
	RAMAllocationRatio   float64
	DiskAllocationRatio  float64
	ReservedHostCPUs     int64
	ReservedHostMemoryMB int64
	ReservedHostDiskGB   int64
}

// Nova's initial allocation ratios.
const (
	DefaultCPUAllocationRatio  = 16.0
	DefaultRAMAllocationRatio  = 1.5
	DefaultDiskAllocationRatio = 1.0
)

// ProviderReport is the resource tracker: the inventories and traits of
// the host's resource provider, computed from the driver's resources.
//
// The agent sends it with every heartbeat (compute.host.report 1.1) and
// the conductor writes it to placement when it changed, or always on an
// agent's startup report (healing the provider: a provider deleted or
// edited behind Kumo's back is put back). Agents do not call the
// Placement HTTP API themselves: they hold no credentials and open no
// connection but the bus, so an agent on a new host needs nothing but a
// NATS URL, and an old agent keeps working through a conductor that
// understands its report version.
func (c ResourceConfig) ProviderReport(res virt.Resources) *rpc.ProviderReport {
	ratio := func(v, def float64) float64 {
		if v > 0 {
			return v
		}
		return def
	}
	inv := func(total, reserved int64, r float64) rpc.InventoryReport {
		reserved = min(max(reserved, 0), total)
		return rpc.InventoryReport{Total: total, Reserved: reserved, MinUnit: 1, MaxUnit: total, StepSize: 1, AllocationRatio: r}
	}
	out := &rpc.ProviderReport{Inventories: map[string]rpc.InventoryReport{}}
	if res.VCPUs > 0 {
		out.Inventories["VCPU"] = inv(int64(res.VCPUs), c.ReservedHostCPUs, ratio(c.CPUAllocationRatio, DefaultCPUAllocationRatio))
	}
	if res.MemoryMB > 0 {
		out.Inventories["MEMORY_MB"] = inv(int64(res.MemoryMB), c.ReservedHostMemoryMB, ratio(c.RAMAllocationRatio, DefaultRAMAllocationRatio))
	}
	if res.DiskGB > 0 {
		out.Inventories["DISK_GB"] = inv(int64(res.DiskGB), c.ReservedHostDiskGB, ratio(c.DiskAllocationRatio, DefaultDiskAllocationRatio))
	}
	traits := slices.Clone(res.Traits)
	if a := hostArchTrait(); a != "" && !slices.ContainsFunc(traits, func(t string) bool { return strings.HasPrefix(t, "HW_ARCH_") }) {
		traits = append(traits, a)
	}
	slices.Sort(traits)
	out.Traits = slices.Compact(traits)
	return out
}

// hostArchTrait is the HW_ARCH_* trait of the machine the agent runs on.
func hostArchTrait() string {
	switch runtime.GOARCH {
	case "amd64":
		return "HW_ARCH_X86_64"
	case "arm64":
		return "HW_ARCH_AARCH64"
	case "386":
		return "HW_ARCH_I686"
	case "ppc64le":
		return "HW_ARCH_PPC64LE"
	case "s390x":
		return "HW_ARCH_S390X"
	}
	return ""
}
