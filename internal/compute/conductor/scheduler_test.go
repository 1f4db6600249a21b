package conductor

import (
	"fmt"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/store"
)

func TestStepsOfEveryKind(t *testing.T) {
	for name, k := range kinds {
		if k.event == "" || k.fail == nil {
			t.Errorf("%s: no event or failure outcome", name)
		}
		seen := map[string]bool{}
		for _, s := range k.steps {
			if s.name == "" || s.run == nil || seen[s.name] {
				t.Errorf("%s: bad step %q", name, s.name)
			}
			seen[s.name] = true
		}
	}
}

func TestFlavorResources(t *testing.T) {
	f := store.InstanceFlavor{VCPUs: 2, MemoryMB: 512, RootGB: 10, EphemeralGB: 5, Swap: 1536,
		ExtraSpecs: map[string]string{"resources:CUSTOM_GPU": "1", "resources:VCPU": "0", "trait:HW_CPU_X86_AVX2": "required", "trait:CUSTOM_SLOW": "forbidden"}}
	for _, tc := range []struct {
		name         string
		volumeBacked bool
		disk         int64
	}{
		{"local root", false, 10 + 5 + 2},
		{"volume-backed: no root disk from the host", true, 5 + 2},
	} {
		f.VolumeBacked = tc.volumeBacked
		res, req, forb := flavorResources(f)
		if res["DISK_GB"] != tc.disk || res["MEMORY_MB"] != 512 || res["CUSTOM_GPU"] != 1 {
			t.Errorf("%s: resources %v", tc.name, res)
		}
		if _, ok := res["VCPU"]; ok {
			t.Errorf("%s: resources:VCPU=0 must drop VCPU: %v", tc.name, res)
		}
		if len(req) != 1 || req[0] != "HW_CPU_X86_AVX2" || len(forb) != 1 || forb[0] != "CUSTOM_SLOW" {
			t.Errorf("%s: traits %v %v", tc.name, req, forb)
		}
	}
	// A volume-backed flavor without ephemeral or swap asks for no disk.
	res, _, _ := flavorResources(store.InstanceFlavor{VCPUs: 1, MemoryMB: 64, RootGB: 1, VolumeBacked: true})
	if _, ok := res["DISK_GB"]; ok {
		t.Errorf("volume-backed m1.tiny asks for disk: %v", res)
	}
}

// TestLocalDiskDevices: volumes of a mapping are named after the local
// disks the driver makes (/dev/vdb... for each ephemeral disk, then swap).
func TestLocalDiskDevices(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    store.InstanceFlavor
		want string // the first free device for a volume
	}{
		{"no local disks", store.InstanceFlavor{RootGB: 1}, "/dev/vdb"},
		{"flavor ephemeral and swap", store.InstanceFlavor{EphemeralGB: 2, Swap: 64}, "/dev/vdd"},
		{"two mapped ephemerals", store.InstanceFlavor{EphemeralGB: 3, Ephemerals: []store.LocalDisk{{SizeGB: 1}, {SizeGB: 2}}}, "/dev/vdd"},
		{"two mapped ephemerals and swap mapping", store.InstanceFlavor{EphemeralGB: 3, SwapMB: 32,
			Ephemerals: []store.LocalDisk{{SizeGB: 1}, {SizeGB: 2}}}, "/dev/vde"},
	} {
		used := map[string]bool{}
		for n := range localDisks(tc.f) {
			used[fmt.Sprintf("/dev/vd%c", 'b'+n)] = true
		}
		if got := deviceFor(&BlockDevice{BootIndex: -1}, used); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
