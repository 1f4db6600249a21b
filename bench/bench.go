// Package bench measures a running Kumo through its public APIs: `kumo
// bench <scenario>` (cmd/kumo/bench.go) calls Run. By default the
// benchmark starts its own `kumo serve` on a throwaway data directory
// (SQLite, or PostgreSQL with a DSN) and a free port; with Options.URL it
// drives an existing one as the admin named by the OS_* variables.
//
// Every scenario reports, per measured phase: operations, errors,
// throughput, latency percentiles (p50/p95/p99/max), SQL statements per
// operation (the server's kumo_db_queries_total on /metrics), and the
// server process's CPU (cores and time per operation) and resident
// memory (now and peak). The results are a Report, written as JSON and
// as a Markdown summary; Plot turns reports into an SVG chart of latency
// against population.
//
// Scenarios (see Scenarios for the parameters each uses):
//
//	token            issue (password, token) and validate tokens
//	boot-delete      boot then delete servers with the fake driver
//	server-list      GET /servers/detail?limit=1000 at given populations
//	port-create      POST /v2.0/ports on one network
//	sg-rule-create   POST /v2.0/security-group-rules in one group
//	alloc-candidates GET /allocation_candidates at a provider count
//	image            upload and download an image of a given size
//	idle             CPU and RSS of an idle all-in-one kumo serve
//	scale            1,000 fake compute hosts as real agents on the bus
//
// The load generator runs on the same machine as the server unless
// Options.URL points elsewhere; the report shows the CPU of both and of
// everything else on the machine, so that a noisy run can be told apart.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a run; zero values get the defaults of each scenario.
type Options struct {
	// Kumo is the kumo binary to start (default: go build ./cmd/kumo).
	Kumo string
	// ServerArgs are extra `kumo serve` flags.
	ServerArgs []string
	// DSN selects PostgreSQL for the started server (a fresh database is
	// not created: use an empty one).
	DSN string
	// URL drives an existing server as Credentials instead of starting
	// one; NATSURL is its bus, for the scale scenario.
	URL         string
	NATSURL     string
	Credentials Credentials

	// Concurrency is the number of concurrent clients (scenario default
	// when 0); Duration the measured time of time-bound phases, Warmup
	// the unmeasured time before them; Count the operations of
	// count-bound phases (boot-delete).
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	Count       int
	// Populations are the server counts of server-list (default 1,000
	// and 10,000); Populate is how they are made: "db" (rows inserted
	// straight into the database: fast, labelled so in the report) or
	// "api" (multi-create with the fake driver).
	Populations []int
	Populate    string
	// Providers is the resource provider count of alloc-candidates.
	Providers int
	// ImageSize is the image scenario's size in bytes (default 1 GiB).
	ImageSize int64
	// Hosts is the number of simulated hosts of the scale scenario.
	Hosts int

	// Progress receives progress lines (default os.Stderr).
	Progress io.Writer
}

// Report is the outcome of one `kumo bench` run.
type Report struct {
	Scenario string     `json:"scenario"`
	Started  time.Time  `json:"started"`
	Machine  Machine    `json:"machine"`
	Server   ServerInfo `json:"server"`
	Results  []*Result  `json:"results"`
}

// Machine describes where the run happened.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel,omitempty"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
}

// ServerInfo describes the server measured.
type ServerInfo struct {
	URL      string `json:"url"`
	Started  bool   `json:"started_by_bench"`
	Database string `json:"database"` // sqlite or postgres
	PID      int    `json:"pid,omitempty"`
}

// Result is one measured phase.
type Result struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`

	Ops          int     `json:"ops"`
	Errors       int     `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	Seconds      float64 `json:"seconds"`
	OpsPerSecond float64 `json:"ops_per_second"`
	P50ms        float64 `json:"p50_ms"`
	P95ms        float64 `json:"p95_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	MeanMs       float64 `json:"mean_ms"`

	// DBQueriesPerOp is the server's SQL statements per operation
	// (everything it ran during the phase, background work included).
	DBQueriesPerOp float64 `json:"db_queries_per_op"`
	// ServerCPUCores is the server's CPU time over the phase's wall time;
	// ServerCPUPerOpMs its CPU time per operation.
	ServerCPUCores   float64 `json:"server_cpu_cores"`
	ServerCPUPerOpMs float64 `json:"server_cpu_per_op_ms"`
	ServerRSSMB      float64 `json:"server_rss_mb"`
	ServerPeakRSSMB  float64 `json:"server_peak_rss_mb"`
	// LoadgenCPUCores and OtherCPUCores are this process and every other
	// process on the machine (0 when unknown).
	LoadgenCPUCores float64 `json:"loadgen_cpu_cores"`
	OtherCPUCores   float64 `json:"other_cpu_cores"`

	// Extra holds scenario-specific figures (MiB/s, agents' RSS, ...).
	Extra map[string]float64 `json:"extra,omitempty"`
	// Targets are the project's goals for this phase and whether they
	// were met.
	Targets []Target `json:"targets,omitempty"`
	// Note says what is special about the phase (e.g. "population seeded
	// straight into the database").
	Note string `json:"note,omitempty"`

	lat []time.Duration
}

// Target is one goal checked against a measured figure.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	// AtLeast: the value must be ≥ Limit; otherwise ≤ Limit.
	AtLeast bool `json:"at_least,omitempty"`
	Met     bool `json:"met"`
}

func (r *Result) target(name string, value, limit float64, unit string, atLeast bool) {
	met := value <= limit
	if atLeast {
		met = value >= limit
	}
	r.Targets = append(r.Targets, Target{Name: name, Value: value, Limit: limit, Unit: unit, AtLeast: atLeast, Met: met})
}

func (r *Result) extra(k string, v float64) {
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra[k] = v
}

// env is what a scenario works with.
type env struct {
	opts     Options
	c        *client
	srv      *server // nil when driving an existing server
	progress io.Writer
	report   *Report
}

// scenario runs one benchmark and appends results to the report.
type scenario struct {
	help string
	// needs of the server the bench starts
	natsListen bool
	hosts      func(o Options) int
	run        func(ctx context.Context, e *env) error
}

// Scenarios lists the scenario names with a one-line help.
func Scenarios() map[string]string {
	out := map[string]string{}
	for k, s := range scenarios {
		out[k] = s.help
	}
	return out
}

var scenarios = map[string]scenario{}

// Run runs one scenario and returns its report.
func Run(ctx context.Context, name string, o Options) (*Report, error) {
	sc, ok := scenarios[name]
	if !ok {
		names := make([]string, 0, len(scenarios))
		for k := range scenarios {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(names, ", "))
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	e := &env{opts: o, progress: o.Progress, report: &Report{Scenario: name, Started: time.Now().UTC(), Machine: machine()}}
	base, creds := o.URL, o.Credentials
	if base == "" {
		hosts := 0
		if sc.hosts != nil {
			hosts = sc.hosts(o)
		}
		srv, err := startServer(ctx, serverConfig{bin: o.Kumo, extra: o.ServerArgs, dsn: o.DSN, natsListen: sc.natsListen, hosts: hosts}, o.Progress)
		if err != nil {
			return nil, err
		}
		e.srv = srv
		defer func() {
			if err := srv.stop(false); err != nil {
				fmt.Fprintln(o.Progress, "bench: stop server:", err)
			}
		}()
		base = srv.url
		creds = Credentials{Username: "admin", Password: srv.password, Project: "admin", UserDomain: "Default", ProjectDomain: "Default"}
		e.report.Server = ServerInfo{URL: base, Started: true, PID: srv.pid(), Database: "sqlite"}
		if o.DSN != "" {
			e.report.Server.Database = "postgres"
		}
	} else {
		if creds.Username == "" || creds.Password == "" || creds.Project == "" {
			return nil, errors.New("--url needs OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME of an admin")
		}
		e.report.Server = ServerInfo{URL: base}
	}
	c, err := login(ctx, base, creds, max(o.Concurrency, 64))
	if err != nil {
		return nil, err
	}
	e.c = c
	err = sc.run(ctx, e)
	if e.srv != nil {
		if xerr := e.srv.exitErr(); xerr != nil {
			err = errors.Join(err, xerr)
		}
	}
	return e.report, err
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "bench: "+format+"\n", args...)
}

func (e *env) conc(def int) int {
	if e.opts.Concurrency > 0 {
		return e.opts.Concurrency
	}
	return def
}

func (e *env) duration(def time.Duration) time.Duration {
	if e.opts.Duration > 0 {
		return e.opts.Duration
	}
	return def
}

func (e *env) warmup(def time.Duration) time.Duration {
	if e.opts.Warmup > 0 {
		return e.opts.Warmup
	}
	return def
}

// ---- measuring ----

// snapshot is the server's counters at one moment.
type snapshot struct {
	at      time.Time
	queries float64
	cpu     time.Duration // server
	self    time.Duration // load generator
	busy    time.Duration // whole machine
	rss     int64
}

func (e *env) snap(ctx context.Context) snapshot {
	s := snapshot{at: time.Now(), self: readProc(0).CPU, busy: machineBusy()}
	m, err := e.scrape(ctx)
	if err == nil {
		s.queries = m["kumo_db_queries_total"]
		s.cpu = time.Duration(m["process_cpu_seconds_total"] * float64(time.Second))
		s.rss = int64(m["process_resident_memory_bytes"])
	}
	if e.srv != nil {
		p := readProc(e.srv.pid())
		s.cpu, s.rss = p.CPU, p.RSS
	}
	return s
}

// phase measures the server around some work.
type phase struct {
	e      *env
	s0     snapshot
	peak   atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	local  bool
	result *Result
}

// begin starts measuring: counters now, and peak RSS from here on.
func (e *env) begin(ctx context.Context, name string, params map[string]any) *phase {
	p := &phase{e: e, stop: make(chan struct{}), done: make(chan struct{}), result: &Result{Name: name, Params: params}}
	if e.srv != nil {
		p.local = resetPeak(e.srv.pid())
	}
	p.s0 = e.snap(ctx)
	p.peak.Store(p.s0.rss)
	go func() {
		defer close(p.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if rss := e.snap(ctx).rss; rss > p.peak.Load() {
					p.peak.Store(rss)
				}
			}
		}
	}()
	return p
}

// end stops measuring and fills the result from lat (latencies of
// successful operations), ops (their count, when not len(lat)) and errors.
func (p *phase) end(ctx context.Context, lat []time.Duration, errs int, firstErr string) *Result {
	close(p.stop)
	<-p.done
	s1 := p.e.snap(ctx)
	r := p.result
	wall := s1.at.Sub(p.s0.at)
	slices.Sort(lat)
	r.lat = lat
	r.Ops, r.Errors, r.FirstError = len(lat), errs, firstErr
	r.Seconds = wall.Seconds()
	if wall > 0 {
		r.OpsPerSecond = float64(r.Ops) / wall.Seconds()
		r.ServerCPUCores = (s1.cpu - p.s0.cpu).Seconds() / wall.Seconds()
		r.LoadgenCPUCores = (s1.self - p.s0.self).Seconds() / wall.Seconds()
		if p.e.srv != nil && s1.busy > p.s0.busy {
			other := (s1.busy - p.s0.busy) - (s1.cpu - p.s0.cpu) - (s1.self - p.s0.self)
			r.OtherCPUCores = max(0, other.Seconds()/wall.Seconds())
		}
	}
	if r.Ops > 0 {
		r.DBQueriesPerOp = (s1.queries - p.s0.queries) / float64(r.Ops)
		r.ServerCPUPerOpMs = float64(s1.cpu-p.s0.cpu) / float64(time.Millisecond) / float64(r.Ops)
		r.P50ms, r.P95ms, r.P99ms = msf(pct(lat, .50)), msf(pct(lat, .95)), msf(pct(lat, .99))
		r.MaxMs = msf(lat[len(lat)-1])
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		r.MeanMs = msf(sum / time.Duration(len(lat)))
	}
	r.ServerRSSMB = mb(s1.rss)
	peak := max(p.peak.Load(), s1.rss)
	if p.local {
		peak = max(peak, readProc(p.e.srv.pid()).PeakRSS)
	}
	r.ServerPeakRSSMB = mb(peak)
	p.e.report.Results = append(p.e.report.Results, r)
	return r
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[int(p*float64(len(lat)-1)+0.5)]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64          { return float64(b) / (1 << 20) }

// op is one operation of a load: it returns its own latency when it
// measures something other than its whole duration (0: the whole call).
type op func(ctx context.Context, worker, i int) (time.Duration, error)

// load runs op with conc workers, either count times in all (count > 0)
// or for warmup (discarded) and then d, and returns the latencies of
// successful operations and the failures. Progress is reported every
// few seconds.
func (e *env) load(ctx context.Context, label string, conc, count int, warmup, d time.Duration, fn op) ([]time.Duration, int, string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		measuring atomic.Bool
		next      atomic.Int64
		done      atomic.Int64
		errs      atomic.Int64
		firstErr  atomic.Value
		mu        sync.Mutex
		lats      []time.Duration
		wg        sync.WaitGroup
	)
	measuring.Store(count > 0 || warmup == 0)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if count > 0 && i >= count {
					return
				}
				start := time.Now()
				took, err := fn(ctx, w, i)
				if took == 0 {
					took = time.Since(start)
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				done.Add(1)
				mine = append(mine, took)
			}
		}()
	}
	stopProgress := e.progressTicker(label, count, d, &done, &errs)
	defer stopProgress()
	if count > 0 {
		wg.Wait()
	} else {
		if warmup > 0 {
			select {
			case <-time.After(warmup):
			case <-ctx.Done():
			}
			measuring.Store(true)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		measuring.Store(false)
		cancel()
		wg.Wait()
	}
	fe, _ := firstErr.Load().(string)
	return lats, int(errs.Load()), fe
}

// progressTicker prints "label: n/N ops" lines every 5 s until stopped.
func (e *env) progressTicker(label string, count int, d time.Duration, done, errs *atomic.Int64) func() {
	stop := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := done.Load()
				rate := float64(n) / time.Since(start).Seconds()
				if count > 0 {
					e.logf("%s: %d/%d done (%.0f/s), %d errors", label, n, count, rate, errs.Load())
				} else {
					e.logf("%s: %.0fs of %.0fs (incl. warm-up), %d done, %d errors", label, time.Since(start).Seconds(), d.Seconds(), n, errs.Load())
				}
			}
		}
	}()
	return func() { close(stop) }
}

func sortDur(d []time.Duration) { slices.Sort(d) }
