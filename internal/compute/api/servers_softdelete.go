package api

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Soft delete (Nova's deferred delete): with a reclaim interval set, a
// DELETE of a server that has run powers it off and leaves it
// SOFT_DELETED until restore, forceDelete or the conductor's reclaim
// (conductor/softdelete.go). Servers that never ran, have no host, are in
// error or busy with a task are deleted at once, as Nova does.

var (
	actSoftDelete = taskAction{"delete", "delete", ruleServersDelete,
		[]string{states.Active, states.Stopped, states.Paused, states.Suspended, states.Rescued, states.Resized, states.Shelved},
		conductor.SoftDelete, states.SoftDeleting, false}
	actRestore = taskAction{"restore", "restore", ruleRestore, []string{states.SoftDeleted}, conductor.Restore, states.Restoring, false}
)

// softDeletes reports whether DELETE soft-deletes server i.
func (a *API) softDeletes(i *store.Instance) bool {
	return a.reclaim > 0 && !i.LaunchedAt.IsZero() && i.HostName() != "" && i.TaskID == nil &&
		slices.Contains(actSoftDelete.vmStates, i.VMState)
}

// forceDelete deletes a server now, in any state (Nova's force_delete);
// only a lock stops it.
func (a *API) forceDelete(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	i, err := a.loadServer(r, id, ruleForceDelete)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if err := a.startDelete(r, i); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}

// restoreServer brings a soft-deleted server back, if the project's
// quota has room for it again.
func (a *API) restoreServer(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	i, err := a.loadServer(r, id, ruleRestore)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	act := actRestore
	if err := checkState(act.name, i, act.vmStates); err != nil {
		return nil, err
	}
	t := &store.Task{ID: conductor.NewTaskID(), Kind: act.kind, PrevVMState: i.VMState}
	err = a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		deltas := map[string]int64{quota.Instances: 1, quota.Cores: i.Flavor.VCPUs, quota.RAM: i.Flavor.MemoryMB}
		if err := a.quota.Check(ctx(r), tx, i.ProjectID, i.UserID, deltas); err != nil {
			return err
		}
		// deleted_at stays until the restore succeeds: a failed restore
		// leaves the server due for reclaim as before.
		set := store.TaskSet(t, &act.taskState)
		if err := a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{NoTask: true, NotDeleted: true, VMStates: act.vmStates}, set); err != nil {
			return err
		}
		return a.beginAction(r, tx, i, act.record, t)
	})
	if errors.Is(err, store.ErrPreempted) {
		fresh, gerr := a.st.GetInstance(ctx(r), nil, i.UUID)
		if gerr != nil || fresh.Deleted {
			return nil, serverNotFound(i.UUID)
		}
		return nil, conflictState(act.name, fresh)
	}
	if err != nil {
		return nil, quotaError(err)
	}
	a.servers.Kick(ctx(r), i.UUID)
	return &apiutil.Response{Status: 202}, nil
}
