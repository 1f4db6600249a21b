package conductor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

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
	st := store.New(d)
	pl, err := placement.New(service.Deps{DB: d}, placement.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const hosts, members = 4, 12
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
	g := &store.ServerGroup{UUID: newUUID(), Name: "g", ProjectID: "p", UserID: "u", Policy: "anti-affinity"}
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
