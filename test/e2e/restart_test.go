package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// TestRestartKeepsData stops kumo with SIGTERM and starts it again on the
// same data directory (and, as after a config change, another port): the
// data is still there, tokens issued before the restart still validate
// because the token keys persist, and bootstrap moves the catalog to the
// new address.
func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1 := Start(t, Options{DataDir: dir})
	ctx := testContext(t)
	p1, err := k1.Authenticate(ctx, k1.AdminAuth())
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	proj, err := projects.Create(ctx, identityClient(t, p1), projects.CreateOpts{Name: "survivor", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	oldToken := p1.Token()
	k1.Stop()
	if t.Failed() {
		t.FailNow()
	}

	k2 := Start(t, Options{DataDir: dir, Password: k1.Password})
	c := k2.tokenClient(t, oldToken)
	got, err := projects.Get(ctx, c, proj.ID).Extract()
	if err != nil {
		t.Fatalf("get project after restart with the old token: %v", err)
	}
	if got.Name != "survivor" {
		t.Errorf("project after restart = %+v", got)
	}
	if ok, err := tokens.Validate(ctx, c, oldToken); err != nil || !ok {
		t.Errorf("old token after restart: valid=%v err=%v", ok, err)
	}

	// A fresh login goes through the catalog, which must now name the new port.
	p2, err := k2.Authenticate(ctx, k2.AdminAuth())
	if err != nil {
		t.Fatalf("authenticate after restart: %v", err)
	}
	cat, err := authToken(t, p2).ExtractServiceCatalog()
	if err != nil {
		t.Fatal(err)
	}
	checkIdentityInCatalog(t, "catalog after restart on a new port", cat.Entries, k2.URL+"/v3")
	pages, err := projects.List(identityClient(t, p2), projects.ListOpts{Name: "survivor"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list projects: %v", err)
	}
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != proj.ID {
		t.Errorf("projects named survivor after restart = %+v, want %s", ps, proj.ID)
	}
	clouds, err := os.ReadFile(filepath.Join(dir, "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(clouds), k2.URL+"/v3") {
		t.Errorf("clouds.yaml after restart does not name %s/v3:\n%s", k2.URL, clouds)
	}
}
