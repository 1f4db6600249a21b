// Package config loads Kumo's configuration from, in increasing order of
// precedence: built-in defaults, a YAML file, KUMO_* environment
// variables and command-line flags.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a kumo process.
type Config struct {
	DataDir    string `yaml:"data_dir"`
	Listen     string `yaml:"listen"`
	PublicURL  string `yaml:"public_url"`
	Region     string `yaml:"region"`
	LogLevel   string `yaml:"log_level"`
	LogFormat  string `yaml:"log_format"`
	PolicyFile string `yaml:"policy_file"`

	Database struct {
		DSN      string `yaml:"dsn"`
		AutoSync bool   `yaml:"auto_sync"`
	} `yaml:"database"`

	NATS struct {
		URL    string `yaml:"url"`
		Listen string `yaml:"listen"`
	} `yaml:"nats"`

	Identity struct {
		TokenTTL        Duration `yaml:"token_ttl"`
		LockoutAttempts int      `yaml:"lockout_attempts"`
		LockoutDuration Duration `yaml:"lockout_duration"`
		// CredentialKeyFile holds the keys that encrypt credential blobs
		// at rest; default <data-dir>/credential-keys, created on first
		// start. Every process serving the identity API needs a copy.
		CredentialKeyFile string `yaml:"credential_key_file"`
	} `yaml:"identity"`

	Image struct {
		ProjectQuotaBytes int64 `yaml:"project_quota_bytes"`
		// DirectIO moves image data with O_DIRECT instead of through the
		// page cache (see internal/image/dataio_linux.go).
		DirectIO bool `yaml:"direct_io"`
		// HashingAlgorithm is Glance's hashing_algorithm: the
		// os_hash_algo of new images, sha512 (default), sha384 or sha256.
		HashingAlgorithm string `yaml:"hashing_algorithm"`
		// UseKeystoneLimits is Glance's use_keystone_limits: enforce the
		// projects' unified limits (image_size_total, image_stage_total,
		// image_count_total, image_count_uploading) registered for the
		// "image" service, instead of project_quota_bytes.
		UseKeystoneLimits bool `yaml:"use_keystone_limits"`
		// ImportMethods is Glance's enabled_import_methods: glance-direct
		// and web-download (both by default).
		ImportMethods []string `yaml:"import_methods"`
		// ImportFilteringOpts limits the URIs web-download and import
		// tasks fetch.
		ImportFilteringOpts ImportFilteringOpts `yaml:"import_filtering_opts"`
	} `yaml:"image"`

	Compute struct {
		// Driver of the in-process compute host: auto (qemu where it can
		// run, else fake), fake or qemu.
		Driver string `yaml:"driver"`
		// Hosts is how many compute hosts run in this process.
		Hosts int `yaml:"hosts"`
		// QEMUAccel is auto, kvm or tcg.
		QEMUAccel string `yaml:"qemu_accel"`
		// VIFPluggingTimeout is how long a build waits for its ports to be
		// plugged (network-vif-plugged); 0 does not wait.
		VIFPluggingTimeout Duration `yaml:"vif_plugging_timeout"`
		// VIFPluggingIsFatal fails a build whose ports were not plugged in
		// time; false lets it go on.
		VIFPluggingIsFatal bool `yaml:"vif_plugging_is_fatal"`
		// ReclaimInstanceInterval > 0 turns on soft delete: deleted servers
		// can be restored for this long (Nova's reclaim_instance_interval).
		ReclaimInstanceInterval Duration `yaml:"reclaim_instance_interval"`
		// ForceConfigDrive gives every server a config drive.
		ForceConfigDrive bool `yaml:"force_config_drive"`
		// MigrationAddress is where the in-process hosts receive live
		// migrations (Nova's live_migration_inbound_addr); default
		// 127.0.0.1, every in-process host being on this machine.
		MigrationAddress string `yaml:"migration_address"`
		// Resource tracker of the in-process hosts (0: Nova's defaults,
		// ratios 16 / 1.5 / 1.0 and nothing reserved).
		CPUAllocationRatio   float64 `yaml:"cpu_allocation_ratio"`
		RAMAllocationRatio   float64 `yaml:"ram_allocation_ratio"`
		DiskAllocationRatio  float64 `yaml:"disk_allocation_ratio"`
		ReservedHostCPUs     int64   `yaml:"reserved_host_cpus"`
		ReservedHostMemoryMB int64   `yaml:"reserved_host_memory_mb"`
		ReservedHostDiskGB   int64   `yaml:"reserved_host_disk_gb"`
	} `yaml:"compute"`

	// Volume configures the block storage backends: a file backend
	// (always, named "file") and, when LVMVolumeGroup is set, an LVM
	// backend named "lvm".
	Volume struct {
		FileFormat     string `yaml:"file_format"` // raw (default) or qcow2
		LVMVolumeGroup string `yaml:"lvm_volume_group"`
		LVMThinPool    string `yaml:"lvm_thin_pool"`
	} `yaml:"volume"`

	Network struct {
		TenantNetworkTypes []string       `yaml:"tenant_network_types"`
		NetworkVLANRanges  []string       `yaml:"network_vlan_ranges"`
		VNIRanges          []string       `yaml:"vni_ranges"`
		FlatNetworks       []string       `yaml:"flat_networks"`
		MechanismDrivers   []string       `yaml:"mechanism_drivers"`
		BaseMAC            string         `yaml:"base_mac"`
		GlobalPhysnetMTU   int            `yaml:"global_physnet_mtu"`
		DNSDomain          string         `yaml:"dns_domain"`
		AvailabilityZone   string         `yaml:"availability_zone"`
		Quotas             map[string]int `yaml:"quotas"`
		MaxLimit           int            `yaml:"max_limit"`
		// Agent is the in-process network agent (this host's data plane).
		Agent NetworkAgent `yaml:"agent"`
	} `yaml:"network"`

	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// NetworkAgent configures a network agent.
type NetworkAgent struct {
	// Mode of the in-process agent: auto (on when running as root with
	// the qemu compute driver), on or off.
	Mode string `yaml:"mode"`
	// LocalIP is the VXLAN underlay address; empty: VXLAN networks are
	// wired only when the host has no peers (no tunnel endpoint).
	LocalIP string `yaml:"local_ip"`
	// InterfaceMappings are "physnet:interface" pairs for flat and VLAN.
	InterfaceMappings []string `yaml:"interface_mappings"`
	// DHCP and Metadata run those services for the networks.
	DHCP     bool `yaml:"dhcp"`
	Metadata bool `yaml:"metadata"`
	// L3 runs routers on this host; SecurityGroups filters its ports.
	L3             bool `yaml:"l3"`
	SecurityGroups bool `yaml:"security_groups"`
	// NamespacePrefix prefixes the names of the agent's namespaces
	// (qdhcp-, qrouter-), so that several agents share one machine
	// (simulated hosts in tests); each removes only leftovers with its own.
	NamespacePrefix string `yaml:"namespace_prefix"`
}

// ImportFilteringOpts is Glance's [import_filtering_opts] (see
// internal/image/importfilter.go). An absent list takes Glance's default
// (allowed_schemes [http, https], allowed_ports [80, 443], the others
// empty); an empty one, [], is empty. A non-empty allowed list makes
// Glance ignore the matching disallowed one.
type ImportFilteringOpts struct {
	AllowedSchemes    []string `yaml:"allowed_schemes"`
	DisallowedSchemes []string `yaml:"disallowed_schemes"`
	AllowedHosts      []string `yaml:"allowed_hosts"`
	DisallowedHosts   []string `yaml:"disallowed_hosts"`
	AllowedPorts      []int    `yaml:"allowed_ports"`
	DisallowedPorts   []int    `yaml:"disallowed_ports"`
	// AllowInternalAddresses (Kumo only) lets imports connect to
	// loopback, link-local and metadata addresses of any host, not only
	// of the allowed_hosts.
	AllowInternalAddresses bool `yaml:"allow_internal_addresses"`
}

// Duration reads "90s", "1h" in YAML.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", n.Value, err)
	}
	d.Duration = v
	return nil
}

// Default returns the built-in defaults.
func Default() *Config {
	c := &Config{
		Listen:    "127.0.0.1:5000",
		Region:    "RegionOne",
		LogLevel:  "info",
		LogFormat: "text",
	}
	c.Database.AutoSync = true
	c.Identity.TokenTTL.Duration = time.Hour
	c.Identity.LockoutAttempts = 6
	c.Identity.LockoutDuration.Duration = 5 * time.Minute
	c.ShutdownTimeout.Duration = 20 * time.Second
	c.Compute.Driver = "auto"
	c.Compute.Hosts = 1
	c.Compute.QEMUAccel = "auto"
	c.Compute.VIFPluggingTimeout.Duration = 300 * time.Second
	c.Compute.VIFPluggingIsFatal = true
	c.Network.Agent = NetworkAgent{Mode: "auto", DHCP: true, Metadata: true, L3: true, SecurityGroups: true}
	return c
}

// DefaultDataDir is $XDG_DATA_HOME/kumo, else ~/.local/share/kumo, else ./kumo-data.
func DefaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "kumo")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "share", "kumo")
	}
	return "kumo-data"
}

// LoadFile merges a YAML file into c. A missing file is not an error when
// optional is set.
func (c *Config) LoadFile(path string, optional bool) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && optional {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Env lists the environment variables read, with the field they set.
var Env = []struct {
	Name, Help string
	set        func(c *Config, v string) error
}{
	{"KUMO_DATA_DIR", "data directory", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"KUMO_LISTEN", "API listen address", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"KUMO_PUBLIC_URL", "root URL clients use", func(c *Config, v string) error { c.PublicURL = v; return nil }},
	{"KUMO_REGION", "region name", func(c *Config, v string) error { c.Region = v; return nil }},
	{"KUMO_LOG_LEVEL", "debug, info, warn, error", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"KUMO_LOG_FORMAT", "text or json", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"KUMO_POLICY_FILE", "policy override file", func(c *Config, v string) error { c.PolicyFile = v; return nil }},
	{"KUMO_DATABASE_DSN", "postgres:// DSN (empty: SQLite in the data dir)", func(c *Config, v string) error { c.Database.DSN = v; return nil }},
	{"KUMO_NATS_URL", "external NATS URL (empty: embedded)", func(c *Config, v string) error { c.NATS.URL = v; return nil }},
	{"KUMO_NATS_LISTEN", "embedded NATS client address for remote agents", func(c *Config, v string) error { c.NATS.Listen = v; return nil }},
	{"KUMO_NETWORK_AGENT", "in-process network agent: auto, on or off", func(c *Config, v string) error { c.Network.Agent.Mode = v; return nil }},
	{"KUMO_COMPUTE_DRIVER", "compute driver of the in-process host: auto, fake or qemu", func(c *Config, v string) error { c.Compute.Driver = v; return nil }},
	{"KUMO_VOLUME_LVM_VG", "volume group of the LVM volume backend (empty: none)", func(c *Config, v string) error { c.Volume.LVMVolumeGroup = v; return nil }},
	{"KUMO_TOKEN_TTL", "token lifetime", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		c.Identity.TokenTTL.Duration = d
		return err
	}},
	{"KUMO_IMAGE_USE_KEYSTONE_LIMITS", "true: the image service enforces the Keystone unified limits (image.use_keystone_limits)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.Image.UseKeystoneLimits = b
		return err
	}},
	{"KUMO_LOCKOUT_ATTEMPTS", "failed passwords before lockout (negative: never)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		c.Identity.LockoutAttempts = n
		return err
	}},
}

// LoadEnv applies KUMO_* variables.
func (c *Config) LoadEnv() error {
	for _, e := range Env {
		if v, ok := os.LookupEnv(e.Name); ok && v != "" {
			if err := e.set(c, v); err != nil {
				return fmt.Errorf("config: %s: %w", e.Name, err)
			}
		}
	}
	return nil
}

// Finish fills derived values and checks the result.
func (c *Config) Finish() error {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	if c.Identity.CredentialKeyFile == "" {
		c.Identity.CredentialKeyFile = filepath.Join(c.DataDir, "credential-keys")
	}
	if c.PublicURL == "" {
		host := c.Listen
		if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") || strings.HasPrefix(host, "[::]:") {
			host = "127.0.0.1:" + host[strings.LastIndex(host, ":")+1:]
		}
		c.PublicURL = "http://" + host
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	switch c.Compute.Driver {
	case "auto", "fake", "qemu":
	default:
		return fmt.Errorf("config: compute driver must be auto, fake or qemu, not %q", c.Compute.Driver)
	}
	switch c.Network.Agent.Mode {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("config: network.agent.mode must be auto, on or off, not %q", c.Network.Agent.Mode)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log_format must be text or json, not %q", c.LogFormat)
	}
	return nil
}
