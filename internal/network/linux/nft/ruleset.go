package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Ruleset is the rendered form of a desired state: the complete content of
// the nftables tables Kumo owns in one network namespace. It is plain data,
// printable in nft syntax (String) and convertible to netlink messages by a
// Syncer. Tables not listed are never touched.
type Ruleset struct {
	Tables []*Table
}

// Table is one nftables table with everything in it.
type Table struct {
	Family nftables.TableFamily
	Name   string
	Sets   []*Set
	Chains []*Chain
}

// Hook makes a chain a base chain.
type Hook struct {
	Type     nftables.ChainType
	Hooknum  nftables.ChainHook
	Priority int32
	Policy   nftables.ChainPolicy
}

// Chain is a chain and its rules in order. Rules are identified by the hash
// of their text; a chain whose list of rule keys differs from the kernel's is
// rewritten as a whole (flush and re-add in the same atomic batch), so a
// change to one security group touches only that group's chains.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

// Rule is one rule: its nft text (for humans, golden tests and the identity
// key) and the expressions the kernel gets.
type Rule struct {
	Text  string
	Exprs []expr.Any
}

// Key is the rule's identity, stored as the rule's comment in the kernel.
func (r Rule) Key() string {
	sum := sha256.Sum256([]byte(r.Text))
	return "kumo:" + hex.EncodeToString(sum[:8])
}

// Set is a named set or map. Its elements are converged one by one, never by
// recreating the set, so rules using it keep working while it changes.
type Set struct {
	Name     string
	KeyType  nftables.SetDatatype
	DataType nftables.SetDatatype // maps only
	IsMap    bool
	Interval bool
	Elems    []Elem
}

// Elem is one element: for interval sets a range [Key, End) (End nil means
// "to the top of the key space"); for maps with a value or a verdict.
type Elem struct {
	Key     []byte
	End     []byte
	Val     []byte
	Verdict *expr.Verdict
	Text    string
}

// id is the element's identity for diffs.
func (e Elem) id() string {
	v := ""
	if e.Verdict != nil {
		v = fmt.Sprintf("%d/%s", e.Verdict.Kind, e.Verdict.Chain)
	}
	return hex.EncodeToString(e.Key) + "-" + hex.EncodeToString(e.End) + ":" + hex.EncodeToString(e.Val) + ":" + v
}

// Table returns the named table, or nil.
func (rs *Ruleset) Table(family nftables.TableFamily, name string) *Table {
	for _, t := range rs.Tables {
		if t.Family == family && t.Name == name {
			return t
		}
	}
	return nil
}

// Chain returns the named chain, or nil.
func (t *Table) Chain(name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Set returns the named set, or nil.
func (t *Table) Set(name string) *Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyARP:
		return "arp"
	}
	return fmt.Sprintf("family%d", f)
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprintf("hook%d", h)
}

// String prints the ruleset in nft syntax, sets sorted by name, elements in
// order, chains in order. Golden tests compare this text.
func (rs *Ruleset) String() string {
	var b strings.Builder
	for i, t := range rs.Tables {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "table %s %s {\n", familyName(t.Family), t.Name)
		sets := append([]*Set(nil), t.Sets...)
		sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
		for _, s := range sets {
			kind := "set"
			typ := s.KeyType.Name
			if s.IsMap {
				kind = "map"
				typ += " : " + s.DataType.Name
			}
			fmt.Fprintf(&b, "\t%s %s { type %s;", kind, s.Name, typ)
			if s.Interval {
				b.WriteString(" flags interval;")
			}
			if len(s.Elems) > 0 {
				b.WriteString(" elements = {")
				for i, e := range s.Elems {
					if i > 0 {
						b.WriteString(",")
					}
					b.WriteString(" " + e.Text)
				}
				b.WriteString(" };")
			}
			b.WriteString(" }\n")
		}
		for _, c := range t.Chains {
			fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
			if h := c.Hook; h != nil {
				policy := "accept"
				if h.Policy == nftables.ChainPolicyDrop {
					policy = "drop"
				}
				fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d; policy %s;\n", h.Type, hookName(h.Hooknum), h.Priority, policy)
			}
			for _, r := range c.Rules {
				fmt.Fprintf(&b, "\t\t%s\n", r.Text)
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}
