package identity

import (
	"context"
	"fmt"
	"sync"
)

// The read side of unified limits, for the services that enforce them
// (the image service's use_keystone_limits). It resolves limits the way
// oslo.limit's flat enforcer does: the service is found by its catalog
// type; a project limit overrides the registered (default) limit of the
// same resource; a resource with neither has no entry, which enforcers
// read as a limit of 0 (oslo.limit refuses any use of an unregistered
// resource). -1 is passed through: Keystone documents it as "no limit".

// LimitQuery names the limits a service wants for one project.
type LimitQuery struct {
	// ServiceType is the catalog type of the enforcing service ("image").
	ServiceType string
	// RegionID is the region of the enforcing endpoint: limits of that
	// region win over limits without a region; "" reads only the latter.
	RegionID  string
	ProjectID string
	Resources []string
}

// LimitReader resolves the unified limits that apply to a project.
type LimitReader interface {
	ProjectLimits(ctx context.Context, q LimitQuery) (map[string]int64, error)
}

var _ LimitReader = (*Service)(nil)

// limitCache keeps resolved limits for one identity generation: every
// limit write bumps the generation, so an entry is never stale for longer
// than the generation poll interval (writes of other processes).
type limitCache struct {
	mu   sync.Mutex
	gen  int64
	byQ  map[string]map[string]int64
	size int
}

const limitCacheMax = 10000

// ProjectLimits implements LimitReader.
func (s *Service) ProjectLimits(ctx context.Context, q LimitQuery) (map[string]int64, error) {
	key := q.ServiceType + "\x00" + q.RegionID + "\x00" + q.ProjectID
	g := s.gen.Load()
	c := &s.limits
	c.mu.Lock()
	if c.gen != g || c.byQ == nil || c.size > limitCacheMax {
		c.gen, c.byQ, c.size = g, map[string]map[string]int64{}, 0
	}
	all, ok := c.byQ[key]
	c.mu.Unlock()
	if !ok {
		var err error
		if all, err = s.loadProjectLimits(ctx, q); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.gen == g {
			c.byQ[key] = all
			c.size++
		}
		c.mu.Unlock()
	}
	out := make(map[string]int64, len(q.Resources))
	for _, r := range q.Resources {
		if v, ok := all[r]; ok {
			out[r] = v
		}
	}
	return out, nil
}

// loadProjectLimits reads every limit of the service for the project.
func (s *Service) loadProjectLimits(ctx context.Context, q LimitQuery) (map[string]int64, error) {
	svcs, err := s.store.ListServices(ctx, Filter{"type": q.ServiceType})
	if err != nil {
		return nil, fmt.Errorf("limits: services of type %s: %w", q.ServiceType, err)
	}
	switch len(svcs) {
	case 0:
		return map[string]int64{}, nil
	case 1:
	default:
		// oslo.limit refuses to guess too (its "Multiple services found").
		return nil, fmt.Errorf("limits: %d services of type %s in the catalog, cannot tell whose limits apply", len(svcs), q.ServiceType)
	}
	svcID := svcs[0].ID
	regs, err := s.store.ListRegisteredLimits(ctx, Filter{"service_id": svcID})
	if err != nil {
		return nil, fmt.Errorf("limits: registered limits: %w", err)
	}
	lims, err := s.store.ListLimits(ctx, Filter{"service_id": svcID, "project_id": q.ProjectID})
	if err != nil {
		return nil, fmt.Errorf("limits: project limits: %w", err)
	}
	out := map[string]int64{}
	// Region-less first, the endpoint's region second (it wins); project
	// limits after registered ones (they win).
	for _, region := range regionOrder(q.RegionID) {
		for _, r := range regs {
			if r.RegionID == region {
				out[r.ResourceName] = r.DefaultLimit
			}
		}
	}
	for _, region := range regionOrder(q.RegionID) {
		for _, l := range lims {
			if l.RegionID == region && l.ProjectID == q.ProjectID {
				out[l.ResourceName] = l.ResourceLimit
			}
		}
	}
	return out, nil
}

func regionOrder(region string) []string {
	if region == "" {
		return []string{""}
	}
	return []string{"", region}
}
