package conductor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/compute/agent"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
)

// Resource providers: every compute node is a root provider in placement
// whose uuid is the node's uuid. Agents report what the provider should
// hold (compute.host.report 1.1, computed by their resource tracker,
// internal/compute/agent/resources.go); the conductor writes it here, so
// agents never touch the database or the Placement API. A write happens
// when the report differs from the last one written, and always on an
// agent's startup report or the first report a conductor sees (healing a
// provider that was deleted or changed behind Kumo's back).

// provState is what was last written for a host.
type provState struct {
	uuid   string
	digest string
}

func providerDigest(p *rpc.ProviderReport) string {
	var b strings.Builder
	for _, rc := range sortedKeys(p.Inventories) {
		i := p.Inventories[rc]
		fmt.Fprintf(&b, "%s:%d/%d/%d/%d/%d/%g;", rc, i.Total, i.Reserved, i.MinUnit, i.MaxUnit, i.StepSize, i.AllocationRatio)
	}
	b.WriteString(strings.Join(p.Traits, ","))
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// legacyProvider derives a 1.0 report's provider from its resources.
func legacyProvider(r *rpc.HostReport) *rpc.ProviderReport {
	return agent.ResourceConfig{}.ProviderReport(virtResources(r.Resources))
}

// syncProvider brings the host's provider in line with the report. An
// unchanged report costs no query.
// reportDigest is the digest of the provider r asks for ("" without
// placement).
func (c *Conductor) reportDigest(r *rpc.HostReport) string {
	if c.pl == nil {
		return ""
	}
	want := r.Provider
	if want == nil {
		want = legacyProvider(r)
	}
	return providerDigest(want)
}

// providerCurrentLocked reports whether the provider last written for
// host has digest (no placement write needed); c.mu is held.
func (c *Conductor) providerCurrentLocked(host, digest string) bool {
	if c.pl == nil {
		return true
	}
	last, ok := c.provs[host]
	return ok && last.digest == digest
}

func (c *Conductor) syncProvider(ctx context.Context, r *rpc.HostReport) error {
	if c.pl == nil {
		return nil
	}
	want := r.Provider
	if want == nil {
		want = legacyProvider(r)
	}
	digest := providerDigest(want)
	c.mu.Lock()
	last, ok := c.provs[r.Host]
	c.mu.Unlock()
	if ok && !r.Startup && last.digest == digest {
		return nil
	}
	node, err := c.st.NodeByHost(ctx, r.Host)
	if err != nil {
		return err
	}
	if err := c.writeProvider(ctx, node, want); err != nil {
		return err
	}
	c.mu.Lock()
	c.provs[node.Host] = provState{uuid: node.UUID, digest: digest}
	c.mu.Unlock()
	c.log.Info("resource provider synced", "host", node.Host, "provider", node.UUID, "startup", r.Startup)
	return nil
}

// writeProvider creates the provider when missing and sets its
// inventories, traits and aggregates, retrying on generation conflicts.
// The host's aggregates are read after the provider's generation, so an
// aggregate change the API mirrors meanwhile makes this write conflict
// and retry instead of overwriting it.
func (c *Conductor) writeProvider(ctx context.Context, node *store.Node, want *rpc.ProviderReport) error {
	invs := make([]placement.Inventory, 0, len(want.Inventories))
	for rc, i := range want.Inventories {
		invs = append(invs, placement.Inventory{ResourceClass: rc, Total: i.Total, Reserved: i.Reserved, MinUnit: i.MinUnit,
			MaxUnit: i.MaxUnit, StepSize: i.StepSize, AllocationRatio: i.AllocationRatio})
	}
	traits, unknown, err := c.pl.EnsureTraits(ctx, want.Traits)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		c.log.Warn("host reports traits placement does not know; left out", "host", node.Host, "traits", unknown)
	}
	for attempt := 0; attempt < 5; attempt++ {
		var p placement.Provider
		p, err = c.pl.Provider(ctx, node.UUID)
		if errors.Is(err, placement.ErrNotFound) {
			p, err = c.pl.CreateProvider(ctx, node.UUID, node.HypervisorHostname, "")
		}
		if err != nil {
			return fmt.Errorf("provider of %s: %w", node.Host, err)
		}
		gen := p.Generation
		var aggs []string
		if aggs, err = c.hostAggregateUUIDs(ctx, node.Host); err != nil {
			return err
		}
		if gen, err = c.pl.SetInventories(ctx, node.UUID, gen, invs); err != nil {
			if errors.Is(err, placement.ErrConcurrentUpdate) {
				continue
			}
			return fmt.Errorf("inventories of %s: %w", node.Host, err)
		}
		if gen, err = c.pl.SetTraits(ctx, node.UUID, gen, traits); err != nil {
			if errors.Is(err, placement.ErrConcurrentUpdate) {
				continue
			}
			return fmt.Errorf("traits of %s: %w", node.Host, err)
		}
		if _, err = c.pl.SetAggregates(ctx, node.UUID, gen, aggs); err != nil {
			if errors.Is(err, placement.ErrConcurrentUpdate) {
				continue
			}
			return fmt.Errorf("aggregates of %s: %w", node.Host, err)
		}
		return nil
	}
	return err
}

// hostAggregateUUIDs lists the uuids of the aggregates holding host.
func (c *Conductor) hostAggregateUUIDs(ctx context.Context, host string) ([]string, error) {
	all, err := c.st.ListAggregates(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range all {
		if slices.Contains(a.Hosts, host) {
			out = append(out, a.UUID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// MirrorAggregates writes the compute aggregates of host into its
// provider's placement aggregates (the API calls it after adding or
// removing a host, or deleting an aggregate).
func (c *Conductor) MirrorAggregates(ctx context.Context, host string) error {
	return MirrorAggregates(ctx, c.st, c.pl, host)
}

// MirrorAggregates is the conductor-free form for the API process.
func MirrorAggregates(ctx context.Context, st *store.Store, pl *placement.Service, host string) error {
	if pl == nil {
		return nil
	}
	node, err := st.NodeByHost(ctx, host)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not registered yet: its first report mirrors them
	}
	if err != nil {
		return err
	}
	all, err := st.ListAggregates(ctx)
	if err != nil {
		return err
	}
	aggs := []string{}
	for _, a := range all {
		if slices.Contains(a.Hosts, host) {
			aggs = append(aggs, a.UUID)
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		p, err := pl.Provider(ctx, node.UUID)
		if errors.Is(err, placement.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = pl.SetAggregates(ctx, node.UUID, p.Generation, aggs)
		if !errors.Is(err, placement.ErrConcurrentUpdate) {
			return err
		}
	}
	return placement.ErrConcurrentUpdate
}
