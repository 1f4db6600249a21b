// Package quota is the compute quota engine: effective limits (per-user
// limit, else project limit, else the "default" quota class, else the
// configured default), usage counted from real rows by pluggable
// UsageCounters, and checks that run inside the transaction that creates
// the consuming rows, under a per-scope lock, so that concurrent requests
// can never over-commit.
//
// Servers will plug in a counter for instances, cores and ram; key pairs
// are counted here from the start.
package quota

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"

	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Resource names, as they appear in os-quota-sets.
const (
	Instances                = "instances"
	Cores                    = "cores"
	RAM                      = "ram"
	MetadataItems            = "metadata_items"
	KeyPairs                 = "key_pairs"
	ServerGroups             = "server_groups"
	ServerGroupMembers       = "server_group_members"
	InjectedFiles            = "injected_files"
	InjectedFileContentBytes = "injected_file_content_bytes"
	InjectedFilePathBytes    = "injected_file_path_bytes"
	FloatingIPs              = "floating_ips"
	FixedIPs                 = "fixed_ips"
	SecurityGroups           = "security_groups"
	SecurityGroupRules       = "security_group_rules"
)

// Unlimited is the limit value meaning no limit.
const Unlimited = -1

// DefaultClass is the quota class whose limits are every project's defaults.
const DefaultClass = "default"

// Defaults are Nova's configured default limits.
func Defaults() map[string]int64 {
	return map[string]int64{
		Instances: 10, Cores: 20, RAM: 51200, MetadataItems: 128, KeyPairs: 100,
		ServerGroups: 10, ServerGroupMembers: 10,
		InjectedFiles: 5, InjectedFileContentBytes: 10240, InjectedFilePathBytes: 255,
		FloatingIPs: 10, FixedIPs: Unlimited, SecurityGroups: 10, SecurityGroupRules: 20,
	}
}

// Resources lists every resource name, sorted.
func Resources() []string { return slices.Sorted(maps.Keys(Defaults())) }

// UsageCounter counts what a project, or one user of it, consumes. Count
// runs on q, which is the quota-checking transaction during a check, so
// the count sees that transaction's own writes and the locks it holds.
type UsageCounter interface {
	// Resources names the resources the counter counts.
	Resources() []string
	// Count returns the usage of the counter's resources by the project,
	// or by the user within the project when userID is not empty.
	Count(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error)
}

// UserScoped is implemented by counters whose resources belong to users
// rather than projects (key pairs): their per-user usage is the same in
// every project, so checks lock the user as well as the project.
type UserScoped interface{ UserScoped() bool }

// Engine resolves limits and checks usage against them.
type Engine struct {
	st       *store.Store
	defaults map[string]int64
	counters []UsageCounter
}

// New returns an engine; overrides replace entries of Defaults().
func New(st *store.Store, overrides map[string]int64, counters ...UsageCounter) *Engine {
	d := Defaults()
	maps.Copy(d, overrides)
	return &Engine{st: st, defaults: d, counters: counters}
}

// Register adds a usage counter (servers add theirs when they exist).
func (e *Engine) Register(c UsageCounter) { e.counters = append(e.counters, c) }

// ClassLimits returns the limits of a quota class: the configured
// defaults overlaid by the class's stored limits.
func (e *Engine) ClassLimits(ctx context.Context, q db.Querier, class string) (map[string]int64, error) {
	out := maps.Clone(e.defaults)
	stored, err := store.ClassLimits(ctx, q, class)
	if err != nil {
		return nil, err
	}
	for r, n := range stored {
		if _, ok := out[r]; ok {
			out[r] = n
		}
	}
	return out, nil
}

// Limits returns the effective limits of a project, or of a user within
// it when userID is not empty.
func (e *Engine) Limits(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	out, err := e.ClassLimits(ctx, q, DefaultClass)
	if err != nil {
		return nil, err
	}
	scopes := []string{""}
	if userID != "" {
		scopes = append(scopes, userID)
	}
	for _, u := range scopes {
		stored, err := store.QuotaLimits(ctx, q, projectID, u)
		if err != nil {
			return nil, err
		}
		for r, n := range stored {
			if _, ok := out[r]; ok {
				out[r] = n
			}
		}
	}
	return out, nil
}

// Usage counts every resource for a project (or user); resources nobody
// counts yet are 0.
func (e *Engine) Usage(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	out := map[string]int64{}
	for r := range e.defaults {
		out[r] = 0
	}
	for _, c := range e.counters {
		got, err := c.Count(ctx, q, projectID, userID)
		if err != nil {
			return nil, err
		}
		for r, n := range got {
			out[r] = n
		}
	}
	return out, nil
}

// OverQuotaError reports the first resource a check found over its limit.
type OverQuotaError struct {
	Resource  string
	Requested int64
	Used      int64
	Limit     int64
}

func (e *OverQuotaError) Error() string {
	return fmt.Sprintf("Quota exceeded for %s: Requested %d, but already used %d of %d %s",
		e.Resource, e.Requested, e.Used, e.Limit, e.Resource)
}

// Check verifies, inside tx, that consuming deltas keeps the project (and
// the user, for user-scoped resources) within its limits. It first locks
// the project's and the user's quota scopes, so concurrent checks for the
// same scope run one after the other; the caller inserts the consuming
// rows in the same transaction.
func (e *Engine) Check(ctx context.Context, tx *sql.Tx, projectID, userID string, deltas map[string]int64) error {
	return e.CheckLimits(ctx, tx, projectID, userID, nil, deltas)
}

// CheckLimits is Check with the project's limits (Limits(projectID, ""))
// already read in tx by the caller; nil reads them. On PostgreSQL they
// are read again after the locks (a limit may change until then); on
// SQLite tx has excluded every other writer since it began.
func (e *Engine) CheckLimits(ctx context.Context, tx *sql.Tx, projectID, userID string, limits map[string]int64, deltas map[string]int64) error {
	// A create that consumes nothing limited (the limits read before the
	// lock say so) takes the scopes' locks shared: such creates do not
	// queue on each other, only on a limit update or on a create that
	// counts, which lock exclusively. Should the limits read under the
	// lock ask for a count after all, the locks are upgraded first.
	shared := limits != nil && !anyLimited(limits, deltas)
	if err := e.lock(ctx, tx, projectID, userID, shared); err != nil {
		return err
	}
	userScoped := map[string]bool{}
	for _, c := range e.counters {
		if us, ok := c.(UserScoped); ok && us.UserScoped() {
			for _, r := range c.Resources() {
				userScoped[r] = true
			}
		}
	}
	// Project-wide limits against project-wide usage, then (for a user)
	// the user's limits against the user's usage. User-scoped resources
	// are only limited per user, as in Nova. The limits of both scopes
	// come from one read of the class, the project's and the user's
	// stored limits; only the counters of resources that are consumed
	// and limited in a scope count anything (a create within unlimited
	// quotas counts nothing).
	if limits == nil || e.st.DB().Dialect() != db.SQLite {
		var err error
		if limits, err = e.Limits(ctx, tx, projectID, ""); err != nil {
			return err
		}
	}
	scopes := []struct {
		user   string
		limits map[string]int64
	}{{"", limits}}
	if userID != "" {
		stored, err := store.QuotaLimits(ctx, tx, projectID, userID)
		if err != nil {
			return err
		}
		ul := maps.Clone(limits)
		for r, n := range stored {
			if _, ok := ul[r]; ok {
				ul[r] = n
			}
		}
		scopes = append(scopes, struct {
			user   string
			limits map[string]int64
		}{userID, ul})
	}
	checks := make([][]string, len(scopes))
	for i, sc := range scopes {
		for _, r := range slices.Sorted(maps.Keys(deltas)) {
			lim, ok := sc.limits[r]
			if !ok || lim < 0 || deltas[r] <= 0 || (sc.user == "" && userScoped[r] && userID != "") {
				continue
			}
			checks[i] = append(checks[i], r)
		}
		if shared && len(checks[i]) > 0 {
			if err := e.lock(ctx, tx, projectID, userID, false); err != nil {
				return err
			}
			shared = false
		}
	}
	for i, sc := range scopes {
		check := checks[i]
		if len(check) == 0 {
			continue
		}
		used := map[string]int64{}
		for _, c := range e.counters {
			if !slices.ContainsFunc(c.Resources(), func(r string) bool { return slices.Contains(check, r) }) {
				continue
			}
			got, err := c.Count(ctx, tx, projectID, sc.user)
			if err != nil {
				return err
			}
			maps.Copy(used, got)
		}
		for _, r := range check {
			if d, lim := deltas[r], sc.limits[r]; used[r]+d > lim {
				return &OverQuotaError{Resource: r, Requested: d, Used: used[r], Limit: lim}
			}
		}
	}
	return nil
}

// lock takes the quota locks of the project and, when userID is set, of
// the user, in that order.
func (e *Engine) lock(ctx context.Context, tx *sql.Tx, projectID, userID string, shared bool) error {
	if err := e.st.Lock(ctx, tx, "project:"+projectID, shared); err != nil {
		return fmt.Errorf("quota lock: %w", err)
	}
	if userID != "" {
		if err := e.st.Lock(ctx, tx, "user:"+userID, shared); err != nil {
			return fmt.Errorf("quota lock: %w", err)
		}
	}
	return nil
}

// anyLimited reports whether deltas consume a resource that limits bound.
func anyLimited(limits, deltas map[string]int64) bool {
	for r, d := range deltas {
		if lim, ok := limits[r]; ok && lim >= 0 && d > 0 {
			return true
		}
	}
	return false
}

// LimitError is a rejected quota update: the limit is below the usage or
// above what the project leaves for the user.
type LimitError struct{ msg string }

func (e *LimitError) Error() string { return e.msg }

// Update sets explicit limits of a project (userID "") or of a user in it.
// Unless force is set, a limit must not be below the current usage and a
// user's limit not above what the project limit leaves after the other
// users' explicit limits. Values of -1 mean unlimited.
func (e *Engine) Update(ctx context.Context, projectID, userID string, values map[string]int64, force bool) error {
	return e.st.WithTx(ctx, func(tx *sql.Tx) error {
		if err := e.st.Lock(ctx, tx, "project:"+projectID, false); err != nil {
			return err
		}
		if !force {
			used, err := e.Usage(ctx, tx, projectID, userID)
			if err != nil {
				return err
			}
			var maxima map[string]int64
			if userID != "" {
				proj, err := e.Limits(ctx, tx, projectID, "")
				if err != nil {
					return err
				}
				others, err := store.OtherUsersLimits(ctx, tx, projectID, userID)
				if err != nil {
					return err
				}
				maxima = map[string]int64{}
				for r, l := range proj {
					if l < 0 {
						maxima[r] = Unlimited
					} else {
						maxima[r] = max(l-others[r], 0)
					}
				}
			}
			for _, r := range slices.Sorted(maps.Keys(values)) {
				v := values[r]
				if inf(v) < inf(used[r]) {
					return &LimitError{fmt.Sprintf("Quota limit %d for %s must be greater than or equal to already used and reserved %d.", v, r, used[r])}
				}
				if maxima != nil {
					if m, ok := maxima[r]; ok && inf(v) > inf(m) {
						return &LimitError{fmt.Sprintf("Quota limit %d for %s must be less than or equal to %d.", v, r, m)}
					}
				}
			}
		}
		return store.SetQuotaLimits(ctx, tx, projectID, userID, values)
	})
}

func inf(v int64) float64 {
	if v < 0 {
		return 1e300
	}
	return float64(v)
}

// Reset removes the explicit limits of a project (and its users) or of one user.
func (e *Engine) Reset(ctx context.Context, projectID, userID string) error {
	return e.st.WithTx(ctx, func(tx *sql.Tx) error {
		return store.DeleteQuotaLimits(ctx, tx, projectID, userID)
	})
}

// UpdateClass sets limits of a quota class.
func (e *Engine) UpdateClass(ctx context.Context, class string, values map[string]int64) error {
	return e.st.WithTx(ctx, func(tx *sql.Tx) error {
		return store.SetClassLimits(ctx, tx, class, values)
	})
}

// KeyPairCounter counts key pairs: per user when a user is given,
// otherwise those created from the project.
type KeyPairCounter struct{}

func (KeyPairCounter) Resources() []string { return []string{KeyPairs} }
func (KeyPairCounter) UserScoped() bool    { return true }

func (KeyPairCounter) Count(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	var n int64
	var err error
	if userID != "" {
		n, err = store.CountKeyPairs(ctx, q, userID)
	} else {
		err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM compute_keypairs WHERE project_id = $1`, projectID).Scan(&n)
	}
	if err != nil {
		return nil, err
	}
	return map[string]int64{KeyPairs: n}, nil
}

// InstanceCounter counts instances, cores and ram from the live server
// rows of a project (or of one user in it).
type InstanceCounter struct{}

func (InstanceCounter) Resources() []string { return []string{Instances, Cores, RAM} }

func (InstanceCounter) Count(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	n, cores, ram, err := store.CountInstances(ctx, q, projectID, userID)
	if err != nil {
		return nil, err
	}
	return map[string]int64{Instances: n, Cores: cores, RAM: ram}, nil
}
