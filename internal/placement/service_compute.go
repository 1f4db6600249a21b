package placement

import (
	"context"
	"fmt"
	"strings"
)

// Go-level helpers for the compute conductor: custom traits created on
// demand and every allocation at once, for the allocation audit.

// EnsureTraits creates the CUSTOM_* traits of names that do not exist
// and returns the names placement knows (the custom ones and the
// standard ones) and those it does not.
func (s *Service) EnsureTraits(ctx context.Context, names []string) (known, unknown []string, err error) {
	for _, n := range names {
		if strings.HasPrefix(n, "CUSTOM_") && isCustom(n) {
			if _, err := s.store.createTrait(ctx, n); err != nil {
				return nil, nil, fmt.Errorf("placement: create trait %s: %w", n, err)
			}
			known = append(known, n)
			continue
		}
		ok, err := s.store.traitExists(ctx, s.store.db.Reader(), n)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			known = append(known, n)
		} else {
			unknown = append(unknown, n)
		}
	}
	return known, unknown, nil
}

// AllAllocations returns every allocation: consumer -> provider -> class
// -> amount.
func (s *Service) AllAllocations(ctx context.Context) (map[string]map[string]map[string]int64, error) {
	rows, err := s.store.db.Reader().QueryContext(ctx, `SELECT consumer_uuid, provider_uuid, resource_class, used FROM placement_allocations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]map[string]int64{}
	for rows.Next() {
		var c, p, rc string
		var used int64
		if err := rows.Scan(&c, &p, &rc, &used); err != nil {
			return nil, err
		}
		if out[c] == nil {
			out[c] = map[string]map[string]int64{}
		}
		if out[c][p] == nil {
			out[c][p] = map[string]int64{}
		}
		out[c][p][rc] = used
	}
	return out, rows.Err()
}

// Inventories returns a provider's inventories by class.
func (s *Service) Inventories(ctx context.Context, uuid string) (map[string]Inventory, error) {
	return s.store.inventories(ctx, s.store.db.Reader(), uuid)
}

// Traits returns a provider's traits.
func (s *Service) Traits(ctx context.Context, uuid string) ([]string, error) {
	return s.store.providerTraits(ctx, s.store.db.Reader(), uuid)
}

// Aggregates returns a provider's aggregates.
func (s *Service) Aggregates(ctx context.Context, uuid string) ([]string, error) {
	return s.store.providerAggregates(ctx, s.store.db.Reader(), uuid)
}
