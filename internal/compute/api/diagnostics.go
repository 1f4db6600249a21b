package api

// GET /servers/{id}/diagnostics and GET /os-hypervisors/{id}/uptime: both
// ask the host's agent over the bus (compute.instance.op 1.6 ops
// "diagnostics" and "host_uptime").

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
)

const (
	ruleDiagnostics = "os_compute_api:os-server-diagnostics"
	ruleHypUptime   = "os_compute_api:os-hypervisors:uptime"
)

// agentCallTimeout bounds a synchronous question to an agent.
const agentCallTimeout = 30 * time.Second

// extraRules are the policy defaults of diagnostics, uptime and
// extensions.
func extraRules() [][3]string {
	return [][3]string{
		{ruleDiagnostics, "role:admin", "Show the diagnostics of a server."},
		{ruleHypUptime, "role:admin", "Show the uptime of a hypervisor (before 2.88)."},
		{ruleExtensions, "", "List the API extensions."},
	}
}

func (a *API) extraRoutes() []apiutil.Route {
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h}
	}
	return []apiutil.Route{
		rt("GET", "/servers/{server_id}/diagnostics", a.serverDiagnostics),
		rt("GET", "/os-hypervisors/{hypervisor_id}/uptime", a.hypervisorUptime),
		rt("GET", "/extensions", a.listExtensions),
		rt("GET", "/extensions/{alias}", a.showExtension),
	}
}

// agentUnsupported reports whether an agent error means "this agent (or
// its driver) cannot do that": an older agent rejects the message
// version or does not know the op, a driver answers unsupported.
func agentUnsupported(err error) bool {
	var be *bus.Error
	if !errors.As(err, &be) {
		return false
	}
	switch be.Code {
	case rpc.CodeUnsupported, bus.CodeUnsupportedVersion, bus.CodeUnknownType:
		return true
	}
	return false
}

// opVersionDiag is the compute.instance.op version of diagnostics and
// host_uptime.
var opVersionDiag = bus.V(1, 6)

// sendsOp reports whether requests go out at version v or later (not
// capped below it during a rolling upgrade); senders that cannot say are
// assumed current.
func (a *API) sendsOp(v bus.Version) bool {
	if s, ok := a.servers.(interface{ OpVersion() bus.Version }); ok {
		return !s.OpVersion().Less(v)
	}
	return true
}

func (a *API) agentOp(r *http.Request, host string, req rpc.OpRequest) (rpc.OpReply, error) {
	if !a.sendsOp(opVersionDiag) {
		// Capped below 1.6: older agents would not know the op.
		return rpc.OpReply{}, bus.NewError(rpc.CodeUnsupported, "compute.instance.op is capped below %s", opVersionDiag)
	}
	c, cancel := context.WithTimeout(ctx(r), agentCallTimeout)
	defer cancel()
	return a.servers.InstanceOp(c, host, req)
}

func (a *API) serverDiagnostics(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("server_id")
	i, err := a.loadServer(r, id, ruleDiagnostics)
	if err != nil {
		return nil, err
	}
	host := i.HostName()
	if host == "" {
		return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
	}
	rep, err := a.agentOp(r, host, rpc.OpRequest{Op: rpc.OpDiagnostics, Instance: rpc.Instance{UUID: i.UUID}})
	var be *bus.Error
	switch {
	case err == nil && rep.Diagnostics == nil:
		err = errors.New("agent answered diagnostics without them")
	case agentUnsupported(err):
		return nil, apiutil.Errorf(501, "The requested functionality is not supported.")
	case errors.Is(err, conductor.ErrHostUnavailable) || errors.As(err, &be) && (be.Code == bus.CodeNotFound || be.Code == bus.CodeTimeout || be.Code == bus.CodeUnavailable):
		return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
	}
	if err != nil {
		return nil, internal(fmt.Errorf("diagnostics of %s: %w", i.UUID, err))
	}
	d := rep.Diagnostics
	if atLeast(r, V2_48) {
		return apiutil.JSON(200, diagnosticsView(d)), nil
	}
	return apiutil.JSON(200, legacyDiagnostics(d)), nil
}

func int64OrNil(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func strPtrOrNil(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// diagnosticsView is Nova's standardized format (2.48).
func diagnosticsView(d *rpc.Diagnostics) map[string]any {
	cpus := make([]any, 0, len(d.CPUs))
	for _, c := range d.CPUs {
		cpus = append(cpus, map[string]any{"id": c.ID, "time": int64OrNil(c.Time), "utilisation": int64OrNil(c.Utilisation)})
	}
	disks := make([]any, 0, len(d.Disks))
	for _, k := range d.Disks {
		disks = append(disks, map[string]any{"read_bytes": int64OrNil(k.ReadBytes), "read_requests": int64OrNil(k.ReadRequests),
			"write_bytes": int64OrNil(k.WriteBytes), "write_requests": int64OrNil(k.WriteRequests), "errors_count": int64OrNil(k.ErrorsCount)})
	}
	nics := make([]any, 0, len(d.NICs))
	for _, n := range d.NICs {
		nics = append(nics, map[string]any{"mac_address": n.MAC,
			"rx_octets": int64OrNil(n.RxOctets), "rx_errors": int64OrNil(n.RxErrors), "rx_drop": int64OrNil(n.RxDrop),
			"rx_packets": int64OrNil(n.RxPackets), "rx_rate": int64OrNil(n.RxRate),
			"tx_octets": int64OrNil(n.TxOctets), "tx_errors": int64OrNil(n.TxErrors), "tx_drop": int64OrNil(n.TxDrop),
			"tx_packets": int64OrNil(n.TxPackets), "tx_rate": int64OrNil(n.TxRate)})
	}
	return map[string]any{
		"state": d.State, "driver": d.Driver, "hypervisor": strPtrOrNil(d.Hypervisor), "hypervisor_os": strPtrOrNil(d.HypervisorOS),
		"uptime": int64OrNil(d.Uptime), "config_drive": d.ConfigDrive,
		"num_cpus": len(d.CPUs), "num_disks": len(d.Disks), "num_nics": len(d.NICs),
		"memory_details": map[string]any{"maximum": int64OrNil(d.MemoryMaxMB), "used": int64OrNil(d.MemoryUsedMB)},
		"cpu_details":    cpus, "disk_details": disks, "nic_details": nics,
	}
}

// legacyDiagnostics is the driver-specific format before 2.48, in the
// shape of Nova's libvirt driver: cpuN_time, memory (KiB), per disk
// <dev>_read, _read_req, _write, _write_req, _errors, per NIC <tap>_rx,
// _rx_packets, _rx_errors, _rx_drop and the same for _tx. Unknown
// counters are left out.
func legacyDiagnostics(d *rpc.Diagnostics) map[string]any {
	out := map[string]any{}
	put := func(k string, p *int64) {
		if p != nil {
			out[k] = *p
		}
	}
	for _, c := range d.CPUs {
		put(fmt.Sprintf("cpu%d_time", c.ID), c.Time)
	}
	if d.MemoryMaxMB != nil {
		out["memory"] = *d.MemoryMaxMB * 1024
	}
	for _, k := range d.Disks {
		n := k.Name
		put(n+"_read", k.ReadBytes)
		put(n+"_read_req", k.ReadRequests)
		put(n+"_write", k.WriteBytes)
		put(n+"_write_req", k.WriteRequests)
		put(n+"_errors", k.ErrorsCount)
	}
	for _, nic := range d.NICs {
		n := nic.Name
		if n == "" {
			n = strings.ReplaceAll(nic.MAC, ":", "")
		}
		put(n+"_rx", nic.RxOctets)
		put(n+"_rx_packets", nic.RxPackets)
		put(n+"_rx_errors", nic.RxErrors)
		put(n+"_rx_drop", nic.RxDrop)
		put(n+"_tx", nic.TxOctets)
		put(n+"_tx_packets", nic.TxPackets)
		put(n+"_tx_errors", nic.TxErrors)
		put(n+"_tx_drop", nic.TxDrop)
	}
	return out
}

// hostUptime asks the agent of h for its host's uptime line.
func (a *API) hostUptime(r *http.Request, h hypervisor) (string, error) {
	if a.servers == nil || !conductor.ServiceUp(h.svc, a.downTime, time.Now()) {
		return "", apiutil.BadRequest("Compute service of %s is unavailable at this time.", h.node.Host)
	}
	// The op is about the host; the node's uuid stands in the instance
	// field, which agents before 1.6 require.
	rep, err := a.agentOp(r, h.node.Host, rpc.OpRequest{Op: rpc.OpHostUptime, Instance: rpc.Instance{UUID: h.node.UUID}})
	var be *bus.Error
	switch {
	case err == nil && rep.Uptime == "":
		return "", apiutil.Errorf(501, "Virt driver does not implement uptime function.")
	case err == nil:
		return rep.Uptime, nil
	case agentUnsupported(err) || errors.As(err, &be) && be.Code == bus.CodeNotFound:
		// An agent that does not know the op answers not_found (no such
		// instance) or unsupported.
		return "", apiutil.Errorf(501, "Virt driver does not implement uptime function.")
	case errors.Is(err, conductor.ErrHostUnavailable) || errors.As(err, &be) && (be.Code == bus.CodeTimeout || be.Code == bus.CodeUnavailable):
		return "", apiutil.BadRequest("Compute service of %s is unavailable at this time.", h.node.Host)
	}
	return "", internal(fmt.Errorf("uptime of %s: %w", h.node.Host, err))
}

// hypervisorUptime serves GET /os-hypervisors/{id}/uptime (up to 2.87;
// from 2.88 the hypervisor view carries uptime).
func (a *API) hypervisorUptime(r *http.Request) (*apiutil.Response, error) {
	if atLeast(r, V2_88) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	if err := a.authorize(r, ruleHypUptime, own(r)); err != nil {
		return nil, err
	}
	h, err := a.findHypervisor(r, r.PathValue("hypervisor_id"))
	if err != nil {
		return nil, err
	}
	up, err := a.hostUptime(r, h)
	if err != nil {
		return nil, err
	}
	v := a.hypervisorView(r, h, false)
	v["uptime"] = up
	return apiutil.JSON(200, map[string]any{"hypervisor": v}), nil
}

// viewUptime is the uptime of the 2.88 hypervisor view: null when the
// host cannot tell (service down, driver without it), as in Nova.
func (a *API) viewUptime(r *http.Request, h hypervisor) any {
	up, err := a.hostUptime(r, h)
	if err != nil {
		return nil
	}
	return up
}
