package bench

import (
	"context"
	"time"
)

func init() {
	scenarios["idle"] = scenario{
		help: "an idle all-in-one kumo serve: CPU and RSS over --duration (default 20s) after 5s of settling",
		run:  runIdle,
	}
}

func runIdle(ctx context.Context, e *env) error {
	select {
	case <-time.After(e.warmup(5 * time.Second)):
	case <-ctx.Done():
		return ctx.Err()
	}
	p := e.begin(ctx, "idle", nil)
	select {
	case <-time.After(e.duration(20 * time.Second)):
	case <-ctx.Done():
		return ctx.Err()
	}
	r := p.end(ctx, nil, 0, "")
	r.target("RSS", r.ServerRSSMB, 100, "MB", false)
	r.target("CPU", r.ServerCPUCores*100, 10, "% of a core", false)
	e.logf("%s", r.line())
	return nil
}
