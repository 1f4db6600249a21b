package linux

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
)

const (
	mac6       = "fa:16:3e:00:00:07" // stateful on two subnets
	macInfo6   = "fa:16:3e:00:00:08" // stateless subnet only
	macServer6 = "fa:16:3e:00:00:02"
)

func testTable6() *DHCP6Table {
	sm, _ := net.ParseMAC(macServer6)
	return &DHCP6Table{ServerMAC: sm, LeaseTime: time.Hour,
		OnLink: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64"), netip.MustParsePrefix("2001:db8:2::/64"), netip.MustParsePrefix("2001:db8:3::/64")},
		ByMAC: map[string]Lease6{
			mac6: {MAC: mac6, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8:1::7"), netip.MustParseAddr("2001:db8:2::7")},
				DNS: []netip.Addr{netip.MustParseAddr("2001:db8:1::53")}, Domain: "openstacklocal."},
			macInfo6: {MAC: macInfo6, DNS: []netip.Addr{netip.MustParseAddr("2001:db8:3::53"), netip.MustParseAddr("2001:db8:3::54")}},
		}}
}

// eui64 is the link-local address a MAC's interface sends from.
func eui64(mac string) netip.Addr {
	m, _ := net.ParseMAC(mac)
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15] = m[0]^2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]
	return netip.AddrFrom16(a)
}

// msg6 builds a client message and passes it through its wire encoding.
func msg6(t testing.TB, typ dhcpv6.MessageType, duid dhcpv6.DUID, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = typ
	if duid != nil {
		m.AddOption(dhcpv6.OptClientID(duid))
	}
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	for _, mod := range mods {
		mod(m)
	}
	back, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func llt(mac string) dhcpv6.DUID {
	m, _ := net.ParseMAC(mac)
	return &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 12345, LinkLayerAddr: m}
}

func ll(mac string) dhcpv6.DUID {
	m, _ := net.ParseMAC(mac)
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: m}
}

// ia is an IA_NA with IAID 1 holding addrs as hints.
func ia(addrs ...string) dhcpv6.Modifier {
	return func(d dhcpv6.DHCPv6) {
		o := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
		for _, a := range addrs {
			o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(a)})
		}
		d.AddOption(o)
	}
}

func serverID(mac string) dhcpv6.Modifier { return dhcpv6.WithServerID(ll(mac)) }

// summary6 renders the parts of an answer the tests compare: its type,
// top-level status, and each IA's addresses with lifetimes and status.
func summary6(m *dhcpv6.Message) string {
	if m == nil {
		return "none"
	}
	out := []string{m.MessageType.String()}
	if s := m.Options.Status(); s != nil {
		out = append(out, "status="+s.StatusCode.String())
	}
	for _, a := range m.Options.IANA() {
		var parts []string
		for _, ad := range a.Options.Addresses() {
			parts = append(parts, ad.IPv6Addr.String()+"/"+ad.ValidLifetime.String())
		}
		if s := a.Options.Status(); s != nil {
			parts = append(parts, "status="+s.StatusCode.String())
		}
		out = append(out, "ia["+strings.Join(parts, " ")+"]")
	}
	if m.GetOneOption(dhcpv6.OptionRapidCommit) != nil {
		out = append(out, "rapid")
	}
	for _, d := range m.Options.DNS() {
		out = append(out, "dns="+d.String())
	}
	if l := m.Options.DomainSearchList(); l != nil {
		out = append(out, "search="+strings.Join(l.Labels, ","))
	}
	return strings.Join(out, " ")
}

func TestRespond6(t *testing.T) {
	tbl := testTable6()
	llSrc := eui64(mac6)
	const full = "ia[2001:db8:1::7/1h0m0s 2001:db8:2::7/1h0m0s] dns=2001:db8:1::53 search=openstacklocal"
	cases := []struct {
		name string
		req  *dhcpv6.Message
		src  netip.Addr
		want string
	}{
		{"solicit", msg6(t, dhcpv6.MessageTypeSolicit, llt(mac6), ia()), llSrc, "ADVERTISE " + full},
		{"solicit by DUID-LL from a global address", msg6(t, dhcpv6.MessageTypeSolicit, ll(mac6), ia()), netip.MustParseAddr("2001:db8:9::1"), "ADVERTISE " + full},
		{"solicit with an opaque DUID: the EUI-64 source tells", msg6(t, dhcpv6.MessageTypeSolicit, &dhcpv6.DUIDUUID{}, ia()), llSrc, "ADVERTISE " + full},
		{"solicit upper-case MAC", msg6(t, dhcpv6.MessageTypeSolicit, llt(strings.ToUpper(mac6)), ia()), llSrc, "ADVERTISE " + full},
		{"solicit, rapid commit", msg6(t, dhcpv6.MessageTypeSolicit, llt(mac6), ia(), dhcpv6.WithRapidCommit), llSrc, "REPLY " + full[:len("ia[2001:db8:1::7/1h0m0s 2001:db8:2::7/1h0m0s]")] + " rapid dns=2001:db8:1::53 search=openstacklocal"},
		{"solicit with a hint: still the fixed addresses", msg6(t, dhcpv6.MessageTypeSolicit, llt(mac6), ia("2001:db8:1::99")), llSrc, "ADVERTISE " + full},
		{"solicit naming a server: dropped", msg6(t, dhcpv6.MessageTypeSolicit, llt(mac6), ia(), serverID(macServer6)), llSrc, "none"},
		{"solicit from an unknown MAC", msg6(t, dhcpv6.MessageTypeSolicit, llt("fa:16:3e:00:00:99"), ia()), eui64("fa:16:3e:00:00:99"), "none"},
		{"solicit with an opaque DUID from a non-EUI-64 address", msg6(t, dhcpv6.MessageTypeSolicit, &dhcpv6.DUIDUUID{}, ia()), netip.MustParseAddr("fe80::1"), "none"},
		{"solicit from a stateless-only port", msg6(t, dhcpv6.MessageTypeSolicit, llt(macInfo6), ia()), eui64(macInfo6), "ADVERTISE status=NoAddrsAvail dns=2001:db8:3::53 dns=2001:db8:3::54"},
		{"solicit, rapid commit, stateless-only port", msg6(t, dhcpv6.MessageTypeSolicit, llt(macInfo6), ia(), dhcpv6.WithRapidCommit), eui64(macInfo6), "ADVERTISE status=NoAddrsAvail dns=2001:db8:3::53 dns=2001:db8:3::54"},
		{"request from a stateless-only port", msg6(t, dhcpv6.MessageTypeRequest, llt(macInfo6), ia(), serverID(macServer6)), eui64(macInfo6),
			"REPLY ia[status=NoAddrsAvail] dns=2001:db8:3::53 dns=2001:db8:3::54"},
		{"request", msg6(t, dhcpv6.MessageTypeRequest, llt(mac6), ia("2001:db8:1::7"), serverID(macServer6)), llSrc, "REPLY " + full},
		{"request for another on-link address: the fixed ones", msg6(t, dhcpv6.MessageTypeRequest, llt(mac6), ia("2001:db8:1::99"), serverID(macServer6)), llSrc, "REPLY " + full},
		{"request for an off-link address", msg6(t, dhcpv6.MessageTypeRequest, llt(mac6), ia("2001:db8:77::7"), serverID(macServer6)), llSrc, "REPLY ia[status=NotOnLink] dns=2001:db8:1::53 search=openstacklocal"},
		{"request to another server", msg6(t, dhcpv6.MessageTypeRequest, llt(mac6), ia("2001:db8:1::7"), serverID("fa:16:3e:00:00:03")), llSrc, "none"},
		{"request without a server id", msg6(t, dhcpv6.MessageTypeRequest, llt(mac6), ia("2001:db8:1::7")), llSrc, "none"},
		{"renew", msg6(t, dhcpv6.MessageTypeRenew, llt(mac6), ia("2001:db8:1::7", "2001:db8:2::7"), serverID(macServer6)), llSrc, "REPLY " + full},
		{"renew of a foreign address: it expires", msg6(t, dhcpv6.MessageTypeRenew, llt(mac6), ia("2001:db8:1::99"), serverID(macServer6)), llSrc,
			"REPLY ia[2001:db8:1::7/1h0m0s 2001:db8:2::7/1h0m0s 2001:db8:1::99/0s] dns=2001:db8:1::53 search=openstacklocal"},
		{"renew, stateless-only port", msg6(t, dhcpv6.MessageTypeRenew, llt(macInfo6), ia("2001:db8:3::8"), serverID(macServer6)), eui64(macInfo6),
			"REPLY ia[status=NoBinding] dns=2001:db8:3::53 dns=2001:db8:3::54"},
		{"rebind", msg6(t, dhcpv6.MessageTypeRebind, llt(mac6), ia("2001:db8:1::7")), llSrc, "REPLY " + full},
		{"rebind naming a server: dropped", msg6(t, dhcpv6.MessageTypeRebind, llt(mac6), ia("2001:db8:1::7"), serverID(macServer6)), llSrc, "none"},
		{"confirm on link", msg6(t, dhcpv6.MessageTypeConfirm, llt(mac6), ia("2001:db8:1::7")), llSrc, "REPLY status=Success"},
		{"confirm off link", msg6(t, dhcpv6.MessageTypeConfirm, llt(mac6), ia("2001:db8:77::7")), llSrc, "REPLY status=NotOnLink"},
		{"release", msg6(t, dhcpv6.MessageTypeRelease, llt(mac6), ia("2001:db8:1::7"), serverID(macServer6)), llSrc, "REPLY status=Success"},
		{"release to another server", msg6(t, dhcpv6.MessageTypeRelease, llt(mac6), ia("2001:db8:1::7"), serverID("fa:16:3e:00:00:03")), llSrc, "none"},
		{"decline", msg6(t, dhcpv6.MessageTypeDecline, llt(mac6), ia("2001:db8:1::7"), serverID(macServer6)), llSrc, "REPLY status=Success"},
		{"information-request", msg6(t, dhcpv6.MessageTypeInformationRequest, llt(macInfo6)), eui64(macInfo6), "REPLY dns=2001:db8:3::53 dns=2001:db8:3::54"},
		{"information-request without a client id", msg6(t, dhcpv6.MessageTypeInformationRequest, nil), eui64(macInfo6), "REPLY dns=2001:db8:3::53 dns=2001:db8:3::54"},
		{"information-request from a stateful port", msg6(t, dhcpv6.MessageTypeInformationRequest, llt(mac6)), llSrc, "REPLY dns=2001:db8:1::53 search=openstacklocal"},
		{"information-request to another server", msg6(t, dhcpv6.MessageTypeInformationRequest, llt(macInfo6), serverID("fa:16:3e:00:00:03")), eui64(macInfo6), "none"},
		{"information-request with an IA: dropped", msg6(t, dhcpv6.MessageTypeInformationRequest, llt(macInfo6), ia()), eui64(macInfo6), "none"},
		{"information-request from an unknown MAC", msg6(t, dhcpv6.MessageTypeInformationRequest, nil), eui64("fa:16:3e:00:00:99"), "none"},
		{"advertise from another server: not ours to answer", msg6(t, dhcpv6.MessageTypeAdvertise, llt(mac6), ia()), llSrc, "none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := Respond6(tbl, c.req, c.src)
			if err != nil {
				t.Fatal(err)
			}
			if resp != nil { // what the client reads is the wire form
				if resp, err = dhcpv6.MessageFromBytes(resp.ToBytes()); err != nil {
					t.Fatal(err)
				}
				if resp.TransactionID != c.req.TransactionID {
					t.Errorf("transaction id %v, want %v", resp.TransactionID, c.req.TransactionID)
				}
				if !resp.Options.ServerID().Equal(ll(macServer6)) {
					t.Errorf("server id %v", resp.Options.ServerID())
				}
				if cid := c.req.Options.ClientID(); cid != nil && !resp.Options.ClientID().Equal(cid) {
					t.Errorf("client id %v, want %v", resp.Options.ClientID(), cid)
				}
			}
			if got := summary6(resp); got != c.want {
				t.Errorf("answer\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestRespond6Details(t *testing.T) {
	tbl := testTable6()
	adv, _ := Respond6(tbl, msg6(t, dhcpv6.MessageTypeSolicit, llt(mac6), ia()), eui64(mac6))
	if p := adv.Options.Preference(); p != 255 {
		t.Errorf("preference %d", p)
	}
	got := adv.Options.OneIANA()
	if got.IaId != [4]byte{0, 0, 0, 1} || got.T1 != 30*time.Minute || got.T2 != 48*time.Minute {
		t.Errorf("IA_NA %s", got)
	}
	if a := got.Options.OneAddress(); a.PreferredLifetime != time.Hour || a.ValidLifetime != time.Hour {
		t.Errorf("lifetimes %s", a)
	}
	// Without an Option Request option, no DNS.
	bare := msg6(t, dhcpv6.MessageTypeInformationRequest, llt(macInfo6))
	bare.Options.Del(dhcpv6.OptionORO)
	if r, _ := Respond6(tbl, bare, eui64(macInfo6)); len(r.Options.DNS()) != 0 {
		t.Errorf("unrequested DNS: %s", summary6(r))
	}
	// The default lease time is Neutron's.
	tbl.LeaseTime = 0
	r, _ := Respond6(tbl, msg6(t, dhcpv6.MessageTypeSolicit, llt(mac6), ia()), eui64(mac6))
	if a := r.Options.OneIANA().Options.OneAddress(); a.ValidLifetime != DefaultLeaseTime {
		t.Errorf("default lifetime %s", a.ValidLifetime)
	}
	// Two IA_NAs: the addresses go to the first.
	two := msg6(t, dhcpv6.MessageTypeRequest, llt(mac6), ia(), serverID(macServer6), func(d dhcpv6.DHCPv6) {
		d.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 2}})
	})
	r, _ = Respond6(tbl, two, eui64(mac6))
	if s := summary6(r); !strings.Contains(s, "ia[status=NoAddrsAvail]") || len(r.Options.IANA()) != 2 {
		t.Errorf("two IAs: %s", s)
	}
	if r, err := Respond6(nil, two, eui64(mac6)); r != nil || err != nil {
		t.Errorf("no table: %v, %v", r, err)
	}
}

func TestClientMAC6(t *testing.T) {
	cases := []struct {
		duid dhcpv6.DUID
		src  string
		want string
	}{
		{llt("FA:16:3E:AA:BB:CC"), "::", "fa:16:3e:aa:bb:cc"},
		{ll("fa:16:3e:aa:bb:cc"), "fe80::1", "fa:16:3e:aa:bb:cc"},
		{&dhcpv6.DUIDEN{EnterpriseNumber: 1, EnterpriseIdentifier: []byte{1}}, "fe80::f816:3eff:feaa:bbcc", "fa:16:3e:aa:bb:cc"},
		{&dhcpv6.DUIDLL{HWType: iana.HWTypeIEEE802, LinkLayerAddr: []byte{1, 2, 3, 4, 5, 6}}, "fe80::f816:3eff:feaa:bbcc%eth0", "fa:16:3e:aa:bb:cc"},
		{nil, "2001:db8::f816:3eff:feaa:bbcc", ""}, // not link-local
		{nil, "fe80::1", ""},
		{nil, "10.0.0.1", ""},
	}
	for _, c := range cases {
		m := msg6(t, dhcpv6.MessageTypeSolicit, c.duid)
		if got := ClientMAC6(m, netip.MustParseAddr(c.src)); got != c.want {
			t.Errorf("ClientMAC6(%v, %s) = %q, want %q", c.duid, c.src, got, c.want)
		}
	}
	if !slices.Equal(eui64("fa:16:3e:aa:bb:cc").AsSlice(), netip.MustParseAddr("fe80::f816:3eff:feaa:bbcc").AsSlice()) {
		t.Error("eui64 helper")
	}
}

func TestKernelDHCP6(t *testing.T) {
	netnstest.Require(t)
	tag := netnstest.Tag()
	host := newNS(t, "kt"+tag+"-h")
	l := newL2(t, host)
	plan, _ := Render(Config{}, NetworkSpec{ID: "dhcp6-net-" + tag, MTU: 1400, Segment: Segment{Type: "local"}})
	if err := l.EnsureNetwork(plan); err != nil {
		t.Fatal(err)
	}
	nsName := "kt" + tag + "-dhcp6"
	t.Cleanup(func() { _ = DeleteNamedNetns(nsName) })
	sp := ServicePort{Namespace: nsName, PortID: "dhcp6port-" + tag, MAC: macServer6, Bridge: plan.Bridge.Name, MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::2/64")}}
	ns, err := l.EnsureServicePort(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	srv, err := ListenDHCP6(ns, NSDevName(sp.PortID), slogT(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTable(testTable6())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	tap, tapInfo := TapName("vm6port-"+tag), TapName("vm6info-"+tag)
	v := vm(t, host, "kt"+tag+"-vm6", tap, mac6, "")
	vi := vm(t, host, "kt"+tag+"-vi6", tapInfo, macInfo6, "")
	for _, tp := range []string{tap, tapInfo} {
		if err := l.Plug(tp, plan.Bridge.Name, 1400); err != nil {
			t.Fatal(err)
		}
	}
	netnstest.WaitLinkLocal(t, nsName, NSDevName(sp.PortID))

	t.Run("stateful", func(t *testing.T) {
		c := netnstest.DHCP6Client(t, v.name)
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer rcancel()
		adv, err := c.Solicit(rctx)
		if err != nil {
			t.Fatalf("solicit: %v", err)
		}
		reply, err := c.Request(rctx, adv)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		const want = "REPLY ia[2001:db8:1::7/1h0m0s 2001:db8:2::7/1h0m0s] dns=2001:db8:1::53 search=openstacklocal"
		if got := summary6(reply); got != want {
			t.Fatalf("reply\n got %s\nwant %s", got, want)
		}
		// The address works: configured on eth0 it reaches the DHCP port.
		netnstest.Sh(t, "ip", "-n", v.name, "addr", "add", "2001:db8:1::7/64", "dev", "eth0", "nodad")
		netnstest.Listen(t, nsName, 8080)
		if !netnstest.Reach(v.name, "2001:db8:1::2", 8080) {
			t.Fatal("2001:db8:1::7 cannot reach the DHCP port's 2001:db8:1::2")
		}
	})
	t.Run("stateless", func(t *testing.T) {
		c := netnstest.DHCP6Client(t, vi.name)
		msg, err := dhcpv6.NewMessage(dhcpv6.WithRequestedOptions(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
		if err != nil {
			t.Fatal(err)
		}
		msg.MessageType = dhcpv6.MessageTypeInformationRequest
		msg.AddOption(dhcpv6.OptClientID(llt(macInfo6)))
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer rcancel()
		reply, err := c.SendAndRead(rctx, c.RemoteAddr(), msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
		if err != nil {
			t.Fatalf("information-request: %v", err)
		}
		if got, want := summary6(reply), "REPLY dns=2001:db8:3::53 dns=2001:db8:3::54"; got != want {
			t.Fatalf("reply\n got %s\nwant %s", got, want)
		}
	})
}

// cpuNow is this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAnswer is one packet's work in the server loop: decode the
// client's message, compute the answer, encode it; DHCPv4 (a Discover)
// beside DHCPv6 (a Solicit) on a 1,000-port table. cpu-us/op is process
// CPU per answer.
func BenchmarkAnswer(b *testing.B) {
	t4, t6 := testTable(), testTable6()
	for i := 0; i < 1000; i++ {
		mac := net.HardwareAddr{0xfa, 0x16, 0x3e, 1, byte(i >> 8), byte(i)}.String()
		t4.ByMAC[mac] = Lease{MAC: mac}
		t6.ByMAC[mac] = Lease6{MAC: mac}
	}
	d4 := request(b, mac6, dhcpv4.MessageTypeDiscover).ToBytes()
	s6 := msg6(b, dhcpv6.MessageTypeSolicit, llt(mac6), ia()).ToBytes()
	src := eui64(mac6)
	run := func(b *testing.B, answer func() error) {
		cpu0 := cpuNow()
		for i := 0; i < b.N; i++ {
			if err := answer(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuNow()-cpu0).Nanoseconds())/1000/float64(b.N), "cpu-us/op")
	}
	b.Run("v4", func(b *testing.B) {
		run(b, func() error {
			m, err := dhcpv4.FromBytes(d4)
			if err != nil {
				return err
			}
			r, err := Respond(t4, m)
			if err == nil && r == nil {
				return fmt.Errorf("no answer")
			}
			_ = r.ToBytes()
			return err
		})
	})
	b.Run("v6", func(b *testing.B) {
		run(b, func() error {
			m, err := dhcpv6.MessageFromBytes(s6)
			if err != nil {
				return err
			}
			r, err := Respond6(t6, m, src)
			if err == nil && r == nil {
				return fmt.Errorf("no answer")
			}
			_ = r.ToBytes()
			return err
		})
	})
}
