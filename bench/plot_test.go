package bench

import (
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlot(t *testing.T) {
	rep := &Report{Scenario: "server-list", Server: ServerInfo{Database: "sqlite"}, Results: []*Result{
		{Name: "server-list", Params: map[string]any{"population": 1000}, P50ms: 20, P95ms: 30, P99ms: 40},
		{Name: "server-list", Params: map[string]any{"population": 100000}, P50ms: 25, P95ms: 35, P99ms: 45},
		{Name: "server-list", Params: map[string]any{"population": 10000}, P50ms: 22, P95ms: 33, P99ms: 44},
		{Name: "idle"},
	}}
	// Through JSON, as kumo bench plot reads it (numbers become float64).
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	svg, err := Plot([]*Report{back}, "t <&>")
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	s := string(svg)
	for _, want := range []string{"100,000", "10,000", "1,000", "(log scale)", "server-list (sqlite) p99", "t &lt;&amp;&gt;", "p50 at 100,000: 25.0 ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if strings.Count(s, "<path") != 3 {
		t.Errorf("want 3 lines (p50, p95, p99), got %d", strings.Count(s, "<path"))
	}
	if _, err := Plot([]*Report{{Scenario: "idle", Results: []*Result{{Name: "idle"}}}}, ""); err == nil {
		t.Error("plot without populations: no error")
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{1: "1", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}
