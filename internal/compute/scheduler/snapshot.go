package scheduler

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/placement"
)

// The provider snapshot: the scheduler's in-memory copy of placement's
// providers (inventories with usage, traits, aggregates, generations),
// from which it computes the candidates of simple requests itself
// instead of asking placement for allocation candidates each time.
//
//	load     every provider, at the first decision and every FullEvery
//	refresh  at most every MaxAge before a decision: the providers
//	         written since the last refresh (minus Slack, for writes that
//	         committed late) by generation; only those whose generation
//	         differs are read again
//	claim    placement still checks capacity under the provider's row
//	         lock, so a stale snapshot can never over-commit: a refused
//	         claim re-reads that provider and the next host is tried; a
//	         granted one is applied to the snapshot at once (and read
//	         again at the next refresh)
//
// Requests the snapshot cannot answer exactly go to placement: hosts
// whose provider has children (nested trees: resources may come from
// any provider of the tree), forbidden custom traits no provider has
// (placement says whether they exist), and any request the snapshot
// finds no host for (placement's answer, and its errors, are the
// reference).

// ProviderSource is what the snapshot reads (*placement.Service).
type ProviderSource interface {
	ChangedProviders(ctx context.Context, since time.Time) (map[string]int64, error)
	ProviderStates(ctx context.Context, uuids []string) ([]placement.ProviderState, error)
}

// SnapshotConfig tunes the snapshot; zero values get the defaults.
type SnapshotConfig struct {
	// Disabled makes every decision ask placement for candidates.
	Disabled bool
	// MaxAge is how old the snapshot may be before a decision refreshes
	// it (default 200 ms).
	MaxAge time.Duration
	// FullEvery is how often it is reloaded whole, which also forgets
	// deleted providers (default 1 minute).
	FullEvery time.Duration
	// Slack is how far back each refresh looks before the previous one,
	// for writes that committed after a refresh read past them, and for
	// clock differences between processes (default 1 s).
	Slack time.Duration
}

// slot holds a provider's current entry; it stays the same while the
// provider exists, so a host list is resolved to slots once (resolve).
type slot struct{ e *provEntry }

// resolve returns the slots of hosts' providers (nil for none), cached
// for the last host list seen (the conductor reuses its list for a
// while). Call with s.mu held.
func (s *snapshot) resolve(hosts []*Host) []*slot {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	if len(hosts) > 0 && s.res.first == hosts[0] && s.res.n == len(hosts) && s.res.epoch == s.epoch {
		return s.res.slots
	}
	slots := make([]*slot, len(hosts))
	for i, h := range hosts {
		if h.Provider != "" {
			slots[i] = s.provs[h.Provider]
		}
	}
	if len(hosts) > 0 {
		s.res.first, s.res.n, s.res.epoch, s.res.slots = hosts[0], len(hosts), s.epoch, slots
	}
	return slots
}

// provEntry is one provider in the snapshot. Entries are never changed
// once published (decisions share their maps); a change replaces the
// entry.
type provEntry struct {
	gen    int64 // -1: changed here, to be read again
	parent string
	inv    map[string]placement.Inventory
	traits map[string]bool
	aggs   map[string]bool
	free   map[string]int64 // capacity - used by class
	// res is inv and free again as a short list, for the candidate
	// loop (a few string compares cost less than map lookups).
	res                        []classState
	freeCPU, freeRAM, freeDisk int64
}

type classState struct {
	class string
	inv   placement.Inventory
	free  int64
}

// index fills res and the free fields from inv and free.
func (e *provEntry) index() *provEntry {
	e.res = e.res[:0]
	for rc, inv := range e.inv {
		e.res = append(e.res, classState{rc, inv, e.free[rc]})
	}
	e.freeCPU, e.freeRAM, e.freeDisk = e.free["VCPU"], e.free["MEMORY_MB"], e.free["DISK_GB"]
	return e
}

type snapshot struct {
	src ProviderSource
	cfg SnapshotConfig

	load sync.Mutex // one refresh at a time

	mu       sync.RWMutex
	provs    map[string]*slot
	epoch    int64          // changes when providers come or go
	children map[string]int // provider -> number of children
	cursor   time.Time      // next refresh reads changes from here
	resMu    sync.Mutex
	res      struct { // resolve's cache
		first *Host
		n     int
		epoch int64
		slots []*slot
	}
	fresh time.Time // last refresh
	full  time.Time // last full load
}

func newSnapshot(src ProviderSource, cfg SnapshotConfig) *snapshot {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 200 * time.Millisecond
	}
	if cfg.FullEvery <= 0 {
		cfg.FullEvery = time.Minute
	}
	if cfg.Slack <= 0 {
		cfg.Slack = time.Second
	}
	return &snapshot{src: src, cfg: cfg}
}

func newEntry(p placement.ProviderState) *provEntry {
	e := &provEntry{gen: p.Generation, parent: p.ParentUUID, inv: p.Inventories,
		traits: make(map[string]bool, len(p.Traits)), aggs: make(map[string]bool, len(p.Aggregates)),
		free: make(map[string]int64, len(p.Inventories))}
	for _, t := range p.Traits {
		e.traits[t] = true
	}
	for _, a := range p.Aggregates {
		e.aggs[a] = true
	}
	for rc, inv := range p.Inventories {
		e.free[rc] = inv.Capacity() - inv.Used
	}
	return e.index()
}

// refresh brings the snapshot up to date when it is older than MaxAge
// (always when force).
func (s *snapshot) refresh(ctx context.Context, force bool) error {
	s.mu.RLock()
	age := time.Since(s.fresh)
	s.mu.RUnlock()
	if !force && age < s.cfg.MaxAge {
		return nil
	}
	s.load.Lock()
	defer s.load.Unlock()
	s.mu.RLock()
	loaded, age, since, full := s.provs != nil, time.Since(s.fresh), s.cursor, time.Since(s.full)
	s.mu.RUnlock()
	if loaded && age < s.cfg.MaxAge && !force {
		return nil // another decision refreshed it meanwhile
	}
	start := time.Now()
	if !loaded || full >= s.cfg.FullEvery {
		states, err := s.src.ProviderStates(ctx, nil)
		if err != nil {
			return fmt.Errorf("scheduler: provider snapshot: %w", err)
		}
		provs := make(map[string]*slot, len(states))
		children := map[string]int{}
		for _, p := range states {
			provs[p.UUID] = &slot{newEntry(p)}
			if p.ParentUUID != "" {
				children[p.ParentUUID]++
			}
		}
		s.mu.Lock()
		s.provs, s.children = provs, children
		s.epoch++
		s.cursor, s.fresh, s.full = start.Add(-s.cfg.Slack), start, start
		s.mu.Unlock()
		return nil
	}
	gens, err := s.src.ChangedProviders(ctx, since)
	if err != nil {
		return fmt.Errorf("scheduler: provider changes: %w", err)
	}
	var stale []string
	s.mu.RLock()
	for u, g := range gens {
		if sl := s.provs[u]; sl == nil || sl.e.gen != g {
			stale = append(stale, u)
		}
	}
	s.mu.RUnlock()
	if err := s.reread(ctx, stale); err != nil {
		return err
	}
	s.mu.Lock()
	s.cursor, s.fresh = start.Add(-s.cfg.Slack), start
	s.mu.Unlock()
	return nil
}

// reread reads providers again (a refused claim, a refresh).
func (s *snapshot) reread(ctx context.Context, uuids []string) error {
	if len(uuids) == 0 {
		return nil
	}
	states, err := s.src.ProviderStates(ctx, uuids)
	if err != nil {
		return fmt.Errorf("scheduler: provider snapshot: %w", err)
	}
	found := make(map[string]bool, len(states))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range states {
		found[p.UUID] = true
		sl := s.provs[p.UUID]
		if sl == nil {
			sl = &slot{}
			s.provs[p.UUID] = sl
			s.epoch++
		}
		old := sl.e
		if old != nil && old.parent != p.ParentUUID && old.parent != "" {
			s.children[old.parent]--
		}
		if p.ParentUUID != "" && (old == nil || old.parent != p.ParentUUID) {
			s.children[p.ParentUUID]++
		}
		sl.e = newEntry(p)
	}
	for _, u := range uuids {
		if sl := s.provs[u]; !found[u] && sl != nil {
			if sl.e.parent != "" {
				s.children[sl.e.parent]--
			}
			sl.e = nil
			delete(s.provs, u) // deleted
			s.epoch++
		}
	}
	return nil
}

// claimed applies a granted claim: the provider's usage grows by
// amounts; its generation is unknown until the next refresh reads it.
func (s *snapshot) claimed(prov string, amounts map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.provs[prov]
	if sl == nil {
		return
	}
	old := sl.e
	e := *old
	e.gen = -1
	e.inv = maps.Clone(old.inv)
	e.free = maps.Clone(old.free)
	e.res = nil
	for rc, n := range amounts {
		if inv, ok := e.inv[rc]; ok {
			inv.Used += n
			e.inv[rc] = inv
			e.free[rc] -= n
		}
	}
	sl.e = e.index()
}

// errNeedPlacement: the snapshot cannot answer this request.
var errNeedPlacement = fmt.Errorf("scheduler: request needs placement")

// candidates returns the hosts whose provider can take spec's resources,
// with its traits and free resources: at most limit, taken from a
// random place in hosts onwards (as placement's
// randomize_allocation_candidates would), so that concurrent decisions
// and schedulers do not all weigh the same hosts. errNeedPlacement
// means the snapshot cannot tell.
func (s *snapshot) candidates(hosts []*Host, spec *Spec, memberOf, notMemberOf []string, forced string, limit int) ([]*Host, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range spec.ForbiddenTraits {
		if !placement.IsStandardTrait(t) && !s.traitSeen(t) {
			return nil, errNeedPlacement
		}
	}
	n := len(hosts)
	if n == 0 {
		return nil, nil
	}
	req := make([]amount, 0, len(spec.Resources))
	for rc, n := range spec.Resources {
		if n > 0 {
			req = append(req, amount{rc, n})
		}
	}
	nested := len(s.children) > 0
	slots := s.resolve(hosts)
	start := rand.IntN(n)
	block := make([]Host, 0, min(n, limit))
	out := make([]*Host, 0, min(n, limit))
	for k := 0; k < n && len(out) < limit; k++ {
		i := (start + k) % n
		h := hosts[i]
		if slots[i] == nil || forced != "" && h.Provider != forced {
			continue
		}
		e := slots[i].e
		if e == nil {
			continue
		}
		if e.parent != "" || nested && s.children[h.Provider] > 0 {
			return nil, errNeedPlacement // a nested tree
		}
		if !e.fits(req, spec, memberOf, notMemberOf) {
			continue
		}
		block = append(block, *h)
		hc := &block[len(block)-1]
		hc.Traits, hc.Free, hc.sharedFree = e.traits, e.free, true
		hc.freeCPU, hc.freeRAM, hc.freeDisk = e.freeCPU, e.freeRAM, e.freeDisk
		out = append(out, hc)
	}
	return out, nil
}

// amount is one requested class.
type amount struct {
	class string
	n     int64
}

func (s *snapshot) traitSeen(t string) bool {
	for _, sl := range s.provs {
		if sl.e.traits[t] {
			return true
		}
	}
	return false
}

// fits is placement's test of a single-provider tree: every requested
// class within the inventory's constraints and capacity, the required
// traits present and the forbidden ones absent, in one of the memberOf
// aggregates (when given) and in none of notMemberOf.
func (e *provEntry) fits(req []amount, spec *Spec, memberOf, notMemberOf []string) bool {
	for _, a := range req {
		var c *classState
		for i := range e.res {
			if e.res[i].class == a.class {
				c = &e.res[i]
				break
			}
		}
		n := a.n
		if c == nil || n < c.inv.MinUnit || n > c.inv.MaxUnit || c.inv.StepSize > 0 && n%c.inv.StepSize != 0 || c.free < n {
			return false
		}
	}
	for _, t := range spec.RequiredTraits {
		if !e.traits[t] {
			return false
		}
	}
	for _, t := range spec.ForbiddenTraits {
		if e.traits[t] {
			return false
		}
	}
	if memberOf != nil {
		in := false
		for _, a := range memberOf {
			in = in || e.aggs[a]
		}
		if !in {
			return false
		}
	}
	for _, a := range notMemberOf {
		if e.aggs[a] {
			return false
		}
	}
	return true
}

// explain says why placement has no candidate for spec among hosts, by
// the first test each host fails (for the "no valid host" fault).
func (s *snapshot) explain(hosts []*Host, spec *Spec, memberOf, notMemberOf []string, forced string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[string]int{}
	var order []string
	note := func(reason string) {
		if counts[reason] == 0 {
			order = append(order, reason)
		}
		counts[reason]++
	}
	classes := make([]string, 0, len(spec.Resources))
	for rc, n := range spec.Resources {
		if n > 0 {
			classes = append(classes, rc)
		}
	}
	slices.Sort(classes)
	total := 0
	for _, h := range hosts {
		sl := s.provs[h.Provider]
		if sl == nil || forced != "" && h.Provider != forced {
			continue
		}
		e := sl.e
		if e.parent != "" || s.children[h.Provider] > 0 {
			return "" // nested trees: placement's reasons are not these
		}
		total++
		reason := ""
		switch {
		case memberOf != nil && !slices.ContainsFunc(memberOf, func(a string) bool { return e.aggs[a] }),
			slices.ContainsFunc(notMemberOf, func(a string) bool { return e.aggs[a] }):
			reason = "outside the availability zone"
		}
		for _, rc := range classes {
			if reason != "" {
				break
			}
			n := spec.Resources[rc]
			inv, ok := e.inv[rc]
			switch {
			case !ok:
				reason = "without " + rc + " inventory"
			case n < inv.MinUnit || n > inv.MaxUnit || inv.StepSize > 0 && n%inv.StepSize != 0:
				reason = "whose " + rc + " unit limits refuse " + strconv.FormatInt(n, 10)
			case e.free[rc] < n:
				reason = "without " + strconv.FormatInt(n, 10) + " " + rc + " free"
			}
		}
		for _, t := range spec.RequiredTraits {
			if reason == "" && !e.traits[t] {
				reason = "without trait " + t
			}
		}
		for _, t := range spec.ForbiddenTraits {
			if reason == "" && e.traits[t] {
				reason = "with forbidden trait " + t
			}
		}
		if reason != "" {
			note(reason)
		}
	}
	if len(order) == 0 {
		return ""
	}
	parts := make([]string, len(order))
	for i, r := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[r], r)
	}
	return fmt.Sprintf(" Of %d host(s) in placement: %s.", total, strings.Join(parts, ", "))
}
