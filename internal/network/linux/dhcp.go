package linux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netns"
)

// DefaultLeaseTime is Neutron's dhcp_lease_duration default.
const DefaultLeaseTime = 24 * time.Hour

// Route is a static route handed out by DHCP (option 121).
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Lease is the one address a port gets: DHCP serves fixed IPs only.
type Lease struct {
	MAC      string
	IP       netip.Addr
	Subnet   netip.Prefix
	Gateway  netip.Addr // invalid: none
	DNS      []netip.Addr
	Routes   []Route
	MTU      int
	Hostname string
	Domain   string
}

// DHCPTable is everything a network's DHCP server answers with.
type DHCPTable struct {
	ServerIP  netip.Addr
	LeaseTime time.Duration
	ByMAC     map[string]Lease // by lower-case MAC
}

// Respond computes the answer to a DHCPv4 request, nil for none: only
// known MACs get an answer, always their fixed address. It is pure.
func Respond(t *DHCPTable, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	if t == nil || req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, nil
	}
	lease, ok := t.ByMAC[strings.ToLower(req.ClientHWAddr.String())]
	if !ok || !lease.IP.Is4() {
		return nil, nil
	}
	var mt dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		mt = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(t.ServerIP.AsSlice())) {
			return nil, nil // the client chose another server
		}
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr
		}
		mt = dhcpv4.MessageTypeAck
		if want != nil && !want.IsUnspecified() && !want.Equal(net.IP(lease.IP.AsSlice())) {
			mt = dhcpv4.MessageTypeNak
		}
	case dhcpv4.MessageTypeInform:
		mt = dhcpv4.MessageTypeAck
	default: // release, decline: nothing to do for fixed addresses
		return nil, nil
	}
	server := net.IP(t.ServerIP.AsSlice()).To4()
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(mt), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server))}
	if mt == dhcpv4.MessageTypeNak {
		resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
		return resp, err
	}
	lt := t.LeaseTime
	if lt <= 0 {
		lt = DefaultLeaseTime
	}
	mask := net.CIDRMask(lease.Subnet.Bits(), 32)
	mods = append(mods, dhcpv4.WithServerIP(server), dhcpv4.WithOption(dhcpv4.OptSubnetMask(mask)))
	if req.MessageType() != dhcpv4.MessageTypeInform {
		mods = append(mods, dhcpv4.WithYourIP(net.IP(lease.IP.AsSlice())),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lt)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lt/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lt*7/8)))
	}
	if lease.Subnet.IsValid() {
		bc := lease.Subnet.Masked().Addr().As4()
		m := binary.BigEndian.Uint32(mask)
		binary.BigEndian.PutUint32(bc[:], binary.BigEndian.Uint32(bc[:])|^m)
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(net.IP(bc[:]))))
	}
	if lease.Gateway.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(net.IP(lease.Gateway.AsSlice()))))
	}
	if len(lease.DNS) > 0 {
		var dns []net.IP
		for _, d := range lease.DNS {
			dns = append(dns, net.IP(d.AsSlice()))
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(dns...)))
	}
	if len(lease.Routes) > 0 {
		// With option 121 present clients ignore option 3 (RFC 3442), so
		// the default route is repeated there.
		var rs []*dhcpv4.Route
		if lease.Gateway.IsValid() {
			rs = append(rs, &dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Router: net.IP(lease.Gateway.AsSlice())})
		}
		for _, r := range lease.Routes {
			rs = append(rs, &dhcpv4.Route{Dest: &net.IPNet{IP: net.IP(r.Dst.Masked().Addr().AsSlice()), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
				Router: net.IP(r.Via.AsSlice())})
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(rs...)))
	}
	if lease.MTU > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, binary.BigEndian.AppendUint16(nil, uint16(lease.MTU)))))
	}
	if lease.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(lease.Hostname)))
	}
	if lease.Domain != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainName(strings.TrimSuffix(lease.Domain, "."))))
	}
	return dhcpv4.NewReplyFromRequest(req, mods...)
}

// DHCPServer serves one network's DHCPv4 inside its namespace.
type DHCPServer struct {
	table atomic.Pointer[DHCPTable]
	conn  *net.UDPConn
	iface string
	log   *slog.Logger
	done  chan struct{}
}

// ListenDHCP opens the server's socket on iface inside ns.
func ListenDHCP(ns netns.NsHandle, iface string, log *slog.Logger) (*DHCPServer, error) {
	s := &DHCPServer{iface: iface, log: log, done: make(chan struct{})}
	err := InNetns(ns, func() error {
		c, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
		s.conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp socket on %s: %w", iface, err)
	}
	return s, nil
}

// SetTable replaces what the server answers with.
func (s *DHCPServer) SetTable(t *DHCPTable) { s.table.Store(t) }

// Table is what the server answers with now.
func (s *DHCPServer) Table() *DHCPTable { return s.table.Load() }

// Serve answers until ctx is done or Close.
func (s *DHCPServer) Serve(ctx context.Context) error {
	defer close(s.done)
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	buf := make([]byte, 1500)
	for {
		n, peer, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			s.log.Debug("dhcp: bad packet", "from", peer, "err", err)
			continue
		}
		resp, err := Respond(s.table.Load(), req)
		if err != nil {
			s.log.Warn("dhcp: build reply", "mac", req.ClientHWAddr.String(), "err", err)
			continue
		}
		if resp == nil {
			continue
		}
		dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
		if !req.ClientIPAddr.IsUnspecified() && req.ClientIPAddr != nil {
			dst.IP = req.ClientIPAddr
		}
		if _, err := s.conn.WriteToUDP(resp.ToBytes(), dst); err != nil {
			s.log.Warn("dhcp: send reply", "mac", req.ClientHWAddr.String(), "err", err)
			continue
		}
		s.log.Debug("dhcp: answered", "type", resp.MessageType(), "mac", req.ClientHWAddr.String(), "ip", resp.YourIPAddr)
	}
}

// Close stops the server.
func (s *DHCPServer) Close() error { return s.conn.Close() }
