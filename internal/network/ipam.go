package network

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
)

// ipRange is an inclusive range of addresses: an allocation pool.
type ipRange struct {
	Start netip.Addr
	End   netip.Addr
}

func (r ipRange) contains(a netip.Addr) bool {
	return r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

func (r ipRange) overlaps(o ipRange) bool {
	return r.Start.Compare(o.End) <= 0 && o.Start.Compare(r.End) <= 0
}

// u128 is an address as a 128-bit number, for range arithmetic.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func fromU128(v u128, is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.lo)
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}

func (v u128) sub(o u128) u128 {
	lo := v.lo - o.lo
	borrow := uint64(0)
	if v.lo < o.lo {
		borrow = 1
	}
	return u128{v.hi - o.hi - borrow, lo}
}

func (v u128) add(n uint64) u128 {
	lo := v.lo + n
	carry := uint64(0)
	if lo < v.lo {
		carry = 1
	}
	return u128{v.hi + carry, lo}
}

// size is the number of addresses in the range, saturated at 1<<63.
func (r ipRange) size() uint64 {
	d := toU128(r.End).sub(toU128(r.Start))
	if d.hi != 0 || d.lo >= 1<<63 {
		return 1 << 63
	}
	return d.lo + 1
}

// nth returns the n-th address of the range (n < size).
func (r ipRange) nth(n uint64) netip.Addr {
	return fromU128(toU128(r.Start).add(n), r.Start.Is4())
}

// parseCIDR parses a subnet CIDR, insisting on the canonical form (host
// bits zero) the way Neutron does.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		// Neutron also accepts a bare address as a host route.
		return netip.Prefix{}, badInput("Invalid input for cidr. Reason: '%s' is not a valid IP subnet.", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, badInput("Invalid input for cidr. Reason: '%s' is not a valid IP subnet.", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, badInput("Invalid input for cidr. Reason: '%s' isn't a recommended CIDR, use '%s' instead.", s, m)
	}
	return p, nil
}

// firstLast returns the network's first and last address.
func firstLast(p netip.Prefix) (netip.Addr, netip.Addr) {
	first := p.Masked().Addr()
	bits := p.Addr().BitLen()
	host := bits - p.Bits()
	v := toU128(first)
	switch {
	case host >= 64:
		v.lo = ^uint64(0)
		v.hi |= (uint64(1) << (host - 64)) - 1
		if host == 128 {
			v.hi = ^uint64(0)
		}
	case host > 0:
		v.lo |= (uint64(1) << host) - 1
	}
	return first, fromU128(v, first.Is4())
}

// usableRange is the range addresses may be allocated from: IPv4 skips
// the network and broadcast addresses, IPv6 the subnet-router anycast
// address. Tiny networks (/31, /32, /127, /128) use every address.
func usableRange(p netip.Prefix) ipRange {
	first, last := firstLast(p)
	host := p.Addr().BitLen() - p.Bits()
	if host <= 1 {
		return ipRange{first, last}
	}
	if first.Is4() {
		return ipRange{first.Next(), last.Prev()}
	}
	return ipRange{first.Next(), last}
}

// defaultGateway is the first usable address.
func defaultGateway(p netip.Prefix) netip.Addr {
	return usableRange(p).Start
}

// defaultPools is the usable range minus the gateway address.
func defaultPools(p netip.Prefix, gw netip.Addr) []ipRange {
	u := usableRange(p)
	if !gw.IsValid() || !u.contains(gw) {
		return []ipRange{u}
	}
	var out []ipRange
	if gw.Compare(u.Start) > 0 {
		out = append(out, ipRange{u.Start, gw.Prev()})
	}
	if gw.Compare(u.End) < 0 {
		out = append(out, ipRange{gw.Next(), u.End})
	}
	return out
}

// validatePools checks requested allocation pools against the subnet.
func validatePools(p netip.Prefix, pools []ipRange, gw netip.Addr) error {
	u := usableRange(p)
	for i, r := range pools {
		if r.Start.Is4() != p.Addr().Is4() || r.End.Is4() != p.Addr().Is4() {
			return badRequest("InvalidAllocationPool", "The allocation pool %s-%s spans beyond the subnet cidr %s.", r.Start, r.End, p)
		}
		if r.End.Less(r.Start) {
			return badRequest("InvalidAllocationPool", "The allocation pool %s-%s is not valid.", r.Start, r.End)
		}
		if !p.Contains(r.Start) || !p.Contains(r.End) {
			return badRequest("OutOfBoundsAllocationPool", "The allocation pool %s-%s spans beyond the subnet cidr %s.", r.Start, r.End, p)
		}
		if !u.contains(r.Start) || !u.contains(r.End) {
			return badRequest("InvalidAllocationPool", "The allocation pool %s-%s is not valid.", r.Start, r.End)
		}
		for _, o := range pools[:i] {
			if r.overlaps(o) {
				return badRequest("OverlappingAllocationPools", "Found overlapping allocation pools: %s-%s and %s-%s for subnet %s.", o.Start, o.End, r.Start, r.End, p)
			}
		}
		if gw.IsValid() && r.contains(gw) {
			return conflict("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s-%s.", gw, r.Start, r.End)
		}
	}
	return nil
}

// poolsSize is the number of allocatable addresses, saturated.
func poolsSize(pools []ipRange) uint64 {
	var n uint64
	for _, r := range pools {
		s := r.size()
		if n+s < n || n+s > 1<<63 {
			return 1 << 63
		}
		n += s
	}
	return n
}

// sequentialLimit is the pool size up to which allocation walks the pools
// in order; bigger pools (IPv6) pick random addresses.
const sequentialLimit = 1 << 16

// pickFree chooses a free address in pools; used tells taken addresses.
// Small pools give the lowest free address, so allocation is
// deterministic; large pools a random one.
func pickFree(pools []ipRange, used func(netip.Addr) bool) (netip.Addr, bool) {
	total := poolsSize(pools)
	if total == 0 {
		return netip.Addr{}, false
	}
	if total <= sequentialLimit {
		for _, r := range pools {
			for a := r.Start; a.IsValid() && a.Compare(r.End) <= 0; a = a.Next() {
				if !used(a) {
					return a, true
				}
			}
		}
		return netip.Addr{}, false
	}
	for range 256 {
		n := rand.Uint64N(total)
		for _, r := range pools {
			s := r.size()
			if n < s {
				a := r.nth(n)
				if !used(a) {
					return a, true
				}
				break
			}
			n -= s
		}
	}
	return netip.Addr{}, false
}

// eui64 computes the SLAAC address of mac in a /64 prefix.
func eui64(p netip.Prefix, mac string) (netip.Addr, bool) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 || !p.Addr().Is6() || p.Bits() > 64 {
		return netip.Addr{}, false
	}
	b := p.Masked().Addr().As16()
	b[8] = hw[0] ^ 0x02
	b[9], b[10] = hw[1], hw[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b), true
}

// isSLAAC reports whether addresses on a subnet with this mode are
// computed from the MAC rather than allocated.
func isSLAAC(addressMode string) bool {
	return addressMode == "slaac" || addressMode == "dhcpv6-stateless"
}
