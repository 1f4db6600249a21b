package bench

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"math"
	"sort"
)

// Plot renders the population-bound results of reports (server-list
// phases: Params["population"]) as an SVG line chart of p50, p95 and p99
// latency against population, one set of lines per report (labelled by
// its database), with a logarithmic population axis when the
// populations span more than a factor of ten, and the targets (50 ms
// p50, 200 ms p99) as dashed lines.
func Plot(reps []*Report, title string) ([]byte, error) {
	type point struct{ x, p50, p95, p99 float64 }
	type series struct {
		label string
		pts   []point
	}
	var all []series
	minX, maxX, maxY := math.Inf(1), 0.0, 0.0
	for i, rep := range reps {
		s := series{label: fmt.Sprintf("%s (%s)", rep.Scenario, orDash(rep.Server.Database))}
		if len(reps) > 1 && rep.Server.Database == "" {
			s.label = fmt.Sprintf("run %d", i+1)
		}
		for _, r := range rep.Results {
			pop, ok := r.Params["population"].(float64)
			if !ok {
				if n, ok := r.Params["population"].(int); ok {
					pop = float64(n)
				} else {
					continue
				}
			}
			s.pts = append(s.pts, point{pop, r.P50ms, r.P95ms, r.P99ms})
			minX, maxX = math.Min(minX, pop), math.Max(maxX, pop)
			maxY = math.Max(maxY, r.P99ms)
		}
		sort.Slice(s.pts, func(a, b int) bool { return s.pts[a].x < s.pts[b].x })
		if len(s.pts) > 0 {
			all = append(all, s)
		}
	}
	if len(all) == 0 {
		return nil, errors.New("plot: no results with a population (run kumo bench server-list)")
	}
	const (
		w, h                     = 760, 440
		left, right, top, bottom = 70, 200, 40, 60
	)
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	logX := maxX/minX > 10
	xv := func(x float64) float64 {
		if maxX == minX {
			return float64(left) + pw/2
		}
		if logX {
			return float64(left) + pw*(math.Log10(x)-math.Log10(minX))/(math.Log10(maxX)-math.Log10(minX))
		}
		return float64(left) + pw*(x-minX)/(maxX-minX)
	}
	maxY = niceCeil(math.Max(maxY, 200) * 1.05)
	yv := func(y float64) float64 { return float64(top) + ph*(1-y/maxY) }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	// Axes, grid and ticks.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		y := maxY * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, yv(y), w-right, yv(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yv(y)+4, trimNum(y))
	}
	var xt []float64
	for _, s := range all {
		for _, p := range s.pts {
			xt = append(xt, p.x)
		}
	}
	sort.Float64s(xt)
	last := -1.0
	for _, x := range xt {
		if x == last {
			continue
		}
		last = x
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", xv(x), h-bottom, xv(x), h-bottom+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xv(x), h-bottom+19, thousands(x))
	}
	axis := "servers present"
	if logX {
		axis += " (log scale)"
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", float64(left)+pw/2, h-18, axis)
	fmt.Fprintf(&b, `<text x="18" y="%.1f" text-anchor="middle" transform="rotate(-90 18 %.1f)">latency (ms)</text>`+"\n", float64(top)+ph/2, float64(top)+ph/2)
	// Targets.
	for _, t := range []struct {
		y     float64
		label string
	}{{50, "target p50 ≤ 50 ms"}, {200, "target p99 ≤ 200 ms"}} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c00" stroke-dasharray="6 4"/>`+"\n", left, yv(t.y), w-right, yv(t.y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#c00">%s</text>`+"\n", w-right+6, yv(t.y)+4, t.label)
	}
	// Series: one colour per report, one dash style per percentile.
	colours := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"}
	styles := []struct {
		name string
		dash string
		get  func(p point) float64
	}{{"p50", "", func(p point) float64 { return p.p50 }}, {"p95", "4 3", func(p point) float64 { return p.p95 }},
		{"p99", "1 3", func(p point) float64 { return p.p99 }}}
	ly := top + 70
	for i, s := range all {
		col := colours[i%len(colours)]
		for _, st := range styles {
			var path bytes.Buffer
			for j, p := range s.pts {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, xv(p.x), yv(st.get(p)))
			}
			dash := ""
			if st.dash != "" {
				dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", path.String(), col, dash)
			for _, p := range s.pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s at %s: %.1f ms</title></circle>`+"\n",
					xv(p.x), yv(st.get(p)), col, html.EscapeString(s.label), st.name, thousands(p.x), st.get(p))
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", w-right+6, ly, w-right+36, ly, col, dash)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s %s</text>`+"\n", w-right+40, ly+4, html.EscapeString(s.label), st.name)
			ly += 18
		}
		ly += 6
	}
	b.WriteString("</svg>\n")
	return b.Bytes(), nil
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// thousands renders 100000 as 100,000.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
