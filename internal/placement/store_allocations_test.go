package placement

import (
	"context"
	"errors"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

// A claim and a delete cost the same statements whatever the number of
// resource classes; the usage kept in the inventories stays the sum of
// the allocations through replacements and moves; a failing claim gives
// Placement's message for the first allocation that does not fit, in
// provider then class order, and writes nothing.
func TestClaimBatched(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, err := New(serviceDeps(d), Config{})
		if err != nil {
			t.Fatal(err)
		}
		// Fixed uuids so that a comes before b.
		const a, b = "aaaaaaaa-0000-4000-8000-000000000000", "bbbbbbbb-0000-4000-8000-000000000000"
		for _, p := range []string{a, b} {
			if _, err := svc.CreateProvider(ctx, p, "cn-"+p[:1], ""); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.SetInventories(ctx, p, 0, []Inventory{
				{ResourceClass: "VCPU", Total: 4, AllocationRatio: 2},
				{ResourceClass: "MEMORY_MB", Total: 1024, Reserved: 512, StepSize: 128, MaxUnit: 256, AllocationRatio: 1.5},
				{ResourceClass: "DISK_GB", Total: 10, MinUnit: 2, AllocationRatio: 1},
				{ResourceClass: "VGPU", Total: 1, AllocationRatio: 1},
			}); err != nil {
				t.Fatal(err)
			}
		}
		claim := func(consumer string, allocs map[string]map[string]int64) error {
			return svc.Claim(ctx, ConsumerAllocations{Consumer: consumer, ProjectID: "p", UserID: "u", Allocations: allocs}, nil)
		}
		counted := func(f func() error) uint64 {
			t.Helper()
			q0 := d.Queries()
			if err := f(); err != nil {
				t.Fatal(err)
			}
			return d.Queries() - q0
		}
		// Statements: one class against four.
		one := counted(func() error { return claim(newUUID(), map[string]map[string]int64{a: {"VCPU": 1}}) })
		c4 := newUUID()
		four := counted(func() error {
			return claim(c4, map[string]map[string]int64{a: {"VCPU": 1, "MEMORY_MB": 128, "DISK_GB": 2, "VGPU": 1}})
		})
		if one != four || four > 5 {
			t.Errorf("claim statements: %d for one class, %d for four, want equal and at most 5", one, four)
		}
		del := counted(func() error { return svc.DeleteAllocations(ctx, c4) })
		if del > 5 {
			t.Errorf("delete of four classes: %d statements, want at most 5", del)
		}
		t.Logf("statements: claim %d (1 class), %d (4 classes); delete %d", one, four, del)

		// Failures: message of the first allocation that fails, nothing written.
		for _, tc := range []struct {
			name   string
			allocs map[string]map[string]int64
			status int
			msg    string
		}{
			{"capacity", map[string]map[string]int64{a: {"VCPU": 8}}, 409,
				"Unable to allocate inventory: Unable to create allocation for 'VCPU' on resource provider '" + a + "'. The requested amount would exceed the capacity."},
			{"capacity with ratio", map[string]map[string]int64{a: {"MEMORY_MB": 256}, b: {"MEMORY_MB": 256, "VCPU": 9}}, 409,
				"Unable to allocate inventory: Unable to create allocation for 'VCPU' on resource provider '" + b + "'. The requested amount would exceed the capacity."},
			{"step size", map[string]map[string]int64{a: {"MEMORY_MB": 100}}, 409,
				"Unable to allocate inventory: Unable to create allocation for 'MEMORY_MB' on resource provider '" + a + "'. The requested amount would violate inventory constraints."},
			{"max unit before capacity", map[string]map[string]int64{a: {"MEMORY_MB": 384, "VCPU": 99}}, 409,
				"Unable to allocate inventory: Unable to create allocation for 'MEMORY_MB' on resource provider '" + a + "'. The requested amount would violate inventory constraints."},
			{"min unit", map[string]map[string]int64{b: {"DISK_GB": 1}}, 409,
				"Unable to allocate inventory: Unable to create allocation for 'DISK_GB' on resource provider '" + b + "'. The requested amount would violate inventory constraints."},
			{"no inventory", map[string]map[string]int64{a: {"VCPU": 1}, b: {"PCPU": 1}}, 409,
				"Unable to allocate inventory: Inventory for 'PCPU' on resource provider '" + b + "' invalid."},
			{"no class", map[string]map[string]int64{a: {"CUSTOM_NOPE": 1}}, 400,
				"Unable to allocate inventory: No such resource class CUSTOM_NOPE."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := claim(newUUID(), tc.allocs)
				var ae *apiutil.Error
				if !errors.As(err, &ae) || ae.Status != tc.status || ae.Message != tc.msg {
					t.Fatalf("got %v, want %d %q", err, tc.status, tc.msg)
				}
				if tc.status == 409 && !errors.Is(err, ErrCapacityExceeded) {
					t.Fatalf("%v is not ErrCapacityExceeded", err)
				}
			})
		}
		// Capacity counts what the consumer releases and what the earlier
		// consumers of the same request take: (4-0)*2 = 8 VCPU on b.
		x, y := "11111111-0000-4000-8000-000000000000", "22222222-0000-4000-8000-000000000000"
		if err := claim(x, map[string]map[string]int64{b: {"VCPU": 6}}); err != nil {
			t.Fatal(err)
		}
		if err := claim(x, map[string]map[string]int64{b: {"VCPU": 8}}); err != nil {
			t.Fatalf("re-claim using released capacity: %v", err)
		}
		move := func(xv, yv int64) error {
			return svc.ClaimMany(ctx, []ConsumerAllocations{
				{Consumer: y, ProjectID: "p", UserID: "u", Allocations: map[string]map[string]int64{b: {"VCPU": yv}}},
				{Consumer: x, ProjectID: "p", UserID: "u", Allocations: map[string]map[string]int64{b: {"VCPU": xv}}},
			})
		}
		if err := move(3, 6); !errors.Is(err, ErrCapacityExceeded) {
			t.Fatalf("move over capacity: %v", err)
		}
		if err := move(2, 6); err != nil {
			t.Fatalf("move within capacity: %v", err)
		}
		// Provider generation conflict.
		err = svc.Claim(ctx, ConsumerAllocations{Consumer: newUUID(), ProjectID: "p", UserID: "u",
			Allocations: map[string]map[string]int64{a: {"VCPU": 1}}}, map[string]int64{a: 1})
		if !errors.Is(err, ErrConcurrentUpdate) {
			t.Fatalf("stale provider generation: %v", err)
		}
		rows, err := d.Reader().QueryContext(ctx, `SELECT i.provider_uuid, i.resource_class, i.used,
			(SELECT COALESCE(SUM(a.used), 0) FROM placement_allocations a WHERE a.provider_uuid = i.provider_uuid AND a.resource_class = i.resource_class)
			FROM placement_inventories i`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		want := map[string]int64{a + " VCPU": 1, b + " VCPU": 8}
		for rows.Next() {
			var p, rc string
			var used, sum int64
			if err := rows.Scan(&p, &rc, &used, &sum); err != nil {
				t.Fatal(err)
			}
			if used != sum || used != want[p+" "+rc] {
				t.Errorf("%s %s: used %d, allocations %d, want %d", p, rc, used, sum, want[p+" "+rc])
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})
}
