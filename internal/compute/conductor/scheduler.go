package conductor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/scheduler"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// The scheduling steps of the conductor's tasks: a request spec from the
// instance and its task, the scheduler (internal/compute/scheduler) to
// choose and claim in placement, and the choice written with the task's
// next step. Allocations follow the instance:
//
//	build, unshelve    instance consumer claims the chosen node
//	resize, migrate,   the instance's allocations move to the migration
//	live migrate       record's uuid (consumer) and the instance claims
//	                   the target, in one placement transaction; confirm
//	                   (or the end of a live migration) drops the
//	                   migration's, revert moves them back
//	evacuate           the instance holds source and target until the
//	                   source host is back (or deleted) and cleaned up
//	                   (evacuate.go)
//	delete, shelve     the task's last step removes them
//	offload, failure
//
// A periodic audit (audit.go) repairs whatever drift a crash leaves.

// ErrNoValidHost is matched by every scheduling failure.
var ErrNoValidHost = scheduler.ErrNoValidHost

// hostSource lists the compute nodes for the scheduler.
type hostSource struct{ c *Conductor }

// Hosts implements scheduler.HostSource: the list read at most
// HostCacheTTL ago and since the last HostsChanged, else read again.
// The hosts are shared between decisions, which never change them
// (the scheduler copies a host before it changes its free resources).
func (h hostSource) Hosts(ctx context.Context) ([]*scheduler.Host, error) {
	c := h.c
	gen := hostsGen.Load()
	c.hostsMu.Lock()
	defer c.hostsMu.Unlock()
	if c.hosts != nil && c.hostsGen == gen && time.Since(c.hostsAt) < c.cfg.HostCacheTTL {
		return c.hosts, nil
	}
	at := time.Now()
	hosts, err := h.read(ctx)
	if err != nil {
		return nil, err
	}
	c.hosts, c.hostsGen, c.hostsAt = hosts, gen, at
	return hosts, nil
}

// hostsGen counts HostsChanged calls in this process.
var hostsGen atomic.Int64

// HostsChanged makes every conductor of this process read its host list
// again at the next decision: a service was enabled, disabled, forced
// down or deleted, a host joined or left an aggregate, or an aggregate's
// zone changed. Conductors of other processes see the change within
// HostCacheTTL.
func HostsChanged() { hostsGen.Add(1) }

func (h hostSource) read(ctx context.Context) ([]*scheduler.Host, error) {
	c := h.c
	svcs, err := c.st.ListServicesQ(ctx, c.st.DB().Reader(), "nova-compute")
	if err != nil {
		return nil, err
	}
	nodes, err := c.st.ListNodes(ctx, nil)
	if err != nil {
		return nil, err
	}
	aggs, err := c.st.ListAggregates(ctx)
	if err != nil {
		return nil, err
	}
	byHost := map[string]*store.Service{}
	for _, s := range svcs {
		byHost[s.Host] = s
	}
	aggsOf := map[string][]*scheduler.Aggregate{}
	for _, a := range aggs {
		sa := &scheduler.Aggregate{UUID: a.UUID, Name: a.Name, Metadata: a.Metadata}
		for _, host := range a.Hosts {
			aggsOf[host] = append(aggsOf[host], sa)
		}
	}
	now := time.Now()
	out := make([]*scheduler.Host, 0, len(nodes))
	for _, n := range nodes {
		s := byHost[n.Host]
		if s == nil {
			continue
		}
		out = append(out, &scheduler.Host{Host: n.Host, Node: n.HypervisorHostname, Provider: n.UUID,
			Up: ServiceUp(s, c.cfg.ServiceDownTime, now), Disabled: s.Disabled, HypervisorType: n.HypervisorType,
			Aggregates: aggsOf[n.Host]})
	}
	return out, nil
}

// Migration types (os-migrations) by task kind.
var migrationTypes = map[string]string{
	kindResize: "resize", kindMigrate: "migration", kindLiveMigrate: "live-migration", kindEvacuate: "evacuation",
}

func isMove(kind string) bool { _, ok := migrationTypes[kind]; return ok }

// flavorResources is what a flavor needs from placement, with its
// resources:CLASS=N and trait:NAME=required|forbidden extra specs.
func flavorResources(f store.InstanceFlavor) (res map[string]int64, required, forbidden []string) {
	disk := f.EphemeralGB + (f.Swap+1023)/1024
	if !f.VolumeBacked {
		disk += f.RootGB // a volume-backed server's root disk is its volume
	}
	res = map[string]int64{"VCPU": f.VCPUs, "MEMORY_MB": f.MemoryMB, "DISK_GB": disk}
	for k, v := range f.ExtraSpecs {
		if rc, ok := strings.CutPrefix(k, "resources:"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				res[rc] = n
			}
		}
		if t, ok := strings.CutPrefix(k, "trait:"); ok {
			switch v {
			case "required":
				required = append(required, t)
			case "forbidden":
				forbidden = append(forbidden, t)
			}
		}
	}
	for rc, n := range res {
		if n == 0 {
			delete(res, rc)
		}
	}
	slices.Sort(required)
	slices.Sort(forbidden)
	return res, required, forbidden
}

// requestSpec builds the scheduler's request for the task's instance.
func (c *Conductor) requestSpec(ctx context.Context, r *run) (*scheduler.Spec, error) {
	i := r.inst
	f := i.Flavor
	if r.task.NewFlavor != nil {
		f = *r.task.NewFlavor
	}
	res, req, forb := flavorResources(f)
	spec := &scheduler.Spec{ProjectID: i.ProjectID, UserID: i.UserID, Resources: res, RequiredTraits: req, ForbiddenTraits: forb,
		ExtraSpecs: f.ExtraSpecs, ForceHost: r.task.Args["host"], ForceNode: r.task.Args["node"]}
	if i.AvailabilityZone != nil {
		spec.Zone = *i.AvailabilityZone
	}
	if s := r.task.Args["image_props"]; s != "" {
		_ = json.Unmarshal([]byte(s), &spec.Image)
	}
	var g *store.ServerGroup
	var err error
	if !r.noGroup {
		if g, err = c.st.InstanceGroup(ctx, i.UUID); err != nil {
			return nil, err
		}
	}
	if g != nil {
		others := slices.DeleteFunc(slices.Clone(g.Members), func(u string) bool { return u == i.UUID })
		members, err := c.st.HostsOf(ctx, others)
		if err != nil {
			return nil, err
		}
		spec.Group = &scheduler.Group{UUID: g.UUID, Policy: g.Policy, MaxServerPerHost: int(g.Rules["max_server_per_host"]), Members: members}
	}
	hint := func(key string) ([]string, error) {
		v := r.task.Args[key]
		if v == "" {
			return nil, nil
		}
		hosts, err := c.st.HostsOf(ctx, strings.Split(v, ","))
		if err != nil {
			return nil, err
		}
		out := sortedKeys(hosts)
		if len(out) == 0 && key == "same_host" {
			out = []string{""} // the named servers have no host: nothing matches
		}
		return out, nil
	}
	if spec.SameHost, err = hint("same_host"); err != nil {
		return nil, err
	}
	if spec.DifferentHost, err = hint("different_host"); err != nil {
		return nil, err
	}
	return spec, nil
}

// keyLocks serialises scheduling per group and per multi-create inside
// this conductor, so two members of an anti-affinity group never pick
// the same host between filtering and claiming, and one sibling of a
// multi-create schedules the whole request.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// batchErr remembers a failed multi-create for its siblings.
	batchErr map[string]error
}

func (k *keyLocks) lock(keys ...string) func() {
	var held []*sync.Mutex
	slices.Sort(keys)
	for _, key := range slices.Compact(keys) {
		if key == "" {
			continue
		}
		k.mu.Lock()
		if k.locks == nil {
			k.locks = map[string]*sync.Mutex{}
		}
		l := k.locks[key]
		if l == nil {
			l = &sync.Mutex{}
			k.locks[key] = l
		}
		k.mu.Unlock()
		l.Lock()
		held = append(held, l)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}
}

func (k *keyLocks) failed(key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.batchErr[key]
}

func (k *keyLocks) setFailed(key string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.batchErr == nil {
		k.batchErr = map[string]error{}
	}
	k.batchErr[key] = err
	time.AfterFunc(10*time.Minute, func() {
		k.mu.Lock()
		delete(k.batchErr, key)
		k.mu.Unlock()
	})
}

// excludeCurrent makes the scheduler pick another host than the current one.
func excludeCurrent(r *run, spec *scheduler.Spec) {
	if h := r.inst.HostName(); h != "" {
		spec.IgnoreHosts = append(spec.IgnoreHosts, h)
	}
}

// scheduleStep picks a host and claims it in placement, then writes the
// choice with the task's next step. A target host named in the task
// (admin request) is the only candidate.
func scheduleStep(adjust func(*run, *scheduler.Spec)) step {
	return step{name: "schedule", run: func(ctx context.Context, r *run) error {
		return r.c.schedule(ctx, r, adjust)
	}, undo: unschedule}
}

func (c *Conductor) schedule(ctx context.Context, r *run, adjust func(*run, *scheduler.Spec)) error {
	// The group's members are read under the group's lock, so a member
	// scheduled concurrently by this conductor is seen on its host.
	groupKey, batchKey := "", ""
	g, err := c.st.InstanceGroup(ctx, r.inst.UUID)
	if err != nil {
		return err
	}
	if g != nil {
		groupKey = "group/" + g.UUID
	}
	// A server joins its group when it is created and never changes it:
	// without one now, requestSpec need not look again.
	r.noGroup = g == nil
	if r.task.Kind == kindBuild {
		batchKey = "batch/" + r.inst.ReservationID
	}
	unlock := c.locks.lock(groupKey, batchKey)
	defer unlock()
	// The lock covers this conductor only: a member placed meanwhile by
	// another conductor is found when the choice is committed, and the
	// decision is made again with it.
	for try := 1; ; try++ {
		spec, err := c.requestSpec(ctx, r)
		if err != nil {
			return err
		}
		if adjust != nil {
			adjust(r, spec)
		}
		r.group, r.siblings = spec.Group, nil
		var chosen *scheduler.Host
		switch {
		case r.task.Kind == kindBuild:
			chosen, err = c.scheduleBuild(ctx, r, spec)
		case isMove(r.task.Kind):
			chosen, err = c.scheduleMove(ctx, r, spec)
		default:
			chosen, err = c.scheduleOne(ctx, r, spec)
		}
		if err != nil {
			return err
		}
		err = c.commitChoice(ctx, r, chosen)
		if !errors.Is(err, errGroupRace) {
			return err
		}
		if try == groupRetries {
			// A scheduling failure like any other: the server goes to
			// ERROR with Nova's fault, the claims were given back.
			return &scheduler.NoValidHostError{Reason: fmt.Sprintf("Exceeded max scheduling attempts %d for instance %s. Last exception: %v.",
				groupRetries, r.inst.UUID, err)}
		}
		r.log.Info("server group member placed concurrently; scheduling again", "group", spec.Group.UUID, "attempt", try)
	}
}

// groupRetries bounds the decisions of one schedule step when other
// conductors keep placing members of its group.
const groupRetries = 5

// errGroupRace: a hard (anti-)affinity choice no longer holds when it
// is committed (another conductor placed a member meanwhile).
var errGroupRace = errors.New("server group policy no longer holds for the chosen host")

// siblingChoice is the host chosen for another instance of a
// multi-create.
type siblingChoice struct {
	uuid, taskID, host, node string
}

// checkGroup verifies, inside the transaction that records the choice
// and with the group's row locked, that the hosts chosen (batch:
// instance -> host) keep the group's hard policy with its other members
// as they are now.
func (c *Conductor) checkGroup(ctx context.Context, tx *sql.Tx, g *scheduler.Group, batch map[string]string) error {
	if g == nil || g.Policy != "affinity" && g.Policy != "anti-affinity" {
		return nil
	}
	hosts, err := c.st.LockGroupHosts(ctx, tx, g.UUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the group was deleted meanwhile
	}
	if err != nil {
		return err
	}
	per := map[string]int{}
	for u, h := range hosts {
		if _, mine := batch[u]; !mine && h != "" {
			per[h]++
		}
	}
	for _, h := range batch {
		per[h]++
	}
	switch g.Policy {
	case "anti-affinity":
		limit := max(g.MaxServerPerHost, 1)
		for _, h := range batch {
			if per[h] > limit {
				return fmt.Errorf("%w: %d members on %s (at most %d)", errGroupRace, per[h], h, limit)
			}
		}
	case "affinity":
		if len(per) > 1 {
			return fmt.Errorf("%w: members on %d hosts", errGroupRace, len(per))
		}
	}
	return nil
}

// retryWarmup repeats a scheduling attempt while a just-started
// conductor has no host yet (hosts register within moments).
func (c *Conductor) retryWarmup(ctx context.Context, try func() error) error {
	err := try()
	for errors.Is(err, ErrNoValidHost) && c.warmingUp() {
		hosts, herr := hostSource{c}.Hosts(ctx)
		if herr != nil || len(hosts) > 0 && c.providersKnown(hosts) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		err = try()
	}
	return err
}

// providersKnown reports whether every host's provider was written.
func (c *Conductor) providersKnown(hosts []*scheduler.Host) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hosts {
		if _, ok := c.provs[h.Host]; !ok {
			return false
		}
	}
	return true
}

func (c *Conductor) claimFor(consumers []string, project, user string) scheduler.ClaimFunc {
	return func(ctx context.Context, i int, allocs map[string]map[string]int64) error {
		return c.pl.Claim(ctx, placement.ConsumerAllocations{Consumer: consumers[i], ProjectID: project, UserID: user, Allocations: allocs}, nil)
	}
}

// scheduleOne schedules a single instance (unshelve).
func (c *Conductor) scheduleOne(ctx context.Context, r *run, spec *scheduler.Spec) (*scheduler.Host, error) {
	var sels []scheduler.Selection
	err := c.retryWarmup(ctx, func() error {
		var err error
		sels, err = c.sched.Schedule(ctx, hostSource{c}, spec, 1, c.claimFor([]string{r.inst.UUID}, r.inst.ProjectID, r.inst.UserID))
		return err
	})
	if err != nil {
		return nil, err
	}
	return sels[0].Host, nil
}

// scheduleBuild schedules every pending instance of the request (a
// multi-create) at once; its siblings then find their host chosen.
func (c *Conductor) scheduleBuild(ctx context.Context, r *run, spec *scheduler.Spec) (*scheduler.Host, error) {
	if r.task.Args[ArgBatch] == "1" {
		// The request made this server alone: no sibling chooses for it
		// or waits to be chosen for.
		return c.scheduleOne(ctx, r, spec)
	}
	fresh, err := c.st.GetInstance(ctx, nil, r.inst.UUID)
	if err != nil {
		return nil, err
	}
	if h := fresh.HostName(); h != "" {
		if _, allocs, err := c.pl.Allocations(ctx, fresh.UUID); err == nil && len(allocs) > 0 {
			node := ""
			if fresh.Node != nil {
				node = *fresh.Node
			}
			return &scheduler.Host{Host: h, Node: node}, nil // chosen with a sibling
		}
	}
	if err := c.locks.failed(r.inst.ReservationID); err != nil {
		return nil, err
	}
	batch := []*store.Instance{r.inst}
	if sibs, err := c.st.ListInstances(ctx, store.InstanceFilter{ReservationID: r.inst.ReservationID, ProjectID: r.inst.ProjectID}); err == nil {
		for _, s := range sibs {
			if s.UUID != r.inst.UUID && s.HostName() == "" && s.VMState == states.Building && s.Task != nil &&
				s.Task.Kind == kindBuild && (s.Task.Step == "" || s.Task.Step == "schedule") {
				batch = append(batch, s)
			}
		}
	}
	consumers := make([]string, len(batch))
	for i, b := range batch {
		consumers[i] = b.UUID
	}
	var sels []scheduler.Selection
	err = c.retryWarmup(ctx, func() error {
		var err error
		sels, err = c.sched.Schedule(ctx, hostSource{c}, spec, len(batch), c.claimFor(consumers, r.inst.ProjectID, r.inst.UserID))
		if err != nil {
			for i := range sels {
				_ = c.pl.DeleteAllocations(context.WithoutCancel(ctx), consumers[i])
			}
		}
		return err
	})
	if err != nil {
		if len(batch) > 1 {
			c.locks.setFailed(r.inst.ReservationID, err)
		}
		return nil, err
	}
	for i := 1; i < len(batch); i++ {
		b, h := batch[i], sels[i].Host
		r.siblings = append(r.siblings, siblingChoice{uuid: b.UUID, taskID: *b.TaskID, host: h.Host, node: h.Node})
	}
	return sels[0].Host, nil
}

// scheduleMove schedules a resize, migration, live migration or
// evacuation: the source allocations move to the migration record.
func (c *Conductor) scheduleMove(ctx context.Context, r *run, spec *scheduler.Spec) (*scheduler.Host, error) {
	if r.task.Args == nil {
		r.task.Args = map[string]string{}
	}
	mig := r.task.Args["migration_uuid"]
	if mig == "" {
		mig = newUUID()
		r.task.Args["migration_uuid"] = mig
	}
	if r.task.Kind == kindEvacuate {
		claim, err := c.evacuationClaim(ctx, r.inst)
		if err != nil {
			return nil, err
		}
		sels, err := c.sched.Schedule(ctx, hostSource{c}, spec, 1, claim)
		if err != nil {
			return nil, err
		}
		return sels[0].Host, nil
	}
	// A repeated step finds the source already moved to the migration.
	_, src, err := c.pl.Allocations(ctx, mig)
	if err != nil {
		return nil, err
	}
	if len(src) == 0 {
		if _, src, err = c.pl.Allocations(ctx, r.inst.UUID); err != nil {
			return nil, err
		}
	}
	i := r.inst
	claim := func(ctx context.Context, _ int, allocs map[string]map[string]int64) error {
		return c.pl.ClaimMany(ctx, []placement.ConsumerAllocations{
			{Consumer: mig, ProjectID: i.ProjectID, UserID: i.UserID, ConsumerType: "MIGRATION", Allocations: src},
			{Consumer: i.UUID, ProjectID: i.ProjectID, UserID: i.UserID, ConsumerType: "INSTANCE", Allocations: allocs},
		})
	}
	sels, err := c.sched.Schedule(ctx, hostSource{c}, spec, 1, claim)
	if err != nil {
		return nil, err
	}
	return sels[0].Host, nil
}

// commitChoice writes the chosen host with the next step (and, for a
// move, its migration record) in one transaction.
func (c *Conductor) commitChoice(ctx context.Context, r *run, chosen *scheduler.Host) error {
	next := r.nextStep()
	r.task.SourceHost = r.inst.HostName()
	if r.task.NewFlavor != nil && r.task.OldFlavor == nil {
		old := r.inst.Flavor
		r.task.OldFlavor = &old
	}
	r.task.Step = next
	set := store.Set{"host": chosen.Host, "node": chosen.Node, "task": r.task}
	if r.task.NewFlavor != nil {
		set["flavor"] = *r.task.NewFlavor
	}
	var lost []string // siblings whose task changed meanwhile
	err := c.st.DB().WithTx(ctx, func(tx *sql.Tx) error {
		lost = lost[:0]
		batch := map[string]string{r.inst.UUID: chosen.Host}
		for _, s := range r.siblings {
			batch[s.uuid] = s.host
		}
		if err := c.checkGroup(ctx, tx, r.group, batch); err != nil {
			return err
		}
		for _, s := range r.siblings {
			err := c.st.UpdateInstance(ctx, tx, s.uuid, store.Cond{TaskID: s.taskID}, store.Set{"host": s.host, "node": s.node})
			if errors.Is(err, store.ErrPreempted) || errors.Is(err, store.ErrNotFound) {
				lost = append(lost, s.uuid)
				continue
			}
			if err != nil {
				return err
			}
		}
		if err := c.st.UpdateInstance(ctx, tx, r.inst.UUID, r.cond(), set); err != nil {
			return err
		}
		if mt, ok := migrationTypes[r.task.Kind]; ok {
			m := &store.MigrationRecord{UUID: r.task.Args["migration_uuid"], InstanceUUID: r.inst.UUID, ProjectID: r.inst.ProjectID,
				UserID: r.inst.UserID, Type: mt, Status: "pre-migrating", SourceCompute: r.task.SourceHost, SourceNode: nodeOf(r.inst),
				DestCompute: chosen.Host, DestNode: chosen.Node, DestHost: chosen.Host, OldFlavorID: r.inst.Flavor.ID}
			if r.task.Kind == kindLiveMigrate {
				m.Status = "preparing"
			}
			m.NewFlavorID = m.OldFlavorID
			if r.task.NewFlavor != nil {
				m.NewFlavorID = r.task.NewFlavor.ID
			}
			return c.st.UpsertMigration(ctx, tx, m)
		}
		return nil
	})
	if err != nil {
		// Pre-empted (deleted meanwhile), a group race, or failed: give
		// the claims back.
		c.releaseClaim(context.WithoutCancel(ctx), r)
		lost = nil
		for _, s := range r.siblings {
			lost = append(lost, s.uuid)
		}
	}
	for _, u := range lost {
		if derr := c.pl.DeleteAllocations(context.WithoutCancel(ctx), u); derr != nil && !errors.Is(derr, placement.ErrNotFound) {
			r.log.Warn("release sibling's claim", "sibling", u, "err", derr)
		}
	}
	if err != nil {
		return err
	}
	r.persisted = true
	r.inst.Host, r.inst.Node = &chosen.Host, &chosen.Node
	if r.task.NewFlavor != nil {
		r.inst.Flavor = *r.task.NewFlavor
	}
	r.log.Debug("scheduled", "host", chosen.Host)
	return nil
}

func nodeOf(i *store.Instance) string {
	if i.Node == nil {
		return ""
	}
	return *i.Node
}

// releaseClaim gives back what the schedule step claimed: a move's
// allocations return from the migration to the instance; any other
// claim is dropped.
func (c *Conductor) releaseClaim(ctx context.Context, r *run) {
	if r.task.Kind == kindEvacuate {
		if err := c.releaseEvacuation(ctx, r); err != nil {
			r.log.Warn("return evacuation allocations to the source", "err", err)
		}
		return
	}
	if mig := r.task.Args["migration_uuid"]; mig != "" && isMove(r.task.Kind) {
		if err := c.moveBack(ctx, r.inst, mig); err != nil {
			r.log.Warn("return allocations from migration", "migration", mig, "err", err)
		}
		return
	}
	if err := c.pl.DeleteAllocations(ctx, r.inst.UUID); err != nil && !errors.Is(err, placement.ErrNotFound) {
		r.log.Warn("release allocations", "err", err)
	}
}

// moveBack gives the instance the migration's allocations again and
// empties the migration (revert, failed move).
func (c *Conductor) moveBack(ctx context.Context, i *store.Instance, mig string) error {
	_, src, err := c.pl.Allocations(ctx, mig)
	if err != nil || len(src) == 0 {
		return err
	}
	return c.pl.ClaimMany(ctx, []placement.ConsumerAllocations{
		{Consumer: i.UUID, ProjectID: i.ProjectID, UserID: i.UserID, Allocations: src},
		{Consumer: mig, ProjectID: i.ProjectID, UserID: i.UserID},
	})
}

// dropMigration removes a finished move's source allocations.
func (c *Conductor) dropMigration(ctx context.Context, mig string) error {
	if mig == "" {
		return nil
	}
	err := c.pl.DeleteAllocations(ctx, mig)
	if errors.Is(err, placement.ErrNotFound) {
		return nil
	}
	return err
}

// unschedule undoes the schedule step: allocations back, host and
// flavor columns back.
func unschedule(ctx context.Context, r *run) error {
	r.c.releaseClaim(ctx, r)
	if mig := r.task.Args["migration_uuid"]; mig != "" && isMove(r.task.Kind) {
		// A live migration that failed before any host was asked is
		// "failed"; once the hosts took part it is "error", as Nova's
		// rollback of a live migration sets it.
		status := "error"
		if r.task.Kind == kindLiveMigrate && r.task.Step == rebindStep.name {
			status = "failed"
		}
		if s := r.task.Args[argMigrationStatus]; s != "" {
			status = s
		}
		if err := r.c.st.SetMigrationStatus(ctx, mig, status); err != nil {
			r.log.Warn("migration status", "err", err)
		}
	}
	set := store.Set{"host": nullable(r.task.SourceHost), "node": nullable(r.task.SourceHost)}
	if r.task.OldFlavor != nil {
		set["flavor"] = *r.task.OldFlavor
		r.inst.Flavor = *r.task.OldFlavor
	}
	src := r.task.SourceHost
	r.inst.Host = &src
	if src == "" {
		r.inst.Host = nil
	}
	r.extra = mergeSet(r.extra, set)
	return nil
}

// migrationStep ends a move's record with status; drop removes the
// source allocations (live migration, evacuation: the source is gone).
func migrationStep(name, status string, drop bool) step {
	return step{name: name, run: func(ctx context.Context, r *run) error {
		mig := r.task.Args["migration_uuid"]
		if mig == "" {
			return nil
		}
		if drop {
			if err := r.c.dropMigration(ctx, mig); err != nil {
				return err
			}
		}
		if err := r.c.st.SetMigrationStatus(ctx, mig, status); err != nil {
			return err
		}
		if r.task.Kind == kindEvacuate {
			r.c.evacuatedFrom(r.task.SourceHost)
		}
		return nil
	}}
}

// pendingMigration is the migration uuid of a resize awaiting
// confirmation.
func pendingMigration(i *store.Instance) string {
	if i.Migration == nil || i.Migration.Args == nil {
		return ""
	}
	return i.Migration.Args["migration_uuid"]
}

// confirmStep drops the source allocations of a confirmed resize.
var confirmStep = step{name: "confirm", run: func(ctx context.Context, r *run) error {
	mig := pendingMigration(r.inst)
	if err := r.c.dropMigration(ctx, mig); err != nil {
		return err
	}
	if mig != "" {
		return r.c.st.SetMigrationStatus(ctx, mig, "confirmed")
	}
	return nil
}}

// releaseStep removes an instance's allocations (and those of a pending
// resize's migration): the last step of delete and shelve offload.
var releaseStep = step{name: "release_resources", run: func(ctx context.Context, r *run) error {
	if err := r.c.dropMigration(ctx, pendingMigration(r.inst)); err != nil {
		return err
	}
	err := r.c.pl.DeleteAllocations(ctx, r.inst.UUID)
	if errors.Is(err, placement.ErrNotFound) {
		return nil
	}
	return err
}}

func virtResources(r rpc.Resources) virt.Resources {
	return virt.Resources{VCPUs: r.VCPUs, MemoryMB: r.MemoryMB, DiskGB: r.DiskGB}
}

var _ = fmt.Sprintf
