package nft

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table names and mark layout; see the package comment.
const (
	TableName = "kumo_sg"

	markEgress  = 0x01000000
	markIngress = 0x02000000
	markIDMask  = 0x00ffffff
)

// Render turns the desired state into the ruleset, giving ports mark ids
// 1, 2, … in port-id order. Problems with single ports or rules are returned
// (joined) along with a ruleset that leaves them out: a port whose addresses
// cannot be parsed gets no anti-spoofing allowances (it cannot send), a bad
// rule is skipped (it allows nothing).
func Render(d Desired) (*Ruleset, error) {
	ids := map[string]uint32{}
	ports := securedPorts(d.Ports)
	for i, p := range ports {
		ids[p.ID] = uint32(i + 1)
	}
	return render(d, ids, assignZones(d.Bridges, nil))
}

// zoneType is a conntrack zone as map data: 16 bits, host order.
var zoneType = func() nftables.SetDatatype {
	t := nftables.TypeInteger
	t.Name, t.Bytes = "ct_zone", 2
	return t
}()

// assignZones keeps the zones of known bridges and gives new ones the lowest
// free zones from 1 (zone 0 is everybody else's).
func assignZones(bridges []string, old map[string]uint16) map[string]uint16 {
	out := map[string]uint16{}
	used := map[uint16]bool{}
	sorted := slices.Clone(bridges)
	sort.Strings(sorted)
	for _, b := range sorted {
		if z, ok := old[b]; ok {
			out[b], used[z] = z, true
		}
	}
	next := uint16(1)
	for _, b := range sorted {
		if _, ok := out[b]; ok {
			continue
		}
		for used[next] {
			next++
		}
		out[b], used[next] = next, true
	}
	return out
}

func securedPorts(ps []Port) []Port {
	var out []Port
	for _, p := range ps {
		if p.PortSecurityEnabled {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// renderCache memoizes the parts of a ruleset that depend on one port or
// one group, so re-rendering a host after a single change costs little
// more than rendering that change. Parts are keyed by a fingerprint of
// their inputs.
type renderCache struct {
	ports   map[string]*portPart
	groups  map[string]*groupPart
	members map[string]*memberPart

	// Set by each render: groups that lost a rule, sets that lost an
	// element since the previous render, and from them the ports whose
	// allowed traffic shrank (their tracked connections must be re-checked).
	shrunkGroups map[string]bool
	shrunkSets   map[string]bool
	tightened    map[string]bool
}

type portPart struct {
	fp      string
	groups  []string
	spoof   *Chain
	out, in *Chain
	elems   [4]Elem // ports, spoof, egress, ingress
	err     error
}

type groupPart struct {
	fp     string
	eg, ig *Chain
	sets   []string
	errs   []error
}

type memberPart struct {
	fp    string
	elems []Elem
	err   error
}

func newRenderCache() *renderCache {
	return &renderCache{ports: map[string]*portPart{}, groups: map[string]*groupPart{}, members: map[string]*memberPart{}}
}

func render(d Desired, ids map[string]uint32, zones map[string]uint16) (*Ruleset, error) {
	return newRenderCache().render(d, ids, zones)
}

func (rc *renderCache) render(d Desired, ids map[string]uint32, zones map[string]uint16) (*Ruleset, error) {
	var errs []error
	rc.shrunkGroups, rc.shrunkSets, rc.tightened = map[string]bool{}, map[string]bool{}, map[string]bool{}
	portGroups := map[string][]string{} // port → groups, for tightened
	lostGroup := map[string]bool{}
	groups := map[string]*Group{}
	for i := range d.Groups {
		groups[d.Groups[i].ID] = &d.Groups[i]
	}
	addrGroups := map[string]*AddressGroup{}
	for i := range d.AddressGroups {
		addrGroups[d.AddressGroups[i].ID] = &d.AddressGroups[i]
	}
	br := &Table{Family: nftables.TableFamilyBridge, Name: TableName}
	in := &Table{Family: nftables.TableFamilyINet, Name: TableName}
	portMarks := &Set{Name: "ports", KeyType: nftables.TypeIFName, DataType: nftables.TypeMark, IsMap: true}
	spoof := &Set{Name: "spoof", KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict, IsMap: true}
	egress := &Set{Name: "egress", KeyType: nftables.TypeMark, DataType: nftables.TypeVerdict, IsMap: true}
	ingress := &Set{Name: "ingress", KeyType: nftables.TypeMark, DataType: nftables.TypeVerdict, IsMap: true}
	br.Sets = []*Set{portMarks, spoof}
	in.Sets = []*Set{egress, ingress}
	br.Chains = []*Chain{
		{Name: "prerouting", Hook: &Hook{Type: nftables.ChainTypeFilter, Hooknum: *nftables.ChainHookPrerouting, Priority: -300, Policy: nftables.ChainPolicyAccept},
			Rules: []Rule{NewRule().MarkSetFromIfnameMap(false, "ports", 0).Rule(), NewRule().IfnameVmap(false, "spoof").Rule()}},
		{Name: "forward", Hook: &Hook{Type: nftables.ChainTypeFilter, Hooknum: *nftables.ChainHookForward, Priority: -300, Policy: nftables.ChainPolicyAccept},
			Rules: []Rule{NewRule().MarkSetFromIfnameMap(true, "ports", markEgress^markIngress).Rule()}},
	}
	in.Chains = []*Chain{
		{Name: "prerouting", Hook: &Hook{Type: nftables.ChainTypeFilter, Hooknum: *nftables.ChainHookPrerouting, Priority: 0, Policy: nftables.ChainPolicyAccept},
			Rules: []Rule{NewRule().MarkVmap("egress").Rule()}},
		{Name: "forward", Hook: &Hook{Type: nftables.ChainTypeFilter, Hooknum: *nftables.ChainHookForward, Priority: 0, Policy: nftables.ChainPolicyAccept},
			Rules: []Rule{NewRule().MarkVmap("ingress").Rule()}},
	}
	cb, ci := commonChains()
	br.Chains = append(br.Chains, cb...)
	in.Chains = append(in.Chains, ci...)
	zoneMap := &Set{Name: "zones", KeyType: nftables.TypeIFName, DataType: zoneType, IsMap: true}
	in.Sets = append(in.Sets, zoneMap)
	in.Chains = append(in.Chains, &Chain{Name: "zone", Hook: &Hook{Type: nftables.ChainTypeFilter, Hooknum: *nftables.ChainHookPrerouting, Priority: -300, Policy: nftables.ChainPolicyAccept},
		Rules: []Rule{NewRule().CtZoneSetFromIfnameMap("zones").Rule()}})
	var bridges []string
	for b := range zones {
		bridges = append(bridges, b)
	}
	sort.Strings(bridges)
	for _, b := range bridges {
		if b == "" || len(b) >= unix.IFNAMSIZ {
			errs = append(errs, fmt.Errorf("invalid bridge name %q", b))
			continue
		}
		zoneMap.Elems = append(zoneMap.Elems, Elem{Key: IfnameBytes(b), Val: binaryutil.NativeEndian.PutUint16(zones[b]), Text: fmt.Sprintf("%q : %d", b, zones[b])}.withID())
	}

	usedGroups := map[string]bool{}
	seenPorts, seenDevs := map[string]bool{}, map[string]bool{}
	var portChains []*Chain
	for _, p := range securedPorts(d.Ports) {
		id := ids[p.ID]
		if p.Device == "" || len(p.Device) >= unix.IFNAMSIZ {
			errs = append(errs, &PortError{p.ID, fmt.Errorf("invalid device name %q", p.Device)})
			continue
		}
		if id == 0 || id > markIDMask {
			errs = append(errs, &PortError{p.ID, fmt.Errorf("no mark id")})
			continue
		}
		if seenPorts[p.ID] || seenDevs[p.Device] {
			errs = append(errs, &PortError{p.ID, fmt.Errorf("port or device %s listed twice", p.Device)})
			continue
		}
		seenPorts[p.ID], seenDevs[p.Device] = true, true
		stateful := true
		var gs []string
		for _, g := range p.SecurityGroups {
			grp := groups[g]
			if grp == nil {
				errs = append(errs, &PortError{p.ID, fmt.Errorf("security group %s not in the desired state", g)})
				continue
			}
			if !grp.Stateful {
				stateful = false
			}
			if !slices.Contains(gs, g) {
				gs = append(gs, g)
			}
			usedGroups[g] = true
		}
		sort.Strings(gs)
		if old := rc.ports[p.ID]; old != nil {
			for _, g := range old.groups {
				if !slices.Contains(gs, g) {
					lostGroup[p.ID] = true
				}
			}
		}
		portGroups[p.ID] = gs
		part := rc.port(p, id, stateful, gs)
		if part.err != nil {
			errs = append(errs, &PortError{p.ID, part.err})
		}
		br.Chains = append(br.Chains, part.spoof)
		portChains = append(portChains, part.out, part.in)
		portMarks.Elems = append(portMarks.Elems, part.elems[0])
		spoof.Elems = append(spoof.Elems, part.elems[1])
		egress.Elems = append(egress.Elems, part.elems[2])
		ingress.Elems = append(ingress.Elems, part.elems[3])
	}
	in.Chains = append(in.Chains, portChains...)
	for id := range rc.ports {
		if !seenPorts[id] {
			delete(rc.ports, id)
		}
	}

	// Group chains, and the member sets their remote-group rules use.
	remote := map[string]bool{} // set name → needed
	var gids []string
	for g := range usedGroups {
		gids = append(gids, g)
	}
	sort.Strings(gids)
	for _, g := range gids {
		part := rc.group(groups[g])
		errs = append(errs, part.errs...)
		for _, s := range part.sets {
			remote[s] = true
		}
		in.Chains = append(in.Chains, part.eg, part.ig)
	}
	for id := range rc.groups {
		if !usedGroups[id] {
			delete(rc.groups, id)
		}
	}
	var setNames []string
	for s := range remote {
		setNames = append(setNames, s)
	}
	sort.Strings(setNames)
	for _, name := range setNames {
		v6 := name[1] == '6' // r4-, r6-, a4-, a6-
		set := &Set{Name: name, KeyType: nftables.TypeIPAddr, Interval: true}
		if v6 {
			set.KeyType = nftables.TypeIP6Addr
		}
		var members []string
		what := "security group"
		if name[0] == 'a' {
			what = "address group"
			if ag := addrGroups[name[3:]]; ag != nil {
				members = ag.Addresses
			} else {
				// An unknown group matches nothing rather than everything.
				errs = append(errs, fmt.Errorf("address group %s not in the desired state", name[3:]))
			}
		} else if grp := groups[name[3:]]; grp != nil {
			members = grp.Members
		}
		part := rc.memberSet(name, members, v6)
		if part.err != nil {
			errs = append(errs, fmt.Errorf("%s %s members: %w", what, name[3:], part.err))
		}
		set.Elems = part.elems
		in.Sets = append(in.Sets, set)
	}
	for name := range rc.members {
		if !remote[name] {
			delete(rc.members, name)
		}
	}
	for p, gs := range portGroups {
		tight := lostGroup[p]
		for _, g := range gs {
			if rc.shrunkGroups[g] {
				tight = true
			}
			if part := rc.groups[g]; part != nil {
				for _, set := range part.sets {
					if rc.shrunkSets[set] {
						tight = true
					}
				}
			}
		}
		if tight {
			rc.tightened[p] = true
		}
	}
	return &Ruleset{Tables: []*Table{br, in}}, errors.Join(errs...)
}

func (rc *renderCache) port(p Port, id uint32, stateful bool, gs []string) *portPart {
	fp := fmt.Sprintf("%q|%q|%q|%q|%d|%t|%q", p.Device, p.MACAddress, p.FixedIPs, p.AllowedAddressPairs, id, stateful, gs)
	if part := rc.ports[p.ID]; part != nil && part.fp == fp {
		return part
	}
	part := &portPart{fp: fp, groups: gs}
	part.spoof, part.err = spoofChain(p)
	part.out, part.in = portChain(p.ID, true, stateful, gs), portChain(p.ID, false, stateful, gs)
	dev := IfnameBytes(p.Device)
	part.elems = [4]Elem{
		Elem{Key: dev, Val: Mark32(markEgress | id), Text: fmt.Sprintf("%q : 0x%08x", p.Device, markEgress|id)}.withID(),
		Elem{Key: dev, Verdict: jump(part.spoof.Name), Text: fmt.Sprintf("%q : jump %s", p.Device, part.spoof.Name)}.withID(),
		Elem{Key: Mark32(markEgress | id), Verdict: jump("o-" + p.ID), Text: fmt.Sprintf("0x%08x : jump o-%s", markEgress|id, p.ID)}.withID(),
		Elem{Key: Mark32(markIngress | id), Verdict: jump("i-" + p.ID), Text: fmt.Sprintf("0x%08x : jump i-%s", markIngress|id, p.ID)}.withID(),
	}
	rc.ports[p.ID] = part
	return part
}

func ruleFingerprint(r SGRule) string {
	pr := func(p *int) string {
		if p == nil {
			return "-"
		}
		return strconv.Itoa(*p)
	}
	return strings.Join([]string{r.ID, r.Direction, r.EtherType, r.Protocol, pr(r.PortRangeMin), pr(r.PortRangeMax), r.RemoteIPPrefix, r.RemoteGroupID, r.RemoteAddressGroupID}, "\x00")
}

func (rc *renderCache) group(grp *Group) *groupPart {
	var fps []string
	for _, r := range grp.Rules {
		fps = append(fps, ruleFingerprint(r))
	}
	fp := strings.Join(fps, "\x01")
	if part := rc.groups[grp.ID]; part != nil && part.fp == fp {
		return part
	}
	part := &groupPart{fp: fp}
	var eg, ig []Rule
	seen := map[string]bool{}
	for _, r := range grp.Rules {
		rule, set, err := sgRule(r)
		if err != nil {
			part.errs = append(part.errs, fmt.Errorf("security group %s rule %s: %w", grp.ID, r.ID, err))
			continue
		}
		if set != "" && !seen[set] {
			seen[set] = true
			part.sets = append(part.sets, set)
		}
		if r.Direction == "egress" {
			eg = append(eg, rule)
		} else {
			ig = append(ig, rule)
		}
	}
	part.eg = &Chain{Name: "ge-" + grp.ID, Rules: dedupe(eg)}
	part.ig = &Chain{Name: "gi-" + grp.ID, Rules: dedupe(ig)}
	if old := rc.groups[grp.ID]; old != nil && (lost(old.eg.Rules, part.eg.Rules) || lost(old.ig.Rules, part.ig.Rules)) {
		rc.shrunkGroups[grp.ID] = true
	}
	rc.groups[grp.ID] = part
	return part
}

func (rc *renderCache) memberSet(name string, members []string, v6 bool) *memberPart {
	fp := strings.Join(members, ",")
	if part := rc.members[name]; part != nil && part.fp == fp {
		return part
	}
	part := &memberPart{fp: fp}
	part.elems, part.err = rangeElems(members, v6)
	if old := rc.members[name]; old != nil {
		now := map[string]bool{}
		for _, e := range part.elems {
			now[e.id()] = true
		}
		for _, e := range old.elems {
			if !now[e.id()] {
				rc.shrunkSets[name] = true
				break
			}
		}
	}
	rc.members[name] = part
	return part
}

// lost reports whether a rule of old is not in new.
func lost(old, new []Rule) bool {
	now := map[string]bool{}
	for _, r := range new {
		now[r.Text] = true
	}
	for _, r := range old {
		if !now[r.Text] {
			return true
		}
	}
	return false
}

func jump(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func dedupe(rs []Rule) []Rule {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Text < rs[j].Text })
	return slices.CompactFunc(rs, func(a, b Rule) bool { return a.Text == b.Text })
}

// spoofChain lets a port send only from its MACs and addresses.
func spoofChain(p Port) (*Chain, error) {
	c := &Chain{Name: "s-" + p.ID}
	var errs []error
	mac, err := net.ParseMAC(p.MACAddress)
	if err != nil || len(mac) != 6 {
		c.Rules = []Rule{NewRule().Drop().Rule()}
		return c, fmt.Errorf("invalid mac_address %q", p.MACAddress)
	}
	type pair struct {
		mac net.HardwareAddr
		ip  netip.Prefix
	}
	macs := []net.HardwareAddr{mac}
	var pairs []pair
	for _, ip := range p.FixedIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid fixed ip %q", ip))
			continue
		}
		pairs = append(pairs, pair{mac, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())})
	}
	for _, ap := range p.AllowedAddressPairs {
		m := mac
		if ap.MACAddress != "" {
			pm, err := net.ParseMAC(ap.MACAddress)
			if err != nil || len(pm) != 6 {
				errs = append(errs, fmt.Errorf("invalid allowed address pair mac %q", ap.MACAddress))
				continue
			}
			m = pm
			if !slices.ContainsFunc(macs, func(x net.HardwareAddr) bool { return x.String() == m.String() }) {
				macs = append(macs, m)
			}
		}
		pr, err := parsePrefix(ap.IPAddress)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid allowed address pair %q", ap.IPAddress))
			continue
		}
		pairs = append(pairs, pair{m, pr})
	}
	udp, icmp6 := uint8(unix.IPPROTO_UDP), uint8(unix.IPPROTO_ICMPV6)
	add := func(b *B) { c.Rules = append(c.Rules, b.Rule()) }
	add(NewRule().Jump("spoof-common"))
	for _, m := range macs {
		// DHCP before the port has its address; ARP probes (RFC 5227);
		// duplicate address detection and MLD from the unspecified address;
		// the link-local address derived from the MAC.
		add(NewRule().EtherSaddr(m).EtherType(EtherIPv4).Addr(true, netip.MustParsePrefix("0.0.0.0/32")).L4Proto(udp).Port(false, 68, 68).Port(true, 67, 67).Return())
		add(NewRule().EtherSaddr(m).EtherType(EtherARP).ArpSender(m, netip.MustParsePrefix("0.0.0.0/32")).Return())
		add(NewRule().EtherSaddr(m).EtherType(EtherIPv6).Addr(true, netip.MustParsePrefix("::/128")).L4Proto(icmp6).Return())
		add(NewRule().EtherSaddr(m).EtherType(EtherIPv6).Addr(true, netip.PrefixFrom(linkLocal(m), 128)).Return())
	}
	for _, pr := range pairs {
		if pr.ip.Addr().Is4() {
			add(NewRule().EtherSaddr(pr.mac).EtherType(EtherIPv4).Addr(true, pr.ip).Return())
			add(NewRule().EtherSaddr(pr.mac).EtherType(EtherARP).ArpSender(pr.mac, pr.ip).Return())
		} else {
			add(NewRule().EtherSaddr(pr.mac).EtherType(EtherIPv6).Addr(true, pr.ip).Return())
		}
	}
	add(NewRule().Counter().Drop())
	c.Rules = dedupeOrdered(c.Rules)
	return c, errors.Join(errs...)
}

func dedupeOrdered(rs []Rule) []Rule {
	seen := map[string]bool{}
	out := rs[:0]
	for _, r := range rs {
		if !seen[r.Text] {
			seen[r.Text] = true
			out = append(out, r)
		}
	}
	return out
}

// linkLocal is the EUI-64 link-local address of a MAC.
func linkLocal(m net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12] = m[0]^0x02, m[1], m[2], 0xff, 0xfe
	a[13], a[14], a[15] = m[3], m[4], m[5]
	return netip.AddrFrom16(a)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// commonChains are shared by every port: what is always dropped from VMs
// (bridge table), and what every port lets through in each direction before
// its security groups (inet table: conntrack state for stateful ports,
// DHCP, IPv6 neighbour discovery and MLD).
func commonChains() (bridge, inet []*Chain) {
	udp, icmp6 := uint8(unix.IPPROTO_UDP), uint8(unix.IPPROTO_ICMPV6)
	sp := &Chain{Name: "spoof-common"}
	// No DHCP servers and no IPv6 routers (advertisements, redirects) in VMs.
	sp.Rules = []Rule{
		NewRule().EtherType(EtherIPv4).L4Proto(udp).Port(false, 67, 67).Port(true, 68, 68).Drop().Rule(),
		NewRule().EtherType(EtherIPv6).L4Proto(udp).Port(false, 547, 547).Port(true, 546, 546).Drop().Rule(),
		NewRule().EtherType(EtherIPv6).L4Proto(icmp6).ICMPType(true, 134).Drop().Rule(),
		NewRule().EtherType(EtherIPv6).L4Proto(icmp6).ICMPType(true, 137).Drop().Rule(),
	}
	bridge = []*Chain{sp}
	for _, egress := range []bool{true, false} {
		var always []Rule
		if egress {
			always = append(always,
				NewRule().NFProto(4).L4Proto(udp).Port(false, 68, 68).Port(true, 67, 67).Accept().Rule(),
				NewRule().NFProto(6).L4Proto(udp).Port(false, 546, 546).Port(true, 547, 547).Accept().Rule())
			for _, t := range []uint8{131, 133, 135, 136, 143} { // MLD report, RS, NS, NA, MLDv2 report
				always = append(always, NewRule().NFProto(6).L4Proto(icmp6).ICMPType(true, t).Accept().Rule())
			}
		} else {
			always = append(always,
				NewRule().NFProto(4).L4Proto(udp).Port(false, 67, 67).Port(true, 68, 68).Accept().Rule(),
				NewRule().NFProto(6).L4Proto(udp).Port(false, 547, 547).Port(true, 546, 546).Accept().Rule())
			for _, t := range []uint8{130, 134, 135, 136} { // MLD query, RA, NS, NA
				always = append(always, NewRule().NFProto(6).L4Proto(icmp6).ICMPType(true, t).Accept().Rule())
			}
		}
		prefix := "in-"
		if egress {
			prefix = "out-"
		}
		stateful := append([]Rule{
			NewRule().CtState(expr.CtStateBitINVALID).Drop().Rule(),
			NewRule().CtState(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED).Accept().Rule(),
		}, always...)
		inet = append(inet, &Chain{Name: prefix + "stateful", Rules: stateful}, &Chain{Name: prefix + "stateless", Rules: always})
	}
	return bridge, inet
}

// portChain is o-<port> (egress, from the VM) or i-<port> (ingress).
func portChain(portID string, egress, stateful bool, groups []string) *Chain {
	name, gprefix := "i-"+portID, "gi-"
	if egress {
		name, gprefix = "o-"+portID, "ge-"
	}
	c := &Chain{Name: name}
	add := func(b *B) { c.Rules = append(c.Rules, b.Rule()) }
	common := "in-"
	if egress {
		common = "out-"
	}
	if stateful {
		common += "stateful"
	} else {
		common += "stateless"
	}
	add(NewRule().Jump(common))
	for _, g := range groups {
		add(NewRule().Jump(gprefix + g))
	}
	add(NewRule().Counter().Drop())
	return c
}

var protoNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6-encap": 41,
	"ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89,
	"vrrp": 112, "pgm": 113, "l2tp": 115, "sctp": 132, "udplite": 136, "dccp": 33,
}

// sgRule renders one security group rule; set is the remote-group set it
// uses, if any.
func sgRule(r SGRule) (Rule, string, error) {
	b := NewRule()
	v6 := false
	switch r.EtherType {
	case "IPv4", "":
		b.NFProto(4)
	case "IPv6":
		v6 = true
		b.NFProto(6)
	default:
		return Rule{}, "", fmt.Errorf("invalid ethertype %q", r.EtherType)
	}
	if r.Direction != "ingress" && r.Direction != "egress" {
		return Rule{}, "", fmt.Errorf("invalid direction %q", r.Direction)
	}
	var proto uint8
	hasProto := false
	switch p := strings.ToLower(r.Protocol); p {
	case "", "any":
	default:
		if n, ok := protoNumbers[p]; ok {
			proto, hasProto = n, true
		} else if n, err := strconv.ParseUint(p, 10, 8); err == nil {
			proto, hasProto = uint8(n), n != 0
		} else {
			return Rule{}, "", fmt.Errorf("invalid protocol %q", r.Protocol)
		}
	}
	if hasProto && v6 && proto == unix.IPPROTO_ICMP {
		proto = unix.IPPROTO_ICMPV6 // Neutron reads "icmp" on IPv6 as ICMPv6
	}
	if hasProto {
		b.L4Proto(proto)
	}
	switch {
	case !hasProto:
		if r.PortRangeMin != nil || r.PortRangeMax != nil {
			return Rule{}, "", fmt.Errorf("port range needs a protocol")
		}
	case proto == unix.IPPROTO_ICMP || proto == unix.IPPROTO_ICMPV6:
		if r.PortRangeMin == nil && r.PortRangeMax != nil {
			return Rule{}, "", fmt.Errorf("icmp code needs an icmp type")
		}
		if r.PortRangeMin != nil {
			if *r.PortRangeMin < 0 || *r.PortRangeMin > 255 {
				return Rule{}, "", fmt.Errorf("invalid icmp type %d", *r.PortRangeMin)
			}
			b.ICMPType(proto == unix.IPPROTO_ICMPV6, uint8(*r.PortRangeMin))
		}
		if r.PortRangeMax != nil {
			if *r.PortRangeMax < 0 || *r.PortRangeMax > 255 {
				return Rule{}, "", fmt.Errorf("invalid icmp code %d", *r.PortRangeMax)
			}
			b.ICMPCode(proto == unix.IPPROTO_ICMPV6, uint8(*r.PortRangeMax))
		}
	case proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_UDP || proto == unix.IPPROTO_SCTP ||
		proto == unix.IPPROTO_DCCP || proto == unix.IPPROTO_UDPLITE:
		if r.PortRangeMin != nil || r.PortRangeMax != nil {
			lo, hi := 1, 65535
			if r.PortRangeMin != nil {
				lo = *r.PortRangeMin
				hi = lo
			}
			if r.PortRangeMax != nil {
				hi = *r.PortRangeMax
			}
			if lo < 0 || hi > 65535 || lo > hi {
				return Rule{}, "", fmt.Errorf("invalid port range %d-%d", lo, hi)
			}
			if lo > 0 || hi < 65535 {
				b.Port(true, uint16(lo), uint16(hi))
			}
		}
	default:
		if r.PortRangeMin != nil || r.PortRangeMax != nil {
			return Rule{}, "", fmt.Errorf("protocol %q has no ports", r.Protocol)
		}
	}
	src := r.Direction == "ingress" // remote end is the source of ingress traffic
	set := ""
	switch {
	case r.RemoteIPPrefix != "" && r.RemoteGroupID != "",
		r.RemoteAddressGroupID != "" && (r.RemoteIPPrefix != "" || r.RemoteGroupID != ""):
		return Rule{}, "", fmt.Errorf("remote_ip_prefix, remote_group_id and remote_address_group_id are exclusive")
	case r.RemoteIPPrefix != "":
		p, err := parsePrefix(r.RemoteIPPrefix)
		if err != nil {
			return Rule{}, "", fmt.Errorf("invalid remote_ip_prefix %q", r.RemoteIPPrefix)
		}
		if p.Addr().Is6() != v6 {
			return Rule{}, "", fmt.Errorf("remote_ip_prefix %s does not match ethertype %s", p, r.EtherType)
		}
		if p.Bits() > 0 {
			b.Addr(src, p)
		}
	case r.RemoteGroupID != "":
		set = "r4-" + r.RemoteGroupID
		if v6 {
			set = "r6-" + r.RemoteGroupID
		}
		b.AddrInSet(src, v6, set, false)
	case r.RemoteAddressGroupID != "":
		set = "a4-" + r.RemoteAddressGroupID
		if v6 {
			set = "a6-" + r.RemoteAddressGroupID
		}
		b.AddrInSet(src, v6, set, false)
	}
	return b.Accept().Rule(), set, nil
}

// rangeElems turns addresses and CIDRs of one family into non-overlapping,
// non-adjacent [start, end) ranges for an interval set; the other family's
// members are ignored.
func rangeElems(members []string, v6 bool) ([]Elem, error) {
	type rng struct{ lo, hi *big.Int } // hi exclusive
	var rs []rng
	var errs []error
	n := 4
	if v6 {
		n = 16
	}
	for _, m := range members {
		p, err := parsePrefix(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid member %q", m))
			continue
		}
		if p.Addr().Is6() != v6 {
			continue
		}
		lo := new(big.Int).SetBytes(p.Addr().AsSlice())
		size := new(big.Int).Lsh(big.NewInt(1), uint(n*8-p.Bits()))
		rs = append(rs, rng{lo, new(big.Int).Add(lo, size)})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo.Cmp(rs[j].lo) < 0 })
	var merged []rng
	for _, r := range rs {
		if k := len(merged); k > 0 && r.lo.Cmp(merged[k-1].hi) <= 0 {
			if r.hi.Cmp(merged[k-1].hi) > 0 {
				merged[k-1].hi = r.hi
			}
			continue
		}
		merged = append(merged, r)
	}
	top := new(big.Int).Lsh(big.NewInt(1), uint(n*8))
	var out []Elem
	for _, r := range merged {
		lo := r.lo.FillBytes(make([]byte, n))
		loA, _ := netip.AddrFromSlice(lo)
		e := Elem{Key: lo}
		var hiText string
		if r.hi.Cmp(top) < 0 {
			e.End = r.hi.FillBytes(make([]byte, n))
			last, _ := netip.AddrFromSlice(new(big.Int).Sub(r.hi, big.NewInt(1)).FillBytes(make([]byte, n)))
			hiText = last.String()
		} else {
			last, _ := netip.AddrFromSlice(new(big.Int).Sub(top, big.NewInt(1)).FillBytes(make([]byte, n)))
			hiText = last.String()
		}
		e.Text = loA.String()
		if hiText != loA.String() {
			e.Text += "-" + hiText
		}
		out = append(out, e.withID())
	}
	return out, errors.Join(errs...)
}
