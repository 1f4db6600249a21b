package qemu

import "testing"

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		name, stat string
		want       int64
		ok         bool
	}{
		{"plain", "1234 (qemu-system-x86) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10", 3_000_000_000, true},
		{"command with spaces and parens", "77 (CPU 0/KVM) (x)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1", 100_000_000, true},
		{"truncated", "1 (x) S 1 2 3", 0, false},
		{"no command", "garbage", 0, false},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b 0 0", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseStatCPU(c.stat)
			if got != c.want || ok != c.ok {
				t.Fatalf("got %d %v, want %d %v", got, ok, c.want, c.ok)
			}
		})
	}
}
