package network

import (
	"context"
	"database/sql"
	"net/http"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// defaultQuotas are Neutron's defaults; -1 is unlimited.
var defaultQuotas = map[string]int{
	"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
	"security_group": 10, "security_group_rule": 100, "subnetpool": -1, "rbac_policy": 10,
}

// quotaTables maps a quota resource to the table it counts.
var quotaTables = map[string]string{
	"network": "net_networks", "subnet": "net_subnets", "port": "net_ports", "router": "net_routers",
	"floatingip": "net_floatingips", "security_group": "net_security_groups",
	"security_group_rule": "net_security_group_rules", "subnetpool": "net_subnetpools",
}

func quotaResources() []string {
	out := make([]string, 0, len(defaultQuotas))
	for k := range defaultQuotas {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// limits returns the effective quotas of a project.
func (s *Service) limits(ctx context.Context, q db.Querier, project string) (map[string]int, error) {
	out := make(map[string]int, len(s.quotas))
	for k, v := range s.quotas {
		out[k] = v
	}
	rows, err := q.QueryContext(ctx, `SELECT resource, hard_limit FROM net_quotas WHERE project_id = $1`, project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var res string
		var n int
		if err := rows.Scan(&res, &n); err != nil {
			return nil, err
		}
		out[res] = n
	}
	return out, rows.Err()
}

func usage(ctx context.Context, q db.Querier, resource, project string) (int, error) {
	t, ok := quotaTables[resource]
	if !ok {
		return 0, nil
	}
	var n int
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t+" WHERE project_id = $1", project).Scan(&n)
	return n, err
}

// checkQuota fails with OverQuota when adding n resources would exceed the
// project's limit.
func (tx *txn) checkQuota(ctx context.Context, resource, project string, n int) error {
	limit, ok := tx.s.quotas[resource]
	var v int
	err := tx.QueryRowContext(ctx, `SELECT hard_limit FROM net_quotas WHERE project_id = $1 AND resource = $2`, project, resource).Scan(&v)
	switch {
	case err == nil:
		limit, ok = v, true
	case err != sql.ErrNoRows:
		return err
	}
	if !ok || limit < 0 {
		return nil
	}
	used, err := usage(ctx, tx, resource, project)
	if err != nil {
		return err
	}
	if used+n > limit {
		return overQuota(resource)
	}
	return nil
}

func (s *Service) quotaRoutes(rt func(string, string, apiutil.Handler) apiutil.Route) []apiutil.Route {
	return []apiutil.Route{
		rt("GET", "/quotas", s.listQuotas),
		rt("GET", "/quotas/{project_id}", s.showQuota),
		rt("GET", "/quotas/{project_id}/default", s.showQuotaDefault),
		rt("GET", "/quotas/{project_id}/details", s.showQuotaDetails),
		rt("GET", "/quotas/{project_id}/details.json", s.showQuotaDetails),
		rt("PUT", "/quotas/{project_id}", s.updateQuota),
		rt("DELETE", "/quotas/{project_id}", s.deleteQuota),
	}
}

func (s *Service) listQuotas(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	if !c.admin {
		return nil, policyDenied("get_quota")
	}
	ctx := r.Context()
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT DISTINCT project_id FROM net_quotas ORDER BY project_id`)
	if err != nil {
		return nil, err
	}
	var projects []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		projects = append(projects, p)
	}
	rows.Close()
	out := []any{}
	for _, p := range projects {
		l, err := s.limits(ctx, s.db.Reader(), p)
		if err != nil {
			return nil, err
		}
		m := quotaBody(l)
		m["project_id"], m["tenant_id"] = p, p
		out = append(out, m)
	}
	return apiutil.JSON(200, map[string]any{"quotas": out}), nil
}

func quotaBody(l map[string]int) map[string]any {
	m := map[string]any{}
	for k, v := range l {
		m[k] = v
	}
	return m
}

func (s *Service) showQuota(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	p := r.PathValue("project_id")
	if err := s.authorize(c, "get_quota", ownerTarget(p)); err != nil {
		return nil, err
	}
	l, err := s.limits(r.Context(), s.db.Reader(), p)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"quota": quotaBody(l)}), nil
}

func (s *Service) showQuotaDefault(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	p := r.PathValue("project_id")
	if err := s.authorize(c, "get_quota", ownerTarget(p)); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"quota": quotaBody(s.quotas)}), nil
}

func (s *Service) showQuotaDetails(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	p := r.PathValue("project_id")
	if err := s.authorize(c, "get_quota", ownerTarget(p)); err != nil {
		return nil, err
	}
	ctx := r.Context()
	l, err := s.limits(ctx, s.db.Reader(), p)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	for _, res := range quotaResources() {
		used, err := usage(ctx, s.db.Reader(), res, p)
		if err != nil {
			return nil, err
		}
		m[res] = map[string]any{"limit": l[res], "used": used, "reserved": 0}
	}
	return apiutil.JSON(200, map[string]any{"quota": m}), nil
}

func (s *Service) updateQuota(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	p := r.PathValue("project_id")
	if err := s.authorize(c, "update_quota", ownerTarget(p)); err != nil {
		return nil, err
	}
	objs, _, err := readBody(r, "quota", "quotas", false)
	if err != nil {
		return nil, err
	}
	a := objs[0]
	if err := a.checkKeys("PUT", append(quotaResources(), "force", "check_limit"), nil); err != nil {
		return nil, err
	}
	ctx := r.Context()
	set := map[string]int{}
	for _, res := range quotaResources() {
		v, ok, _, err := a.integer(res, -1, 1<<31-1, false)
		if err != nil {
			return nil, err
		}
		if ok {
			set[res] = int(v)
		}
	}
	check, _, err := a.boolean("check_limit")
	if err != nil {
		return nil, err
	}
	err = s.withTx(ctx, func(tx *txn) error {
		for res, v := range set {
			if check && v >= 0 {
				used, err := usage(ctx, tx, res, p)
				if err != nil {
					return err
				}
				if used > v {
					return badRequest("InvalidQuotaValue", "Change would make usage less than 0 for the following resources: ['%s'].", res)
				}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM net_quotas WHERE project_id = $1 AND resource = $2`, p, res); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO net_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)`, p, res, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l, err := s.limits(ctx, s.db.Reader(), p)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"quota": quotaBody(l)}), nil
}

func (s *Service) deleteQuota(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	p := r.PathValue("project_id")
	if err := s.authorize(c, "delete_quota", ownerTarget(p)); err != nil {
		return nil, err
	}
	err := s.withTx(r.Context(), func(tx *txn) error {
		_, err := tx.ExecContext(r.Context(), `DELETE FROM net_quotas WHERE project_id = $1`, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
