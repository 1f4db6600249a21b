package nft

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recordSync converges a Syncer that believes the kernel holds prev to next
// through the library's test dialer and returns the batch it sent, one line
// per message ("NEWRULE inet gi-web").
func recordSync(t *testing.T, prev, next *Ruleset) []string {
	t.Helper()
	var got []string
	dial := func() (*nftables.Conn, error) {
		return nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
			for _, m := range req {
				if s := describe(m); s != "" {
					got = append(got, s)
				}
			}
			return req, nil
		}))
	}
	s := NewSyncer(dial)
	if prev != nil {
		for _, tb := range prev.Tables {
			s.known[tableID{tb.Family, tb.Name}] = stateOf(tb)
		}
	} else {
		for _, tb := range next.Tables {
			s.known[tableID{tb.Family, tb.Name}] = &tableState{chains: map[string][]string{}, sets: map[string]map[string]Elem{}}
		}
	}
	if _, err := s.Sync(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	return got
}

func describe(m netlink.Message) string {
	typ := int(m.Header.Type)
	if typ>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
		return "" // batch begin/end
	}
	names := map[int]string{
		unix.NFT_MSG_NEWTABLE: "NEWTABLE", unix.NFT_MSG_NEWCHAIN: "NEWCHAIN", unix.NFT_MSG_DELCHAIN: "DELCHAIN",
		unix.NFT_MSG_NEWRULE: "NEWRULE", unix.NFT_MSG_DELRULE: "DELRULE", unix.NFT_MSG_NEWSET: "NEWSET",
		unix.NFT_MSG_DELSET: "DELSET", unix.NFT_MSG_NEWSETELEM: "NEWSETELEM", unix.NFT_MSG_DELSETELEM: "DELSETELEM",
	}
	msg := typ & 0xff
	out := []string{names[msg], familyName(nftables.TableFamily(m.Data[0]))}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return "undecodable"
	}
	for ad.Next() {
		switch {
		case (msg == unix.NFT_MSG_NEWRULE || msg == unix.NFT_MSG_DELRULE) && ad.Type() == unix.NFTA_RULE_CHAIN,
			(msg == unix.NFT_MSG_NEWCHAIN || msg == unix.NFT_MSG_DELCHAIN) && ad.Type() == unix.NFTA_CHAIN_NAME,
			(msg == unix.NFT_MSG_NEWSET || msg == unix.NFT_MSG_DELSET) && ad.Type() == unix.NFTA_SET_NAME,
			(msg == unix.NFT_MSG_NEWSETELEM || msg == unix.NFT_MSG_DELSETELEM) && ad.Type() == unix.NFTA_SET_ELEM_LIST_SET:
			out = append(out, strings.TrimRight(ad.String(), "\x00"))
		case (msg == unix.NFT_MSG_NEWSETELEM || msg == unix.NFT_MSG_DELSETELEM) && ad.Type()&^unix.NLA_F_NESTED == unix.NFTA_SET_ELEM_LIST_ELEMENTS:
			n := 0
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					n++
				}
				return nil
			})
			out = append(out, fmt.Sprint(n))
		}
	}
	return strings.Join(out, " ")
}

func baseDesired() Desired {
	return Desired{
		Ports: []Port{
			{ID: "p1", Device: "tapp1", MACAddress: "fa:16:3e:00:00:01", FixedIPs: []string{"10.0.0.1"}, PortSecurityEnabled: true, SecurityGroups: []string{"web"}},
			{ID: "p2", Device: "tapp2", MACAddress: "fa:16:3e:00:00:02", FixedIPs: []string{"10.0.0.2"}, PortSecurityEnabled: true, SecurityGroups: []string{"default"}},
		},
		Groups: []Group{
			{ID: "default", Stateful: true, Members: []string{"10.0.0.2"}, Rules: []SGRule{{ID: "e", Direction: "egress", EtherType: "IPv4"}}},
			{ID: "web", Stateful: true, Rules: []SGRule{
				{ID: "ssh", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(22), PortRangeMax: intp(22), RemoteGroupID: "default"},
			}},
		},
	}
}

func mustRender(t *testing.T, d Desired) *Ruleset {
	t.Helper()
	rs, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestSyncMessages(t *testing.T) {
	base := baseDesired()
	tests := []struct {
		name   string
		change func(d *Desired)
		want   []string
	}{
		{"nothing", func(*Desired) {}, nil},
		{"rule added", func(d *Desired) {
			d.Groups[1].Rules = append(d.Groups[1].Rules, SGRule{ID: "http", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(80), PortRangeMax: intp(80)})
		}, []string{"DELRULE inet gi-web", "NEWRULE inet gi-web", "NEWRULE inet gi-web"}},
		{"member added", func(d *Desired) {
			d.Groups[0].Members = append(d.Groups[0].Members, "10.0.0.9")
		}, []string{"NEWSETELEM inet r4-default 2"}},
		{"member removed", func(d *Desired) { d.Groups[0].Members = nil }, []string{"DELSETELEM inet r4-default 2"}},
		{"port security off", func(d *Desired) { d.Ports[1].PortSecurityEnabled = false }, []string{
			"DELSETELEM bridge ports 1", "DELSETELEM bridge spoof 1",
			"DELRULE bridge s-p2", "DELCHAIN bridge s-p2",
			"DELSETELEM inet egress 1", "DELSETELEM inet ingress 1",
			"DELRULE inet ge-default", "DELRULE inet gi-default", "DELRULE inet i-p2", "DELRULE inet o-p2",
			"DELCHAIN inet ge-default", "DELCHAIN inet gi-default", "DELCHAIN inet i-p2", "DELCHAIN inet o-p2",
		}},
	}
	prev := mustRender(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := baseDesired()
			tt.change(&d)
			got := recordSync(t, prev, mustRender(t, d))
			if !slices.Equal(got, tt.want) {
				t.Errorf("batch:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSyncMessagesFromScratch(t *testing.T) {
	got := recordSync(t, nil, mustRender(t, baseDesired()))
	// Tables and chains first, then sets (so verdict maps can name chains),
	// then rules; nothing deleted.
	first := map[string]int{}
	for i, m := range got {
		f := strings.Fields(m)[0]
		if _, ok := first[f]; !ok {
			first[f] = i
		}
		if strings.HasPrefix(m, "DEL") && !strings.HasPrefix(m, "DELRULE") {
			t.Errorf("deletion in a fresh sync: %s", m)
		}
	}
	if !(first["NEWTABLE"] < first["NEWCHAIN"] && first["NEWCHAIN"] < first["NEWSET"] && first["NEWSET"] < first["NEWRULE"]) {
		t.Errorf("order wrong:\n%s", strings.Join(got, "\n"))
	}
}
