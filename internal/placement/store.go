package placement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// Provider is a resource provider.
type Provider struct {
	UUID       string
	Name       string
	Generation int64
	ParentUUID string // "" for a root
	RootUUID   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Inventory is one resource class of a provider.
type Inventory struct {
	ResourceClass   string
	Total           int64
	Reserved        int64
	MinUnit         int64
	MaxUnit         int64
	StepSize        int64
	AllocationRatio float64
	Used            int64 // sum of allocations; read-only
}

// Capacity is what may be allocated in total: (total - reserved) * ratio,
// truncated to an integer.
func (i Inventory) Capacity() int64 {
	return int64(float64(i.Total-i.Reserved) * i.AllocationRatio)
}

// Check reports why amount more cannot be allocated, or nil.
func (i Inventory) Check(amount int64) error {
	switch {
	case amount < i.MinUnit:
		return fmt.Errorf("%w: %d is below min_unit %d", ErrCapacityExceeded, amount, i.MinUnit)
	case amount > i.MaxUnit:
		return fmt.Errorf("%w: %d is above max_unit %d", ErrCapacityExceeded, amount, i.MaxUnit)
	case i.StepSize > 0 && amount%i.StepSize != 0:
		return fmt.Errorf("%w: %d is not a multiple of step_size %d", ErrCapacityExceeded, amount, i.StepSize)
	case i.Used+amount > i.Capacity():
		return fmt.Errorf("%w: %d used + %d requested exceeds capacity %d", ErrCapacityExceeded, i.Used, amount, i.Capacity())
	}
	return nil
}

// store holds the SQL of the placement tables.
type store struct {
	db *db.DB
}

func now() string { return time.Now().UTC().Format(db.TimeFormat) }

const providerCols = `uuid, name, generation, COALESCE(parent_uuid, ''), root_uuid, created_at, updated_at`

func scanProvider(sc interface{ Scan(...any) error }) (Provider, error) {
	var p Provider
	var c, u sql.NullString
	err := sc.Scan(&p.UUID, &p.Name, &p.Generation, &p.ParentUUID, &p.RootUUID, &c, &u)
	p.CreatedAt, p.UpdatedAt = db.ParseTime(c), db.ParseTime(u)
	return p, err
}

func (s *store) provider(ctx context.Context, q db.Querier, uuid string) (Provider, error) {
	p, err := scanProvider(q.QueryRowContext(ctx, `SELECT `+providerCols+` FROM placement_providers WHERE uuid = $1`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound("No resource provider with uuid %s found", uuid)
	}
	return p, err
}

// lockProvider reads a provider inside a write transaction, locking its row.
func (s *store) lockProvider(ctx context.Context, tx *sql.Tx, uuid string) (Provider, error) {
	p, err := scanProvider(tx.QueryRowContext(ctx, `SELECT `+providerCols+` FROM placement_providers WHERE uuid = $1`+s.db.ForUpdate(), uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound("No resource provider with uuid %s found", uuid)
	}
	return p, err
}

// bump increments a provider's generation when it equals expected (any
// generation when expected < 0) and returns the new one. A mismatch is
// placement.concurrent_update.
func (s *store) bump(ctx context.Context, tx *sql.Tx, uuid string, expected int64) (int64, error) {
	var gen int64
	var err error
	if expected < 0 {
		err = tx.QueryRowContext(ctx, `UPDATE placement_providers SET generation = generation + 1, updated_at = $2
			WHERE uuid = $1 RETURNING generation`, uuid, now()).Scan(&gen)
	} else {
		err = tx.QueryRowContext(ctx, `UPDATE placement_providers SET generation = generation + 1, updated_at = $3
			WHERE uuid = $1 AND generation = $2 RETURNING generation`, uuid, expected, now()).Scan(&gen)
	}
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.provider(ctx, tx, uuid); err != nil {
			return 0, err
		}
		return 0, staleGeneration("resource provider generation conflict")
	}
	return gen, err
}

func (s *store) createProvider(ctx context.Context, uuid, name, parent string) (Provider, error) {
	var p Provider
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		root := uuid
		if parent != "" {
			pp, err := s.lockProvider(ctx, tx, parent)
			if errors.Is(err, ErrNotFound) {
				return badRequest("parent provider UUID does not exist.")
			} else if err != nil {
				return err
			}
			root = pp.RootUUID
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_providers WHERE uuid = $1 OR name = $2`, uuid, name).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return conflict(codeDuplicateName, ErrDuplicate, "Conflicting resource provider name: %s already exists.", name)
		}
		ts := now()
		var par any
		if parent != "" {
			par = parent
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO placement_providers (uuid, name, generation, parent_uuid, root_uuid, created_at, updated_at)
			VALUES ($1, $2, 0, $3, $4, $5, $5)`, uuid, name, par, root, ts)
		if db.IsUniqueViolation(err) {
			return conflict(codeDuplicateName, ErrDuplicate, "Conflicting resource provider name: %s already exists.", name)
		}
		if err != nil {
			return err
		}
		p, err = s.provider(ctx, tx, uuid)
		return err
	})
	return p, err
}

// updateProvider renames a provider and, when parent is not nil, sets its
// parent ("" makes it a root); reparent says whether moving is allowed.
func (s *store) updateProvider(ctx context.Context, uuid, name string, parent *string, reparent bool) (Provider, error) {
	var p Provider
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.lockProvider(ctx, tx, uuid)
		if err != nil {
			return err
		}
		var dup int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_providers WHERE name = $1 AND uuid <> $2`, name, uuid).Scan(&dup); err != nil {
			return err
		}
		if dup > 0 {
			return conflict(codeDuplicateName, ErrDuplicate, "Conflicting resource provider name: %s already exists.", name)
		}
		newParent, newRoot := cur.ParentUUID, cur.RootUUID
		if parent != nil && *parent != cur.ParentUUID {
			if !reparent {
				if cur.ParentUUID != "" && *parent == "" {
					return badRequest("un-parenting a provider is not currently allowed.")
				}
				if cur.ParentUUID != "" {
					return badRequest("re-parenting a provider is not currently allowed.")
				}
			}
			newParent = *parent
			if newParent == "" {
				newRoot = uuid
			} else {
				pp, err := s.lockProvider(ctx, tx, newParent)
				if errors.Is(err, ErrNotFound) {
					return badRequest("parent provider UUID does not exist.")
				} else if err != nil {
					return err
				}
				if pp.UUID == uuid || pp.RootUUID == cur.RootUUID && s.isDescendant(ctx, tx, pp.UUID, uuid) {
					return badRequest("creating loop in the provider tree is not allowed.")
				}
				if cur.ParentUUID == "" && !reparent && pp.RootUUID != cur.RootUUID {
					// Placement before 1.37 lets a root become a child.
				}
				newRoot = pp.RootUUID
			}
		}
		var par any
		if newParent != "" {
			par = newParent
		}
		if _, err := tx.ExecContext(ctx, `UPDATE placement_providers SET name = $2, parent_uuid = $3, updated_at = $4 WHERE uuid = $1`,
			uuid, name, par, now()); err != nil {
			if db.IsUniqueViolation(err) {
				return conflict(codeDuplicateName, ErrDuplicate, "Conflicting resource provider name: %s already exists.", name)
			}
			return err
		}
		if newRoot != cur.RootUUID {
			if err := s.setRoot(ctx, tx, uuid, newRoot); err != nil {
				return err
			}
		}
		p, err = s.provider(ctx, tx, uuid)
		return err
	})
	return p, err
}

// isDescendant reports whether p is below anc in its tree.
func (s *store) isDescendant(ctx context.Context, tx *sql.Tx, p, anc string) bool {
	for i := 0; p != "" && i < 1000; i++ {
		var parent string
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(parent_uuid, '') FROM placement_providers WHERE uuid = $1`, p).Scan(&parent); err != nil {
			return false
		}
		if parent == anc {
			return true
		}
		p = parent
	}
	return false
}

// setRoot sets root_uuid on uuid and its whole subtree.
func (s *store) setRoot(ctx context.Context, tx *sql.Tx, uuid, root string) error {
	todo := []string{uuid}
	for len(todo) > 0 {
		cur := todo[0]
		todo = todo[1:]
		if _, err := tx.ExecContext(ctx, `UPDATE placement_providers SET root_uuid = $2, updated_at = $3 WHERE uuid = $1`, cur, root, now()); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT uuid FROM placement_providers WHERE parent_uuid = $1`, cur)
		if err != nil {
			return err
		}
		kids, err := scanStrings(rows)
		if err != nil {
			return err
		}
		todo = append(todo, kids...)
	}
	return nil
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (s *store) deleteProvider(ctx context.Context, uuid string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.lockProvider(ctx, tx, uuid); err != nil {
			if errors.Is(err, ErrNotFound) {
				return notFound("No resource provider with uuid %s found for delete", uuid)
			}
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_allocations WHERE provider_uuid = $1`, uuid).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeProviderInUse, ErrInUse, "Unable to delete resource provider %s: Resource provider has allocations.", uuid)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_providers WHERE parent_uuid = $1`, uuid).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeCannotDeleteParent, ErrInUse, "Unable to delete parent resource provider %s: It has child resource providers.", uuid)
		}
		for _, q := range []string{
			`DELETE FROM placement_inventories WHERE provider_uuid = $1`,
			`DELETE FROM placement_provider_traits WHERE provider_uuid = $1`,
			`DELETE FROM placement_provider_aggregates WHERE provider_uuid = $1`,
			`DELETE FROM placement_providers WHERE uuid = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, uuid); err != nil {
				return err
			}
		}
		return nil
	})
}

// listProviders returns the providers matching f, oldest first.
func (s *store) listProviders(ctx context.Context, f *ProviderFilter) ([]Provider, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Name != "" {
		where = append(where, "name = "+arg(f.Name))
	}
	if f.UUID != "" {
		where = append(where, "uuid = "+arg(f.UUID))
	}
	if f.InTree != "" {
		where = append(where, "root_uuid = (SELECT root_uuid FROM placement_providers WHERE uuid = "+arg(f.InTree)+")")
	}
	for _, any := range f.MemberOf {
		var ph []string
		for _, a := range any {
			ph = append(ph, arg(a))
		}
		where = append(where, "uuid IN (SELECT provider_uuid FROM placement_provider_aggregates WHERE aggregate_uuid IN ("+strings.Join(ph, ", ")+"))")
	}
	if len(f.NotMemberOf) > 0 {
		var ph []string
		for _, a := range f.NotMemberOf {
			ph = append(ph, arg(a))
		}
		where = append(where, "uuid NOT IN (SELECT provider_uuid FROM placement_provider_aggregates WHERE aggregate_uuid IN ("+strings.Join(ph, ", ")+"))")
	}
	for _, t := range f.Required {
		where = append(where, "uuid IN (SELECT provider_uuid FROM placement_provider_traits WHERE trait = "+arg(t)+")")
	}
	for _, t := range f.Forbidden {
		where = append(where, "uuid NOT IN (SELECT provider_uuid FROM placement_provider_traits WHERE trait = "+arg(t)+")")
	}
	classes := make([]string, 0, len(f.Resources))
	for rc := range f.Resources {
		classes = append(classes, rc)
	}
	sort.Strings(classes)
	for _, rc := range classes {
		a := arg(f.Resources[rc])
		where = append(where, "uuid IN (SELECT provider_uuid FROM placement_inventories WHERE resource_class = "+arg(rc)+
			" AND min_unit <= "+a+" AND max_unit >= "+a+" AND "+a+" % step_size = 0"+
			" AND (total - reserved) * allocation_ratio >= used + "+a+")")
	}
	q := `SELECT ` + providerCols + ` FROM placement_providers`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at, uuid"
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Provider
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ---- resource classes and traits ----

// classExists reports whether rc is a standard or created custom class.
func (s *store) classExists(ctx context.Context, q db.Querier, rc string) (bool, error) {
	return nameExists(ctx, q, standardClassSet, "placement_resource_classes", rc)
}

// missingClasses returns the classes among rcs that do not exist.
func (s *store) missingClasses(ctx context.Context, q db.Querier, rcs []string) ([]string, error) {
	return missingNames(ctx, q, standardClassSet, "placement_resource_classes", rcs)
}

// nameExists reports whether name is a standard one or a custom one
// created in table (resource classes and traits share these rules).
func nameExists(ctx context.Context, q db.Querier, standard map[string]bool, table, name string) (bool, error) {
	if standard[name] {
		return true, nil
	}
	if !isCustom(name) {
		return false, nil
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE name = $1`, name).Scan(&n)
	return n > 0, err
}

// missingNames returns the names among names that do not exist.
func missingNames(ctx context.Context, q db.Querier, standard map[string]bool, table string, names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		ok, err := nameExists(ctx, q, standard, table, name)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, name)
		}
	}
	return out, nil
}

func (s *store) customClasses(ctx context.Context) ([]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT name FROM placement_resource_classes ORDER BY created_at, name`)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}

func (s *store) createClass(ctx context.Context, name string) (created bool, err error) {
	err = s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_resource_classes WHERE name = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO placement_resource_classes (name, created_at) VALUES ($1, $2)`, name, now())
		if db.IsUniqueViolation(err) {
			return nil
		}
		created = err == nil
		return err
	})
	return created, err
}

func (s *store) renameClass(ctx context.Context, old, name string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_resource_classes WHERE name = $1`, old).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("No such resource class %s.", old)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_resource_classes WHERE name = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeDuplicateName, ErrDuplicate, "Resource class already exists: %s", name)
		}
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_inventories WHERE resource_class = $1`, old).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return conflict("", ErrInUse, "Unable to update resource class %s: it has inventories.", old)
		}
		_, err := tx.ExecContext(ctx, `UPDATE placement_resource_classes SET name = $2 WHERE name = $1`, old, name)
		return err
	})
}

func (s *store) deleteClass(ctx context.Context, name string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_resource_classes WHERE name = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("No such resource class %s.", name)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_inventories WHERE resource_class = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict("", ErrInUse, "Unable to delete resource class %s. Delete all inventory records first.", name)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM placement_resource_classes WHERE name = $1`, name)
		return err
	})
}

func (s *store) customTraits(ctx context.Context) ([]string, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT name FROM placement_traits`)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}

func (s *store) associatedTraits(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT DISTINCT trait FROM placement_provider_traits`)
	if err != nil {
		return nil, err
	}
	list, err := scanStrings(rows)
	return toSet(list), err
}

func (s *store) traitExists(ctx context.Context, q db.Querier, name string) (bool, error) {
	return nameExists(ctx, q, standardTraitSet, "placement_traits", name)
}

func (s *store) missingTraits(ctx context.Context, q db.Querier, names []string) ([]string, error) {
	return missingNames(ctx, q, standardTraitSet, "placement_traits", names)
}

func (s *store) createTrait(ctx context.Context, name string) (created bool, err error) {
	err = s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_traits WHERE name = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO placement_traits (name, created_at) VALUES ($1, $2)`, name, now())
		if db.IsUniqueViolation(err) {
			return nil
		}
		created = err == nil
		return err
	})
	return created, err
}

func (s *store) deleteTrait(ctx context.Context, name string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_traits WHERE name = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("No such trait(s): %s", name)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM placement_provider_traits WHERE trait = $1`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict("", ErrInUse, "The trait %s is in use by a resource provider.", name)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM placement_traits WHERE name = $1`, name)
		return err
	})
}

func (s *store) providerTraits(ctx context.Context, q db.Querier, uuid string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT trait FROM placement_provider_traits WHERE provider_uuid = $1 ORDER BY trait`, uuid)
}

// queryStrings runs a one-column query; no rows is an empty, non-nil list
// (rendered as [] rather than null).
func queryStrings(ctx context.Context, q db.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	out, err := scanStrings(rows)
	if out == nil {
		out = []string{}
	}
	return out, err
}

// setProviderTraits replaces a provider's traits when gen matches (gen < 0:
// any) and returns the new generation.
func (s *store) setProviderTraits(ctx context.Context, uuid string, gen int64, traits []string) (int64, error) {
	var newGen int64
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var err error
		if newGen, err = s.bump(ctx, tx, uuid, gen); err != nil {
			return err
		}
		missing, err := s.missingTraits(ctx, tx, traits)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return badRequest("No such trait(s): %s", strings.Join(missing, ", "))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placement_provider_traits WHERE provider_uuid = $1`, uuid); err != nil {
			return err
		}
		for _, t := range dedupe(traits) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO placement_provider_traits (provider_uuid, trait) VALUES ($1, $2)`, uuid, t); err != nil {
				return err
			}
		}
		return nil
	})
	return newGen, err
}

// dedupe returns the distinct strings of in, sorted.
func dedupe(in []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(in)))
}

func (s *store) providerAggregates(ctx context.Context, q db.Querier, uuid string) ([]string, error) {
	return queryStrings(ctx, q, `SELECT aggregate_uuid FROM placement_provider_aggregates WHERE provider_uuid = $1 ORDER BY aggregate_uuid`, uuid)
}

func (s *store) setProviderAggregates(ctx context.Context, uuid string, gen int64, aggs []string) (int64, error) {
	var newGen int64
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var err error
		if newGen, err = s.bump(ctx, tx, uuid, gen); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placement_provider_aggregates WHERE provider_uuid = $1`, uuid); err != nil {
			return err
		}
		for _, a := range dedupe(aggs) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO placement_provider_aggregates (provider_uuid, aggregate_uuid) VALUES ($1, $2)`, uuid, a); err != nil {
				return err
			}
		}
		return nil
	})
	return newGen, err
}

// ---- inventories ----

const invCols = `resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio, used`

func scanInventory(sc interface{ Scan(...any) error }) (Inventory, error) {
	var i Inventory
	err := sc.Scan(&i.ResourceClass, &i.Total, &i.Reserved, &i.MinUnit, &i.MaxUnit, &i.StepSize, &i.AllocationRatio, &i.Used)
	return i, err
}

func (s *store) inventories(ctx context.Context, q db.Querier, uuid string) (map[string]Inventory, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+invCols+` FROM placement_inventories WHERE provider_uuid = $1`, uuid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Inventory{}
	for rows.Next() {
		i, err := scanInventory(rows)
		if err != nil {
			return nil, err
		}
		out[i.ResourceClass] = i
	}
	return out, rows.Err()
}

// InventoryChange says how an inventory write treats the classes it names.
type invMode int

const (
	invReplaceAll invMode = iota // PUT /inventories: the given set is the whole inventory
	invAdd                       // POST /inventories: one new class
	invUpdate                    // PUT /inventories/{rc}: one existing class
)

// writeInventories changes a provider's inventory in one transaction when
// gen matches and returns the new generation.
func (s *store) writeInventories(ctx context.Context, uuid string, gen int64, invs []Inventory, mode invMode, strict bool) (int64, error) {
	var newGen int64
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var err error
		newGen, err = s.writeInventoriesTx(ctx, tx, uuid, gen, invs, mode, strict, false)
		return err
	})
	return newGen, err
}

// writeInventoriesTx is writeInventories inside tx; deferUse skips the
// in-use check of removed classes (the reshaper checks at the end).
func (s *store) writeInventoriesTx(ctx context.Context, tx *sql.Tx, uuid string, gen int64, invs []Inventory, mode invMode, strict, deferUse bool) (int64, error) {
	var newGen int64
	err := func() error {
		var err error
		if newGen, err = s.bump(ctx, tx, uuid, gen); err != nil {
			return err
		}
		cur, err := s.inventories(ctx, tx, uuid)
		if err != nil {
			return err
		}
		given := map[string]bool{}
		for _, inv := range invs {
			given[inv.ResourceClass] = true
			ok, err := s.classExists(ctx, tx, inv.ResourceClass)
			if err != nil {
				return err
			}
			if !ok {
				return badRequest("Unknown resource class in inventory for resource provider %s: %s", uuid, inv.ResourceClass)
			}
			old, exists := cur[inv.ResourceClass]
			switch {
			case mode == invAdd && exists:
				return conflict("", ErrDuplicate, "Update conflict: Inventory for '%s' on resource provider '%s' already exists.", inv.ResourceClass, uuid)
			case mode == invUpdate && !exists:
				return badRequest("No inventory record with resource class for resource provider %s: No inventory of class %s found", uuid, inv.ResourceClass)
			}
			inv.Used = old.Used
			if strict && inv.Capacity() < inv.Used {
				return conflict(codeInventoryInUse, ErrInUse, "Unable to update inventory for resource provider %s: capacity of %s would be below its usage %d.", uuid, inv.ResourceClass, inv.Used)
			}
			if exists {
				_, err = tx.ExecContext(ctx, `UPDATE placement_inventories SET total = $3, reserved = $4, min_unit = $5, max_unit = $6,
					step_size = $7, allocation_ratio = $8 WHERE provider_uuid = $1 AND resource_class = $2`,
					uuid, inv.ResourceClass, inv.Total, inv.Reserved, inv.MinUnit, inv.MaxUnit, inv.StepSize, inv.AllocationRatio)
			} else {
				_, err = tx.ExecContext(ctx, `INSERT INTO placement_inventories (provider_uuid, resource_class, total, reserved, min_unit,
					max_unit, step_size, allocation_ratio, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`,
					uuid, inv.ResourceClass, inv.Total, inv.Reserved, inv.MinUnit, inv.MaxUnit, inv.StepSize, inv.AllocationRatio)
			}
			if err != nil {
				return err
			}
		}
		if mode != invReplaceAll {
			return nil
		}
		var gone []string
		for rc, inv := range cur {
			if given[rc] {
				continue
			}
			if inv.Used > 0 && !deferUse {
				return conflict(codeInventoryInUse, ErrInUse, "update conflict: Inventory for '%s' on resource provider '%s' in use.", rc, uuid)
			}
			gone = append(gone, rc)
		}
		for _, rc := range gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM placement_inventories WHERE provider_uuid = $1 AND resource_class = $2`, uuid, rc); err != nil {
				return err
			}
		}
		return nil
	}()
	return newGen, err
}

// deleteInventory removes one class ("" for all) of a provider's inventory
// when gen matches (gen < 0: any).
func (s *store) deleteInventory(ctx context.Context, uuid, rc string, gen int64) (int64, error) {
	var newGen int64
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		var err error
		if newGen, err = s.bump(ctx, tx, uuid, gen); err != nil {
			return err
		}
		cur, err := s.inventories(ctx, tx, uuid)
		if err != nil {
			return err
		}
		if rc != "" {
			inv, ok := cur[rc]
			if !ok {
				return notFound("No inventory of class %s found for delete", rc)
			}
			if inv.Used > 0 {
				return conflict(codeInventoryInUse, ErrInUse, "Unable to delete inventory of class %s: Inventory for '%s' on resource provider '%s' in use.", rc, rc, uuid)
			}
			_, err = tx.ExecContext(ctx, `DELETE FROM placement_inventories WHERE provider_uuid = $1 AND resource_class = $2`, uuid, rc)
			return err
		}
		for rc, inv := range cur {
			if inv.Used > 0 {
				return conflict(codeInventoryInUse, ErrInUse, "Unable to delete inventory for resource provider %s because the inventory is in use: Inventory for '%s' on resource provider '%s' in use.", uuid, rc, uuid)
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM placement_inventories WHERE provider_uuid = $1`, uuid)
		return err
	})
	return newGen, err
}
