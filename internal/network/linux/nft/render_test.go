package nft

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s", name, got)
	}
}

func TestRenderGolden(t *testing.T) {
	d := Desired{
		Ports: []Port{
			{ID: "p1", Device: "tapp1", MACAddress: "fa:16:3e:11:22:33", FixedIPs: []string{"10.0.0.5", "2001:db8::5"},
				AllowedAddressPairs: []AddressPair{{IPAddress: "10.0.0.128/25", MACAddress: "fa:16:3e:aa:bb:cc"}},
				PortSecurityEnabled: true, SecurityGroups: []string{"web", "default"}},
			{ID: "p2", Device: "tapp2", MACAddress: "fa:16:3e:00:00:02", FixedIPs: []string{"10.0.0.6"},
				PortSecurityEnabled: true, SecurityGroups: []string{"sl"}},
			{ID: "p3", Device: "tapp3", MACAddress: "fa:16:3e:00:00:03", PortSecurityEnabled: false, SecurityGroups: []string{"web"}},
		},
		Groups: []Group{
			{ID: "default", Stateful: true, Members: []string{"10.0.0.5", "10.0.0.128/25", "10.0.0.6", "10.0.0.7", "2001:db8::5"},
				Rules: []SGRule{
					{ID: "e4", Direction: "egress", EtherType: "IPv4"},
					{ID: "e6", Direction: "egress", EtherType: "IPv6"},
					{ID: "i4", Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "default"},
					{ID: "i6", Direction: "ingress", EtherType: "IPv6", RemoteGroupID: "default"},
				}},
			{ID: "web", Stateful: true, Rules: []SGRule{
				{ID: "http", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(80), PortRangeMax: intp(80)},
				{ID: "high", Direction: "ingress", EtherType: "IPv4", Protocol: "udp", PortRangeMin: intp(30000), PortRangeMax: intp(32767), RemoteIPPrefix: "192.0.2.0/24"},
				{ID: "ping", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortRangeMin: intp(8), PortRangeMax: intp(0)},
				{ID: "ping6", Direction: "ingress", EtherType: "IPv6", Protocol: "icmp", PortRangeMin: intp(128)},
				{ID: "gre", Direction: "egress", EtherType: "IPv4", Protocol: "47", RemoteIPPrefix: "198.51.100.7"},
				{ID: "dup", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(80), PortRangeMax: intp(80)},
			}},
			{ID: "sl", Stateful: false, Rules: []SGRule{
				{ID: "any", Direction: "ingress", EtherType: "IPv4", Protocol: "any", RemoteIPPrefix: "0.0.0.0/0"},
			}},
		},
	}
	rs, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "secgroups.nft", rs.String())
}

func intp(i int) *int { return &i }

func TestRenderErrors(t *testing.T) {
	bad := []SGRule{
		{ID: "dir", Direction: "sideways", EtherType: "IPv4"},
		{ID: "eth", Direction: "ingress", EtherType: "IPX"},
		{ID: "proto", Direction: "ingress", EtherType: "IPv4", Protocol: "carrier-pigeon"},
		{ID: "range", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(90), PortRangeMax: intp(80)},
		{ID: "noproto", Direction: "ingress", EtherType: "IPv4", PortRangeMin: intp(22)},
		{ID: "family", Direction: "ingress", EtherType: "IPv6", RemoteIPPrefix: "10.0.0.0/8"},
		{ID: "both", Direction: "ingress", EtherType: "IPv4", RemoteIPPrefix: "10.0.0.0/8", RemoteGroupID: "g"},
		{ID: "code", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortRangeMax: intp(1)},
		{ID: "gre", Direction: "ingress", EtherType: "IPv4", Protocol: "gre", PortRangeMin: intp(1)},
	}
	d := Desired{
		Ports: []Port{
			{ID: "ok", Device: "tapok", MACAddress: "fa:16:3e:00:00:01", FixedIPs: []string{"10.0.0.1"}, PortSecurityEnabled: true, SecurityGroups: []string{"g"}},
			{ID: "badmac", Device: "tapbad", MACAddress: "zz", PortSecurityEnabled: true},
			{ID: "nodev", MACAddress: "fa:16:3e:00:00:02", PortSecurityEnabled: true},
			{ID: "nogroup", Device: "tapng", MACAddress: "fa:16:3e:00:00:03", PortSecurityEnabled: true, SecurityGroups: []string{"missing"}},
		},
		Groups: []Group{{ID: "g", Stateful: true, Rules: bad}},
	}
	rs, err := Render(d)
	if err == nil {
		t.Fatal("no error for bad input")
	}
	for _, want := range []string{"rule dir:", "rule eth:", "rule proto:", "rule range:", "rule noproto:", "rule family:", "rule both:", "rule code:", "rule gre:", "port badmac:", "port nodev:", "port nogroup:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	var pe *PortError
	if !errors.As(err, &pe) {
		t.Error("no *PortError in the joined error")
	}
	in := rs.Table(rs.Tables[1].Family, TableName)
	if c := in.Chain("gi-g"); c == nil || len(c.Rules) != 0 {
		t.Errorf("bad rules rendered: %+v", c)
	}
	if in.Chain("o-ok") == nil || in.Chain("o-nodev") != nil {
		t.Error("good port missing or port without device rendered")
	}
	br := rs.Tables[0]
	if c := br.Chain("s-badmac"); c == nil || len(c.Rules) != 1 || c.Rules[0].Text != "drop" {
		t.Errorf("port with a bad MAC must send nothing: %+v", c)
	}
}
