package conductor

import (
	"errors"
	"slices"
	"sort"

	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// ErrNoValidHost is returned by a Scheduler that finds no host.
var ErrNoValidHost = errors.New("No valid host was found. There are not enough hosts available.")

// HostState is one compute host as the scheduler sees it.
type HostState struct {
	Host     string
	Node     string
	Up       bool
	Disabled bool
	VCPUs    int64
	MemoryMB int64
	DiskGB   int64
	Used     store.HostUsage
}

// Request is what an instance needs from a host.
type Request struct {
	VCPUs    int64
	MemoryMB int64
	DiskGB   int64
	// Exclude lists hosts not to choose (the source of a migration).
	Exclude []string
	// Force names the only host to consider (admin-requested target),
	// which skips the disabled check as Nova's forced hosts do.
	Force string
	// Credit is usage already counted on a host that the request
	// replaces (a resize on the same host counts the old flavor once).
	Credit map[string]store.HostUsage
}

// Scheduler picks a host. It is pure: a read-only snapshot in, a choice
// out; the conductor commits the choice in the transaction that took the
// snapshot, so two choices never overcommit a host. The Placement-backed
// scheduler replaces the interim one behind this interface.
type Scheduler interface {
	Select(hosts []HostState, req Request) (HostState, error)
}

// Ratios are allocation ratios (Nova's defaults: 16 vCPUs, 1.5 RAM and
// 1.0 disk per physical unit).
type Ratios struct{ CPU, RAM, Disk float64 }

// DefaultRatios are Nova's initial allocation ratios.
var DefaultRatios = Ratios{CPU: 16, RAM: 1.5, Disk: 1}

// Simple is the interim scheduler: enabled, up hosts with room for the
// flavor (after allocation ratios), the least loaded by free RAM first,
// then by fewest instances, then by name.
type Simple struct{ Ratios Ratios }

// Select implements Scheduler.
func (s Simple) Select(hosts []HostState, req Request) (HostState, error) {
	r := s.Ratios
	if r.CPU == 0 {
		r = DefaultRatios
	}
	type cand struct {
		h    HostState
		free float64
	}
	var cands []cand
	for _, h := range hosts {
		if req.Force != "" && h.Host != req.Force {
			continue
		}
		if !h.Up || (h.Disabled && req.Force == "") || slices.Contains(req.Exclude, h.Host) {
			continue
		}
		used := h.Used
		if c, ok := req.Credit[h.Host]; ok {
			used.VCPUs -= c.VCPUs
			used.MemoryMB -= c.MemoryMB
			used.DiskGB -= c.DiskGB
		}
		freeCPU := float64(h.VCPUs)*r.CPU - float64(used.VCPUs)
		freeRAM := float64(h.MemoryMB)*r.RAM - float64(used.MemoryMB)
		freeDisk := float64(h.DiskGB)*r.Disk - float64(used.DiskGB)
		if freeCPU < float64(req.VCPUs) || freeRAM < float64(req.MemoryMB) || freeDisk < float64(req.DiskGB) {
			continue
		}
		cands = append(cands, cand{h, freeRAM})
	}
	if len(cands) == 0 {
		return HostState{}, ErrNoValidHost
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.free != b.free {
			return a.free > b.free
		}
		if a.h.Used.Instances != b.h.Used.Instances {
			return a.h.Used.Instances < b.h.Used.Instances
		}
		return a.h.Host < b.h.Host
	})
	return cands[0].h, nil
}
