package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Aborting (2.24) and force-completing (2.22) a live migration in
// progress. Both ask the source host's agent directly (live_abort,
// live_force_complete, compute.instance.op 1.7); the conductor's task then
// ends as the migration does: aborted, the guest stays on its source and
// the migration record is "cancelled"; forced, the guest is paused for the
// rest of the memory copy and the migration completes.
//
// Only a migration that is copying ("running") can be acted on: Kumo's
// "preparing" step is short, and aborting it (which Nova allows from 2.65)
// is refused with 400 like an older microversion would.

var (
	// V2_22: force_complete of a live migration.
	V2_22 = apiutil.Version{Major: 2, Minor: 22}
	// V2_24: abort of a live migration.
	V2_24 = apiutil.Version{Major: 2, Minor: 24}
)

const (
	ruleServerMigrationsDelete = "os_compute_api:servers:migrations:delete"
	ruleServerMigrationsForce  = "os_compute_api:servers:migrations:force_complete"
)

// liveControlWait bounds how long an abort or force-complete waits for
// the source to start copying.
const liveControlWait = 3 * time.Second

// opVersionLive is the compute.instance.op version of the live ops.
var opVersionLive = bus.V(1, 7)

// liveMigrationOf loads the server and its migration for an abort or a
// force-complete: the server must be live-migrating (409 otherwise), the
// migration its own (notFound's status otherwise) and running (400).
func (a *API) liveMigrationOf(r *http.Request, rule, verb string, notFound int) (*store.Instance, *store.MigrationRecord, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), rule)
	if err != nil {
		return nil, nil, err
	}
	if i.TaskState == nil || *i.TaskState != states.Migrating {
		ts := "None"
		if i.TaskState != nil {
			ts = *i.TaskState
		}
		return nil, nil, apiutil.Conflict("Cannot '%s' instance %s while it is in task_state %s", verb, i.UUID, ts)
	}
	id := r.PathValue("migration_id")
	list, err := a.st.ListMigrations(ctx(r), store.MigrationFilter{Instance: i.UUID, Type: "live-migration"})
	if err != nil {
		return nil, nil, internal(err)
	}
	for _, m := range list {
		if strconv.FormatInt(m.ID, 10) != id {
			continue
		}
		if m.Status != "running" {
			return nil, nil, apiutil.BadRequest("Migration %s state of instance %s is %s. Cannot %s while the migration is in this state.",
				id, i.UUID, m.Status, verb)
		}
		return i, m, nil
	}
	msg := "Migration " + id + " could not be found for instance " + i.UUID + "."
	if notFound == http.StatusBadRequest {
		return nil, nil, apiutil.BadRequest("%s", msg)
	}
	return nil, nil, apiutil.NotFound("%s", msg)
}

// liveControl sends live_abort or live_force_complete to the source.
func (a *API) liveControl(r *http.Request, m *store.MigrationRecord, op, verb string) (*apiutil.Response, error) {
	if !a.sendsOp(opVersionLive) {
		return nil, apiutil.Conflict("Cannot %s: compute.instance.op is capped below %s during an upgrade", verb, opVersionLive)
	}
	// The record says "running" just before the source starts copying:
	// a request in between finds nothing to act on yet and asks again.
	var (
		err error
		be  *bus.Error
	)
	for deadline := time.Now().Add(liveControlWait); ; {
		_, err = a.agentOp(r, m.SourceCompute, rpc.OpRequest{Op: op, Instance: rpc.Instance{UUID: m.InstanceUUID}})
		if !errors.As(err, &be) || be.Code != rpc.CodeConflict || time.Now().After(deadline) {
			break
		}
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	switch {
	case err == nil:
		return &apiutil.Response{Status: http.StatusAccepted}, nil
	case errors.As(err, &be) && be.Code == rpc.CodeConflict:
		// The copy ended (or had not begun) between the check and now.
		return nil, apiutil.BadRequest("Migration %d of instance %s is not copying. Cannot %s while the migration is in this state.",
			m.ID, m.InstanceUUID, verb)
	case agentUnsupported(err):
		return nil, apiutil.Conflict("Cannot %s: the agent of %s cannot", verb, m.SourceCompute)
	}
	return nil, internal(err)
}

// abortServerMigration serves DELETE /servers/{id}/migrations/{id} (2.24).
func (a *API) abortServerMigration(r *http.Request) (*apiutil.Response, error) {
	if !atLeast(r, V2_24) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	_, m, err := a.liveMigrationOf(r, ruleServerMigrationsDelete, "abort live migration", http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	return a.liveControl(r, m, rpc.OpLiveAbort, "abort live migration")
}

// serverMigrationAction serves POST /servers/{id}/migrations/{id}/action
// with {"force_complete": null} (2.22).
func (a *API) serverMigrationAction(r *http.Request) (*apiutil.Response, error) {
	if !atLeast(r, V2_22) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, apiutil.BadRequest("Malformed request body: %v", err)
	}
	v, ok := body["force_complete"]
	if !ok || len(body) != 1 || string(v) != "null" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute force_complete. Value: %s. Additional properties are not allowed or force_complete is not null", b)
	}
	_, m, err := a.liveMigrationOf(r, ruleServerMigrationsForce, "force complete", http.StatusBadRequest)
	if err != nil {
		return nil, err
	}
	return a.liveControl(r, m, rpc.OpLiveForceComplete, "force complete")
}
