// Package ra sends IPv6 router advertisements on a router's subnet
// interface, for subnets whose ipv6_ra_mode asks the router to (as
// Neutron runs radvd in the router's namespace): unsolicited every
// Interval to all nodes, and at once in answer to a router solicitation.
// The prefix information tells hosts to build their address by SLAAC
// (slaac, dhcpv6-stateless) or not (dhcpv6-stateful); the M and O flags
// send them to DHCPv6 for addresses or for other configuration.
package ra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"

	"github.com/kumo-cloud/kumo/internal/network/linux"
)

// Neutron's ipv6_ra_mode values.
const (
	ModeSLAAC     = "slaac"
	ModeStateless = "dhcpv6-stateless"
	ModeStateful  = "dhcpv6-stateful"
)

// Prefix is one subnet announced on the interface.
type Prefix struct {
	Prefix netip.Prefix
	Mode   string // ipv6_ra_mode
}

// Config is what one interface announces.
type Config struct {
	Interface string
	Prefixes  []Prefix
	MTU       int
	// Interval between unsolicited advertisements (default 30s, as
	// radvd's MinRtrAdvInterval in Neutron's template).
	Interval time.Duration
}

// Lifetimes announced (radvd's defaults).
const (
	routerLifetime    = 1800 * time.Second
	validLifetime     = 86400 * time.Second
	preferredLifetime = 14400 * time.Second
)

// Message renders the advertisement of c from an interface with MAC mac.
func Message(c Config, mac net.HardwareAddr) *ndp.RouterAdvertisement {
	m := &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: routerLifetime}
	for _, p := range c.Prefixes {
		switch p.Mode {
		case ModeStateful:
			m.ManagedConfiguration, m.OtherConfiguration = true, true
		case ModeStateless:
			m.OtherConfiguration = true
		}
		m.Options = append(m.Options, &ndp.PrefixInformation{PrefixLength: uint8(p.Prefix.Bits()), OnLink: true,
			AutonomousAddressConfiguration: p.Mode != ModeStateful, ValidLifetime: validLifetime,
			PreferredLifetime: preferredLifetime, Prefix: p.Prefix.Masked().Addr()})
	}
	if c.MTU > 0 {
		m.Options = append(m.Options, ndp.NewMTU(uint32(c.MTU)))
	}
	if len(mac) > 0 {
		m.Options = append(m.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})
	}
	return m
}

var (
	allNodes   = netip.MustParseAddr("ff02::1")
	allRouters = netip.MustParseAddr("ff02::2")
)

// Run advertises c on its interface in namespace ns until ctx ends. The
// interface needs its link-local address (the kernel adds it once the
// link is up and DAD is done): Run waits for it.
func Run(ctx context.Context, ns netns.NsHandle, c Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	var conn *ndp.Conn
	var ifi *net.Interface
	for {
		err := linux.InNetns(ns, func() error {
			var err error
			if ifi, err = net.InterfaceByName(c.Interface); err != nil {
				return err
			}
			conn, _, err = ndp.Listen(ifi, ndp.LinkLocal)
			return err
		})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond): // no link-local address yet
		}
	}
	defer conn.Close()
	if err := conn.JoinGroup(allRouters); err != nil {
		return fmt.Errorf("ra %s: join ff02::2: %w", c.Interface, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := conn.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("ra %s: icmp filter: %w", c.Interface, err)
	}
	msg := Message(c, ifi.HardwareAddr)
	solicited := make(chan struct{}, 1)
	go func() {
		for {
			m, _, _, err := conn.ReadFrom()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
					log.Warn("ra: read", "interface", c.Interface, "err", err)
				}
				return
			}
			if _, ok := m.(*ndp.RouterSolicitation); ok {
				select {
				case solicited <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() { <-ctx.Done(); conn.Close() }()
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		if err := conn.WriteTo(msg, nil, allNodes); err != nil && ctx.Err() == nil {
			log.Warn("ra: send", "interface", c.Interface, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-solicited:
		}
	}
}
