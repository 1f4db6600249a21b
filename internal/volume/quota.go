package volume

import (
	"context"
	"database/sql"
	"fmt"
	"maps"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Quota resources and Cinder's defaults.
var defaultQuotas = map[string]int64{
	"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000,
	"per_volume_gigabytes": -1, "groups": 10,
}

// quotaResources lists the resources in a stable order.
var quotaResources = []string{"volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "per_volume_gigabytes", "groups"}

func (s *Service) defaults() map[string]int64 {
	d := maps.Clone(defaultQuotas)
	for k, v := range s.cfg.Quotas {
		if _, ok := d[k]; ok {
			d[k] = v
		}
	}
	return d
}

// limitsOf returns a project's effective limits, inside q.
func (s *Service) limitsOf(ctx context.Context, q *sql.Tx, project string) (map[string]int64, error) {
	l := s.defaults()
	var explicit map[string]int64
	var err error
	if q == nil {
		explicit, err = s.store.Quotas(ctx, nil, project)
	} else {
		explicit, err = s.store.Quotas(ctx, q, project)
	}
	if err != nil {
		return nil, err
	}
	maps.Copy(l, explicit)
	return l, nil
}

func overLimit(format string, args ...any) error {
	return &apiutil.Error{Status: 413, Message: fmt.Sprintf(format, args...), Err: apiutil.ErrOverLimit, Code: "overLimit"}
}

// checkQuota verifies, in tx, that project can add volumes, snapshots
// and gigabytes (a volume of size for per_volume_gigabytes when size>0).
func (s *Service) checkQuota(ctx context.Context, tx *sql.Tx, project string, volumes, snapshots, gigabytes int64, size int) error {
	l, err := s.limitsOf(ctx, tx, project)
	if err != nil {
		return err
	}
	if pv := l["per_volume_gigabytes"]; pv >= 0 && size > 0 && int64(size) > pv {
		return overLimit("Requested volume size %dG is larger than maximum allowed limit %dG.", size, pv)
	}
	u, err := s.store.UsageOf(ctx, tx, project)
	if err != nil {
		return err
	}
	if lim := l["gigabytes"]; lim >= 0 && gigabytes > 0 && u.Gigabytes+gigabytes > lim {
		what := "volume"
		if snapshots > 0 {
			what = "snapshot"
		}
		return overLimit("VolumeSizeExceedsAvailableQuota: Requested %s or snapshot exceeds allowed gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.",
			what, gigabytes, lim, u.Gigabytes)
	}
	if lim := l["volumes"]; lim >= 0 && volumes > 0 && u.Volumes+volumes > lim {
		return overLimit("VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota 'volumes'.", lim)
	}
	if lim := l["snapshots"]; lim >= 0 && snapshots > 0 && u.Snapshots+snapshots > lim {
		return overLimit("SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded", lim)
	}
	return nil
}

// QuotaSet is a project's quotas, with usage when asked.
type QuotaSet struct {
	Project string
	Limits  map[string]int64
	Usage   *Usage
}

// GetQuotas returns a project's quotas (and usage when usage is set).
func (s *Service) GetQuotas(ctx context.Context, project string, usage bool) (*QuotaSet, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQuotaShow, project); err != nil {
		return nil, err
	}
	l, err := s.limitsOf(ctx, nil, project)
	if err != nil {
		return nil, err
	}
	qs := &QuotaSet{Project: project, Limits: l}
	if usage {
		u, err := s.store.UsageOf(ctx, s.deps.DB.Reader(), project)
		if err != nil {
			return nil, err
		}
		qs.Usage = &u
	}
	return qs, nil
}

// DefaultQuotas returns the default quotas.
func (s *Service) DefaultQuotas(ctx context.Context, project string) (*QuotaSet, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQuotaShow, project); err != nil {
		return nil, err
	}
	return &QuotaSet{Project: project, Limits: s.defaults()}, nil
}

// UpdateQuotas sets limits; a limit below current usage is refused, as
// Cinder does.
func (s *Service) UpdateQuotas(ctx context.Context, project string, limits map[string]int64) (*QuotaSet, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQuotaUpdate, project); err != nil {
		return nil, err
	}
	for k, v := range limits {
		if _, ok := defaultQuotas[k]; !ok {
			return nil, apiutil.BadRequest("Bad key(s) in quota set: %s", k)
		}
		if v < -1 {
			return nil, apiutil.BadRequest("Quota limit %d for %s must be -1 or greater.", v, k)
		}
	}
	err := s.store.SetQuotas(ctx, project, limits, func(tx *sql.Tx) error {
		u, err := s.store.UsageOf(ctx, tx, project)
		if err != nil {
			return err
		}
		used := map[string]int64{"volumes": u.Volumes, "snapshots": u.Snapshots, "gigabytes": u.Gigabytes}
		for k, v := range limits {
			if v >= 0 && used[k] > v {
				return apiutil.BadRequest("Quota %s limit must be equal or greater than existing resources. Current usage is %d and the requested limit is %d.", k, used[k], v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetQuotas(ctx, project, false)
}

// DeleteQuotas resets a project's quotas to the defaults.
func (s *Service) DeleteQuotas(ctx context.Context, project string) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQuotaDelete, project); err != nil {
		return err
	}
	return s.store.DeleteQuotas(ctx, project)
}
