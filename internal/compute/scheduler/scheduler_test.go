package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/service"
)

func host(name string, freeRAM int64, mod ...func(*Host)) *Host {
	h := &Host{Host: name, Node: name, Provider: "rp-" + name, Up: true, HypervisorType: "QEMU",
		Traits: map[string]bool{"HW_ARCH_X86_64": true}}
	h.SetFree("VCPU", 16)
	h.SetFree("MEMORY_MB", freeRAM)
	h.SetFree("DISK_GB", 100)
	for _, m := range mod {
		m(h)
	}
	return h
}

func inAgg(md map[string]string) func(*Host) {
	return func(h *Host) {
		h.Aggregates = append(h.Aggregates, &Aggregate{UUID: "agg-" + fmt.Sprint(md), Metadata: md})
	}
}

func names(hs []*Host) string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Host)
	}
	return strings.Join(out, ",")
}

func TestChoose(t *testing.T) {
	down := func(h *Host) { h.Up = false }
	disabled := func(h *Host) { h.Disabled = true }
	hosts := func() []*Host {
		return []*Host{
			host("a", 1000),
			host("b", 4000, inAgg(map[string]string{"availability_zone": "az1", "ssd": "true"})),
			host("c", 3000, inAgg(map[string]string{"filter_tenant_id": "p2,p3"})),
			host("d", 9000, down),
			host("e", 8000, disabled),
		}
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want string // best first
		err  string // substring of the no-valid-host message
	}{
		{"spread by free RAM", Spec{ProjectID: "p1"}, "b,a", ""},
		{"tenant isolation admits its project", Spec{ProjectID: "p2"}, "b,c,a", ""},
		{"zone", Spec{ProjectID: "p1", Zone: "az1"}, "b", ""},
		{"default zone", Spec{ProjectID: "p1", Zone: "nova"}, "a", ""},
		{"forced host may be disabled", Spec{ProjectID: "p1", ForceHost: "e"}, "e", ""},
		{"forced host must be up", Spec{ProjectID: "p1", ForceHost: "d"}, "", "ComputeFilter eliminated 1"},
		{"ignore hosts", Spec{ProjectID: "p1", IgnoreHosts: []string{"b"}}, "a", ""},
		{"aggregate extra specs", Spec{ProjectID: "p1", ExtraSpecs: map[string]string{"aggregate_instance_extra_specs:ssd": "true", "hw:cpu_policy": "x"}}, "b", ""},
		{"aggregate extra specs none", Spec{ProjectID: "p1", ExtraSpecs: map[string]string{"ssd": "false"}}, "", "AggregateInstanceExtraSpecsFilter eliminated 3"},
		{"image arch", Spec{ProjectID: "p1", Image: map[string]string{"hw_architecture": "aarch64"}}, "", "ImagePropertiesFilter eliminated 3"},
		{"every filter that eliminated", Spec{ProjectID: "p1", Zone: "az1", Image: map[string]string{"hw_architecture": "aarch64"}}, "",
			"Of 5 candidate host(s): ComputeFilter eliminated 2, AvailabilityZoneFilter eliminated 2, ImagePropertiesFilter eliminated 1."},
		{"image hv type", Spec{ProjectID: "p1", Image: map[string]string{"img_hv_type": "kvm", "hw_architecture": "x86_64"}}, "b,a", ""},
		{"affinity", Spec{ProjectID: "p1", Group: &Group{Policy: "affinity", Members: map[string]int{"a": 1}}}, "a", ""},
		{"anti-affinity", Spec{ProjectID: "p1", Group: &Group{Policy: "anti-affinity", Members: map[string]int{"b": 1}}}, "a", ""},
		{"anti-affinity max 2", Spec{ProjectID: "p1", Group: &Group{Policy: "anti-affinity", MaxServerPerHost: 2, Members: map[string]int{"b": 1}}}, "b,a", ""},
		{"soft affinity beats RAM", Spec{ProjectID: "p1", Group: &Group{Policy: "soft-affinity", Members: map[string]int{"a": 2}}}, "a,b", ""},
		{"soft anti-affinity", Spec{ProjectID: "p1", Group: &Group{Policy: "soft-anti-affinity", Members: map[string]int{"b": 3}}}, "a,b", ""},
		{"same host", Spec{ProjectID: "p1", SameHost: []string{"a"}}, "a", ""},
		{"different host", Spec{ProjectID: "p1", DifferentHost: []string{"b"}}, "a", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil, Config{}, nil)
			got, err := s.Choose(hosts(), &tc.spec)
			if tc.err != "" {
				if !errors.Is(err, ErrNoValidHost) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || names(got) != tc.want {
				t.Fatalf("got %s %v, want %s", names(got), err, tc.want)
			}
		})
	}
	// Packing reverses the resource weighers.
	got, _ := New(nil, Config{Pack: true}, nil).Choose(hosts(), &Spec{ProjectID: "p1"})
	if names(got) != "a,b" {
		t.Fatalf("pack: %s", names(got))
	}
}

func TestMatchSpec(t *testing.T) {
	for _, tc := range []struct {
		v, req string
		want   bool
	}{
		{"true", "true", true}, {"4", "= 2", true}, {"1", "= 2", false}, {"ssd", "s== ssd", true},
		{"a", "<or> a <or> b", true}, {"c", "<or> a <or> b", false}, {"fast ssd", "<in> ssd", true}, {"2", "<= 3", true},
	} {
		if got := MatchSpec(tc.v, tc.req); got != tc.want {
			t.Errorf("MatchSpec(%q, %q) = %v", tc.v, tc.req, got)
		}
	}
}

// staticHosts is a HostSource of fixed hosts.
type staticHosts []*Host

func (s staticHosts) Hosts(context.Context) ([]*Host, error) { return s, nil }

// seed creates n compute-node providers with vcpus VCPU each.
func seed(t testing.TB, pl *placement.Service, n int, vcpus int64) staticHosts {
	ctx := context.Background()
	var hosts staticHosts
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("h%05d", i)
		uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		p, err := pl.CreateProvider(ctx, uuid, name, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pl.SetInventories(ctx, p.UUID, p.Generation, []placement.Inventory{
			{ResourceClass: "VCPU", Total: vcpus}, {ResourceClass: "MEMORY_MB", Total: 8192}, {ResourceClass: "DISK_GB", Total: 100}}); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, &Host{Host: name, Node: name, Provider: p.UUID, Up: true})
	}
	return hosts
}

func claimer(pl *placement.Service, consumers []string) ClaimFunc {
	return func(ctx context.Context, i int, allocs map[string]map[string]int64) error {
		return pl.Claim(ctx, placement.ConsumerAllocations{Consumer: consumers[i], ProjectID: "p", UserID: "u", Allocations: allocs}, nil)
	}
}

func uuids(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("10000000-0000-4000-8000-%012d", i))
	}
	return out
}

// TestScheduleClaims: a multi-create spreads over hosts with room, an
// anti-affinity group takes one host each, and when nothing fits the
// error says why.
func TestScheduleClaims(t *testing.T) {
	dbtest.Each(t, []db.Set{placement.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		pl, err := placement.New(service.Deps{DB: d}, placement.Config{})
		if err != nil {
			t.Fatal(err)
		}
		hosts := seed(t, pl, 3, 2)
		s := New(pl, Config{}, nil)
		spec := &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}
		cons := uuids(7)
		sel, err := s.Schedule(ctx, hosts, spec, 6, claimer(pl, cons))
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, x := range sel {
			per[x.Host.Host]++
		}
		if len(per) != 3 || per["h00000"] != 2 || per["h00001"] != 2 || per["h00002"] != 2 {
			t.Fatalf("spread: %v", per)
		}
		_, err = s.Schedule(ctx, hosts, spec, 1, claimer(pl, cons[6:]))
		if !errors.Is(err, ErrNoValidHost) || !strings.Contains(err.Error(), "Placement found no host") ||
			!strings.Contains(err.Error(), "Of 3 host(s) in placement: 3 without 1 VCPU free.") {
			t.Fatalf("full cloud: %v", err)
		}
		// Each host is counted under the first test it fails.
		_, err = s.Schedule(ctx, hosts, &Spec{ProjectID: "p", Resources: map[string]int64{"MEMORY_MB": 100, "VGPU": 1},
			RequiredTraits: []string{"HW_CPU_X86_AVX2"}}, 1, claimer(pl, cons[6:]))
		if err == nil || !strings.Contains(err.Error(), "Of 3 host(s) in placement: 3 without VGPU inventory.") {
			t.Fatalf("explained: %v", err)
		}
		_, err = s.Schedule(ctx, hosts, &Spec{ProjectID: "p", Resources: map[string]int64{"MEMORY_MB": 8000},
			RequiredTraits: []string{"HW_CPU_X86_AVX2"}}, 1, claimer(pl, cons[6:]))
		if err == nil || !strings.Contains(err.Error(), "Of 3 host(s) in placement: 3 without 8000 MEMORY_MB free.") {
			t.Fatalf("explained: %v", err)
		}
		_, err = s.Schedule(ctx, hosts, &Spec{ProjectID: "p", Resources: map[string]int64{"MEMORY_MB": 100},
			RequiredTraits: []string{"HW_CPU_X86_AVX2"}}, 1, claimer(pl, cons[6:]))
		if err == nil || !strings.Contains(err.Error(), "Of 3 host(s) in placement: 3 without trait HW_CPU_X86_AVX2.") {
			t.Fatalf("explained: %v", err)
		}
		for _, c := range cons[:3] {
			if err := pl.DeleteAllocations(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		g := &Spec{ProjectID: "p", Resources: spec.Resources, Group: &Group{Policy: "anti-affinity"}}
		sel, err = s.Schedule(ctx, hosts, g, 2, claimer(pl, uuids(2)))
		if err != nil || sel[0].Host.Host == sel[1].Host.Host {
			t.Fatalf("anti-affinity: %v %v", err, sel)
		}
	})
}

// TestConcurrentSchedules: 100 decisions racing for a host with room
// for 50 claim exactly 50, through two schedulers (two processes'
// snapshots) sharing the database.
func TestConcurrentSchedules(t *testing.T) {
	dbtest.Each(t, []db.Set{placement.Migrations()}, testConcurrentSchedules)
}

func testConcurrentSchedules(t *testing.T, d *db.DB) {
	pl, err := placement.New(service.Deps{DB: d}, placement.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hosts := seed(t, pl, 1, 50)
	scheds := []*Scheduler{New(pl, Config{}, nil), New(pl, Config{}, nil)}
	var ok, none atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs := staticHosts{{Host: hosts[0].Host, Node: hosts[0].Node, Provider: hosts[0].Provider, Up: true}}
			_, err := scheds[i%2].Schedule(context.Background(), hs, &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 1}}, 1,
				claimer(pl, []string{fmt.Sprintf("20000000-0000-4000-8000-%012d", i)}))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrNoValidHost):
				none.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 || none.Load() != 50 {
		t.Fatalf("ok %d, no valid host %d", ok.Load(), none.Load())
	}
	invs, err := pl.Inventories(context.Background(), hosts[0].Provider)
	if err != nil || invs["VCPU"].Used != 50 {
		t.Fatalf("used %+v %v", invs["VCPU"], err)
	}
}

// countingPlacement counts the allocation candidate requests.
type countingPlacement struct {
	*placement.Service
	asked atomic.Int32
}

func (c *countingPlacement) AllocationCandidates(ctx context.Context, req *placement.CandidateRequest) (*placement.Candidates, error) {
	c.asked.Add(1)
	return c.Service.AllocationCandidates(ctx, req)
}

// TestSnapshot: simple requests are answered from the provider
// snapshot, which follows other writers; a stale snapshot never
// over-commits; nested trees and unknown traits go to placement.
func TestSnapshot(t *testing.T) {
	dbtest.Each(t, []db.Set{placement.Migrations()}, testSnapshot)
}

func testSnapshot(t *testing.T, d *db.DB) {
	ctx := context.Background()
	svc, err := placement.New(service.Deps{DB: d}, placement.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pl := &countingPlacement{Service: svc}
	hosts := seed(t, svc, 4, 2)
	cons := uuids(20)
	next := 0
	consumer := func() []string { next++; return cons[next-1 : next] }
	fresh := New(pl, Config{Snapshot: SnapshotConfig{MaxAge: time.Nanosecond}}, nil)
	stale := New(pl, Config{Snapshot: SnapshotConfig{MaxAge: time.Hour, FullEvery: time.Hour}}, nil)
	one := &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 1}}
	for _, s := range []*Scheduler{fresh, stale} {
		if _, err := s.Schedule(ctx, hosts, one, 1, claimer(svc, consumer())); err != nil {
			t.Fatal(err)
		}
	}
	if n := pl.asked.Load(); n != 0 {
		t.Fatalf("placement asked %d times", n)
	}

	// Another writer adds a trait: the fresh snapshot sees it.
	if _, _, err := svc.EnsureTraits(ctx, []string{"CUSTOM_X"}); err != nil {
		t.Fatal(err)
	}
	p, _ := svc.Provider(ctx, hosts[3].Provider)
	if _, err := svc.SetTraits(ctx, p.UUID, p.Generation, []string{"CUSTOM_X"}); err != nil {
		t.Fatal(err)
	}
	sel, err := fresh.Schedule(ctx, hosts, &Spec{ProjectID: "p", Resources: one.Resources, RequiredTraits: []string{"CUSTOM_X"}}, 1, claimer(svc, consumer()))
	if err != nil || sel[0].Host.Host != "h00003" || pl.asked.Load() != 0 {
		t.Fatalf("required trait: %v %v, asked %d", sel, err, pl.asked.Load())
	}

	// h00000 (fresh), h00001 (stale) and h00003 (fresh) have one VCPU
	// used. Another writer fills h00002: the stale snapshot still sees
	// two free on h00002 and h00003, the claims are refused, and the
	// decision ends on no valid host, never over capacity.
	if err := svc.Claim(ctx, placement.ConsumerAllocations{Consumer: "40000000-0000-4000-8000-000000000000", ProjectID: "p", UserID: "u",
		Allocations: map[string]map[string]int64{hosts[2].Provider: {"VCPU": 2}}}, nil); err != nil {
		t.Fatal(err)
	}
	two := &Spec{ProjectID: "p", Resources: map[string]int64{"VCPU": 2}}
	_, err = stale.Schedule(ctx, hosts, two, 1, claimer(svc, consumer()))
	if !errors.Is(err, ErrNoValidHost) {
		t.Fatalf("no host has 2 VCPU free: %v", err)
	}
	for _, h := range hosts {
		invs, _ := svc.Inventories(ctx, h.Provider)
		if v := invs["VCPU"]; v.Used > v.Capacity() {
			t.Fatalf("%s over-committed: %+v", h.Host, v)
		}
	}
	// The refused hosts were read again: one VCPU left on h00000,
	// h00001 and h00003, and the snapshot knows it without asking.
	asked := pl.asked.Load()
	c3 := []string{consumer()[0], consumer()[0], consumer()[0]}
	sel, err = stale.Schedule(ctx, hosts, one, 3, claimer(svc, c3))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range sel {
		got = append(got, x.Host.Host)
	}
	if slices.Sort(got); strings.Join(got, ",") != "h00000,h00001,h00003" {
		t.Fatalf("after refusals: %v", got)
	}
	if pl.asked.Load() != asked {
		t.Fatalf("placement asked again")
	}

	// A nested tree: placement answers.
	if _, err := svc.CreateProvider(ctx, "50000000-0000-4000-8000-000000000000", "child", hosts[0].Provider); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAllocations(ctx, cons[0]); err != nil {
		t.Fatal(err)
	}
	asked = pl.asked.Load()
	if sel, err := fresh.Schedule(ctx, hosts, one, 1, claimer(svc, consumer())); err != nil || sel[0].Host.Host != "h00000" {
		t.Fatalf("nested: %v %v", sel, err)
	}
	if pl.asked.Load() == asked {
		t.Fatalf("nested tree answered from the snapshot")
	}
	// An unknown forbidden trait: placement's 400.
	_, err = fresh.Schedule(ctx, hosts, &Spec{ProjectID: "p", Resources: one.Resources, ForbiddenTraits: []string{"CUSTOM_NOPE"}}, 1, claimer(svc, consumer()))
	if !errors.Is(err, placement.ErrInvalid) {
		t.Fatalf("unknown trait: %v", err)
	}
}

// TestChooseTopK: with many hosts the best ones come first in the exact
// order a full sort by weight gives.
func TestChooseTopK(t *testing.T) {
	got, err := New(nil, Config{}, nil).Choose(manyHosts(500), &Spec{ProjectID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 490 { // every 50th host is down
		t.Fatalf("%d hosts passed", len(got))
	}
	norm := func(f func(h *Host) int64) map[*Host]float64 {
		lo, hi := f(got[0]), f(got[0])
		for _, h := range got {
			lo, hi = min(lo, f(h)), max(hi, f(h))
		}
		out := map[*Host]float64{}
		for _, h := range got {
			out[h] = float64(f(h)-lo) / float64(hi-lo)
		}
		return out
	}
	ram := norm(func(h *Host) int64 { return h.Free["MEMORY_MB"] })
	cpu := norm(func(h *Host) int64 { return h.Free["VCPU"] })
	disk := norm(func(h *Host) int64 { return h.Free["DISK_GB"] })
	ref := append([]*Host(nil), got...)
	w := func(h *Host) float64 { return ram[h] + cpu[h] + disk[h] }
	slices.SortFunc(ref, func(a, b *Host) int {
		if w(a) != w(b) {
			if w(a) > w(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Host, b.Host)
	})
	for i := 0; i < 16; i++ {
		if got[i] != ref[i] {
			t.Fatalf("position %d: %s, want %s", i, got[i].Host, ref[i].Host)
		}
	}
}
