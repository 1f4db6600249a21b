package api

import (
	"database/sql"
	"errors"
	"net/http"
	"net/netip"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// os-interface: a server's network interfaces (its ports), attach and
// detach. Attach and detach run synchronously against the networking
// service, as Nova's do, on servers that are active, paused or stopped
// with no task running.

const (
	ruleIfaceList   = "os_compute_api:os-attach-interfaces:list"
	ruleIfaceShow   = "os_compute_api:os-attach-interfaces:show"
	ruleIfaceCreate = "os_compute_api:os-attach-interfaces:create"
	ruleIfaceDelete = "os_compute_api:os-attach-interfaces:delete"
)

var ifaceStates = []string{states.Active, states.Paused, states.Stopped}

func interfaceView(r *http.Request, v conductor.VIF) map[string]any {
	fixed := []any{}
	for _, ad := range v.Addresses {
		if ad.Type == "fixed" {
			fixed = append(fixed, map[string]any{"ip_address": ad.Addr, "subnet_id": ad.SubnetID})
		}
	}
	state := v.Status
	if state == "" {
		state = "DOWN"
	}
	m := map[string]any{"fixed_ips": fixed, "mac_addr": v.MAC, "net_id": v.NetworkID, "port_id": v.PortID, "port_state": state}
	if atLeast(r, V2_70) {
		m["tag"] = nil
		if v.Tag != "" {
			m["tag"] = v.Tag
		}
	}
	return m
}

func (a *API) serverVIFs(r *http.Request, i *store.Instance) ([]conductor.VIF, error) {
	m, err := a.network.Interfaces(ctx(r), []string{i.UUID})
	if err != nil {
		return nil, internal(err)
	}
	return m[i.UUID], nil
}

func (a *API) listInterfaces(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIfaceList)
	if err != nil {
		return nil, err
	}
	vifs, err := a.serverVIFs(r, i)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(vifs))
	for _, v := range vifs {
		out = append(out, interfaceView(r, v))
	}
	return apiutil.JSON(200, map[string]any{"interfaceAttachments": out}), nil
}

func (a *API) showInterface(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIfaceShow)
	if err != nil {
		return nil, err
	}
	vifs, err := a.serverVIFs(r, i)
	if err != nil {
		return nil, err
	}
	port := r.PathValue("port_id")
	for _, v := range vifs {
		if v.PortID == port {
			return apiutil.JSON(200, map[string]any{"interfaceAttachment": interfaceView(r, v)}), nil
		}
	}
	return nil, apiutil.NotFound("Instance %s does not have a port with id %s", i.UUID, port)
}

var interfaceCreateSchema = apiutil.MustSchema("compute-interface-create", `{"type": "object",
	"properties": {"interfaceAttachment": {"type": "object", "properties": {
		"net_id": {"type": "string", "format": "uuid"},
		"port_id": {"type": "string", "format": "uuid"},
		"fixed_ips": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "object",
			"properties": {"ip_address": {"type": "string"}}, "required": ["ip_address"], "additionalProperties": false}},
		"tag": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}},
		"additionalProperties": false}},
	"additionalProperties": false}`)

func (a *API) attachInterface(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIfaceCreate)
	if err != nil {
		return nil, err
	}
	var body struct {
		Att *struct {
			NetID    string `json:"net_id"`
			PortID   string `json:"port_id"`
			FixedIPs []struct {
				IPAddress string `json:"ip_address"`
			} `json:"fixed_ips"`
			Tag *string `json:"tag"`
		} `json:"interfaceAttachment"`
	}
	if err := apiutil.DecodeJSON(r, interfaceCreateSchema, &body); err != nil {
		return nil, err
	}
	req := conductor.NetworkRequest{}
	if body.Att != nil {
		if body.Att.Tag != nil && !atLeast(r, V2_49) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('tag' was unexpected)")
		}
		req.UUID, req.Port = body.Att.NetID, body.Att.PortID
		for name, v := range map[string]string{"net_id": req.UUID, "port_id": req.Port} {
			if v != "" && !isUUID(v) {
				return nil, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. '%s' is not a 'uuid'", name, v, v)
			}
		}
		if body.Att.Tag != nil {
			req.Tag = *body.Att.Tag
		}
		if len(body.Att.FixedIPs) > 0 {
			ip := body.Att.FixedIPs[0].IPAddress
			if _, err := netip.ParseAddr(ip); err != nil {
				return nil, apiutil.BadRequest("Invalid input for field/attribute ip_address. Value: %s. '%s' is not a 'ip-address'", ip, ip)
			}
			req.FixedIP = ip
		}
	}
	if req.UUID != "" && req.Port != "" {
		return nil, apiutil.BadRequest("Must not input both network_id and port_id")
	}
	if req.FixedIP != "" && req.UUID == "" {
		return nil, apiutil.BadRequest("Must input network_id when request IP address")
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if err := checkState("attach_interface", i, ifaceStates); err != nil {
		return nil, err
	}
	v, err := a.network.Attach(ctx(r), i, req)
	if err != nil {
		return nil, networkError(err, 404)
	}
	a.recordAction(r, i, "attach_interface", "compute_attach_interface")
	return apiutil.JSON(200, map[string]any{"interfaceAttachment": interfaceView(r, v)}), nil
}

func (a *API) detachInterface(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIfaceDelete)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if err := checkState("detach_interface", i, ifaceStates); err != nil {
		return nil, err
	}
	port := r.PathValue("port_id")
	if err := a.network.Detach(ctx(r), i, port); err != nil {
		var pf *conductor.ErrPortNotFound
		if errors.As(err, &pf) {
			return nil, apiutil.NotFound("Port %s is not attached", port)
		}
		return nil, networkError(err, 404)
	}
	a.recordAction(r, i, "detach_interface", "compute_detach_interface")
	return &apiutil.Response{Status: 202}, nil
}

// recordAction records a finished instance action (its one event done).
func (a *API) recordAction(r *http.Request, i *store.Instance, action, event string) {
	c := caller(r)
	err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		act := &store.Action{InstanceUUID: i.UUID, Action: action, RequestID: requestID(r), UserID: c.UserID, ProjectID: c.ProjectID}
		ev, err := a.st.BeginAction(ctx(r), tx, act, event)
		if err != nil {
			return err
		}
		return a.st.FinishEvent(ctx(r), tx, act.ID, ev, "", "")
	})
	if err != nil {
		a.log.Warn("record instance action", "instance", i.UUID, "action", action, "err", err)
	}
}
