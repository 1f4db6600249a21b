package bench

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
)

// scraped are the /metrics series the benchmark reads (unlabelled ones).
var scraped = map[string]bool{
	"kumo_db_queries_total":         true,
	"kumo_db_transactions_total":    true,
	"process_cpu_seconds_total":     true,
	"process_resident_memory_bytes": true,
}

// scrape reads the server's /metrics (Prometheus text format).
func (e *env) scrape(ctx context.Context) (map[string]float64, error) {
	_, b, err := e.c.do(ctx, "GET", e.c.base+"/metrics", nil, map[string]string{"X-Auth-Token": ""}, http.StatusOK)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || !scraped[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
