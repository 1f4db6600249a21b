package qemu

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/virt"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name.golden (or rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, p, got, want)
	}
}

// render puts one option and its value per line, for readable diffs.
func render(args []string) string {
	var b strings.Builder
	for i := 0; i < len(args); i++ {
		b.WriteString(args[i])
		if strings.HasPrefix(args[i], "-") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			b.WriteString(" " + args[i+1])
			i++
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestArgsGolden(t *testing.T) {
	const dir = "/var/lib/kumo/qemu/6f1d0c1e-0000-4000-8000-00000000002a"
	base := VM{
		Name: "instance-0000002a", UUID: "6f1d0c1e-0000-4000-8000-00000000002a",
		VCPUs: 2, MemoryMB: 512,
		QMPSocket: dir + "/qmp.sock", PIDFile: dir + "/qemu.pid", ConsoleLog: dir + "/console.log",
		Daemonize: true,
		Disks:     []Disk{{ID: "root", Path: dir + "/disk.qcow2", Format: "qcow2", Serial: "root", BootIndex: 1}},
	}
	tests := map[string]func(vm *VM){
		"minimal_tcg": func(vm *VM) { vm.Accel = "tcg" },
		"consoles": func(vm *VM) {
			vm.SerialSocket, vm.VNCSocket = dir+"/serial.sock", dir+"/vnc.sock"
		},
		"kvm_taps_flavor_disks": func(vm *VM) {
			vm.Accel, vm.Machine = "kvm", "pc"
			vm.Disks = append(vm.Disks,
				Disk{ID: "eph0", Path: dir + "/disk.eph0.qcow2", Format: "qcow2", Serial: "ephemeral0"},
				Disk{ID: "swap", Path: dir + "/disk.swap.qcow2", Format: "qcow2", Serial: "swap"},
				Disk{ID: "config", Path: dir + "/config.iso", Format: "raw", ReadOnly: true, Serial: "config-2"})
			vm.NICs = []NetDev{
				{ID: "net0", MAC: "fa:16:3e:00:00:01", Tap: "tap1234abcd-12", MTU: 1450},
				{ID: "net1", MAC: "fa:16:3e:00:00:02", Tap: "tap5678abcd-34"},
			}
		},
		"direct_kernel_user_net": func(vm *VM) {
			vm.Kernel, vm.Initrd, vm.Append = "/var/cache/kumo/guest/vmlinuz", "/var/cache/kumo/guest/initrd.img", "console=ttyS0 quiet"
			vm.NICs = []NetDev{{ID: "net0", MAC: "fa:16:3e:00:00:01", User: true}}
		},
		"resume_incoming": func(vm *VM) { vm.Incoming, vm.Paused = "defer", true },
		"rescue": func(vm *VM) {
			vm.Disks = []Disk{
				{ID: "rescue", Path: dir + "/disk.rescue.qcow2", Format: "qcow2", Serial: "rescue", BootIndex: 1},
				{ID: "root", Path: dir + "/disk.qcow2", Format: "qcow2", Serial: "root"},
			}
		},
		"comma_in_path": func(vm *VM) { vm.Disks[0].Path = "/srv/odd,dir/disk.qcow2" },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			vm := base
			vm.Disks = append([]Disk(nil), base.Disks...)
			mod(&vm)
			args, err := Args(vm)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "args_"+name, render(args))
		})
	}
}

func TestArgsRejects(t *testing.T) {
	ok := VM{Name: "x", VCPUs: 1, MemoryMB: 64, QMPSocket: "/q"}
	for name, vm := range map[string]VM{
		"no memory":   {Name: "x", VCPUs: 1, QMPSocket: "/q"},
		"no qmp":      {Name: "x", VCPUs: 1, MemoryMB: 64},
		"bad accel":   func() VM { v := ok; v.Accel = "hvf"; return v }(),
		"bad format":  func() VM { v := ok; v.Disks = []Disk{{ID: "d", Path: "/d", Format: "vmdk"}}; return v }(),
		"nic nowhere": func() VM { v := ok; v.NICs = []NetDev{{ID: "n"}}; return v }(),
	} {
		if _, err := Args(vm); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDriverVM checks the instance → VM mapping the driver feeds Args.
func TestDriverVM(t *testing.T) {
	d := &Driver{cfg: Config{StateDir: "/s", UserNetworking: false}}
	rec := &record{Instance: virt.Instance{
		UUID: "u1", Name: "instance-1", VCPUs: 1, MemoryMB: 128, EphemeralGB: 1, SwapMB: 256, ConfigDrive: true,
		Image: virt.Image{Path: "/img", KernelPath: "/k", RamdiskPath: "/r"},
		NICs:  []virt.NIC{{MAC: "fa:16:3e:00:00:01", Tap: "tapx", MTU: 1500}},
	}}
	vm := d.vm(rec, "tcg", false)
	b, _ := json.MarshalIndent(vm, "", "  ")
	golden(t, "driver_vm", string(b)+"\n")

	rec.Rescue = &virt.Image{Path: "/rescue"}
	vm = d.vm(rec, "tcg", true)
	if vm.Disks[0].ID != "rescue" || vm.Disks[0].BootIndex != 1 || vm.Disks[1].ID != "root" || vm.Disks[1].BootIndex != 0 {
		t.Errorf("rescue disks %+v", vm.Disks)
	}
	if vm.Kernel != "" {
		t.Errorf("rescue image without kernel still boots the instance kernel %q", vm.Kernel)
	}
	if vm.Incoming != "defer" || !vm.Paused {
		t.Errorf("incoming vm %+v", vm)
	}
}

// TestDriverVMEphemerals checks the disk layout of block device mappings'
// ephemeral disks: each its own file, after the root in order, then swap
// and the config drive; the rendered command line is golden.
func TestDriverVMEphemerals(t *testing.T) {
	d := &Driver{cfg: Config{StateDir: "/s"}}
	for name, tc := range map[string]struct {
		inst    virt.Instance
		wantIDs []string
	}{
		"flavor ephemeral": {virt.Instance{EphemeralGB: 2}, []string{"root", "eph0"}},
		"no ephemeral":     {virt.Instance{SwapMB: 64}, []string{"root", "swap"}},
		"two mappings and swap": {virt.Instance{EphemeralGB: 3, SwapMB: 128, ConfigDrive: true,
			Ephemerals: []virt.Ephemeral{{SizeGB: 1}, {SizeGB: 2, GuestFormat: "ext4"}}},
			[]string{"root", "eph0", "eph1", "swap", "config"}},
		"three mappings": {virt.Instance{EphemeralGB: 3, Ephemerals: []virt.Ephemeral{{SizeGB: 1}, {SizeGB: 1}, {SizeGB: 1}}},
			[]string{"root", "eph0", "eph1", "eph2"}},
	} {
		t.Run(name, func(t *testing.T) {
			inst := tc.inst
			inst.UUID, inst.Name, inst.VCPUs, inst.MemoryMB = "u1", "instance-1", 1, 128
			vm := d.vm(&record{Instance: inst}, "tcg", false)
			var ids []string
			for n, dk := range vm.Disks {
				ids = append(ids, dk.ID)
				if rest, ok := strings.CutPrefix(dk.ID, "eph"); ok &&
					(dk.Path != "/s/u1/disk.eph"+rest+".qcow2" || dk.Serial != "ephemeral"+rest || n == 0) {
					t.Errorf("disk %d = %+v", n, dk)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("disks %v, want %v", ids, tc.wantIDs)
			}
		})
	}
	inst := virt.Instance{UUID: "6f1d0c1e-0000-4000-8000-00000000002a", Name: "instance-0000002a", VCPUs: 1, MemoryMB: 128,
		EphemeralGB: 3, SwapMB: 128, Ephemerals: []virt.Ephemeral{{SizeGB: 1}, {SizeGB: 2}}}
	vm := d.vm(&record{Instance: inst}, "tcg", false)
	vm.QMPSocket = "/s/qmp.sock"
	args, err := Args(vm)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "args_bdm_ephemerals", render(args))
}
