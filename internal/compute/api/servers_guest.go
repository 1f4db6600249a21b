package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Actions that reach into the guest and answer at once: changePassword
// and trigger_crash_dump call the host's agent synchronously (Nova calls
// set_admin_password too; its crash dump is a cast, but a synchronous
// answer tells the caller when the driver cannot do it). Neither leaves
// a task state behind, so nothing can stay stuck in one; the instance
// action records the outcome.

// guestOp runs op on the server's host and records action with one event.
func (a *API) guestOp(r *http.Request, i *store.Instance, action, event string, req rpc.OpRequest) (*bus.Error, error) {
	host := i.HostName()
	if host == "" {
		return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
	}
	c := caller(r)
	act := &store.Action{InstanceUUID: i.UUID, Action: action, RequestID: requestID(r), UserID: c.UserID, ProjectID: c.ProjectID}
	var ev int64
	err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		var err error
		ev, err = a.st.BeginAction(ctx(r), tx, act, event)
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	req.Instance = rpc.Instance{UUID: i.UUID}
	_, opErr := a.servers.InstanceOp(ctx(r), host, req)
	failure := ""
	if opErr != nil {
		failure = opErr.Error()
	}
	err = a.st.WithTx(context.WithoutCancel(ctx(r)), func(tx *sql.Tx) error {
		return a.st.FinishEvent(ctx(r), tx, act.ID, ev, failure, "")
	})
	if err != nil {
		a.log.Warn("record instance action event", "instance", i.UUID, "err", err)
	}
	if opErr == nil {
		return nil, nil
	}
	var be *bus.Error
	if errors.As(opErr, &be) && be.Code != bus.CodeTimeout && be.Code != bus.CodeUnavailable {
		return be, nil
	}
	a.log.Warn("guest operation failed", "instance", i.UUID, "op", req.Op, "err", opErr)
	return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
}

func (a *API) changePassword(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "adminPass")
	if err != nil {
		return nil, err
	}
	raw, ok := m["adminPass"]
	if !ok {
		return nil, apiutil.BadRequest("Invalid input for field/attribute changePassword. 'adminPass' is a required property")
	}
	pass, ok := str(raw)
	if !ok {
		return nil, apiutil.BadRequest("Invalid input for field/attribute adminPass. Value: %s. %s is not of type 'string'", raw, raw)
	}
	i, err := a.loadServer(r, id, ruleAdminPassword)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if err := checkState("changePassword", i, []string{states.Active}); err != nil {
		return nil, err
	}
	be, err := a.guestOp(r, i, "changePassword", "compute_set_admin_password", rpc.OpRequest{Op: rpc.OpSetPassword, Password: pass})
	if err != nil {
		return nil, err
	}
	switch {
	case be == nil:
		return &apiutil.Response{Status: 202}, nil
	case be.Code == rpc.CodeUnsupported:
		return nil, apiutil.Errorf(501, "Unable to set password on instance").WithCode("notImplemented")
	case be.Code == rpc.CodeNoGuestAgent:
		return nil, apiutil.Conflict("Failed to set admin password on %s because QEMU guest agent is not enabled", i.UUID)
	case be.Code == rpc.CodeConflict:
		return nil, apiutil.Conflict("Instance %s is not running.", i.UUID)
	}
	return nil, apiutil.Conflict("Failed to set admin password on %s because error setting admin password", i.UUID)
}

func (a *API) crashDump(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	if !atLeast(r, V2_17) {
		return nil, apiutil.BadRequest("There is no such action: trigger_crash_dump")
	}
	if s := strings.TrimSpace(string(arg)); s != "null" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute trigger_crash_dump. Value: %s. %s is not of type 'null'", s, s)
	}
	i, err := a.loadServer(r, id, ruleCrashDump)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if err := checkState("trigger_crash_dump", i, []string{states.Active, states.Paused, states.Rescued, states.Resized, states.Error}); err != nil {
		return nil, err
	}
	be, err := a.guestOp(r, i, "trigger_crash_dump", "compute_trigger_crash_dump", rpc.OpRequest{Op: rpc.OpInjectNMI})
	if err != nil {
		return nil, err
	}
	switch {
	case be == nil:
		return &apiutil.Response{Status: 202}, nil
	case be.Code == rpc.CodeUnsupported:
		return nil, apiutil.BadRequest("Triggering crash dump is not supported")
	case be.Code == rpc.CodeConflict:
		return nil, apiutil.Conflict("Instance %s is not running.", i.UUID)
	}
	return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
}
