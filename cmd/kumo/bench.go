package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-cloud/kumo/bench"
)

// benchCmd is `kumo bench SCENARIO`: the benchmark suite of package
// bench, and `kumo bench plot` to chart its results.
func benchCmd() *cobra.Command {
	var (
		o        bench.Options
		jsonPath string
	)
	names := bench.Scenarios()
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var help strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&help, "  %-17s %s\n", k, names[k])
	}
	cmd := &cobra.Command{
		Use:   "bench SCENARIO",
		Short: "Measure a Kumo through its public APIs (throughput, latency, DB queries, CPU, RSS)",
		Long: `Run one benchmark scenario. Without --url it starts its own kumo serve (this
binary) on a throwaway data directory (SQLite, or PostgreSQL with --db-dsn)
and a free port; with --url it drives that server as the admin named by
OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (and OS_*_DOMAIN_NAME). It prints a
Markdown summary and writes every figure as JSON (--json).

Scenarios:
` + help.String(),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.URL == "" && o.Kumo == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				o.Kumo = exe
			}
			if o.URL != "" {
				o.Credentials = bench.CredentialsFromEnv()
			}
			rep, err := bench.Run(cmd.Context(), args[0], o)
			if rep != nil && len(rep.Results) > 0 {
				rep.WriteSummary(cmd.OutOrStdout())
				if jsonPath != "" {
					if werr := rep.WriteJSON(jsonPath); werr != nil {
						return werr
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "bench: results in %s\n", jsonPath)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "benchmark the server at this root URL (credentials from OS_*) instead of starting one")
	f.StringVar(&o.NATSURL, "nats-url", "", "with --url: the server's NATS, for the scale scenario")
	f.StringVar(&o.DSN, "db-dsn", "", "the started server's database: an empty PostgreSQL database's postgres:// DSN (default SQLite)")
	f.StringSliceVar(&o.ServerArgs, "server-args", nil, "extra kumo serve flags (comma separated), e.g. --log-level=warn")
	f.IntVar(&o.Concurrency, "concurrency", 0, "concurrent clients (default: per scenario)")
	f.DurationVar(&o.Duration, "duration", 0, "measured time of time-bound phases (default 10s)")
	f.DurationVar(&o.Warmup, "warmup", 0, "unmeasured time before time-bound phases (default 2s)")
	f.IntVar(&o.Count, "count", 0, "operations of count-bound phases (boot-delete: default 1000)")
	f.IntSliceVar(&o.Populations, "population", nil, "server-list: server counts to measure at (default 1000,10000)")
	f.StringVar(&o.Populate, "populate", "", "server-list: how servers are made: db (rows seeded straight into the database) or api (multi-create, fake driver)")
	f.IntVar(&o.Providers, "providers", 0, "alloc-candidates: resource providers (default 10000)")
	f.Int64Var(&o.ImageSize, "image-size", 0, "image: bytes to upload and download (default 1 GiB)")
	f.IntVar(&o.Hosts, "hosts", 0, "scale: simulated compute hosts (default 1000)")
	f.StringVar(&jsonPath, "json", "", "write the results as JSON to this file")
	cmd.AddCommand(benchPlotCmd())
	return cmd
}

func benchPlotCmd() *cobra.Command {
	var (
		out   string
		title string
	)
	cmd := &cobra.Command{
		Use:   "plot RESULTS.json...",
		Short: "Chart latency against population (server-list results) as SVG",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var reps []*bench.Report
			for _, p := range args {
				r, err := bench.ReadReport(p)
				if err != nil {
					return err
				}
				reps = append(reps, r)
			}
			svg, err := bench.Plot(reps, title)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(svg)
				return err
			}
			return os.WriteFile(out, svg, 0o644)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "SVG file to write (default stdout)")
	cmd.Flags().StringVar(&title, "title", "GET /servers/detail?limit=1000 latency against population", "chart title")
	return cmd
}
