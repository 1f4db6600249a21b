package conductor

import (
	"errors"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/store"
)

func TestSimpleScheduler(t *testing.T) {
	hosts := []HostState{
		{Host: "a", Up: true, VCPUs: 1, MemoryMB: 1000, DiskGB: 10, Used: store.HostUsage{MemoryMB: 1000, Instances: 3}},
		{Host: "b", Up: true, VCPUs: 1, MemoryMB: 1000, DiskGB: 10, Used: store.HostUsage{MemoryMB: 200, Instances: 1}},
		{Host: "c", Up: false, VCPUs: 64, MemoryMB: 99999, DiskGB: 999},
		{Host: "d", Up: true, Disabled: true, VCPUs: 64, MemoryMB: 99999, DiskGB: 999},
	}
	s := Simple{}
	for _, tc := range []struct {
		req  Request
		want string
		err  error
	}{
		{Request{VCPUs: 1, MemoryMB: 100, DiskGB: 1}, "b", nil},                         // least loaded; down and disabled skipped
		{Request{VCPUs: 1, MemoryMB: 100, DiskGB: 1, Exclude: []string{"b"}}, "a", nil}, // RAM ratio 1.5 leaves room on a
		{Request{VCPUs: 1, MemoryMB: 100, DiskGB: 11}, "", ErrNoValidHost},              // disk ratio 1.0
		{Request{VCPUs: 1, MemoryMB: 100, DiskGB: 1, Force: "d"}, "d", nil},             // forced host ignores disabled
		{Request{VCPUs: 1, MemoryMB: 100, DiskGB: 1, Force: "c"}, "", ErrNoValidHost},   // but not down
		{Request{VCPUs: 17, MemoryMB: 1, DiskGB: 1}, "", ErrNoValidHost},                // cpu ratio 16
	} {
		got, err := s.Select(hosts, tc.req)
		if !errors.Is(err, tc.err) || got.Host != tc.want {
			t.Errorf("%+v: got %q %v, want %q %v", tc.req, got.Host, err, tc.want, tc.err)
		}
	}
}

func TestStepsOfEveryKind(t *testing.T) {
	for name, k := range kinds {
		if k.event == "" || k.fail == nil {
			t.Errorf("%s: no event or failure outcome", name)
		}
		seen := map[string]bool{}
		for _, s := range k.steps {
			if s.name == "" || s.run == nil || seen[s.name] {
				t.Errorf("%s: bad step %q", name, s.name)
			}
			seen[s.name] = true
		}
	}
}
