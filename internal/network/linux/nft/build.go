package nft

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// B builds one rule: each method appends the kernel expressions of one match
// or statement and its nft text, so the text printed by String is exactly
// what the kernel gets. Protocol dependencies ("meta nfproto ipv4" before
// "ip saddr", "meta l4proto tcp" before "tcp dport") are the caller's job and
// show in the text.
type B struct {
	text  []string
	exprs []expr.Any
}

// NewRule starts a rule.
func NewRule() *B { return &B{} }

// Rule returns the finished rule.
func (b *B) Rule() Rule {
	return Rule{Text: strings.Join(b.text, " "), Exprs: b.exprs}
}

func (b *B) add(text string, e ...expr.Any) *B {
	b.text = append(b.text, text)
	b.exprs = append(b.exprs, e...)
	return b
}

const reg = 1 // NFT_REG_1: every match loads into and compares register 1

// Ifname matches the input ("iifname") or output ("oifname") device name.
func (b *B) Ifname(out bool, name string) *B {
	key, word := expr.MetaKeyIIFNAME, "iifname"
	if out {
		key, word = expr.MetaKeyOIFNAME, "oifname"
	}
	return b.add(fmt.Sprintf("%s %q", word, name),
		&expr.Meta{Key: key, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: IfnameBytes(name)})
}

// IfnameBytes is a device name as the kernel compares it (NUL padded to
// IFNAMSIZ).
func IfnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// NFProto matches the layer 3 family in inet tables (4 or 6).
func (b *B) NFProto(v int) *B {
	p, w := byte(unix.NFPROTO_IPV4), "ipv4"
	if v == 6 {
		p, w = unix.NFPROTO_IPV6, "ipv6"
	}
	return b.add("meta nfproto "+w,
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{p}})
}

// L4Proto matches the transport protocol number.
func (b *B) L4Proto(p uint8) *B {
	return b.add("meta l4proto "+protoName(p),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{p}})
}

// Ethernet type numbers.
const (
	EtherIPv4 = 0x0800
	EtherARP  = 0x0806
	EtherIPv6 = 0x86dd
)

func etherName(t uint16) string {
	switch t {
	case EtherIPv4:
		return "ip"
	case EtherARP:
		return "arp"
	case EtherIPv6:
		return "ip6"
	}
	return fmt.Sprintf("0x%04x", t)
}

// EtherType matches the Ethernet type (bridge family).
func (b *B) EtherType(t uint16) *B {
	return b.add("ether type "+etherName(t),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(t)})
}

// EtherSaddr matches the source MAC (bridge family).
func (b *B) EtherSaddr(mac net.HardwareAddr) *B {
	return b.add("ether saddr "+mac.String(),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte(mac)})
}

// ArpSender matches the ARP sender hardware and protocol (IPv4) address; a
// prefix shorter than /32 matches any address in it.
func (b *B) ArpSender(mac net.HardwareAddr, p netip.Prefix) *B {
	b.add("arp saddr ether "+mac.String(),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 6},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte(mac)})
	return b.prefix("arp saddr ip", 14, p)
}

// Addr matches the source (src) or destination address against a prefix;
// the prefix's family picks IPv4 or IPv6 offsets.
func (b *B) Addr(src bool, p netip.Prefix) *B {
	word, off := addrField(src, p.Addr().Is6())
	return b.prefix(word, off, p)
}

func addrField(src, v6 bool) (string, uint32) {
	switch {
	case !v6 && src:
		return "ip saddr", 12
	case !v6:
		return "ip daddr", 16
	case src:
		return "ip6 saddr", 8
	default:
		return "ip6 daddr", 24
	}
}

func (b *B) prefix(word string, off uint32, p netip.Prefix) *B {
	p = p.Masked()
	addr := p.Addr().AsSlice()
	n := uint32(len(addr))
	text := word + " " + p.Addr().String()
	es := []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < int(n*8) {
		text = word + " " + p.String()
		mask := net.CIDRMask(p.Bits(), int(n*8))
		es = append(es, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	es = append(es, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: addr})
	return b.add(text, es...)
}

// AddrInSet matches the source or destination address against a named set
// (invert: not in it).
func (b *B) AddrInSet(src, v6 bool, set string, invert bool) *B {
	word, off := addrField(src, v6)
	n := uint32(4)
	if v6 {
		n = 16
	}
	op := " @"
	if invert {
		op = " != @"
	}
	return b.add(word+op+set,
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: reg, SetName: set, Invert: invert})
}

// Port matches the transport source or destination port against a range
// (min == max: one port). Valid after an L4Proto match of a protocol with
// ports at the start of its header (TCP, UDP, SCTP, DCCP, UDP-Lite).
func (b *B) Port(dst bool, min, max uint16) *B {
	off, word := uint32(0), "th sport"
	if dst {
		off, word = 2, "th dport"
	}
	p := &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}
	if min == max {
		return b.add(fmt.Sprintf("%s %d", word, min), p,
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(min)})
	}
	return b.add(fmt.Sprintf("%s %d-%d", word, min, max), p,
		&expr.Range{Op: expr.CmpOpEq, Register: reg, FromData: binaryutil.BigEndian.PutUint16(min), ToData: binaryutil.BigEndian.PutUint16(max)})
}

// ICMPType matches the ICMP or ICMPv6 type (first byte of the header).
func (b *B) ICMPType(v6 bool, t uint8) *B {
	word := "icmp type"
	if v6 {
		word = "icmpv6 type"
	}
	return b.add(fmt.Sprintf("%s %d", word, t),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{t}})
}

// ICMPCode matches the ICMP or ICMPv6 code.
func (b *B) ICMPCode(v6 bool, c uint8) *B {
	word := "icmp code"
	if v6 {
		word = "icmpv6 code"
	}
	return b.add(fmt.Sprintf("%s %d", word, c),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 1, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{c}})
}

// CtState matches when the connection state has any of the given bits
// (expr.CtStateBit*).
func (b *B) CtState(bits uint32) *B {
	var names []string
	for _, s := range []struct {
		bit  uint32
		name string
	}{{expr.CtStateBitINVALID, "invalid"}, {expr.CtStateBitESTABLISHED, "established"}, {expr.CtStateBitRELATED, "related"}, {expr.CtStateBitNEW, "new"}, {expr.CtStateBitUNTRACKED, "untracked"}} {
		if bits&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	return b.add("ct state "+strings.Join(names, ","),
		&expr.Ct{Register: reg, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)})
}

// MarkSetFromIfnameMap sets the packet mark to the value the named map holds
// for the input or output device, XORed with xor (0: unchanged). Devices not
// in the map leave the mark alone.
func (b *B) MarkSetFromIfnameMap(out bool, set string, xor uint32) *B {
	key, word := expr.MetaKeyIIFNAME, "iifname"
	if out {
		key, word = expr.MetaKeyOIFNAME, "oifname"
	}
	text := fmt.Sprintf("meta mark set %s map @%s", word, set)
	es := []expr.Any{
		&expr.Meta{Key: key, Register: reg},
		&expr.Lookup{SourceRegister: reg, DestRegister: reg, IsDestRegSet: true, SetName: set},
	}
	if xor != 0 {
		text += fmt.Sprintf(" ^ 0x%08x", xor)
		es = append(es, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(0xffffffff), Xor: binaryutil.NativeEndian.PutUint32(xor)})
	}
	es = append(es, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg})
	return b.add(text, es...)
}

// MarkVmap jumps to the chain the named verdict map holds for the mark.
func (b *B) MarkVmap(set string) *B {
	return b.add("meta mark vmap @"+set,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg},
		&expr.Lookup{SourceRegister: reg, DestRegister: 0, IsDestRegSet: true, SetName: set})
}

// IfnameVmap jumps to the chain the named verdict map holds for the device.
func (b *B) IfnameVmap(out bool, set string) *B {
	key, word := expr.MetaKeyIIFNAME, "iifname"
	if out {
		key, word = expr.MetaKeyOIFNAME, "oifname"
	}
	return b.add(word+" vmap @"+set,
		&expr.Meta{Key: key, Register: reg},
		&expr.Lookup{SourceRegister: reg, DestRegister: 0, IsDestRegSet: true, SetName: set})
}

// Counter counts packets and bytes.
func (b *B) Counter() *B { return b.add("counter", &expr.Counter{}) }

// Accept, Drop, Return and Jump end the rule with a verdict.
func (b *B) Accept() *B { return b.add("accept", &expr.Verdict{Kind: expr.VerdictAccept}) }

// Drop ends the rule with drop.
func (b *B) Drop() *B { return b.add("drop", &expr.Verdict{Kind: expr.VerdictDrop}) }

// Return ends the rule with return.
func (b *B) Return() *B { return b.add("return", &expr.Verdict{Kind: expr.VerdictReturn}) }

// Jump ends the rule with a jump to chain.
func (b *B) Jump(chain string) *B {
	return b.add("jump "+chain, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
}

// NAT rewrites the source (snat) or destination (dnat) address to addr and,
// when port is not 0, the port (dnat to addr:port). Valid in nat chains of
// ip/ip6/inet tables; inet tables need an NFProto match first.
func (b *B) NAT(dnat bool, addr netip.Addr, port uint16) *B {
	kind, word := expr.NATTypeSourceNAT, "snat"
	if dnat {
		kind, word = expr.NATTypeDestNAT, "dnat"
	}
	fam := uint32(unix.NFPROTO_IPV4)
	fword := "ip"
	if addr.Is6() {
		fam, fword = unix.NFPROTO_IPV6, "ip6"
	}
	text := fmt.Sprintf("%s %s to %s", word, fword, addr)
	es := []expr.Any{&expr.Immediate{Register: 1, Data: addr.AsSlice()}}
	n := &expr.NAT{Type: kind, Family: fam, RegAddrMin: 1, RegAddrMax: 1}
	if port != 0 {
		text = fmt.Sprintf("%s %s to %s", word, fword, netip.AddrPortFrom(addr, port))
		es = append(es, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)})
		n.RegProtoMin, n.RegProtoMax = 2, 2
	}
	return b.add(text, append(es, n)...)
}

// Masquerade rewrites the source to the output device's address.
func (b *B) Masquerade() *B { return b.add("masquerade", &expr.Masq{}) }

func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "ipv6-icmp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	case unix.IPPROTO_DCCP:
		return "dccp"
	case unix.IPPROTO_UDPLITE:
		return "udplite"
	}
	return fmt.Sprint(p)
}

// Mark32 encodes a mark or other host-order 32-bit value as the kernel
// stores it in registers and sets.
func Mark32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

// u32 decodes Mark32.
func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}
