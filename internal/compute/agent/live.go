package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// Live migration (compute.instance.op 1.7). The conductor asks the
// source for the disks to copy (live_disks), the destination to create
// the guest waiting for them (live_prepare: it answers its migration
// address and ports), the source to copy disks and memory there
// (live_migrate) and the destination to resume the guest (live_finish).
// The hosts talk to each other directly (NBD and QEMU's migration stream
// to the destination's Config.MigrationAddress), not over the bus.

// liveMigrator is the driver's live migration, or an "unsupported" error
// the conductor recognises (it then recreates the guest instead).
func (a *Agent) liveMigrator() (virt.LiveMigrator, error) {
	lm, ok := a.driver.(virt.LiveMigrator)
	if !ok {
		return nil, bus.NewError(rpc.CodeUnsupported, "driver %s cannot live-migrate with its disks", a.driver.Name())
	}
	return lm, nil
}

// migrationAddress is where this host receives live migrations.
func (a *Agent) migrationAddress() string {
	switch {
	case a.cfg.MigrationAddress != "":
		return a.cfg.MigrationAddress
	case a.cfg.HostIP != "":
		return a.cfg.HostIP
	}
	return "127.0.0.1"
}

func (a *Agent) liveDisks(ctx context.Context, id string) (rpc.OpReply, error) {
	lm, err := a.liveMigrator()
	if err != nil {
		return rpc.OpReply{}, err
	}
	disks, err := lm.LiveDisks(ctx, id)
	if err != nil {
		return rpc.OpReply{}, err
	}
	live := &rpc.LiveMigration{Disks: []rpc.LiveDisk{}}
	for _, d := range disks {
		live.Disks = append(live.Disks, rpc.LiveDisk{Name: d.Name, VirtualSize: d.VirtualSize, BackingImage: d.BackingImage})
	}
	return rpc.OpReply{Live: live}, nil
}

func virtLiveDisks(in []rpc.LiveDisk) []virt.LiveDisk {
	out := make([]virt.LiveDisk, 0, len(in))
	for _, d := range in {
		out = append(out, virt.LiveDisk{Name: d.Name, VirtualSize: d.VirtualSize, BackingImage: d.BackingImage})
	}
	return out
}

// livePrepare creates the guest waiting for the migration. A guest left
// by an earlier attempt (its reply lost) is replaced: nothing runs in it.
func (a *Agent) livePrepare(ctx context.Context, req *rpc.OpRequest, exists bool) (rpc.OpReply, error) {
	lm, err := a.liveMigrator()
	if err != nil {
		return rpc.OpReply{}, err
	}
	if req.Live == nil {
		return rpc.OpReply{}, bus.NewError(bus.CodeBadRequest, "live_prepare without \"live\"")
	}
	id := req.Instance.UUID
	if exists {
		if err := a.driver.Destroy(ctx, id); err != nil {
			return rpc.OpReply{}, err
		}
		a.release(id)
	}
	vi := a.instance(req)
	var release func()
	if vi.RootVolume != nil {
		vi.Image, release, err = a.volumeImage(ctx, req.Instance.ImageMeta)
	} else {
		vi.Image, release, err = a.image(ctx, req.Instance.ImageID)
	}
	if err != nil {
		return rpc.OpReply{}, err
	}
	in, err := lm.PrepareIncoming(ctx, vi, virtLiveDisks(req.Live.Disks), a.migrationAddress())
	if err != nil {
		release()
		return rpc.OpReply{}, err
	}
	a.keep(id, release)
	a.log.Info("waiting for a live migration", "instance", id, "from", req.Live.SourceHost, "address", in.Host)
	return rpc.OpReply{Live: &rpc.LiveMigration{Host: in.Host, NBDPort: in.NBDPort, MigrationPort: in.MigrationPort,
		Disks: req.Live.Disks}}, nil
}

// liveMigrate copies the guest to the prepared destination.
func (a *Agent) liveMigrate(ctx context.Context, req *rpc.OpRequest) (rpc.OpReply, error) {
	lm, err := a.liveMigrator()
	if err != nil {
		return rpc.OpReply{}, err
	}
	l := req.Live
	if l == nil || l.Host == "" || l.MigrationPort == 0 {
		return rpc.OpReply{}, bus.NewError(bus.CodeBadRequest, "live_migrate without a destination")
	}
	var (
		mu   sync.Mutex
		last virt.MigrationProgress
	)
	id := req.Instance.UUID
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &liveRun{cancel: cancel, force: make(chan struct{})}
	a.mu.Lock()
	a.lives[id] = run
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.lives, id)
		a.mu.Unlock()
	}()
	to := virt.Incoming{Host: l.Host, NBDPort: l.NBDPort, MigrationPort: l.MigrationPort}
	err = lm.MigrateLive(ctx, id, to, virtLiveDisks(l.Disks), virt.LiveOptions{ForceComplete: run.force,
		Progress: func(p virt.MigrationProgress) {
			mu.Lock()
			last = p
			mu.Unlock()
		}})
	if err != nil && run.aborted() {
		return rpc.OpReply{}, bus.NewError(rpc.CodeCancelled, "live migration to %s aborted", l.DestHost)
	}
	if err != nil {
		return rpc.OpReply{}, fmt.Errorf("live migration to %s: %w", l.DestHost, err)
	}
	mu.Lock()
	defer mu.Unlock()
	p := rpc.MigrationProgress(last)
	a.log.Info("live-migrated out", "instance", req.Instance.UUID, "to", l.DestHost, "memory", p.MemoryProcessed, "disk", p.DiskProcessed)
	return rpc.OpReply{Live: &rpc.LiveMigration{Progress: &p}}, nil
}

// liveFinish resumes the received guest.
func (a *Agent) liveFinish(ctx context.Context, req *rpc.OpRequest) (rpc.OpReply, error) {
	lm, err := a.liveMigrator()
	if err != nil {
		return rpc.OpReply{}, err
	}
	paused := req.Live != nil && req.Live.Paused
	return rpc.OpReply{}, lm.FinishIncoming(ctx, req.Instance.UUID, paused)
}

// liveRun is a live_migrate in progress, which live_abort and
// live_force_complete act on.
type liveRun struct {
	cancel    context.CancelFunc
	force     chan struct{}
	mu        sync.Mutex
	abort     bool
	forceOnce sync.Once
}

func (l *liveRun) aborted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.abort
}

// liveControl aborts or force-completes the instance's running
// live_migrate.
func (a *Agent) liveControl(id, op string) (rpc.OpReply, error) {
	a.mu.Lock()
	run := a.lives[id]
	a.mu.Unlock()
	if run == nil {
		return rpc.OpReply{}, bus.NewError(rpc.CodeConflict, "instance %s is not live-migrating from host %s", id, a.cfg.Host)
	}
	if op == rpc.OpLiveAbort {
		run.mu.Lock()
		run.abort = true
		run.mu.Unlock()
		run.cancel()
		a.log.Info("live migration aborted", "instance", id)
		return rpc.OpReply{}, nil
	}
	run.forceOnce.Do(func() { close(run.force) })
	a.log.Info("live migration forced to complete", "instance", id)
	return rpc.OpReply{}, nil
}
