package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// VM is the typed configuration of one QEMU process. Args turns it into a
// command line; nothing else decides what QEMU is asked to do, so golden
// tests of Args cover the whole contract with QEMU.
type VM struct {
	Name     string // -name, e.g. instance-0000002a
	UUID     string // SMBIOS system uuid
	Machine  string // q35 or pc
	Accel    string // kvm or tcg
	CPU      string // host, max, qemu64, ...
	VCPUs    int
	MemoryMB int

	// Direct kernel boot when Kernel is set.
	Kernel, Initrd, Append string

	Disks []Disk
	NICs  []NetDev
	// HotplugPorts adds that many PCIe root ports (ids hotplug0...) on
	// q35, the slots volumes are hot-plugged into (driver_volumes.go).
	HotplugPorts int

	QMPSocket  string // unix socket, server side
	PIDFile    string
	ConsoleLog string // serial console, appended to
	// SerialSocket, when set, makes the serial port a unix socket server
	// (the interactive console) that still logs to ConsoleLog.
	SerialSocket string
	// VNCSocket, when set, serves the display by VNC on a unix socket
	// (with a VGA adapter for it to show).
	VNCSocket string

	// Daemonize detaches QEMU from the agent (it survives agent restarts).
	Daemonize bool
	// Incoming starts QEMU waiting for migration state ("defer": the
	// source is given later by migrate-incoming).
	Incoming string
	// Paused starts with stopped vCPUs (-S).
	Paused bool
}

// Disk is one virtio-blk disk.
type Disk struct {
	ID       string // node and device id, e.g. "root"
	Path     string
	Format   string // qcow2 or raw
	ReadOnly bool
	Serial   string // visible in the guest as /dev/disk/by-id/virtio-<serial>
	// BootIndex orders boot devices; 0 leaves the disk out of the order.
	BootIndex int
	// Bus places the device on a hot-plug port (a volume, so that it can
	// be unplugged later); empty means the default bus.
	Bus string `json:",omitempty"`
	// Throttle limits the disk's I/O (a volume's front-end QoS spec,
	// throttle.go); nil: unlimited.
	Throttle *Throttle `json:",omitempty"`
}

// NetDev is one virtio-net NIC. Tap names a host tap device; User selects
// QEMU's user-mode network instead (tests only: no host networking needed).
type NetDev struct {
	ID   string
	MAC  string
	Tap  string
	User bool
	MTU  int
}

// escape doubles commas, QEMU's escape inside option values.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// Args renders the command line (without the binary). It is a pure
// function: same VM, same arguments.
func Args(vm VM) ([]string, error) {
	if vm.VCPUs <= 0 || vm.MemoryMB <= 0 {
		return nil, fmt.Errorf("qemu: vm %q needs vcpus and memory", vm.Name)
	}
	if vm.QMPSocket == "" {
		return nil, fmt.Errorf("qemu: vm %q needs a qmp socket", vm.Name)
	}
	machine, accel, cpu := vm.Machine, vm.Accel, vm.CPU
	if machine == "" {
		machine = "q35"
	}
	switch accel {
	case "kvm", "tcg":
	case "":
		accel = "tcg"
	default:
		return nil, fmt.Errorf("qemu: unknown accelerator %q", accel)
	}
	if cpu == "" {
		// Under TCG a named model, not "max": "max" is not migration-safe,
		// and guests live-migrated with it crashed now and then right
		// after the switch-over (a wild jump in the idle loop, about one
		// migration in six of the test guest); with qemu64 none did.
		cpu = "qemu64"
		if accel == "kvm" {
			cpu = "host"
		}
	}

	a := []string{
		"-name", "guest=" + escape(vm.Name) + ",debug-threads=on",
		"-no-user-config", "-nodefaults",
		"-machine", machine + ",usb=off,dump-guest-core=off",
		"-accel", accel,
		"-cpu", cpu,
		"-smp", strconv.Itoa(vm.VCPUs),
		"-m", strconv.Itoa(vm.MemoryMB),
		"-display", "none",
		"-rtc", "base=utc",
		"-msg", "timestamp=on",
		// A panicking guest stays around as guest-panicked (Crashed) instead
		// of vanishing; a guest power-off ends the process.
		"-action", "panic=pause",
		"-device", "pvpanic",
		"-object", "rng-random,id=rng0,filename=/dev/urandom",
		"-device", "virtio-rng-pci,rng=rng0",
	}
	if vm.UUID != "" {
		a = append(a, "-uuid", vm.UUID, "-smbios", "type=1,manufacturer=Kumo,product=OpenStack Compute,serial="+vm.UUID+",uuid="+vm.UUID)
	}
	a = append(a,
		"-chardev", "socket,id=qmp,path="+escape(vm.QMPSocket)+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
	)
	switch {
	case vm.SerialSocket != "":
		cd := "socket,id=console,path=" + escape(vm.SerialSocket) + ",server=on,wait=off"
		if vm.ConsoleLog != "" {
			cd += ",logfile=" + escape(vm.ConsoleLog) + ",logappend=on"
		}
		a = append(a, "-chardev", cd, "-serial", "chardev:console")
	case vm.ConsoleLog != "":
		a = append(a,
			"-chardev", "file,id=console,path="+escape(vm.ConsoleLog)+",append=on",
			"-serial", "chardev:console")
	}
	if vm.VNCSocket != "" {
		a = append(a, "-vnc", "unix:"+escape(vm.VNCSocket), "-device", "VGA")
	}
	if vm.Kernel != "" {
		a = append(a, "-kernel", vm.Kernel)
		if vm.Initrd != "" {
			a = append(a, "-initrd", vm.Initrd)
		}
		if vm.Append != "" {
			a = append(a, "-append", vm.Append)
		}
	}
	if machine == "q35" {
		for i := 0; i < vm.HotplugPorts; i++ {
			a = append(a, "-device", fmt.Sprintf("pcie-root-port,id=hotplug%d,chassis=%d,bus=pcie.0", i, i+1))
		}
	}
	for _, d := range vm.Disks {
		if d.ID == "" || d.Path == "" {
			return nil, fmt.Errorf("qemu: disk needs an id and a path: %+v", d)
		}
		format := d.Format
		if format == "" {
			format = "qcow2"
		}
		if format != "qcow2" && format != "raw" {
			return nil, fmt.Errorf("qemu: disk %s: unsupported format %q", d.ID, format)
		}
		ro := "off"
		if d.ReadOnly {
			ro = "on"
		}
		if err := d.Throttle.validate(); err != nil {
			return nil, fmt.Errorf("qemu: disk %s: %w", d.ID, err)
		}
		node := d.ID
		if d.Throttle != nil {
			node = formatNode(d.ID)
		}
		blockdev := fmt.Sprintf("driver=%s,node-name=%s,read-only=%s,discard=unmap,file.driver=%s,file.filename=%s",
			format, node, ro, fileDriver(d.Path), escape(d.Path))
		if d.Throttle != nil {
			a = append(a, throttleArgs(d, blockdev)...)
		} else {
			a = append(a, "-blockdev", blockdev)
		}
		dev := "virtio-blk-pci,drive=" + d.ID + ",id=" + d.ID
		if d.Bus != "" {
			dev += ",bus=" + d.Bus
		}
		if d.Serial != "" {
			dev += ",serial=" + escape(d.Serial)
		}
		if d.BootIndex > 0 {
			dev += ",bootindex=" + strconv.Itoa(d.BootIndex)
		}
		a = append(a, "-device", dev)
	}
	for _, n := range vm.NICs {
		if n.ID == "" {
			return nil, fmt.Errorf("qemu: nic needs an id: %+v", n)
		}
		switch {
		case n.User:
			a = append(a, "-netdev", "user,id="+n.ID)
		case n.Tap != "":
			a = append(a, "-netdev", "tap,id="+n.ID+",ifname="+escape(n.Tap)+",script=no,downscript=no")
		default:
			return nil, fmt.Errorf("qemu: nic %s has neither a tap nor user networking", n.ID)
		}
		// romfile= skips the iPXE option ROM: Kumo guests never net-boot.
		dev := "virtio-net-pci,netdev=" + n.ID + ",id=" + n.ID + ",romfile="
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		if n.MTU > 0 {
			dev += ",host_mtu=" + strconv.Itoa(n.MTU)
		}
		a = append(a, "-device", dev)
	}
	if vm.PIDFile != "" {
		a = append(a, "-pidfile", vm.PIDFile)
	}
	if vm.Paused {
		a = append(a, "-S")
	}
	if vm.Incoming != "" {
		a = append(a, "-incoming", vm.Incoming)
	}
	if vm.Daemonize {
		a = append(a, "-daemonize")
	}
	return a, nil
}

// fileDriver is QEMU's protocol driver for a disk path: host_device for
// block devices (LVM volumes), file otherwise.
func fileDriver(path string) string {
	if strings.HasPrefix(path, "/dev/") {
		return "host_device"
	}
	return "file"
}
