// Command kumo is the whole cloud in one binary: `kumo serve` runs every
// API with embedded SQLite and NATS; the other subcommands administer it.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/identity"
	"github.com/kumo-cloud/kumo/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kumo:", err)
		os.Exit(1)
	}
}

type globals struct {
	configFile string
	cfg        *config.Config
	log        *slog.Logger
}

func newRoot() *cobra.Command {
	g := &globals{cfg: config.Default()}
	root := &cobra.Command{
		Use:           "kumo",
		Short:         "Kumo: an OpenStack-compatible cloud in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "YAML configuration file (default: $KUMO_CONFIG, else DATA_DIR/kumo.yaml if present)")
	pf.StringVar(&g.cfg.DataDir, "data-dir", "", "data directory (default: $XDG_DATA_HOME/kumo or ~/.local/share/kumo)")
	pf.StringVar(&g.cfg.Database.DSN, "db-dsn", "", "database: postgres://… for PostgreSQL; empty for SQLite in the data dir")
	pf.StringVar(&g.cfg.LogLevel, "log-level", g.cfg.LogLevel, "log level: debug, info, warn, error")
	pf.StringVar(&g.cfg.LogFormat, "log-format", g.cfg.LogFormat, "log format: text or json")
	pf.StringVar(&g.cfg.Listen, "listen", g.cfg.Listen, "HOST:PORT the APIs listen on")
	pf.StringVar(&g.cfg.PublicURL, "public-url", "", "root URL clients reach the APIs at (default: http://LISTEN)")
	pf.StringVar(&g.cfg.Region, "region", g.cfg.Region, "region name in the catalog")
	root.AddCommand(serveCmd(g), agentCmd(g), dbCmd(g), bootstrapCmd(g), tokenCmd(g), credentialCmd(g), versionCmd(), benchCmd())
	return root
}

// load applies file, environment and changed flags over the defaults.
func (g *globals) load(cmd *cobra.Command) error {
	flagged := *g.cfg // values the flags wrote (defaults where unchanged)
	cfg := config.Default()
	path := g.configFile
	if path == "" {
		path = os.Getenv("KUMO_CONFIG")
	}
	dataDir := flagged.DataDir
	if dataDir == "" {
		dataDir = os.Getenv("KUMO_DATA_DIR")
	}
	if dataDir == "" {
		dataDir = config.DefaultDataDir()
	}
	if path != "" {
		if err := cfg.LoadFile(path, false); err != nil {
			return err
		}
	} else if err := cfg.LoadFile(dataDir+"/kumo.yaml", true); err != nil {
		return err
	}
	if err := cfg.LoadEnv(); err != nil {
		return err
	}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "data-dir":
			cfg.DataDir = flagged.DataDir
		case "db-dsn":
			cfg.Database.DSN = flagged.Database.DSN
		case "log-level":
			cfg.LogLevel = flagged.LogLevel
		case "log-format":
			cfg.LogFormat = flagged.LogFormat
		case "listen":
			cfg.Listen = flagged.Listen
		case "public-url":
			cfg.PublicURL = flagged.PublicURL
		case "region":
			cfg.Region = flagged.Region
		case "nats-url":
			cfg.NATS.URL = flagged.NATS.URL
		case "nats-listen":
			cfg.NATS.Listen = flagged.NATS.Listen
		case "policy-file":
			cfg.PolicyFile = flagged.PolicyFile
		case "compute-driver":
			cfg.Compute.Driver = flagged.Compute.Driver
		case "network-agent":
			cfg.Network.Agent.Mode = flagged.Network.Agent.Mode
		}
	})
	if err := cfg.Finish(); err != nil {
		return err
	}
	g.cfg = cfg
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		g.log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	} else {
		g.log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return nil
}

func envHelp() string {
	var b strings.Builder
	b.WriteString("\nEnvironment (overridden by flags, overriding the config file):\n")
	for _, e := range config.Env {
		fmt.Fprintf(&b, "  %-24s %s\n", e.Name, e.Help)
	}
	b.WriteString("  KUMO_ADMIN_PASSWORD      admin password set at bootstrap (else generated and printed once)\n")
	b.WriteString("  KUMO_CONFIG              configuration file\n")
	return b.String()
}

func serveCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the cloud: every API, SQLite and NATS embedded, in one process",
		Long: `Run the cloud. With no configuration at all it creates the data directory,
the SQLite database and an embedded NATS server, bootstraps the admin
project and user and the service catalog, and writes DATA_DIR/clouds.yaml
(cloud "kumo") and DATA_DIR/admin-openrc for the openstack CLI.
` + envHelp(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, g.cfg, g.log)
			if err != nil {
				return err
			}
			defer srv.Close()
			res, err := srv.Bootstrap(ctx, os.Getenv("KUMO_ADMIN_PASSWORD"))
			if err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			pw := os.Getenv("KUMO_ADMIN_PASSWORD")
			if res.GeneratedPassword != "" {
				pw = res.GeneratedPassword
				fmt.Fprintf(os.Stderr, "\nGenerated admin password (shown once, also in %s/clouds.yaml): %s\n\n", g.cfg.DataDir, pw)
			}
			if err := server.WriteClientConfig(g.cfg.DataDir, g.cfg.PublicURL, g.cfg.Region, pw); err != nil {
				return fmt.Errorf("write clouds.yaml: %w", err)
			}
			return srv.Serve(ctx, func(addr net.Addr) {
				fmt.Fprintf(os.Stderr, "Kumo is ready at %s — try:\n  OS_CLIENT_CONFIG_FILE=%s/clouds.yaml openstack --os-cloud kumo token issue\n",
					g.cfg.PublicURL, g.cfg.DataDir)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&g.cfg.NATS.URL, "nats-url", "", "external NATS URL(s); empty starts an embedded server")
	f.StringVar(&g.cfg.NATS.Listen, "nats-listen", "", "HOST:PORT for the embedded NATS server to accept remote agents on (default: in-process only)")
	f.StringVar(&g.cfg.PolicyFile, "policy-file", "", "YAML/JSON file of policy rule overrides")
	f.StringVar(&g.cfg.Compute.Driver, "compute-driver", g.cfg.Compute.Driver, "hypervisor of the in-process compute host: auto (qemu where qemu-system-x86_64 runs, else fake), fake (no real VMs) or qemu")
	f.StringVar(&g.cfg.Network.Agent.Mode, "network-agent", g.cfg.Network.Agent.Mode, "in-process network agent wiring this host: auto (on as root when the compute host runs real VMs), on or off")
	return cmd
}

func dbCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Database schema management"}
	var expand, contract bool
	sync := &cobra.Command{
		Use:   "sync",
		Short: "Apply schema migrations (both phases, or --expand / --contract)",
		Long: `Apply schema migrations. Expand migrations only add and are safe while the
previous release still runs; contract migrations remove what no running
release uses any more. Without flags both phases run.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			if expand && contract {
				return errors.New("--expand and --contract are exclusive; give neither to run both")
			}
			phases := []db.Phase{db.Expand, db.Contract}
			if expand {
				phases = []db.Phase{db.Expand}
			}
			if contract {
				phases = []db.Phase{db.Contract}
			}
			d, err := server.OpenDB(cmd.Context(), g.cfg, g.log)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := d.Migrate(cmd.Context(), phases, server.Migrations()...); err != nil {
				return err
			}
			return printVersions(cmd, d)
		},
	}
	sync.Flags().BoolVar(&expand, "expand", false, "apply only expand migrations")
	sync.Flags().BoolVar(&contract, "contract", false, "apply only contract migrations")
	ver := &cobra.Command{
		Use:   "version",
		Short: "Show the schema version of every component",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			d, err := server.OpenDB(cmd.Context(), g.cfg, g.log)
			if err != nil {
				return err
			}
			defer d.Close()
			return printVersions(cmd, d)
		},
	}
	cmd.AddCommand(sync, ver)
	return cmd
}

func printVersions(cmd *cobra.Command, d *db.DB) error {
	st, err := d.Versions(cmd.Context(), server.Migrations()...)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%-12s %-10s %-10s\n", "COMPONENT", "EXPAND", "CONTRACT")
	for _, s := range st {
		fmt.Fprintf(w, "%-12s %-10s %-10s\n", s.Component, fmt.Sprintf("%d/%d", s.Expand, s.ExpandLatest), fmt.Sprintf("%d/%d", s.Contract, s.ContractLatest))
	}
	return nil
}

func bootstrapCmd(g *globals) *cobra.Command {
	var password string
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create (idempotently) the default domain, admin project, user, roles and catalog",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			if password == "" {
				password = os.Getenv("KUMO_ADMIN_PASSWORD")
			}
			ctx := cmd.Context()
			srv, err := server.New(ctx, g.cfg, g.log)
			if err != nil {
				return err
			}
			defer srv.Close()
			res, err := srv.Bootstrap(ctx, password)
			if err != nil {
				return err
			}
			if res.GeneratedPassword != "" {
				password = res.GeneratedPassword
				fmt.Fprintf(cmd.OutOrStdout(), "Generated admin password: %s\n", password)
			}
			if err := server.WriteClientConfig(g.cfg.DataDir, g.cfg.PublicURL, g.cfg.Region, password); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin user %s, admin project %s; clients: %s/clouds.yaml\n", res.AdminUserID, res.AdminProjectID, g.cfg.DataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "admin-password", "", "admin password (default: $KUMO_ADMIN_PASSWORD, else keep or generate)")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kumo %s\n", v)
		},
	}
}

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Token key management"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-keys",
		Short: "Add a new primary token encryption key (the newest 3 keys stay valid)",
		Long: `Add a new primary token encryption key. Tokens issued with the previous
keys stay valid until they expire (the 3 newest keys are kept); running
processes pick the new key up within a minute.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			d, err := server.OpenDB(cmd.Context(), g.cfg, g.log)
			if err != nil {
				return err
			}
			defer d.Close()
			svc := identity.NewService(identity.NewStore(d), identity.Config{}, nil, g.log)
			if err := svc.Start(cmd.Context()); err != nil {
				return err
			}
			if err := svc.RotateKeys(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "token keys rotated")
			return nil
		},
	})
	return cmd
}

func credentialCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "credential", Short: "Credential encryption key management"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-key",
		Short: "Put a new primary key in the credential key file and re-encrypt every credential with it",
		Long: `Put a new primary key at the top of the credential key file
(identity.credential_key_file, default <data-dir>/credential-keys), keep
the older keys for decryption, and re-encrypt every stored credential blob
with the new key. Running servers read the file again when they meet a
blob under a key they do not know. Copy the file to every host that serves
the identity API before rotating there; once every credential is under the
new key, older keys may be deleted from the file.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			path := g.cfg.Identity.CredentialKeyFile
			if err := identity.RotateCredentialKey(path); err != nil {
				return err
			}
			d, err := server.OpenDB(cmd.Context(), g.cfg, g.log)
			if err != nil {
				return err
			}
			defer d.Close()
			svc := identity.NewService(identity.NewStore(d), identity.Config{CredentialKeyFile: path}, nil, g.log)
			if err := svc.Start(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "credential key rotated; credentials re-encrypted")
			return nil
		},
	})
	return cmd
}

func agentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Run an agent on a host of its own"}
	var ac server.AgentConfig
	compute := &cobra.Command{
		Use:   "compute",
		Short: "Run a compute host that joins a control plane through its NATS",
		Long: `Run a compute host. It never opens the database: it registers with the
conductor and takes its orders over the bus (--nats-url), and fetches images
from the image API (--image-url) as the user named by the usual OS_*
variables (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ... or an
application credential). The control plane must accept remote agents:
kumo serve --nats-listen 0.0.0.0:4222.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ac.DataDir = g.cfg.DataDir
			if ac.QEMUAccel == "" {
				ac.QEMUAccel = g.cfg.Compute.QEMUAccel
			}
			return server.RunComputeAgent(ctx, ac, g.log)
		},
	}
	f := compute.Flags()
	f.StringVar(&ac.NATSURL, "nats-url", os.Getenv("KUMO_NATS_URL"), "the control plane's NATS URL(s)")
	f.StringVar(&ac.Host, "host", "", "host name to register (default: this machine's)")
	f.StringVar(&ac.HostIP, "host-ip", "", "this host's address, shown in os-hypervisors")
	f.StringVar(&ac.MigrationAddress, "migration-address", "", "address this host receives live migrations on (default: --host-ip, else 127.0.0.1)")
	f.StringVar(&ac.Driver, "compute-driver", "qemu", "hypervisor: qemu or fake (simulated, for scale tests)")
	f.StringVar(&ac.QEMUAccel, "qemu-accel", "", "auto, kvm or tcg")
	f.StringVar(&ac.ImageURL, "image-url", "", "the image endpoint, e.g. http://controller:5000/image")
	f.Float64Var(&ac.Resources.CPUAllocationRatio, "cpu-allocation-ratio", 0, "virtual CPUs per physical CPU offered to placement (0: 16)")
	f.Float64Var(&ac.Resources.RAMAllocationRatio, "ram-allocation-ratio", 0, "RAM overcommit offered to placement (0: 1.5)")
	f.Float64Var(&ac.Resources.DiskAllocationRatio, "disk-allocation-ratio", 0, "disk overcommit offered to placement (0: 1.0)")
	f.Int64Var(&ac.Resources.ReservedHostCPUs, "reserved-host-cpus", 0, "CPUs kept for the host itself")
	f.Int64Var(&ac.Resources.ReservedHostMemoryMB, "reserved-host-memory-mb", 0, "MiB of RAM kept for the host itself")
	f.Int64Var(&ac.Resources.ReservedHostDiskGB, "reserved-host-disk-gb", 0, "GiB of disk kept for the host itself")
	cmd.AddCommand(compute, networkAgentCmd(g))
	return cmd
}

func networkAgentCmd(g *globals) *cobra.Command {
	var nc server.NetworkAgentConfig
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Run a network agent (L2, DHCP, metadata) that joins a control plane through its NATS",
		Long: `Run a network agent on this host. It never opens the database: it receives
every network's desired state over the bus (--nats-url) and wires this
host to it: a Linux bridge per network, VXLAN tunnels from --local-ip to the
other hosts, flat and VLAN networks on the interfaces of --interface-mapping,
the taps of the VMs bound to --host, and (with --dhcp, --metadata) DHCP and
the metadata API in a namespace per network; with --l3 it runs routers, with
--security-groups it filters its ports with nftables. It needs root. The control
plane must accept remote agents: kumo serve --nats-listen 0.0.0.0:4222.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.load(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.RunNetworkAgent(ctx, nc, g.log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&nc.NATSURL, "nats-url", os.Getenv("KUMO_NATS_URL"), "the control plane's NATS URL(s)")
	f.StringVar(&nc.Host, "host", "", "host name ports are bound to (default: this machine's; the compute agent's --host)")
	f.StringVar(&nc.LocalIP, "local-ip", "", "this host's VXLAN underlay address (default: the address of the route to --nats-url)")
	f.StringSliceVar(&nc.InterfaceMappings, "interface-mapping", nil, "physnet:interface for flat and VLAN networks (repeatable)")
	f.BoolVar(&nc.DHCP, "dhcp", true, "serve DHCP for networks with DHCP enabled")
	f.BoolVar(&nc.Metadata, "metadata", true, "serve the metadata API (with --dhcp)")
	f.BoolVar(&nc.L3, "l3", true, "run routers (namespaces, SNAT, floating IPs) on this host")
	f.BoolVar(&nc.SecurityGroups, "security-groups", true, "enforce security groups and anti-spoofing on this host's ports")
	f.StringVar(&nc.NamespacePrefix, "namespace-prefix", "", "prefix of this agent's qdhcp-/qrouter- namespace names (several agents on one machine)")
	return cmd
}
