// Package scheduler chooses compute hosts for instances, as Nova's
// filter scheduler does, over the Placement service:
//
//	request spec ─▶ placement allocation candidates (resources, traits,
//	               zone aggregates, forced host as in_tree)
//	            ─▶ host states (candidates joined with the hosts' services,
//	               nodes, aggregates and the request's server group)
//	            ─▶ filters (each one counts the hosts it eliminated)
//	            ─▶ weighers (normalised, multiplied, summed)
//	            ─▶ claim the best host's allocation in placement; on a
//	               conflict or a full host try the next one, and ask
//	               placement again when the list runs out
//
// Choose is pure: host states and a spec in, an ordered list out (the
// part benchmarked with 10,000 hosts). Schedule adds the placement calls
// and the claims. Several instances (a multi-create) are scheduled in one
// call: each choice updates the chosen host's free resources and the
// group's member counts before the next instance is weighed.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kumo-cloud/kumo/internal/placement"
)

// Placement is what the scheduler needs from the Placement service
// (*placement.Service implements it).
type Placement interface {
	AllocationCandidates(ctx context.Context, req *placement.CandidateRequest) (*placement.Candidates, error)
}

// Aggregate is a host aggregate as filters see it.
type Aggregate struct {
	UUID     string
	Name     string
	Metadata map[string]string
}

// Host is one compute node as the scheduler sees it.
type Host struct {
	Host     string
	Node     string
	Provider string // the node's resource provider uuid
	// Up is the compute service's heartbeat state; Disabled its admin state.
	Up       bool
	Disabled bool
	// HypervisorType is the node's hypervisor ("QEMU", "fake").
	HypervisorType string
	Aggregates     []*Aggregate

	// Filled from placement's provider summaries for each request.
	Traits map[string]bool
	Free   map[string]int64 // capacity minus usage, by class
	// The free VCPU, MEMORY_MB and DISK_GB again, for the weighers'
	// hot loop (SetFree keeps both in step).
	freeCPU, freeRAM, freeDisk int64
	// sharedFree: Free belongs to the provider snapshot; SetFree copies
	// it first.
	sharedFree bool
}

// SetFree sets the free amount of a class.
func (h *Host) SetFree(class string, n int64) {
	if h.Free == nil {
		h.Free = map[string]int64{}
	}
	if h.sharedFree {
		h.Free, h.sharedFree = maps.Clone(h.Free), false
	}
	h.Free[class] = n
	switch class {
	case "VCPU":
		h.freeCPU = n
	case "MEMORY_MB":
		h.freeRAM = n
	case "DISK_GB":
		h.freeDisk = n
	}
}

// Zone is the host's availability zone: the availability_zone metadata
// of one of its aggregates, or def.
func (h *Host) Zone(def string) string {
	for _, a := range h.Aggregates {
		if z := a.Metadata["availability_zone"]; z != "" {
			return z
		}
	}
	return def
}

// Group is the server group of a request.
type Group struct {
	UUID   string
	Policy string // affinity, anti-affinity, soft-affinity, soft-anti-affinity
	// MaxServerPerHost is the anti-affinity rule (2.64); 0 means 1.
	MaxServerPerHost int
	// Members counts the group's other instances per host.
	Members map[string]int
}

// Spec is a request spec: what every instance of one request needs.
type Spec struct {
	ProjectID string
	UserID    string
	// Resources by placement class (VCPU, MEMORY_MB, DISK_GB, ...).
	Resources       map[string]int64
	RequiredTraits  []string
	ForbiddenTraits []string
	// Zone is the requested availability zone ("" for any).
	Zone string
	// ForceHost / ForceNode name the only host to consider (admin
	// requested destination, "zone:host"); the compute filter's disabled
	// check and the zone filter are skipped for it, as Nova does.
	ForceHost string
	ForceNode string
	// IgnoreHosts are not considered (the source of a move).
	IgnoreHosts []string
	// ExtraSpecs are the flavor's extra specs.
	ExtraSpecs map[string]string
	// Image holds the image's properties (hw_architecture, img_hv_type,
	// hw_vm_mode).
	Image map[string]string
	Group *Group
	// SameHost / DifferentHost are the hosts of the instances named by
	// the same_host / different_host hints.
	SameHost      []string
	DifferentHost []string
	// ZoneAggregates and OtherZoneAggregates are set by Schedule from the
	// hosts' aggregates to pre-filter the zone in placement.
}

// Config tunes the scheduler; zero values get Nova's defaults.
type Config struct {
	// DefaultZone is the zone of hosts in no zone aggregate ("nova").
	DefaultZone string
	// MaxCandidates is placement's limit (max_placement_results, 1000).
	MaxCandidates int
	// Pack chooses the fullest host first instead of the emptiest
	// (negative RAM, CPU and disk multipliers).
	Pack bool
	// Multipliers by weigher name; missing ones are 1.0.
	Multipliers map[string]float64
	// Attempts is how often placement is asked again when every chosen
	// host refused the claim (default 3).
	Attempts int
	// Snapshot tunes the provider snapshot (snapshot.go), used when the
	// placement given to New can feed it.
	Snapshot SnapshotConfig
}

// Scheduler chooses hosts.
type Scheduler struct {
	cfg     Config
	pl      Placement
	filters []Filter
	weigher []Weigher
	snap    *snapshot // nil: placement answers every request
	log     *slog.Logger
}

// New returns a scheduler over pl.
func New(pl Placement, cfg Config, log *slog.Logger) *Scheduler {
	if cfg.DefaultZone == "" {
		cfg.DefaultZone = "nova"
	}
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = 1000
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{cfg: cfg, pl: pl, filters: DefaultFilters(cfg.DefaultZone), weigher: DefaultWeighers(cfg), log: log}
	if src, ok := pl.(ProviderSource); ok && !cfg.Snapshot.Disabled {
		s.snap = newSnapshot(src, cfg.Snapshot)
	}
	return s
}

// NoValidHostError is the scheduler's failure: no host passed. It says
// which filter eliminated how many hosts.
type NoValidHostError struct {
	Candidates int // hosts placement offered (with free resources)
	Eliminated []FilterResult
	Reason     string // set when placement itself found nothing
}

// FilterResult is what one filter did.
type FilterResult struct {
	Filter     string
	Eliminated int
}

// ErrNoValidHost is matched by errors.Is on every NoValidHostError.
var ErrNoValidHost = errors.New("no valid host")

func (e *NoValidHostError) Error() string {
	var b strings.Builder
	b.WriteString("No valid host was found. There are not enough hosts available.")
	if e.Reason != "" {
		b.WriteString(" " + e.Reason)
	}
	var parts []string
	for _, r := range e.Eliminated {
		if r.Eliminated > 0 {
			parts = append(parts, fmt.Sprintf("%s eliminated %d", r.Filter, r.Eliminated))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, " Of %d candidate host(s): %s.", e.Candidates, strings.Join(parts, ", "))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoValidHost) true.
func (e *NoValidHostError) Is(target error) bool { return target == ErrNoValidHost }

// Choose filters and weighs hosts for spec: the passing hosts, best
// first. It does not change hosts.
func (s *Scheduler) Choose(hosts []*Host, spec *Spec) ([]*Host, error) {
	passed, results := s.filter(hosts, spec)
	if len(passed) == 0 {
		return nil, &NoValidHostError{Candidates: len(hosts), Eliminated: results}
	}
	s.weigh(passed, spec)
	return passed, nil
}

func (s *Scheduler) filter(hosts []*Host, spec *Spec) ([]*Host, []FilterResult) {
	cur := make([]*Host, 0, len(hosts))
	ignored := 0
	for _, h := range hosts {
		switch {
		case spec.ForceHost != "" && h.Host != spec.ForceHost, spec.ForceNode != "" && h.Node != spec.ForceNode:
			ignored++
		case slices.Contains(spec.IgnoreHosts, h.Host):
			ignored++
		default:
			cur = append(cur, h)
		}
	}
	results := []FilterResult{{Filter: "IgnoreHosts/ForceHosts", Eliminated: ignored}}
	for _, f := range s.filters {
		if !f.Active(spec) {
			continue
		}
		pass := func(h *Host) bool { return f.Pass(h, spec) }
		if pf, ok := f.(interface{ Prepare(*Spec) func(*Host) bool }); ok {
			pass = pf.Prepare(spec)
		}
		if af, ok := f.(aggregateFilter); ok {
			pass = memoByAggregates(af, spec)
		}
		n := 0
		for _, h := range cur {
			if pass(h) {
				cur[n] = h
				n++
			}
		}
		results = append(results, FilterResult{Filter: f.Name(), Eliminated: len(cur) - n})
		cur = cur[:n]
		if n == 0 {
			break
		}
	}
	return cur, results
}

// scored is a host with its total weight.
type scored struct {
	w float64
	h *Host
}

// scratch holds the buffers of one weighing, reused across decisions.
type scratch struct {
	raw        []float64
	list, rest []scored
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

func (s *Scheduler) weigh(hosts []*Host, spec *Spec) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	n := len(hosts)
	sc.raw = slices.Grow(sc.raw[:0], n)[:n]
	sc.list = slices.Grow(sc.list[:0], n)[:n]
	raw, list := sc.raw, sc.list
	for i, h := range hosts {
		list[i] = scored{0, h}
	}
	for _, w := range s.weigher {
		m := w.Multiplier()
		if m == 0 || !w.Active(spec) {
			continue
		}
		lo, hi := 0.0, 0.0
		for i, h := range hosts {
			raw[i] = w.Weigh(h, spec)
			if i == 0 || raw[i] < lo {
				lo = raw[i]
			}
			if i == 0 || raw[i] > hi {
				hi = raw[i]
			}
		}
		if hi == lo {
			continue // every host equal: the weigher cannot tell them apart
		}
		for i := range list {
			list[i].w += m * (raw[i] - lo) / (hi - lo)
		}
	}
	better := func(a, b scored) int {
		switch {
		case a.w > b.w:
			return -1
		case a.w < b.w:
			return 1
		}
		return strings.Compare(a.h.Host, b.h.Host)
	}
	// Only the first few hosts are ever tried (a claim fails rarely), so
	// the best topK are selected in one pass and sorted; the rest follow
	// in no particular order. Sorting 10,000 hosts would cost more than
	// every filter together.
	const topK = 16
	if len(list) > 4*topK {
		var top [topK + 1]scored
		nt := 0
		rest := sc.rest[:0]
		for _, x := range list {
			if nt == topK && better(x, top[topK-1]) >= 0 {
				rest = append(rest, x)
				continue
			}
			pos, _ := slices.BinarySearchFunc(top[:nt], x, better)
			copy(top[pos+1:nt+1], top[pos:nt])
			top[pos] = x
			if nt < topK {
				nt++
			} else {
				rest = append(rest, top[topK])
			}
		}
		for i := 0; i < nt; i++ {
			hosts[i] = top[i].h
		}
		for i, x := range rest {
			hosts[nt+i] = x.h
		}
		sc.rest = rest
		return
	}
	slices.SortFunc(list, better)
	for i := range list {
		hosts[i] = list[i].h
	}
}

// Selection is one instance's chosen host and what was claimed there.
type Selection struct {
	Host        *Host
	Allocations map[string]map[string]int64
}

// ClaimFunc claims allocs for the i-th instance of a request; it returns
// an error wrapping placement.ErrCapacityExceeded or
// placement.ErrConcurrentUpdate when the host should be skipped.
type ClaimFunc func(ctx context.Context, i int, allocs map[string]map[string]int64) error

// HostSource lists the compute nodes with their services and aggregates.
type HostSource interface {
	Hosts(ctx context.Context) ([]*Host, error)
}

// Schedule chooses and claims a host for each of n instances. On failure
// the claims already made stay: the caller releases them (it knows the
// consumers).
func (s *Scheduler) Schedule(ctx context.Context, src HostSource, spec *Spec, n int, claim ClaimFunc) ([]Selection, error) {
	var out []Selection
	var lastErr error
	for attempt := 0; attempt < s.cfg.Attempts && len(out) < n; attempt++ {
		hosts, err := src.Hosts(ctx)
		if err != nil {
			return out, fmt.Errorf("scheduler: hosts: %w", err)
		}
		cands, why, err := s.candidates(ctx, hosts, spec, attempt > 0)
		if err != nil {
			return out, err
		}
		if len(cands) == 0 {
			return out, &NoValidHostError{Reason: "Placement found no host with the requested resources and traits." + why}
		}
		progress := false
		for len(out) < n {
			ordered, err := s.Choose(cands, spec)
			if err != nil {
				return out, err
			}
			chosen := false
			for _, h := range ordered {
				allocs := map[string]map[string]int64{h.Provider: cloneAmounts(spec.Resources)}
				err := claim(ctx, len(out), allocs)
				if errors.Is(err, placement.ErrCapacityExceeded) || errors.Is(err, placement.ErrConcurrentUpdate) {
					s.log.Debug("claim refused; trying the next host", "host", h.Host, "err", err)
					lastErr = err
					if s.snap != nil {
						if err := s.snap.reread(ctx, []string{h.Provider}); err != nil {
							return out, err
						}
					}
					// Stop offering the host in this round.
					for rc := range h.Free {
						h.SetFree(rc, 0)
					}
					continue
				}
				if err != nil {
					return out, err
				}
				out = append(out, Selection{Host: h, Allocations: allocs})
				if s.snap != nil {
					s.snap.claimed(h.Provider, allocs[h.Provider])
				}
				consume(h, spec)
				chosen, progress = true, true
				break
			}
			if !chosen {
				break
			}
		}
		if !progress && attempt == s.cfg.Attempts-1 {
			break
		}
	}
	if len(out) < n {
		e := &NoValidHostError{Reason: "Every chosen host refused the claim."}
		if lastErr != nil {
			e.Reason += " Last: " + lastErr.Error()
		}
		return out, e
	}
	return out, nil
}

// consume accounts a choice on the host for the next instance.
func consume(h *Host, spec *Spec) {
	for rc, n := range spec.Resources {
		h.SetFree(rc, h.Free[rc]-n)
	}
	if g := spec.Group; g != nil {
		if g.Members == nil {
			g.Members = map[string]int{}
		}
		g.Members[h.Host]++
	}
}

func cloneAmounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// candidates returns the hosts that have room, with their traits and
// free resources: from the provider snapshot when it can tell (fresh
// when refresh: every chosen host refused the claim), else from
// placement's allocation candidates joined with the hosts.
func (s *Scheduler) candidates(ctx context.Context, hosts []*Host, spec *Spec, refresh bool) (cands []*Host, why string, err error) {
	var memberOf, notMemberOf []string
	forced := ""
	cands, err = s.placementCandidates(ctx, hosts, spec, refresh, &memberOf, &notMemberOf, &forced)
	if err == nil && len(cands) == 0 && s.snap != nil {
		why = s.snap.explain(hosts, spec, memberOf, notMemberOf, forced)
	}
	return cands, why, err
}

func (s *Scheduler) placementCandidates(ctx context.Context, hosts []*Host, spec *Spec, refresh bool, memberOf, notMemberOf *[]string, forcedOut *string) ([]*Host, error) {
	g := placement.RequestGroup{Resources: cloneAmounts(spec.Resources), Required: spec.RequiredTraits, Forbidden: spec.ForbiddenTraits}
	// Pre-filters: a forced host bounds the tree; a zone becomes the
	// member_of of its aggregates (the default zone: none of the zones').
	forced := ""
	for _, h := range hosts {
		if spec.ForceHost != "" && h.Host == spec.ForceHost || spec.ForceNode != "" && h.Node == spec.ForceNode {
			forced = h.Provider
		}
	}
	if spec.ForceHost != "" || spec.ForceNode != "" {
		if forced == "" {
			return nil, &NoValidHostError{Reason: fmt.Sprintf("Host %q is not a known compute host.", spec.ForceHost+spec.ForceNode)}
		}
		g.InTree = forced
	} else if spec.Zone != "" {
		in, out := zoneAggregates(hosts, spec.Zone, s.cfg.DefaultZone)
		switch {
		case spec.Zone == s.cfg.DefaultZone:
			g.NotMemberOf = out
		case len(in) == 0:
			return nil, &NoValidHostError{Reason: fmt.Sprintf("No host is in availability zone %q.", spec.Zone)}
		default:
			g.MemberOf = [][]string{in}
		}
	}
	if s.snap != nil {
		if err := s.snap.refresh(ctx, refresh); err != nil {
			return nil, err
		}
		if len(g.MemberOf) > 0 {
			*memberOf = g.MemberOf[0]
		}
		*notMemberOf, *forcedOut = g.NotMemberOf, g.InTree
		out, err := s.snap.candidates(hosts, spec, *memberOf, g.NotMemberOf, g.InTree, s.cfg.MaxCandidates)
		if err == nil && len(out) > 0 {
			return out, nil
		}
		// Nothing fits, or the snapshot cannot tell: placement decides
		// (and reports bad requests).
	}
	req := &placement.CandidateRequest{Groups: []placement.RequestGroup{g}, Limit: s.cfg.MaxCandidates}
	res, err := s.pl.AllocationCandidates(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("scheduler: allocation candidates: %w", err)
	}
	byProv := make(map[string]*Host, len(hosts))
	for _, h := range hosts {
		if h.Provider != "" {
			byProv[h.Provider] = h
		}
	}
	seen := map[string]bool{}
	var out []*Host
	for _, ar := range res.Requests {
		for prov := range ar.Allocations {
			sum := res.Summaries[prov]
			h := byProv[prov]
			if h == nil || sum == nil || seen[prov] {
				continue
			}
			seen[prov] = true
			hc := *h
			hc.Free = make(map[string]int64, len(sum.Resources))
			for rc, r := range sum.Resources {
				hc.SetFree(rc, r.Capacity-r.Used)
			}
			hc.Traits = make(map[string]bool, len(sum.Traits))
			for _, t := range sum.Traits {
				hc.Traits[t] = true
			}
			out = append(out, &hc)
		}
	}
	return out, nil
}

// zoneAggregates returns the aggregates that put hosts in zone and those
// that put them in any other zone.
func zoneAggregates(hosts []*Host, zone, def string) (in, out []string) {
	seen := map[string]bool{}
	for _, h := range hosts {
		for _, a := range h.Aggregates {
			z := a.Metadata["availability_zone"]
			if z == "" || seen[a.UUID] {
				continue
			}
			seen[a.UUID] = true
			if z == zone {
				in = append(in, a.UUID)
			} else {
				out = append(out, a.UUID)
			}
		}
	}
	return in, out
}
