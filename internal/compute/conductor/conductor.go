// Package conductor drives every long action on a server as a persisted
// task. The API writes the instance row with its task (vm_state,
// task_state, task JSON and the instance action) in one transaction and
// kicks a conductor; the conductor runs the task's steps, writing the
// next step after each one, and asks the host's compute agent (over the
// bus, internal/compute/rpc) to do the hypervisor work.
//
// vm_state / task_state while tasks run (API status in capitals):
//
//	                  build: schedule → network → block devices → spawn
//	(create) ─▶ building/scheduling ─────────────────────────▶ active (ACTIVE)
//	                 │ any step fails: undo done steps                 │
//	                 ▼                                                 │
//	             error (ERROR, fault set, no host)                     │
//	                                                                   │
//	active ──stop/powering-off──▶ stopped ──start/powering-on──▶ active
//	active ──pause/pausing──▶ paused ──unpause/unpausing──▶ active
//	active ──suspend/suspending──▶ suspended ──resume/resuming──▶ active
//	active|stopped|error ──rescue/rescuing──▶ rescued ──unrescue──▶ active
//	active|stopped|… ──reboot/rebooting(_hard)──▶ active
//	active|stopped|error ──rebuild/rebuilding: destroy → [re-image boot volume] → spawn──▶ active|stopped
//	active|stopped ──resize|migrate/resize_prep: schedule → destroy → spawn──▶ resized (VERIFY_RESIZE)
//	resized ──confirmResize──▶ active|stopped
//	resized ──revertResize/resize_reverting: destroy → spawn──▶ active|stopped
//	active|paused ──os-migrateLive/migrating: schedule → prepare → migrate → finish → destroy──▶ active|paused
//	active|stopped|error (host down) ──evacuate/rebuilding: schedule → spawn──▶ active|stopped
//	active|stopped|… ──shelve/shelving: power_off → offload──▶ shelved_offloaded
//	shelved ──shelveOffload/shelving_offloading──▶ shelved_offloaded
//	shelved(_offloaded) ──unshelve/unshelving: schedule → network → spawn──▶ active
//	any ──delete/deleting: destroy → network──▶ deleted (DELETED)
//
// A failed action other than build, rebuild, evacuate or delete puts the
// server back in the vm_state it had, with the failure in the action's
// event; the failed ones above end in error with a fault.
//
// One task per server at a time: the API only starts a task on a row
// without one (delete excepted: it replaces any task, and every step of
// the old one then finds its task id gone and stops). Conductors claim a
// task with a lease they renew; a restarted conductor picks up tasks
// whose lease ran out and re-runs their current step, which is safe
// because every agent operation is idempotent. Nothing stays in a task
// state: each task either reaches its end state or fails cleanly.
package conductor

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/scheduler"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes a conductor; zero values get defaults.
type Config struct {
	// Host names this conductor's host in os-services (default "kumo").
	Host string
	// Lease is how long a claimed task is this conductor's without
	// renewal (default 60s); a restarted conductor waits at most this
	// long before resuming the tasks of its previous life.
	Lease time.Duration
	// ScanInterval is how often pending tasks are looked for (default 10s).
	ScanInterval time.Duration
	// ReportInterval is the heartbeat of the conductor's own services
	// (default 10s).
	ReportInterval time.Duration
	// ServiceDownTime is how long a service may miss heartbeats before it
	// counts as down (Nova's service_down_time, default 60s).
	ServiceDownTime time.Duration
	// OpTimeout bounds one agent operation (default 10 minutes).
	OpTimeout time.Duration
	// Retries is how often a step is retried after a retryable failure
	// (default 3).
	Retries int
	// VIFPluggingTimeout is how long a build waits for the networking
	// service to report the server's ports plugged (Nova's
	// vif_plugging_timeout, default 300s); negative: do not wait.
	VIFPluggingTimeout time.Duration
	// VIFPluggingNotFatal lets a build go on after the timeout (Nova's
	// vif_plugging_is_fatal = false); by default it fails.
	VIFPluggingNotFatal bool
	// ReclaimInterval is how long a soft-deleted server waits before it
	// is deleted for good (Nova's reclaim_instance_interval); 0 turns
	// reclaim off.
	ReclaimInterval time.Duration
	// Images deletes snapshot images (failed snapshots, unshelved
	// servers); nil leaves them.
	Images ImageService
	// OnTaskEnd, when set, is called after every task ends (metrics,
	// tests); failure is nil on success.
	OnTaskEnd func(uuid, kind string, failure error)
	// Scheduler tunes the scheduler (zones, weighers, placement limit).
	Scheduler scheduler.Config
	// AuditInterval is how often allocations are audited against the
	// servers (default 5 minutes; audit.go).
	AuditInterval time.Duration
	// HostCacheTTL is how long the scheduler's host list (services,
	// nodes, aggregates) is reused before it is read again (default 1 s;
	// changes made through this process's API apply at once, see
	// HostsChanged).
	HostCacheTTL time.Duration
	// Metrics registers the conductor's metrics; nil skips them.
	Metrics prometheus.Registerer
	// Volumes is the block storage service for builds with volumes
	// (volumes.go); nil refuses them.
	Volumes VolumeService
	// VolumeWait bounds the wait for a new volume to become available
	// (default 180s, Nova's block_device_allocate_retries).
	VolumeWait time.Duration
}

func (c *Config) defaults() {
	if c.Host == "" {
		c.Host = "kumo"
	}
	if c.Lease <= 0 {
		c.Lease = 60 * time.Second
	}
	if c.ScanInterval <= 0 {
		c.ScanInterval = 10 * time.Second
	}
	if c.ReportInterval <= 0 {
		c.ReportInterval = 10 * time.Second
	}
	if c.ServiceDownTime <= 0 {
		c.ServiceDownTime = 60 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 10 * time.Minute
	}
	if c.Retries <= 0 {
		c.Retries = 3
	}
	if c.VIFPluggingTimeout == 0 {
		c.VIFPluggingTimeout = 300 * time.Second
	}
	if c.VolumeWait <= 0 {
		c.VolumeWait = 180 * time.Second
	}
	if c.AuditInterval <= 0 {
		c.AuditInterval = 5 * time.Minute
	}
	if c.HostCacheTTL <= 0 {
		c.HostCacheTTL = time.Second
	}
}

// Conductor runs server tasks.
type Conductor struct {
	cfg   Config
	st    *store.Store
	bus   *bus.Bus
	pl    *placement.Service
	sched *scheduler.Scheduler
	net   NetworkAllocator
	locks keyLocks
	audit *auditMetrics
	log   *slog.Logger
	owner string

	mu      sync.Mutex
	running map[string]bool
	again   map[string]bool
	nodes   map[string]rpc.HostReport  // last report per host, to skip unchanged node writes
	waiters map[string]chan struct{}   // closed by the next kick of the instance
	provs   map[string]provState       // last provider written per host
	known   map[string]bool            // hosts whose compute service row this conductor wrote
	pending map[string]*rpc.HostReport // steady reports waiting for the next batch (flushReports)
	seen    map[string]hostSeen        // last report per host (evacuate.go)
	// evacSources are hosts evacuated from, awaiting their cleanup.
	evacSources map[string]bool

	// The scheduler's host list (hostSource).
	hostsMu  sync.Mutex
	hosts    []*scheduler.Host
	hostsGen int64
	hostsAt  time.Time
	wg       sync.WaitGroup
	ctx      context.Context
	started  time.Time
}

// New returns a conductor scheduling over placement pl; net may be nil
// (NoNetwork).
func New(st *store.Store, b *bus.Bus, pl *placement.Service, net NetworkAllocator, cfg Config, log *slog.Logger) *Conductor {
	cfg.defaults()
	if net == nil {
		net = NoNetwork{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "conductor")
	return &Conductor{cfg: cfg, st: st, bus: b, pl: pl, sched: scheduler.New(pl, cfg.Scheduler, log), net: net, log: log,
		owner: cfg.Host + "/" + randomID(), running: map[string]bool{}, again: map[string]bool{},
		nodes: map[string]rpc.HostReport{}, waiters: map[string]chan struct{}{}, provs: map[string]provState{}, ctx: context.Background(),
		known: map[string]bool{}, pending: map[string]*rpc.HostReport{}, seen: map[string]hostSeen{}, evacSources: map[string]bool{},
		audit: newAuditMetrics(cfg.Metrics)}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewTaskID returns a fresh task id.
func NewTaskID() string { return randomID() }

// Run serves kicks and host reports, resumes pending tasks and
// heartbeats until ctx is done, then waits for running tasks to stop.
func (c *Conductor) Run(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	c.started = time.Now()
	c.mu.Unlock()
	sub, err := c.bus.Subscribe(rpc.SubjectConductor, rpc.QueueConductor,
		map[string]bus.Version{rpc.MsgKick: rpc.KickVersion, rpc.MsgHostReport: rpc.ReportVersion}, c.handle)
	if err != nil {
		return fmt.Errorf("conductor: subscribe: %w", err)
	}
	defer func() {
		_ = sub.Unsubscribe()
		c.wg.Wait()
	}()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.flushLoop(ctx)
	}()
	// Tasks left by an earlier conductor are resumed at the first scan,
	// one interval from now, so that the hosts have reported by then.
	c.heartbeat(ctx)
	scan := time.NewTicker(c.cfg.ScanInterval)
	defer scan.Stop()
	beat := time.NewTicker(c.cfg.ReportInterval)
	defer beat.Stop()
	renew := time.NewTicker(c.cfg.Lease / 3)
	defer renew.Stop()
	audit := time.NewTicker(c.cfg.AuditInterval)
	defer audit.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-audit.C:
			if _, err := c.Audit(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("allocation audit", "err", err)
			}
		case <-scan.C:
			c.scan(ctx)
			c.reclaim(ctx)
		case <-beat.C:
			c.heartbeat(ctx)
		case <-renew.C:
			if err := c.st.RenewLeases(ctx, c.owner, c.cfg.Lease); err != nil && ctx.Err() == nil {
				c.log.Warn("renew task leases", "err", err)
			}
		}
	}
}

func (c *Conductor) heartbeat(ctx context.Context) {
	for _, b := range []string{"nova-conductor", "nova-scheduler"} {
		if _, err := c.st.Heartbeat(ctx, c.cfg.Host, b, b[len("nova-"):], newUUID(), 1); err != nil && ctx.Err() == nil {
			c.log.Warn("heartbeat", "binary", b, "err", err)
		}
	}
}

// scan starts every task no live conductor holds.
func (c *Conductor) scan(ctx context.Context) {
	pending, err := c.st.PendingTasks(ctx, c.owner)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("scan for pending tasks", "err", err)
		}
		return
	}
	for _, p := range pending {
		c.Kick(p.UUID)
	}
}

func (c *Conductor) handle(ctx context.Context, m *bus.Message) (any, error) {
	switch m.Type {
	case rpc.MsgKick:
		var k rpc.Kick
		if err := m.Decode(&k); err != nil {
			return nil, err
		}
		c.Kick(k.UUID)
	case rpc.MsgHostReport:
		var r rpc.HostReport
		if err := m.Decode(&r); err != nil {
			return nil, err
		}
		c.report(ctx, &r)
	}
	return nil, nil
}

// Kick runs the task of instance uuid now (or again once the running
// pass ends).
func (c *Conductor) Kick(uuid string) {
	c.mu.Lock()
	if w := c.waiters[uuid]; w != nil {
		close(w)
		delete(c.waiters, uuid)
	}
	if c.running[uuid] {
		c.again[uuid] = true
		c.mu.Unlock()
		return
	}
	c.running[uuid] = true
	ctx := c.ctx
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		for {
			c.process(ctx, uuid)
			c.mu.Lock()
			if c.again[uuid] && ctx.Err() == nil {
				delete(c.again, uuid)
				c.mu.Unlock()
				continue
			}
			delete(c.running, uuid)
			delete(c.again, uuid)
			c.mu.Unlock()
			return
		}
	}()
}

// waiter returns a channel the next Kick of the instance closes (an
// external event arrived), for steps that wait on something outside.
func (c *Conductor) waiter(uuid string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiters[uuid]
	if w == nil {
		w = make(chan struct{})
		c.waiters[uuid] = w
	}
	return w
}

func (c *Conductor) dropWaiter(uuid string) {
	c.mu.Lock()
	delete(c.waiters, uuid)
	c.mu.Unlock()
}

// Idle reports whether no task is running (for tests).
func (c *Conductor) Idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.running) == 0
}

// process claims and runs the current task of an instance.
func (c *Conductor) process(ctx context.Context, uuid string) {
	if ctx.Err() != nil {
		return
	}
	// The instance is read and its task claimed in one write
	// transaction: reads on the writer's connection find its page cache
	// current, where a reader connection after any write reloads it.
	var inst *store.Instance
	err := c.st.WithTx(ctx, func(tx *sql.Tx) error {
		var err error
		if inst, err = c.st.GetInstance(ctx, tx, uuid); err != nil {
			return err
		}
		if inst.Task == nil || inst.TaskID == nil {
			inst = nil
			return nil
		}
		return c.st.ClaimTaskTx(ctx, tx, uuid, *inst.TaskID, c.owner, c.cfg.Lease)
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrPreempted) {
			c.log.Warn("load and claim task", "instance", uuid, "err", err)
		}
		return
	}
	if inst == nil {
		return
	}
	k, ok := kinds[inst.Task.Kind]
	if !ok {
		c.log.Error("unknown task kind; failing it", "instance", uuid, "kind", inst.Task.Kind)
		k = kind{event: "conductor_unknown", fail: restore}
	}
	r := &run{c: c, inst: inst, task: inst.Task, log: c.log.With("instance", uuid, "task", inst.Task.Kind), extra: store.Set{}}
	r.execute(ctx, k)
}

// ---- task runner ----

// step is one unit of a task: run does it (idempotently); undo, when set,
// reverses it if a later step fails.
type step struct {
	name string
	run  func(ctx context.Context, r *run) error
	undo func(ctx context.Context, r *run) error
	// light steps are idempotent database work: the task's progress is
	// not written after them (a resumed task runs them again), which
	// saves a write transaction each.
	light bool
	// skip, when set and true, says the step has nothing to do for this
	// task: it is not run, and the progress written before it names the
	// step after it (none before the end of the task).
	skip func(r *run) bool
}

// skipped reports whether step s has nothing to do for r.
func (s step) skipped(r *run) bool { return s.skip != nil && s.skip(r) }

// kind is a task type: its steps, the columns it sets on success and on
// failure (after the done steps were undone).
type kind struct {
	event  string
	steps  []step
	finish func(r *run) store.Set
	fail   func(r *run, err error) store.Set
}

// run is one execution of a task.
type run struct {
	c     *Conductor
	inst  *store.Instance
	task  *store.Task
	log   *slog.Logger
	extra store.Set // columns to write with the next step
	power int       // power state from the last agent reply
	// persisted is set by a step that wrote its own advance (scheduling
	// commits its choice together with the next step).
	persisted bool
	// noop is set by a step that found nothing to do: like after a light
	// step, its advance is not written.
	noop bool
	// group and siblings are the schedule step's server group and the
	// hosts it chose for the rest of a multi-create, checked and written
	// with the choice (commitChoice).
	group    *scheduler.Group
	siblings []siblingChoice
	// noGroup: the schedule step found the instance in no server group.
	noGroup bool
}

// ArgBatch is the build task argument holding how many servers the
// create request made (tasks written before it have none: a
// multi-create is then assumed).
const ArgBatch = "batch"

// errPreempted stops a run whose task was replaced.
var errPreempted = store.ErrPreempted

func (r *run) cond() store.Cond { return store.Cond{TaskID: r.task.ID} }

func (r *run) execute(ctx context.Context, k kind) {
	start := 0
	for i, s := range k.steps {
		if s.name == r.task.Step {
			start = i
		}
	}
	r.log.Debug("running task", "step", r.task.Step)
	for i := start; i < len(k.steps); i++ {
		s := k.steps[i]
		r.noop = false
		if s.skipped(r) {
			continue
		}
		err := r.retry(ctx, s)
		if errors.Is(err, errPreempted) || ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("task failed", "step", s.name, "err", err)
			for j := i - 1; j >= 0; j-- {
				if u := k.steps[j].undo; u != nil {
					if uerr := u(ctx, r); uerr != nil {
						r.log.Warn("undo failed", "step", k.steps[j].name, "err", uerr)
					}
				}
			}
			r.end(ctx, k.fail(r, err), err)
			return
		}
		next := i + 1
		for next < len(k.steps) && k.steps[next].skipped(r) {
			next++
		}
		if next < len(k.steps) {
			if r.persisted {
				r.persisted = false
				continue
			}
			r.task.Step = k.steps[next].name
			if (s.light || r.noop) && len(r.extra) == 0 {
				continue
			}
			set := r.extra
			r.extra = store.Set{}
			set["task"] = r.task
			if err := r.c.st.UpdateInstance(ctx, nil, r.inst.UUID, r.cond(), set); err != nil {
				if !errors.Is(err, errPreempted) {
					r.log.Warn("persist step", "err", err)
				}
				return
			}
		}
	}
	set := store.Set{}
	if k.finish != nil {
		set = k.finish(r)
	}
	r.end(ctx, set, nil)
}

// retry runs a step, again after retryable failures.
func (r *run) retry(ctx context.Context, s step) error {
	var err error
	for attempt := 0; attempt <= r.c.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		err = s.run(ctx, r)
		var be *bus.Error
		if err == nil || !(errors.As(err, &be) && be.Retryable) {
			return err
		}
	}
	return err
}

// end finishes the task: columns of the outcome, the task cleared, the
// event closed, in one transaction.
func (r *run) end(ctx context.Context, set store.Set, failure error) {
	for k, v := range r.extra {
		if _, ok := set[k]; !ok {
			set[k] = v
		}
	}
	for k, v := range store.EndTask() {
		set[k] = v
	}
	msg := ""
	if failure != nil {
		msg = failure.Error()
	}
	err := r.c.st.DB().WithTx(ctx, func(tx *sql.Tx) error {
		if err := r.c.st.UpdateInstance(ctx, tx, r.inst.UUID, r.cond(), set); err != nil {
			return err
		}
		if r.task.EventID != 0 {
			return r.c.st.FinishEvent(ctx, tx, r.task.ActionID, r.task.EventID, msg, "")
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPreempted) {
		r.log.Warn("finish task", "err", err)
	}
	if err == nil && r.c.cfg.OnTaskEnd != nil {
		r.c.cfg.OnTaskEnd(r.inst.UUID, r.task.Kind, failure)
	}
}

// op asks the instance's host agent for an operation.
func (r *run) op(ctx context.Context, host, op string, mod func(*rpc.OpRequest)) (rpc.OpReply, error) {
	req := rpc.OpRequest{Op: op, Instance: r.spec()}
	creates := op == rpc.OpSpawn || op == rpc.OpResize || op == rpc.OpLivePrepare
	if creates && len(req.Instance.VIFs) == 0 && (r.task == nil || r.task.Kind != kindBuild) {
		// A build carries its new ports in the task (none when it has
		// none, so the boot path asks nothing more); rebuilds, resizes,
		// evacuations and unshelves plug the server's current ports, read
		// from the networking service.
		vifs, err := r.c.net.Interfaces(ctx, []string{r.inst.UUID})
		if err != nil {
			return rpc.OpReply{}, fmt.Errorf("interfaces of %s: %w", r.inst.UUID, err)
		}
		for _, v := range vifs[r.inst.UUID] {
			req.Instance.VIFs = append(req.Instance.VIFs, rpc.VIF{PortID: v.PortID, NetworkID: v.NetworkID, MAC: v.MAC})
		}
	}
	if creates {
		if err := r.spawnVolumes(ctx, &req); err != nil {
			return rpc.OpReply{}, err
		}
	}
	if mod != nil {
		mod(&req)
	}
	return r.c.Op(ctx, host, req)
}

// Op sends one operation to the agent of host.
func (c *Conductor) Op(ctx context.Context, host string, req rpc.OpRequest) (rpc.OpReply, error) {
	var reply rpc.OpReply
	if host == "" {
		return reply, fmt.Errorf("instance %s has no host", req.Instance.UUID)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	err := c.bus.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion, req, &reply)
	if errors.Is(err, bus.ErrNoResponders) {
		return reply, &bus.Error{Code: bus.CodeUnavailable, Message: "compute host " + host + " is not available", Retryable: true}
	}
	return reply, err
}

// spec is the instance as the agent should create it.
func (r *run) spec() rpc.Instance {
	i := r.inst
	f := i.Flavor
	s := rpc.Instance{UUID: i.UUID, Name: i.InstanceName(), Hostname: i.Hostname, VCPUs: int(f.VCPUs), MemoryMB: int(f.MemoryMB),
		RootGB: int(f.RootGB), EphemeralGB: int(f.EphemeralGB), SwapMB: int(f.Swap), ImageID: i.ImageRef,
		ConfigDrive: i.ConfigDrive != "", Metadata: i.Metadata}
	// Ephemeral and swap mappings replace the flavor's disks (Nova's
	// ephemeral and swap BDMs).
	if len(f.Ephemerals) > 0 {
		s.EphemeralGB = 0
		for _, e := range f.Ephemerals {
			s.Ephemerals = append(s.Ephemerals, rpc.Ephemeral{SizeGB: int(e.SizeGB), GuestFormat: e.GuestFormat})
			s.EphemeralGB += int(e.SizeGB)
		}
	}
	if f.SwapMB > 0 {
		s.SwapMB = int(f.SwapMB)
	}
	if img := shelvedImageID(i); img != "" {
		s.ImageID = img // an unshelve boots from the shelved snapshot
	}
	if i.UserData != nil {
		// The API keeps user_data as the client sent it, base64; the
		// guest's config drive holds the decoded bytes, as Nova's does.
		if b, err := base64.StdEncoding.DecodeString(*i.UserData); err == nil {
			s.UserData = b
		} else {
			s.UserData = []byte(*i.UserData)
		}
	}
	if i.KeyName != nil && i.KeyData != nil {
		s.PublicKeys = map[string]string{*i.KeyName: *i.KeyData}
	}
	if r.task != nil {
		s.AdminPass = r.task.Args["admin_pass"]
		if v := r.task.Args["vifs"]; v != "" {
			_ = json.Unmarshal([]byte(v), &s.VIFs)
		}
	}
	return s
}

// fault builds the fault recorded on a failed server.
func fault(err error) *store.Fault {
	return &store.Fault{Code: 500, Message: err.Error(), Created: time.Now().UTC()}
}

// restore is the failure outcome of actions that leave the server as it
// was: back to the previous vm_state, with the power state read again.
func restore(r *run, err error) store.Set {
	set := store.Set{}
	if r.task.PrevVMState != "" {
		set["vm_state"] = r.task.PrevVMState
	}
	if host := r.inst.HostName(); host != "" {
		if rep, ierr := r.c.Op(context.WithoutCancel(r.c.ctx), host, rpc.OpRequest{Op: rpc.OpInfo, Instance: rpc.Instance{UUID: r.inst.UUID}}); ierr == nil {
			set["power_state"] = rep.PowerState
		}
	}
	return set
}

// toError puts a server in error with a fault.
func toError(r *run, err error) store.Set {
	return store.Set{"vm_state": states.Error, "fault": fault(err), "progress": 0}
}

// ---- host reports and power-state sync ----

// report registers a host's service and node and syncs the power state
// of its instances. A steady report (a host this conductor registered,
// nothing changed but the guests' states) waits for the next batch:
// flushReports marks all of a batch's hosts seen in one transaction and
// reads their instances with one query, so that a thousand idle hosts
// cost a few statements a second instead of three per heartbeat.
func (c *Conductor) report(ctx context.Context, r *rpc.HostReport) {
	if r.Host == "" {
		return
	}
	digest := c.reportDigest(r)
	c.mu.Lock()
	last, seen := c.nodes[r.Host]
	nodeChanged := !seen || last.Resources != r.Resources || last.HostIP != r.HostIP || last.Driver != r.Driver
	if c.known[r.Host] && !nodeChanged && !r.Startup && c.providerCurrentLocked(r.Host, digest) && c.steadyLocked(r.Host) {
		s := c.seen[r.Host]
		s.at = time.Now()
		c.seen[r.Host] = s
		c.pending[r.Host] = r
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	svcUUID := newUUID()
	svc, err := c.st.Heartbeat(ctx, r.Host, "nova-compute", "compute", svcUUID, 1)
	if err != nil {
		c.log.Warn("register compute service", "host", r.Host, "err", err)
		return
	}
	if svc.UUID == svcUUID && seen {
		// Registered again after its service was deleted (with the node
		// and its resource provider): a new node and provider.
		nodeChanged = true
		c.mu.Lock()
		delete(c.provs, r.Host)
		c.mu.Unlock()
	}
	if nodeChanged {
		n := &store.Node{UUID: newUUID(), ServiceID: svc.ID, Host: r.Host, HypervisorHostname: r.HypervisorHostname,
			HypervisorType: hypervisorType(r.Driver), HypervisorVersion: 1000, VCPUs: int64(r.Resources.VCPUs),
			MemoryMB: int64(r.Resources.MemoryMB), LocalGB: int64(r.Resources.DiskGB), HostIP: r.HostIP}
		if err := c.st.UpsertNode(ctx, n); err != nil {
			c.log.Warn("register compute node", "host", r.Host, "err", err)
			return
		}
		HostsChanged()
		c.mu.Lock()
		c.nodes[r.Host] = rpc.HostReport{Resources: r.Resources, HostIP: r.HostIP, Driver: r.Driver}
		c.mu.Unlock()
	}
	if c.pl != nil {
		if err := c.syncProvider(ctx, r); err != nil && ctx.Err() == nil {
			c.log.Warn("sync resource provider", "host", r.Host, "err", err)
			return
		}
	}
	c.cleanupEvacuated(r, svc)
	c.mu.Lock()
	c.known[r.Host] = true
	c.mu.Unlock()
	insts, err := c.st.InstancesOnHosts(ctx, []string{r.Host})
	if err != nil {
		c.log.Warn("power sync", "host", r.Host, "err", err)
		return
	}
	c.syncPower(ctx, r, insts[r.Host])
}

// steadyLocked reports whether host's report needs nothing from the
// evacuation cleanup (evacuate.go): the host was not down or forced down
// when last seen, and no evacuation from it awaits its return. c.mu is
// held.
func (c *Conductor) steadyLocked(host string) bool {
	s, ok := c.seen[host]
	return ok && !s.forced && !s.retry && !s.running && !c.evacSources[host] && time.Since(s.at) <= c.cfg.ServiceDownTime
}

// reportBatchInterval is how long steady host reports wait to be handled
// together: well within any service down time, short enough that a
// guest that died is noticed promptly.
func (c *Conductor) reportBatchInterval() time.Duration {
	return min(time.Second, c.cfg.ReportInterval/4)
}

func (c *Conductor) flushLoop(ctx context.Context) {
	t := time.NewTicker(c.reportBatchInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.flushReports(ctx)
		}
	}
}

// flushReports handles the steady reports received since the last call.
func (c *Conductor) flushReports(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending
	c.pending = map[string]*rpc.HostReport{}
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	hosts := make([]string, 0, len(batch))
	for h := range batch {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	missing, err := c.st.TouchServices(ctx, "nova-compute", hosts)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("mark compute services seen", "hosts", len(hosts), "err", err)
		}
		return
	}
	if len(missing) > 0 {
		// Deleted through the API meanwhile: the next report registers
		// the host again.
		c.mu.Lock()
		for _, h := range missing {
			delete(c.known, h)
			delete(c.nodes, h)
			delete(c.provs, h)
		}
		c.mu.Unlock()
		hosts = slices.DeleteFunc(hosts, func(h string) bool { return slices.Contains(missing, h) })
	}
	insts, err := c.st.InstancesOnHosts(ctx, hosts)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("power sync", "hosts", len(hosts), "err", err)
		}
		return
	}
	for _, h := range hosts {
		c.syncPower(ctx, batch[h], insts[h])
	}
}

func hypervisorType(driver string) string {
	switch driver {
	case "qemu":
		return "QEMU"
	case "fake":
		return "fake"
	}
	return driver
}

// powerSyncGrace is how long after a change a server is left out of the
// power-state sync: a heartbeat sent while its task ran may arrive after
// the task ended and would otherwise "see" the guest missing.
const powerSyncGrace = 2 * time.Second

// syncPower compares what the host runs with what the database says.
// A guest that stopped or vanished outside Kumo stops its server (with a
// "stop" instance action, as Nova's power-state sync does); a guest of a
// server that is deleted or lives on another host now (evacuated) is
// destroyed; other unknown guests are left alone and logged.
func (c *Conductor) syncPower(ctx context.Context, r *rpc.HostReport, insts []store.HostInstance) {
	reported := map[string]int{}
	for _, p := range r.Instances {
		reported[p.UUID] = p.PowerState
	}
	for _, i := range insts {
		if i.Busy || i.VMState == states.Building || time.Since(i.UpdatedAt) < powerSyncGrace {
			// A report sent before a task ended may not show its result yet.
			delete(reported, i.UUID)
			continue
		}
		ps, ok := reported[i.UUID]
		delete(reported, i.UUID)
		if !ok {
			ps = int(virt.NoState)
		}
		if ps == i.PowerState {
			continue
		}
		// The report may predate a task that just ended (a build that
		// finished after the agent listed its guests): ask again.
		if ps, ok = c.freshPower(ctx, r.Host, i.UUID); !ok || ps == i.PowerState {
			continue
		}
		set := store.Set{"power_state": ps}
		stop := i.VMState == states.Active && virt.PowerState(ps) != virt.Running
		if stop {
			set["vm_state"] = states.Stopped
		}
		err := c.st.DB().WithTx(ctx, func(tx *sql.Tx) error {
			if err := c.st.UpdateInstance(ctx, tx, i.UUID, store.Cond{NoTask: true, NotDeleted: true, VMStates: []string{i.VMState}}, set); err != nil {
				return err
			}
			if !stop {
				return nil
			}
			a := &store.Action{InstanceUUID: i.UUID, Action: "stop", RequestID: "req-" + newUUID(), ProjectID: i.ProjectID}
			id, err := c.st.BeginAction(ctx, tx, a, "compute_stop_instance")
			if err != nil {
				return err
			}
			return c.st.FinishEvent(ctx, tx, a.ID, id, "", "")
		})
		if err != nil && !errors.Is(err, store.ErrPreempted) {
			c.log.Warn("power sync", "instance", i.UUID, "err", err)
			continue
		}
		if err == nil {
			c.log.Info("power state changed outside Kumo", "instance", i.UUID, "power_state", ps, "stopped", stop)
		}
	}
	for uuid := range reported {
		i, err := c.st.GetInstance(ctx, nil, uuid)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				c.log.Warn("unknown instance on host left alone", "host", r.Host, "instance", uuid)
			}
			continue
		}
		if i.Deleted || i.HostName() != r.Host && i.TaskID == nil && !resizeSource(i, r.Host) {
			c.log.Info("destroying stale guest", "host", r.Host, "instance", uuid)
			go func() {
				if _, err := c.Op(context.WithoutCancel(ctx), r.Host, rpc.OpRequest{Op: rpc.OpDestroy, Instance: rpc.Instance{UUID: uuid}}); err != nil {
					c.log.Warn("destroy stale guest", "instance", uuid, "err", err)
				}
			}()
		}
	}
}

// resizeSource reports whether host is the source of a resize of i
// awaiting confirmation: it keeps the guest, stopped, for a revert.
func resizeSource(i *store.Instance, host string) bool {
	return !i.Deleted && i.VMState == states.Resized && i.Migration != nil && i.Migration.SourceHost == host
}

// freshPower asks the host for an instance's power state now; ok is
// false when the host does not answer.
func (c *Conductor) freshPower(ctx context.Context, host, uuid string) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rep, err := c.Op(ctx, host, rpc.OpRequest{Op: rpc.OpInfo, Instance: rpc.Instance{UUID: uuid}})
	var be *bus.Error
	if errors.As(err, &be) && be.Code == rpc.CodeNotFound {
		return int(virt.NoState), true
	}
	if err != nil {
		return 0, false
	}
	return rep.PowerState, true
}

// ---- helpers ----

// ServiceUp reports whether a service counts as up at now.
func ServiceUp(s *store.Service, downTime time.Duration, now time.Time) bool {
	if s.ForcedDown {
		return false
	}
	return !s.LastSeenUp.IsZero() && now.Sub(s.LastSeenUp) <= downTime
}

// DownTime is the configured service down time.
func (c *Conductor) DownTime() time.Duration { return c.cfg.ServiceDownTime }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// warmingUp reports whether the conductor started so recently that hosts
// may not have reported yet (they register within moments of a conductor
// appearing, and at the latest by their next heartbeat).
func (c *Conductor) warmingUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.started.IsZero() && time.Since(c.started) < c.cfg.ReportInterval+5*time.Second
}
