// Command bench measures Kumo's token issue and validation over HTTP
// against the real binary: it builds (or takes) `kumo`, starts
// `kumo serve` on a throwaway data directory, and runs each scenario with
// a fixed number of concurrent workers for a fixed time, reporting
// throughput and latency percentiles as a Markdown table.
//
//	go run ./bench                               # every scenario, defaults
//	go run ./bench -duration 20s -workers 64 -scenarios validate,catalog
//	go run ./bench -server-args=--log-level=warn # without the access log
//	go run ./bench -url http://127.0.0.1:5000 -password …   # a running server
//
// Scenarios:
//
//	issue-password  POST /v3/auth/tokens, password method, project scope
//	issue-token     POST /v3/auth/tokens, token method (rescope), no bcrypt
//	validate        GET /v3/auth/tokens with X-Auth-Token and X-Subject-Token
//	validate-nocatalog  the same with ?nocatalog (a smaller body)
//	check           HEAD /v3/auth/tokens (validation without a body)
//	catalog         GET /v3/auth/catalog, an authenticated API call
//
// The load generator and the server run on the same machine and compete
// for its cores; the report shows how much CPU each used.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type flags struct {
	kumo, url, password string
	serverArgs          string
	scenarios           string
	duration, warmup    time.Duration
	workers             int
	issueWorkers        int
	tokens              int
	keepLog             bool
	repeat              int
}

func run() error {
	var f flags
	flag.StringVar(&f.kumo, "kumo", "", "kumo binary (default: go build ./cmd/kumo into a temporary directory)")
	flag.StringVar(&f.url, "url", "", "benchmark a running server at this root URL instead of starting one")
	flag.StringVar(&f.password, "password", "", "admin password of the server given by -url")
	flag.StringVar(&f.serverArgs, "server-args", "", "extra `kumo serve` flags, space separated (e.g. --log-level=warn)")
	flag.StringVar(&f.scenarios, "scenarios", "issue-password,issue-token,validate,validate-nocatalog,check,catalog", "comma-separated scenarios to run")
	flag.DurationVar(&f.duration, "duration", 10*time.Second, "measured time per scenario")
	flag.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured time before each scenario")
	flag.IntVar(&f.workers, "workers", 32, "concurrent workers for validation scenarios")
	flag.IntVar(&f.issueWorkers, "issue-workers", 8, "concurrent workers for issue scenarios")
	flag.IntVar(&f.tokens, "tokens", 64, "distinct tokens the validation scenarios cycle through")
	flag.BoolVar(&f.keepLog, "keep", false, "keep the server's data directory and log")
	flag.IntVar(&f.repeat, "repeat", 1, "run each scenario this many times (rows for each run)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var srv *server
	target, password := f.url, f.password
	if target == "" {
		var err error
		srv, err = startServer(ctx, f.kumo, strings.Fields(f.serverArgs))
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.stop(f.keepLog); err != nil {
				fmt.Fprintln(os.Stderr, "bench: stop server:", err)
			}
		}()
		target, password = srv.url, srv.password
	} else if password == "" {
		return fmt.Errorf("-url needs -password")
	}
	target = strings.TrimRight(target, "/")

	c := newClient(target, max(f.workers, f.issueWorkers))
	fx, err := prepare(ctx, c, password, f.tokens)
	if err != nil {
		return err
	}

	fmt.Printf("kumo token benchmark — %s, %s/%s, %d CPUs, GOMAXPROCS %d (load generator)\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("target %s; server args %q; %v per scenario after %v warm-up\n\n", target, f.serverArgs, f.duration, f.warmup)
	fmt.Println("| scenario | workers | requests | errors | req/s | p50 | p95 | p99 | max | server CPU/req | server CPU | loadgen CPU | other CPU |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var names []string
	for _, name := range strings.Split(f.scenarios, ",") {
		for range max(f.repeat, 1) {
			names = append(names, strings.TrimSpace(name))
		}
	}
	for _, name := range names {
		sc, ok := scenarios[name]
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		workers := f.workers
		if sc.issue {
			workers = f.issueWorkers
		}
		var pid int
		if srv != nil {
			pid = srv.pid()
		}
		res, err := measure(ctx, c, fx, sc, workers, f.warmup, f.duration, pid)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if srv != nil {
			if err := srv.exitErr(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		fmt.Println(res.row(name, workers))
		if res.firstErr != "" {
			fmt.Fprintf(os.Stderr, "bench: %s: first error: %s\n", name, res.firstErr)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Println()
	fmt.Println("server CPU/req: server CPU time per successful request. CPU columns: cores used on average")
	fmt.Println("(user+system time / wall time) during the measured period by the server, by this load generator,")
	fmt.Println("and by every other process on the machine (from /proc/stat).")
	return nil
}
