package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// line is a one-line summary of a result for progress output.
func (r *Result) line() string {
	return fmt.Sprintf("%s: %d ops, %d errors, %.1f/s, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, %.1f queries/op, server %.2f cores, RSS %.0f MB",
		r.Name, r.Ops, r.Errors, r.OpsPerSecond, r.P50ms, r.P95ms, r.P99ms, r.DBQueriesPerOp, r.ServerCPUCores, r.ServerRSSMB)
}

// WriteJSON writes the report to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// WriteSummary writes the report as Markdown: a table of the phases,
// their extra figures and the targets.
func (rep *Report) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "kumo bench %s — %s, %s/%s, %d CPUs (%s), %s; server %s (%s)\n\n", rep.Scenario,
		rep.Started.Format("2006-01-02 15:04 UTC"), rep.Machine.OS, rep.Machine.Arch, rep.Machine.CPUs, rep.Machine.CPUModel,
		rep.Machine.GoVersion, rep.Server.URL, orDash(rep.Server.Database))
	fmt.Fprintln(w, "| phase | params | ops | errors | ops/s | p50 | p95 | p99 | max | queries/op | server CPU/op | server cores | server RSS (peak) | loadgen cores | other cores |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %.1f | %s | %.2f | %.0f (%.0f) MB | %.2f | %.2f |\n",
			r.Name, params(r.Params), r.Ops, r.Errors, num(r.OpsPerSecond), msStr(r.P50ms), msStr(r.P95ms), msStr(r.P99ms), msStr(r.MaxMs),
			r.DBQueriesPerOp, msStr(r.ServerCPUPerOpMs), r.ServerCPUCores, r.ServerRSSMB, r.ServerPeakRSSMB, r.LoadgenCPUCores, r.OtherCPUCores)
	}
	var extras, targets, notes []string
	for _, r := range rep.Results {
		if len(r.Extra) > 0 {
			keys := make([]string, 0, len(r.Extra))
			for k := range r.Extra {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var kv []string
			for _, k := range keys {
				kv = append(kv, fmt.Sprintf("%s %s", k, num(r.Extra[k])))
			}
			extras = append(extras, fmt.Sprintf("- %s: %s", r.Name, strings.Join(kv, ", ")))
		}
		for _, t := range r.Targets {
			cmp, verdict := "≤", "met"
			if t.AtLeast {
				cmp = "≥"
			}
			if !t.Met {
				verdict = "**missed**"
			}
			targets = append(targets, fmt.Sprintf("- %s %s: %s %s (target %s %s %s): %s", r.Name, t.Name, num(t.Value), t.Unit, cmp, num(t.Limit), t.Unit, verdict))
		}
		if r.FirstError != "" {
			notes = append(notes, fmt.Sprintf("- %s: first error: %s", r.Name, r.FirstError))
		}
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", r.Name, r.Note))
		}
	}
	for _, sec := range []struct {
		title string
		lines []string
	}{{"Other figures", extras}, {"Targets", targets}, {"Notes", notes}} {
		if len(sec.lines) > 0 {
			fmt.Fprintf(w, "\n%s:\n\n%s\n", sec.title, strings.Join(sec.lines, "\n"))
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func params(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(out, " ")
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func msStr(v float64) string {
	if v == 0 {
		return "–"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}
