// Package compute is Kumo's Compute service (the OpenStack Nova v2.1 API):
// version discovery and microversion negotiation, flavors, key pairs,
// quotas and limits, availability zones, servers with their actions,
// metadata, tags and instance actions, os-services and os-hypervisors.
//
// Layout: api holds the handlers, views and the microversion history
// (api/versions.go); store holds the SQL and migrations; quota is the
// quota engine with its UsageCounter plug-in point; keys computes key pair
// fingerprints and generates keys; conductor runs every long server action
// as a persisted task (its state diagram is at the top of
// conductor/conductor.go) and schedules through scheduler over placement
// (conductor/scheduler.go); agent is the
// per-host compute agent; rpc is the bus contract between them; states
// names vm_states and task_states.
//
// Default flavors: the migrations seed devstack's m1.tiny ... m1.xlarge
// (ids 1-5) plus m1.nano (id 42, 128 MiB, 1 vCPU, 1 GB) and m1.micro (id
// 84, 192 MiB) for CirrOS-sized test guests.
package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/agent"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

// Migrations returns the compute schema (component "compute").
func Migrations() db.Set { return store.Migrations() }

// PolicyDefaults returns the compute policy rules (Nova's names).
func PolicyDefaults() []policy.Rule { return api.PolicyDefaults() }

// Config tunes the compute service; the zero value is usable.
type Config struct {
	// DefaultQuotas overrides Nova's default limits by resource name
	// ("instances", "key_pairs", ...); -1 means unlimited.
	DefaultQuotas map[string]int64
	// Zones lists the availability zones; nil means the single zone "nova".
	Zones api.ZoneSource

	// Conductor runs the conductor in this process (needs deps.Bus).
	// Without it the API still serves servers, and the tasks it creates
	// wait for a conductor elsewhere on the bus.
	Conductor bool
	// ConductorConfig tunes it.
	ConductorConfig conductor.Config
	// Driver names the virt driver of the in-process agents ("fake";
	// others through Drivers); Hosts is how many agents (hosts) to run
	// in this process, named HostPrefix1, HostPrefix2, ... (default
	// "compute"), or HostPrefix alone when Hosts is 1.
	Driver     string
	Hosts      int
	HostPrefix string
	// Drivers adds driver constructors by name (the lead registers
	// "qemu" here).
	Drivers map[string]func(host string) (virt.Driver, error)
	// AgentReportInterval is the agents' heartbeat (default 10s).
	AgentReportInterval time.Duration
	// ForceConfigDrive gives every instance of the in-process agents a
	// config drive.
	ForceConfigDrive bool
	// MigrationAddress is where the in-process agents receive live
	// migrations (agent.Config.MigrationAddress).
	MigrationAddress string
	// ImageCache gives in-process agents local image files; nil boots
	// without fetching (the fake driver needs no file).
	ImageCache agent.Images
	// Images checks imageRef on create and rebuild; nil accepts any UUID.
	Images api.ImageLookup
	// Network allocates server networks; nil is conductor.NoNetwork.
	Network conductor.NetworkAllocator
	// Volumes is the block storage service for os-volume_attachments;
	// nil answers those routes with 404s and empty lists.
	Volumes api.VolumeService
	// ReclaimInterval > 0 turns on soft delete: deleted servers wait this
	// long for a restore (Nova's reclaim_instance_interval).
	ReclaimInterval time.Duration
	// Placement is the placement service the conductor schedules over
	// and writes resource providers to; required with Conductor.
	Placement *placement.Service
	// Networking is the networking API's handler, which the security
	// group APIs call as the caller (api.Options.Networking).
	Networking http.Handler
	// AgentResources tunes the in-process agents' resource trackers.
	AgentResources agent.ResourceConfig
}

// Service is the compute service.
type Service struct {
	deps      service.Deps
	cfg       Config
	store     *store.Store
	quota     *quota.Engine
	api       *api.API
	conductor *conductor.Conductor
	agents    []*agent.Agent
}

// New builds the compute service on deps.
func New(deps service.Deps, cfg Config) (*Service, error) {
	if deps.DB == nil {
		return nil, fmt.Errorf("compute: no database")
	}
	if deps.Policy == nil {
		return nil, fmt.Errorf("compute: no policy enforcer")
	}
	st := store.New(deps.DB)
	q := quota.New(st, cfg.DefaultQuotas, quota.KeyPairCounter{}, quota.InstanceCounter{}, api.ServerGroupCounter{})
	s := &Service{deps: deps, cfg: cfg, store: st, quota: q}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "compute")
	opts := api.Options{Store: st, Quota: q, Policy: deps.Policy, Auth: deps.Auth, Log: log, Zones: cfg.Zones,
		Images: cfg.Images, Network: cfg.Network, Volumes: cfg.Volumes, ServiceDownTime: cfg.ConductorConfig.ServiceDownTime,
		ReclaimInterval: cfg.ReclaimInterval, Placement: cfg.Placement, Networking: cfg.Networking}
	if opts.Zones == nil {
		opts.Zones = api.AggregateZones{Store: st, DownTime: cfg.ConductorConfig.ServiceDownTime}
	}
	if deps.Bus != nil {
		client := &conductor.Client{Bus: deps.Bus}
		if cfg.Conductor {
			if cfg.Placement == nil {
				return nil, fmt.Errorf("compute: the conductor needs the placement service")
			}
			cc := cfg.ConductorConfig
			cc.ReclaimInterval = cfg.ReclaimInterval
			if cc.Metrics == nil {
				cc.Metrics = deps.Metrics
			}
			s.conductor = conductor.New(st, deps.Bus, cfg.Placement, cfg.Network, cc, log)
			client.Local = s.conductor
		}
		opts.Servers = client
		for n := 1; n <= cfg.Hosts; n++ {
			host := cfg.HostPrefix
			if host == "" {
				host = "compute"
			}
			if cfg.Hosts > 1 {
				host = fmt.Sprintf("%s%d", host, n)
			}
			d, err := NewDriver(cfg.Driver, host, cfg.Drivers)
			if err != nil {
				return nil, err
			}
			ag, err := agent.New(deps.Bus, d, cfg.ImageCache, agent.Config{Host: host, ReportInterval: cfg.AgentReportInterval, ForceConfigDrive: cfg.ForceConfigDrive, MigrationAddress: cfg.MigrationAddress, Resources: cfg.AgentResources}, log)
			if err != nil {
				return nil, err
			}
			s.agents = append(s.agents, ag)
		}
	}
	s.api = api.New(opts)
	return s, nil
}

// NewDriver returns the virt driver called name ("fake", or one of extra).
func NewDriver(name, host string, extra map[string]func(host string) (virt.Driver, error)) (virt.Driver, error) {
	if f, ok := extra[name]; ok {
		return f(host)
	}
	switch name {
	case "", "fake":
		return fake.New(fake.Config{}), nil
	}
	return nil, fmt.Errorf("compute: unknown virt driver %q", name)
}

// NewAgent builds a compute agent for a host of its own (kumo agent
// compute): it needs only the bus, a driver and an image cache.
func NewAgent(b *bus.Bus, d virt.Driver, images agent.Images, cfg agent.Config, log *slog.Logger) (*agent.Agent, error) {
	return agent.New(b, d, images, cfg, log)
}

// Conductor returns the in-process conductor, or nil.
func (s *Service) Conductor() *conductor.Conductor { return s.conductor }

// Agents returns the in-process agents.
func (s *Service) Agents() []*agent.Agent { return s.agents }

// ExternalEvents delivers events about servers from other services in
// process (os-server-external-events without HTTP).
func (s *Service) ExternalEvents(ctx context.Context, events []api.ExternalEvent) ([]api.ExternalEvent, int) {
	return s.api.ExternalEvents(ctx, events)
}

// Quota returns the quota engine, for later parts (servers) to register
// their usage counters and run checks in their transactions.
func (s *Service) Quota() *quota.Engine { return s.quota }

// Routes implements service.API.
func (s *Service) Routes() *apiutil.Service { return s.api.Routes() }

// Catalog implements service.API.
func (s *Service) Catalog() []service.CatalogEntry {
	return []service.CatalogEntry{{Type: "compute", Name: "nova", Path: "/compute/v2.1"}}
}

// Run implements service.API: it runs the in-process conductor and
// agents until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(s.agents)+2)
	if s.conductor != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.conductor.Run(ctx) }()
		// The network agents' metadata service asks the conductor's side.
		md := &metadataResponder{st: s.store, passwords: map[string]string{}}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- md.run(ctx, s.deps.Bus) }()
	}
	for _, a := range s.agents {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- a.Run(ctx) }()
	}
	<-ctx.Done()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var _ service.API = (*Service)(nil)

// InstanceExists reports whether a server may still use its volumes: it
// is false only for a server Nova knows as deleted (the volume service
// then settles its attachments). An id Nova never saw counts as existing:
// the v3 attachments API takes any instance id.
func (s *Service) InstanceExists(ctx context.Context, uuid string) (bool, error) {
	i, err := s.store.GetInstance(ctx, nil, uuid)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !i.Deleted, nil
}
