package network

import (
	"encoding/json"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// sgListBody is a page of security groups written straight to JSON: the
// bytes encoding/json gives for {"security_groups": [...],
// "security_groups_links": [...]} (keys sorted, as for the map it replaces),
// without reflection. A 1,000-group page spent ~27 ms of CPU in
// encoding/json; TestSecurityGroupListJSON holds the two encodings equal.
type sgListBody struct {
	items []*sgView
	links []apiutil.Link
}

func (l sgListBody) AppendJSON(b []byte) []byte {
	b = append(b, `{"security_groups":[`...)
	for i, g := range l.items {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.appendJSON(b)
	}
	b = append(b, ']')
	if len(l.links) > 0 {
		links, err := json.Marshal(l.links)
		if err != nil { // a Link is two strings: cannot fail
			panic(err)
		}
		b = append(b, `,"security_groups_links":`...)
		b = append(b, links...)
	}
	return append(b, '}')
}

func appendStrField(b []byte, key, v string) []byte {
	b = append(b, key...)
	return apiutil.AppendJSONString(b, v)
}

func appendOptStr(b []byte, key string, v *string) []byte {
	b = append(b, key...)
	if v == nil {
		return append(b, "null"...)
	}
	return apiutil.AppendJSONString(b, *v)
}

func appendOptInt(b []byte, key string, v *int64) []byte {
	b = append(b, key...)
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

func (g *sgView) appendJSON(b []byte) []byte {
	b = appendStrField(b, `{"id":`, g.ID)
	b = appendStrField(b, `,"name":`, g.Name)
	b = appendStrField(b, `,"description":`, g.Description)
	b = appendStrField(b, `,"project_id":`, g.ProjectID)
	b = appendStrField(b, `,"tenant_id":`, g.TenantID)
	b = append(b, `,"stateful":`...)
	b = strconv.AppendBool(b, g.Stateful)
	b = append(b, `,"security_group_rules":`...)
	if g.Rules == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range g.Rules {
			if i > 0 {
				b = append(b, ',')
			}
			b = g.Rules[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"tags":`...)
	if g.Tags == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, t := range g.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = apiutil.AppendJSONString(b, t)
		}
		b = append(b, ']')
	}
	b = append(b, `,"shared":`...)
	b = strconv.AppendBool(b, g.Shared)
	b = append(b, `,"revision_number":`...)
	b = strconv.AppendInt(b, g.Revision, 10)
	b = appendStrField(b, `,"created_at":`, g.CreatedAt)
	b = appendStrField(b, `,"updated_at":`, g.UpdatedAt)
	return append(b, '}')
}

func (r *ruleView) appendJSON(b []byte) []byte {
	b = appendStrField(b, `{"id":`, r.ID)
	b = appendStrField(b, `,"project_id":`, r.ProjectID)
	b = appendStrField(b, `,"tenant_id":`, r.TenantID)
	b = appendStrField(b, `,"security_group_id":`, r.SecurityGroupID)
	b = appendStrField(b, `,"direction":`, r.Direction)
	b = appendStrField(b, `,"ethertype":`, r.Ethertype)
	b = appendOptStr(b, `,"protocol":`, r.Protocol)
	b = appendOptInt(b, `,"port_range_min":`, r.PortRangeMin)
	b = appendOptInt(b, `,"port_range_max":`, r.PortRangeMax)
	b = appendOptStr(b, `,"remote_ip_prefix":`, r.RemoteIPPrefix)
	b = appendOptStr(b, `,"remote_group_id":`, r.RemoteGroupID)
	b = appendOptStr(b, `,"remote_address_group_id":`, r.RemoteAddressGroupID)
	b = appendOptStr(b, `,"normalized_cidr":`, r.NormalizedCIDR)
	b = appendStrField(b, `,"description":`, r.Description)
	b = append(b, `,"revision_number":`...)
	b = strconv.AppendInt(b, r.Revision, 10)
	b = appendStrField(b, `,"created_at":`, r.CreatedAt)
	b = appendStrField(b, `,"updated_at":`, r.UpdatedAt)
	return append(b, '}')
}
