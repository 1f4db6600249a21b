package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
)

// Live migration (os-migrateLive), the steps after scheduling and port
// binding:
//
//	spawn_destination  ask the source which disks move (live_disks), the
//	                   destination to create the guest waiting for them
//	                   (live_prepare); undo: destroy it there
//	live_migrate       the source copies disks and memory to the
//	                   destination (its guest stops at the end; a failure
//	                   leaves it running); undo: the source guest runs
//	                   again (the destination never resumed)
//	live_finish        the destination's guest resumes
//	destroy_source     the source's stopped guest goes
//	finish_migration   the migration record is completed
//
// A host or driver that cannot do it (an agent older than
// compute.instance.op 1.7, the bus capped below 1.7, a driver without
// virt.LiveMigrator) makes spawn_destination fall back to what Kumo did
// before: create the guest afresh from its image on the destination (its
// disk and memory are lost, as the log says); the two live steps are
// then skipped. The choice travels in the task (argLive).

// argLive is the task argument holding the prepared destination
// (rpc.LiveMigration, JSON), or liveRecreate.
const (
	argLive      = "live"
	liveRecreate = "recreate"
	// argMigrationStatus, when set, is the status a failed move's
	// migration record ends in (an aborted live migration: cancelled).
	argMigrationStatus = "migration_status"
)

// liveVersion is the compute.instance.op version with the live ops.
var liveVersion = bus.V(1, 7)

var liveMigrateSteps = []step{
	{name: "spawn_destination", run: livePrepare, undo: func(ctx context.Context, r *run) error {
		_, err := r.op(ctx, r.inst.HostName(), rpc.OpDestroy, nil)
		return err
	}},
	{name: "live_migrate", run: liveMigrate, skip: liveRecreated, undo: liveResumeSource},
	{name: "live_finish", run: liveFinish, skip: liveRecreated},
	{name: "destroy_source", run: destroySource},
	migrationStep("finish_migration", "completed", true),
}

func liveRecreated(r *run) bool { return r.task.Args[argLive] == liveRecreate }

// cannotLive reports an agent error that means "not this way": the
// agent is too old for the op or its driver cannot.
func cannotLive(err error) bool {
	var be *bus.Error
	return errors.As(err, &be) && (be.Code == rpc.CodeUnsupported || be.Code == bus.CodeUnsupportedVersion || be.Code == bus.CodeUnknownType)
}

func (r *run) setArg(k, v string) {
	if r.task.Args == nil {
		r.task.Args = map[string]string{}
	}
	r.task.Args[k] = v // persisted with the next step
}

// livePrepare asks the source for its disks and the destination to wait
// for them, or recreates the guest where that cannot be done.
func livePrepare(ctx context.Context, r *run) error {
	src, dst := r.task.SourceHost, r.inst.HostName()
	recreate := func(why string) error {
		r.log.Warn("live migration recreates the guest from its image on the destination: its disk and memory are lost",
			"from", src, "to", dst, "why", why)
		r.setArg(argLive, liveRecreate)
		return spawnKeeping(ctx, r)
	}
	if v := r.c.bus.VersionFor(rpc.MsgOp, rpc.OpVersion); v.Less(liveVersion) {
		return recreate("compute.instance.op is capped at " + v.String())
	}
	rep, err := r.c.Op(ctx, src, rpc.OpRequest{Op: rpc.OpLiveDisks, Instance: rpc.Instance{UUID: r.inst.UUID}})
	switch {
	case cannotLive(err):
		return recreate("source: " + agentError(err).Error())
	case err != nil:
		return fmt.Errorf("Live migration of instance %s from %s failed: %w", r.inst.UUID, src, agentError(err))
	case rep.Live == nil:
		return fmt.Errorf("Live migration of instance %s from %s failed: the source listed no disks", r.inst.UUID, src)
	}
	prep, err := r.op(ctx, dst, rpc.OpLivePrepare, func(req *rpc.OpRequest) {
		req.Live = &rpc.LiveMigration{SourceHost: src, Disks: rep.Live.Disks}
	})
	switch {
	case cannotLive(err):
		return recreate("destination: " + agentError(err).Error())
	case err != nil:
		return fmt.Errorf("Live migration of instance %s: preparing %s failed: %w", r.inst.UUID, dst, agentError(err))
	case prep.Live == nil || prep.Live.Host == "":
		return fmt.Errorf("Live migration of instance %s: %s answered no migration address", r.inst.UUID, dst)
	}
	b, err := json.Marshal(prep.Live)
	if err != nil {
		return err
	}
	r.setArg(argLive, string(b))
	return nil
}

// prepared is the destination livePrepare recorded.
func (r *run) prepared() (*rpc.LiveMigration, error) {
	var l rpc.LiveMigration
	if err := json.Unmarshal([]byte(r.task.Args[argLive]), &l); err != nil {
		return nil, fmt.Errorf("live migration of %s: %w", r.inst.UUID, err)
	}
	return &l, nil
}

// liveMigrate has the source copy the guest to the destination.
func liveMigrate(ctx context.Context, r *run) error {
	l, err := r.prepared()
	if err != nil {
		return err
	}
	l.DestHost = r.inst.HostName()
	src := r.task.SourceHost
	if mig := r.task.Args["migration_uuid"]; mig != "" {
		// Nova's live migration statuses: preparing, running, completed.
		if err := r.c.st.SetMigrationStatus(ctx, mig, "running"); err != nil {
			return err
		}
	}
	rep, err := r.c.Op(ctx, src, rpc.OpRequest{Op: rpc.OpLiveMigrate, Instance: rpc.Instance{UUID: r.inst.UUID}, Live: l})
	var be *bus.Error
	if errors.As(err, &be) && be.Code == rpc.CodeCancelled {
		// Aborted by DELETE /servers/{id}/migrations/{id}: Nova's status.
		r.setArg(argMigrationStatus, "cancelled")
		return fmt.Errorf("Live migration of instance %s from %s to %s was aborted", r.inst.UUID, src, l.DestHost)
	}
	if err != nil {
		return fmt.Errorf("Live migration of instance %s from %s to %s failed: %w", r.inst.UUID, src, l.DestHost, agentError(err))
	}
	if p := rep.Live; p != nil && p.Progress != nil {
		r.log.Info("live migration copied", "memory_bytes", p.Progress.MemoryProcessed, "disk_bytes", p.Progress.DiskProcessed)
	}
	return nil
}

// liveResumeSource runs the source's guest again after its state went to
// a destination that could not resume it.
func liveResumeSource(ctx context.Context, r *run) error {
	if r.task.PrevVMState == states.Paused {
		return nil
	}
	_, err := r.c.Op(ctx, r.task.SourceHost, rpc.OpRequest{Op: rpc.OpUnpause, Instance: rpc.Instance{UUID: r.inst.UUID}})
	return err
}

// liveFinish resumes the guest on the destination (a paused server stays
// paused).
func liveFinish(ctx context.Context, r *run) error {
	rep, err := r.c.Op(ctx, r.inst.HostName(), rpc.OpRequest{Op: rpc.OpLiveFinish, Instance: rpc.Instance{UUID: r.inst.UUID},
		Live: &rpc.LiveMigration{Paused: r.task.PrevVMState == states.Paused}})
	if err != nil {
		return fmt.Errorf("Live migration of instance %s: resuming on %s failed: %w", r.inst.UUID, r.inst.HostName(), agentError(err))
	}
	r.power = rep.PowerState
	return nil
}
