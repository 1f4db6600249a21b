package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/config"
	netagent "github.com/kumo-cloud/kumo/internal/network/agent"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/service"
)

// NetworkAgentConfig configures `kumo agent network` on a host of its own.
type NetworkAgentConfig struct {
	NATSURL string // the control plane's NATS (required)
	Host    string // host name ports are bound to; default the machine's
	config.NetworkAgent
}

// networkAgentConfig turns the configuration into the agent's.
func networkAgentConfig(host string, c config.NetworkAgent) (netagent.Config, error) {
	cfg := netagent.Config{Host: host, DHCP: c.DHCP, Metadata: c.Metadata, NamespacePrefix: c.NamespacePrefix}
	if c.LocalIP != "" {
		ip, err := netip.ParseAddr(c.LocalIP)
		if err != nil {
			return cfg, fmt.Errorf("network agent: local_ip %q: %w", c.LocalIP, err)
		}
		cfg.LocalIP = ip
	}
	m, err := linux.ParseMappings(c.InterfaceMappings)
	if err != nil {
		return cfg, fmt.Errorf("network agent: %w", err)
	}
	cfg.InterfaceMappings = m
	return cfg, nil
}

// routeSource is the local address the kernel picks to reach the first
// server of a NATS URL list (a connected UDP socket sends nothing).
func routeSource(natsURL string) (netip.Addr, error) {
	first, _, _ := strings.Cut(natsURL, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil {
		return netip.Addr{}, err
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return netip.Addr{}, fmt.Errorf("no host in %q", first)
	}
	if port == "" {
		port = "4222"
	}
	c, err := net.Dial("udp", net.JoinHostPort(host, port))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() {
		return netip.Addr{}, fmt.Errorf("the control plane is on this host (%s): give --local-ip", ip)
	}
	return ip, nil
}

// listenIP is the specific address of a HOST:PORT listen address, if any.
func listenIP(listen string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() || ip.IsLoopback() {
		return netip.Addr{}, false
	}
	return ip, true
}

// withDataPlane adds the L3 and security-group parts the configuration
// asks for; the returned function releases them.
func withDataPlane(cfg *netagent.Config, c config.NetworkAgent, log *slog.Logger) (func(), error) {
	closeFn := func() {}
	if c.SecurityGroups {
		cfg.Firewall = netagent.NewNFT(log.With("component", "security-groups"))
	}
	if c.L3 {
		l, err := netagent.NewL3(log.With("component", "l3"), c.NamespacePrefix)
		if err != nil {
			return nil, err
		}
		cfg.Routers = l
		closeFn = l.Close
	}
	return closeFn, nil
}

// RunNetworkAgent runs a network agent that reaches the control plane
// only through the bus, until ctx ends.
func RunNetworkAgent(ctx context.Context, cfg NetworkAgentConfig, log *slog.Logger) error {
	if cfg.NATSURL == "" {
		return errors.New("agent: --nats-url is required (the control plane's NATS)")
	}
	if os.Geteuid() != 0 {
		return errors.New("agent: the network agent needs root (it creates bridges, namespaces and devices)")
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		cfg.Host = h
	}
	acfg, err := networkAgentConfig(cfg.Host, cfg.NetworkAgent)
	if err != nil {
		return err
	}
	if !acfg.LocalIP.IsValid() {
		// The address this host reaches the control plane from is the one
		// the other hosts can reach it at.
		ip, err := routeSource(cfg.NATSURL)
		if err != nil {
			return fmt.Errorf("agent: no --local-ip given and none found towards %s: %w", cfg.NATSURL, err)
		}
		acfg.LocalIP = ip
		cfg.LocalIP = ip.String()
		log.Info("network agent: VXLAN underlay address taken from the route to the control plane", "local_ip", ip)
	}
	release, err := withDataPlane(&acfg, cfg.NetworkAgent, log)
	if err != nil {
		return err
	}
	defer release()
	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, Name: "kumo-network-agent@" + cfg.Host}, log)
	if err != nil {
		return fmt.Errorf("agent: bus: %w", err)
	}
	defer b.Close()
	a, err := netagent.New(b, acfg, log.With("component", "network-agent", "host", cfg.Host))
	if err != nil {
		return err
	}
	defer a.Close()
	log.Info("network agent running", "host", cfg.Host, "local_ip", cfg.LocalIP, "dhcp", cfg.DHCP, "metadata", cfg.Metadata,
		"l3", cfg.L3, "security_groups", cfg.SecurityGroups, "nats", cfg.NATSURL)
	return a.Run(ctx)
}

// networkAgentService runs the in-process network agent as a background
// service of `kumo serve` (no routes of its own).
type networkAgentService struct {
	a       *netagent.Agent
	release func()
}

func (networkAgentService) Routes() *apiutil.Service        { return &apiutil.Service{Name: "network-agent"} }
func (networkAgentService) Catalog() []service.CatalogEntry { return nil }
func (s networkAgentService) Run(ctx context.Context) error {
	defer s.release()
	defer s.a.Close()
	return s.a.Run(ctx)
}

// inProcessNetworkAgent builds the all-in-one host's network agent, or
// nil when it is off. Mode auto turns it on when the process is root and
// runs real VMs (compute driver qemu): then the VMs' taps need wiring, and
// the agent may change the host's networking.
func inProcessNetworkAgent(deps service.Deps, cfg *config.Config, driver string) (service.API, error) {
	ac := cfg.Network.Agent
	on := ac.Mode == "on" || ac.Mode == "auto" && os.Geteuid() == 0 && driver == "qemu"
	if !on || deps.Bus == nil {
		return nil, nil
	}
	// The in-process compute hosts' names (compute.Config.HostPrefix):
	// "compute", or compute1…N when several are simulated; their taps are
	// all on this machine, so one agent wires them all.
	host, aliases := "compute", []string(nil)
	if cfg.Compute.Hosts > 1 {
		host = "compute1"
		for n := 2; n <= cfg.Compute.Hosts; n++ {
			aliases = append(aliases, fmt.Sprintf("compute%d", n))
		}
	}
	acfg, err := networkAgentConfig(host, ac)
	if err != nil {
		return nil, err
	}
	acfg.Aliases = aliases
	if !acfg.LocalIP.IsValid() && cfg.NATS.Listen != "" {
		// Remote agents reach this host at the address they dial its NATS
		// on; without one, VXLAN networks stay local to this host.
		if ip, ok := listenIP(cfg.NATS.Listen); ok {
			acfg.LocalIP = ip
			deps.Log.Info("network agent: VXLAN underlay address taken from --nats-listen", "local_ip", ip)
		} else {
			deps.Log.Warn("network agent: no network.agent.local_ip: VXLAN networks will not reach other hosts", "nats_listen", cfg.NATS.Listen)
		}
	}
	release, err := withDataPlane(&acfg, ac, deps.Log)
	if err != nil {
		return nil, err
	}
	a, err := netagent.New(deps.Bus, acfg, deps.Log.With("component", "network-agent", "host", host))
	if err != nil {
		release()
		return nil, err
	}
	return networkAgentService{a, release}, nil
}
