package conductor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/scheduler"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/service"
)

// TestGroupAcrossConductors: two conductors (two processes' schedulers,
// each with its own in-process group lock and provider snapshot) build
// the members of one anti-affinity group at the same time on one
// database. The choice is checked again when it is committed, so no
// two members share a host: as many succeed as there are hosts, the
// rest find no valid host, and only the placed ones hold allocations.
func TestGroupAcrossConductors(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations(), placement.Migrations()}, testGroupAcrossConductors)
}

func testGroupAcrossConductors(t *testing.T, d *db.DB) {
	ctx := context.Background()
	const hosts, members = 4, 12
	st, pl, g, insts := groupCloud(t, d, hosts, members, "anti-affinity")
	conds := []*Conductor{New(st, nil, pl, nil, Config{}, nil), New(st, nil, pl, nil, Config{}, nil)}
	errs := make([]error, members)
	var wg sync.WaitGroup
	for i, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conds[i%2]
			errs[i] = c.schedule(ctx, &run{c: c, inst: inst, task: inst.Task, log: slog.New(slog.DiscardHandler)}, nil)
		}()
	}
	wg.Wait()
	placed := 0
	for i, err := range errs {
		switch {
		case err == nil:
			placed++
		case !errors.Is(err, ErrNoValidHost):
			t.Errorf("member %d: %v", i, err)
		}
	}
	var hostsOf map[string]string
	if err := d.WithTx(ctx, func(tx *sql.Tx) (err error) {
		hostsOf, err = st.LockGroupHosts(ctx, tx, g.UUID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, h := range hostsOf {
		if h != "" {
			per[h]++
		}
	}
	for h, n := range per {
		if n > 1 {
			t.Errorf("%d members on %s", n, h)
		}
	}
	allocs, err := pl.AllAllocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if placed != hosts || len(per) != hosts || len(allocs) != hosts {
		t.Fatalf("placed %d on %v, %d consumers hold allocations", placed, per, len(allocs))
	}
}

// When other conductors keep placing members where this one chose, the
// schedule step gives up after groupRetries decisions with the ordinary
// scheduling failure (the server goes to ERROR with Nova's "No valid
// host was found" fault), holding no allocation. The race is made
// certain: before each decision the other member lands on the group's
// only host, unseen by the decision's view of the group.
func TestGroupRaceEndsAsNoValidHost(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations(), placement.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st, pl, _, insts := groupCloud(t, d, 1, 2, "anti-affinity")
		other, mine := insts[0], insts[1]
		c := New(st, nil, pl, nil, Config{}, nil)
		decisions := 0
		placeOther := func(_ *run, spec *scheduler.Spec) {
			decisions++
			spec.Group.Members = map[string]int{}
			if err := d.WithTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE compute_instances SET host = 'host0' WHERE uuid = $1`, other.UUID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		err := c.schedule(ctx, &run{c: c, inst: mine, task: mine.Task, log: slog.New(slog.DiscardHandler)}, placeOther)
		if !errors.Is(err, ErrNoValidHost) || !strings.HasPrefix(err.Error(), "No valid host was found.") || !strings.Contains(err.Error(), "server group policy") {
			t.Fatalf("after %d decisions: %v, want a no-valid-host failure naming the group policy", decisions, err)
		}
		if decisions != groupRetries {
			t.Errorf("%d decisions, want %d", decisions, groupRetries)
		}
		if allocs, err := pl.AllAllocations(ctx); err != nil || len(allocs) != 0 {
			t.Errorf("allocations after the failure: %v %v", allocs, err)
		}
		if toError(nil, err)["fault"].(*store.Fault).Message != err.Error() {
			t.Errorf("fault %+v", toError(nil, err)["fault"])
		}
	})
}

// groupCloud is a database with hosts fake compute hosts (nodes and
// resource providers) and members building instances of one group of
// policy.
func groupCloud(t *testing.T, d *db.DB, hosts, members int, policy string) (*store.Store, *placement.Service, *store.ServerGroup, []*store.Instance) {
	t.Helper()
	ctx := context.Background()
	st := store.New(d)
	pl, err := placement.New(service.Deps{DB: d}, placement.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < hosts; i++ {
		host := fmt.Sprintf("host%d", i)
		svc, err := st.Heartbeat(ctx, host, "nova-compute", "compute", newUUID(), 1)
		if err != nil {
			t.Fatal(err)
		}
		n := &store.Node{UUID: newUUID(), ServiceID: svc.ID, Host: host, HypervisorHostname: host, HypervisorType: "fake", VCPUs: 16, MemoryMB: 4096, LocalGB: 100}
		if err := st.UpsertNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		p, err := pl.CreateProvider(ctx, n.UUID, host, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pl.SetInventories(ctx, p.UUID, p.Generation, []placement.Inventory{
			{ResourceClass: "VCPU", Total: 16}, {ResourceClass: "MEMORY_MB", Total: 4096}, {ResourceClass: "DISK_GB", Total: 100}}); err != nil {
			t.Fatal(err)
		}
	}
	g := &store.ServerGroup{UUID: newUUID(), Name: "g", ProjectID: "p", UserID: "u", Policy: policy}
	var insts []*store.Instance
	err = d.WithTx(ctx, func(tx *sql.Tx) error {
		if err := st.CreateServerGroup(ctx, tx, g); err != nil {
			return err
		}
		for i := 0; i < members; i++ {
			task := &store.Task{ID: NewTaskID(), Kind: kindBuild}
			inst := &store.Instance{UUID: newUUID(), ProjectID: "p", UserID: "u", Name: fmt.Sprint("m", i), VMState: states.Building,
				Flavor: store.InstanceFlavor{ID: "1", VCPUs: 1, MemoryMB: 64, RootGB: 1}, TaskID: &task.ID, Task: task, ReservationID: newUUID()}
			if err := st.InsertInstance(ctx, tx, inst); err != nil {
				return err
			}
			if err := st.AddGroupMember(ctx, tx, g.ID, inst.UUID); err != nil {
				return err
			}
			insts = append(insts, inst)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, pl, g, insts
}
