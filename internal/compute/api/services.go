package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
)

// Policy rule names of services and hypervisors.
const (
	ruleServicesList   = "os_compute_api:os-services:list"
	ruleServicesUpdate = "os_compute_api:os-services:update"
	ruleServicesDelete = "os_compute_api:os-services:delete"
	ruleHypList        = "os_compute_api:os-hypervisors:list"
	ruleHypDetail      = "os_compute_api:os-hypervisors:list-detail"
	ruleHypShow        = "os_compute_api:os-hypervisors:show"
	ruleHypStats       = "os_compute_api:os-hypervisors:statistics"
	ruleHypServers     = "os_compute_api:os-hypervisors:servers"
	ruleHypSearch      = "os_compute_api:os-hypervisors:search"
)

func (a *API) serviceView(r *http.Request, s *store.Service) map[string]any {
	state := "down"
	if conductor.ServiceUp(s, a.downTime, time.Now()) {
		state = "up"
	}
	status := "enabled"
	if s.Disabled {
		status = "disabled"
	}
	zone := "internal"
	if s.Binary == "nova-compute" {
		zone = DefaultZone
	}
	upd := s.UpdatedAt
	if s.LastSeenUp.After(upd) {
		upd = s.LastSeenUp
	}
	v := map[string]any{"binary": s.Binary, "disabled_reason": orNil(s.DisabledReason), "host": s.Host,
		"state": state, "status": status, "updated_at": microTime(upd), "zone": zone}
	if atLeast(r, V2_53) {
		v["id"] = s.UUID
	} else {
		v["id"] = s.ID
	}
	if atLeast(r, V2_11) {
		v["forced_down"] = s.ForcedDown
	}
	return v
}

func (a *API) listServices(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleServicesList, own(r)); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	svcs, err := a.st.ListServices(ctx(r), q.Get("host"), q.Get("binary"))
	if err != nil {
		return nil, internal(err)
	}
	out := make([]any, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, a.serviceView(r, s))
	}
	return apiutil.JSON(200, map[string]any{"services": out}), nil
}

func (a *API) updateService(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleServicesUpdate, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("service_id")
	var body map[string]any
	if err := apiutil.DecodeJSON(r, nil, &body); err != nil {
		return nil, err
	}
	if !atLeast(r, V2_53) {
		return a.updateServiceLegacy(r, id, body)
	}
	if !isUUID(id) {
		return nil, apiutil.BadRequest("Invalid uuid %s", id)
	}
	var disabled, forced *bool
	var reason *string
	for k, v := range body {
		switch k {
		case "status":
			s, _ := v.(string)
			if s != "enabled" && s != "disabled" {
				return nil, apiutil.BadRequest("Invalid input for field/attribute status. Value: %v. '%v' is not one of ['enabled', 'disabled']", v, v)
			}
			d := s == "disabled"
			disabled = &d
		case "disabled_reason":
			s, ok := v.(string)
			if !ok || len(s) < 1 || len(s) > 255 {
				return nil, apiutil.BadRequest("Invalid input for field/attribute disabled_reason.")
			}
			reason = &s
		case "forced_down":
			b, ok := v.(bool)
			if !ok {
				return nil, apiutil.BadRequest("Invalid input for field/attribute forced_down.")
			}
			forced = &b
		default:
			return nil, apiutil.BadRequest("Invalid input for field/attribute service. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if disabled == nil && forced == nil {
		return nil, apiutil.BadRequest("At least one of 'status' or 'forced_down' should be specified.")
	}
	if reason != nil && (disabled == nil || !*disabled) {
		return nil, apiutil.BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
	}
	cur, err := a.st.GetService(ctx(r), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Service %s could not be found.", id)
	}
	if err != nil {
		return nil, internal(err)
	}
	if cur.Binary != "nova-compute" {
		return nil, apiutil.BadRequest("Updating a %s service is not supported. Only nova-compute services can be updated.", cur.Binary)
	}
	if disabled != nil && !*disabled {
		reason = nil
	}
	s, err := a.st.UpdateService(ctx(r), id, disabled, reason, forced)
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"service": a.serviceView(r, s)}), nil
}

// updateServiceLegacy serves PUT /os-services/{enable,disable,
// disable-log-reason,force-down} of versions before 2.53.
func (a *API) updateServiceLegacy(r *http.Request, action string, body map[string]any) (*apiutil.Response, error) {
	host, _ := body["host"].(string)
	binary, _ := body["binary"].(string)
	svcs, err := a.st.ListServices(ctx(r), host, binary)
	if err != nil {
		return nil, internal(err)
	}
	if host == "" || binary == "" || len(svcs) == 0 {
		return nil, apiutil.NotFound("Service %s could not be found.", binary)
	}
	s := svcs[0]
	var disabled, forced *bool
	var reason *string
	t, f := true, false
	switch action {
	case "enable":
		disabled = &f
	case "disable":
		disabled = &t
	case "disable-log-reason":
		disabled = &t
		if v, ok := body["disabled_reason"].(string); ok {
			reason = &v
		}
	case "force-down":
		b, _ := body["forced_down"].(bool)
		forced = &b
	default:
		return nil, apiutil.NotFound("Unknown action")
	}
	if s, err = a.st.UpdateService(ctx(r), s.UUID, disabled, reason, forced); err != nil {
		return nil, internal(err)
	}
	out := map[string]any{"host": s.Host, "binary": s.Binary}
	if disabled != nil {
		out["status"] = map[bool]string{true: "disabled", false: "enabled"}[*disabled]
	}
	if reason != nil {
		out["disabled_reason"] = *reason
	}
	if forced != nil {
		out["forced_down"] = *forced
	}
	return apiutil.JSON(200, map[string]any{"service": out}), nil
}

func (a *API) deleteService(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleServicesDelete, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("service_id")
	if atLeast(r, V2_53) && !isUUID(id) {
		return nil, apiutil.BadRequest("Invalid uuid %s", id)
	}
	if !atLeast(r, V2_53) {
		svcs, err := a.st.ListServices(ctx(r), "", "")
		if err != nil {
			return nil, internal(err)
		}
		for _, s := range svcs {
			if strconv.FormatInt(s.ID, 10) == id {
				id = s.UUID
			}
		}
	}
	svc, err := a.st.GetService(ctx(r), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Service %s could not be found.", id)
	} else if err != nil {
		return nil, internal(err)
	}
	prov := ""
	if svc.Binary == "nova-compute" {
		if prov, err = a.computeServiceDeletable(r, svc.Host); err != nil {
			return nil, err
		}
		aggs, err := a.st.ListAggregates(ctx(r))
		if err != nil {
			return nil, internal(err)
		}
		for _, g := range aggs {
			if slices.Contains(g.Hosts, svc.Host) {
				if err := a.st.RemoveAggregateHost(ctx(r), g.ID, svc.Host); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, internal(err)
				}
			}
		}
	}
	if err := a.st.DeleteService(ctx(r), id); errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Service %s could not be found.", id)
	} else if err != nil {
		return nil, internal(err)
	}
	// The node's resource provider goes with it, as in Nova; a host that
	// reports again registers a new node and provider. An allocation made
	// since the check keeps the provider (logged, as Nova does).
	if prov != "" {
		if err := a.placement.DeleteProvider(ctx(r), prov); err != nil && !errors.Is(err, placement.ErrNotFound) {
			a.log.Warn("delete the resource provider of a deleted compute service", "host", svc.Host, "provider", prov, "err", err)
		}
	}
	return apiutil.NoContent(), nil
}

// finishedMigration holds the statuses of migrations that no longer
// involve their hosts (Nova's "not in progress" list).
var finishedMigration = map[string]bool{"confirmed": true, "reverted": true, "error": true, "failed": true,
	"completed": true, "cancelled": true, "done": true}

// computeServiceDeletable answers Nova's 409 when host still hosts
// instances or takes part in a migration in progress, releases the
// allocations of instances evacuated from host (their source half), and
// answers 409 when the node's resource provider still holds allocations
// after that, so that deleting the service orphans none. It returns the
// provider ("" without placement or node).
func (a *API) computeServiceDeletable(r *http.Request, host string) (string, error) {
	insts, err := a.st.InstancesOnHosts(ctx(r), []string{host})
	if err != nil {
		return "", internal(err)
	}
	if len(insts[host]) > 0 {
		return "", apiutil.Conflict("Unable to delete compute service that is hosting instances. Migrate or delete the instances first.")
	}
	migs, err := a.st.ListMigrations(ctx(r), store.MigrationFilter{Host: host})
	if err != nil {
		return "", internal(err)
	}
	for _, m := range migs {
		if !finishedMigration[m.Status] {
			return "", apiutil.Conflict("Unable to delete compute service that has in-progress migrations. Complete the migrations or delete the instances first.")
		}
	}
	if a.placement == nil {
		return "", nil
	}
	n, err := a.st.NodeByHost(ctx(r), host)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", internal(err)
	}
	if _, err := conductor.ReleaseEvacuatedSources(ctx(r), a.st, a.placement, host, n.UUID, nil, a.log); err != nil {
		a.log.Warn("release allocations of instances evacuated from a deleted service", "host", host, "err", err)
	}
	allocs, err := a.placement.ProviderAllocations(ctx(r), n.UUID)
	if err != nil {
		return "", internal(err)
	}
	if len(allocs) > 0 {
		return "", apiutil.Conflict("Unable to delete compute service whose resource provider %s has allocations of %d consumers in placement. Remove the allocations first.",
			n.UUID, len(allocs))
	}
	return n.UUID, nil
}

// ---- hypervisors ----

type hypervisor struct {
	node *store.Node
	svc  *store.Service
	used store.HostUsage
}

func (a *API) hypervisors(r *http.Request) ([]hypervisor, error) {
	nodes, err := a.st.ListNodes(ctx(r), nil)
	if err != nil {
		return nil, err
	}
	svcs, err := a.st.ListServices(ctx(r), "", "nova-compute")
	if err != nil {
		return nil, err
	}
	usage, err := a.st.HostsUsage(ctx(r), nil)
	if err != nil {
		return nil, err
	}
	byID := map[int64]*store.Service{}
	for _, s := range svcs {
		byID[s.ID] = s
	}
	var out []hypervisor
	for _, n := range nodes {
		if s := byID[n.ServiceID]; s != nil {
			out = append(out, hypervisor{n, s, usage[n.Host]})
		}
	}
	return out, nil
}

func (a *API) hypervisorView(r *http.Request, h hypervisor, detail bool) map[string]any {
	state := "down"
	if conductor.ServiceUp(h.svc, a.downTime, time.Now()) {
		state = "up"
	}
	status := "enabled"
	if h.svc.Disabled {
		status = "disabled"
	}
	v := map[string]any{"hypervisor_hostname": h.node.HypervisorHostname, "state": state, "status": status}
	if atLeast(r, V2_53) {
		v["id"] = h.node.UUID
	} else {
		v["id"] = h.node.ID
	}
	if !detail {
		return v
	}
	svc := map[string]any{"host": h.svc.Host, "disabled_reason": orNil(h.svc.DisabledReason)}
	if atLeast(r, V2_53) {
		svc["id"] = h.svc.UUID
	} else {
		svc["id"] = h.svc.ID
	}
	v["service"] = svc
	v["host_ip"] = h.node.HostIP
	v["hypervisor_type"] = h.node.HypervisorType
	v["hypervisor_version"] = h.node.HypervisorVersion
	if !atLeast(r, V2_88) {
		v["vcpus"] = h.node.VCPUs
		v["memory_mb"] = h.node.MemoryMB
		v["local_gb"] = h.node.LocalGB
		v["vcpus_used"] = h.used.VCPUs
		v["memory_mb_used"] = h.used.MemoryMB
		v["local_gb_used"] = h.used.DiskGB
		v["free_ram_mb"] = h.node.MemoryMB - h.used.MemoryMB
		v["free_disk_gb"] = h.node.LocalGB - h.used.DiskGB
		v["current_workload"] = 0
		v["running_vms"] = h.used.Instances
		v["disk_available_least"] = h.node.LocalGB - h.used.DiskGB
		v["cpu_info"] = "{}"
	}
	return v
}

func (a *API) listHypervisors(r *http.Request) (*apiutil.Response, error) {
	return a.hypervisorList(r, false)
}

func (a *API) hypervisorList(r *http.Request, detail bool) (*apiutil.Response, error) {
	rule := ruleHypList
	if detail {
		rule = ruleHypDetail
	}
	if err := a.authorize(r, rule, own(r)); err != nil {
		return nil, err
	}
	hs, err := a.hypervisors(r)
	if err != nil {
		return nil, internal(err)
	}
	q := r.URL.Query()
	pattern := q.Get("hypervisor_hostname_pattern")
	withServers := atLeast(r, V2_53) && q.Get("with_servers") == "true"
	out := make([]any, 0, len(hs))
	for _, h := range hs {
		if pattern != "" && !containsFold(h.node.HypervisorHostname, pattern) {
			continue
		}
		v := a.hypervisorView(r, h, detail)
		if withServers {
			if err := a.addHypervisorServers(r, v, h); err != nil {
				return nil, err
			}
		}
		out = append(out, v)
	}
	if pattern != "" && len(out) == 0 {
		return nil, apiutil.NotFound("No hypervisor matching '%s' could be found.", pattern)
	}
	return apiutil.JSON(200, map[string]any{"hypervisors": out}), nil
}

func containsFold(s, sub string) bool {
	return len(sub) == 0 || indexFold(s, sub) >= 0
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func (a *API) addHypervisorServers(r *http.Request, v map[string]any, h hypervisor) error {
	insts, err := a.st.ListInstances(ctx(r), store.InstanceFilter{Host: h.node.Host})
	if err != nil {
		return internal(err)
	}
	if len(insts) == 0 {
		return nil
	}
	list := make([]any, 0, len(insts))
	for _, i := range insts {
		list = append(list, map[string]any{"name": i.InstanceName(), "uuid": i.UUID})
	}
	v["servers"] = list
	return nil
}

// showHypervisor serves GET /os-hypervisors/{id}, where id may also be
// "detail" or "statistics" (literal routes beside a wildcard collide in
// the shared mux).
func (a *API) showHypervisor(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("hypervisor_id")
	switch id {
	case "detail":
		return a.hypervisorList(r, true)
	case "statistics":
		return a.hypervisorStats(r)
	}
	if err := a.authorize(r, ruleHypShow, own(r)); err != nil {
		return nil, err
	}
	h, err := a.findHypervisor(r, id)
	if err != nil {
		return nil, err
	}
	v := a.hypervisorView(r, h, true)
	if atLeast(r, V2_88) {
		v["uptime"] = a.viewUptime(r, h)
	}
	if atLeast(r, V2_53) && r.URL.Query().Get("with_servers") == "true" {
		if err := a.addHypervisorServers(r, v, h); err != nil {
			return nil, err
		}
	}
	return apiutil.JSON(200, map[string]any{"hypervisor": v}), nil
}

func (a *API) findHypervisor(r *http.Request, id string) (hypervisor, error) {
	hs, err := a.hypervisors(r)
	if err != nil {
		return hypervisor{}, internal(err)
	}
	for _, h := range hs {
		if h.node.UUID == id || !atLeast(r, V2_53) && strconv.FormatInt(h.node.ID, 10) == id {
			return h, nil
		}
	}
	if atLeast(r, V2_53) && !isUUID(id) {
		return hypervisor{}, apiutil.BadRequest("Invalid uuid %s", id)
	}
	return hypervisor{}, apiutil.NotFound("Hypervisor with ID %s could not be found.", id)
}

// hypervisorServers serves GET /os-hypervisors/{hostname}/servers (before 2.53).
func (a *API) hypervisorServers(r *http.Request) (*apiutil.Response, error) {
	if atLeast(r, V2_53) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	if err := a.authorize(r, ruleHypServers, own(r)); err != nil {
		return nil, err
	}
	hs, err := a.hypervisors(r)
	if err != nil {
		return nil, internal(err)
	}
	pattern := r.PathValue("hypervisor_id")
	var out []any
	for _, h := range hs {
		if containsFold(h.node.HypervisorHostname, pattern) {
			v := a.hypervisorView(r, h, false)
			if err := a.addHypervisorServers(r, v, h); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, apiutil.NotFound("No hypervisor matching '%s' could be found.", pattern)
	}
	return apiutil.JSON(200, map[string]any{"hypervisors": out}), nil
}

func (a *API) hypervisorStats(r *http.Request) (*apiutil.Response, error) {
	if atLeast(r, V2_88) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	if err := a.authorize(r, ruleHypStats, own(r)); err != nil {
		return nil, err
	}
	hs, err := a.hypervisors(r)
	if err != nil {
		return nil, internal(err)
	}
	var s struct{ count, vcpus, mem, disk, vcpusUsed, memUsed, diskUsed, vms int64 }
	for _, h := range hs {
		s.count++
		s.vcpus += h.node.VCPUs
		s.mem += h.node.MemoryMB
		s.disk += h.node.LocalGB
		s.vcpusUsed += h.used.VCPUs
		s.memUsed += h.used.MemoryMB
		s.diskUsed += h.used.DiskGB
		s.vms += h.used.Instances
	}
	return apiutil.JSON(200, map[string]any{"hypervisor_statistics": map[string]any{
		"count": s.count, "vcpus": s.vcpus, "memory_mb": s.mem, "local_gb": s.disk, "vcpus_used": s.vcpusUsed,
		"memory_mb_used": s.memUsed, "local_gb_used": s.diskUsed, "free_ram_mb": s.mem - s.memUsed,
		"free_disk_gb": s.disk - s.diskUsed, "current_workload": 0, "running_vms": s.vms, "disk_available_least": s.disk - s.diskUsed,
	}}), nil
}
