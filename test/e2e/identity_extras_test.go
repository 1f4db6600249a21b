package e2e

import (
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/credentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/policies"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projectendpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/registeredlimits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/trusts"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// TestIdentityExtrasGophercloud drives the Keystone APIs beyond the core
// (credentials, registered limits and limits, policies, OS-EP-FILTER and
// OS-TRUST with a trust-scoped token) through gophercloud against the real
// binary, with their Keystone error statuses.
func TestIdentityExtrasGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	admin := k.adminIdentity(t, ctx)

	proj, err := projects.Create(ctx, admin, projects.CreateOpts{Name: "extras", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	enabled := true
	trustee, err := users.Create(ctx, admin, users.CreateOpts{Name: "trustee", DomainID: "default", Password: "trustee-pw", Enabled: &enabled}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	up, err := users.List(admin, users.ListOpts{Name: "admin"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admins, _ := users.ExtractUsers(up)
	if len(admins) != 1 {
		t.Fatalf("users named admin: %+v", admins)
	}
	adminID := admins[0].ID
	member := roleID(t, ctx, admin, "member")
	if err := roles.Assign(ctx, admin, member, roles.AssignOpts{UserID: adminID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatalf("grant admin member on the project: %v", err)
	}

	// Credentials: an ec2 blob, read back, listed by user, deleted.
	cred, err := credentials.Create(ctx, admin, credentials.CreateOpts{
		Type: "ec2", UserID: adminID, ProjectID: proj.ID, Blob: `{"access":"e2e-access","secret":"e2e-secret"}`,
	}).Extract()
	if err != nil {
		t.Fatalf("create credential: %v", err)
	}
	got, err := credentials.Get(ctx, admin, cred.ID).Extract()
	if err != nil || got.Type != "ec2" || got.ProjectID != proj.ID || got.UserID != adminID {
		t.Errorf("get credential = %+v, %v", got, err)
	}
	cp, err := credentials.List(admin, credentials.ListOpts{UserID: adminID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs, _ := credentials.ExtractCredentials(cp); len(cs) != 1 || cs[0].ID != cred.ID {
		t.Errorf("credentials of the admin: %+v", cs)
	}
	_, err = credentials.Create(ctx, admin, credentials.CreateOpts{Type: "ec2", UserID: adminID, Blob: `not json`}).Extract()
	checkKeystoneError(t, "ec2 credential with a blob that is not JSON", err, 400, "")
	if err := credentials.Delete(ctx, admin, cred.ID).ExtractErr(); err != nil {
		t.Fatalf("delete credential: %v", err)
	}
	_, err = credentials.Get(ctx, admin, cred.ID).Extract()
	checkKeystoneError(t, "deleted credential", err, 404, "")

	// Registered limits and a project limit under it.
	sp, err := services.List(admin, services.ListOpts{ServiceType: "compute"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := services.ExtractServices(sp)
	if len(svcs) != 1 {
		t.Fatalf("compute services: %+v", svcs)
	}
	rl, err := registeredlimits.BatchCreate(ctx, admin, registeredlimits.BatchCreateOpts{
		{ServiceID: svcs[0].ID, ResourceName: "cores", DefaultLimit: 20},
	}).Extract()
	if err != nil || len(rl) != 1 || rl[0].DefaultLimit != 20 {
		t.Fatalf("create registered limit = %+v, %v", rl, err)
	}
	ls, err := limits.BatchCreate(ctx, admin, limits.BatchCreateOpts{
		{ServiceID: svcs[0].ID, ProjectID: proj.ID, ResourceName: "cores", ResourceLimit: 8},
	}).Extract()
	if err != nil || len(ls) != 1 || ls[0].ResourceLimit != 8 || ls[0].ProjectID != proj.ID {
		t.Fatalf("create limit = %+v, %v", ls, err)
	}
	_, err = limits.BatchCreate(ctx, admin, limits.BatchCreateOpts{
		{ServiceID: svcs[0].ID, ProjectID: proj.ID, ResourceName: "no-such-resource", ResourceLimit: 1},
	}).Extract()
	checkKeystoneError(t, "limit without a registered limit (Keystone's NoLimitReference)", err, 403, "")
	model, err := limits.GetEnforcementModel(ctx, admin).Extract()
	if err != nil || model.Name != "flat" {
		t.Errorf("enforcement model = %+v, %v", model, err)
	}
	err = registeredlimits.Delete(ctx, admin, rl[0].ID).ExtractErr()
	checkKeystoneError(t, "registered limit a limit points at", err, 403, "")
	if err := limits.Delete(ctx, admin, ls[0].ID).ExtractErr(); err != nil {
		t.Fatalf("delete limit: %v", err)
	}
	if err := registeredlimits.Delete(ctx, admin, rl[0].ID).ExtractErr(); err != nil {
		t.Fatalf("delete registered limit: %v", err)
	}

	// Policies.
	pol, err := policies.Create(ctx, admin, policies.CreateOpts{Type: "application/json", Blob: []byte(`{"a":"b"}`)}).Extract()
	if err != nil || pol.Type != "application/json" {
		t.Fatalf("create policy = %+v, %v", pol, err)
	}
	if err := policies.Delete(ctx, admin, pol.ID).ExtractErr(); err != nil {
		t.Fatalf("delete policy: %v", err)
	}
	_, err = policies.Get(ctx, admin, pol.ID).Extract()
	checkKeystoneError(t, "deleted policy", err, 404, "")

	// OS-EP-FILTER: a project associated with the compute endpoints.
	ep, err := endpoints.List(admin, endpoints.ListOpts{ServiceID: svcs[0].ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eps, _ := endpoints.ExtractEndpoints(ep)
	if len(eps) == 0 {
		t.Fatal("no compute endpoint")
	}
	if err := projectendpoints.Create(ctx, admin, proj.ID, eps[0].ID).ExtractErr(); err != nil {
		t.Fatalf("associate endpoint: %v", err)
	}
	pp, err := projectendpoints.List(admin, proj.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pe, _ := projectendpoints.ExtractEndpoints(pp); len(pe) != 1 || pe[0].ID != eps[0].ID {
		t.Errorf("project endpoints: %+v", pe)
	}
	if err := projectendpoints.Delete(ctx, admin, proj.ID, eps[0].ID).ExtractErr(); err != nil {
		t.Fatalf("remove endpoint: %v", err)
	}
	err = projectendpoints.Delete(ctx, admin, proj.ID, eps[0].ID).ExtractErr()
	checkKeystoneError(t, "endpoint no longer associated", err, 404, "")

	// OS-TRUST: the admin trusts the trustee with member on the project;
	// the trustee's trust-scoped token carries it, until the trust goes.
	tr, err := trusts.Create(ctx, admin, trusts.CreateOpts{
		TrustorUserID: adminID, TrusteeUserID: trustee.ID, ProjectID: proj.ID,
		Roles: []trusts.Role{{Name: "member"}},
	}).Extract()
	if err != nil {
		t.Fatalf("create trust: %v", err)
	}
	trusteeAuth := gophercloud.AuthOptions{Username: "trustee", Password: "trustee-pw", DomainName: "Default"}
	withTrust := trusteeAuth
	withTrust.Scope = &gophercloud.AuthScope{TrustID: tr.ID}
	tp, err := k.Authenticate(ctx, withTrust)
	if err != nil {
		t.Fatalf("trust-scoped authentication: %v", err)
	}
	checkTokenScope(t, "trust-scoped token", authToken(t, tp), trustee.ID, proj.ID, "member")
	if err := trusts.Delete(ctx, admin, tr.ID).ExtractErr(); err != nil {
		t.Fatalf("delete trust: %v", err)
	}
	_, err = trusts.Get(ctx, admin, tr.ID).Extract()
	checkKeystoneError(t, "deleted trust", err, 404, "")
	if _, err := k.Authenticate(ctx, withTrust); err == nil {
		t.Error("a deleted trust still scopes a token")
	}
}
