package scheduler

import (
	"strconv"
	"strings"
)

// Filter decides whether a host can take an instance of spec.
type Filter interface {
	Name() string
	// Active reports whether the filter has anything to check for spec
	// (inactive filters are skipped, not counted).
	Active(spec *Spec) bool
	Pass(h *Host, spec *Spec) bool
}

// aggregateFilter is a filter whose answer depends only on the host's
// aggregates (and the spec): it is computed once per aggregate set.
type aggregateFilter interface {
	Filter
	aggregateOnly()
}

// memoByAggregates caches an aggregate filter's answer by the host's
// single aggregate (the common case); other hosts are checked directly.
func memoByAggregates(f Filter, spec *Spec) func(h *Host) bool {
	memo := map[*Aggregate]bool{}
	var none *bool
	return func(h *Host) bool {
		switch len(h.Aggregates) {
		case 0:
			if none == nil {
				v := f.Pass(h, spec)
				none = &v
			}
			return *none
		case 1:
			a := h.Aggregates[0]
			v, ok := memo[a]
			if !ok {
				v = f.Pass(h, spec)
				memo[a] = v
			}
			return v
		}
		return f.Pass(h, spec)
	}
}

// DefaultFilters are the filters in the order they run (cheapest and
// most selective first), with Nova's names.
func DefaultFilters(defaultZone string) []Filter {
	return []Filter{
		computeFilter{},
		zoneFilter{def: defaultZone},
		imagePropertiesFilter{},
		aggregateExtraSpecsFilter{},
		tenantIsolationFilter{},
		affinityFilter{},
		antiAffinityFilter{},
		sameHostFilter{},
		differentHostFilter{},
	}
}

// computeFilter: the compute service is up and enabled (a forced host
// may be disabled).
type computeFilter struct{}

func (computeFilter) Name() string        { return "ComputeFilter" }
func (computeFilter) Active(s *Spec) bool { return true }
func (computeFilter) Pass(h *Host, s *Spec) bool {
	forced := s.ForceHost != "" || s.ForceNode != ""
	return h.Up && (!h.Disabled || forced)
}

// zoneFilter: the host is in the requested availability zone.
type zoneFilter struct{ def string }

func (zoneFilter) Name() string        { return "AvailabilityZoneFilter" }
func (zoneFilter) aggregateOnly()      {}
func (zoneFilter) Active(s *Spec) bool { return s.Zone != "" && s.ForceHost == "" && s.ForceNode == "" }
func (f zoneFilter) Pass(h *Host, s *Spec) bool {
	if s.Zone == "" || s.ForceHost != "" || s.ForceNode != "" {
		return true
	}
	return h.Zone(f.def) == s.Zone
}

// imagePropertiesFilter: the image's architecture, hypervisor type and
// VM mode are ones the host supports. The architecture is the host's
// HW_ARCH_* trait; hosts report no trait of it only when the driver does
// not know, and then pass.
type imagePropertiesFilter struct{}

func (imagePropertiesFilter) Name() string        { return "ImagePropertiesFilter" }
func (imagePropertiesFilter) Active(s *Spec) bool { return len(s.Image) > 0 }
func (f imagePropertiesFilter) Pass(h *Host, s *Spec) bool {
	return f.Prepare(s)(h)
}

// Prepare computes the request's side once.
func (imagePropertiesFilter) Prepare(s *Spec) func(h *Host) bool {
	img := s.Image
	arch := img["hw_architecture"]
	if arch == "" {
		arch = img["architecture"]
	}
	want := ""
	if arch != "" {
		want = "HW_ARCH_" + strings.ToUpper(canonicalArch(arch))
	}
	hv := img["img_hv_type"]
	if hv == "" {
		hv = img["hypervisor_type"]
	}
	badMode := img["hw_vm_mode"] != "" && !strings.EqualFold(img["hw_vm_mode"], "hvm")
	return func(h *Host) bool {
		if badMode {
			return false
		}
		if want != "" && !h.Traits[want] {
			for t := range h.Traits {
				if strings.HasPrefix(t, "HW_ARCH_") {
					return false // the host knows its architecture: another one
				}
			}
		}
		if hv != "" && !strings.EqualFold(hv, h.HypervisorType) && !(strings.EqualFold(hv, "kvm") && strings.EqualFold(h.HypervisorType, "qemu")) {
			return false
		}
		return true
	}
}

func canonicalArch(a string) string {
	switch strings.ToLower(a) {
	case "amd64", "x86-64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "i386", "i486", "i586", "x86":
		return "i686"
	}
	return a
}

// aggregateExtraSpecsFilter: every flavor extra spec scoped
// "aggregate_instance_extra_specs:" (or unscoped) matches the metadata
// of one of the host's aggregates.
type aggregateExtraSpecsFilter struct{}

func (aggregateExtraSpecsFilter) Name() string        { return "AggregateInstanceExtraSpecsFilter" }
func (aggregateExtraSpecsFilter) aggregateOnly()      {}
func (aggregateExtraSpecsFilter) Active(s *Spec) bool { return len(s.ExtraSpecs) > 0 }
func (aggregateExtraSpecsFilter) Pass(h *Host, s *Spec) bool {
	for k, want := range s.ExtraSpecs {
		key, scoped := strings.CutPrefix(k, "aggregate_instance_extra_specs:")
		if !scoped && strings.Contains(k, ":") {
			continue // another filter's or placement's scope
		}
		var vals []string
		for _, a := range h.Aggregates {
			if v, ok := a.Metadata[key]; ok {
				vals = append(vals, strings.Split(v, ",")...)
			}
		}
		if len(vals) == 0 {
			return false
		}
		ok := false
		for _, v := range vals {
			if MatchSpec(strings.TrimSpace(v), want) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// MatchSpec matches a value against an extra spec requirement with Nova's
// operators: "= N" (at least N), "<= N", ">= N", "== N", "!= N",
// "s== x", "s!= x", "s>= x", "s<= x", "s< x", "s> x", "<in> x",
// "<all-in> a b", "<or> a <or> b"; anything else is string equality.
func MatchSpec(value, req string) bool {
	words := strings.Fields(req)
	if len(words) < 2 {
		return value == req
	}
	op, arg := words[0], strings.Join(words[1:], " ")
	num := func(f func(a, b float64) bool) bool {
		a, err1 := strconv.ParseFloat(value, 64)
		b, err2 := strconv.ParseFloat(arg, 64)
		return err1 == nil && err2 == nil && f(a, b)
	}
	switch op {
	case "=", ">=":
		return num(func(a, b float64) bool { return a >= b })
	case "<=":
		return num(func(a, b float64) bool { return a <= b })
	case "==":
		return num(func(a, b float64) bool { return a == b })
	case "!=":
		return num(func(a, b float64) bool { return a != b })
	case "s==":
		return value == arg
	case "s!=":
		return value != arg
	case "s>=":
		return value >= arg
	case "s<=":
		return value <= arg
	case "s>":
		return value > arg
	case "s<":
		return value < arg
	case "<in>":
		return strings.Contains(value, arg)
	case "<all-in>":
		for _, w := range words[1:] {
			if !strings.Contains(value, w) {
				return false
			}
		}
		return true
	case "<or>":
		for _, w := range words {
			if w != "<or>" && w == value {
				return true
			}
		}
		return false
	}
	return value == req
}

// tenantIsolationFilter: hosts in aggregates with filter_tenant_id
// metadata take only those projects' instances.
type tenantIsolationFilter struct{}

func (tenantIsolationFilter) Name() string        { return "AggregateMultiTenancyIsolation" }
func (tenantIsolationFilter) aggregateOnly()      {}
func (tenantIsolationFilter) Active(s *Spec) bool { return true }
func (tenantIsolationFilter) Pass(h *Host, s *Spec) bool {
	restricted := false
	for _, a := range h.Aggregates {
		for k, v := range a.Metadata {
			if k != "filter_tenant_id" && !strings.HasPrefix(k, "filter_tenant_id_") {
				continue
			}
			restricted = true
			for _, p := range strings.Split(v, ",") {
				if strings.TrimSpace(p) == s.ProjectID {
					return true
				}
			}
		}
	}
	return !restricted
}

// affinityFilter: with a hard affinity group that has members, only
// their host.
type affinityFilter struct{}

func (affinityFilter) Name() string        { return "ServerGroupAffinityFilter" }
func (affinityFilter) Active(s *Spec) bool { return s.Group != nil && s.Group.Policy == "affinity" }
func (affinityFilter) Pass(h *Host, s *Spec) bool {
	g := s.Group
	if g == nil || g.Policy != "affinity" {
		return true
	}
	total := 0
	for _, n := range g.Members {
		total += n
	}
	return total == 0 || g.Members[h.Host] > 0
}

// antiAffinityFilter: with a hard anti-affinity group, hosts with fewer
// than max_server_per_host members.
type antiAffinityFilter struct{}

func (antiAffinityFilter) Name() string { return "ServerGroupAntiAffinityFilter" }
func (antiAffinityFilter) Active(s *Spec) bool {
	return s.Group != nil && s.Group.Policy == "anti-affinity"
}
func (antiAffinityFilter) Pass(h *Host, s *Spec) bool {
	g := s.Group
	if g == nil || g.Policy != "anti-affinity" {
		return true
	}
	limit := g.MaxServerPerHost
	if limit <= 0 {
		limit = 1
	}
	return g.Members[h.Host] < limit
}

// sameHostFilter: the same_host hint.
type sameHostFilter struct{}

func (sameHostFilter) Name() string        { return "SameHostFilter" }
func (sameHostFilter) Active(s *Spec) bool { return len(s.SameHost) > 0 }
func (sameHostFilter) Pass(h *Host, s *Spec) bool {
	if len(s.SameHost) == 0 {
		return true
	}
	for _, x := range s.SameHost {
		if x == h.Host {
			return true
		}
	}
	return false
}

// differentHostFilter: the different_host hint.
type differentHostFilter struct{}

func (differentHostFilter) Name() string        { return "DifferentHostFilter" }
func (differentHostFilter) Active(s *Spec) bool { return len(s.DifferentHost) > 0 }
func (differentHostFilter) Pass(h *Host, s *Spec) bool {
	for _, x := range s.DifferentHost {
		if x == h.Host {
			return false
		}
	}
	return true
}
