package placement

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
)

// AllocationRequest is one way to satisfy a CandidateRequest: amounts by
// provider and class, and which providers satisfied each group (by suffix,
// "" for the unsuffixed group).
type AllocationRequest struct {
	Allocations map[string]map[string]int64
	Mappings    map[string][]string
}

// ResourceSummary is the capacity and usage of one class on a provider.
type ResourceSummary struct {
	Capacity int64 `json:"capacity"`
	Used     int64 `json:"used"`
}

// ProviderSummary describes a provider of the candidate trees.
type ProviderSummary struct {
	UUID       string
	ParentUUID string
	RootUUID   string
	Resources  map[string]ResourceSummary
	Traits     []string
}

// Candidates is the answer to a CandidateRequest: allocation requests and
// summaries of every provider in the trees they use.
type Candidates struct {
	Requests  []AllocationRequest
	Summaries map[string]*ProviderSummary
}

// candProv is a provider as the candidate search sees it.
type candProv struct {
	uuid, root, parent string
	inv                map[string]*Inventory // requested classes only
	traits             map[string]bool       // requested traits only
	aggs               map[string]bool       // requested aggregates only
}

// slot is one choice to make for a tree: a class of the unsuffixed group
// (class != "") or a whole suffixed group.
type slot struct {
	group   *RequestGroup
	class   string
	amount  int64
	options []*candProv
}

type search struct {
	req      *CandidateRequest
	provs    map[string]*candProv
	traitsOf map[string]map[string]bool
	aggsOf   map[string]map[string]bool
	limit    int
	out      []AllocationRequest
	seen     map[string]bool
}

// candidates computes allocation candidates. Capacity and usage are read
// in one pass per requested class; trees are examined in a stable order
// (or shuffled when randomize) until limit requests are found.
func (s *store) candidates(ctx context.Context, req *CandidateRequest, randomize bool) (*Candidates, error) {
	res := &Candidates{Requests: []AllocationRequest{}, Summaries: map[string]*ProviderSummary{}}
	// Classes, traits and aggregates named anywhere in the request.
	minAmount := map[string]int64{}
	var traits, aggs []string
	treeOf := map[string]string{} // in_tree provider -> root
	for gi := range req.Groups {
		g := &req.Groups[gi]
		for rc, n := range g.Resources {
			if m, ok := minAmount[rc]; !ok || n < m {
				minAmount[rc] = n
			}
		}
		traits = append(traits, g.Required...)
		traits = append(traits, g.Forbidden...)
		for _, list := range g.MemberOf {
			aggs = append(aggs, list...)
		}
		aggs = append(aggs, g.NotMemberOf...)
		if g.InTree != "" {
			treeOf[g.InTree] = ""
		}
	}
	traits = append(traits, req.RootRequired...)
	traits = append(traits, req.RootForbidden...)
	traits, aggs = dedupe(traits), dedupe(aggs)
	classes := sortedKeys(minAmount)
	q := s.db.Reader()
	missing, err := s.missingClasses(ctx, q, classes)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, badRequest("Invalid resource class in resources parameter: No such resource class %s.", missing[0])
	}
	if missing, err = s.missingTraits(ctx, q, traits); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, badRequest("No such trait(s): %s.", strings.Join(missing, ", "))
	}
	for p := range treeOf {
		var root string
		err := q.QueryRowContext(ctx, `SELECT root_uuid FROM placement_providers WHERE uuid = $1`, p).Scan(&root)
		if errors.Is(err, sql.ErrNoRows) {
			return res, nil // a tree that does not exist holds no candidates
		} else if err != nil {
			return nil, err
		}
		treeOf[p] = root
	}
	// One tree for the whole request when every group is bounded to it.
	onlyRoot := ""
	for gi, g := range req.Groups {
		r := treeOf[g.InTree]
		if g.InTree == "" || gi > 0 && r != onlyRoot {
			onlyRoot = ""
			break
		}
		onlyRoot = r
	}

	sr := &search{req: req, provs: map[string]*candProv{}, limit: req.Limit, seen: map[string]bool{},
		traitsOf: map[string]map[string]bool{}, aggsOf: map[string]map[string]bool{}}
	if len(traits) > 0 {
		if err := s.loadRelations(ctx, `SELECT provider_uuid, trait FROM placement_provider_traits WHERE trait IN `, traits, sr.traitsOf); err != nil {
			return nil, err
		}
	}
	if len(aggs) > 0 {
		if err := s.loadRelations(ctx, `SELECT provider_uuid, aggregate_uuid FROM placement_provider_aggregates WHERE aggregate_uuid IN `, aggs, sr.aggsOf); err != nil {
			return nil, err
		}
	}

	// Every provider with all its inventories, tree after tree: the scan is
	// driven by the providers' root index (SQLite keeps the left table of a
	// join as the outer loop) so that it stops once limit requests are
	// found, and the trees it read give the summaries without more queries.
	used := map[string][]*candProv{} // trees that gave requests
	var usedRoots []string
	var deferred []string // randomize: trees to examine after the scan
	trees := map[string][]*candProv{}
	examine := func(root string) {
		members := trees[root]
		before := len(sr.out)
		sr.tree(root, members, treeOf)
		if len(sr.out) > before {
			used[root] = members
			usedRoots = append(usedRoots, root)
		}
		delete(trees, root)
	}
	// Trees are read in batches of roots by keyset (root_uuid > last), so
	// both engines walk the root index and stop early once limit requests
	// are found.
	batch := 1000
	if req.Limit > 0 && !randomize {
		batch = max(2*req.Limit, 100)
	}
	last := ""
	for done := false; !done; {
		sqlq := `SELECT p.uuid, p.root_uuid, COALESCE(p.parent_uuid, ''), COALESCE(i.resource_class, ''),
			COALESCE(i.total, 0), COALESCE(i.reserved, 0), COALESCE(i.min_unit, 0), COALESCE(i.max_unit, 0),
			COALESCE(i.step_size, 1), COALESCE(i.allocation_ratio, 0), COALESCE(i.used, 0)
			FROM placement_providers p LEFT JOIN placement_inventories i ON i.provider_uuid = p.uuid
			WHERE `
		var args []any
		if onlyRoot != "" {
			sqlq += `p.root_uuid = $1`
			args = append(args, onlyRoot)
		} else {
			sqlq += `p.root_uuid IN (SELECT uuid FROM placement_providers WHERE parent_uuid IS NULL AND uuid > $1 ORDER BY uuid LIMIT $2)`
			args = append(args, last, batch)
		}
		sqlq += ` ORDER BY p.root_uuid`
		rows, err := q.QueryContext(ctx, sqlq, args...)
		if err != nil {
			return nil, err
		}
		cur, n := "", 0
		for rows.Next() {
			n++
			var uuid, root, parent string
			inv := &Inventory{}
			if err := rows.Scan(&uuid, &root, &parent, &inv.ResourceClass, &inv.Total, &inv.Reserved,
				&inv.MinUnit, &inv.MaxUnit, &inv.StepSize, &inv.AllocationRatio, &inv.Used); err != nil {
				rows.Close()
				return nil, err
			}
			if root != cur {
				if cur != "" {
					if randomize {
						deferred = append(deferred, cur)
					} else if examine(cur); sr.full() {
						cur = ""
						done = true
						break
					}
				}
				cur = root
			}
			p := sr.provs[uuid]
			if p == nil {
				p = sr.newProv(uuid, root, parent)
				trees[root] = append(trees[root], p)
			}
			if inv.ResourceClass != "" {
				p.inv[inv.ResourceClass] = inv
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
		if cur != "" {
			last = cur
			if randomize {
				deferred = append(deferred, cur)
			} else if examine(cur); sr.full() {
				done = true
			}
		}
		if n == 0 || onlyRoot != "" {
			done = true
		}
	}
	if randomize {
		rand.Shuffle(len(deferred), func(i, j int) { deferred[i], deferred[j] = deferred[j], deferred[i] })
		for _, root := range deferred {
			if sr.full() {
				break
			}
			examine(root)
		}
	}
	res.Requests = sr.out
	if len(res.Requests) == 0 {
		return res, nil
	}
	var members []string
	for _, root := range usedRoots {
		for _, p := range used[root] {
			ps := &ProviderSummary{UUID: p.uuid, ParentUUID: p.parent, RootUUID: p.root,
				Resources: make(map[string]ResourceSummary, len(p.inv)), Traits: []string{}}
			for rc, inv := range p.inv {
				ps.Resources[rc] = ResourceSummary{Capacity: inv.Capacity(), Used: inv.Used}
			}
			res.Summaries[p.uuid] = ps
			members = append(members, p.uuid)
		}
	}
	if err := s.summaryTraits(ctx, members, res.Summaries); err != nil {
		return nil, err
	}
	return res, nil
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// chunks splits list into pieces of at most n.
func chunks(list []string, n int) [][]string {
	var out [][]string
	for len(list) > n {
		out = append(out, list[:n])
		list = list[n:]
	}
	if len(list) > 0 {
		out = append(out, list)
	}
	return out
}

// loadRelations fills rel (provider -> set) from a two-column query whose
// IN list is names.
func (s *store) loadRelations(ctx context.Context, q string, names []string, rel map[string]map[string]bool) error {
	in, args := inList(names)
	rows, err := s.db.Reader().QueryContext(ctx, q+in, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p, n string
		if err := rows.Scan(&p, &n); err != nil {
			return err
		}
		if rel[p] == nil {
			rel[p] = map[string]bool{}
		}
		rel[p][n] = true
	}
	return rows.Err()
}

// stub builds a provider with its requested traits and aggregates.
func (sr *search) stub(uuid, root, parent string) *candProv {
	return &candProv{uuid: uuid, root: root, parent: parent, inv: map[string]*Inventory{},
		traits: sr.traitsOf[uuid], aggs: sr.aggsOf[uuid]}
}

// newProv registers a provider seen in the inventory scan.
func (sr *search) newProv(uuid, root, parent string) *candProv {
	p := sr.stub(uuid, root, parent)
	sr.provs[uuid] = p
	return p
}

// prov returns a provider of the search, or a stub for one without
// requested inventory (a root lending its traits and aggregates).
func (sr *search) prov(uuid string) *candProv {
	if p := sr.provs[uuid]; p != nil {
		return p
	}
	return sr.stub(uuid, "", "")
}

func (sr *search) full() bool { return sr.limit > 0 && len(sr.out) >= sr.limit }

// hasTraits: p has every trait of req and none of forb.
func (p *candProv) hasTraits(req, forb []string) bool {
	for _, t := range req {
		if !p.traits[t] {
			return false
		}
	}
	for _, t := range forb {
		if p.traits[t] {
			return false
		}
	}
	return true
}

// inAggs applies member_of to a provider; viaRoot lets the root's
// aggregates count (the unsuffixed group).
func (sr *search) inAggs(p *candProv, g *RequestGroup, viaRoot bool) bool {
	if len(g.MemberOf) == 0 && len(g.NotMemberOf) == 0 {
		return true
	}
	var root *candProv
	if viaRoot && p.root != p.uuid {
		root = sr.prov(p.root)
	}
	has := func(a string) bool { return p.aggs[a] || root != nil && root.aggs[a] }
	for _, list := range g.MemberOf {
		ok := false
		for _, a := range list {
			if has(a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, a := range g.NotMemberOf {
		if has(a) {
			return false
		}
	}
	return true
}

// tree finds the allocation requests within one provider tree.
func (sr *search) tree(root string, members []*candProv, treeOf map[string]string) {
	req := sr.req
	if len(req.RootRequired) > 0 || len(req.RootForbidden) > 0 {
		rp := sr.prov(root)
		if !rp.hasTraits(req.RootRequired, req.RootForbidden) {
			return
		}
	}
	var slots []*slot
	for gi := range req.Groups {
		g := &req.Groups[gi]
		if g.InTree != "" && treeOf[g.InTree] != root {
			return
		}
		if g.Suffix == "" {
			for _, rc := range sortedKeys(g.Resources) {
				sl := &slot{group: g, class: rc, amount: g.Resources[rc]}
				for _, p := range members {
					inv := p.inv[rc]
					if inv == nil || inv.Check(sl.amount) != nil || !p.hasTraits(nil, g.Forbidden) || !sr.inAggs(p, g, true) {
						continue
					}
					sl.options = append(sl.options, p)
				}
				if len(sl.options) == 0 {
					return
				}
				slots = append(slots, sl)
			}
			continue
		}
		sl := &slot{group: g}
		for _, p := range members {
			ok := p.hasTraits(g.Required, g.Forbidden) && sr.inAggs(p, g, false)
			for rc, n := range g.Resources {
				if !ok {
					break
				}
				inv := p.inv[rc]
				ok = inv != nil && inv.Check(n) == nil
			}
			if ok {
				sl.options = append(sl.options, p)
			}
		}
		if len(sl.options) == 0 {
			return
		}
		slots = append(slots, sl)
	}
	st := &state{sr: sr, slots: slots, chosen: make([]*candProv, len(slots)), acc: map[accKey]int64{}}
	st.walk(0)
}

type accKey struct{ prov, class string }

type state struct {
	sr     *search
	slots  []*slot
	chosen []*candProv
	acc    map[accKey]int64
}

func (st *state) full() bool { return st.sr.full() }

func (st *state) walk(i int) {
	if st.full() {
		return
	}
	if i == len(st.slots) {
		st.emit()
		return
	}
	sl := st.slots[i]
	for _, p := range sl.options {
		if st.full() {
			return
		}
		if st.sr.req.GroupPolicy == "isolate" && sl.class == "" && len(sl.group.Resources) > 0 {
			clash := false
			for j := 0; j < i; j++ {
				o := st.slots[j]
				if o.class == "" && len(o.group.Resources) > 0 && st.chosen[j] == p {
					clash = true
					break
				}
			}
			if clash {
				continue
			}
		}
		var res map[string]int64
		if sl.class != "" {
			res = map[string]int64{sl.class: sl.amount}
		} else {
			res = sl.group.Resources
		}
		ok := true
		for rc, n := range res {
			k := accKey{p.uuid, rc}
			if st.acc[k] > 0 && p.inv[rc].Check(st.acc[k]+n) != nil {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for rc, n := range res {
			st.acc[accKey{p.uuid, rc}] += n
		}
		st.chosen[i] = p
		st.walk(i + 1)
		for rc, n := range res {
			k := accKey{p.uuid, rc}
			if st.acc[k] -= n; st.acc[k] == 0 {
				delete(st.acc, k)
			}
		}
	}
}

// emit records the current choice when the whole-request checks hold.
func (st *state) emit() {
	req := st.sr.req
	// Required traits of the unsuffixed group hold collectively over the
	// providers it uses.
	var unsuffixed *RequestGroup
	used := map[string]bool{}
	for i, sl := range st.slots {
		if sl.class != "" {
			unsuffixed = sl.group
			used[st.chosen[i].uuid] = true
		}
	}
	if unsuffixed != nil && len(unsuffixed.Required) > 0 {
		for _, t := range unsuffixed.Required {
			found := false
			for u := range used {
				if st.sr.prov(u).traits[t] {
					found = true
					break
				}
			}
			if !found {
				return
			}
		}
	}
	mappings := map[string][]string{}
	for i, sl := range st.slots {
		mappings[sl.group.Suffix] = appendUnique(mappings[sl.group.Suffix], st.chosen[i].uuid)
	}
	for _, list := range req.SameSubtree {
		if !st.sameSubtree(list, mappings) {
			return
		}
	}
	allocs := map[string]map[string]int64{}
	for k, n := range st.acc {
		if allocs[k.prov] == nil {
			allocs[k.prov] = map[string]int64{}
		}
		allocs[k.prov][k.class] = n
	}
	for s := range mappings {
		sort.Strings(mappings[s])
	}
	key := requestKey(allocs, mappings)
	if st.sr.seen[key] {
		return
	}
	st.sr.seen[key] = true
	st.sr.out = append(st.sr.out, AllocationRequest{Allocations: allocs, Mappings: mappings})
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// sameSubtree: one of the providers of the listed groups is an ancestor
// (or itself) of all the others.
func (st *state) sameSubtree(suffixes []string, mappings map[string][]string) bool {
	var ps []string
	for _, s := range suffixes {
		ps = append(ps, mappings[s]...)
	}
	for _, cand := range ps {
		ok := true
		for _, o := range ps {
			if !st.isAncestorOrSelf(cand, o) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (st *state) isAncestorOrSelf(anc, p string) bool {
	for i := 0; p != "" && i < 1000; i++ {
		if p == anc {
			return true
		}
		p = st.sr.prov(p).parent
	}
	return false
}

func requestKey(allocs map[string]map[string]int64, mappings map[string][]string) string {
	var b strings.Builder
	for _, p := range sortedKeys(allocs) {
		b.WriteString(p)
		for _, rc := range sortedKeys(allocs[p]) {
			b.WriteString("|" + rc + ":" + itoa(int(allocs[p][rc])))
		}
		b.WriteByte(';')
	}
	for _, s := range sortedKeys(mappings) {
		b.WriteString(s + "=" + strings.Join(mappings[s], ",") + ";")
	}
	return b.String()
}

// summaryTraits adds every trait of the given providers to their summaries.
func (s *store) summaryTraits(ctx context.Context, provs []string, out map[string]*ProviderSummary) error {
	for _, part := range chunks(provs, 500) {
		in, args := inList(part)
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT provider_uuid, trait FROM placement_provider_traits WHERE provider_uuid IN `+in, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p, t string
			if err := rows.Scan(&p, &t); err != nil {
				rows.Close()
				return err
			}
			if ps := out[p]; ps != nil {
				ps.Traits = append(ps.Traits, t)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, ps := range out {
		sort.Strings(ps.Traits)
	}
	return nil
}
