package linux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// AllDHCPServers is ff02::1:2, where DHCPv6 clients send (RFC 8415 7.1).
var AllDHCPServers = netip.MustParseAddr("ff02::1:2")

// Lease6 is what DHCPv6 hands one port: its fixed addresses on the
// network's dhcpv6-stateful subnets (none for a port on stateless subnets
// only) and the options of its stateful and stateless subnets.
type Lease6 struct {
	MAC    string
	Addrs  []netip.Addr
	DNS    []netip.Addr
	Domain string
}

// DHCP6Table is everything a network's DHCPv6 server answers with.
type DHCP6Table struct {
	ServerMAC net.HardwareAddr // the server's DUID-LL
	LeaseTime time.Duration
	// OnLink are the prefixes of the network's IPv6 subnets: an address
	// outside them is NotOnLink.
	OnLink []netip.Prefix
	ByMAC  map[string]Lease6 // by lower-case MAC
}

// ServerDUID is the server's identifier: a DUID-LL of its port's MAC.
func (t *DHCP6Table) ServerDUID() dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: t.ServerMAC}
}

func (t *DHCP6Table) onLink(a netip.Addr) bool {
	for _, p := range t.OnLink {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientMAC6 identifies a DHCPv6 client by its MAC: from a DUID-LL or
// DUID-LLT client identifier of an Ethernet address, else from the
// EUI-64 link-local address it sent from. "" when neither tells.
func ClientMAC6(req *dhcpv6.Message, src netip.Addr) string {
	switch d := req.Options.ClientID().(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return strings.ToLower(d.LinkLayerAddr.String())
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return strings.ToLower(d.LinkLayerAddr.String())
		}
	}
	a := src.WithZone("").As16()
	if !src.Is6() || !src.IsLinkLocalUnicast() || a[11] != 0xff || a[12] != 0xfe {
		return ""
	}
	return net.HardwareAddr{a[8] ^ 0x02, a[9], a[10], a[13], a[14], a[15]}.String()
}

// Respond6 computes the answer to a DHCPv6 message a client sent from
// src, nil for none. Only known MACs get an answer; a stateful port is
// always given its fixed addresses, whatever it asked for (RFC 8415
// 18.3: the server may assign other addresses than the hints), an
// address not on the link is NotOnLink (Request, Confirm) or returned with
// zero lifetimes (Renew, Rebind). It is pure.
func Respond6(t *DHCP6Table, req *dhcpv6.Message, src netip.Addr) (*dhcpv6.Message, error) {
	if t == nil || req == nil {
		return nil, nil
	}
	lease, ok := t.ByMAC[ClientMAC6(req, src)]
	if !ok {
		return nil, nil
	}
	cid := req.Options.ClientID()
	sid := req.Options.ServerID()
	duid := t.ServerDUID()
	mine := sid != nil && bytes.Equal(sid.ToBytes(), duid.ToBytes())
	switch req.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRebind:
		if sid != nil || cid == nil { // RFC 8415 16.2, 16.5, 16.8
			return nil, nil
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if !mine || cid == nil { // another server's client
			return nil, nil
		}
	case dhcpv6.MessageTypeInformationRequest:
		if sid != nil && !mine || req.GetOneOption(dhcpv6.OptionIANA) != nil { // RFC 8415 16.12
			return nil, nil
		}
	default: // relay messages, server messages, reconfigure
		return nil, nil
	}

	resp := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: req.TransactionID}
	rapid := req.MessageType == dhcpv6.MessageTypeSolicit && req.GetOneOption(dhcpv6.OptionRapidCommit) != nil && len(lease.Addrs) > 0
	if req.MessageType == dhcpv6.MessageTypeSolicit && !rapid {
		resp.MessageType = dhcpv6.MessageTypeAdvertise
	}
	if cid != nil {
		resp.AddOption(dhcpv6.OptClientID(cid))
	}
	resp.AddOption(dhcpv6.OptServerID(duid))
	if rapid {
		resp.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	}
	if resp.MessageType == dhcpv6.MessageTypeAdvertise {
		resp.AddOption(dhcpv6.OptPreference(255)) // fixed addresses: no reason to wait for others
	}

	lt := t.LeaseTime
	if lt <= 0 {
		lt = DefaultLeaseTime
	}
	status := func(code iana.StatusCode, msg string) *dhcpv6.OptStatusCode {
		return &dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: msg}
	}
	ias := req.Options.IANA()
	switch req.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest:
		if len(lease.Addrs) == 0 && req.MessageType == dhcpv6.MessageTypeSolicit {
			// RFC 8415 18.3.9: an Advertise with no address says so once.
			resp.AddOption(status(iana.StatusNoAddrsAvail, "no stateful address on this link"))
			break
		}
		for i, ia := range ias {
			out := &dhcpv6.OptIANA{IaId: ia.IaId}
			switch {
			case req.MessageType == dhcpv6.MessageTypeRequest && !allOnLink(t, ia):
				out.Options.Add(status(iana.StatusNotOnLink, "address not on this link"))
			case len(lease.Addrs) == 0: // RFC 8415 18.3.2: per IA in a Reply
				out.Options.Add(status(iana.StatusNoAddrsAvail, "no stateful address on this link"))
			case i > 0: // every address went to the first IA
				out.Options.Add(status(iana.StatusNoAddrsAvail, "addresses given in another IA"))
			default:
				out.T1, out.T2 = lt/2, lt*4/5
				addLeases(out, lease.Addrs, lt)
			}
			resp.AddOption(out)
		}
	case dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		for i, ia := range ias {
			out := &dhcpv6.OptIANA{IaId: ia.IaId}
			if len(lease.Addrs) == 0 || i > 0 {
				out.Options.Add(status(iana.StatusNoBinding, "no binding for this IA"))
				resp.AddOption(out)
				continue
			}
			out.T1, out.T2 = lt/2, lt*4/5
			addLeases(out, lease.Addrs, lt)
			for _, a := range ia.Options.Addresses() { // RFC 8415 18.3.4: a wrong address goes back with lifetimes 0
				if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok && !containsAddr(lease.Addrs, ip.Unmap()) {
					out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: a.IPv6Addr})
				}
			}
			resp.AddOption(out)
		}
	case dhcpv6.MessageTypeConfirm:
		code, msg := iana.StatusSuccess, "addresses on link"
		for _, ia := range ias {
			if !allOnLink(t, ia) {
				code, msg = iana.StatusNotOnLink, "address not on this link"
			}
		}
		resp.AddOption(status(code, msg))
		return resp, nil
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		// Fixed addresses: nothing to free, nothing else to give.
		resp.AddOption(status(iana.StatusSuccess, "ok"))
		return resp, nil
	}
	if len(lease.DNS) > 0 && wants(req, dhcpv6.OptionDNSRecursiveNameServer) {
		var ips []net.IP
		for _, d := range lease.DNS {
			ips = append(ips, net.IP(d.AsSlice()))
		}
		resp.AddOption(dhcpv6.OptDNS(ips...))
	}
	if d := strings.TrimSuffix(lease.Domain, "."); d != "" && wants(req, dhcpv6.OptionDomainSearchList) {
		resp.AddOption(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: []string{d}}))
	}
	return resp, nil
}

// wants reports whether a client asked for an option (RFC 8415 21.7:
// servers answer the Option Request option).
func wants(req *dhcpv6.Message, code dhcpv6.OptionCode) bool {
	return req.IsOptionRequested(code)
}

func addLeases(ia *dhcpv6.OptIANA, addrs []netip.Addr, lt time.Duration) {
	for _, a := range addrs {
		ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(a.AsSlice()), PreferredLifetime: lt, ValidLifetime: lt})
	}
}

func allOnLink(t *DHCP6Table, ia *dhcpv6.OptIANA) bool {
	for _, a := range ia.Options.Addresses() {
		ip, ok := netip.AddrFromSlice(a.IPv6Addr)
		if !ok || !t.onLink(ip.Unmap()) {
			return false
		}
	}
	return true
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// DHCP6Server serves one network's DHCPv6 inside its namespace, on UDP
// 547 of the DHCP port, joined to ff02::1:2.
type DHCP6Server struct {
	table atomic.Pointer[DHCP6Table]
	conn  *net.UDPConn
	log   *slog.Logger
}

// ListenDHCP6 opens the server's socket on iface inside ns.
func ListenDHCP6(ns netns.NsHandle, iface string, log *slog.Logger) (*DHCP6Server, error) {
	s := &DHCP6Server{log: log}
	err := InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		c, err := server6.NewIPv6UDPConn(iface, &net.UDPAddr{IP: net.IPv6unspecified, Port: dhcpv6.DefaultServerPort})
		if err != nil {
			return err
		}
		raw, err := c.SyscallConn()
		if err != nil {
			c.Close()
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			mreq := &unix.IPv6Mreq{Interface: uint32(ifi.Index)}
			copy(mreq.Multiaddr[:], AllDHCPServers.AsSlice())
			serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
		})
		if err = errors.Join(err, serr); err != nil {
			c.Close()
			return fmt.Errorf("join %s: %w", AllDHCPServers, err)
		}
		s.conn = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 socket on %s: %w", iface, err)
	}
	return s, nil
}

// SetTable replaces what the server answers with.
func (s *DHCP6Server) SetTable(t *DHCP6Table) { s.table.Store(t) }

// Table is what the server answers with now.
func (s *DHCP6Server) Table() *DHCP6Table { return s.table.Load() }

// Serve answers until ctx is done or Close.
func (s *DHCP6Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	buf := make([]byte, 1500)
	for {
		n, peer, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		// The socket is bound to the port's device: the zone (looked up
		// by the thread's namespace) is not needed to answer.
		src := peer.Addr().WithZone("")
		msg, err := dhcpv6.MessageFromBytes(buf[:n])
		if err != nil {
			s.log.Debug("dhcpv6: bad packet", "from", src, "err", err)
			continue
		}
		resp, err := Respond6(s.table.Load(), msg, src)
		if err != nil {
			s.log.Warn("dhcpv6: build reply", "from", src, "err", err)
			continue
		}
		if resp == nil {
			continue
		}
		dst := netip.AddrPortFrom(src, dhcpv6.DefaultClientPort)
		if _, err := s.conn.WriteToUDPAddrPort(resp.ToBytes(), dst); err != nil {
			s.log.Warn("dhcpv6: send reply", "to", src, "err", err)
			continue
		}
		s.log.Debug("dhcpv6: answered", "type", msg.MessageType, "with", resp.MessageType, "to", src)
	}
}

// Close stops the server.
func (s *DHCP6Server) Close() error { return s.conn.Close() }
