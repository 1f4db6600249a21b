// Package network is Kumo's Networking API v2.0 (Neutron) control plane:
// networks, subnets and ports with IP address management in the database,
// and the extensions the configured backend supports (provider networks,
// security groups, routers, floating IPs, port binding, quotas...).
//
// The code is split by resource: each resource file holds its handlers,
// validation and SQL. query.go turns Neutron's list parameters (filters on
// attributes, tags, sorting, limit/marker pagination, fields) into SQL;
// ipam.go is the address arithmetic; backend.go the ML2-style type and
// mechanism drivers that decide segments, bindings and the extension list.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

// Config tunes the networking service; the zero value is a working
// single-host setup: tenant networks are VXLAN (VNIs 1-16777215), flat
// networks may use any physical network, MACs start with fa:16:3e.
type Config struct {
	// TenantNetworkTypes in order of preference; default "vlan" when
	// NetworkVLANRanges has a range, else "vxlan".
	TenantNetworkTypes []string
	// NetworkVLANRanges: "physnet" (provider networks only) or
	// "physnet:min:max" (also tenant networks).
	NetworkVLANRanges []string
	// VNIRanges: "min:max"; default "1:16777215".
	VNIRanges []string
	// FlatNetworks are the physical networks flat networks may use; nil
	// means any ("*").
	FlatNetworks []string
	// MechanismDrivers bind ports; default "linuxbridge".
	MechanismDrivers []string
	// BaseMAC is the MAC prefix for ports; bytes that are 00 are random.
	// Default fa:16:3e:00:00:00.
	BaseMAC string
	// GlobalPhysnetMTU is the MTU of the physical networks; default 1500.
	GlobalPhysnetMTU int
	// DNSDomain is the default domain of ports; default "openstacklocal.".
	DNSDomain string
	// AvailabilityZone is the one zone Kumo's network nodes are in;
	// default "nova".
	AvailabilityZone string
	// Quotas override the default per-project quotas by resource name
	// (network, subnet, port, router, floatingip, security_group,
	// security_group_rule, subnetpool); -1 is unlimited.
	Quotas map[string]int
	// MaxLimit caps list page sizes; 0 means no cap (Neutron's default).
	MaxLimit int
	// AgentDownTime is how long an agent may miss reports before it is
	// dead (Neutron's agent_down_time); default 75s.
	AgentDownTime time.Duration
}

func (c Config) withDefaults() Config {
	if c.BaseMAC == "" {
		c.BaseMAC = "fa:16:3e:00:00:00"
	}
	if c.GlobalPhysnetMTU <= 0 {
		c.GlobalPhysnetMTU = 1500
	}
	if c.DNSDomain == "" {
		c.DNSDomain = "openstacklocal."
	}
	if c.AvailabilityZone == "" {
		c.AvailabilityZone = "nova"
	}
	return c
}

// Service is the networking API.
type Service struct {
	deps       service.Deps
	cfg        Config
	db         *db.DB
	policy     *policy.Enforcer
	log        *slog.Logger
	backend    *ml2
	extensions []string
	macBase    [6]byte
	macFixed   int // leading bytes of macBase that are fixed
	quotas     map[string]int
	now        func() time.Time
	dp         dataPlane // the network agents' side (dataplane.go)

	notifyMu sync.Mutex
	notifier ComputeNotifier
}

// New builds the service. When deps.Policy is nil it enforces
// PolicyDefaults.
func New(deps service.Deps, cfg Config) (*Service, error) {
	if deps.DB == nil {
		return nil, errors.New("network: no database")
	}
	cfg = cfg.withDefaults()
	be, err := newML2(cfg)
	if err != nil {
		return nil, err
	}
	enf := deps.Policy
	if enf == nil {
		if enf, err = policy.New(PolicyDefaults(), nil); err != nil {
			return nil, fmt.Errorf("network: policy: %w", err)
		}
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{deps: deps, cfg: cfg, db: deps.DB, policy: enf, log: log.With("service", "network"),
		backend: be, now: time.Now}
	s.extensions = be.extensionAliases()
	s.dp.init()
	if err := s.parseBaseMAC(cfg.BaseMAC); err != nil {
		return nil, err
	}
	s.quotas = map[string]int{}
	for k, v := range defaultQuotas {
		s.quotas[k] = v
	}
	for k, v := range cfg.Quotas {
		if _, ok := defaultQuotas[k]; !ok {
			return nil, fmt.Errorf("network: unknown quota resource %q", k)
		}
		s.quotas[k] = v
	}
	return s, nil
}

func (s *Service) parseBaseMAC(m string) error {
	parts := strings.Split(m, ":")
	if len(parts) != 6 {
		return fmt.Errorf("network: invalid base MAC %q", m)
	}
	fixed := 0
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return fmt.Errorf("network: invalid base MAC %q", m)
		}
		s.macBase[i] = byte(v)
		if v != 0 && fixed == i {
			fixed = i + 1
		}
	}
	if fixed == 0 || s.macBase[0]&1 != 0 {
		return fmt.Errorf("network: base MAC %q must start with a fixed unicast prefix", m)
	}
	if fixed > 5 {
		fixed = 5
	}
	s.macFixed = fixed
	return nil
}

// newMAC generates a MAC from the base.
func (s *Service) newMAC() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	copy(b[:s.macFixed], s.macBase[:s.macFixed])
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

// Catalog implements service.API.
func (s *Service) Catalog() []service.CatalogEntry {
	return []service.CatalogEntry{{Type: "network", Name: "neutron", Path: "/networking"}}
}

// Run implements service.API: with a bus, it serves the network agents
// (dataplane.go) until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	if s.deps.Bus != nil {
		return s.runDataPlane(ctx)
	}
	<-ctx.Done()
	return nil
}

func (s *Service) hasExt(alias string) bool { return slices.Contains(s.extensions, alias) }

// base is the public URL of the networking endpoint.
func (s *Service) base(r *http.Request) string {
	u := apiutil.PublicURL(r)
	if s.deps.PublicURL != "" && u == "http://"+r.Host {
		u = strings.TrimRight(s.deps.PublicURL, "/")
	}
	return u + "/networking"
}

const prefix = "/networking"

// Routes implements service.API.
func (s *Service) Routes() *apiutil.Service {
	v := prefix + "/v2.0"
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: v + path, Handler: h}
	}
	routes := []apiutil.Route{
		{Method: "GET", Path: prefix + "/{$}", Handler: s.versions, Public: true},
		{Method: "GET", Path: v + "/{$}", Handler: s.resources, Public: true},
		rt("GET", "/extensions", s.listExtensions),
		rt("GET", "/extensions/{alias}", s.showExtension),

		rt("GET", "/networks", s.listNetworks),
		rt("POST", "/networks", s.createNetworks),
		rt("GET", "/networks/{id}", s.showNetwork),
		rt("PUT", "/networks/{id}", s.updateNetwork),
		rt("DELETE", "/networks/{id}", s.deleteNetwork),

		rt("GET", "/subnets", s.listSubnets),
		rt("POST", "/subnets", s.createSubnets),
		rt("GET", "/subnets/{id}", s.showSubnet),
		rt("PUT", "/subnets/{id}", s.updateSubnet),
		rt("DELETE", "/subnets/{id}", s.deleteSubnet),

		rt("GET", "/ports", s.listPorts),
		rt("POST", "/ports", s.createPorts),
		rt("GET", "/ports/{id}", s.showPort),
		rt("PUT", "/ports/{id}", s.updatePort),
		rt("DELETE", "/ports/{id}", s.deletePort),

		rt("GET", "/subnetpools", s.listSubnetPools),
		rt("POST", "/subnetpools", s.createSubnetPools),
		rt("GET", "/subnetpools/{id}", s.showSubnetPool),
		rt("PUT", "/subnetpools/{id}", s.updateSubnetPool),
		rt("DELETE", "/subnetpools/{id}", s.deleteSubnetPool),
		rt("PUT", "/subnetpools/{id}/add_prefixes", s.addPoolPrefixes),
		rt("PUT", "/subnetpools/{id}/remove_prefixes", s.removePoolPrefixes),

		rt("GET", "/network-ip-availabilities", s.listIPAvailability),
		rt("GET", "/network-ip-availabilities/{id}", s.showIPAvailability),
		rt("GET", "/availability_zones", s.listAvailabilityZones),
		rt("GET", "/agents", s.listAgents),
		rt("GET", "/agents/{id}", s.showAgent),
		rt("PUT", "/agents/{id}", s.updateAgent),
		rt("DELETE", "/agents/{id}", s.deleteAgent),
		rt("GET", "/auto-allocated-topology/{project_id}", s.showAutoTopology),
		rt("DELETE", "/auto-allocated-topology/{project_id}", s.deleteAutoTopology),
	}
	routes = append(routes, s.securityGroupRoutes(rt)...)
	routes = append(routes, s.addressGroupRoutes(rt)...)
	routes = append(routes, s.addressScopeRoutes(rt)...)
	routes = append(routes, s.routerRoutes(rt)...)
	routes = append(routes, s.portForwardingRoutes(rt)...)
	routes = append(routes, s.quotaRoutes(rt)...)
	for _, kind := range taggable {
		routes = append(routes,
			rt("GET", "/"+kind.collection+"/{id}/tags", s.tagHandler(kind, "list")),
			rt("PUT", "/"+kind.collection+"/{id}/tags", s.tagHandler(kind, "replace")),
			rt("DELETE", "/"+kind.collection+"/{id}/tags", s.tagHandler(kind, "clear")),
			rt("GET", "/"+kind.collection+"/{id}/tags/{tag}", s.tagHandler(kind, "check")),
			rt("PUT", "/"+kind.collection+"/{id}/tags/{tag}", s.tagHandler(kind, "add")),
			rt("DELETE", "/"+kind.collection+"/{id}/tags/{tag}", s.tagHandler(kind, "remove")),
		)
	}
	for i := range routes {
		if routes[i].Method != http.MethodGet {
			routes[i].Handler = s.notifyAfter(routes[i].Handler)
		}
	}
	return &apiutil.Service{
		Name: "network", Prefix: prefix + "/", Fault: apiutil.NeutronFault,
		Routes: routes, Auth: s.deps.Auth, Log: s.log,
	}
}

// caller is the authenticated user of a request.
type caller struct {
	*auth.Context
	admin bool
	creds policy.Credentials
}

func (s *Service) caller(r *http.Request) *caller {
	c := auth.From(r.Context())
	if c == nil {
		c = &auth.Context{}
	}
	return &caller{Context: c, admin: c.IsAdmin(), creds: c.Policy()}
}

// can reports whether rule passes for a resource owned by project.
func (s *Service) can(c *caller, rule string, target map[string]string) bool {
	return s.policy.Allowed(rule, c.creds, target)
}

// authorize is can as an error.
func (s *Service) authorize(c *caller, rule string, target map[string]string) error {
	if s.can(c, rule, target) {
		return nil
	}
	return policyDenied(rule)
}

func ownerTarget(project string) map[string]string {
	return map[string]string{"project_id": project, "tenant_id": project}
}

// newID returns a random UUID (version 4).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// isUUID accepts Neutron's UUID forms (with or without dashes, any case).
func isUUID(s string) bool {
	t := strings.ReplaceAll(s, "-", "")
	if len(t) != 32 {
		return false
	}
	if len(s) == 36 && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

// stamp renders a timestamp the way Neutron does: seconds, UTC, "Z".
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (s *Service) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ifMatch checks an If-Match: revision_number=N header against the
// current revision.
func ifMatch(r *http.Request, current int64) error {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		v, ok := strings.CutPrefix(part, "revision_number=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return badInput("Invalid If-Match header: %s", part)
		}
		if n != current {
			return nerr(412, "RevisionNumberConstraintFailed", "Constrained to %d, but current revision is %d", n, current)
		}
	}
	return nil
}

// withTx runs fn in a write transaction, retrying a few times when a
// concurrent writer took a unique value (an IP, a MAC, a segment) first.
func (s *Service) withTx(ctx context.Context, fn func(tx *txn) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = s.db.WithTx(ctx, func(t *sqlTx) error { return fn(&txn{Tx: t, s: s}) })
		if err == nil || !db.IsUniqueViolation(err) {
			return err
		}
	}
	return err
}
