package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/agent"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

func init() {
	scenarios["scale"] = scenario{
		help:       "--hosts (default 1000) fake compute hosts as real agents on the bus, each with its own NATS connection, service, node and heartbeat, in this process: control-plane CPU and RSS idle, then boot-delete across them (--count, default 500)",
		natsListen: true,
		run:        runScale,
	}
}

// simHost names simulated host i.
func simHost(i int) string { return fmt.Sprintf("sim-%04d", i) }

func runScale(ctx context.Context, e *env) error {
	natsURL := e.opts.NATSURL
	if e.srv != nil {
		natsURL = e.srv.natsURL
	}
	if natsURL == "" {
		return errors.New("scale: --nats-url is needed with --url (the server's NATS, opened with kumo serve --nats-listen)")
	}
	n := e.opts.Hosts
	if n <= 0 {
		n = 1000
	}
	actx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var buses []*bus.Bus
	defer func() {
		stopAgents()
		wg.Wait()
		for _, b := range buses {
			_ = b.Close()
		}
	}()
	log := slog.New(slog.DiscardHandler)
	t0 := time.Now()
	self0 := readProc(0)
	for i := 1; i <= n; i++ {
		host := simHost(i)
		b, err := bus.Open(ctx, bus.Config{URL: natsURL, Name: "kumo-agent@" + host}, log)
		if err != nil {
			return fmt.Errorf("agent %s: bus: %w", host, err)
		}
		buses = append(buses, b)
		a, err := agent.New(b, fake.New(fake.Config{}), nil, agent.Config{Host: host}, log)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(actx) }()
		if i%200 == 0 || i == n {
			e.logf("started %d/%d agents (%.1fs)", i, n, time.Since(t0).Seconds())
		}
	}
	// Every agent registered: its service is listed and up.
	for {
		up, err := e.simHostsUp(ctx)
		if err != nil {
			return err
		}
		e.logf("%d/%d simulated hosts up in os-services (%.1fs)", up, n, time.Since(t0).Seconds())
		if up >= n {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			return fmt.Errorf("only %d of %d hosts registered after 5 minutes", up, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	registered := time.Since(t0)
	// Settle one heartbeat, then measure the idle control plane.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.warmup(10 * time.Second)):
	}
	p := e.begin(ctx, "scale-idle", map[string]any{"hosts": n})
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.duration(30 * time.Second)):
	}
	r := p.end(ctx, nil, 0, "")
	self := readProc(0)
	r.extra("hosts", float64(n))
	r.extra("registration_s", registered.Seconds())
	r.extra("agents_process_rss_mb", mb(self.RSS))
	r.extra("agents_process_cpu_cores", r.LoadgenCPUCores)
	r.extra("total_rss_mb", r.ServerRSSMB+mb(self.RSS))
	r.extra("agents_process_cpu_s_startup", (self.CPU - self0.CPU).Seconds())
	r.Note = "control plane = the kumo serve process (APIs, conductor, embedded NATS with one connection per agent, SQLite); agents = this process (one bus connection, fake driver and heartbeat every 10 s per host)"
	r.target("control-plane CPU", r.ServerCPUCores*100, 10, "% of a core", false)
	r.target("RSS in all", r.ServerRSSMB+mb(self.RSS), 500, "MB", false)
	e.logf("%s", r.line())

	count := e.opts.Count
	if count <= 0 {
		count = 500
	}
	image, err := e.computeSetup(ctx)
	if err != nil {
		return err
	}
	br := e.bootDelete(ctx, "scale-boot-delete", image, e.conc(50), count, map[string]any{"hosts": n})
	br.target("servers/s", br.OpsPerSecond, 100, "/s", true)
	br.target("p95 POST→ACTIVE", br.P95ms, 300, "ms", false)
	return nil
}

// simHostsUp counts simulated hosts whose nova-compute service is up.
func (e *env) simHostsUp(ctx context.Context) (int, error) {
	var out struct {
		Services []struct {
			Host  string `json:"host"`
			State string `json:"state"`
		} `json:"services"`
	}
	if _, err := e.c.doJSON(ctx, "GET", e.c.url("compute", "/os-services?binary=nova-compute"), nil, computeHdr, http.StatusOK, &out); err != nil {
		return 0, err
	}
	up := 0
	for _, s := range out.Services {
		if strings.HasPrefix(s.Host, "sim-") && s.State == "up" {
			up++
		}
	}
	return up, nil
}
