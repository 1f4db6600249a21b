// Package compute is Kumo's Compute service (the OpenStack Nova v2.1 API).
// This part serves everything that does not need servers: version
// discovery and microversion negotiation, flavors (with extra specs and
// access lists), key pairs, quotas and limits, and availability zones.
//
// Layout: api holds the handlers, views and the microversion history
// (api/versions.go); store holds the SQL and migrations; quota is the
// quota engine with its UsageCounter plug-in point; keys computes key pair
// fingerprints and generates keys. Servers, the conductor, the scheduler
// and the agents will live beside them.
//
// Default flavors: the migrations seed devstack's m1.tiny ... m1.xlarge
// (ids 1-5) plus m1.nano (id 42, 128 MiB, 1 vCPU, 1 GB) and m1.micro (id
// 84, 192 MiB) for CirrOS-sized test guests.
package compute

import (
	"context"
	"fmt"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
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
}

// Service is the compute service.
type Service struct {
	deps  service.Deps
	store *store.Store
	quota *quota.Engine
	api   *api.API
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
	q := quota.New(st, cfg.DefaultQuotas, quota.KeyPairCounter{})
	s := &Service{deps: deps, store: st, quota: q}
	log := deps.Log
	if log != nil {
		log = log.With("component", "compute")
	}
	s.api = api.New(api.Options{Store: st, Quota: q, Policy: deps.Policy, Auth: deps.Auth, Log: log, Zones: cfg.Zones})
	return s, nil
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

// Run implements service.API; there is no background work yet.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

var _ service.API = (*Service)(nil)
