package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// baselinePath holds the committed ratios of the ci scenario.
const baselinePath = "testdata/ci-baseline.json"

// TestRegression runs the ci scenario against a freshly built kumo and
// fails when a phase got more than twice as slow relative to the
// reference call, compared with the committed baseline of the same
// sizes. It runs when KUMO_BENCH_CI=1 (.ci/run sets it); with
// KUMO_BENCH_UPDATE=1 it rewrites the baseline instead.
func TestRegression(t *testing.T) {
	if os.Getenv("KUMO_BENCH_CI") == "" && os.Getenv("KUMO_BENCH_UPDATE") == "" {
		t.Skip("benchmark regression run: set KUMO_BENCH_CI=1 (CI does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, "ci", Options{Kumo: os.Getenv("KUMO_BENCH_BINARY"), ServerArgs: []string{"--log-level=warn"}, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ci run took %s", time.Since(start).Round(time.Second))
	for _, r := range rep.Results {
		if r.Errors > 0 || r.Ops == 0 {
			t.Errorf("%s: %d ops, %d errors (first: %s)", r.Name, r.Ops, r.Errors, r.FirstError)
		}
	}
	got := rep.Ratios()
	if os.Getenv("KUMO_BENCH_UPDATE") != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"note":   "server CPU per operation of each phase of `kumo bench ci` divided by that of GET /v3/auth/catalog in the same run; regenerate with KUMO_BENCH_UPDATE=1 go test -run TestRegression ./bench/",
			"ratios": got,
		}, "", "  ")
		if err := os.WriteFile(filepath.FromSlash(baselinePath), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("baseline written: %v", got)
		return
	}
	b, err := os.ReadFile(filepath.FromSlash(baselinePath))
	if err != nil {
		t.Fatal(err)
	}
	var base struct{ Ratios map[string]float64 }
	if err := json.Unmarshal(b, &base); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(base.Ratios))
	for k := range base.Ratios {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		want := base.Ratios[name]
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not measured", name)
		case g > 2*want:
			t.Errorf("%s: %.1f× the reference call, baseline %.1f×: more than twice as slow", name, g, want)
		default:
			t.Logf("%s: %.1f× the reference call (baseline %.1f×)", name, g, want)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func TestRatios(t *testing.T) {
	rep := &Report{Results: []*Result{
		{Name: CIReference, ServerCPUPerOpMs: 1}, {Name: "a", ServerCPUPerOpMs: 6}, {Name: CIReference, ServerCPUPerOpMs: 3}, {Name: "b"},
	}}
	got := rep.Ratios()
	if len(got) != 1 || got["a"] != 3 {
		t.Fatalf("ratios = %v, want a: 3", got)
	}
}
