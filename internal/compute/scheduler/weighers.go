package scheduler

// Weigher scores a host; higher is better before the multiplier.
// Scores are normalised to [0, 1] over the hosts of one request.
type Weigher interface {
	Name() string
	Multiplier() float64
	Active(spec *Spec) bool
	Weigh(h *Host, spec *Spec) float64
}

// DefaultWeighers are Nova's resource and server-group weighers. Spread
// (the default) prefers the emptiest host; Pack the fullest.
func DefaultWeighers(cfg Config) []Weigher {
	m := func(name string, def float64) float64 {
		if v, ok := cfg.Multipliers[name]; ok {
			return v
		}
		return def
	}
	res := 1.0
	if cfg.Pack {
		res = -1.0
	}
	return []Weigher{
		freeWeigher{name: "RAMWeigher", class: "MEMORY_MB", mult: m("ram_weight_multiplier", res)},
		freeWeigher{name: "CPUWeigher", class: "VCPU", mult: m("cpu_weight_multiplier", res)},
		freeWeigher{name: "DiskWeigher", class: "DISK_GB", mult: m("disk_weight_multiplier", res)},
		groupWeigher{name: "ServerGroupSoftAffinityWeigher", policy: "soft-affinity", sign: 1, mult: m("soft_affinity_weight_multiplier", 1)},
		groupWeigher{name: "ServerGroupSoftAntiAffinityWeigher", policy: "soft-anti-affinity", sign: -1, mult: m("soft_anti_affinity_weight_multiplier", 1)},
	}
}

// freeWeigher weighs the free amount of a class.
type freeWeigher struct {
	name  string
	class string
	mult  float64
}

func (w freeWeigher) Name() string        { return w.name }
func (w freeWeigher) Multiplier() float64 { return w.mult }
func (w freeWeigher) Active(*Spec) bool   { return true }
func (w freeWeigher) Weigh(h *Host, _ *Spec) float64 {
	switch w.class {
	case "VCPU":
		return float64(h.freeCPU)
	case "MEMORY_MB":
		return float64(h.freeRAM)
	case "DISK_GB":
		return float64(h.freeDisk)
	}
	return float64(h.Free[w.class])
}

// groupWeigher counts the request's group members on a host: more is
// better for soft affinity, worse for soft anti-affinity.
type groupWeigher struct {
	name   string
	policy string
	sign   float64
	mult   float64
}

func (w groupWeigher) Name() string        { return w.name }
func (w groupWeigher) Multiplier() float64 { return w.mult }
func (w groupWeigher) Active(s *Spec) bool { return s.Group != nil && s.Group.Policy == w.policy }
func (w groupWeigher) Weigh(h *Host, s *Spec) float64 {
	if s.Group == nil || s.Group.Policy != w.policy {
		return 0
	}
	return w.sign * float64(s.Group.Members[h.Host])
}
