package network

import (
	"cmp"
	"context"
	"net/http"
	"net/netip"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// The subnetpool-prefix-ops extension: PUT /v2.0/subnetpools/{id}/add_prefixes
// and …/remove_prefixes take {"prefixes": [...]} and answer the pool's
// whole prefix list afterwards, compacted (adjacent and overlapping
// prefixes merged into the fewest CIDRs), as Neutron does.

func (s *Service) addPoolPrefixes(r *http.Request) (*apiutil.Response, error) {
	return s.changePoolPrefixes(r, "add_prefixes", func(ctx context.Context, tx *txn, p *SubnetPool, ps []netip.Prefix) ([]netip.Prefix, error) {
		return compactPrefixes(append(slices.Clone(p.Prefixes), ps...)), nil
	})
}

func (s *Service) removePoolPrefixes(r *http.Request) (*apiutil.Response, error) {
	return s.changePoolPrefixes(r, "remove_prefixes", func(ctx context.Context, tx *txn, p *SubnetPool, ps []netip.Prefix) ([]netip.Prefix, error) {
		// Subnets allocated from the pool keep their addresses: a prefix
		// that holds one cannot go.
		rows, err := tx.QueryContext(ctx, `SELECT cidr FROM net_subnets WHERE subnetpool_id = $1`, p.ID)
		if err != nil {
			return nil, err
		}
		used, err := db.Collect(rows, func(sc db.Scanner) (string, error) {
			var c string
			return c, sc.Scan(&c)
		})
		if err != nil {
			return nil, err
		}
		for _, c := range used {
			sub, err := netip.ParsePrefix(c)
			if err != nil {
				continue
			}
			for _, rm := range ps {
				if rm.Overlaps(sub) {
					return nil, badRequest("IllegalSubnetPoolPrefixUpdate",
						"Illegal update to prefixes: prefix %s of subnet pool %s is in use by subnet %s.", rm, p.ID, sub)
				}
			}
		}
		left := subtractPrefixes(p.Prefixes, ps)
		if len(left) == 0 {
			return nil, badRequest("IllegalSubnetPoolPrefixUpdate",
				"Illegal update to prefixes: a subnet pool needs at least one prefix.")
		}
		return left, nil
	})
}

// changePoolPrefixes runs one prefix operation in a transaction: it reads
// and checks the body, authorizes rule against the pool's owner, applies
// change and stores the pool's new prefixes.
func (s *Service) changePoolPrefixes(r *http.Request, rule string,
	change func(ctx context.Context, tx *txn, p *SubnetPool, ps []netip.Prefix) ([]netip.Prefix, error)) (*apiutil.Response, error) {
	c := s.caller(r)
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	top, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	if top == nil {
		return nil, badInput("Malformed request body")
	}
	a := attrs(top)
	if err := a.checkKeys("PUT", []string{"prefixes"}, nil); err != nil {
		return nil, err
	}
	list, ok, err := a.strList("prefixes")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, badInput("Failed to parse request. Required attribute 'prefixes' not specified")
	}
	ps := make([]netip.Prefix, 0, len(list))
	for _, str := range list {
		pr, err := netip.ParsePrefix(str)
		if err != nil {
			return nil, invalidAttr("prefixes", "'%s' is not a valid IP subnet", str)
		}
		ps = append(ps, pr.Masked())
	}
	id := r.PathValue("id")
	ctx := r.Context()
	var out []netip.Prefix
	err = s.withTx(ctx, func(tx *txn) error {
		p, err := s.poolForChange(ctx, tx, c, id, rule)
		if err != nil {
			return err
		}
		for _, pr := range ps {
			if pr.Addr().Is4() != (p.IPVersion == 4) {
				return badRequest("PrefixVersionMismatch", "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
			}
		}
		next, err := change(ctx, tx, p, ps)
		if err != nil {
			return err
		}
		// Pools of one address scope keep disjoint prefixes.
		p.Prefixes = next
		if err := tx.checkPoolScope(ctx, c, p); err != nil {
			return err
		}
		p.Revision++
		_, err = tx.ExecContext(ctx, `UPDATE net_subnetpools SET prefixes = $1, revision_number = $2, updated_at = $3 WHERE id = $4`,
			jsonText(prefixStrings(next)), p.Revision, db.FormatTime(s.nowUTC()), id)
		out = next
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"prefixes": prefixStrings(out)}), nil
}

// compactPrefixes returns the fewest prefixes covering exactly the union
// of ps: prefixes inside others dropped, sibling halves merged.
func compactPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	for i := range out {
		out[i] = out[i].Masked()
	}
	for {
		slices.SortFunc(out, comparePrefixes)
		out = slices.Compact(out)
		// Drop prefixes covered by an earlier (shorter, same start or
		// enclosing) one.
		kept := out[:0]
		for _, p := range out {
			if n := len(kept); n > 0 && kept[n-1].Bits() <= p.Bits() && kept[n-1].Contains(p.Addr()) {
				continue
			}
			kept = append(kept, p)
		}
		out = kept
		merged := false
		for i := 0; i+1 < len(out); i++ {
			a, b := out[i], out[i+1]
			if a.Bits() == b.Bits() && a.Bits() > 0 {
				parent, _ := a.Addr().Prefix(a.Bits() - 1)
				if parent.Addr() == a.Addr() && parent.Contains(b.Addr()) {
					out[i] = parent
					out = slices.Delete(out, i+1, i+2)
					merged = true
				}
			}
		}
		if !merged {
			return out
		}
	}
}

// subtractPrefixes returns the address space of ps without that of rm, as
// compacted prefixes.
func subtractPrefixes(ps, rm []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	var cut func(p netip.Prefix)
	cut = func(p netip.Prefix) {
		for _, r := range rm {
			if !r.Overlaps(p) {
				continue
			}
			if r.Bits() <= p.Bits() {
				return // all of p goes
			}
			// r is inside p: keep the halves of p, each cut again.
			lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
			hi := netip.PrefixFrom(withBit(p.Addr(), p.Bits()), p.Bits()+1)
			cut(lo)
			cut(hi)
			return
		}
		out = append(out, p)
	}
	for _, p := range ps {
		cut(p.Masked())
	}
	return compactPrefixes(out)
}

// withBit returns a with bit i (0 = the most significant) set.
func withBit(a netip.Addr, i int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[i/8] |= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[i/8] |= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}
