package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Policy rule names of host aggregates.
const (
	ruleAggIndex       = "os_compute_api:os-aggregates:index"
	ruleAggCreate      = "os_compute_api:os-aggregates:create"
	ruleAggShow        = "os_compute_api:os-aggregates:show"
	ruleAggUpdate      = "os_compute_api:os-aggregates:update"
	ruleAggDelete      = "os_compute_api:os-aggregates:delete"
	ruleAggAddHost     = "os_compute_api:os-aggregates:add_host"
	ruleAggRemoveHost  = "os_compute_api:os-aggregates:remove_host"
	ruleAggSetMetadata = "os_compute_api:os-aggregates:set_metadata"
)

// V2_41: aggregate views show uuid.
var V2_41 = apiutil.Version{Major: 2, Minor: 41}

var aggregateCreateSchema = apiutil.MustSchema("compute-aggregate-create", `{"type": "object",
	"properties": {"aggregate": {"type": "object", "properties": {
		"name": {"type": "string", "minLength": 1, "maxLength": 255},
		"availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}},
		"required": ["name"], "additionalProperties": false}},
	"required": ["aggregate"], "additionalProperties": false}`)

var aggregateUpdateSchema = apiutil.MustSchema("compute-aggregate-update", `{"type": "object",
	"properties": {"aggregate": {"type": "object", "properties": {
		"name": {"type": "string", "minLength": 1, "maxLength": 255},
		"availability_zone": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}},
		"anyOf": [{"required": ["name"]}, {"required": ["availability_zone"]}], "additionalProperties": false}},
	"required": ["aggregate"], "additionalProperties": false}`)

var aggregateActionSchema = apiutil.MustSchema("compute-aggregate-action", `{"type": "object",
	"properties": {
		"add_host": {"type": "object", "properties": {"host": {"type": "string", "minLength": 1, "maxLength": 255}},
			"required": ["host"], "additionalProperties": false},
		"remove_host": {"type": "object", "properties": {"host": {"type": "string", "minLength": 1, "maxLength": 255}},
			"required": ["host"], "additionalProperties": false},
		"set_metadata": {"type": "object", "properties": {"metadata": {"type": "object",
			"patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"], "maxLength": 255}},
			"additionalProperties": false}}, "required": ["metadata"], "additionalProperties": false}},
	"minProperties": 1, "maxProperties": 1, "additionalProperties": false}`)

func aggTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func (a *API) aggregateView(r *http.Request, g *store.Aggregate) map[string]any {
	v := map[string]any{"id": g.ID, "name": g.Name, "availability_zone": nil, "hosts": g.Hosts, "metadata": g.Metadata,
		"created_at": aggTime(g.CreatedAt), "updated_at": aggTime(g.UpdatedAt), "deleted": false, "deleted_at": nil}
	if z := g.Zone(); z != "" {
		v["availability_zone"] = z
	}
	if atLeast(r, V2_41) {
		v["uuid"] = g.UUID
	}
	return v
}

func (a *API) aggregateID(r *http.Request) (*store.Aggregate, error) {
	raw := r.PathValue("aggregate_id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, apiutil.BadRequest("Invalid aggregate id %s", raw)
	}
	g, err := a.st.GetAggregate(ctx(r), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Aggregate %s could not be found.", raw)
	}
	if err != nil {
		return nil, internal(err)
	}
	return g, nil
}

func (a *API) listAggregates(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleAggIndex, own(r)); err != nil {
		return nil, err
	}
	all, err := a.st.ListAggregates(ctx(r))
	if err != nil {
		return nil, internal(err)
	}
	out := make([]any, 0, len(all))
	for _, g := range all {
		out = append(out, a.aggregateView(r, g))
	}
	return apiutil.JSON(200, map[string]any{"aggregates": out}), nil
}

// checkZoneName refuses a zone name that would clash with the default
// zone (Nova forbids naming an aggregate's zone after it only for the
// internal service zone; the default zone is allowed).
func checkZoneName(z *string) error {
	if z != nil && *z == "internal" {
		return apiutil.BadRequest("Invalid input for field/attribute availability_zone. Value: internal. The availability zone name is reserved.")
	}
	if z != nil {
		if err := checkName("availability_zone", *z); err != nil {
			return err
		}
	}
	return nil
}

func (a *API) createAggregate(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleAggCreate, own(r)); err != nil {
		return nil, err
	}
	var body struct {
		Aggregate struct {
			Name string  `json:"name"`
			Zone *string `json:"availability_zone"`
		} `json:"aggregate"`
	}
	if err := apiutil.DecodeJSON(r, aggregateCreateSchema, &body); err != nil {
		return nil, err
	}
	b := body.Aggregate
	if err := checkName("name", b.Name); err != nil {
		return nil, err
	}
	if err := checkZoneName(b.Zone); err != nil {
		return nil, err
	}
	zone := ""
	if b.Zone != nil {
		zone = *b.Zone
	}
	id, err := a.st.CreateAggregate(ctx(r), newUUID(), b.Name, zone)
	if errors.Is(err, store.ErrDuplicate) {
		return nil, apiutil.Conflict("Aggregate %s already exists.", b.Name)
	}
	if err != nil {
		return nil, internal(err)
	}
	g, err := a.st.GetAggregate(ctx(r), id)
	if err != nil {
		return nil, internal(err)
	}
	v := a.aggregateView(r, g)
	// Nova's create answer has no hosts or metadata.
	delete(v, "hosts")
	delete(v, "metadata")
	return apiutil.JSON(200, map[string]any{"aggregate": v}), nil
}

func (a *API) showAggregate(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleAggShow, own(r)); err != nil {
		return nil, err
	}
	g, err := a.aggregateID(r)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"aggregate": a.aggregateView(r, g)}), nil
}

func (a *API) updateAggregate(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleAggUpdate, own(r)); err != nil {
		return nil, err
	}
	var body struct {
		Aggregate map[string]*string `json:"aggregate"`
	}
	if err := apiutil.DecodeJSON(r, aggregateUpdateSchema, &body); err != nil {
		return nil, err
	}
	g, err := a.aggregateID(r)
	if err != nil {
		return nil, err
	}
	name, zoneSet := body.Aggregate["name"], false
	var zone *string
	if z, ok := body.Aggregate["availability_zone"]; ok {
		zoneSet = true
		if err := checkZoneName(z); err != nil {
			return nil, err
		}
		empty := ""
		zone = &empty
		if z != nil {
			zone = z
		}
		if err := a.checkHostZones(r, g, g.Hosts, *zone); err != nil {
			return nil, err
		}
	}
	if name != nil {
		if err := checkName("name", *name); err != nil {
			return nil, err
		}
	}
	if !zoneSet {
		zone = nil
	}
	err = a.st.UpdateAggregate(ctx(r), g.ID, name, zone)
	if errors.Is(err, store.ErrDuplicate) {
		return nil, apiutil.Conflict("Aggregate %s already exists.", *name)
	}
	if err != nil {
		return nil, internal(err)
	}
	return a.showAggregate(r)
}

func (a *API) deleteAggregate(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleAggDelete, own(r)); err != nil {
		return nil, err
	}
	g, err := a.aggregateID(r)
	if err != nil {
		return nil, err
	}
	if len(g.Hosts) > 0 {
		return nil, apiutil.BadRequest("Cannot delete aggregate: %d. Reason: Host aggregate is not empty.", g.ID)
	}
	if err := a.st.DeleteAggregate(ctx(r), g.ID); err != nil {
		return nil, internal(err)
	}
	return &apiutil.Response{Status: 200}, nil
}

// checkHostZones refuses to put hosts in two zones at once: a host
// already in another aggregate with a different zone cannot join (or
// stay in) one with zone.
func (a *API) checkHostZones(r *http.Request, g *store.Aggregate, hosts []string, zone string) error {
	if zone == "" || len(hosts) == 0 {
		return nil
	}
	all, err := a.st.ListAggregates(ctx(r))
	if err != nil {
		return internal(err)
	}
	var clash []string
	for _, o := range all {
		if o.ID == g.ID || o.Zone() == "" || o.Zone() == zone {
			continue
		}
		for _, h := range hosts {
			if slices.Contains(o.Hosts, h) && !slices.Contains(clash, o.Zone()) {
				clash = append(clash, o.Zone())
			}
		}
	}
	if len(clash) > 0 {
		return apiutil.Conflict("Cannot add host to aggregate %d. Reason: One or more hosts already in availability zone(s) %v.", g.ID, clash)
	}
	return nil
}

func (a *API) aggregateAction(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Add *struct {
			Host string `json:"host"`
		} `json:"add_host"`
		Remove *struct {
			Host string `json:"host"`
		} `json:"remove_host"`
		Meta *struct {
			Metadata map[string]*string `json:"metadata"`
		} `json:"set_metadata"`
	}
	if err := apiutil.DecodeJSON(r, aggregateActionSchema, &body); err != nil {
		return nil, err
	}
	rule := ruleAggSetMetadata
	switch {
	case body.Add != nil:
		rule = ruleAggAddHost
	case body.Remove != nil:
		rule = ruleAggRemoveHost
	}
	if err := a.authorize(r, rule, own(r)); err != nil {
		return nil, err
	}
	g, err := a.aggregateID(r)
	if err != nil {
		return nil, err
	}
	switch {
	case body.Add != nil:
		h := body.Add.Host
		svcs, err := a.st.ListServices(ctx(r), h, "nova-compute")
		if err != nil {
			return nil, internal(err)
		}
		if len(svcs) == 0 {
			return nil, apiutil.NotFound("Compute host %s could not be found.", h)
		}
		if err := a.checkHostZones(r, g, []string{h}, g.Zone()); err != nil {
			return nil, err
		}
		if err := a.st.AddAggregateHost(ctx(r), g.ID, h); errors.Is(err, store.ErrDuplicate) {
			return nil, apiutil.Conflict("Aggregate %d already has host %s.", g.ID, h)
		} else if err != nil {
			return nil, internal(err)
		}
		a.mirror(ctx(r), h)
	case body.Remove != nil:
		h := body.Remove.Host
		if err := a.st.RemoveAggregateHost(ctx(r), g.ID, h); errors.Is(err, store.ErrNotFound) {
			return nil, apiutil.NotFound("Cannot remove host %s in aggregate %d", h, g.ID)
		} else if err != nil {
			return nil, internal(err)
		}
		a.mirror(ctx(r), h)
	default:
		md := body.Meta.Metadata
		if z, ok := md["availability_zone"]; ok {
			if err := checkZoneName(z); err != nil {
				return nil, err
			}
			zone := ""
			if z != nil {
				zone = *z
			}
			if err := a.checkHostZones(r, g, g.Hosts, zone); err != nil {
				return nil, err
			}
		}
		if err := a.st.SetAggregateMetadata(ctx(r), g.ID, md); err != nil {
			return nil, internal(err)
		}
	}
	g, err = a.aggregateID(r)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"aggregate": a.aggregateView(r, g)}), nil
}

// mirror copies a host's aggregates into its placement provider; a
// failure is logged, the conductor's next provider heal repeats it.
func (a *API) mirror(ctx context.Context, host string) {
	if err := conductor.MirrorAggregates(ctx, a.st, a.placement, host); err != nil {
		a.log.Warn("mirror aggregates into placement", "host", host, "err", err)
	}
}

// AggregateZones lists the default zone and the zones aggregates define,
// with the compute services of their hosts (os-availability-zone).
type AggregateZones struct {
	Store       *store.Store
	DefaultZone string
	DownTime    time.Duration
}

// Zones implements ZoneSource.
func (z AggregateZones) Zones(ctx context.Context) ([]Zone, error) {
	def := z.DefaultZone
	if def == "" {
		def = DefaultZone
	}
	if z.DownTime <= 0 {
		z.DownTime = 60 * time.Second
	}
	aggs, err := z.Store.ListAggregates(ctx)
	if err != nil {
		return nil, err
	}
	svcs, err := z.Store.ListServices(ctx, "", "")
	if err != nil {
		return nil, err
	}
	zoneOf := map[string]string{}
	for _, g := range aggs {
		if zn := g.Zone(); zn != "" {
			for _, h := range g.Hosts {
				zoneOf[h] = zn
			}
		}
	}
	byName := map[string]*Zone{def: {Name: def, Hosts: map[string]map[string]ServiceState{}}}
	order := []string{def}
	for _, g := range aggs {
		if zn := g.Zone(); zn != "" && byName[zn] == nil {
			byName[zn] = &Zone{Name: zn, Hosts: map[string]map[string]ServiceState{}}
			order = append(order, zn)
		}
	}
	now := time.Now()
	anyHost := map[string]bool{}
	for _, s := range svcs {
		zn := "internal"
		if s.Binary == "nova-compute" {
			zn = def
			if v := zoneOf[s.Host]; v != "" {
				zn = v
			}
		}
		zone := byName[zn]
		if zone == nil {
			zone = &Zone{Name: zn, Hosts: map[string]map[string]ServiceState{}}
			byName[zn] = zone
			order = append(order, zn)
		}
		if zone.Hosts[s.Host] == nil {
			zone.Hosts[s.Host] = map[string]ServiceState{}
		}
		up := conductor.ServiceUp(s, z.DownTime, now)
		upd := ""
		if !s.LastSeenUp.IsZero() {
			upd = s.LastSeenUp.UTC().Format("2006-01-02T15:04:05.000000")
		}
		zone.Hosts[s.Host][s.Binary] = ServiceState{Available: up, Active: !s.Disabled, UpdatedAt: upd}
		if s.Binary == "nova-compute" && up && !s.Disabled {
			zone.Available = true
		}
		if s.Binary == "nova-compute" {
			anyHost[zn] = true
		}
		if zn == "internal" && up {
			zone.Available = true
		}
	}
	var out []Zone
	for _, n := range order {
		zone := byName[n]
		if n == def && !anyHost[n] {
			zone.Available = true // the default zone is always offered
		}
		out = append(out, *zone)
	}
	return out, nil
}
