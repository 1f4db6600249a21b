package network

import (
	"github.com/kumo-cloud/kumo/internal/apiutil"
	"net/netip"
	"testing"
)

func TestDefaultPools(t *testing.T) {
	for _, tc := range []struct {
		cidr, gw string
		want     []string // start-end
	}{
		{"10.0.0.0/24", "10.0.0.1", []string{"10.0.0.2-10.0.0.254"}},
		{"10.0.0.0/24", "10.0.0.100", []string{"10.0.0.1-10.0.0.99", "10.0.0.101-10.0.0.254"}},
		{"10.0.0.0/24", "", []string{"10.0.0.1-10.0.0.254"}},
		{"10.0.0.0/30", "10.0.0.1", []string{"10.0.0.2-10.0.0.2"}},
		{"2001:db8::/64", "2001:db8::1", []string{"2001:db8::2-2001:db8::ffff:ffff:ffff:ffff"}},
	} {
		p := netip.MustParsePrefix(tc.cidr)
		var gw netip.Addr
		if tc.gw != "" {
			gw = netip.MustParseAddr(tc.gw)
		}
		got := defaultPools(p, gw)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.cidr, got, tc.want)
		}
		for i, r := range got {
			if s := r.Start.String() + "-" + r.End.String(); s != tc.want[i] {
				t.Errorf("%s: pool %d = %s, want %s", tc.cidr, i, s, tc.want[i])
			}
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"10.0.0.0/24", true}, {"10.0.0.1/24", false}, {"10.0.0.0", false}, {"bogus", false}, {"2001:db8::/64", true}, {"10.0.0.0/33", false}} {
		if _, err := parseCIDR(tc.in); (err == nil) != tc.ok {
			t.Errorf("parseCIDR(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestValidatePools(t *testing.T) {
	p := netip.MustParsePrefix("10.0.0.0/24")
	gw := netip.MustParseAddr("10.0.0.1")
	r := func(a, b string) ipRange { return ipRange{netip.MustParseAddr(a), netip.MustParseAddr(b)} }
	for _, tc := range []struct {
		name  string
		pools []ipRange
		want  string
	}{
		{"ok", []ipRange{r("10.0.0.10", "10.0.0.20"), r("10.0.0.30", "10.0.0.40")}, ""},
		{"overlap", []ipRange{r("10.0.0.10", "10.0.0.20"), r("10.0.0.15", "10.0.0.40")}, "OverlappingAllocationPools"},
		{"outside", []ipRange{r("10.0.1.10", "10.0.1.20")}, "OutOfBoundsAllocationPool"},
		{"reversed", []ipRange{r("10.0.0.20", "10.0.0.10")}, "InvalidAllocationPool"},
		{"broadcast", []ipRange{r("10.0.0.10", "10.0.0.255")}, "InvalidAllocationPool"},
		{"gateway", []ipRange{r("10.0.0.1", "10.0.0.20")}, "GatewayConflictWithAllocationPools"},
	} {
		err := validatePools(p, tc.pools, gw)
		got := ""
		if err != nil {
			got = err.(interface{ Error() string }).Error()
			got = errCode(err)
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func errCode(err error) string {
	if e, ok := err.(interface{ Unwrap() error }); ok {
		_ = e
	}
	if e, ok := err.(*apiutil.Error); ok {
		return e.Code
	}
	return "?"
}

func TestPickFree(t *testing.T) {
	pools := []ipRange{{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.4")}}
	used := map[netip.Addr]bool{}
	var got []string
	for {
		a, ok := pickFree(pools, func(a netip.Addr) bool { return used[a] })
		if !ok {
			break
		}
		used[a] = true
		got = append(got, a.String())
	}
	if len(got) != 3 || got[0] != "10.0.0.2" || got[2] != "10.0.0.4" {
		t.Fatalf("got %v", got)
	}
	// Big IPv6 pools pick random free addresses.
	big := defaultPools(netip.MustParsePrefix("2001:db8::/64"), netip.MustParseAddr("2001:db8::1"))
	seen := map[netip.Addr]bool{}
	for range 100 {
		a, ok := pickFree(big, func(a netip.Addr) bool { return seen[a] })
		if !ok || seen[a] || !netip.MustParsePrefix("2001:db8::/64").Contains(a) {
			t.Fatalf("bad pick %v %v", a, ok)
		}
		seen[a] = true
	}
}

func TestEUI64(t *testing.T) {
	a, ok := eui64(netip.MustParsePrefix("2001:db8::/64"), "fa:16:3e:12:34:56")
	if !ok || a.String() != "2001:db8::f816:3eff:fe12:3456" {
		t.Fatalf("got %v %v", a, ok)
	}
}

func TestFreePrefix(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}
	used := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.1.0/25"), netip.MustParsePrefix("10.0.4.0/22")}
	for _, tc := range []struct {
		bits int
		want string
	}{{24, "10.0.2.0/24"}, {25, "10.0.1.128/25"}, {22, "10.0.8.0/22"}, {16, ""}} {
		got, ok := freePrefix(pools, used, tc.bits)
		if (tc.want == "") != !ok || ok && got.String() != tc.want {
			t.Errorf("/%d: got %v %v, want %q", tc.bits, got, ok, tc.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"10.0.0.0/24", "10.0.0.128/25", true}, {"10.0.0.0/24", "10.0.1.0/24", false}, {"10.0.0.0/8", "10.200.0.0/16", true}} {
		if got := netip.MustParsePrefix(tc.a).Overlaps(netip.MustParsePrefix(tc.b)); got != tc.want {
			t.Errorf("%s vs %s: %v", tc.a, tc.b, got)
		}
	}
}
