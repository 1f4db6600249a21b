package placement

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// RequestGroup is one group of a resource request: the unsuffixed group
// (Suffix "") whose resources may be spread over a provider tree, or a
// suffixed (granular) group satisfied by a single provider.
type RequestGroup struct {
	Suffix    string
	Resources map[string]int64
	Required  []string // traits the provider(s) must have
	Forbidden []string // traits the provider(s) must not have
	// MemberOf: each entry is a set of aggregates of which the provider
	// must be in at least one; all entries must hold.
	MemberOf [][]string
	// NotMemberOf: aggregates the provider must not be in.
	NotMemberOf []string
	InTree      string // provider uuid whose tree bounds the group, "" for none
}

// CandidateRequest is a parsed GET /allocation_candidates.
type CandidateRequest struct {
	Groups        []RequestGroup // the unsuffixed group first, when present
	GroupPolicy   string         // "", "none" or "isolate"
	Limit         int            // 0: no limit
	RootRequired  []string
	RootForbidden []string
	SameSubtree   [][]string // suffix lists
}

// ResourceAmounts parses "VCPU:4,DISK_GB:64".
func parseResources(key, s string) (map[string]int64, error) {
	out := map[string]int64{}
	if strings.TrimSpace(s) == "" {
		return nil, badRequest("Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: empty string.")
	}
	for _, part := range strings.Split(s, ",") {
		rc, amt, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || rc == "" {
			return nil, badRequest("Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: %s.", s)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(amt), 10, 64)
		if err != nil || n <= 0 {
			return nil, badRequest("Requested resource %s expected positive integer amount. Got: %s.", rc, amt)
		}
		if _, dup := out[rc]; dup {
			return nil, badRequest("Badly formed resources parameter: %s repeated in %s.", rc, key)
		}
		out[rc] = n
	}
	return out, nil
}

// parseTraits parses "A,!B" into required and forbidden lists.
func parseTraits(key, s string, allowForbidden bool) (req, forb []string, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, badRequest("Invalid query string parameters: Expected '%s' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty string.", key)
	}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		neg := false
		if allowForbidden && strings.HasPrefix(t, "!") {
			neg, t = true, t[1:]
		}
		if t == "" || !anyNameRE.MatchString(t) {
			return nil, nil, badRequest("Invalid query string parameters: Expected '%s' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: %s", key, s)
		}
		if neg {
			forb = append(forb, t)
		} else {
			req = append(req, t)
		}
	}
	for _, r := range req {
		for _, f := range forb {
			if r == f {
				return nil, nil, badRequest("Conflicting required and forbidden traits found in the following traits keys: %s: (%s)", key, r)
			}
		}
	}
	return req, forb, nil
}

// parseMemberOf parses one member_of value: "AGG", "in:A,B", and from 1.32
// "!AGG" and "!in:A,B".
func parseMemberOf(key, s string, allowForbidden bool) (any []string, not []string, err error) {
	neg := false
	val := s
	if allowForbidden && strings.HasPrefix(val, "!") {
		neg, val = true, val[1:]
	}
	list := []string{val}
	if strings.HasPrefix(val, "in:") {
		list = strings.Split(val[3:], ",")
	}
	for i, a := range list {
		if !isUUID(strings.TrimSpace(a)) {
			if strings.HasPrefix(strings.TrimSpace(a), "!") && allowForbidden {
				return nil, nil, badRequest("Invalid query string parameters: Forbidden member_of parameters may not be used within an \"in:\" expression. Got: %s", s)
			}
			return nil, nil, badRequest("Invalid query string parameters: Expected '%s' parameter to contain valid UUID(s). Got: %s", key, s)
		}
		list[i] = normUUID(strings.TrimSpace(a))
	}
	if neg {
		return nil, list, nil
	}
	return list, nil, nil
}

func unexpected(keys []string) error {
	sort.Strings(keys)
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	verb := "was"
	if len(keys) > 1 {
		verb = "were"
	}
	return badRequest("Invalid query string parameters: Additional properties are not allowed (%s %s unexpected)", strings.Join(q, ", "), verb)
}

func single(q url.Values, key string) (string, error) {
	vals := q[key]
	if len(vals) > 1 {
		return "", perr(400, ErrInvalid, codeQueryDuplicateKey, "Query parameter '%s' may only be specified once.", key)
	}
	if len(vals) == 0 {
		return "", nil
	}
	return vals[0], nil
}

// splitKey splits "resources1" into ("resources", "1"); known prefixes only.
func splitKey(k string) (prefix, suffix string) {
	for _, p := range []string{"resources", "required", "member_of", "in_tree"} {
		if strings.HasPrefix(k, p) {
			return p, k[len(p):]
		}
	}
	return k, ""
}

// ParseCandidateRequest parses the query of GET /allocation_candidates
// for microversion ver. Names of classes and traits are checked for form
// only; the service checks they exist.
func ParseCandidateRequest(q url.Values, ver apiutil.Version) (*CandidateRequest, error) {
	req := &CandidateRequest{}
	groups := map[string]*RequestGroup{}
	group := func(s string) *RequestGroup {
		g, ok := groups[s]
		if !ok {
			g = &RequestGroup{Suffix: s}
			groups[s] = g
		}
		return g
	}
	var bad []string
	hasResources := map[string]bool{}
	for key, vals := range q {
		prefix, suffix := splitKey(key)
		switch prefix {
		case "resources", "required", "member_of", "in_tree":
		case "group_policy", "limit", "root_required", "same_subtree":
			if suffix != "" {
				bad = append(bad, key)
				continue
			}
		default:
			bad = append(bad, key)
			continue
		}
		if suffix != "" {
			validSuffix := ver.AtLeast(v(25)) && numberRE.MatchString(suffix) ||
				ver.AtLeast(v(33)) && suffixRE.MatchString(suffix)
			if !validSuffix {
				bad = append(bad, key)
				continue
			}
		}
		switch {
		case prefix == "limit" && !ver.AtLeast(v(16)),
			prefix == "required" && suffix == "" && !ver.AtLeast(v(17)),
			prefix == "member_of" && suffix == "" && !ver.AtLeast(v(21)),
			prefix == "in_tree" && !ver.AtLeast(v(31)),
			prefix == "group_policy" && !ver.AtLeast(v(25)),
			prefix == "root_required" && !ver.AtLeast(v(35)),
			prefix == "same_subtree" && !ver.AtLeast(v(36)):
			bad = append(bad, key)
			continue
		}
		switch prefix {
		case "resources":
			s, err := single(q, key)
			if err != nil {
				return nil, err
			}
			res, err := parseResources(key, s)
			if err != nil {
				return nil, err
			}
			group(suffix).Resources = res
			hasResources[suffix] = true
		case "required":
			s, err := single(q, key)
			if err != nil {
				return nil, err
			}
			r, f, err := parseTraits(key, s, ver.AtLeast(v(22)))
			if err != nil {
				return nil, err
			}
			g := group(suffix)
			g.Required, g.Forbidden = r, f
		case "member_of":
			if len(vals) > 1 && !ver.AtLeast(v(24)) {
				return nil, perr(400, ErrInvalid, codeQueryDuplicateKey, "Query parameter '%s' may only be specified once.", key)
			}
			g := group(suffix)
			for _, s := range vals {
				a, n, err := parseMemberOf(key, s, ver.AtLeast(v(32)))
				if err != nil {
					return nil, err
				}
				if a != nil {
					g.MemberOf = append(g.MemberOf, a)
				}
				g.NotMemberOf = append(g.NotMemberOf, n...)
			}
		case "in_tree":
			s, err := single(q, key)
			if err != nil {
				return nil, err
			}
			if !isUUID(s) {
				return nil, badRequest("Invalid query string parameters: Expected '%s' parameter to be a format of uuid. Got: %s", key, s)
			}
			group(suffix).InTree = normUUID(s)
		case "group_policy":
			s, err := single(q, key)
			if err != nil {
				return nil, err
			}
			if s != "none" && s != "isolate" {
				return nil, badRequest("Invalid query string parameters: '%s' is not one of ['none', 'isolate']", s)
			}
			req.GroupPolicy = s
		case "limit":
			s, err := single(q, key)
			if err != nil {
				return nil, err
			}
			if !numberRE.MatchString(s) {
				return nil, badRequest("Invalid query string parameters: '%s' does not match '^[1-9][0-9]*$'", s)
			}
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, badRequest("Invalid query string parameters: '%s' does not match '^[1-9][0-9]*$'", s)
			}
			req.Limit = n
		case "root_required":
			s, err := single(q, key)
			if err != nil {
				return nil, err
			}
			r, f, err := parseTraits(key, s, true)
			if err != nil {
				return nil, err
			}
			req.RootRequired, req.RootForbidden = r, f
		case "same_subtree":
			for _, s := range vals {
				var list []string
				for _, x := range strings.Split(s, ",") {
					if x = strings.TrimSpace(x); x != "" {
						list = append(list, x)
					}
				}
				if len(list) == 0 {
					return nil, badRequest("Invalid query string parameters: Expected 'same_subtree' parameter value of the form: _SUFFIX1,_SUFFIX2. Got: %s", s)
				}
				req.SameSubtree = append(req.SameSubtree, list)
			}
		}
	}
	if len(bad) > 0 {
		return nil, unexpected(bad)
	}
	if len(hasResources) == 0 {
		if ver.AtLeast(v(25)) {
			return nil, badRequest("At least one \"resources\" or \"resources{N}\" parameter is required.")
		}
		return nil, badRequest("Invalid query string parameters: 'resources' is a required property")
	}
	suffixed := 0
	for s, g := range groups {
		if s == "" {
			continue
		}
		if !hasResources[s] && !ver.AtLeast(v(36)) {
			return nil, badRequest("All request groups must specify resources. Request group %s has other parameters without resources%s.", s, s)
		}
		_ = g
		suffixed++
	}
	if suffixedWithResources(groups, hasResources) > 1 && req.GroupPolicy == "" {
		return nil, badRequest("The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.")
	}
	for _, list := range req.SameSubtree {
		for _, s := range list {
			if _, ok := groups[s]; !ok || s == "" {
				return nil, badRequest("Real suffixes should be specified in 'same_subtree': %s not found in %v.", s, suffixes(groups))
			}
		}
	}
	if g, ok := groups[""]; ok {
		req.Groups = append(req.Groups, *g)
	}
	var names []string
	for s := range groups {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	for _, s := range names {
		req.Groups = append(req.Groups, *groups[s])
	}
	return req, nil
}

func suffixedWithResources(groups map[string]*RequestGroup, has map[string]bool) int {
	n := 0
	for s := range groups {
		if s != "" && has[s] {
			n++
		}
	}
	return n
}

func suffixes(groups map[string]*RequestGroup) []string {
	var out []string
	for s := range groups {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ProviderFilter is a parsed GET /resource_providers query.
type ProviderFilter struct {
	Name, UUID  string
	MemberOf    [][]string
	NotMemberOf []string
	InTree      string
	Resources   map[string]int64
	Required    []string
	Forbidden   []string
}

// ParseProviderFilter parses the query of GET /resource_providers.
func ParseProviderFilter(q url.Values, ver apiutil.Version) (*ProviderFilter, error) {
	f := &ProviderFilter{}
	allowed := map[string]apiutil.Version{"name": v(0), "uuid": v(0), "member_of": v(3),
		"resources": v(4), "in_tree": v(14), "required": v(18)}
	var bad []string
	for k := range q {
		min, ok := allowed[k]
		if !ok || !ver.AtLeast(min) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return nil, unexpected(bad)
	}
	var err error
	if f.Name, err = single(q, "name"); err != nil {
		return nil, err
	}
	if f.UUID, err = single(q, "uuid"); err != nil {
		return nil, err
	}
	if _, ok := q["uuid"]; ok {
		if !isUUID(f.UUID) {
			return nil, badRequest("Invalid query string parameters: '%s' is not a 'uuid'", f.UUID)
		}
		f.UUID = normUUID(f.UUID)
	}
	if vals := q["member_of"]; len(vals) > 0 {
		if len(vals) > 1 && !ver.AtLeast(v(24)) {
			return nil, perr(400, ErrInvalid, codeQueryDuplicateKey, "Query parameter 'member_of' may only be specified once.")
		}
		for _, s := range vals {
			a, n, err := parseMemberOf("member_of", s, ver.AtLeast(v(32)))
			if err != nil {
				return nil, err
			}
			if a != nil {
				f.MemberOf = append(f.MemberOf, a)
			}
			f.NotMemberOf = append(f.NotMemberOf, n...)
		}
	}
	if _, ok := q["in_tree"]; ok {
		s, err := single(q, "in_tree")
		if err != nil {
			return nil, err
		}
		if !isUUID(s) {
			return nil, badRequest("Invalid query string parameters: '%s' is not a 'uuid'", s)
		}
		f.InTree = normUUID(s)
	}
	if _, ok := q["resources"]; ok {
		s, err := single(q, "resources")
		if err != nil {
			return nil, err
		}
		if f.Resources, err = parseResources("resources", s); err != nil {
			return nil, err
		}
	}
	if _, ok := q["required"]; ok {
		s, err := single(q, "required")
		if err != nil {
			return nil, err
		}
		if f.Required, f.Forbidden, err = parseTraits("required", s, ver.AtLeast(v(22))); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// String is for logs and tests.
func (g RequestGroup) String() string {
	return fmt.Sprintf("group%q res=%v req=%v forb=%v member_of=%v !member_of=%v in_tree=%s",
		g.Suffix, g.Resources, g.Required, g.Forbidden, g.MemberOf, g.NotMemberOf, g.InTree)
}
