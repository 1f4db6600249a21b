package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/scheduler"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// Task kinds.
const (
	kindBuild         = "build"
	kindDelete        = "delete"
	kindStart         = "start"
	kindStop          = "stop"
	kindReboot        = "reboot"
	kindPause         = "pause"
	kindUnpause       = "unpause"
	kindSuspend       = "suspend"
	kindResume        = "resume"
	kindRescue        = "rescue"
	kindUnrescue      = "unrescue"
	kindRebuild       = "rebuild"
	kindResize        = "resize"
	kindMigrate       = "migrate"
	kindConfirmResize = "confirm_resize"
	kindRevertResize  = "revert_resize"
	kindLiveMigrate   = "live_migrate"
	kindEvacuate      = "evacuate"
	kindShelve        = "shelve"
	kindShelveOffload = "shelve_offload"
	kindUnshelve      = "unshelve"
	kindSnapshot      = "snapshot"
)

// Kind names exported for the API, which creates the tasks.
const (
	Build         = kindBuild
	Delete        = kindDelete
	Start         = kindStart
	Stop          = kindStop
	Reboot        = kindReboot
	Pause         = kindPause
	Unpause       = kindUnpause
	Suspend       = kindSuspend
	Resume        = kindResume
	Rescue        = kindRescue
	Unrescue      = kindUnrescue
	Rebuild       = kindRebuild
	Resize        = kindResize
	Migrate       = kindMigrate
	ConfirmResize = kindConfirmResize
	RevertResize  = kindRevertResize
	LiveMigrate   = kindLiveMigrate
	Evacuate      = kindEvacuate
	Shelve        = kindShelve
	ShelveOffload = kindShelveOffload
	Unshelve      = kindUnshelve
	Snapshot      = kindSnapshot
)

// Event returns the name of the event an action of kind k records
// (Nova's event names).
func Event(k string) string {
	if kd, ok := kinds[k]; ok {
		return kd.event
	}
	return "conductor_" + k
}

var kinds map[string]kind

func init() {
	kinds = map[string]kind{
		kindBuild: {
			event:  "compute__do_build_and_run_instance",
			steps:  []step{scheduleStep(nil), networkStep, blockDeviceStep, spawnStep, waitPluggedStep},
			finish: becomes(states.Active, true),
			fail:   toError,
		},
		kindDelete: {
			event:  "compute_terminate_instance",
			steps:  []step{destroyStep(true), {name: "deallocate_network", run: deallocate, light: true}, releaseVolumesStep, releaseStep},
			finish: deleted,
			fail:   toError,
		},
		kindStart:    powerKind("compute_start_instance", rpc.OpPowerOn, states.Active),
		kindStop:     powerKind("compute_stop_instance", rpc.OpPowerOff, states.Stopped),
		kindReboot:   powerKind("compute_reboot_instance", rpc.OpReboot, states.Active),
		kindPause:    powerKind("compute_pause_instance", rpc.OpPause, states.Paused),
		kindUnpause:  powerKind("compute_unpause_instance", rpc.OpUnpause, states.Active),
		kindSuspend:  powerKind("compute_suspend_instance", rpc.OpSuspend, states.Suspended),
		kindResume:   powerKind("compute_resume_instance", rpc.OpResume, states.Active),
		kindRescue:   powerKind("compute_rescue_instance", rpc.OpRescue, states.Rescued),
		kindUnrescue: powerKind("compute_unrescue_instance", rpc.OpUnrescue, states.Active),
		kindRebuild: {
			event:  "compute_rebuild_instance",
			steps:  []step{destroyStep(false), reimageStep, spawnStep},
			finish: keepPowerState(true),
			fail:   toError,
		},
		kindResize:  resizeKind("compute_resize_instance"),
		kindMigrate: resizeKind("compute_resize_instance"),
		kindConfirmResize: {
			event: "compute_confirm_resize",
			steps: []step{confirmDestroyStep, confirmStep},
			finish: func(r *run) store.Set {
				return store.Set{"vm_state": r.task.PrevVMState, "migration_ctx": (*store.Task)(nil)}
			},
			fail: restore,
		},
		kindRevertResize: {
			event: "compute_revert_resize",
			steps: []step{revertDestroyStep, {name: "return_to_source", run: returnToSource}, rebindStep, revertSpawnStep},
			finish: func(r *run) store.Set {
				set := keepPowerState(false)(r)
				set["migration_ctx"] = (*store.Task)(nil)
				return set
			},
			fail: toError,
		},
		kindLiveMigrate: {
			event:  "compute_live_migration",
			steps:  append([]step{scheduleStep(excludeCurrent), rebindStep}, liveMigrateSteps...), // live.go
			finish: becomesPrev,
			fail:   restore,
		},
		kindEvacuate: {
			event:  "compute_rebuild_instance",
			steps:  []step{scheduleStep(excludeCurrent), rebindStep, evacuateSpawnStep, waitPluggedStep, migrationStep("finish_migration", "done", false)},
			finish: keepPowerState(true),
			fail:   toError,
		},
		kindShelve: {
			event:  "compute_shelve_instance",
			steps:  []step{{name: "power_off", run: opStep(rpc.OpPowerOff)}, snapshotStep, offloadStep},
			finish: shelvedOffloaded,
			fail:   failSnapshot(restore),
		},
		kindSnapshot: {
			event:  "compute_snapshot_instance",
			steps:  []step{snapshotStep},
			finish: snapshotDone,
			fail:   failSnapshot(restore),
		},
		kindShelveOffload: {
			event:  "compute_shelve_offload_instance",
			steps:  []step{offloadStep},
			finish: shelvedOffloaded,
			fail:   restore,
		},
		SoftDelete: softDeleteKind(),
		Restore:    restoreKind(),
		kindUnshelve: {
			event:  "compute_unshelve_instance",
			steps:  []step{scheduleStep(nil), rebindStep, spawnStep, waitPluggedStep, {name: "delete_shelved_image", run: deleteShelvedImage}},
			finish: unshelved,
			fail:   restore,
		},
	}
}

// ---- outcomes ----

func becomes(vm string, launched bool) func(r *run) store.Set {
	return func(r *run) store.Set {
		set := store.Set{"vm_state": vm, "power_state": r.power, "progress": 0}
		if launched {
			set["launched_at"] = db.FormatTime(time.Now())
		}
		return set
	}
}

func becomesPrev(r *run) store.Set {
	return store.Set{"vm_state": r.task.PrevVMState, "power_state": r.power}
}

// keepPowerState ends in stopped when the server was stopped before,
// else active.
func keepPowerState(launched bool) func(r *run) store.Set {
	return func(r *run) store.Set {
		vm := states.Active
		if r.task.PrevVMState == states.Stopped {
			vm = states.Stopped
		}
		set := becomes(vm, launched)(r)
		set["fault"] = (*store.Fault)(nil)
		return set
	}
}

func deleted(r *run) store.Set {
	now := db.FormatTime(time.Now())
	return store.Set{"vm_state": states.Deleted, "deleted": true, "deleted_at": now, "terminated_at": now,
		"power_state": int(virt.NoState), "progress": 0}
}

func shelvedOffloaded(r *run) store.Set {
	set := store.Set{"vm_state": states.ShelvedOffloaded, "power_state": int(virt.NoState), "host": nil, "node": nil}
	if img := r.task.Args["image_id"]; img != "" {
		// Where unshelve finds the disk again (Nova's shelved_image_id).
		set["migration_ctx"] = &store.Task{Kind: kindShelve, Args: map[string]string{shelvedImage: img}}
	}
	return set
}

// ---- steps ----

// powerKind is a one-step action on the host.
func powerKind(event, op, to string) kind {
	return kind{event: event, steps: []step{{name: op, run: opStep(op)}}, finish: becomes(to, false), fail: restore}
}

func opStep(op string) func(ctx context.Context, r *run) error {
	return func(ctx context.Context, r *run) error {
		rep, err := r.op(ctx, r.inst.HostName(), op, func(req *rpc.OpRequest) {
			req.Hard = r.task.Args["reboot_type"] == "HARD"
			req.ImageID = r.task.Args["rescue_image_ref"]
			if req.ImageID == "" && op == rpc.OpRescue {
				req.ImageID = r.inst.ImageRef
			}
		})
		r.power = rep.PowerState
		return err
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func mergeSet(a, b store.Set) store.Set {
	if a == nil {
		a = store.Set{}
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}

// nextStep names the step after the current one of the running kind.
func (r *run) nextStep() string {
	k := kinds[r.task.Kind]
	for i, s := range k.steps {
		if s.name == r.task.Step || r.task.Step == "" && i == 0 {
			if i+1 < len(k.steps) {
				return k.steps[i+1].name
			}
		}
	}
	return ""
}

func requestedNetworks(r *run) Networks {
	var n Networks
	if s := r.task.Args["networks"]; s != "" {
		_ = json.Unmarshal([]byte(s), &n)
	}
	return n
}

var networkStep = step{name: "allocate_network",
	run: func(ctx context.Context, r *run) error {
		vifs, err := r.c.net.Allocate(ctx, r.inst, r.inst.HostName(), requestedNetworks(r))
		if err != nil || len(vifs) == 0 {
			r.noop = err == nil
			return err
		}
		// The host plugs a tap per port; the list travels in the task
		// (persisted with the next step) to the spawn request.
		hv := make([]rpc.VIF, 0, len(vifs))
		for _, v := range vifs {
			hv = append(hv, rpc.VIF{PortID: v.PortID, NetworkID: v.NetworkID, MAC: v.MAC})
		}
		b, err := json.Marshal(hv)
		if err != nil {
			return err
		}
		if r.task.Args == nil {
			r.task.Args = map[string]string{}
		}
		r.task.Args["vifs"] = string(b)
		return nil
	},
	undo: deallocate,
}

func deallocate(ctx context.Context, r *run) error { return r.c.net.Deallocate(ctx, r.inst) }

// rebindStep binds the server's existing ports to its (new) host; undone
// by binding them back to the source host.
var rebindStep = step{name: "bind_network",
	run: func(ctx context.Context, r *run) error { return r.c.net.Rebind(ctx, r.inst, r.inst.HostName()) },
	undo: func(ctx context.Context, r *run) error {
		if r.task.SourceHost == "" && r.task.Kind != kindUnshelve {
			return nil
		}
		return r.c.net.Rebind(ctx, r.inst, r.task.SourceHost)
	},
}

// waitPluggedStep waits until the networking service reports every port
// of the server plugged (network-vif-plugged), as Nova's compute waits
// before it reports the guest running. Ports bound where no network agent
// runs are plugged at once. After vif_plugging_timeout the build fails
// (the guest is destroyed) when vif_plugging_is_fatal, else it goes on.
var waitPluggedStep = step{name: "wait_network", skip: func(r *run) bool {
	// A build that allocated and bound no port has nothing to wait for.
	return r.task.Kind == kindBuild && r.task.Args["vifs"] == ""
}, run: func(ctx context.Context, r *run) error {
	timeout := r.c.cfg.VIFPluggingTimeout
	if timeout < 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	defer r.c.dropWaiter(r.inst.UUID)
	for {
		wake := r.c.waiter(r.inst.UUID)
		ok, err := r.c.net.Plugged(ctx, r.inst)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if r.c.cfg.VIFPluggingNotFatal {
				r.log.Warn("timeout waiting for network-vif-plugged; continuing", "timeout", timeout)
				return nil
			}
			r.log.Warn("timeout waiting for network-vif-plugged", "timeout", timeout)
			if _, derr := r.op(context.WithoutCancel(ctx), r.inst.HostName(), rpc.OpDestroy, nil); derr != nil {
				r.log.Warn("destroy after vif plugging timeout", "err", derr)
			}
			return errors.New("Virtual Interface creation failed")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(min(left, time.Second)):
		}
	}
}}

// spawnStep creates the instance on its host (powered off when it was
// stopped); a failed spawn is cleaned up on the host before it reports.
var spawnStep = step{name: "spawn", run: func(ctx context.Context, r *run) error { return spawnOn(ctx, r, nil) }}

// spawnOn is spawnStep with the request adjusted by mod.
func spawnOn(ctx context.Context, r *run, mod func(*rpc.OpRequest)) error {
	host := r.inst.HostName()
	rep, err := r.op(ctx, host, rpc.OpSpawn, func(req *rpc.OpRequest) {
		req.Stopped = r.task.PrevVMState == states.Stopped
		if mod != nil {
			mod(req)
		}
	})
	if err != nil {
		var be *bus.Error
		if !errors.As(err, &be) || be.Retryable || be.Code == bus.CodeTimeout {
			// The agent may have created it after all.
			if _, derr := r.op(context.WithoutCancel(ctx), host, rpc.OpDestroy, nil); derr != nil {
				r.log.Warn("clean up after failed spawn", "err", derr)
			}
		}
		return fmt.Errorf("Build of instance %s aborted: %w", r.inst.UUID, agentError(err))
	}
	r.power = rep.PowerState
	return nil
}

// evacuateSpawnStep rebuilds an evacuated instance on its new host from
// its image, as Nova does without shared storage: the host it ran on is
// down, so its local disks cannot be copied (what the guest wrote there
// is lost; volumes are not).
var evacuateSpawnStep = step{name: "spawn", run: func(ctx context.Context, r *run) error {
	r.log.Warn("evacuating: rebuilding from the image, the local disk on the down host is not copied",
		"from", r.task.SourceHost, "to", r.inst.HostName(), "image", r.inst.ImageRef)
	if err := spawnStep.run(ctx, r); err != nil {
		return fmt.Errorf("Evacuation rebuilds instance %s from image %s: %w", r.inst.UUID, r.inst.ImageRef, err)
	}
	return nil
}}

// spawnKeeping spawns on the new host and brings it to the previous
// power state (live migration of a paused server stays paused).
func spawnKeeping(ctx context.Context, r *run) error {
	if err := spawnStep.run(ctx, r); err != nil {
		return err
	}
	if r.task.PrevVMState == states.Paused {
		rep, err := r.op(ctx, r.inst.HostName(), rpc.OpPause, nil)
		r.power = rep.PowerState
		return err
	}
	return nil
}

func agentError(err error) error {
	var be *bus.Error
	if errors.As(err, &be) {
		return errors.New(be.Message)
	}
	return err
}

// destroyStep removes the instance from its host. For a delete, a host
// whose service is down (or gone) is skipped: Nova's local delete.
func destroyStep(local bool) step {
	return step{name: "destroy", run: func(ctx context.Context, r *run) error {
		host := r.inst.HostName()
		if host == "" {
			return nil
		}
		_, err := r.op(ctx, host, rpc.OpDestroy, nil)
		var be *bus.Error
		if err != nil && local && errors.As(err, &be) && be.Code == bus.CodeUnavailable && !r.c.hostUp(ctx, host) {
			r.log.Warn("compute host is down: deleting locally", "host", host)
			return nil
		}
		if err != nil {
			return agentError(err)
		}
		if local {
			// A resize awaiting confirmation keeps the guest on its source.
			destroyResizeSource(ctx, r)
		}
		return nil
	}}
}

// destroyResizeSource removes the guest a resize across hosts left on
// its source; a source host that is down is skipped (its power-state
// sync destroys the stale guest when it is back).
func destroyResizeSource(ctx context.Context, r *run) {
	m := r.inst.Migration
	if m == nil || m.SourceHost == "" || m.SourceHost == r.inst.HostName() {
		return
	}
	if _, err := r.c.Op(ctx, m.SourceHost, rpc.OpRequest{Op: rpc.OpDestroy, Instance: rpc.Instance{UUID: r.inst.UUID}}); err != nil {
		r.log.Warn("destroy the resize source", "host", m.SourceHost, "err", err)
	}
}

// confirmDestroyStep removes the guest (and its disks) that a confirmed
// resize across hosts left on its source.
var confirmDestroyStep = step{name: "destroy_source", run: func(ctx context.Context, r *run) error {
	m := r.inst.Migration
	if m == nil || m.SourceHost == "" || m.SourceHost == r.inst.HostName() {
		return nil
	}
	_, err := r.c.Op(ctx, m.SourceHost, rpc.OpRequest{Op: rpc.OpDestroy, Instance: rpc.Instance{UUID: r.inst.UUID}})
	var be *bus.Error
	if err != nil && errors.As(err, &be) && be.Code == bus.CodeUnavailable && !r.c.hostUp(ctx, m.SourceHost) {
		r.log.Warn("resize source host is down: its guest goes when it is back", "host", m.SourceHost)
		return nil
	}
	if err != nil {
		return fmt.Errorf("Confirm of the resize of instance %s failed on %s: %w", r.inst.UUID, m.SourceHost, agentError(err))
	}
	return nil
}}

func (c *Conductor) hostUp(ctx context.Context, host string) bool {
	svcs, err := c.st.ListServices(ctx, host, "nova-compute")
	if err != nil || len(svcs) == 0 {
		return false
	}
	return ServiceUp(svcs[0], c.cfg.ServiceDownTime, time.Now())
}

// destroySource removes the instance from the host it moved away from.
func destroySource(ctx context.Context, r *run) error {
	if r.task.SourceHost == "" || r.task.SourceHost == r.inst.HostName() {
		return nil
	}
	_, err := r.c.Op(ctx, r.task.SourceHost, rpc.OpRequest{Op: rpc.OpDestroy, Instance: rpc.Instance{UUID: r.inst.UUID}})
	return err
}

var offloadStep = step{name: "offload", run: func(ctx context.Context, r *run) error {
	if err := destroyStep(true).run(ctx, r); err != nil {
		return err
	}
	// The ports stay the server's, bound to no host (Nova's shelve
	// offload); unshelve binds them again.
	if err := r.c.net.Rebind(ctx, r.inst, ""); err != nil {
		return err
	}
	return releaseStep.run(ctx, r)
}}

// resizeKind moves an instance to a host (maybe the same) with a new
// flavor (a cold migration keeps the flavor): schedule with the new
// flavor, remove the guest from the source, create it on the target.
func resizeKind(event string) kind {
	return kind{
		event: event,
		steps: []step{
			scheduleStep(func(r *run, spec *scheduler.Spec) {
				if r.task.Kind == kindMigrate {
					excludeCurrent(r, spec)
				}
			}),
			rebindStep,
			{name: "migrate_out", run: migrateOut, undo: func(ctx context.Context, r *run) error {
				// The source kept the guest and its disks: start it again.
				if r.sameHost() || r.task.PrevVMState == states.Stopped {
					return nil
				}
				_, err := r.c.Op(ctx, r.task.SourceHost, rpc.OpRequest{Op: rpc.OpPowerOn, Instance: rpc.Instance{UUID: r.inst.UUID}})
				return err
			}},
			resizeSpawnStep,
			migrationStep("finish_migration", "finished", false),
		},
		finish: func(r *run) store.Set {
			mig := &store.Task{Kind: r.task.Kind, PrevVMState: r.task.PrevVMState, OldFlavor: r.task.OldFlavor,
				NewFlavor: r.task.NewFlavor, SourceHost: r.task.SourceHost,
				Args: map[string]string{"migration_uuid": r.task.Args["migration_uuid"]}}
			return store.Set{"vm_state": states.Resized, "power_state": r.power, "migration_ctx": mig}
		},
		fail: restore,
	}
}

// migrateOut asks the source host of a move to another host to power the
// guest off and export its disks (Nova's migrate_disk_and_power_off); the
// export travels in the task to the destination's spawn, which copies
// them. The source keeps the guest until the resize is confirmed.
func migrateOut(ctx context.Context, r *run) error {
	src := r.task.SourceHost
	if src == "" || r.sameHost() {
		return nil
	}
	rep, err := r.c.Op(ctx, src, rpc.OpRequest{Op: rpc.OpMigrateOut, Instance: rpc.Instance{UUID: r.inst.UUID}})
	if err != nil {
		return fmt.Errorf("Migration of instance %s from %s failed: %w", r.inst.UUID, src, agentError(err))
	}
	if rep.Export == nil {
		return fmt.Errorf("Migration of instance %s from %s failed: the source exported no disks", r.inst.UUID, src)
	}
	b, err := json.Marshal(rpc.Migration{SourceHost: src, Token: rep.Export.Token, Disks: rep.Export.Disks})
	if err != nil {
		return err
	}
	if r.task.Args == nil {
		r.task.Args = map[string]string{}
	}
	r.task.Args["migration"] = string(b) // persisted with the next step
	return nil
}

// resizeSpawnStep creates the instance on the target host of a resize,
// from the disks the source exported; on the host it is already on
// (same-host resize) it asks for an in-place resize instead, which keeps
// the disks.
var resizeSpawnStep = step{name: "spawn", run: func(ctx context.Context, r *run) error {
	if !r.sameHost() {
		var m *rpc.Migration
		if s := r.task.Args["migration"]; s != "" {
			m = &rpc.Migration{}
			if err := json.Unmarshal([]byte(s), m); err != nil {
				return fmt.Errorf("migration of %s: %w", r.inst.UUID, err)
			}
		}
		return spawnOn(ctx, r, func(req *rpc.OpRequest) { req.Migration = m })
	}
	rep, err := r.op(ctx, r.inst.HostName(), rpc.OpResize, func(req *rpc.OpRequest) {
		req.Stopped = r.task.PrevVMState == states.Stopped
	})
	if err != nil {
		return fmt.Errorf("Resize of instance %s failed: %w", r.inst.UUID, agentError(err))
	}
	r.power = rep.PowerState
	return nil
}}

// sameHost reports whether a resize (or its revert) stays on one host.
func (r *run) sameHost() bool {
	src := r.task.SourceHost
	if r.task.Kind == kindRevertResize && r.inst.Migration != nil {
		src = r.inst.Migration.SourceHost
	}
	return src != "" && src == r.inst.HostName()
}

// revertDestroyStep removes the resized instance from the target host,
// unless the resize stayed on one host (the revert then resizes in place).
var revertDestroyStep = step{name: "destroy", run: func(ctx context.Context, r *run) error {
	if r.sameHost() {
		return nil
	}
	if r.task.Args == nil {
		r.task.Args = map[string]string{}
	}
	r.task.Args[resizedOn] = r.inst.HostName() // persisted with the next step
	return destroyStep(false).run(ctx, r)
}}

// resizedOn (task argument of a revert) names the host a reverted resize
// across hosts had moved to.
const resizedOn = "resized_on"

// revertSpawnStep brings a reverted resize back on its source: in place
// on one host; across hosts by starting the guest the source kept, disks
// and all (from the image only if the source lost it).
var revertSpawnStep = step{name: "spawn", run: func(ctx context.Context, r *run) error {
	if r.task.Args[resizedOn] == "" {
		return resizeSpawnStep.run(ctx, r)
	}
	host := r.inst.HostName()
	op := rpc.OpPowerOn
	if r.task.PrevVMState == states.Stopped {
		op = rpc.OpPowerOff
	}
	rep, err := r.c.Op(ctx, host, rpc.OpRequest{Op: op, Instance: rpc.Instance{UUID: r.inst.UUID}})
	var be *bus.Error
	if errors.As(err, &be) && be.Code == rpc.CodeNotFound {
		r.log.Warn("the source host no longer has the guest: reverting to a fresh copy of the image", "host", host)
		return spawnStep.run(ctx, r)
	}
	if err != nil {
		return fmt.Errorf("Revert of the resize of instance %s failed on %s: %w", r.inst.UUID, host, agentError(err))
	}
	r.power = rep.PowerState
	return nil
}}

// returnToSource moves a reverted resize back to its source host and
// old flavor.
func returnToSource(ctx context.Context, r *run) error {
	m := r.inst.Migration
	if m == nil {
		return errors.New("no migration to revert")
	}
	if mig := pendingMigration(r.inst); mig != "" {
		if err := r.c.moveBack(ctx, r.inst, mig); err != nil {
			return fmt.Errorf("return allocations: %w", err)
		}
		if err := r.c.st.SetMigrationStatus(ctx, mig, "reverted"); err != nil {
			return err
		}
	}
	set := store.Set{"host": nullable(m.SourceHost), "node": nullable(m.SourceHost)}
	if m.OldFlavor != nil {
		set["flavor"] = *m.OldFlavor
		r.inst.Flavor = *m.OldFlavor
	}
	src := m.SourceHost
	r.inst.Host, r.inst.Node = &src, &src
	r.extra = mergeSet(r.extra, set)
	return nil
}
