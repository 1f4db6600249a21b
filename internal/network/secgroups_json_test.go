package network

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// The hand-written list body must be byte for byte what encoding/json
// writes for the map it replaced, for odd strings and null fields too.
func TestSecurityGroupListJSON(t *testing.T) {
	odd := []string{"", "web", "<b>&amp;</b>", "quote\" back\\ slash", "tab\tnl\n\x01", "\u2028\u2029", "bad \xff utf8", "é日本"}
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return odd[rnd.IntN(len(odd))] }
	at := time.Date(2026, 12, 2, 16, 40, 0, 0, time.UTC)
	var groups []*SecurityGroup
	for i := range 60 {
		g := &SecurityGroup{ID: fmt.Sprintf("sg-%d", i), Name: pick(), Description: pick(), ProjectID: "p-" + pick(),
			Stateful: i%2 == 0, Revision: int64(i), CreatedAt: at, UpdatedAt: at.Add(time.Duration(i) * time.Second)}
		if i%3 == 0 {
			g.Tags = []string{pick(), pick()}
		}
		for j := range i % 5 {
			r := &SGRule{ID: fmt.Sprintf("r-%d-%d", i, j), ProjectID: g.ProjectID, SecurityGroupID: g.ID,
				Direction: "ingress", Ethertype: "IPv4", Description: pick(), Revision: int64(j), CreatedAt: at, UpdatedAt: at}
			if j%2 == 0 {
				r.Protocol = "tcp"
				r.PortMin, r.PortMax = sql.NullInt64{Int64: 22, Valid: true}, sql.NullInt64{Int64: int64(22 + j), Valid: true}
				r.RemoteIPPrefix = "10.1.2.3/8"
			} else {
				r.RemoteGroupID = g.ID
			}
			g.Rules = append(g.Rules, r)
		}
		groups = append(groups, g)
	}
	for _, tc := range []struct {
		name  string
		n     int
		links []apiutil.Link
	}{
		{"empty", 0, nil},
		{"one", 1, nil},
		{"page with links", 60, []apiutil.Link{{Rel: "next", Href: "http://x/v2.0/security-groups?limit=60&marker=sg-59"}, {Rel: "previous", Href: "http://x/?a=<&>"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := make([]*sgView, tc.n)
			for i := range items {
				items[i] = viewSG(groups[i])
			}
			m := map[string]any{"security_groups": items}
			if len(tc.links) > 0 {
				m["security_groups_links"] = tc.links
			}
			want, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got := sgListBody{items: items, links: tc.links}.AppendJSON(nil)
			if !bytes.Equal(got, want) {
				t.Errorf("bodies differ:\n got %s\nwant %s", got, want)
			}
		})
	}
}
