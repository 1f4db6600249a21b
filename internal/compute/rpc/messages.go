// Package rpc is the bus contract between the compute control plane
// (API, conductor) and the compute agents: subjects, message types, their
// payloads and their version history. It is the one file to read (and
// the one to change) when the conversation between them changes; the
// rules for changing it are those of internal/bus.
//
// Agents never open the database: everything they learn and report goes
// through these messages.
//
// # Subjects
//
//	kumo.compute.conductor      conductors, queue group "conductor"
//	kumo.compute.agent.<host>   the agent of one host
//
// # Messages and version history
//
// compute.task.kick (event, API -> conductor): a server got a new task;
// the conductor that receives it runs it now instead of at its next scan.
// Losing it only delays the task (conductors scan for pending tasks).
//
//	1.0  {"uuid"}
//
// compute.host.report (event, agent -> conductor): the agent's heartbeat.
// It registers the host's compute service and node on first receipt and
// carries the power state of every instance the driver knows, which the
// conductor uses to sync servers whose guests changed outside Kumo.
//
//	1.0  {"host", "driver", "hypervisor_hostname", "host_ip", "resources":
//	     {"vcpus", "memory_mb", "disk_gb"}, "instances": [{"uuid",
//	     "power_state"}]}
//	1.1  adds the resource tracker's view: "provider": {"inventories":
//	     {CLASS: {"total", "reserved", "min_unit", "max_unit", "step_size",
//	     "allocation_ratio"}}, "traits": [...]}, and "startup" (true on
//	     the registration report of a starting agent: the conductor then
//	     heals the host's resource provider in placement whatever its
//	     cache says). A 1.0 report gets inventories derived from
//	     "resources" with Nova's default allocation ratios.
//
// compute.instance.op (request, conductor -> agent): bring one instance to
// the state an operation implies. Operations are idempotent: repeating
// one whose effect is already there succeeds (spawn of a running
// instance, destroy of a missing one), so a restarted conductor can
// simply send the step it was at again. The reply carries the instance's
// power state afterwards.
//
//	1.0  request {"op", "instance": Instance, "hard", "max_bytes",
//	     "image_id", "stopped"}; reply {"power_state", "output"}
//	     ops: spawn, destroy, power_off, power_on, reboot, pause, unpause,
//	     suspend, resume, rescue, unrescue, console, info
//	1.1  ops attach_volume and detach_volume with the request field
//	     "volume": {"id", "path", "format", "device", "read_only"}; the
//	     agent hot-plugs the disk into the running guest (or unplugs it).
//	     Both are idempotent. An agent speaking 1.0 answers "unsupported".
//	1.2  ops set_password (request field "password") and inject_nmi;
//	     error code "no_guest_agent"
//	1.3  instance gains "admin_pass" and "vifs" [{"port_id", "network_id",
//	     "mac", "mtu", "bridge"}] (the agent creates a tap per VIF, named
//	     Neutron style, TapName); request gains "snapshot": {"image_id",
//	     "disk_format"} for the new op "snapshot" (the agent uploads the
//	     root disk into that queued image), and "console_type" for the new
//	     op "console_connect", whose reply carries "console": {"type",
//	     "path"} (a host-local unix socket the console proxy dials); new op
//	     "resize": the instance on this host takes the request's flavor,
//	     keeping its disks (same-host resize).
//	1.4  instance gains "block_devices": [Volume], the volumes plugged at
//	     spawn (the one with "root" true is the boot disk; the image, if
//	     any, then gives no disk), and "image_meta", the boot volume's
//	     image properties (kernel_id, ramdisk_id, os_command_line for
//	     direct kernel boot); volume gains "root". An agent speaking 1.3
//	     rejects the message (unsupported_version) instead of booting a
//	     volume-backed server without its disk.
//	1.5  new op "migrate_out" (the source of a cold migration or resize
//	     across hosts powers the instance off, keeps it, and answers
//	     "export": {"token", "disks": [DiskFile]}, the disks a destination
//	     copies; no disks when the driver has none worth copying); spawn
//	     gains "migration": {"source_host", "token", "disks"}: the
//	     destination pulls those disks from the source agent with
//	     compute.disk.read before it starts the guest. An older source
//	     agent (bus capped below 1.5) answers migrate_out "unsupported": the
//	     move then fails and the server stays on its source, disk intact.
//	     console_connect gains the request field "tunnel" (an id): the
//	     agent joins the console to that tunnel (internal/compute/tunnel,
//	     raw frames on kumo.compute.tunnel.<id>.up|down) and answers
//	     "console": {"type", "tunnel": true}, so the console proxy reaches
//	     guests on any host through the bus. An older agent ignores the field
//	     and answers a host-local "path" only.
//	1.6  new op "diagnostics": the reply carries "diagnostics"
//	     (Diagnostics: state, driver, hypervisor, uptime, cpu, memory,
//	     disk and nic counters; what the driver does not know is null);
//	     new op "host_uptime", about the host rather than an instance
//	     (no instance uuid needed), whose reply carries "uptime" (the
//	     host's uptime line, as uptime(1) prints it). An older agent rejects
//	     1.6 requests (unsupported version); while the bus is capped
//	     below 1.6 the API does not send the new ops (501 to its caller).
//	     Later, without a version step: volume (attach_volume, and the
//	     instance's block_devices) gains the optional "qos_specs" {key:
//	     value}, the front-end QoS spec of the volume's type; an agent that
//	     does not know the field plugs the disk unthrottled, as before.
//	1.7  instance gains "ephemerals": [{"size_gb", "guest_format"}], the
//	     ephemeral disks of blank local block device mappings, each its
//	     own disk in guest order ("ephemeral_gb" is then their sum), and
//	     "swap_mb" is the swap mapping's size when one replaced the
//	     flavor's. An agent speaking 1.6 rejects 1.7 messages; while the
//	     bus is capped below 1.7 an older agent ignores "ephemerals" and
//	     makes one ephemeral disk of "ephemeral_gb".
//	     Also in 1.7 (one step with the ephemerals above; no release
//	     had either alone): live migration that moves the guest's disks and memory (the
//	     QEMU driver: block mirroring over NBD, then memory), four new ops
//	     carrying "live": LiveMigration in request and reply:
//	     "live_disks" (source: reply "live": {"disks": [{"name",
//	     "virtual_size", "backing_image"}]}), "live_prepare" (destination:
//	     request "live": {"source_host", "disks"} with the full instance;
//	     the agent creates the guest with empty disks, waiting for the
//	     migration; reply "live": {"host", "nbd_port", "migration_port",
//	     "disks"}, host being its migration address), "live_migrate"
//	     (source: request "live" = that reply plus "dest_host"; reply
//	     "live": {"progress": {"memory_total", "memory_processed",
//	     "memory_remaining", "disk_total", "disk_processed",
//	     "disk_remaining"}}; on failure the source guest runs on) and
//	     "live_finish" (destination: request "live": {"paused"}; the
//	     guest runs, or stays paused); "live_abort" and
//	     "live_force_complete" (source, answered at once, also while
//	     live_migrate runs: the first makes it fail with error code
//	     "cancelled", the second pauses the guest so that the copy ends;
//	     "conflict" when no live_migrate runs). An agent older than 1.7 rejects
//	     them (unsupported_version), a driver that cannot (fake without
//	     it, or any other) answers "unsupported": the conductor then
//	     falls back to the 1.6 behaviour, recreating the guest from its
//	     image on the destination. While the bus is capped below 1.7 the
//	     conductor does not try.
//
// compute.disk.read (request, agent -> agent, on the source's subject):
// one chunk of a disk the source exported for a migration. The token
// of the export is the capability: only disks of a stopped instance that
// the conductor asked the source to export can be read, and only until
// the instance is changed again (any other operation on it ends the
// export).
//
//	1.0  request {"uuid", "token", "disk", "offset", "length"}; reply
//	     {"data" (base64), "eof"}. Errors "not_found" (unknown export or
//	     disk).
//
// Error codes of compute.instance.op replies: "not_found" (the driver does
// not know the instance), "conflict" (its power state forbids the
// operation), "unsupported" (the driver cannot do it), "failed" (the
// driver tried and failed; Message says why).
package rpc

import "github.com/kumo-cloud/kumo/internal/bus"

// Subjects.
const (
	SubjectConductor = "kumo.compute.conductor"
	QueueConductor   = "conductor"
)

// SubjectAgent is the subject of the agent on host.
func SubjectAgent(host string) string { return "kumo.compute.agent." + host }

// Message types and the versions this code speaks.
const (
	MsgKick       = "compute.task.kick"
	MsgHostReport = "compute.host.report"
	MsgOp         = "compute.instance.op"
	MsgDiskRead   = "compute.disk.read"
)

var (
	KickVersion   = bus.V(1, 0)
	ReportVersion = bus.V(1, 1)
	OpVersion     = bus.V(1, 7)
	// DiskReadVersion is compute.disk.read's.
	DiskReadVersion = bus.V(1, 0)
)

// DiskChunk is the most compute.disk.read returns at once: base64 in a
// JSON envelope keeps it under NATS's default 1 MiB message limit.
const DiskChunk = 512 << 10

// Application error codes of compute.instance.op.
const (
	CodeNotFound    = bus.CodeNotFound
	CodeConflict    = bus.CodeConflict
	CodeUnsupported = "unsupported"
	CodeFailed      = "failed"
	// CodeNoGuestAgent: the operation needs a guest agent (1.2).
	CodeNoGuestAgent = "no_guest_agent"
	// CodeCancelled: live_migrate was aborted by live_abort (1.7).
	CodeCancelled = "cancelled"
)

// Kick is compute.task.kick 1.0.
type Kick struct {
	UUID string `json:"uuid"`
}

// Resources is a host's capacity.
type Resources struct {
	VCPUs    int `json:"vcpus"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
}

// InstancePower is one instance's power state as the driver sees it.
type InstancePower struct {
	UUID       string `json:"uuid"`
	PowerState int    `json:"power_state"`
}

// HostReport is compute.host.report 1.0.
type HostReport struct {
	Host               string          `json:"host"`
	Driver             string          `json:"driver"`
	HypervisorHostname string          `json:"hypervisor_hostname"`
	HostIP             string          `json:"host_ip,omitempty"`
	Resources          Resources       `json:"resources"`
	Instances          []InstancePower `json:"instances"`
	// Provider (1.1) is what the host's resource provider should hold.
	Provider *ProviderReport `json:"provider,omitempty"`
	// Startup (1.1) marks the registration report of a starting agent.
	Startup bool `json:"startup,omitempty"`
}

// ProviderReport is a host's inventories (by placement resource class)
// and traits, as its resource tracker computes them.
type ProviderReport struct {
	Inventories map[string]InventoryReport `json:"inventories"`
	Traits      []string                   `json:"traits"`
}

// InventoryReport is one resource class of a host.
type InventoryReport struct {
	Total           int64   `json:"total"`
	Reserved        int64   `json:"reserved"`
	MinUnit         int64   `json:"min_unit"`
	MaxUnit         int64   `json:"max_unit"`
	StepSize        int64   `json:"step_size"`
	AllocationRatio float64 `json:"allocation_ratio"`
}

// Operations of compute.instance.op.
const (
	OpSpawn    = "spawn"
	OpDestroy  = "destroy"
	OpPowerOff = "power_off"
	OpPowerOn  = "power_on"
	OpReboot   = "reboot"
	OpPause    = "pause"
	OpUnpause  = "unpause"
	OpSuspend  = "suspend"
	OpResume   = "resume"
	OpRescue   = "rescue"
	OpUnrescue = "unrescue"
	OpConsole  = "console"
	OpInfo     = "info"
	// 1.1
	OpAttachVolume = "attach_volume"
	OpDetachVolume = "detach_volume"
	// 1.2
	OpSetPassword = "set_password"
	OpInjectNMI   = "inject_nmi"
	// 1.3
	// OpSnapshot uploads the root disk into a queued image (1.3).
	OpSnapshot = "snapshot"
	// OpResize brings an existing instance to the flavor of the request,
	// keeping its disks where the driver can (1.3).
	OpResize = "resize"
	// OpConsoleConnect returns where the console proxy reaches a console (1.3).
	OpConsoleConnect = "console_connect"
	// 1.5
	// OpMigrateOut powers off the source of a cold move, keeping it, and
	// exports its disks for the destination (1.5).
	OpMigrateOut = "migrate_out"
	// 1.6
	// OpDiagnostics reports an instance's diagnostics (1.6).
	OpDiagnostics = "diagnostics"
	// OpHostUptime reports the host's uptime (1.6).
	OpHostUptime = "host_uptime"
	// 1.7: live migration moving disks and memory.
	// OpLiveDisks lists the disks a live migration copies (source).
	OpLiveDisks = "live_disks"
	// OpLivePrepare creates the guest waiting for a live migration
	// (destination).
	OpLivePrepare = "live_prepare"
	// OpLiveMigrate copies disks and memory to the destination (source).
	OpLiveMigrate = "live_migrate"
	// OpLiveFinish resumes the migrated guest (destination).
	OpLiveFinish = "live_finish"
	// OpLiveAbort cancels a running live_migrate (source).
	OpLiveAbort = "live_abort"
	// OpLiveForceComplete makes a running live_migrate finish by pausing
	// the guest for the rest of the copy (source).
	OpLiveForceComplete = "live_force_complete"
)

// DiskFile is one disk of an exported instance (1.5).
type DiskFile struct {
	// Name is the disk's name in the driver's layout (e.g. disk.qcow2).
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// BackingImage, when set, is the image the disk is a copy-on-write
	// overlay of: the destination takes it from its own image cache
	// (verified by hash) instead of copying it.
	BackingImage string `json:"backing_image,omitempty"`
}

// Export is what migrate_out answers: a token and the disks it opens.
type Export struct {
	Token string     `json:"token"`
	Disks []DiskFile `json:"disks"`
}

// Migration tells a spawn on the destination where the disks are (1.5).
type Migration struct {
	SourceHost string     `json:"source_host"`
	Token      string     `json:"token"`
	Disks      []DiskFile `json:"disks"`
}

// LiveMigration is the "live" field of the 1.7 live-migration ops.
type LiveMigration struct {
	// SourceHost is the host the guest comes from (live_prepare).
	SourceHost string `json:"source_host,omitempty"`
	// DestHost is the host the guest goes to (live_migrate).
	DestHost string     `json:"dest_host,omitempty"`
	Disks    []LiveDisk `json:"disks,omitempty"`
	// Host, NBDPort and MigrationPort are where the prepared destination
	// receives: its migration address, its NBD server, its incoming
	// migration listener.
	Host          string `json:"host,omitempty"`
	NBDPort       int    `json:"nbd_port,omitempty"`
	MigrationPort int    `json:"migration_port,omitempty"`
	// Paused keeps the guest paused at live_finish.
	Paused bool `json:"paused,omitempty"`
	// Progress answers live_migrate: the last counters.
	Progress *MigrationProgress `json:"progress,omitempty"`
}

// LiveDisk is one disk a live migration copies.
type LiveDisk struct {
	Name        string `json:"name"`
	VirtualSize int64  `json:"virtual_size"`
	// BackingImage, when set: the disk is an overlay of that image, which
	// the destination takes from its own image cache.
	BackingImage string `json:"backing_image,omitempty"`
}

// MigrationProgress is how far a live migration got, in bytes.
type MigrationProgress struct {
	MemoryTotal     int64 `json:"memory_total"`
	MemoryProcessed int64 `json:"memory_processed"`
	MemoryRemaining int64 `json:"memory_remaining"`
	DiskTotal       int64 `json:"disk_total"`
	DiskProcessed   int64 `json:"disk_processed"`
	DiskRemaining   int64 `json:"disk_remaining"`
}

// DiskRead is the request of compute.disk.read 1.0.
type DiskRead struct {
	UUID   string `json:"uuid"`
	Token  string `json:"token"`
	Disk   string `json:"disk"`
	Offset int64  `json:"offset"`
	Length int    `json:"length"`
}

// DiskData is the reply of compute.disk.read 1.0.
type DiskData struct {
	Data []byte `json:"data"`
	EOF  bool   `json:"eof,omitempty"`
}

// VIF is one network interface of an instance (a Neutron port) as the
// host should plug it (1.3).
type VIF struct {
	PortID    string `json:"port_id"`
	NetworkID string `json:"network_id,omitempty"`
	MAC       string `json:"mac"`
	MTU       int    `json:"mtu,omitempty"`
	// Bridge, when set, is the host bridge the tap joins.
	Bridge string `json:"bridge,omitempty"`
}

// TapName is the host device name of a port's tap, as Neutron's agents
// name it: "tap" and the first 11 characters of the port id.
func TapName(portID string) string {
	if len(portID) > 11 {
		portID = portID[:11]
	}
	return "tap" + portID
}

// Snapshot names the image a snapshot op uploads into (1.3).
type Snapshot struct {
	ImageID    string `json:"image_id"`
	DiskFormat string `json:"disk_format"`
}

// Console is where a console can be reached on the agent's host (1.3).
type Console struct {
	Type string `json:"type"` // serial or vnc
	Path string `json:"path"` // unix socket
	// Tunnel is set when the console was joined to the request's tunnel (1.5).
	Tunnel bool `json:"tunnel,omitempty"`
}

// Volume is a block storage volume as the agent plugs it (1.1): a local
// file or block device.
type Volume struct {
	ID       string `json:"id"`
	Path     string `json:"path"`
	Format   string `json:"format"`
	Device   string `json:"device,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// Root marks the boot disk of a volume-backed instance (1.4).
	Root bool `json:"root,omitempty"`
	// QoS is the volume's front-end QoS spec (Cinder's
	// connection_info.data.qos_specs), which the driver enforces as I/O
	// throttling of the disk; optional, see the 1.6 history entry.
	QoS map[string]string `json:"qos_specs,omitempty"`
}

// Ephemeral is one ephemeral disk of an instance (1.7).
type Ephemeral struct {
	SizeGB      int    `json:"size_gb"`
	GuestFormat string `json:"guest_format,omitempty"`
}

// Instance is an instance as it should be on the host.
type Instance struct {
	UUID        string `json:"uuid"`
	Name        string `json:"name"`
	Hostname    string `json:"hostname,omitempty"`
	VCPUs       int    `json:"vcpus"`
	MemoryMB    int    `json:"memory_mb"`
	RootGB      int    `json:"root_gb"`
	EphemeralGB int    `json:"ephemeral_gb,omitempty"`
	// Ephemerals are the block device mappings' ephemeral disks (1.7).
	Ephemerals  []Ephemeral       `json:"ephemerals,omitempty"`
	SwapMB      int               `json:"swap_mb,omitempty"`
	ImageID     string            `json:"image_id,omitempty"`
	ConfigDrive bool              `json:"config_drive,omitempty"`
	UserData    []byte            `json:"user_data,omitempty"`
	PublicKeys  map[string]string `json:"public_keys,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	AdminPass   string            `json:"admin_pass,omitempty"`
	VIFs        []VIF             `json:"vifs,omitempty"`
	// BlockDevices are the volumes plugged at spawn (1.4).
	BlockDevices []Volume `json:"block_devices,omitempty"`
	// ImageMeta is the boot volume's image metadata (1.4).
	ImageMeta map[string]string `json:"image_meta,omitempty"`
}

// OpRequest is the request of compute.instance.op 1.0.
type OpRequest struct {
	Op       string   `json:"op"`
	Instance Instance `json:"instance"`
	// Hard selects a hard reboot.
	Hard bool `json:"hard,omitempty"`
	// MaxBytes bounds console output.
	MaxBytes int `json:"max_bytes,omitempty"`
	// ImageID is the rescue image.
	ImageID string `json:"image_id,omitempty"`
	// Stopped, for spawn, powers the new instance off once created (a
	// stopped server that is migrated or rebuilt stays off).
	Stopped bool `json:"stopped,omitempty"`
	// Volume is the disk of attach_volume and detach_volume (1.1).
	Volume *Volume `json:"volume,omitempty"`
	// Password is the new admin password of set_password (1.2).
	Password string `json:"password,omitempty"`
	// Snapshot is the target of a snapshot op.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// ConsoleType is serial or vnc, for console_connect.
	ConsoleType string `json:"console_type,omitempty"`
	// Tunnel, for console_connect (1.5), is the tunnel to join the
	// console to.
	Tunnel string `json:"tunnel,omitempty"`
	// Migration, for spawn (1.5), names the disks to copy from the source.
	Migration *Migration `json:"migration,omitempty"`
	// Live is the live-migration ops' (1.7).
	Live *LiveMigration `json:"live,omitempty"`
}

// OpReply is the reply of compute.instance.op 1.0.
type OpReply struct {
	PowerState int    `json:"power_state"`
	Output     string `json:"output,omitempty"`
	// Console answers console_connect.
	Console *Console `json:"console,omitempty"`
	// Export answers migrate_out (1.5).
	Export *Export `json:"export,omitempty"`
	// Diagnostics answers diagnostics (1.6).
	Diagnostics *Diagnostics `json:"diagnostics,omitempty"`
	// Uptime answers host_uptime (1.6).
	Uptime string `json:"uptime,omitempty"`
	// Live answers the live-migration ops (1.7).
	Live *LiveMigration `json:"live,omitempty"`
}

// Diagnostics is Nova's standard diagnostics model of an instance (1.6);
// nil pointers are values the driver does not know.
type Diagnostics struct {
	State        string     `json:"state"`
	Driver       string     `json:"driver"`
	Hypervisor   *string    `json:"hypervisor"`
	HypervisorOS *string    `json:"hypervisor_os"`
	Uptime       *int64     `json:"uptime"` // seconds since the guest started
	ConfigDrive  bool       `json:"config_drive"`
	CPUs         []CPUDiag  `json:"cpus"`
	MemoryMaxMB  *int64     `json:"memory_max_mb"`
	MemoryUsedMB *int64     `json:"memory_used_mb"`
	Disks        []DiskDiag `json:"disks"`
	NICs         []NICDiag  `json:"nics"`
}

// CPUDiag is one virtual CPU; Time is in nanoseconds.
type CPUDiag struct {
	ID          int    `json:"id"`
	Time        *int64 `json:"time"`
	Utilisation *int64 `json:"utilisation"`
}

// DiskDiag is one disk's I/O counters.
type DiskDiag struct {
	Name          string `json:"name"`
	ReadBytes     *int64 `json:"read_bytes"`
	ReadRequests  *int64 `json:"read_requests"`
	WriteBytes    *int64 `json:"write_bytes"`
	WriteRequests *int64 `json:"write_requests"`
	ErrorsCount   *int64 `json:"errors_count"`
}

// NICDiag is one interface's counters, as the guest sees them.
type NICDiag struct {
	Name      string `json:"name"`
	MAC       string `json:"mac_address"`
	RxOctets  *int64 `json:"rx_octets"`
	RxErrors  *int64 `json:"rx_errors"`
	RxDrop    *int64 `json:"rx_drop"`
	RxPackets *int64 `json:"rx_packets"`
	RxRate    *int64 `json:"rx_rate"`
	TxOctets  *int64 `json:"tx_octets"`
	TxErrors  *int64 `json:"tx_errors"`
	TxDrop    *int64 `json:"tx_drop"`
	TxPackets *int64 `json:"tx_packets"`
	TxRate    *int64 `json:"tx_rate"`
}
