package agent

import (
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

func TestProviderReport(t *testing.T) {
	res := virt.Resources{VCPUs: 8, MemoryMB: 4096, DiskGB: 100, Traits: []string{"COMPUTE_NET_ATTACH_INTERFACE", "CUSTOM_X", "COMPUTE_NET_ATTACH_INTERFACE"}}
	for _, tc := range []struct {
		name string
		cfg  ResourceConfig
		want map[string]rpc.InventoryReport
	}{
		{"nova defaults", ResourceConfig{}, map[string]rpc.InventoryReport{
			"VCPU":      {Total: 8, MinUnit: 1, MaxUnit: 8, StepSize: 1, AllocationRatio: 16},
			"MEMORY_MB": {Total: 4096, MinUnit: 1, MaxUnit: 4096, StepSize: 1, AllocationRatio: 1.5},
			"DISK_GB":   {Total: 100, MinUnit: 1, MaxUnit: 100, StepSize: 1, AllocationRatio: 1}}},
		{"ratios and reserved", ResourceConfig{CPUAllocationRatio: 4, RAMAllocationRatio: 1, DiskAllocationRatio: 2,
			ReservedHostCPUs: 1, ReservedHostMemoryMB: 512, ReservedHostDiskGB: 1000}, map[string]rpc.InventoryReport{
			"VCPU":      {Total: 8, Reserved: 1, MinUnit: 1, MaxUnit: 8, StepSize: 1, AllocationRatio: 4},
			"MEMORY_MB": {Total: 4096, Reserved: 512, MinUnit: 1, MaxUnit: 4096, StepSize: 1, AllocationRatio: 1},
			"DISK_GB":   {Total: 100, Reserved: 100, MinUnit: 1, MaxUnit: 100, StepSize: 1, AllocationRatio: 2}}}, // reserved capped at total
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.ProviderReport(res)
			if len(got.Inventories) != len(tc.want) {
				t.Fatalf("inventories %+v", got.Inventories)
			}
			for rc, w := range tc.want {
				if got.Inventories[rc] != w {
					t.Errorf("%s: %+v, want %+v", rc, got.Inventories[rc], w)
				}
			}
			if len(got.Traits) != 3 || got.Traits[0] != "COMPUTE_NET_ATTACH_INTERFACE" || got.Traits[1] != "CUSTOM_X" || got.Traits[2][:8] != "HW_ARCH_" {
				t.Errorf("traits %v", got.Traits)
			}
		})
	}
	// A host that reports nothing offers nothing.
	if got := (ResourceConfig{}).ProviderReport(virt.Resources{}); len(got.Inventories) != 0 {
		t.Fatalf("empty host %+v", got.Inventories)
	}
}
