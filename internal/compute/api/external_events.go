package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// os-server-external-events: other services (the networking service's
// port status changes, mostly) tell Compute about its servers. An event
// for a server on a host is accepted (code 200) and wakes the server's
// task (a build waiting for network-vif-plugged re-checks its ports);
// an unknown server is a 404 and a server without a host a 422 for that
// event; the answer is 207 when some events failed and 404 when all did.

const ruleExternalEvents = "os_compute_api:os-server-external-events:create"

// ExternalEvent is one event of os-server-external-events.
type ExternalEvent struct {
	Name       string `json:"name"`
	ServerUUID string `json:"server_uuid"`
	Tag        string `json:"tag,omitempty"`
	Status     string `json:"status"`
	Code       int    `json:"code,omitempty"`
}

var externalEventsSchema = apiutil.MustSchema("compute-external-events", `{"type": "object",
	"properties": {"events": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
		"server_uuid": {"type": "string", "format": "uuid"},
		"name": {"type": "string", "enum": ["network-changed", "network-vif-plugged", "network-vif-unplugged",
			"network-vif-deleted", "volume-extended", "power-update", "accelerator-request-bound", "volume-reimaged"]},
		"status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
		"tag": {"type": "string", "maxLength": 255}},
		"required": ["server_uuid", "name"], "additionalProperties": false}}},
	"required": ["events"], "additionalProperties": false}`)

// eventMinVersion is the microversion that introduced an event name.
var eventMinVersion = map[string]apiutil.Version{
	"volume-extended": V2_51, "power-update": V2_76, "accelerator-request-bound": V2_82, "volume-reimaged": V2_93,
}

func (a *API) createExternalEvents(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleExternalEvents, map[string]string{}); err != nil {
		return nil, err
	}
	var body struct {
		Events []ExternalEvent `json:"events"`
	}
	if err := apiutil.DecodeJSON(r, externalEventsSchema, &body); err != nil {
		return nil, err
	}
	for _, e := range body.Events {
		if v, ok := eventMinVersion[e.Name]; ok && !atLeast(r, v) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute name. Value: %s. '%s' is not one of the known events", e.Name, e.Name)
		}
	}
	out, accepted := a.ExternalEvents(ctx(r), body.Events)
	if accepted == 0 {
		return nil, apiutil.NotFound("No instances found for any event")
	}
	status := 200
	if accepted < len(out) {
		status = 207
	}
	return apiutil.JSON(status, map[string]any{"events": out}), nil
}

// ExternalEvents applies events (for the API and for in-process callers
// such as the networking service) and returns them with their outcome
// and how many were accepted.
func (a *API) ExternalEvents(ctx context.Context, events []ExternalEvent) ([]ExternalEvent, int) {
	out := make([]ExternalEvent, len(events))
	accepted := 0
	kicked := map[string]bool{}
	for k, e := range events {
		if e.Status == "" {
			e.Status = "completed"
		}
		i, err := a.st.GetInstance(ctx, nil, e.ServerUUID)
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && i.Deleted:
			e.Status, e.Code = "failed", 404
		case err != nil:
			a.log.Warn("external event", "server", e.ServerUUID, "err", err)
			e.Status, e.Code = "failed", 500
		case i.HostName() == "":
			e.Status, e.Code = "failed", 422
		default:
			e.Code = 200
			accepted++
			if a.servers != nil && !kicked[i.UUID] {
				kicked[i.UUID] = true
				a.servers.Kick(ctx, i.UUID)
			}
			a.log.Debug("external event", "server", e.ServerUUID, "name", e.Name, "tag", e.Tag, "status", e.Status)
		}
		out[k] = e
	}
	return out, accepted
}
