package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

func names(fs []*store.Flavor) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return strings.Join(out, ",")
}

func TestFlavors(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := store.New(d)
		desc := "private one"
		f := &store.Flavor{FlavorID: "p", Name: "priv", MemoryMB: 64, VCPUs: 1, RxtxFactor: 1.5, Description: &desc,
			ExtraSpecs: map[string]string{"a": "1"}}
		if err := s.CreateFlavor(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateFlavor(ctx, &store.Flavor{FlavorID: "p", Name: "x"}); !errors.Is(err, store.ErrDuplicateID) {
			t.Fatalf("dup id: %v", err)
		}
		if err := s.CreateFlavor(ctx, &store.Flavor{FlavorID: "q", Name: "priv"}); !errors.Is(err, store.ErrDuplicateName) {
			t.Fatalf("dup name: %v", err)
		}
		got, err := s.GetFlavor(ctx, "p")
		if err != nil || got.IsPublic || got.RxtxFactor != 1.5 || *got.Description != desc || got.ExtraSpecs["a"] != "1" {
			t.Fatalf("get %+v %v", got, err)
		}
		pub := true
		list := func(f store.FlavorFilter) string {
			fs, err := s.ListFlavors(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return names(fs)
		}
		if got := list(store.FlavorFilter{IsPublic: &pub, ProjectID: "p1"}); strings.Contains(got, "priv") {
			t.Fatalf("private listed: %s", got)
		}
		if err := s.AddFlavorAccess(ctx, "p", "p1"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddFlavorAccess(ctx, "p", "p1"); !errors.Is(err, store.ErrExists) {
			t.Fatalf("dup access: %v", err)
		}
		if got := list(store.FlavorFilter{IsPublic: &pub, ProjectID: "p1", SortKey: "memory_mb", Limit: 2}); got != "priv,m1.nano" {
			t.Fatalf("with access: %s", got)
		}
		if got := list(store.FlavorFilter{SortKey: "description", SortDesc: true, Limit: 1}); got != "priv" {
			t.Fatalf("by description: %s", got)
		}
		if got := list(store.FlavorFilter{SortKey: "memory_mb", Marker: "42", Limit: 2}); got != "m1.micro,m1.tiny" {
			t.Fatalf("after marker: %s", got)
		}
		if _, err := s.ListFlavors(ctx, store.FlavorFilter{Marker: "zz"}); !errors.Is(err, store.ErrMarker) {
			t.Fatalf("bad marker: %v", err)
		}
		if err := s.UpdateExtraSpecs(ctx, "p", map[string]string{"a": "2", "b": "3"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteExtraSpec(ctx, "p", "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteExtraSpec(ctx, "p", "b"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete missing spec: %v", err)
		}
		if got, _ := s.GetFlavor(ctx, "p"); len(got.ExtraSpecs) != 1 || got.ExtraSpecs["a"] != "2" {
			t.Fatalf("specs %v", got.ExtraSpecs)
		}
		if err := s.UpdateFlavorDescription(ctx, "p", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveFlavorAccess(ctx, "p", "p2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("remove missing: %v", err)
		}
		if err := s.DeleteFlavor(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetFlavor(ctx, "p"); !errors.Is(err, store.ErrNoFlavor) {
			t.Fatalf("after delete: %v", err)
		}
		for _, err := range []error{
			s.DeleteFlavor(ctx, "p"), s.AddFlavorAccess(ctx, "p", "x"), s.UpdateExtraSpecs(ctx, "p", nil),
			s.UpdateFlavorDescription(ctx, "p", nil),
		} {
			if !errors.Is(err, store.ErrNoFlavor) {
				t.Fatalf("missing flavor: %v", err)
			}
		}
	})
}

func TestKeyPairsAndQuotas(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := store.New(d)
		for _, n := range []string{"b", "a", "c"} {
			err := s.WithTx(ctx, func(tx *sql.Tx) error {
				return store.InsertKeyPair(ctx, tx, &store.KeyPair{UserID: "u", Name: n, Type: "ssh", PublicKey: "k", Fingerprint: "f"})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		err := s.WithTx(ctx, func(tx *sql.Tx) error {
			return store.InsertKeyPair(ctx, tx, &store.KeyPair{UserID: "u", Name: "a", Type: "ssh"})
		})
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("dup: %v", err)
		}
		kps, err := s.ListKeyPairs(ctx, "u", 2, "a")
		if err != nil || len(kps) != 2 || kps[0].Name != "b" || kps[1].Name != "c" || kps[0].ID == 0 {
			t.Fatalf("list %v %v", kps, err)
		}
		if n, _ := store.CountKeyPairs(ctx, d.Reader(), "u"); n != 3 {
			t.Fatalf("count %d", n)
		}
		if err := s.DeleteKeyPair(ctx, "u", "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetKeyPair(ctx, "u", "a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		// Quotas.
		err = s.WithTx(ctx, func(tx *sql.Tx) error {
			if err := s.Lock(ctx, tx, "project:p", false); err != nil {
				return err
			}
			if err := store.SetQuotaLimits(ctx, tx, "p", "", map[string]int64{"cores": 5}); err != nil {
				return err
			}
			if err := store.SetQuotaLimits(ctx, tx, "p", "u1", map[string]int64{"cores": 2}); err != nil {
				return err
			}
			if err := store.SetQuotaLimits(ctx, tx, "p", "u2", map[string]int64{"cores": 1}); err != nil {
				return err
			}
			return store.SetQuotaLimits(ctx, tx, "p", "", map[string]int64{"cores": 6})
		})
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := store.QuotaLimits(ctx, d.Reader(), "p", ""); l["cores"] != 6 {
			t.Fatalf("limits %v", l)
		}
		if o, _ := store.OtherUsersLimits(ctx, d.Reader(), "p", "u1"); o["cores"] != 1 {
			t.Fatalf("others %v", o)
		}
		err = s.WithTx(ctx, func(tx *sql.Tx) error { return store.DeleteQuotaLimits(ctx, tx, "p", "") })
		if l, _ := store.QuotaLimits(ctx, d.Reader(), "p", "u1"); err != nil || len(l) != 0 {
			t.Fatalf("after reset %v %v", l, err)
		}
	})
}

// A host's server list (the power sync's, on every heartbeat) reads that
// host's rows through an index in list order, not every live server
// (migration 7). The statement is the one ListInstances builds for
// InstanceFilter{Host: h}.
func TestHostListPlan(t *testing.T) {
	d := dbtest.OpenSQLite(t, store.Migrations())
	rows, err := d.Reader().QueryContext(context.Background(), `EXPLAIN QUERY PLAN SELECT id FROM compute_instances
		WHERE host = $1 AND deleted = FALSE ORDER BY created_at DESC, id DESC`, "h1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "compute_instances_host_created (host=? AND deleted=?)") || strings.Contains(p, "TEMP B-TREE") {
		t.Fatalf("plan: %s", p)
	}
}

func TestTouchServices(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := store.New(d)
		for _, h := range []string{"h1", "h2"} {
			if _, err := s.Heartbeat(ctx, h, "nova-compute", "compute", "uuid-"+h, 1); err != nil {
				t.Fatal(err)
			}
		}
		before, err := s.ListServices(ctx, "h1", "nova-compute")
		if err != nil || len(before) != 1 {
			t.Fatalf("services %v %v", before, err)
		}
		time.Sleep(2 * time.Millisecond)
		missing, err := s.TouchServices(ctx, "nova-compute", []string{"h1", "h2"})
		if err != nil || len(missing) != 0 {
			t.Fatalf("touch: missing %v, %v", missing, err)
		}
		after, _ := s.ListServices(ctx, "h1", "nova-compute")
		if !after[0].LastSeenUp.After(before[0].LastSeenUp) {
			t.Errorf("last_seen_up %v not after %v", after[0].LastSeenUp, before[0].LastSeenUp)
		}
		// A host without a row (deleted meanwhile) is reported; another
		// binary's row does not count.
		missing, err = s.TouchServices(ctx, "nova-compute", []string{"h1", "gone", "h2"})
		if err != nil || len(missing) != 1 || missing[0] != "gone" {
			t.Fatalf("touch with a gone host: missing %v, %v", missing, err)
		}
		missing, err = s.TouchServices(ctx, "nova-conductor", []string{"h1"})
		if err != nil || len(missing) != 1 || missing[0] != "h1" {
			t.Fatalf("touch of another binary: missing %v, %v", missing, err)
		}
	})
}

// The migrations of a host are read through the host indexes of
// migration 8, not by scanning every record: the source-only query of
// the evacuation cleanup, and the source-or-destination one of a service
// delete and GET /os-migrations?host=. The statements are the ones
// ListMigrations builds. PostgreSQL is told to avoid sequential scans,
// which it prefers on a table this small.
func TestMigrationHostPlans(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations()}, func(t *testing.T, d *db.DB) {
		for _, tc := range []struct {
			name, where string
			want        []string
		}{
			{"source", "source_compute = $1", []string{"compute_migrations_source"}},
			{"source or destination", "(source_compute = $1 OR dest_compute = $1)", []string{"compute_migrations_source", "compute_migrations_dest"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := `SELECT id FROM compute_migrations WHERE 1 = 1 AND ` + tc.where + ` AND migration_type = $2 ORDER BY created_at DESC, id DESC`
				plan := explain(t, d, q, "h1", "evacuation")
				for _, idx := range tc.want {
					if !strings.Contains(plan, idx) {
						t.Errorf("plan does not use %s: %s", idx, plan)
					}
				}
			})
		}
	})
}

// explain returns the engine's plan of query as one string.
func explain(t *testing.T, d *db.DB, query string, args ...any) string {
	t.Helper()
	var plan []string
	err := d.WithTx(context.Background(), func(tx *sql.Tx) error {
		prefix := "EXPLAIN QUERY PLAN "
		if d.Dialect() == db.Postgres {
			prefix = "EXPLAIN "
			if _, err := tx.Exec(`SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
		}
		rows, err := tx.Query(prefix+query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			plan = append(plan, vals[len(vals)-1].String)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// A group is read with its own live members only: the group of an
// instance (what the scheduler asks on every decision) and a group by
// uuid, among other groups with members of their own.
func TestServerGroupReads(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := store.New(d)
		groups := map[string]*store.ServerGroup{}
		err := d.WithTx(ctx, func(tx *sql.Tx) error {
			for gi, name := range []string{"a", "b", "c"} {
				g := &store.ServerGroup{UUID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", gi), Name: name, ProjectID: "p", UserID: "u",
					Policy: "anti-affinity", Rules: map[string]int64{"max_server_per_host": int64(gi + 1)}}
				if err := s.CreateServerGroup(ctx, tx, g); err != nil {
					return err
				}
				groups[name] = g
				for m := 0; m < 3; m++ {
					u := fmt.Sprintf("%s%d000000-0000-4000-8000-000000000000", name, m)
					if err := s.InsertInstance(ctx, tx, &store.Instance{UUID: u, ProjectID: "p", UserID: "u", Name: u, VMState: "active"}); err != nil {
						return err
					}
					if err := s.AddGroupMember(ctx, tx, g.ID, u); err != nil {
						return err
					}
				}
			}
			// b's second member is deleted: no longer a member.
			_, err := tx.ExecContext(ctx, `UPDATE compute_instances SET deleted = TRUE WHERE uuid = $1`, "b1000000-0000-4000-8000-000000000000")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			instance, group string
			members         []string
		}{
			{"a0000000-0000-4000-8000-000000000000", "a", []string{"a0", "a1", "a2"}},
			{"b2000000-0000-4000-8000-000000000000", "b", []string{"b0", "b2"}},
			{"c1000000-0000-4000-8000-000000000000", "c", []string{"c0", "c1", "c2"}},
			{"d0000000-0000-4000-8000-000000000000", "", nil},
		} {
			g, err := s.InstanceGroup(ctx, tc.instance)
			if err != nil {
				t.Fatal(err)
			}
			if tc.group == "" {
				if g != nil {
					t.Errorf("group of a non-member: %+v", g)
				}
				continue
			}
			byUUID, err := s.GetServerGroup(ctx, nil, groups[tc.group].UUID)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []*store.ServerGroup{g, byUUID} {
				var short []string
				for _, m := range got.Members {
					short = append(short, m[:2])
				}
				if got.UUID != groups[tc.group].UUID || got.Rules["max_server_per_host"] != groups[tc.group].Rules["max_server_per_host"] ||
					strings.Join(short, ",") != strings.Join(tc.members, ",") {
					t.Errorf("group of %s: %s %v members %v, want %s %v", tc.instance, got.Name, got.Rules, short, tc.group, tc.members)
				}
			}
		}
		if _, err := s.GetServerGroup(ctx, nil, "00000000-0000-4000-8000-0000000000ff"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown group: %v", err)
		}
	})
}
