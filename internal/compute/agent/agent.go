// Package agent is the compute agent: one per hypervisor host. It talks
// to the control plane only over the bus (internal/compute/rpc): it
// registers its host and heartbeats with the instances' power states,
// and it executes compute.instance.op requests by driving its virt.Driver
// and the host's image cache. For cold migrations and resizes across
// hosts it exports a guest's disks and pulls them from the source agent
// over the bus (migrate.go); it reports guests that end on their own at
// once, and joins consoles to tunnels over the bus for the console proxy.
//
// The agent keeps no state of its own that matters: a restarted agent
// lists the driver's instances and reports them as they are, adopting
// running guests instead of killing them; the conductor, which holds the
// desired state, resends whatever step it was waiting for.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/image/cache"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// Images gives the agent local copies of images, what the image service
// says about them, and a way to store snapshots (internal/image/cache
// implements it).
type Images interface {
	Acquire(ctx context.Context, id string) (path string, release func(), err error)
	Meta(ctx context.Context, id string) (cache.Meta, error)
	Upload(ctx context.Context, id string, r io.Reader) error
}

// Config configures an agent.
type Config struct {
	// Host is the host name the agent registers (unique in the cloud).
	Host string
	// HostIP is the host's address, shown in os-hypervisors.
	HostIP string
	// ReportInterval is the heartbeat period (default 10s).
	ReportInterval time.Duration
	// OpTimeout bounds one driver operation (default 10 minutes).
	OpTimeout time.Duration
	// MigrationAddress is the address this host receives live migrations
	// on (Nova's live_migration_inbound_addr): the source hosts connect to
	// it for the disks (NBD) and the memory. Default HostIP, else
	// 127.0.0.1 (all hosts on one machine).
	MigrationAddress string
	// ForceConfigDrive gives every instance a config drive, whatever the
	// server asked for (Nova's force_config_drive).
	ForceConfigDrive bool
	// Resources tunes the resource tracker (resources.go).
	Resources ResourceConfig
}

// Agent is a running compute agent.
type Agent struct {
	cfg    Config
	bus    *bus.Bus
	driver virt.Driver
	images Images
	log    *slog.Logger

	mu       sync.Mutex
	locks    map[string]*sync.Mutex // per instance: operations run one at a time
	releases map[string]func()      // image cache references held by instances
	exports  map[string]*export     // disks readable by migration destinations, by token
	lives    map[string]*liveRun    // running live_migrate ops by instance (live.go)
}

// New returns an agent; images may be nil (instances then boot without a
// local image, which only the fake driver accepts).
func New(b *bus.Bus, d virt.Driver, images Images, cfg Config, log *slog.Logger) (*Agent, error) {
	if b == nil || d == nil {
		return nil, errors.New("agent: bus and driver are required")
	}
	if cfg.Host == "" {
		return nil, errors.New("agent: no host name")
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = 10 * time.Second
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 10 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, bus: b, driver: d, images: images, log: log.With("host", cfg.Host),
		locks: map[string]*sync.Mutex{}, releases: map[string]func(){}, exports: map[string]*export{}, lives: map[string]*liveRun{}}, nil
}

// Host returns the agent's host name.
func (a *Agent) Host() string { return a.cfg.Host }

// Driver returns the agent's driver.
func (a *Agent) Driver() virt.Driver { return a.driver }

// Run serves operations and heartbeats until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	sub, err := a.bus.Subscribe(rpc.SubjectAgent(a.cfg.Host), "",
		map[string]bus.Version{rpc.MsgOp: rpc.OpVersion, rpc.MsgDiskRead: rpc.DiskReadVersion}, a.handle)
	if err != nil {
		return fmt.Errorf("agent %s: subscribe: %w", a.cfg.Host, err)
	}
	defer sub.Unsubscribe()
	if w, ok := a.driver.(virt.ExitWatcher); ok {
		w.WatchExits(ctx, func(uuid string) { go a.guestExited(ctx, uuid) })
	}
	if ids, err := a.driver.List(ctx); err == nil && len(ids) > 0 {
		a.log.Info("adopting instances found on the host", "count", len(ids))
	}
	// Registration waits for a conductor to take the first report, so the
	// host can be scheduled on as soon as both run, whichever started first.
	for wait := 20 * time.Millisecond; !a.register(ctx); wait = min(2*wait, time.Second) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	t := time.NewTicker(a.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.Report(ctx)
		}
	}
}

// register sends the first report as a request and reports whether a
// conductor took it.
func (a *Agent) register(ctx context.Context) bool {
	r, ok := a.report(ctx)
	if !ok {
		return false
	}
	r.Startup = true
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.bus.Request(rctx, rpc.SubjectConductor, rpc.MsgHostReport, rpc.ReportVersion, r, nil); err != nil {
		a.log.Debug("registration not taken yet", "err", err)
		return false
	}
	return true
}

// Report sends one heartbeat with the host's resources and the power
// state of every instance on it.
func (a *Agent) Report(ctx context.Context) {
	r, ok := a.report(ctx)
	if !ok {
		return
	}
	if err := a.bus.Publish(ctx, rpc.SubjectConductor, rpc.MsgHostReport, rpc.ReportVersion, r); err != nil && ctx.Err() == nil {
		a.log.Warn("heartbeat", "err", err)
	}
}

// report reads the host's resources and instances.
func (a *Agent) report(ctx context.Context) (rpc.HostReport, bool) {
	res, err := a.driver.Resources(ctx)
	if err != nil {
		a.log.Warn("read host resources", "err", err)
		return rpc.HostReport{}, false
	}
	ids, err := a.driver.List(ctx)
	if err != nil {
		a.log.Warn("list instances", "err", err)
		return rpc.HostReport{}, false
	}
	r := rpc.HostReport{Host: a.cfg.Host, Driver: a.driver.Name(), HypervisorHostname: a.cfg.Host, HostIP: a.cfg.HostIP,
		Resources: rpc.Resources{VCPUs: res.VCPUs, MemoryMB: res.MemoryMB, DiskGB: res.DiskGB}, Instances: []rpc.InstancePower{},
		Provider: a.cfg.Resources.ProviderReport(res)}
	for _, id := range ids {
		info, err := a.driver.Info(ctx, id)
		if err != nil {
			continue
		}
		r.Instances = append(r.Instances, rpc.InstancePower{UUID: id, PowerState: int(info.State)})
	}
	return r, true
}

func (a *Agent) lock(uuid string) func() {
	a.mu.Lock()
	l, ok := a.locks[uuid]
	if !ok {
		l = &sync.Mutex{}
		a.locks[uuid] = l
	}
	a.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// exitReportAgain is when a guest's exit is reported a second time: the
// conductor leaves servers alone for a moment after each change, so a
// guest killed right after a task ended is caught by the second report.
const exitReportAgain = 3 * time.Second

// guestExited reports at once (and once more a little later) that a guest
// ended on its own, so that the conductor's power-state sync stops its
// server without waiting for the next heartbeat.
func (a *Agent) guestExited(ctx context.Context, uuid string) {
	a.lock(uuid)() // after any operation running on it
	a.log.Info("guest ended outside Kumo, reporting", "instance", uuid)
	a.Report(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(exitReportAgain):
		a.Report(ctx)
	}
}

func (a *Agent) handle(ctx context.Context, m *bus.Message) (any, error) {
	if m.Type == rpc.MsgDiskRead {
		return a.diskRead(ctx, m)
	}
	var req rpc.OpRequest
	if err := m.Decode(&req); err != nil {
		return nil, err
	}
	if req.Op == rpc.OpHostUptime {
		out, err := hostUptime(time.Now())
		if err != nil {
			return nil, toBusError(err)
		}
		return out, nil
	}
	if req.Instance.UUID == "" {
		return nil, bus.NewError(bus.CodeBadRequest, "no instance uuid")
	}
	if req.Op == rpc.OpLiveAbort || req.Op == rpc.OpLiveForceComplete {
		// Not behind the instance's lock: live_migrate holds it.
		return a.liveControl(req.Instance.UUID, req.Op)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.OpTimeout)
	defer cancel()
	unlock := a.lock(req.Instance.UUID)
	defer unlock()
	log := a.log.With("instance", req.Instance.UUID, "op", req.Op)
	switch req.Op {
	case rpc.OpInfo, rpc.OpConsole, rpc.OpConsoleConnect, rpc.OpMigrateOut:
	default:
		a.endExports(req.Instance.UUID) // the instance changes: its disks are no longer what was exported
	}
	out, err := a.do(ctx, &req)
	if err != nil {
		log.Warn("operation failed", "err", err)
		return nil, toBusError(err)
	}
	if req.Op != rpc.OpDestroy && req.Op != rpc.OpConsole && req.Op != rpc.OpConsoleConnect {
		if info, err := a.driver.Info(ctx, req.Instance.UUID); err == nil {
			out.PowerState = int(info.State)
		}
	}
	log.Debug("operation done", "power_state", out.PowerState)
	return out, nil
}

func toBusError(err error) *bus.Error {
	var be *bus.Error
	switch {
	case errors.As(err, &be):
		return be
	case errors.Is(err, virt.ErrNotFound):
		return bus.NewError(rpc.CodeNotFound, "%v", err)
	case errors.Is(err, virt.ErrInvalidState):
		return bus.NewError(rpc.CodeConflict, "%v", err)
	case errors.Is(err, virt.ErrUnsupported):
		return bus.NewError(rpc.CodeUnsupported, "%v", err)
	case errors.Is(err, virt.ErrNoGuestAgent):
		return bus.NewError(rpc.CodeNoGuestAgent, "%v", err)
	}
	return bus.NewError(rpc.CodeFailed, "%v", err)
}

// do runs one operation; every branch is idempotent.
func (a *Agent) do(ctx context.Context, req *rpc.OpRequest) (rpc.OpReply, error) {
	d, id := a.driver, req.Instance.UUID
	info, infoErr := d.Info(ctx, id)
	exists := infoErr == nil
	if infoErr != nil && !errors.Is(infoErr, virt.ErrNotFound) {
		return rpc.OpReply{}, infoErr
	}
	missing := func() (rpc.OpReply, error) {
		return rpc.OpReply{}, fmt.Errorf("instance %s is not on host %s: %w", id, a.cfg.Host, virt.ErrNotFound)
	}
	// already reports success when the instance is in one of states.
	already := func(states ...virt.PowerState) bool {
		for _, s := range states {
			if exists && info.State == s {
				return true
			}
		}
		return false
	}
	switch req.Op {
	case rpc.OpAttachVolume, rpc.OpDetachVolume:
		if !exists {
			return missing()
		}
		return rpc.OpReply{PowerState: int(info.State)}, a.volumeOp(ctx, req)
	case rpc.OpInfo:
		if !exists {
			return missing()
		}
		return rpc.OpReply{PowerState: int(info.State)}, nil
	case rpc.OpSpawn:
		if !exists && req.Migration != nil {
			if err := a.spawnMigrated(ctx, req); err != nil {
				return rpc.OpReply{}, err
			}
		} else if !exists {
			if err := a.spawn(ctx, req); err != nil {
				return rpc.OpReply{}, err
			}
		}
		if req.Stopped {
			if err := d.PowerOff(ctx, id, 0); err != nil {
				return rpc.OpReply{}, err
			}
		}
		return rpc.OpReply{}, nil
	case rpc.OpResize:
		if !exists {
			if err := a.spawn(ctx, req); err != nil {
				return rpc.OpReply{}, err
			}
			if req.Stopped {
				return rpc.OpReply{}, d.PowerOff(ctx, id, 0)
			}
			return rpc.OpReply{}, nil
		}
		return rpc.OpReply{}, a.resize(ctx, req, info)
	case rpc.OpDestroy:
		if err := d.Destroy(ctx, id); err != nil {
			return rpc.OpReply{}, err
		}
		a.release(id)
		return rpc.OpReply{PowerState: int(virt.NoState)}, nil
	case rpc.OpConsole:
		if !exists {
			return missing()
		}
		out, err := d.ConsoleOutput(ctx, id, req.MaxBytes)
		return rpc.OpReply{PowerState: int(info.State), Output: string(out)}, err
	case rpc.OpConsoleConnect:
		if !exists {
			return missing()
		}
		return a.consoleConnect(ctx, id, req.ConsoleType, req.Tunnel)
	case rpc.OpMigrateOut:
		if !exists {
			return missing()
		}
		return a.migrateOut(ctx, id, info)
	case rpc.OpDiagnostics:
		if !exists {
			return missing()
		}
		return a.diagnostics(ctx, id, info)
	case rpc.OpLivePrepare:
		return a.livePrepare(ctx, req, exists)
	case rpc.OpLiveDisks, rpc.OpLiveMigrate, rpc.OpLiveFinish:
		if !exists {
			return missing()
		}
		switch req.Op {
		case rpc.OpLiveDisks:
			return a.liveDisks(ctx, id)
		case rpc.OpLiveMigrate:
			return a.liveMigrate(ctx, req)
		}
		return a.liveFinish(ctx, req)
	case rpc.OpSnapshot:
		if !exists {
			return missing()
		}
		return rpc.OpReply{}, a.snapshot(ctx, id, req.Snapshot)
	}
	if !exists {
		return missing()
	}
	var err error
	switch req.Op {
	case rpc.OpPowerOff:
		if already(virt.Shutdown) {
			return rpc.OpReply{}, nil
		}
		err = d.PowerOff(ctx, id, 60*time.Second)
	case rpc.OpPowerOn:
		if already(virt.Running) {
			return rpc.OpReply{}, nil
		}
		err = d.PowerOn(ctx, id)
	case rpc.OpReboot:
		err = d.Reboot(ctx, id, req.Hard)
	case rpc.OpPause:
		if already(virt.Paused) {
			return rpc.OpReply{}, nil
		}
		err = d.Pause(ctx, id)
	case rpc.OpUnpause:
		if already(virt.Running) {
			return rpc.OpReply{}, nil
		}
		err = d.Unpause(ctx, id)
	case rpc.OpSuspend:
		if already(virt.Suspended) {
			return rpc.OpReply{}, nil
		}
		err = d.Suspend(ctx, id)
	case rpc.OpResume:
		if already(virt.Running) {
			return rpc.OpReply{}, nil
		}
		err = d.Resume(ctx, id)
	case rpc.OpRescue:
		if info.Rescued {
			return rpc.OpReply{}, nil
		}
		img, release, ierr := a.image(ctx, req.ImageID)
		if ierr != nil {
			return rpc.OpReply{}, fmt.Errorf("rescue image: %w", ierr)
		}
		defer release()
		err = d.Rescue(ctx, id, img)
	case rpc.OpUnrescue:
		if !info.Rescued {
			return rpc.OpReply{}, nil
		}
		err = d.Unrescue(ctx, id)
	case rpc.OpSetPassword:
		err = d.SetAdminPassword(ctx, id, req.Password)
	case rpc.OpInjectNMI:
		err = d.InjectNMI(ctx, id)
	default:
		return rpc.OpReply{}, bus.NewError(rpc.CodeUnsupported, "unknown operation %q", req.Op)
	}
	return rpc.OpReply{}, err
}

// spawn fetches the image and creates the instance; on failure nothing
// is left behind (the driver guarantees it for itself; the image
// references are dropped here).
func (a *Agent) spawn(ctx context.Context, req *rpc.OpRequest) error {
	vi := a.instance(req)
	var img virt.Image
	var release func()
	var err error
	if vi.RootVolume != nil {
		// Volume-backed: the volume is the disk; its image metadata
		// says how it boots.
		img, release, err = a.volumeImage(ctx, req.Instance.ImageMeta)
	} else {
		img, release, err = a.image(ctx, req.Instance.ImageID)
	}
	if err != nil {
		return err
	}
	vi.Image = img
	if err := a.driver.Spawn(ctx, vi); err != nil {
		release()
		return err
	}
	a.keep(req.Instance.UUID, release)
	return nil
}

// instance is the driver's instance of a request (without its image).
func (a *Agent) instance(req *rpc.OpRequest) *virt.Instance {
	in := req.Instance
	vi := &virt.Instance{UUID: in.UUID, Name: in.Name, VCPUs: in.VCPUs, MemoryMB: in.MemoryMB, RootGB: in.RootGB,
		EphemeralGB: in.EphemeralGB, SwapMB: in.SwapMB, ConfigDrive: in.ConfigDrive || a.cfg.ForceConfigDrive,
		NICs: nics(in.VIFs),
		Metadata: virt.Metadata{Hostname: in.Hostname, UserData: in.UserData, PublicKeys: in.PublicKeys, Extra: in.Metadata,
			AdminPass: in.AdminPass, NetworkData: NetworkData(in.VIFs)}}
	vi.RootVolume, vi.Volumes = blockDevices(in.BlockDevices)
	vi.Ephemerals = ephemerals(in.Ephemerals)
	return vi
}

// ephemerals converts the request's ephemeral disks (1.7).
func ephemerals(in []rpc.Ephemeral) []virt.Ephemeral {
	var out []virt.Ephemeral
	for _, e := range in {
		out = append(out, virt.Ephemeral{SizeGB: e.SizeGB, GuestFormat: e.GuestFormat})
	}
	return out
}

// keep holds an instance's image references until it is destroyed.
func (a *Agent) keep(uuid string, release func()) {
	a.mu.Lock()
	if old := a.releases[uuid]; old != nil {
		old()
	}
	a.releases[uuid] = release
	a.mu.Unlock()
}

func (a *Agent) release(uuid string) {
	a.mu.Lock()
	rel := a.releases[uuid]
	delete(a.releases, uuid)
	delete(a.locks, uuid)
	a.mu.Unlock()
	if rel != nil {
		rel()
	}
}
