// Package placement is Kumo's Placement service: resource providers and
// their inventories, traits and aggregates; consumers' allocations; and
// allocation candidates for the scheduler. It serves the OpenStack
// Placement API under /placement (wire-compatible up to microversion 1.36)
// and offers the same operations to in-process callers through Service.
//
// Concurrency: every change to a provider's inventories, traits,
// aggregates or allocations bumps its generation with a compare-and-swap
// UPDATE inside the writing transaction. Claims lock (bump) every
// provider they touch in uuid order and check capacity against the locked
// rows, so concurrent claims can never over-commit.
package placement

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
)

// Config tunes the service; the zero value is Placement's defaults.
type Config struct {
	// RandomizeCandidates shuffles the provider trees before limit is
	// applied (Placement's randomize_allocation_candidates).
	RandomizeCandidates bool
	// StrictInventoryCapacity refuses (409 placement.inventory.inuse)
	// inventory updates that leave capacity below current usage. Placement
	// itself accepts them with a warning, which lets operators lower
	// allocation ratios on busy hosts; leave false for compatibility.
	StrictInventoryCapacity bool
}

// Service is the placement service: the HTTP API and the Go API.
type Service struct {
	store  *store
	cfg    Config
	policy *policy.Enforcer
	auth   interface{}
	deps   service.Deps
	log    *slog.Logger
}

// New builds the service on deps. The schema (Migrations) must be applied.
func New(deps service.Deps, cfg Config) (*Service, error) {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	enf := deps.Policy
	if enf == nil {
		var err error
		if enf, err = policy.New(PolicyDefaults(), nil); err != nil {
			return nil, err
		}
	}
	return &Service{store: &store{db: deps.DB}, cfg: cfg, policy: enf, deps: deps, log: log.With("service", "placement")}, nil
}

// Catalog implements service.API.
func (s *Service) Catalog() []service.CatalogEntry {
	return []service.CatalogEntry{{Type: "placement", Name: "placement", Path: "/placement"}}
}

// Run implements service.API; placement has no background work.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// ---- Go-level API for in-process callers (scheduler, compute) ----

// AllocationCandidates answers a candidate request. Summaries cover every
// provider of the trees used, with all classes and traits.
func (s *Service) AllocationCandidates(ctx context.Context, req *CandidateRequest) (*Candidates, error) {
	return s.store.candidates(ctx, req, s.cfg.RandomizeCandidates)
}

// Claim replaces the allocations of one consumer atomically. generations,
// when not nil, are the provider generations the caller based its choice
// on (from the candidates' providers); a change in between is
// ErrConcurrentUpdate, as is a stale consumer generation. A claim that
// does not fit is ErrCapacityExceeded.
func (s *Service) Claim(ctx context.Context, c ConsumerAllocations, generations map[string]int64) error {
	return s.store.replaceAllocations(ctx, []ConsumerAllocations{c}, generations)
}

// ClaimMany replaces the allocations of several consumers in one
// transaction (a move: the migration consumer and the instance).
func (s *Service) ClaimMany(ctx context.Context, sets []ConsumerAllocations) error {
	return s.store.replaceAllocations(ctx, sets, nil)
}

// Allocations returns a consumer (nil when it holds nothing) and its
// allocations by provider and class.
func (s *Service) Allocations(ctx context.Context, consumer string) (*Consumer, map[string]map[string]int64, error) {
	c, a, _, err := s.store.consumerAllocations(ctx, consumer)
	return c, a, err
}

// DeleteAllocations removes every allocation of a consumer.
func (s *Service) DeleteAllocations(ctx context.Context, consumer string) error {
	// The consumer is looked for inside the writing transaction: a read
	// on a reader connection first would cost that connection a reload
	// of its page cache after every write.
	return s.store.db.WithTx(ctx, func(tx *sql.Tx) error {
		c, err := s.store.consumer(ctx, tx, consumer, true)
		if err != nil {
			return err
		}
		if c == nil {
			return notFound("No allocations for consumer '%s'", consumer)
		}
		return s.store.replaceAllocationsTx(ctx, tx, []ConsumerAllocations{{Consumer: consumer}}, nil, map[string]*Consumer{consumer: c})
	})
}

// CreateProvider creates a provider (parent "" for a root).
func (s *Service) CreateProvider(ctx context.Context, uuid, name, parent string) (Provider, error) {
	return s.store.createProvider(ctx, normUUID(uuid), name, parent)
}

// DeleteProvider deletes a provider with its inventories, traits and
// aggregates: ErrNotFound when it is missing, ErrInUse while it holds
// allocations or has children.
func (s *Service) DeleteProvider(ctx context.Context, uuid string) error {
	return s.store.deleteProvider(ctx, normUUID(uuid))
}

// ProviderAllocations returns a provider's allocations by consumer and
// class.
func (s *Service) ProviderAllocations(ctx context.Context, uuid string) (map[string]map[string]int64, error) {
	return s.store.providerAllocations(ctx, normUUID(uuid))
}

// Provider returns one provider.
func (s *Service) Provider(ctx context.Context, uuid string) (Provider, error) {
	return s.store.provider(ctx, s.store.db.Reader(), uuid)
}

// SetInventories replaces a provider's inventory when generation matches
// and returns the new generation.
func (s *Service) SetInventories(ctx context.Context, uuid string, generation int64, invs []Inventory) (int64, error) {
	for i := range invs {
		if err := normalizeInventory(&invs[i], vMax); err != nil {
			return 0, err
		}
	}
	return s.store.writeInventories(ctx, uuid, generation, invs, invReplaceAll, s.cfg.StrictInventoryCapacity)
}

// SetTraits replaces a provider's traits when generation matches.
func (s *Service) SetTraits(ctx context.Context, uuid string, generation int64, traits []string) (int64, error) {
	return s.store.setProviderTraits(ctx, uuid, generation, traits)
}

// SetAggregates replaces a provider's aggregates when generation matches.
func (s *Service) SetAggregates(ctx context.Context, uuid string, generation int64, aggs []string) (int64, error) {
	return s.store.setProviderAggregates(ctx, uuid, generation, aggs)
}

// normalizeInventory fills defaults and checks consistency.
func normalizeInventory(inv *Inventory, ver apiutil.Version) error {
	if inv.MinUnit == 0 {
		inv.MinUnit = 1
	}
	if inv.MaxUnit == 0 {
		inv.MaxUnit = maxInt32
	}
	if inv.StepSize == 0 {
		inv.StepSize = 1
	}
	if inv.AllocationRatio == 0 {
		inv.AllocationRatio = 1.0
	}
	switch {
	case inv.Total < 1 || inv.Reserved < 0 || inv.MinUnit < 1 || inv.MaxUnit < 1 || inv.StepSize < 1 || inv.AllocationRatio < 0:
		return badRequest("Unable to update inventory: Invalid inventory for '%s': values must be positive.", inv.ResourceClass)
	case inv.Reserved > inv.Total || inv.Reserved == inv.Total && !ver.AtLeast(v(26)):
		return badRequest("Unable to update inventory: Invalid inventory for '%s'. The reserved value is greater than or equal to total.", inv.ResourceClass)
	case inv.MinUnit > inv.MaxUnit:
		return badRequest("Unable to update inventory: Invalid inventory for '%s'. The min_unit value is greater than max_unit.", inv.ResourceClass)
	}
	return nil
}

const maxInt32 = 2147483647

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
