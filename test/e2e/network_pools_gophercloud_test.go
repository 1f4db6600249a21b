package e2e

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// TestSubnetPoolPrefixesAndServiceTypesGophercloud drives, with
// gophercloud against the real binary, the subnet pool prefix operations
// (subnetpool-prefix-ops) and subnet service types (subnet-service-types),
// with their Neutron error statuses and fault types.
func TestSubnetPoolPrefixesAndServiceTypesGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	neutron := serviceClient(t, openstack.NewNetworkV2, k.adminProvider(t, ctx))

	pool, err := subnetpools.Create(ctx, neutron, subnetpools.CreateOpts{Name: "pool", Prefixes: []string{"10.70.0.0/24"}, DefaultPrefixLen: 26}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	got, err := subnetpools.AddPrefixes(ctx, neutron, pool.ID, subnetpools.PrefixesOpsOpts{Prefixes: []string{"10.70.1.0/24", "172.16.0.0/16"}}).Extract()
	if err != nil || !slices.Equal(got, []string{"10.70.0.0/23", "172.16.0.0/16"}) {
		t.Fatalf("add_prefixes: %v, %v", got, err)
	}
	_, err = subnetpools.AddPrefixes(ctx, neutron, pool.ID, subnetpools.PrefixesOpsOpts{Prefixes: []string{"2001:db8::/64"}}).Extract()
	wantNeutronFault(t, err, 400, "PrefixVersionMismatch")
	got, err = subnetpools.RemovePrefixes(ctx, neutron, pool.ID, subnetpools.PrefixesOpsOpts{Prefixes: []string{"172.16.0.0/16"}}).Extract()
	if err != nil || !slices.Equal(got, []string{"10.70.0.0/23"}) {
		t.Fatalf("remove_prefixes: %v, %v", got, err)
	}
	if p, err := subnetpools.Get(ctx, neutron, pool.ID).Extract(); err != nil || !slices.Equal(p.Prefixes, []string{"10.70.0.0/23"}) {
		t.Fatalf("pool after the prefix operations: %+v, %v", p, err)
	}

	// Service types: a floating-IP-only subnet serves only such ports.
	up := true
	n, err := networks.Create(ctx, neutron, networks.CreateOpts{Name: "typed", AdminStateUp: &up}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sn, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.71.0.0/24", IPVersion: gophercloud.IPv4,
		ServiceTypes: []string{"network:floatingip"}}).Extract()
	if err != nil || !slices.Equal(sn.ServiceTypes, []string{"network:floatingip"}) {
		t.Fatalf("typed subnet: %+v, %v", sn, err)
	}
	_, err = ports.Create(ctx, neutron, ports.CreateOpts{NetworkID: n.ID, DeviceOwner: "compute:nova"}).Extract()
	wantNeutronFault(t, err, 409, "IpAddressGenerationFailureNoMatchingSubnet")
	p, err := ports.Create(ctx, neutron, ports.CreateOpts{NetworkID: n.ID, DeviceOwner: "network:floatingip"}).Extract()
	if err != nil || len(p.FixedIPs) != 1 || p.FixedIPs[0].SubnetID != sn.ID {
		t.Fatalf("floating IP port: %+v, %v", p, err)
	}
	_, err = subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.72.0.0/24", IPVersion: gophercloud.IPv4,
		ServiceTypes: []string{"floatingip"}}).Extract()
	wantNeutronFault(t, err, 400, "InvalidSubnetServiceType")
	// A subnet in use pins its pool prefix.
	pooled, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: n.ID, IPVersion: gophercloud.IPv4, SubnetPoolID: pool.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	_, err = subnetpools.RemovePrefixes(ctx, neutron, pool.ID, subnetpools.PrefixesOpsOpts{Prefixes: []string{pooled.CIDR}}).Extract()
	wantNeutronFault(t, err, 400, "IllegalSubnetPoolPrefixUpdate")
}

// wantNeutronFault checks that err is an HTTP error with status and a
// NeutronError body of type typ.
func wantNeutronFault(t *testing.T, err error, status int, typ string) {
	t.Helper()
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		t.Errorf("want %d %s, got %v", status, typ, err)
		return
	}
	var body struct {
		NeutronError struct{ Type, Message string }
	}
	if ue.Actual != status || json.Unmarshal(ue.Body, &body) != nil || body.NeutronError.Type != typ || body.NeutronError.Message == "" {
		t.Errorf("want %d %s, got %d %s", status, typ, ue.Actual, ue.Body)
	}
}
