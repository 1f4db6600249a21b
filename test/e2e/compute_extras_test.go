package e2e

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/diagnostics"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/secgroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// TestComputeExtrasGophercloud drives, with gophercloud against the real
// binary, the compute APIs that sit beside servers: the os-security-groups
// proxy and the add/removeSecurityGroup actions, /extensions, server
// diagnostics and hypervisor uptime, with their error statuses and fault
// bodies.
func TestComputeExtrasGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	nova := serviceClient(t, openstack.NewComputeV2, p) // 2.1: the proxy exists
	img := serviceClient(t, openstack.NewImageV2, p)
	neutron := serviceClient(t, openstack.NewNetworkV2, p)

	// The proxy: a group, a rule, the list, and Nova's faults.
	g, err := secgroups.Create(ctx, nova, secgroups.CreateOpts{Name: "web", Description: "web servers"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	r, err := secgroups.CreateRule(ctx, nova, secgroups.CreateRuleOpts{ParentGroupID: g.ID, FromPort: 80, ToPort: 80,
		IPProtocol: "tcp", CIDR: "10.0.0.0/8"}).Extract()
	if err != nil || r.FromPort != 80 || r.IPRange.CIDR != "10.0.0.0/8" || r.ParentGroupID != g.ID {
		t.Fatalf("rule %+v, %v", r, err)
	}
	pages, err := secgroups.List(nova).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := secgroups.ExtractSecurityGroups(pages)
	found := false
	for _, x := range all {
		found = found || x.ID == g.ID && len(x.Rules) == 1
	}
	if !found {
		t.Errorf("list has no web group with its rule: %+v", all)
	}
	_, err = secgroups.CreateRule(ctx, nova, secgroups.CreateRuleOpts{ParentGroupID: g.ID, FromPort: 90, ToPort: 80,
		IPProtocol: "tcp", CIDR: "10.0.0.0/8"}).Extract()
	wantFault(t, err, 400, "badRequest")
	_, err = secgroups.Get(ctx, nova, "not-a-uuid").Extract()
	wantFault(t, err, 400, "badRequest")
	_, err = secgroups.Get(ctx, nova, "00000000-0000-4000-8000-000000000000").Extract()
	wantFault(t, err, 404, "itemNotFound")
	nova236 := *nova
	nova236.Microversion = "2.36"
	_, err = secgroups.List(&nova236).AllPages(ctx)
	wantFault(t, err, 404, "itemNotFound")

	// A server on a network: add and remove the group.
	imageID := newRawImage(t, ctx, img, "extras-img")
	net := newNetwork(t, ctx, neutron, "extras-net", "10.42.0.0/24")
	s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: "extras-vm", ImageRef: imageID, FlavorRef: "42",
		Networks: []servers.Network{{UUID: net.ID}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitServer(t, ctx, nova, s.ID, "ACTIVE")
	if err := secgroups.AddServer(ctx, nova, s.ID, "web").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	groupsOf := func() string {
		t.Helper()
		pages, err := secgroups.ListByServer(nova, s.ID).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gs, _ := secgroups.ExtractSecurityGroups(pages)
		var names []string
		for _, x := range gs {
			names = append(names, x.Name)
		}
		return strings.Join(names, ",")
	}
	if got := groupsOf(); !strings.Contains(got, "web") || !strings.Contains(got, "default") {
		t.Errorf("server groups after add: %q", got)
	}
	wantFault(t, secgroups.AddServer(ctx, nova, s.ID, "no-such-group").ExtractErr(), 404, "itemNotFound")
	if err := secgroups.RemoveServer(ctx, nova, s.ID, "web").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(); got != "default" {
		t.Errorf("server groups after remove: %q", got)
	}
	wantFault(t, secgroups.RemoveServer(ctx, nova, s.ID, "web").ExtractErr(), 404, "itemNotFound")

	// Diagnostics (admin), in the 2.48 format.
	nova248 := *nova
	nova248.Microversion = "2.48"
	d, err := diagnostics.Get(ctx, &nova248, s.ID).Extract()
	if err != nil || d["state"] != "running" || d["driver"] != "fake" {
		t.Errorf("diagnostics %v, %v", d, err)
	}
	_, err = diagnostics.Get(ctx, &nova248, "00000000-0000-4000-8000-000000000000").Extract()
	wantFault(t, err, 404, "itemNotFound")

	// Extensions.
	pages, err = extensions.List(nova).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exts, _ := extensions.ExtractExtensions(pages)
	if len(exts) == 0 {
		t.Error("no extensions")
	}
	if e, err := extensions.Get(ctx, nova, "os-security-groups").Extract(); err != nil || e.Alias != "os-security-groups" {
		t.Errorf("extension %+v, %v", e, err)
	}
	_, err = extensions.Get(ctx, nova, "os-no-such").Extract()
	wantFault(t, err, 404, "itemNotFound")

	// Hypervisor uptime, up to 2.87.
	hp, err := hypervisors.List(nova, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := hypervisors.ExtractHypervisors(hp)
	if len(hs) == 0 {
		t.Fatal("no hypervisors")
	}
	up, err := hypervisors.GetUptime(ctx, nova, hs[0].ID).Extract()
	if err != nil || !strings.Contains(up.Uptime, "load average") {
		t.Errorf("uptime %+v, %v", up, err)
	}
	nova288 := *nova
	nova288.Microversion = "2.88"
	_, err = hypervisors.GetUptime(ctx, &nova288, hs[0].ID).Extract()
	wantFault(t, err, 404, "itemNotFound")

	if err := servers.Delete(ctx, nova, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := secgroups.Delete(ctx, nova, g.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

// wantFault checks that err is an HTTP error with status and a Nova fault
// body whose key is fault.
func wantFault(t *testing.T, err error, status int, fault string) {
	t.Helper()
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		t.Errorf("want %d %s, got %v", status, fault, err)
		return
	}
	var body map[string]json.RawMessage
	if ue.Actual != status || json.Unmarshal(ue.Body, &body) != nil || body[fault] == nil {
		t.Errorf("want %d %s, got %d %s", status, fault, ue.Actual, ue.Body)
	}
}
