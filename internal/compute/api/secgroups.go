package api

// Nova's security group APIs on top of the networking service:
//
//   - the network proxy (os-security-groups, os-security-group-rules),
//     which Nova removed at 2.36 (404 from then on);
//   - GET /servers/{id}/os-security-groups and the addSecurityGroup /
//     removeSecurityGroup server actions, which every version keeps.
//
// Like Nova, Compute calls the networking API as the caller: the request
// re-enters the networking service's HTTP handler with the caller's
// token, so Neutron's policy and visibility rules apply unchanged. Nova's
// group view shows only ingress rules, in its own rule format.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// NetworkingPrefix is where the networking API (Neutron v2.0) answers on
// the handler given as Options.Networking.
const NetworkingPrefix = "/networking/v2.0"

const (
	ruleSGList       = "os_compute_api:os-security-groups:get"
	ruleSGShow       = "os_compute_api:os-security-groups:show"
	ruleSGCreate     = "os_compute_api:os-security-groups:create"
	ruleSGUpdate     = "os_compute_api:os-security-groups:update"
	ruleSGDelete     = "os_compute_api:os-security-groups:delete"
	ruleSGRuleCreate = "os_compute_api:os-security-groups:rule:create"
	ruleSGRuleDelete = "os_compute_api:os-security-groups:rule:delete"
	ruleSGServerList = "os_compute_api:os-security-groups:list"
	ruleSGAdd        = "os_compute_api:os-security-groups:add"
	ruleSGRemove     = "os_compute_api:os-security-groups:remove"
)

// secGroupRules are the policy defaults of these APIs. The proxy checks
// nothing of its own (the networking service decides), as in Nova.
func secGroupRules() [][3]string {
	const (
		anyone        = ""
		projectReader = "role:admin or (role:reader and project_id:%(project_id)s)"
		projectMember = "role:admin or (role:member and project_id:%(project_id)s)"
	)
	return [][3]string{
		{ruleSGList, anyone, "List security groups (network proxy, before 2.36)."},
		{ruleSGShow, anyone, "Show a security group (network proxy, before 2.36)."},
		{ruleSGCreate, anyone, "Create a security group (network proxy, before 2.36)."},
		{ruleSGUpdate, anyone, "Update a security group (network proxy, before 2.36)."},
		{ruleSGDelete, anyone, "Delete a security group (network proxy, before 2.36)."},
		{ruleSGRuleCreate, anyone, "Create a security group rule (network proxy, before 2.36)."},
		{ruleSGRuleDelete, anyone, "Delete a security group rule (network proxy, before 2.36)."},
		{ruleSGServerList, projectReader, "List the security groups of a server."},
		{ruleSGAdd, projectMember, "Add a security group to a server."},
		{ruleSGRemove, projectMember, "Remove a security group from a server."},
	}
}

func (a *API) secGroupRoutes() []apiutil.Route {
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h}
	}
	return []apiutil.Route{
		rt("GET", "/os-security-groups", a.proxyOnly(a.listSecGroups)),
		rt("POST", "/os-security-groups", a.proxyOnly(a.createSecGroup)),
		rt("GET", "/os-security-groups/{group_id}", a.proxyOnly(a.showSecGroup)),
		rt("PUT", "/os-security-groups/{group_id}", a.proxyOnly(a.updateSecGroup)),
		rt("DELETE", "/os-security-groups/{group_id}", a.proxyOnly(a.deleteSecGroup)),
		rt("POST", "/os-security-group-rules", a.proxyOnly(a.createSecGroupRule)),
		rt("DELETE", "/os-security-group-rules/{rule_id}", a.proxyOnly(a.deleteSecGroupRule)),
		rt("GET", "/servers/{server_id}/os-security-groups", a.serverSecGroups),
	}
}

// proxyOnly answers 404 from 2.36 on, where Nova dropped its network
// proxy APIs, and when no networking service is wired.
func (a *API) proxyOnly(h apiutil.Handler) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		if atLeast(r, V2_36) || a.networking == nil {
			return nil, apiutil.NotFound("The resource could not be found.")
		}
		return h(r)
	}
}

// ---- the networking API, as the caller ----

// neutronError is a failed networking API call.
type neutronError struct {
	status  int
	typ     string
	message string
}

func (e *neutronError) Error() string {
	return fmt.Sprintf("networking API: %d %s: %s", e.status, e.typ, e.message)
}

func neutronStatus(err error) int {
	var ne *neutronError
	if errors.As(err, &ne) {
		return ne.status
	}
	return 0
}

// bodyRecorder is the response of a call into the networking handler.
type bodyRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bodyRecorder) Header() http.Header { return b.header }
func (b *bodyRecorder) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bodyRecorder) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

// neutron calls the networking API with the caller's token and decodes
// the answer into out (when not nil). Errors are *neutronError.
func (a *API) neutron(r *http.Request, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), method, NetworkingPrefix+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", r.Header.Get("X-Auth-Token"))
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := &bodyRecorder{header: http.Header{}}
	a.networking.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 300 {
		var fault struct {
			NeutronError struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"NeutronError"`
		}
		_ = json.Unmarshal(w.body.Bytes(), &fault)
		msg := fault.NeutronError.Message
		if msg == "" {
			msg = strings.TrimSpace(w.body.String())
		}
		return &neutronError{status: w.status, typ: fault.NeutronError.Type, message: msg}
	}
	if out != nil && w.body.Len() > 0 {
		if err := json.Unmarshal(w.body.Bytes(), out); err != nil {
			return fmt.Errorf("networking API %s %s: %w", method, path, err)
		}
	}
	return nil
}

// novaFault maps a networking API failure to Nova's fault; statuses
// overrides the default mapping per Neutron status (Nova maps some
// differently per API).
func novaFault(err error, statuses map[int]int) error {
	var ne *neutronError
	if !errors.As(err, &ne) {
		return internal(err)
	}
	status := ne.status
	if s, ok := statuses[status]; ok {
		status = s
	}
	switch status {
	case 400, 403, 404, 409:
		return apiutil.Errorf(status, "%s", ne.message)
	case 401:
		return apiutil.Unauthorized("%s", ne.message)
	}
	return internal(err)
}

// ---- Neutron's resources as the proxy reads them ----

type nSecGroup struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	ProjectID   string   `json:"project_id"`
	Rules       []nRule  `json:"security_group_rules"`
	Tags        []string `json:"tags,omitempty"`
}

type nRule struct {
	ID              string  `json:"id"`
	SecurityGroupID string  `json:"security_group_id"`
	Direction       string  `json:"direction"`
	Ethertype       string  `json:"ethertype"`
	Protocol        *string `json:"protocol"`
	PortRangeMin    *int64  `json:"port_range_min"`
	PortRangeMax    *int64  `json:"port_range_max"`
	RemoteIPPrefix  *string `json:"remote_ip_prefix"`
	RemoteGroupID   *string `json:"remote_group_id"`
}

type nPort struct {
	ID                  string   `json:"id"`
	SecurityGroups      []string `json:"security_groups"`
	PortSecurityEnabled *bool    `json:"port_security_enabled"`
	FixedIPs            []any    `json:"fixed_ips"`
	IPAllocation        string   `json:"ip_allocation"`
}

// groupNames resolves remote groups of rules to Nova's {name, tenant_id}.
type groupNames map[string]map[string]any

func (a *API) remoteGroups(r *http.Request, groups []nSecGroup) groupNames {
	known := groupNames{}
	for _, g := range groups {
		known[g.ID] = map[string]any{"name": g.Name, "tenant_id": g.ProjectID}
	}
	for _, g := range groups {
		for _, ru := range g.Rules {
			if ru.RemoteGroupID == nil || ru.Direction != "ingress" {
				continue
			}
			if _, ok := known[*ru.RemoteGroupID]; ok {
				continue
			}
			var out struct {
				Group nSecGroup `json:"security_group"`
			}
			if a.neutron(r, "GET", "/security-groups/"+url.PathEscape(*ru.RemoteGroupID), nil, &out) == nil {
				known[out.Group.ID] = map[string]any{"name": out.Group.Name, "tenant_id": out.Group.ProjectID}
			} else {
				known[*ru.RemoteGroupID] = nil // Nova leaves out rules of groups it cannot see
			}
		}
	}
	return known
}

// ruleView renders an ingress rule in Nova's format; nil when its remote
// group cannot be seen.
func ruleView(ru nRule, names groupNames) map[string]any {
	v := map[string]any{"id": ru.ID, "parent_group_id": ru.SecurityGroupID, "group": map[string]any{}, "ip_range": map[string]any{}}
	var proto any
	if ru.Protocol != nil {
		proto = *ru.Protocol
	}
	v["ip_protocol"] = proto
	var from, to any
	if ru.PortRangeMin != nil {
		from = *ru.PortRangeMin
	}
	if ru.PortRangeMax != nil {
		to = *ru.PortRangeMax
	}
	if ru.Protocol != nil && ru.PortRangeMin == nil && ru.PortRangeMax == nil {
		switch strings.ToUpper(*ru.Protocol) {
		case "TCP", "UDP":
			from, to = int64(1), int64(65535)
		default:
			from, to = int64(-1), int64(-1)
		}
	}
	v["from_port"], v["to_port"] = from, to
	switch {
	case ru.RemoteGroupID != nil:
		g := names[*ru.RemoteGroupID]
		if g == nil {
			return nil
		}
		v["group"] = g
	case ru.RemoteIPPrefix != nil && *ru.RemoteIPPrefix != "":
		v["ip_range"] = map[string]any{"cidr": *ru.RemoteIPPrefix}
	default:
		v["ip_range"] = map[string]any{"cidr": "0.0.0.0/0"}
	}
	return v
}

func secGroupView(g nSecGroup, names groupNames) map[string]any {
	rules := []any{}
	for _, ru := range g.Rules {
		if ru.Direction != "ingress" {
			continue
		}
		if v := ruleView(ru, names); v != nil {
			rules = append(rules, v)
		}
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.ProjectID, "rules": rules}
}

func (a *API) secGroupViews(r *http.Request, groups []nSecGroup) []any {
	names := a.remoteGroups(r, groups)
	out := make([]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, secGroupView(g, names))
	}
	return out
}

// ---- the proxy ----

func checkSecGroupID(id string) error {
	if !isUUID(id) {
		return apiutil.BadRequest("Security group id should be uuid")
	}
	return nil
}

func (a *API) getSecGroup(r *http.Request, id string) (nSecGroup, error) {
	var out struct {
		Group nSecGroup `json:"security_group"`
	}
	err := a.neutron(r, "GET", "/security-groups/"+url.PathEscape(id), nil, &out)
	if neutronStatus(err) == 404 {
		return nSecGroup{}, apiutil.NotFound("Security group %s not found.", id)
	}
	if err != nil {
		return nSecGroup{}, novaFault(err, nil)
	}
	return out.Group, nil
}

func (a *API) listSecGroups(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGList, own(r)); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	nq := url.Values{}
	// Nova lists every project's groups for an admin who passes
	// all_tenants, whatever its value.
	_, allTenants := q["all_tenants"]
	if !allTenants || !caller(r).IsAdmin() {
		nq.Set("project_id", caller(r).ProjectID)
	}
	var out struct {
		Groups []nSecGroup `json:"security_groups"`
	}
	if err := a.neutron(r, "GET", "/security-groups?"+nq.Encode(), nil, &out); err != nil {
		return nil, novaFault(err, nil)
	}
	groups := out.Groups
	// Nova pages the proxied list with limit and offset.
	page := func(name string) (int, bool, error) {
		s := q.Get(name)
		if s == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, false, apiutil.BadRequest("%s param must be an integer", name)
		}
		if n < 0 {
			return 0, false, apiutil.BadRequest("%s param must be positive", name)
		}
		return n, true, nil
	}
	offset, _, err := page("offset")
	if err != nil {
		return nil, err
	}
	limit, hasLimit, err := page("limit")
	if err != nil {
		return nil, err
	}
	groups = groups[min(offset, len(groups)):]
	if !hasLimit || limit > MaxLimit {
		limit = MaxLimit
	}
	groups = groups[:min(limit, len(groups))]
	return apiutil.JSON(200, map[string]any{"security_groups": a.secGroupViews(r, groups)}), nil
}

func (a *API) showSecGroup(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGShow, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("group_id")
	if err := checkSecGroupID(id); err != nil {
		return nil, err
	}
	g, err := a.getSecGroup(r, id)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"security_group": a.secGroupViews(r, []nSecGroup{g})[0]}), nil
}

// wrappedBody reads a request body {key: {...}} and returns the members
// of the inner object, with Nova's faults for an empty body and a missing
// key.
func wrappedBody(r *http.Request, key string) (map[string]json.RawMessage, error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, apiutil.BadRequest("The request body can't be empty")
	}
	var doc map[string]json.RawMessage
	if err := apiutil.DecodeJSONBytes(b, nil, &doc); err != nil {
		return nil, err
	}
	raw, ok := doc[key]
	if !ok || string(raw) == "null" {
		return nil, apiutil.BadRequest("Missing parameter %s", key)
	}
	return members(raw)
}

// secGroupBody reads {"security_group": {"name", "description"}} with
// Nova's checks (both strings of at most 255 characters).
func secGroupBody(r *http.Request) (map[string]any, error) {
	m, err := wrappedBody(r, "security_group")
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range []string{"name", "description"} {
		var s string
		if json.Unmarshal(m[f], &s) != nil {
			return nil, apiutil.BadRequest("Invalid input received: %s has to be a string", f)
		}
		if len([]rune(s)) > 255 {
			return nil, apiutil.BadRequest("Invalid input received: %s has a maximum length of 255 characters", f)
		}
		out[f] = s
	}
	return out, nil
}

// Nova turns Neutron's 409 on create (the quota) into a 403.
var sgCreateStatuses = map[int]int{409: 403}

func (a *API) createSecGroup(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGCreate, own(r)); err != nil {
		return nil, err
	}
	body, err := secGroupBody(r)
	if err != nil {
		return nil, err
	}
	var out struct {
		Group nSecGroup `json:"security_group"`
	}
	if err := a.neutron(r, "POST", "/security-groups", map[string]any{"security_group": body}, &out); err != nil {
		return nil, novaFault(err, sgCreateStatuses)
	}
	return apiutil.JSON(200, map[string]any{"security_group": a.secGroupViews(r, []nSecGroup{out.Group})[0]}), nil
}

func (a *API) updateSecGroup(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGUpdate, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("group_id")
	if err := checkSecGroupID(id); err != nil {
		return nil, err
	}
	body, err := secGroupBody(r)
	if err != nil {
		return nil, err
	}
	if _, err := a.getSecGroup(r, id); err != nil {
		return nil, err
	}
	var out struct {
		Group nSecGroup `json:"security_group"`
	}
	if err := a.neutron(r, "PUT", "/security-groups/"+url.PathEscape(id), map[string]any{"security_group": body}, &out); err != nil {
		return nil, novaFault(err, nil)
	}
	return apiutil.JSON(200, map[string]any{"security_group": a.secGroupViews(r, []nSecGroup{out.Group})[0]}), nil
}

func (a *API) deleteSecGroup(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGDelete, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("group_id")
	if err := checkSecGroupID(id); err != nil {
		return nil, err
	}
	if _, err := a.getSecGroup(r, id); err != nil {
		return nil, err
	}
	// A group in use is a 409 in Neutron and a 400 in Nova.
	if err := a.neutron(r, "DELETE", "/security-groups/"+url.PathEscape(id), nil, nil); err != nil {
		return nil, novaFault(err, map[int]int{409: 400})
	}
	return &apiutil.Response{Status: 202}, nil
}

// ---- rules ----

// parseNovaRule applies Nova's checks of a rule request and returns the
// Neutron rule to create.
func parseNovaRule(m map[string]json.RawMessage, parent string) (map[string]any, error) {
	optStr := func(k string) (string, bool, error) {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			return "", false, nil
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true, nil
		}
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String(), true, nil
		}
		return "", false, apiutil.BadRequest("Invalid input received: %s has to be a string or a number", k)
	}
	proto, hasProto, err := optStr("ip_protocol")
	if err != nil {
		return nil, err
	}
	fromS, hasFrom, err := optStr("from_port")
	if err != nil {
		return nil, err
	}
	toS, hasTo, err := optStr("to_port")
	if err != nil {
		return nil, err
	}
	cidr, hasCIDR, err := optStr("cidr")
	if err != nil {
		return nil, err
	}
	groupID, hasGroup, err := optStr("group_id")
	if err != nil {
		return nil, err
	}
	rule := map[string]any{"direction": "ingress", "security_group_id": parent, "ethertype": "IPv4"}
	upper := strings.ToUpper(proto)
	if hasGroup {
		if err := checkSecGroupID(groupID); err != nil {
			return nil, err
		}
		rule["remote_group_id"] = groupID
		if !hasFrom && !hasTo {
			switch upper {
			case "ICMP":
				fromS, toS, hasFrom, hasTo = "-1", "-1", true, true
			case "TCP", "UDP":
				fromS, toS, hasFrom, hasTo = "1", "65535", true, true
			}
		}
	} else {
		if !hasCIDR || cidr == "" {
			cidr = "0.0.0.0/0"
		} else if u, err := url.PathUnescape(cidr); err == nil {
			cidr = u
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, apiutil.BadRequest("Invalid cidr %s.", cidr)
		}
		if p.Bits() == 0 && !p.Addr().IsUnspecified() {
			return nil, apiutil.BadRequest("Bad prefix for network in cidr %s", cidr)
		}
		if p.Addr().Is6() {
			rule["ethertype"] = "IPv6"
		}
		rule["remote_ip_prefix"] = cidr
	}
	if hasProto && proto != "" && hasFrom && hasTo {
		from, ferr := strconv.Atoi(fromS)
		to, terr := strconv.Atoi(toS)
		if ferr != nil || terr != nil {
			if upper == "ICMP" {
				return nil, apiutil.BadRequest("Invalid input received: Type and Code must be integers for ICMP protocol type")
			}
			return nil, apiutil.BadRequest("Invalid input received: To and From ports must be integers")
		}
		switch upper {
		case "TCP", "UDP":
			if from > to {
				return nil, apiutil.BadRequest("Invalid port range %d:%d. Former value cannot be greater than the later", from, to)
			}
			if from < 1 || to > 65535 {
				return nil, apiutil.BadRequest("Invalid port range %d:%d. Valid %s ports should be between 1-65535", from, to, upper)
			}
		case "ICMP":
			if from < -1 || from > 255 || to < -1 || to > 255 {
				return nil, apiutil.BadRequest("Invalid port range %d:%d. For ICMP, the type:code must be valid", from, to)
			}
		default:
			return nil, apiutil.BadRequest("Invalid IP protocol %s.", proto)
		}
		rule["protocol"] = strings.ToLower(proto)
		if from != -1 {
			rule["port_range_min"] = from
		}
		if to != -1 {
			rule["port_range_max"] = to
		}
	} else if !hasGroup {
		// A CIDR rule needs a protocol and both ports.
		return nil, apiutil.BadRequest("Not enough parameters to build a valid rule.")
	}
	return rule, nil
}

func (a *API) createSecGroupRule(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGRuleCreate, own(r)); err != nil {
		return nil, err
	}
	m, err := wrappedBody(r, "security_group_rule")
	if err != nil {
		return nil, err
	}
	var parent string
	_ = json.Unmarshal(m["parent_group_id"], &parent)
	if err := checkSecGroupID(parent); err != nil {
		return nil, err
	}
	pg, err := a.getSecGroup(r, parent)
	if err != nil {
		return nil, err
	}
	rule, err := parseNovaRule(m, pg.ID)
	if err != nil {
		return nil, err
	}
	names := groupNames{pg.ID: {"name": pg.Name, "tenant_id": pg.ProjectID}}
	if gid, ok := rule["remote_group_id"].(string); ok && gid != pg.ID {
		g, err := a.getSecGroup(r, gid)
		if err != nil {
			return nil, err
		}
		names[g.ID] = map[string]any{"name": g.Name, "tenant_id": g.ProjectID}
	}
	var out struct {
		Rule nRule `json:"security_group_rule"`
	}
	// Nova: a duplicate rule or the quota (409) is a 403.
	if err := a.neutron(r, "POST", "/security-group-rules", map[string]any{"security_group_rule": rule}, &out); err != nil {
		return nil, novaFault(err, sgCreateStatuses)
	}
	return apiutil.JSON(200, map[string]any{"security_group_rule": ruleView(out.Rule, names)}), nil
}

func (a *API) deleteSecGroupRule(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleSGRuleDelete, own(r)); err != nil {
		return nil, err
	}
	id := r.PathValue("rule_id")
	if err := checkSecGroupID(id); err != nil {
		return nil, err
	}
	err := a.neutron(r, "DELETE", "/security-group-rules/"+url.PathEscape(id), nil, nil)
	if neutronStatus(err) == 404 {
		return nil, apiutil.NotFound("Security group with rule %s not found.", id)
	}
	if err != nil {
		return nil, novaFault(err, nil)
	}
	return &apiutil.Response{Status: 202}, nil
}

// ---- servers ----

func (a *API) serverPorts(r *http.Request, uuid string) ([]nPort, error) {
	var out struct {
		Ports []nPort `json:"ports"`
	}
	if err := a.neutron(r, "GET", "/ports?device_id="+url.QueryEscape(uuid), nil, &out); err != nil {
		return nil, novaFault(err, nil)
	}
	return out.Ports, nil
}

func (a *API) serverSecGroups(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleSGServerList)
	if err != nil {
		return nil, err
	}
	if a.networking == nil {
		return apiutil.JSON(200, map[string]any{"security_groups": []any{}}), nil
	}
	ports, err := a.serverPorts(r, i.UUID)
	if err != nil {
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	for _, p := range ports {
		for _, g := range p.SecurityGroups {
			if !seen[g] {
				seen[g] = true
				ids = append(ids, g)
			}
		}
	}
	var groups []nSecGroup
	if len(ids) > 0 {
		q := url.Values{"id": ids}
		var out struct {
			Groups []nSecGroup `json:"security_groups"`
		}
		if err := a.neutron(r, "GET", "/security-groups?"+q.Encode(), nil, &out); err != nil {
			return nil, novaFault(err, nil)
		}
		groups = out.Groups
	}
	return apiutil.JSON(200, map[string]any{"security_groups": a.secGroupViews(r, groups)}), nil
}

// findSecGroup resolves a group name (in the caller's project) or id as
// Nova does: one match by name, else the id; several names are a 409.
func (a *API) findSecGroup(r *http.Request, name string) (string, error) {
	q := url.Values{"name": {name}, "project_id": {caller(r).ProjectID}}
	var out struct {
		Groups []nSecGroup `json:"security_groups"`
	}
	if err := a.neutron(r, "GET", "/security-groups?"+q.Encode(), nil, &out); err != nil {
		return "", novaFault(err, nil)
	}
	switch len(out.Groups) {
	case 1:
		return out.Groups[0].ID, nil
	case 0:
	default:
		return "", apiutil.Conflict("Multiple security_group matches found for name '%s', use an ID to be more specific.", name)
	}
	var one struct {
		Group nSecGroup `json:"security_group"`
	}
	err := a.neutron(r, "GET", "/security-groups/"+url.PathEscape(name), nil, &one)
	if neutronStatus(err) == 404 {
		return "", apiutil.NotFound("Security group %s is not found for project %s", name, caller(r).ProjectID)
	}
	if err != nil {
		return "", novaFault(err, nil)
	}
	return one.Group.ID, nil
}

func secGroupActionName(arg json.RawMessage, action string) (string, error) {
	m, err := args(arg, "name")
	if err != nil {
		return "", err
	}
	name, ok := str(m["name"])
	if !ok {
		return "", apiutil.BadRequest("Invalid input for field/attribute name. Value: %s. %s is not of type 'string'", m["name"], m["name"])
	}
	if strings.TrimSpace(name) == "" {
		return "", apiutil.BadRequest("Security group name cannot be empty")
	}
	return name, nil
}

// addSecurityGroup adds a group to every port of a server (Nova's
// addSecurityGroup action).
func (a *API) addSecurityGroup(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	return a.changeSecurityGroup(r, id, arg, true)
}

// removeSecurityGroup takes a group off every port of a server that has it.
func (a *API) removeSecurityGroup(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	return a.changeSecurityGroup(r, id, arg, false)
}

func (a *API) changeSecurityGroup(r *http.Request, id string, arg json.RawMessage, add bool) (*apiutil.Response, error) {
	action, rule := "removeSecurityGroup", ruleSGRemove
	if add {
		action, rule = "addSecurityGroup", ruleSGAdd
	}
	name, err := secGroupActionName(arg, action)
	if err != nil {
		return nil, err
	}
	i, err := a.loadServer(r, id, rule)
	if err != nil {
		return nil, err
	}
	if a.networking == nil {
		return nil, apiutil.NotFound("Security group %s is not found for project %s", name, caller(r).ProjectID)
	}
	gid, err := a.findSecGroup(r, name)
	if err != nil {
		return nil, err
	}
	ports, err := a.serverPorts(r, i.UUID)
	if err != nil {
		return nil, err
	}
	if add && len(ports) == 0 {
		return nil, apiutil.NotFound("instance_id %s could not be found as device id on any ports", i.UUID)
	}
	changed := false
	for _, p := range ports {
		has := false
		var rest []string
		for _, g := range p.SecurityGroups {
			if g == gid {
				has = true
			} else {
				rest = append(rest, g)
			}
		}
		var groups []string
		switch {
		case add && has:
			continue
		case add:
			secured := p.PortSecurityEnabled == nil || *p.PortSecurityEnabled
			if !secured || len(p.FixedIPs) == 0 && p.IPAllocation != "deferred" {
				return nil, apiutil.BadRequest("Network requires port_security_enabled and subnet associated in order to apply security groups.")
			}
			groups = append(p.SecurityGroups, gid)
		case !has:
			continue
		default:
			groups = rest
		}
		if groups == nil {
			groups = []string{}
		}
		if err := a.neutron(r, "PUT", "/ports/"+url.PathEscape(p.ID), map[string]any{"port": map[string]any{"security_groups": groups}}, nil); err != nil {
			return nil, novaFault(err, map[int]int{409: 400})
		}
		changed = true
	}
	if !add && !changed {
		return nil, apiutil.NotFound("Security group %s not associated with the instance %s", name, i.UUID)
	}
	return &apiutil.Response{Status: 202}, nil
}

// serverGroupNames returns the names of the security groups on the ports
// of each server, as the caller sees them (Nova's "security_groups" of
// server views): one ports query and one groups query for all servers.
func (a *API) serverGroupNames(r *http.Request, uuids []string) (map[string][]string, error) {
	out := map[string][]string{}
	if a.networking == nil || len(uuids) == 0 {
		return out, nil
	}
	var ports struct {
		Ports []struct {
			DeviceID       string   `json:"device_id"`
			SecurityGroups []string `json:"security_groups"`
		} `json:"ports"`
	}
	if err := a.neutron(r, "GET", "/ports?"+url.Values{"device_id": uuids, "fields": {"device_id", "security_groups"}}.Encode(), nil, &ports); err != nil {
		return nil, novaFault(err, nil)
	}
	byServer := map[string][]string{}
	var ids []string
	seen := map[string]bool{}
	for _, p := range ports.Ports {
		for _, g := range p.SecurityGroups {
			if !slices.Contains(byServer[p.DeviceID], g) {
				byServer[p.DeviceID] = append(byServer[p.DeviceID], g)
			}
			if !seen[g] {
				seen[g] = true
				ids = append(ids, g)
			}
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	var groups struct {
		Groups []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"security_groups"`
	}
	if err := a.neutron(r, "GET", "/security-groups?"+url.Values{"id": ids, "fields": {"id", "name"}}.Encode(), nil, &groups); err != nil {
		return nil, novaFault(err, nil)
	}
	names := map[string]string{}
	for _, g := range groups.Groups {
		names[g.ID] = g.Name
	}
	for server, gs := range byServer {
		for _, g := range gs {
			if n, ok := names[g]; ok {
				out[server] = append(out[server], n)
			}
		}
	}
	return out, nil
}

// addServerGroups sets "security_groups" of a server view from its
// ports (left out when it has none, as in Nova); failures of the
// networking API leave the view without it.
func (a *API) addServerGroups(r *http.Request, v *serverBody, uuid string) {
	if len(v.Addresses) == 0 {
		return // no ports with addresses: spare the networking API two calls
	}
	names, err := a.serverGroupNames(r, []string{uuid})
	if err != nil {
		a.log.Warn("security groups of server view", "instance", uuid, "err", err)
		return
	}
	v.SecurityGroups = names[uuid]
}
