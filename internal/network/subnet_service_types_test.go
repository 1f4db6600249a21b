package network

import (
	"slices"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func TestParseServiceTypes(t *testing.T) {
	for _, tc := range []struct {
		in      any
		want    []string
		errType string
	}{
		{[]any{"network:floatingip"}, []string{"network:floatingip"}, ""},
		{[]any{"compute:nova", "compute:nova", "neutron:LOADBALANCERV2"}, []string{"compute:nova", "neutron:LOADBALANCERV2"}, ""},
		{[]any{}, []string{}, ""},
		{nil, []string{}, ""},
		{[]any{"floatingip"}, nil, "InvalidSubnetServiceType"},
		{[]any{"network:"}, nil, "InvalidSubnetServiceType"},
		{[]any{7}, nil, "InvalidInputSubnetServiceType"},
		{"network:floatingip", nil, "InvalidSubnetServiceType"},
	} {
		got, ok, err := parseServiceTypes(attrs{"service_types": tc.in})
		if tc.errType != "" {
			if e, ok := err.(*apiutil.Error); !ok || e.Code != tc.errType {
				t.Errorf("%v: err %v, want %s", tc.in, err, tc.errType)
			}
			continue
		}
		if err != nil || !ok || !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v %v %v", tc.in, got, ok, err)
		}
	}
	if _, ok, _ := parseServiceTypes(attrs{}); ok {
		t.Error("absent service_types reported present")
	}
}

func TestServiceSubnets(t *testing.T) {
	fip := &Subnet{ID: "fip", ServiceTypes: []string{"network:floatingip"}}
	gw := &Subnet{ID: "gw", ServiceTypes: []string{"network:router_gateway"}, EnableDHCP: true}
	open := &Subnet{ID: "open"}
	ids := func(s []*Subnet) []string {
		var out []string
		for _, x := range s {
			out = append(out, x.ID)
		}
		return out
	}
	for _, tc := range []struct {
		owner string
		subs  []*Subnet
		want  []string
	}{
		{"network:floatingip", []*Subnet{open, fip, gw}, []string{"fip", "open"}},
		{"compute:nova", []*Subnet{open, fip, gw}, []string{"open"}},
		{"", []*Subnet{open, fip}, []string{"open"}},
		{"compute:nova", []*Subnet{fip, gw}, nil},
		{"network:dhcp", []*Subnet{fip, gw}, []string{"gw"}},
	} {
		if got := ids(serviceSubnets(tc.subs, tc.owner)); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.owner, got, tc.want)
		}
	}
}

func TestSubnetServiceTypesAPI(t *testing.T) {
	a := newTestAPI(t, Config{})
	n := a.create("admin", "networks", "network", map[string]any{"name": "ext", "shared": true})
	typed := a.create("admin", "subnets", "subnet", map[string]any{"network_id": n["id"], "cidr": "10.50.0.0/24", "ip_version": 4,
		"service_types": []string{"network:floatingip"}})
	if st := typed["service_types"].([]any); len(st) != 1 || st[0] != "network:floatingip" {
		t.Fatalf("service_types %v", typed["service_types"])
	}
	// Only typed subnets: a compute port finds none (409), a port of the
	// service type gets its address.
	a.expectErr(a.do("admin", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": n["id"], "device_owner": "compute:nova"}}), 409, "IpAddressGenerationFailureNoMatchingSubnet")
	p := a.create("admin", "ports", "port", map[string]any{"network_id": n["id"], "device_owner": "network:floatingip"})
	if ip := p["fixed_ips"].([]any)[0].(map[string]any); ip["subnet_id"] != typed["id"] {
		t.Fatalf("floating IP port on %v", ip)
	}
	open := a.create("admin", "subnets", "subnet", map[string]any{"network_id": n["id"], "cidr": "10.51.0.0/24", "ip_version": 4})
	p = a.create("admin", "ports", "port", map[string]any{"network_id": n["id"], "device_owner": "compute:nova"})
	if ip := p["fixed_ips"].([]any)[0].(map[string]any); ip["subnet_id"] != open["id"] {
		t.Fatalf("compute port on %v", ip)
	}
	// Asking for the typed subnet explicitly is refused as well.
	a.expectErr(a.do("admin", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": n["id"], "device_owner": "compute:nova",
		"fixed_ips": []any{map[string]any{"subnet_id": typed["id"]}}}}), 400, "InvalidInput")
	a.expectErr(a.do("admin", "POST", "/ports", map[string]any{"port": map[string]any{"network_id": n["id"], "device_owner": "compute:nova",
		"fixed_ips": []any{map[string]any{"ip_address": "10.50.0.77"}}}}), 400, "InvalidIpForNetwork")
	// Update, validation and policy.
	r := a.must(a.do("admin", "PUT", "/subnets/"+typed["id"].(string), map[string]any{"subnet": map[string]any{"service_types": []string{"compute:nova"}}}), 200)
	if st := r.json(t)["subnet"].(map[string]any)["service_types"].([]any); len(st) != 1 || st[0] != "compute:nova" {
		t.Fatalf("updated service_types %v", st)
	}
	a.expectErr(a.do("admin", "PUT", "/subnets/"+typed["id"].(string), map[string]any{"subnet": map[string]any{"service_types": []string{"nova"}}}), 400, "InvalidSubnetServiceType")
	a.expectErr(a.do("admin", "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": "10.52.0.0/24", "ip_version": 4,
		"service_types": []any{1}}}), 400, "InvalidInputSubnetServiceType")
	own := a.create("alice", "networks", "network", map[string]any{"name": "mine"})
	a.expectErr(a.do("alice", "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": own["id"], "cidr": "10.53.0.0/24", "ip_version": 4,
		"service_types": []string{"compute:nova"}}}), 403, "PolicyNotAuthorized")
	mine := a.create("alice", "subnets", "subnet", map[string]any{"network_id": own["id"], "cidr": "10.53.0.0/24", "ip_version": 4})
	a.expectErr(a.do("alice", "PUT", "/subnets/"+mine["id"].(string), map[string]any{"subnet": map[string]any{"service_types": []string{"compute:nova"}}}), 403, "PolicyNotAuthorized")
	a.must(a.do("alice", "GET", "/extensions/subnet-service-types", nil), 200)
}
