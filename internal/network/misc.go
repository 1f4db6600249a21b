package network

import (
	"database/sql"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// network-ip-availability: per network and subnet, how many addresses
// exist and how many are allocated.

func (s *Service) ipAvailability(r *http.Request, nets []*Network) ([]map[string]any, error) {
	ctx := r.Context()
	q := s.db.Reader()
	out := make([]map[string]any, 0, len(nets))
	for _, n := range nets {
		subs, err := networkSubnets(ctx, q, n.ID, "")
		if err != nil {
			return nil, err
		}
		var total, used uint64
		subOut := []any{}
		for _, sn := range subs {
			var u uint64
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_ip_allocations WHERE subnet_id = $1`, sn.ID).Scan(&u); err != nil {
				return nil, err
			}
			t := poolsSize(sn.Pools)
			total += t
			used += u
			subOut = append(subOut, map[string]any{"subnet_id": sn.ID, "subnet_name": sn.Name, "cidr": sn.CIDR.String(),
				"ip_version": sn.IPVersion, "total_ips": t, "used_ips": u})
		}
		out = append(out, map[string]any{"network_id": n.ID, "network_name": n.Name, "project_id": n.ProjectID,
			"tenant_id": n.ProjectID, "total_ips": total, "used_ips": used, "subnet_ip_availability": subOut})
	}
	return out, nil
}

func (s *Service) listIPAvailability(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	if err := s.authorize(c, "get_network_ip_availability", nil); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	lq := &listQuery{}
	for k, vals := range q {
		switch k {
		case "network_id":
			lq.b.add("n.id IN (" + lq.b.in(anys(vals)) + ")")
		case "network_name":
			lq.b.add("n.name IN (" + lq.b.in(anys(vals)) + ")")
		case "project_id", "tenant_id":
			lq.b.add("n.project_id IN (" + lq.b.in(anys(vals)) + ")")
		case "ip_version":
			lq.b.add("n.id IN (SELECT network_id FROM net_subnets WHERE ip_version IN (" + lq.b.in(anys(vals)) + "))")
		case "fields":
		default:
			return nil, badInput("['%s'] is invalid attribute for filtering", k)
		}
	}
	lq.sortKeys, lq.sortDirs = []string{"id"}, []bool{false}
	nets, _, err := listRows(r.Context(), s.db.Reader(), networkDef, lq, networkCols, func(rows *sql.Rows) (*Network, error) { return scanNetwork(rows) })
	if err != nil {
		return nil, err
	}
	items, err := s.ipAvailability(r, nets)
	if err != nil {
		return nil, err
	}
	for i := range items {
		items[i] = selectFields(items[i], showFields(r))
	}
	return apiutil.JSON(200, map[string]any{"network_ip_availabilities": items}), nil
}

func (s *Service) showIPAvailability(r *http.Request) (*apiutil.Response, error) {
	c := s.caller(r)
	if err := s.authorize(c, "get_network_ip_availability", nil); err != nil {
		return nil, err
	}
	n, err := loadNetwork(r.Context(), s.db.Reader(), r.PathValue("id"), "")
	if err != nil {
		return nil, err
	}
	items, err := s.ipAvailability(r, []*Network{n})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"network_ip_availability": selectFields(items[0], showFields(r))}), nil
}

// availability zones: Kumo's network nodes are in one zone, offering
// networks and routers.
func (s *Service) listAvailabilityZones(r *http.Request) (*apiutil.Response, error) {
	out := []any{}
	q := r.URL.Query()
	for _, res := range []string{"network", "router"} {
		z := map[string]any{"name": s.cfg.AvailabilityZone, "resource": res, "state": "available"}
		keep := true
		for k, vals := range q {
			if k == "fields" {
				continue
			}
			v, ok := z[k]
			if !ok {
				return nil, badInput("['%s'] is invalid attribute for filtering", k)
			}
			match := false
			for _, x := range vals {
				if x == v {
					match = true
				}
			}
			keep = keep && match
		}
		if keep {
			out = append(out, selectFields(z, showFields(r)))
		}
	}
	return apiutil.JSON(200, map[string]any{"availability_zones": out}), nil
}
