package placement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/kumo-cloud/kumo/internal/db"
)

// Consumer is what holds allocations: an instance, a migration, a port.
type Consumer struct {
	UUID         string
	ProjectID    string
	UserID       string
	ConsumerType string
	Generation   int64
}

// ConsumerAllocations is the full set of allocations of one consumer, as a
// claim writes it.
type ConsumerAllocations struct {
	Consumer  string
	ProjectID string
	UserID    string
	// ConsumerType is recorded as given (Placement 1.38); may be empty.
	ConsumerType string
	// CheckGeneration asks for the consumer generation check: Generation
	// nil means the consumer must not exist yet.
	CheckGeneration bool
	Generation      *int64
	// Allocations by provider uuid, then resource class. Empty removes
	// every allocation of the consumer.
	Allocations map[string]map[string]int64
}

// incompleteConsumer is the project and user recorded for consumers written
// before 1.8 without them, as Placement does.
const incompleteConsumer = "00000000-0000-0000-0000-000000000000"

func (s *store) consumer(ctx context.Context, q db.Querier, uuid string, lock bool) (*Consumer, error) {
	c := &Consumer{UUID: uuid}
	var ct sql.NullString
	qs := `SELECT project_id, user_id, consumer_type, generation FROM placement_consumers WHERE uuid = $1`
	if lock {
		qs += s.db.ForUpdate()
	}
	err := q.QueryRowContext(ctx, qs, uuid).Scan(&c.ProjectID, &c.UserID, &ct, &c.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	c.ConsumerType = ct.String
	return c, err
}

type allocRow struct {
	Consumer, Provider, Class string
	Used                      int64
}

// replaceAllocations writes the allocations of every consumer in sets
// atomically: all or nothing. Providers are locked in uuid order (their
// generations bumped), so concurrent claims serialise per provider and
// never deadlock; capacity is checked against the locked inventory.
// provGens, when not nil, are provider generations the caller saw; a
// mismatch is a concurrent update.
func (s *store) replaceAllocations(ctx context.Context, sets []ConsumerAllocations, provGens map[string]int64) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		return s.replaceAllocationsTx(ctx, tx, sets, provGens, nil)
	})
}

// ProviderInventories is one provider's full inventory for the reshaper.
type ProviderInventories struct {
	Generation  int64
	Inventories []Inventory
}

// reshape replaces inventories and allocations in one transaction, so that
// inventory may move between providers together with its allocations.
func (s *store) reshape(ctx context.Context, invs map[string]ProviderInventories, sets []ConsumerAllocations) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		for _, p := range sortedKeys(invs) {
			if _, err := s.writeInventoriesTx(ctx, tx, p, invs[p].Generation, invs[p].Inventories, invReplaceAll, false, true); err != nil {
				if errors.Is(err, ErrNotFound) {
					return perr(400, ErrNotFound, codeProviderNotFound, "Resource provider %s in reshaper request not found.", p)
				}
				return err
			}
		}
		if err := s.replaceAllocationsTx(ctx, tx, sets, nil, nil); err != nil {
			return err
		}
		// No allocation may be left on a class the reshape removed.
		var orphan int
		if len(invs) > 0 {
			in, args := inList(sortedKeys(invs))
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_allocations a LEFT JOIN placement_inventories i
				ON i.provider_uuid = a.provider_uuid AND i.resource_class = a.resource_class
				WHERE i.provider_uuid IS NULL AND a.provider_uuid IN `+in, args...).Scan(&orphan); err != nil {
				return err
			}
		}
		if orphan > 0 {
			return conflict(codeInventoryInUse, ErrInUse, "Unable to reshape: inventory in use by allocations not moved by the request.")
		}
		return nil
	})
}

// replaceAllocationsTx is replaceAllocations inside tx. known holds
// consumers the caller already read (locked) in tx, to skip reading them
// again; it may be nil.
//
// The statements do not grow with the number of resource classes: per
// consumer one read, one delete of its old allocations (when it has some,
// returning them) and one write, once one insert of the new allocations,
// and per provider one generation bump and one update of its
// inventories' usage by the net change, which returns the inventories.
//
// The provider rows are the hot rows: every claim on a provider bumps its
// generation, so concurrent claims on one provider queue on its row lock
// from the bump until commit. The bumps, the insert of the allocations and
// the usage updates therefore come last, after the writes that need no
// provider lock: the lock is held for three statements and the commit (on
// PostgreSQL; on SQLite the single writer excludes the others anyway). Providers are bumped in uuid
// order, so concurrent claims never deadlock. Capacity and unit checks run
// on the inventories the usage update returns (the latest, locked rows),
// in provider then class order per consumer, with the usage the earlier
// consumers of sets and the released allocations leave, so the first
// failing allocation gives the error it did when each class was checked
// and written in turn; a failed check rolls the whole transaction back.
func (s *store) replaceAllocationsTx(ctx context.Context, tx *sql.Tx, sets []ConsumerAllocations, provGens map[string]int64, known map[string]*Consumer) error {
	touched := map[string]bool{}
	released := map[invKey]int64{}
	existing := map[string]*Consumer{}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Consumer < sets[j].Consumer })
	for _, set := range sets {
		c, ok := known[set.Consumer]
		if !ok {
			var err error
			if c, err = s.consumer(ctx, tx, set.Consumer, true); err != nil {
				return err
			}
		}
		existing[set.Consumer] = c
		if set.CheckGeneration {
			switch {
			case c == nil && set.Generation != nil:
				return staleGeneration("consumer generation conflict - expected null but got %d", *set.Generation)
			case c != nil && set.Generation == nil:
				return staleGeneration("consumer generation conflict - expected %d but got null", c.Generation)
			case c != nil && *set.Generation != c.Generation:
				return staleGeneration("consumer generation conflict - expected %d but got %d", c.Generation, *set.Generation)
			}
		}
		if c == nil {
			continue
		}
		// The old allocations are deleted as they are read (the
		// consumer row is locked).
		rows, err := tx.QueryContext(ctx, `DELETE FROM placement_allocations WHERE consumer_uuid = $1 RETURNING provider_uuid, resource_class, used`, set.Consumer)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r allocRow
			if err := rows.Scan(&r.Provider, &r.Class, &r.Used); err != nil {
				rows.Close()
				return err
			}
			released[invKey{r.Provider, r.Class}] -= r.Used
			touched[r.Provider] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	// The net change of every inventory, and the inventories that must
	// exist (every class allocated).
	delta := maps.Clone(released)
	allocated := map[invKey]bool{}
	for _, set := range sets {
		for p, res := range set.Allocations {
			touched[p] = true
			for rc, n := range res {
				k := invKey{p, rc}
				allocated[k] = true
				delta[k] += n
			}
		}
	}
	var rows []allocRow
	ts := now()
	for _, set := range sets {
		c := existing[set.Consumer]
		if len(set.Allocations) == 0 {
			if c != nil {
				if _, err := tx.ExecContext(ctx, `DELETE FROM placement_consumers WHERE uuid = $1`, set.Consumer); err != nil {
					return err
				}
			}
			continue
		}
		var ct any
		if set.ConsumerType != "" {
			ct = set.ConsumerType
		}
		var err error
		if c == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO placement_consumers (uuid, project_id, user_id, consumer_type, generation, created_at, updated_at)
				VALUES ($1, $2, $3, $4, 1, $5, $5)`, set.Consumer, set.ProjectID, set.UserID, ct, ts)
			if db.IsUniqueViolation(err) {
				return staleGeneration("consumer generation conflict - expected null but the consumer %s was created concurrently", set.Consumer)
			}
		} else {
			if ct == nil && c.ConsumerType != "" {
				ct = c.ConsumerType
			}
			_, err = tx.ExecContext(ctx, `UPDATE placement_consumers SET project_id = $2, user_id = $3, consumer_type = $4,
				generation = generation + 1, updated_at = $5 WHERE uuid = $1`, set.Consumer, set.ProjectID, set.UserID, ct, ts)
		}
		if err != nil {
			return err
		}
		for _, p := range sortedKeys(set.Allocations) {
			res := set.Allocations[p]
			for _, rc := range sortedKeys(res) {
				rows = append(rows, allocRow{Consumer: set.Consumer, Provider: p, Class: rc, Used: res[rc]})
			}
		}
	}
	provs := sortedKeys(touched)
	var invs map[invKey]Inventory
	var err error
	if s.db.Dialect() == db.Postgres && len(provs) == 1 {
		invs, err = s.claimOne(ctx, tx, provs[0], provGens, rows, delta, allocated)
	} else {
		invs, err = s.claimEach(ctx, tx, provs, provGens, rows, delta, allocated)
	}
	if err != nil {
		return err
	}
	running := released
	for _, set := range sets {
		for _, p := range sortedKeys(set.Allocations) {
			res := set.Allocations[p]
			for _, rc := range sortedKeys(res) {
				k := invKey{p, rc}
				inv, ok := invs[k]
				if !ok {
					return s.noInventory(ctx, tx, p, rc)
				}
				inv.Used += running[k] - delta[k]
				if err := checkAllocation(inv, p, res[rc]); err != nil {
					return err
				}
				running[k] += res[rc]
			}
		}
	}
	return nil
}

// claimEach bumps the generation of every provider of provs in order,
// inserts rows and applies delta (addUsage): one statement per provider
// and step.
func (s *store) claimEach(ctx context.Context, tx *sql.Tx, provs []string, provGens map[string]int64, rows []allocRow, delta map[invKey]int64, allocated map[invKey]bool) (map[invKey]Inventory, error) {
	for _, p := range provs {
		exp := int64(-1)
		if g, ok := provGens[p]; ok {
			exp = g
		}
		if _, err := s.bump(ctx, tx, p, exp); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, badRequest("Allocation for resource provider '%s' that does not exist.", p)
			}
			return nil, err
		}
	}
	// Inserted under the providers' locks: the insert's foreign key check
	// takes a key-share lock on each provider row, and many transactions
	// sharing a row that others update cost PostgreSQL a new multixact
	// (a copy of every locker) per locker.
	if err := s.insertAllocations(ctx, tx, rows); err != nil {
		return nil, err
	}
	// Every change of an inventory bumps its provider first, so the
	// inventories the usage update returns are the latest.
	return s.addUsage(ctx, tx, provs, delta, allocated)
}

// claimOne is claimEach for one provider on PostgreSQL, in one statement:
// the generation bump, the insert (when there are rows) and the usage
// update are data-modifying WITH queries of one SELECT, so the provider
// row, the hot row of every claim on it, stays locked for that statement
// and the commit instead of three round trips and the commit. The usage
// update runs once the bump holds the provider's lock (it waits for the
// bump's result), so it updates, and returns, the latest inventories: a
// row changed since the statement's snapshot is re-read and updated in
// its latest version, as PostgreSQL does for UPDATE in READ COMMITTED.
// The insert's foreign key check runs at the end of the statement, under
// the provider lock.
func (s *store) claimOne(ctx context.Context, tx *sql.Tx, prov string, provGens map[string]int64, rows []allocRow, delta map[invKey]int64, allocated map[invKey]bool) (map[invKey]Inventory, error) {
	args := []any{prov, now()}
	var q strings.Builder
	q.WriteString(`WITH b AS (UPDATE placement_providers SET generation = generation + 1, updated_at = $2 WHERE uuid = $1`)
	if g, ok := provGens[prov]; ok {
		args = append(args, g)
		q.WriteString(` AND generation = $3`)
	}
	q.WriteString(` RETURNING generation)`)
	if len(rows) > 0 {
		q.WriteString(`, i AS (INSERT INTO placement_allocations (consumer_uuid, provider_uuid, resource_class, used) VALUES `)
		for j, r := range rows {
			if j > 0 {
				q.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
			args = append(args, r.Consumer, r.Provider, r.Class, r.Used)
		}
		q.WriteString(`)`)
	}
	var classes []string
	for k, n := range delta {
		if n != 0 || allocated[k] {
			classes = append(classes, k.Class)
		}
	}
	sort.Strings(classes)
	if len(classes) > 0 {
		q.WriteString(`, u AS (UPDATE placement_inventories SET used = used + CASE resource_class`)
		first := len(args) + 1
		for _, rc := range classes {
			fmt.Fprintf(&q, " WHEN $%d THEN CAST($%d AS BIGINT)", len(args)+1, len(args)+2)
			args = append(args, rc, delta[invKey{prov, rc}])
		}
		q.WriteString(` ELSE 0 END WHERE provider_uuid = $1 AND resource_class IN (`)
		for j := range classes {
			if j > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", first+2*j)
		}
		q.WriteString(`) AND EXISTS (SELECT 1 FROM b) RETURNING ` + invCols + `)
			SELECT g.generation, u.* FROM (SELECT (SELECT generation FROM b) AS generation) g LEFT JOIN u ON true`)
	} else {
		q.WriteString(` SELECT (SELECT generation FROM b)`)
	}
	// A missing provider fails the insert's foreign key check, which
	// aborts tx: the provider is looked for outside it.
	missing := func(err error) error {
		if db.IsForeignKeyViolation(err) {
			if _, perr := s.provider(ctx, s.db.Reader(), prov); errors.Is(perr, ErrNotFound) {
				return badRequest("Allocation for resource provider '%s' that does not exist.", prov)
			}
		}
		return err
	}
	res, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, missing(err)
	}
	defer res.Close()
	out := map[invKey]Inventory{}
	bumped := false
	for res.Next() {
		var gen sql.NullInt64
		if len(classes) == 0 {
			if err := res.Scan(&gen); err != nil {
				return nil, err
			}
		} else {
			var rc sql.NullString
			var i Inventory
			var total, reserved, minUnit, maxUnit, step, used sql.NullInt64
			var ratio sql.NullFloat64
			if err := res.Scan(&gen, &rc, &total, &reserved, &minUnit, &maxUnit, &step, &ratio, &used); err != nil {
				return nil, err
			}
			if rc.Valid {
				i.ResourceClass, i.Total, i.Reserved, i.MinUnit = rc.String, total.Int64, reserved.Int64, minUnit.Int64
				i.MaxUnit, i.StepSize, i.AllocationRatio, i.Used = maxUnit.Int64, step.Int64, ratio.Float64, used.Int64
				out[invKey{prov, rc.String}] = i
			}
		}
		bumped = bumped || gen.Valid
	}
	if err := res.Err(); err != nil {
		return nil, missing(err)
	}
	if !bumped {
		if _, err := s.provider(ctx, tx, prov); errors.Is(err, ErrNotFound) {
			return nil, badRequest("Allocation for resource provider '%s' that does not exist.", prov)
		} else if err != nil {
			return nil, err
		}
		return nil, staleGeneration("resource provider generation conflict")
	}
	return out, nil
}

// invKey names one inventory: provider and resource class.
type invKey struct{ Provider, Class string }

// noInventory is the error of an allocation of a class the provider has
// no inventory of.
func (s *store) noInventory(ctx context.Context, tx *sql.Tx, prov, rc string) error {
	ok, err := s.classExists(ctx, tx, rc)
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("Unable to allocate inventory: No such resource class %s.", rc)
	}
	return conflict("", ErrCapacityExceeded, "Unable to allocate inventory: Inventory for '%s' on resource provider '%s' invalid.", rc, prov)
}

// checkAllocation says why amount more of inv cannot be allocated, as
// Placement words it, or nil.
func checkAllocation(inv Inventory, prov string, amount int64) error {
	if err := inv.Check(amount); err != nil {
		if amount < inv.MinUnit || amount > inv.MaxUnit || amount%inv.StepSize != 0 {
			return conflict("", ErrCapacityExceeded, "Unable to allocate inventory: Unable to create allocation for '%s' on resource provider '%s'. The requested amount would violate inventory constraints.", inv.ResourceClass, prov)
		}
		return conflict("", ErrCapacityExceeded, "Unable to allocate inventory: Unable to create allocation for '%s' on resource provider '%s'. The requested amount would exceed the capacity.", inv.ResourceClass, prov)
	}
	return nil
}

// insertAllocations writes rows with one multi-row INSERT (per 250 rows).
func (s *store) insertAllocations(ctx context.Context, tx *sql.Tx, rows []allocRow) error {
	const chunk = 250
	for len(rows) > 0 {
		n := min(len(rows), chunk)
		var q strings.Builder
		q.WriteString(`INSERT INTO placement_allocations (consumer_uuid, provider_uuid, resource_class, used) VALUES `)
		args := make([]any, 0, 4*n)
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d)", 4*i+1, 4*i+2, 4*i+3, 4*i+4)
			args = append(args, r.Consumer, r.Provider, r.Class, r.Used)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// addUsage adds delta to the usage of the inventories of provs and
// returns them as updated, keyed by provider and class: one UPDATE per
// provider over the classes it changes or that are allocated (allocated
// classes with no net change are rewritten unchanged, so that they are
// returned). Inventories that no longer exist (a reshape removed them)
// are skipped and missing from the result.
func (s *store) addUsage(ctx context.Context, tx *sql.Tx, provs []string, delta map[invKey]int64, allocated map[invKey]bool) (map[invKey]Inventory, error) {
	byProv := map[string]map[string]int64{}
	for k, n := range delta {
		if n == 0 && !allocated[k] {
			continue
		}
		if byProv[k.Provider] == nil {
			byProv[k.Provider] = map[string]int64{}
		}
		byProv[k.Provider][k.Class] = n
	}
	out := map[invKey]Inventory{}
	for _, p := range provs {
		if len(byProv[p]) == 0 {
			continue
		}
		classes := sortedKeys(byProv[p])
		args := []any{p}
		var q strings.Builder
		q.WriteString(`UPDATE placement_inventories SET used = used + CASE resource_class`)
		for _, rc := range classes {
			fmt.Fprintf(&q, " WHEN $%d THEN CAST($%d AS BIGINT)", len(args)+1, len(args)+2)
			args = append(args, rc, byProv[p][rc])
		}
		q.WriteString(` ELSE 0 END WHERE provider_uuid = $1 AND resource_class IN (`)
		for i := range classes {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", 2*i+2)
		}
		q.WriteString(`) RETURNING ` + invCols)
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var i Inventory
			if err := rows.Scan(&i.ResourceClass, &i.Total, &i.Reserved, &i.MinUnit, &i.MaxUnit, &i.StepSize, &i.AllocationRatio, &i.Used); err != nil {
				rows.Close()
				return nil, err
			}
			out[invKey{p, i.ResourceClass}] = i
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// consumerAllocations returns a consumer (nil when it has none) and its
// allocations by provider, with each provider's generation.
func (s *store) consumerAllocations(ctx context.Context, uuid string) (*Consumer, map[string]map[string]int64, map[string]int64, error) {
	q := s.db.Reader()
	c, err := s.consumer(ctx, q, uuid, false)
	if err != nil || c == nil {
		return nil, nil, nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT a.provider_uuid, a.resource_class, a.used, p.generation
		FROM placement_allocations a JOIN placement_providers p ON p.uuid = a.provider_uuid WHERE a.consumer_uuid = $1`, uuid)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	allocs := map[string]map[string]int64{}
	gens := map[string]int64{}
	for rows.Next() {
		var p, rc string
		var used, gen int64
		if err := rows.Scan(&p, &rc, &used, &gen); err != nil {
			return nil, nil, nil, err
		}
		if allocs[p] == nil {
			allocs[p] = map[string]int64{}
		}
		allocs[p][rc] = used
		gens[p] = gen
	}
	return c, allocs, gens, rows.Err()
}

// providerAllocations returns a provider's allocations by consumer.
func (s *store) providerAllocations(ctx context.Context, uuid string) (map[string]map[string]int64, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT consumer_uuid, resource_class, used FROM placement_allocations WHERE provider_uuid = $1`, uuid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var c, rc string
		var used int64
		if err := rows.Scan(&c, &rc, &used); err != nil {
			return nil, err
		}
		if out[c] == nil {
			out[c] = map[string]int64{}
		}
		out[c][rc] = used
	}
	return out, rows.Err()
}

// projectUsages sums allocations of a project's (and user's) consumers.
func (s *store) projectUsages(ctx context.Context, project, user string) (map[string]int64, error) {
	q := `SELECT a.resource_class, SUM(a.used) FROM placement_allocations a
		JOIN placement_consumers c ON c.uuid = a.consumer_uuid WHERE c.project_id = $1`
	args := []any{project}
	if user != "" {
		q += ` AND c.user_id = $2`
		args = append(args, user)
	}
	q += ` GROUP BY a.resource_class`
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var rc string
		var n int64
		if err := rows.Scan(&rc, &n); err != nil {
			return nil, err
		}
		out[rc] = n
	}
	return out, rows.Err()
}

func placeholders(from, n int) string { return db.Placeholders(from, n) }

// Reshape is the Go form of POST /reshaper.
func (s *Service) Reshape(ctx context.Context, invs map[string]ProviderInventories, sets []ConsumerAllocations) error {
	for _, pi := range invs {
		for i := range pi.Inventories {
			if err := normalizeInventory(&pi.Inventories[i], vMax); err != nil {
				return err
			}
		}
	}
	return s.store.reshape(ctx, invs, sets)
}

func inList(list []string) (string, []any) {
	args := make([]any, len(list))
	for i, s := range list {
		args[i] = s
	}
	return "(" + placeholders(1, len(list)) + ")", args
}
