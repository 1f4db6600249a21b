package linux

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestRender(t *testing.T) {
	local := netip.MustParseAddr("192.0.2.1")
	cfg := Config{LocalIP: local, InterfaceMappings: map[string]string{"physnet1": "eth1", "long": "enp0s31f6abcd"}}
	peer := netip.MustParseAddr("192.0.2.2")
	net1 := "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name string
		cfg  Config
		spec NetworkSpec
		want NetworkPlan
		err  error
	}{
		{
			name: "vxlan with a peer",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, MTU: 1450, Segment: Segment{Type: "vxlan", SegmentationID: 42},
				Peers: []Peer{{IP: peer, MACs: []string{"FA:16:3E:00:00:02"}}, {IP: local, MACs: []string{"fa:16:3e:00:00:01"}}}},
			want: NetworkPlan{Network: net1, Bridge: Link{Name: "brq11111111-22", Kind: KindBridge, MTU: 1450},
				Uplink: &Link{Name: "vxlan-42", Kind: KindVXLAN, MTU: 1450, Master: "brq11111111-22", VNI: 42, Local: local, DstPort: 4789},
				FDB:    []FDB{{Device: "vxlan-42", MAC: ZeroMAC, Dst: peer}, {Device: "vxlan-42", MAC: "fa:16:3e:00:00:02", Dst: peer}}},
		},
		{
			name: "flat enslaves the mapped interface",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, MTU: 1500, Segment: Segment{Type: "flat", PhysicalNetwork: "physnet1"}},
			want: NetworkPlan{Network: net1, Bridge: Link{Name: "brq11111111-22", Kind: KindBridge, MTU: 1500},
				Uplink: &Link{Name: "eth1", Kind: KindPhysical, Master: "brq11111111-22"}},
		},
		{
			name: "vlan sub-interface",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, MTU: 1500, Segment: Segment{Type: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 100}},
			want: NetworkPlan{Network: net1, Bridge: Link{Name: "brq11111111-22", Kind: KindBridge, MTU: 1500},
				Uplink: &Link{Name: "eth1.100", Kind: KindVLAN, MTU: 1500, Master: "brq11111111-22", Parent: "eth1", VLANID: 100}},
		},
		{
			name: "vlan name shortened to 15 bytes",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, MTU: 1500, Segment: Segment{Type: "vlan", PhysicalNetwork: "long", SegmentationID: 4094}},
			want: NetworkPlan{Network: net1, Bridge: Link{Name: "brq11111111-22", Kind: KindBridge, MTU: 1500},
				Uplink: &Link{Name: "enp0s31f6a.4094", Kind: KindVLAN, MTU: 1500, Master: "brq11111111-22", Parent: "enp0s31f6abcd", VLANID: 4094}},
		},
		{
			name: "local is a bridge alone",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, MTU: 1500, Segment: Segment{Type: "local"}},
			want: NetworkPlan{Network: net1, Bridge: Link{Name: "brq11111111-22", Kind: KindBridge, MTU: 1500}},
		},
		{
			name: "missing mapping",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, Segment: Segment{Type: "vlan", PhysicalNetwork: "physnet9", SegmentationID: 5}},
			err:  ErrNoMapping,
		},
		{
			name: "vxlan without a local address and peers",
			cfg:  Config{},
			spec: NetworkSpec{ID: net1, Segment: Segment{Type: "vxlan", SegmentationID: 5}, Peers: []Peer{{IP: peer}}},
			err:  ErrNoLocalIP,
		},
		{
			name: "vxlan without a local address on a lone host is the bridge alone",
			cfg:  Config{},
			spec: NetworkSpec{ID: net1, MTU: 1450, Segment: Segment{Type: "vxlan", SegmentationID: 5}},
			want: NetworkPlan{Network: net1, Bridge: Link{Name: "brq11111111-22", Kind: KindBridge, MTU: 1450}},
		},
		{
			name: "unknown type",
			cfg:  cfg,
			spec: NetworkSpec{ID: net1, Segment: Segment{Type: "geneve", SegmentationID: 5}},
			err:  ErrUnknownType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.cfg, tt.spec)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan\n got %+v %+v\nwant %+v %+v", got, got.Uplink, tt.want, tt.want.Uplink)
			}
		})
	}
}

func TestRenderAllRejectsSharedUplink(t *testing.T) {
	cfg := Config{InterfaceMappings: map[string]string{"physnet1": "eth1"}}
	plans, errs := RenderAll(cfg, []NetworkSpec{
		{ID: "b-net", Segment: Segment{Type: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 7}},
		{ID: "a-net", Segment: Segment{Type: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 7}},
		{ID: "c-net", Segment: Segment{Type: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 8}},
	})
	if len(plans) != 2 || plans[0].Network != "a-net" || plans[1].Network != "c-net" {
		t.Fatalf("plans = %+v", plans)
	}
	if !errors.Is(errs["b-net"], ErrUplinkInUse) || len(errs) != 1 {
		t.Fatalf("errs = %v", errs)
	}
}

func TestParseMappings(t *testing.T) {
	m, err := ParseMappings([]string{"physnet1:eth1,physnet2:eth2", " ext:br-ex "})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"physnet1": "eth1", "physnet2": "eth2", "ext": "br-ex"}) {
		t.Fatalf("got %v, %v", m, err)
	}
	for _, bad := range []string{"nocolon", "a:", ":b", "a:b,a:c", "a:waytoolonginterfacename"} {
		if _, err := ParseMappings([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		BridgeName("0123456789abcdef"): "brq0123456789a",
		TapName("fedcba98-7654"):       "tapfedcba98-76",
		NSDevName("fedcba98-7654"):     "ns-fedcba98-76",
		VXLANName(16777215):            "vxlan-16777215",
		VLANName("eth0", 1):            "eth0.1",
	} {
		if got != want || len(got) > 15 {
			t.Errorf("name %q, want %q", got, want)
		}
	}
}
