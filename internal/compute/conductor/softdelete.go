package conductor

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Soft delete (Nova's deferred delete, on when reclaim_instance_interval
// is set):
//
//	active|stopped|… ──DELETE/soft-deleting: power_off──▶ soft-delete (SOFT_DELETED, deleted_at set)
//	soft-delete ──restore/restoring: power_on──▶ active
//	soft-delete ──forceDelete, or reclaim after the interval──▶ delete task
//
// A soft-deleted server keeps its host, guest and ports; it does not count
// towards the instances, cores and ram quota until it is restored.

// Task kinds of soft delete and restore.
const (
	SoftDelete = "soft_delete"
	Restore    = "restore"
)

func softDeleteKind() kind {
	return kind{
		event: "compute_soft_delete_instance",
		steps: []step{{name: rpc.OpPowerOff, run: opStep(rpc.OpPowerOff)}},
		finish: func(r *run) store.Set {
			return store.Set{"vm_state": states.SoftDeleted, "power_state": r.power, "deleted_at": db.FormatTime(time.Now())}
		},
		fail: restore,
	}
}

func restoreKind() kind {
	return kind{
		event: "compute_restore_instance",
		steps: []step{{name: rpc.OpPowerOn, run: opStep(rpc.OpPowerOn)}},
		finish: func(r *run) store.Set {
			return store.Set{"vm_state": states.Active, "power_state": r.power, "deleted_at": nil}
		},
		fail: restore,
	}
}

// reclaimBatch bounds the servers one reclaim pass deletes.
const reclaimBatch = 100

// reclaim gives every server soft-deleted longer than the reclaim
// interval ago a delete task (Nova's _reclaim_queued_deletes).
func (c *Conductor) reclaim(ctx context.Context) {
	if c.cfg.ReclaimInterval <= 0 {
		return
	}
	due, err := c.st.SoftDeletedBefore(ctx, time.Now().Add(-c.cfg.ReclaimInterval), reclaimBatch)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("reclaim soft-deleted servers", "err", err)
		}
		return
	}
	for _, uuid := range due {
		if err := c.startReclaim(ctx, uuid); err != nil {
			if !errors.Is(err, store.ErrPreempted) {
				c.log.Warn("reclaim soft-deleted server", "instance", uuid, "err", err)
			}
			continue
		}
		c.log.Info("reclaiming soft-deleted server", "instance", uuid)
		c.Kick(uuid)
	}
}

// startReclaim writes the delete task of a soft-deleted server, unless it
// got another task (a restore, a forced delete) meanwhile.
func (c *Conductor) startReclaim(ctx context.Context, uuid string) error {
	inst, err := c.st.GetInstance(ctx, nil, uuid)
	if err != nil {
		return err
	}
	t := &store.Task{ID: NewTaskID(), Kind: kindDelete, PrevVMState: states.SoftDeleted}
	ts := states.Deleting
	return c.st.DB().WithTx(ctx, func(tx *sql.Tx) error {
		cond := store.Cond{NoTask: true, NotDeleted: true, VMStates: []string{states.SoftDeleted}}
		if err := c.st.UpdateInstance(ctx, tx, uuid, cond, store.TaskSet(t, &ts)); err != nil {
			return err
		}
		a := &store.Action{InstanceUUID: uuid, Action: "delete", RequestID: "req-" + newUUID(),
			UserID: inst.UserID, ProjectID: inst.ProjectID}
		ev, err := c.st.BeginAction(ctx, tx, a, Event(kindDelete))
		if err != nil {
			return err
		}
		t.ActionID, t.EventID = a.ID, ev
		return c.st.UpdateInstance(ctx, tx, uuid, store.Cond{TaskID: t.ID}, store.Set{"task": t})
	})
}
