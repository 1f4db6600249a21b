// Package api is the Compute (Nova v2.1) HTTP API: the route table,
// request parsing and validation per microversion, policy checks, and the
// views that render Nova's exact wire format. Microversion history lives
// in versions.go.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Prefix is where the compute API is mounted.
const Prefix = "/compute"

// MaxLimit caps list pages (Nova's [api] max_limit).
const MaxLimit = 1000

// Options are what the API needs.
type Options struct {
	Store  *store.Store
	Quota  *quota.Engine
	Policy *policy.Enforcer
	Auth   auth.Validator
	Log    *slog.Logger
	// Zones lists availability zones; nil means the single default zone.
	Zones ZoneSource
	// Servers starts server tasks and reaches agents; nil leaves the
	// servers API answering 501 on create and empty lists.
	Servers TaskKicker
	// Images checks imageRef; nil accepts any UUID (no image service).
	Images ImageLookup
	// Volumes serves os-volume_attachments; nil means no block storage.
	Volumes VolumeService
	// Network validates requested networks; nil is conductor.NoNetwork.
	Network conductor.NetworkAllocator
	// ServiceDownTime is how long a service may miss heartbeats before
	// it is shown down (default 60s).
	ServiceDownTime time.Duration
	// ReclaimInterval > 0 turns on soft delete (reclaim_instance_interval).
	ReclaimInterval time.Duration
	// Placement receives the aggregates of hosts (os-aggregates mirrors
	// them into provider aggregates); nil skips the mirroring.
	Placement *placement.Service
	// Networking is the networking API's handler (mounted at
	// NetworkingPrefix), which the security group APIs call as the
	// caller; nil answers the network proxy APIs with 404s.
	Networking http.Handler
}

// API serves the compute routes.
type API struct {
	st     *store.Store
	quota  *quota.Engine
	policy *policy.Enforcer
	auth   auth.Validator
	log    *slog.Logger
	zones  ZoneSource
	legacy *legacyRouter

	servers   TaskKicker
	consoles  consoleTokens
	images    ImageLookup
	volumes   VolumeService
	network   conductor.NetworkAllocator
	downTime  time.Duration
	reclaim   time.Duration
	placement *placement.Service
	// networking is the networking API (secgroups.go).
	networking http.Handler
}

// New returns the API.
func New(o Options) *API {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Zones == nil {
		o.Zones = DefaultZones{}
	}
	if o.Network == nil {
		o.Network = conductor.NoNetwork{}
	}
	if o.ServiceDownTime <= 0 {
		o.ServiceDownTime = 60 * time.Second
	}
	a := &API{st: o.Store, quota: o.Quota, policy: o.Policy, auth: o.Auth, log: o.Log, zones: o.Zones,
		servers: o.Servers, images: o.Images, volumes: o.Volumes, network: o.Network, downTime: o.ServiceDownTime,
		reclaim: o.ReclaimInterval, placement: o.Placement, networking: o.Networking}
	a.legacy = newLegacyRouter(a.routes())
	return a
}

// LegacyProjectRoutes turns on the /compute/v2.1/{project_id}/... aliases
// that older clients and catalogs with %(project_id)s endpoints use.
const LegacyProjectRoutes = true

// Routes returns the service mounted on the shared mux.
func (a *API) Routes() *apiutil.Service {
	routes := a.routes()
	pub := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h, Public: true}
	}
	all := []apiutil.Route{
		pub("GET", Prefix, a.versions),
		pub("GET", Prefix+"/{$}", a.versions),
		pub("GET", Prefix+"/v2.1", a.version),
		pub("GET", Prefix+"/v2.1/{$}", a.version),
	}
	for _, rt := range routes {
		rt.Path = Prefix + "/v2.1" + rt.Path
		all = append(all, rt)
	}
	// The console proxy: websockets authorised by one-time tokens.
	all = append(all, pub("GET", Prefix+consoleSerialPath, a.consoleProxy("serial")),
		pub("GET", Prefix+consoleVNCPath, a.consoleProxy("vnc")))
	var fallback apiutil.Handler
	if LegacyProjectRoutes {
		fallback = a.legacyFallback
	}
	return &apiutil.Service{
		Fallback: fallback,
		Name:     "compute",
		Prefix:   Prefix + "/",
		Fault:    apiutil.NovaFault,
		Routes:   all,
		Auth:     a.auth,
		Log:      a.log,
		Before:   negotiate,
		Decorate: Microversions.Decorate,
	}
}

// hostsChange tells the conductors of this process that the scheduler's
// host list changed when h succeeds (services, aggregates).
func hostsChange(h apiutil.Handler) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		resp, err := h(r)
		if err == nil {
			conductor.HostsChanged()
		}
		return resp, err
	}
}

// routes is the route table below /compute/v2.1.
func (a *API) routes() []apiutil.Route {
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h}
	}
	rts := []apiutil.Route{
		rt("GET", "/flavors", a.listFlavors(false)),
		rt("POST", "/flavors", a.createFlavor),
		// GET /flavors/detail is served by showFlavor: a literal route
		// beside the wildcard one collides with the 405 routes that
		// apiutil registers per path.
		rt("GET", "/flavors/{flavor_id}", a.showFlavor),
		rt("PUT", "/flavors/{flavor_id}", a.updateFlavor),
		rt("DELETE", "/flavors/{flavor_id}", a.deleteFlavor),
		rt("POST", "/flavors/{flavor_id}/action", a.flavorAction),
		rt("GET", "/flavors/{flavor_id}/os-flavor-access", a.listFlavorAccess),
		rt("GET", "/flavors/{flavor_id}/os-extra_specs", a.listExtraSpecs),
		rt("POST", "/flavors/{flavor_id}/os-extra_specs", a.createExtraSpecs),
		rt("GET", "/flavors/{flavor_id}/os-extra_specs/{key}", a.showExtraSpec),
		rt("PUT", "/flavors/{flavor_id}/os-extra_specs/{key}", a.updateExtraSpec),
		rt("DELETE", "/flavors/{flavor_id}/os-extra_specs/{key}", a.deleteExtraSpec),

		rt("GET", "/os-keypairs", a.listKeyPairs),
		rt("POST", "/os-keypairs", a.createKeyPair),
		rt("GET", "/os-keypairs/{keypair_name}", a.showKeyPair),
		rt("DELETE", "/os-keypairs/{keypair_name}", a.deleteKeyPair),

		rt("GET", "/os-quota-sets/{project_id}", a.showQuotas(false)),
		rt("GET", "/os-quota-sets/{project_id}/detail", a.showQuotas(true)),
		rt("GET", "/os-quota-sets/{project_id}/defaults", a.quotaDefaults),
		rt("PUT", "/os-quota-sets/{project_id}", a.updateQuotas),
		rt("DELETE", "/os-quota-sets/{project_id}", a.deleteQuotas),
		rt("GET", "/os-quota-class-sets/{id}", a.showQuotaClass),
		rt("PUT", "/os-quota-class-sets/{id}", a.updateQuotaClass),
		rt("GET", "/limits", a.limits),

		rt("GET", "/os-availability-zone", a.listZones(false)),
		rt("GET", "/os-availability-zone/detail", a.listZones(true)),

		rt("GET", "/servers", a.listServers(false)),
		rt("POST", "/servers", a.createServer),
		// GET /servers/detail is served by showServerOrDetail (see flavors).
		rt("GET", "/servers/{server_id}", a.showServerOrDetail),
		rt("PUT", "/servers/{server_id}", a.updateServer),
		rt("DELETE", "/servers/{server_id}", a.deleteServer),
		rt("POST", "/servers/{server_id}/action", a.serverAction),
		rt("POST", "/servers/{server_id}/remote-consoles", a.remoteConsole),
		rt("GET", "/servers/{server_id}/metadata", a.listMetadata),
		rt("POST", "/servers/{server_id}/metadata", a.createMetadata),
		rt("PUT", "/servers/{server_id}/metadata", a.replaceMetadata),
		rt("GET", "/servers/{server_id}/metadata/{key}", a.showMetadata),
		rt("PUT", "/servers/{server_id}/metadata/{key}", a.updateMetadataItem),
		rt("DELETE", "/servers/{server_id}/metadata/{key}", a.deleteMetadataItem),
		rt("GET", "/servers/{server_id}/tags", a.listTags),
		rt("PUT", "/servers/{server_id}/tags", a.replaceTags),
		rt("DELETE", "/servers/{server_id}/tags", a.deleteTags),
		rt("GET", "/servers/{server_id}/tags/{tag}", a.checkTag),
		rt("PUT", "/servers/{server_id}/tags/{tag}", a.addTag),
		rt("DELETE", "/servers/{server_id}/tags/{tag}", a.deleteTag),
		rt("GET", "/servers/{server_id}/ips", a.listIPs),
		rt("GET", "/servers/{server_id}/ips/{network}", a.showIPs),
		rt("GET", "/servers/{server_id}/os-interface", a.listInterfaces),
		rt("POST", "/servers/{server_id}/os-interface", a.attachInterface),
		rt("GET", "/servers/{server_id}/os-interface/{port_id}", a.showInterface),
		rt("DELETE", "/servers/{server_id}/os-interface/{port_id}", a.detachInterface),
		rt("POST", "/os-server-external-events", a.createExternalEvents),
		rt("GET", "/servers/{server_id}/os-instance-actions", a.listActions),
		rt("GET", "/servers/{server_id}/os-volume_attachments", a.listVolumeAttachments),
		rt("POST", "/servers/{server_id}/os-volume_attachments", a.attachVolume),
		rt("GET", "/servers/{server_id}/os-volume_attachments/{volume_id}", a.showVolumeAttachment),
		rt("DELETE", "/servers/{server_id}/os-volume_attachments/{volume_id}", a.detachVolume),
		rt("GET", "/servers/{server_id}/os-instance-actions/{request_id}", a.showAction),

		rt("GET", "/os-services", a.listServices),
		rt("PUT", "/os-services/{service_id}", hostsChange(a.updateService)),
		rt("DELETE", "/os-services/{service_id}", hostsChange(a.deleteService)),
		rt("GET", "/os-hypervisors", a.listHypervisors),
		rt("GET", "/os-hypervisors/{hypervisor_id}", a.showHypervisor),
		rt("GET", "/os-hypervisors/{hypervisor_id}/servers", a.hypervisorServers),

		rt("GET", "/os-aggregates", a.listAggregates),
		rt("POST", "/os-aggregates", a.createAggregate),
		rt("GET", "/os-aggregates/{aggregate_id}", a.showAggregate),
		rt("PUT", "/os-aggregates/{aggregate_id}", hostsChange(a.updateAggregate)),
		rt("DELETE", "/os-aggregates/{aggregate_id}", hostsChange(a.deleteAggregate)),
		rt("POST", "/os-aggregates/{aggregate_id}/action", hostsChange(a.aggregateAction)),
		rt("GET", "/os-server-groups", a.listServerGroups),
		rt("POST", "/os-server-groups", a.createServerGroup),
		rt("GET", "/os-server-groups/{group_id}", a.showServerGroup),
		rt("DELETE", "/os-server-groups/{group_id}", a.deleteServerGroup),
		rt("GET", "/os-migrations", a.listMigrations),
		rt("GET", "/servers/{server_id}/migrations", a.listServerMigrations),
		rt("GET", "/servers/{server_id}/migrations/{migration_id}", a.showServerMigration),
		rt("DELETE", "/servers/{server_id}/migrations/{migration_id}", a.abortServerMigration),
		rt("POST", "/servers/{server_id}/migrations/{migration_id}/action", a.serverMigrationAction),
	}
	rts = append(rts, a.secGroupRoutes()...)
	rts = append(rts, a.extraRoutes()...)
	return append(rts, a.imageRoutes()...)
}

// ---- version discovery ----

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1",
		"links": []any{
			map[string]any{"href": apiutil.PublicURL(r) + Prefix + "/v2.1/", "rel": "self"},
			map[string]any{"href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
		"status":      "CURRENT",
		"version":     MaxVersion.String(),
		"min_version": MinVersion.String(),
		"updated":     "2013-07-23T11:33:21Z",
	}
}

func (a *API) versions(r *http.Request) (*apiutil.Response, error) {
	v := versionDoc(r)
	delete(v, "media-types")
	return apiutil.JSON(200, map[string]any{"versions": []any{v}}), nil
}

func (a *API) version(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(200, map[string]any{"version": versionDoc(r)}), nil
}

// ---- helpers ----

type prefixKey struct{}

// origPathKey holds the client's path when a legacy URL was rewritten.
type origPathKey struct{}

// projectPrefix is the project id of a legacy /v2.1/{project_id}/ URL.
func projectPrefix(r *http.Request) string {
	s, _ := r.Context().Value(prefixKey{}).(string)
	return s
}

// links renders Nova's self and bookmark links of a resource.
func links(r *http.Request, collection, id string) []any {
	base := apiutil.PublicURL(r) + Prefix
	p := ""
	if pp := projectPrefix(r); pp != "" {
		p = "/" + pp
	}
	return []any{
		map[string]any{"href": base + "/v2.1" + p + "/" + collection + "/" + id, "rel": "self"},
		map[string]any{"href": base + p + "/" + collection + "/" + id, "rel": "bookmark"},
	}
}

// nextLink is the "next" link of a page that came back full.
func nextLink(r *http.Request, marker string) []any {
	return []any{map[string]any{"href": nextHref(r, marker), "rel": "next"}}
}

// nextHref is the URL of the page after marker.
func nextHref(r *http.Request, marker string) string {
	q := r.URL.Query()
	q.Set("marker", marker)
	path := r.URL.Path
	if p, ok := r.Context().Value(origPathKey{}).(string); ok {
		path = p
	}
	return apiutil.PublicURL(r) + path + "?" + q.Encode()
}

func caller(r *http.Request) *auth.Context {
	if c := auth.From(r.Context()); c != nil {
		return c
	}
	return &auth.Context{}
}

// authorize checks a policy rule; target keys are Nova's (project_id,
// user_id), without a "target." prefix.
func (a *API) authorize(r *http.Request, rule string, target map[string]string) error {
	err := a.policy.Authorize(rule, caller(r).Policy(), target)
	if errors.Is(err, policy.ErrForbidden) {
		return apiutil.Forbidden("Policy doesn't allow %s to be performed.", rule)
	}
	return err
}

func (a *API) allowed(r *http.Request, rule string, target map[string]string) bool {
	return a.policy.Allowed(rule, caller(r).Policy(), target)
}

func own(r *http.Request) map[string]string {
	c := caller(r)
	return map[string]string{"project_id": c.ProjectID, "user_id": c.UserID}
}

// decode reads a JSON body, validates it against schema and returns the
// raw members of the top-level object.
func decode(r *http.Request, schema *apiutil.Schema) (map[string]json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := apiutil.DecodeJSON(r, schema, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

func members(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, apiutil.BadRequest("Malformed request body: %v", err)
	}
	return m, nil
}

// intValue reads an integer given as a JSON number or a numeric string
// (Nova's ['integer', 'string'] parameters) and checks its range.
func intValue(field string, raw json.RawMessage, minimum, maximum int64) (int64, error) {
	var n json.Number
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		var str string
		_ = json.Unmarshal(raw, &str)
		n = json.Number(str)
	} else {
		n = json.Number(s)
	}
	v, err := n.Int64()
	if err != nil {
		return 0, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'integer', 'string'", field, s, s)
	}
	if v < minimum {
		return 0, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %d is less than the minimum of %d", field, s, v, minimum)
	}
	if v > maximum {
		return 0, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %d is greater than the maximum of %d", field, s, v, maximum)
	}
	return v, nil
}

// boolValue reads Nova's boolean parameter: a JSON boolean or one of the
// strings its schema enumerates (already checked by the schema).
func boolValue(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	switch strings.ToLower(s) {
	case "true", "1", "on", "yes":
		return true
	}
	return false
}

// booleanSchema is Nova's parameter_types.boolean.
const booleanSchema = `{"type": ["boolean", "string"], "enum": [true, "True", "TRUE", "true", "1", "ON", "On", "on",
	"YES", "Yes", "yes", false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"]}`

// checkName applies Nova's parameter_types.name rules beyond length:
// printable characters only and no leading or trailing whitespace.
func checkName(field, v string) error {
	if v == "" || len([]rune(v)) > 255 {
		return apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %q is too long or empty", field, v, v)
	}
	rs := []rune(v)
	if isSpace(rs[0]) || isSpace(rs[len(rs)-1]) {
		return apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %q does not match the name pattern: no leading or trailing whitespace", field, v, v)
	}
	for _, c := range rs {
		if !printable(c) {
			return apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %q contains non-printable characters", field, v, v)
		}
	}
	return nil
}

// strictQuery rejects query parameters outside allowed (Nova does from
// 2.75 on for the APIs whose query schemas forbid additional properties).
func strictQuery(r *http.Request, allowed ...string) error {
	q := r.URL.Query()
	var extra []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	quoted := make([]string, len(extra))
	for i, e := range extra {
		quoted[i] = "'" + e + "'"
	}
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	return apiutil.BadRequest("Invalid input for query parameters %s. Value: %s. Additional properties are not allowed (%s %s unexpected)",
		strings.Join(extra, ", "), q.Get(extra[0]), strings.Join(quoted, ", "), verb)
}

// queryLast returns the last value of a repeated query parameter (Nova's
// multi_params take the last one).
func queryLast(q url.Values, k string) (string, bool) {
	vs, ok := q[k]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func internal(err error) error { return fmt.Errorf("compute: %w", err) }

// ctx is a shorthand.
func ctx(r *http.Request) context.Context { return r.Context() }

func isSpace(c rune) bool { return unicode.Is(unicode.Zs, c) }

// printable follows Nova's definition: not a control/format/unassigned
// character, and not a line or paragraph separator.
func printable(c rune) bool {
	if unicode.In(c, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) || !unicode.IsGraphic(c) && !isSpace(c) {
		return false
	}
	return !unicode.In(c, unicode.Zl, unicode.Zp)
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// legacyFallback serves /compute/v2.1/{project_id}/{rest} for paths no
// route matched (a route pattern cannot hold it: the mux would redirect
// /compute/v2.1/x to /compute/v2.1/x/).
func (a *API) legacyFallback(r *http.Request) (*apiutil.Response, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix+"/v2.1/")
	project, sub, found := strings.Cut(rest, "/")
	if !ok || !found || project == "" || sub == "" {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	r.SetPathValue("project_id", project)
	r.SetPathValue("rest", sub)
	return a.legacy.serve(r)
}
