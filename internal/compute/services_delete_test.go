package compute_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
)

// Deleting a compute service (2.53, by uuid) deletes its node's resource
// provider and takes the host out of its aggregates; Nova's 409s keep it
// while it hosts instances or takes part in a migration in progress, and
// Kumo's while its provider holds allocations (which would be orphaned).
// The host, still reporting, registers again with a new provider.
func TestDeleteComputeService(t *testing.T) {
	dbtest.Each(t, []db.Set{compute.Migrations()}, testDeleteComputeService)
}

func testDeleteComputeService(t *testing.T, d *db.DB) {
	e := newServerEnv(t, d, 2, nil)
	ctx := context.Background()
	serviceOf := func(host string) string {
		t.Helper()
		l := list(t, e.do("admin", "GET", v21+"/os-services?binary=nova-compute&host="+host, "2.53", "").Expect(t, 200, "").Body, "services")
		if len(l) != 1 {
			t.Fatalf("services of %s: %v", host, l)
		}
		return l[0].(map[string]any)["id"].(string)
	}
	id := e.boot("admin", `{"server": {"name": "on1", "imageRef": "`+imageID+`", "flavorRef": "42", "networks": "none", "host": "compute1"}}`)
	e.waitStatus(id, "ACTIVE")
	svc2, prov2 := serviceOf("compute2"), e.nodeOf("compute2")
	st := store.New(d)
	mig := &store.MigrationRecord{UUID: "0b9a4c43-5b0e-4e43-9d0f-1d2a3b4c5d6e", InstanceUUID: id, ProjectID: "p-admin", UserID: "admin-u",
		Type: "migration", Status: "migrating", SourceCompute: "compute1", DestCompute: "compute2"}
	const stray = "7c1e0f55-6f3a-4f1e-8a4b-000000000001"

	for _, tc := range []struct {
		name       string
		svc        string
		setup      func()
		undo       func()
		wantStatus int
		wantMsg    string
	}{
		{name: "hosting an instance", svc: serviceOf("compute1"), wantStatus: 409, wantMsg: "is hosting instances"},
		{name: "migration in progress", svc: svc2, wantStatus: 409, wantMsg: "has in-progress migrations",
			setup: func() {
				if err := st.UpsertMigration(ctx, nil, mig); err != nil {
					t.Fatal(err)
				}
			},
			undo: func() {
				if err := st.SetMigrationStatus(ctx, mig.UUID, "error"); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "allocations on the provider", svc: svc2, wantStatus: 409, wantMsg: "has allocations",
			setup: func() {
				err := e.pl.Claim(ctx, placement.ConsumerAllocations{Consumer: stray, ProjectID: "p", UserID: "u",
					Allocations: map[string]map[string]int64{prov2: {"VCPU": 1}}}, nil)
				if err != nil {
					t.Fatal(err)
				}
			},
			undo: func() {
				if err := e.pl.DeleteAllocations(ctx, stray); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "not a uuid", svc: "2", wantStatus: 400},
		{name: "unknown", svc: "5c0e5b8e-0000-4000-8000-000000000000", wantStatus: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			r := e.do("admin", "DELETE", v21+"/os-services/"+tc.svc, "2.53", "")
			fault := "itemNotFound"
			switch tc.wantStatus {
			case 400:
				fault = "badRequest"
			case 409:
				fault = "conflictingRequest"
			}
			r.Expect(t, tc.wantStatus, fault)
			if !strings.Contains(r.Raw, tc.wantMsg) {
				t.Errorf("fault %s lacks %q", r.Raw, tc.wantMsg)
			}
			if tc.undo != nil {
				tc.undo()
			}
		})
	}
	// Refused: nothing changed.
	if _, err := e.pl.Provider(ctx, prov2); err != nil {
		t.Fatalf("provider of compute2 after the refusals: %v", err)
	}

	agg := obj(t, e.do("admin", "POST", v21+"/os-aggregates", "2.53", `{"aggregate": {"name": "a1"}}`).Expect(t, 200, "").Body, "aggregate")
	aggURL := v21 + "/os-aggregates/" + fmt.Sprint(agg["id"])
	e.do("admin", "POST", aggURL+"/action", "2.53", `{"add_host": {"host": "compute2"}}`).Expect(t, 200, "")
	// compute2 keeps reporting: it may register again at any time below,
	// as a new service with a new node and provider.
	e.do("admin", "DELETE", v21+"/os-services/"+svc2, "2.53", "").Expect(t, 204, "")
	if _, err := e.pl.Provider(ctx, prov2); !errors.Is(err, placement.ErrNotFound) {
		t.Errorf("provider of the deleted service: %v, want not found", err)
	}
	if hosts := obj(t, e.do("admin", "GET", aggURL, "2.53", "").Expect(t, 200, "").Body, "aggregate")["hosts"]; len(hosts.([]any)) != 0 {
		t.Errorf("aggregate hosts after the delete: %v", hosts)
	}
	e.do("admin", "DELETE", v21+"/os-services/"+svc2, "2.53", "").Expect(t, 404, "itemNotFound")

	// compute2 reports again: a new service, node and provider.
	var prov string
	e.eventually(func() bool {
		for _, h := range list(t, e.do("admin", "GET", v21+"/os-hypervisors", "2.53", "").Body, "hypervisors") {
			if hv := h.(map[string]any); hv["hypervisor_hostname"] == "compute2" {
				prov = hv["id"].(string)
			}
		}
		if prov == "" || prov == prov2 {
			return false
		}
		invs, err := e.pl.Inventories(ctx, prov)
		return err == nil && len(invs) > 0
	}, "compute2 registered again with a provider")
}
