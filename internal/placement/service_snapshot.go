package placement

import (
	"context"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// The change feed of the scheduler's provider snapshot
// (internal/compute/scheduler/snapshot.go). Every write to a provider
// (inventories, traits, aggregates, allocations, name or parent) sets its
// updated_at with its generation, so "which providers changed since T" is
// a range scan of an index, and the scheduler reads in full only those
// whose generation it does not know.

// ProviderState is a provider as the scheduler's snapshot holds it.
type ProviderState struct {
	UUID        string
	ParentUUID  string // "" for a root
	RootUUID    string
	Generation  int64
	Inventories map[string]Inventory
	Traits      []string
	Aggregates  []string
}

// ChangedProviders returns the generation of every provider written at
// or after since (every provider when since is zero). Deleted providers
// do not appear: callers reload everything now and then.
func (s *Service) ChangedProviders(ctx context.Context, since time.Time) (map[string]int64, error) {
	q := `SELECT uuid, generation FROM placement_providers`
	var args []any
	if !since.IsZero() {
		q += ` WHERE updated_at >= $1`
		args = append(args, db.FormatTime(since))
	}
	rows, err := s.store.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var u string
		var g int64
		if err := rows.Scan(&u, &g); err != nil {
			return nil, err
		}
		out[u] = g
	}
	return out, rows.Err()
}

// ProviderStates reads the providers named by uuids (every provider when
// uuids is nil) with their inventories, traits and aggregates. Unknown
// uuids are left out. Each provider's rows are read in one statement
// per table; a provider written between them may show a newer
// inventory than its generation says, which only makes the caller read
// it again later.
func (s *Service) ProviderStates(ctx context.Context, uuids []string) ([]ProviderState, error) {
	d := s.store.db
	var args []any
	if uuids != nil {
		if len(uuids) == 0 {
			return nil, nil
		}
		args = []any{db.JSONStrings(uuids)}
	}
	cond := func(col string) string {
		if args == nil {
			return ""
		}
		return " WHERE " + col + " " + d.InList(1)
	}
	q := d.Reader()
	rows, err := q.QueryContext(ctx, `SELECT uuid, COALESCE(parent_uuid, ''), root_uuid, generation FROM placement_providers`+cond("uuid"), args...)
	if err != nil {
		return nil, err
	}
	byUUID := map[string]*ProviderState{}
	var order []string
	for rows.Next() {
		p := &ProviderState{Inventories: map[string]Inventory{}}
		if err := rows.Scan(&p.UUID, &p.ParentUUID, &p.RootUUID, &p.Generation); err != nil {
			rows.Close()
			return nil, err
		}
		byUUID[p.UUID] = p
		order = append(order, p.UUID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT provider_uuid, `+invCols+` FROM placement_inventories`+cond("provider_uuid"), args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var u string
		var i Inventory
		if err := rows.Scan(&u, &i.ResourceClass, &i.Total, &i.Reserved, &i.MinUnit, &i.MaxUnit, &i.StepSize, &i.AllocationRatio, &i.Used); err != nil {
			rows.Close()
			return nil, err
		}
		if p := byUUID[u]; p != nil {
			p.Inventories[i.ResourceClass] = i
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, rel := range []struct {
		q   string
		add func(*ProviderState, string)
	}{
		{`SELECT provider_uuid, trait FROM placement_provider_traits`, func(p *ProviderState, v string) { p.Traits = append(p.Traits, v) }},
		{`SELECT provider_uuid, aggregate_uuid FROM placement_provider_aggregates`, func(p *ProviderState, v string) { p.Aggregates = append(p.Aggregates, v) }},
	} {
		rows, err := q.QueryContext(ctx, rel.q+cond("provider_uuid"), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var u, v string
			if err := rows.Scan(&u, &v); err != nil {
				rows.Close()
				return nil, err
			}
			if p := byUUID[u]; p != nil {
				rel.add(p, v)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]ProviderState, 0, len(order))
	for _, u := range order {
		out = append(out, *byUUID[u])
	}
	return out, nil
}

// IsStandardTrait reports whether name is one of the standard traits
// (os-traits) placement always knows.
func IsStandardTrait(name string) bool { return standardTraitSet[name] }
