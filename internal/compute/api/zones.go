package api

import (
	"context"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Policy rule names of availability zones.
const (
	ruleZoneList   = "os_compute_api:os-availability-zone:list"
	ruleZoneDetail = "os_compute_api:os-availability-zone:detail"
)

// DefaultZone is Nova's default availability zone name.
const DefaultZone = "nova"

// ServiceState is one service on a host, as the detail view shows it.
type ServiceState struct {
	Available bool   `json:"available"`
	Active    bool   `json:"active"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// Zone is an availability zone and the services of its hosts
// (host -> service name -> state).
type Zone struct {
	Name      string
	Available bool
	Hosts     map[string]map[string]ServiceState
}

// ZoneSource lists availability zones. Aggregates will define more zones
// later; the default source knows only the default zone.
type ZoneSource interface {
	Zones(ctx context.Context) ([]Zone, error)
}

// DefaultZones is the single default zone, with no hosts yet.
type DefaultZones struct{}

// Zones implements ZoneSource.
func (DefaultZones) Zones(context.Context) ([]Zone, error) {
	return []Zone{{Name: DefaultZone, Available: true}}, nil
}

func (a *API) listZones(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		rule := ruleZoneList
		if detail {
			rule = ruleZoneDetail
		}
		if err := a.authorize(r, rule, own(r)); err != nil {
			return nil, err
		}
		zones, err := a.zones.Zones(ctx(r))
		if err != nil {
			return nil, internal(err)
		}
		out := make([]any, 0, len(zones))
		for _, z := range zones {
			if z.Name == "internal" && !detail {
				continue // the control-plane services' zone is shown in detail only
			}
			v := map[string]any{"zoneName": z.Name, "zoneState": map[string]any{"available": z.Available}, "hosts": nil}
			if detail {
				hosts := map[string]any{}
				for h, svcs := range z.Hosts {
					m := map[string]any{}
					for name, st := range svcs {
						var upd any
						if st.UpdatedAt != "" {
							upd = st.UpdatedAt
						}
						m[name] = map[string]any{"available": st.Available, "active": st.Active, "updated_at": upd}
					}
					hosts[h] = m
				}
				v["hosts"] = hosts
			}
			out = append(out, v)
		}
		return apiutil.JSON(200, map[string]any{"availabilityZoneInfo": out}), nil
	}
}
