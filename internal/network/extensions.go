package network

import (
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// extensionInfo describes an API extension as /v2.0/extensions lists it.
type extensionInfo struct {
	Name, Description, Updated string
}

// extensionCatalog holds what Kumo can say about every extension alias it
// may advertise; the backend picks which ones are on.
var extensionCatalog = map[string]extensionInfo{
	"standard-attr-description":   {"standard-attr-description", "Lets resources carry a free-form description.", "2016-02-10T10:00:00-00:00"},
	"standard-attr-timestamp":     {"Resource timestamps", "Adds created_at and updated_at to resources.", "2016-09-12T10:00:00-00:00"},
	"standard-attr-revisions":     {"Resource revision numbers", "Adds a revision_number that changes on every update.", "2016-04-11T10:00:00-00:00"},
	"standard-attr-tag":           {"Tag support for resources with standard attribute", "Lets tags be set on every resource with standard attributes.", "2017-01-01T00:00:00-00:00"},
	"tag-ext":                     {"Tag support for resources: subnet, subnetpool, port, router", "Extends tagging to subnets, subnet pools, ports and routers.", "2017-01-01T00:00:00-00:00"},
	"fields":                      {"Fields", "Lets list and show requests select the fields returned.", "2017-05-03T10:00:00-00:00"},
	"filter-validation":           {"Filter parameters validation", "Rejects list filters on unknown attributes.", "2018-03-21T10:00:00-00:00"},
	"pagination":                  {"Pagination support", "Lets list requests page with limit and marker.", "2016-06-12T00:00:00-00:00"},
	"sorting":                     {"Sorting support", "Lets list requests sort with sort_key and sort_dir.", "2016-06-12T00:00:00-00:00"},
	"project-id":                  {"project_id field enabled", "Resources show project_id beside tenant_id.", "2016-09-09T09:09:09-09:09"},
	"revision-if-match":           {"If-Match constraints based on revision_number", "Updates and deletes honour If-Match: revision_number=N.", "2016-12-11T00:00:00-00:00"},
	"network-ip-availability":     {"Network IP Availability", "Reports how many addresses networks and subnets use.", "2015-09-24T00:00:00-00:00"},
	"provider":                    {"Provider Network", "Exposes the network type, physical network and segmentation id of networks.", "2012-09-07T10:00:00-00:00"},
	"external-net":                {"Neutron external network", "Adds the router:external attribute to networks.", "2013-01-14T10:00:00-00:00"},
	"network-mtu":                 {"Network MTU", "Exposes the MTU of networks.", "2015-03-25T10:00:00-00:00"},
	"net-mtu-writable":            {"Network MTU (writable)", "Lets the MTU of a network be set.", "2017-07-12T00:00:00-00:00"},
	"network_availability_zone":   {"Network Availability Zone", "Availability zone support for networks.", "2015-01-01T10:00:00-00:00"},
	"availability_zone":           {"Availability Zone", "Lists availability zones.", "2015-01-01T10:00:00-00:00"},
	"security-group":              {"security-group", "Security groups and their rules.", "2012-10-05T10:00:00-00:00"},
	"stateful-security-group":     {"Stateful security group", "Security groups may be stateless.", "2019-11-26T09:00:00-00:00"},
	"port-security":               {"Port Security", "Lets port security be turned off on networks and ports.", "2012-07-23T10:00:00-00:00"},
	"allowed-address-pairs":       {"Allowed Address Pairs", "Lets ports accept traffic from more address pairs.", "2013-07-23T10:00:00-00:00"},
	"router":                      {"Neutron L3 Router", "Routers, router interfaces and floating IPs.", "2012-07-20T10:00:00-00:00"},
	"ext-gw-mode":                 {"Neutron L3 Configurable external gateway mode", "Lets the external gateway turn SNAT off.", "2013-03-28T10:00:00-00:00"},
	"extraroute":                  {"Neutron Extra Route", "Static routes on routers.", "2015-02-01T10:00:00-00:00"},
	"extraroute-atomic":           {"Atomically add/remove extra routes", "Adds and removes router routes without replacing the whole list.", "2019-07-10T00:00:00-00:00"},
	"router_availability_zone":    {"Router Availability Zone", "Availability zone support for routers.", "2015-01-01T10:00:00-00:00"},
	"quotas":                      {"Quota management support", "Per-project quotas.", "2012-07-29T10:00:00-00:00"},
	"quota_details":               {"Quota details management support", "Shows used, limit and reserved per resource.", "2017-02-10T10:00:00-00:00"},
	"subnet_allocation":           {"Subnet Allocation", "Subnet pools and allocation of subnets from them.", "2015-03-30T10:00:00-00:00"},
	"subnet-service-types":        {"Subnet service types", "Lets subnets be limited to the ports of given device owners.", "2016-03-03T00:00:00-00:00"},
	"subnetpool-prefix-ops":       {"Subnet Pool Prefix Operations", "Adds and removes prefixes of subnet pools.", "2019-12-09T00:00:00-00:00"},
	"dns-integration":             {"DNS Integration", "Adds dns_name to ports and floating IPs and dns_domain to networks.", "2015-08-15T18:00:00-00:00"},
	"agent":                       {"agent", "Lists the network agents.", "2013-02-03T10:00:00-00:00"},
	"auto-allocated-topology":     {"Auto Allocated Topology Services", "Auto Allocated Topology Services.", "2016-01-01T00:00:00-00:00"},
	"floating-ip-port-forwarding": {"Floating IP Port Forwarding", "Forwards ports of floating IPs to ports of fixed IPs.", "2018-05-22T00:00:00-00:00"},
	"floating-ip-port-forwarding-description": {"Floating IP Port Forwarding description", "Adds a description to port forwardings.", "2019-11-01T10:00:00-00:00"},
	"expose-port-forwarding-in-fip":           {"Expose port forwardings in a floating IP", "Shows a floating IP's port forwardings in its view.", "2019-04-09T10:00:00-00:00"},
	"address-group":                           {"Address group", "Named sets of addresses that security group rules can refer to.", "2020-07-20T10:00:00-00:00"},
	"security-groups-remote-address-group":    {"Remote address group id field for security group rules", "Adds remote_address_group_id to security group rules.", "2020-10-25T10:00:00-00:00"},
	"address-scope":                           {"Address scope", "Address scopes that subnet pools belong to.", "2015-07-26T10:00:00-00:00"},
	"binding":                                 {"Port Binding", "Exposes the host, VIF type and details a port is bound with.", "2014-02-03T10:00:00-00:00"},
}

func (s *Service) extensionBody(alias string) map[string]any {
	info := extensionCatalog[alias]
	return map[string]any{
		"alias": alias, "name": info.Name, "description": info.Description,
		"updated": info.Updated, "links": []any{},
	}
}

func (s *Service) listExtensions(r *http.Request) (*apiutil.Response, error) {
	out := make([]any, 0, len(s.extensions))
	for _, a := range s.extensions {
		out = append(out, s.extensionBody(a))
	}
	return apiutil.JSON(200, map[string]any{"extensions": out}), nil
}

func (s *Service) showExtension(r *http.Request) (*apiutil.Response, error) {
	alias := r.PathValue("alias")
	if !s.hasExt(alias) {
		return nil, notFound("HTTPNotFound", "Extension with alias %s does not exist", alias)
	}
	return apiutil.JSON(200, map[string]any{"extension": s.extensionBody(alias)}), nil
}

// versions answers GET /networking/: the one API version.
func (s *Service) versions(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(200, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]any{"rel": "self", "href": s.base(r) + "/v2.0/"}},
	}}}), nil
}

// resources answers GET /networking/v2.0/: the core collections.
func (s *Service) resources(r *http.Request) (*apiutil.Response, error) {
	var out []any
	for _, c := range [][2]string{{"subnet", "subnets"}, {"network", "networks"}, {"port", "ports"}, {"subnetpool", "subnetpools"}} {
		out = append(out, map[string]any{
			"name": c[0], "collection": c[1],
			"links": []any{map[string]any{"rel": "self", "href": s.base(r) + "/v2.0/" + c[1]}},
		})
	}
	return apiutil.JSON(200, map[string]any{"resources": out}), nil
}
