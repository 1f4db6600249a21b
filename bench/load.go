package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// client sends requests to one server over kept-alive connections.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends one request, reads the whole answer and checks its status.
func (c *client) do(ctx context.Context, method, path string, body []byte, hdr map[string]string, want int) (http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != want {
		return nil, nil, fmt.Errorf("%s %s: status %d, want %d: %.200s", method, path, resp.StatusCode, want, b)
	}
	return resp.Header, b, nil
}

// fixture is what the scenarios share: request bodies and tokens.
type fixture struct {
	passwordAuth []byte
	adminToken   string
	tokens       []string // distinct project-scoped tokens
}

func passwordAuth(password string) []byte {
	b, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}, "password": password},
		}},
		"scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}},
	}})
	return b
}

func tokenAuth(token string) []byte {
	b, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": token}},
		"scope":    map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}},
	}})
	return b
}

// prepare logs in once with the password and derives n more tokens by
// rescoping (cheap: no password hash), so validation sees n distinct
// tokens.
func prepare(ctx context.Context, c *client, password string, n int) (*fixture, error) {
	fx := &fixture{passwordAuth: passwordAuth(password)}
	h, _, err := c.do(ctx, "POST", "/v3/auth/tokens", fx.passwordAuth, nil, http.StatusCreated)
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	fx.adminToken = h.Get("X-Subject-Token")
	for range n {
		h, _, err := c.do(ctx, "POST", "/v3/auth/tokens?nocatalog", tokenAuth(fx.adminToken), nil, http.StatusCreated)
		if err != nil {
			return nil, fmt.Errorf("rescope: %w", err)
		}
		fx.tokens = append(fx.tokens, h.Get("X-Subject-Token"))
	}
	return fx, nil
}

// scenario is one kind of request; i numbers the requests of a worker.
type scenario struct {
	issue bool // bcrypt or token issue: fewer workers by default
	req   func(ctx context.Context, c *client, fx *fixture, i int) error
}

var scenarios = map[string]scenario{
	"issue-password": {issue: true, req: func(ctx context.Context, c *client, fx *fixture, _ int) error {
		_, _, err := c.do(ctx, "POST", "/v3/auth/tokens", fx.passwordAuth, nil, http.StatusCreated)
		return err
	}},
	"issue-token": {issue: true, req: func(ctx context.Context, c *client, fx *fixture, i int) error {
		_, _, err := c.do(ctx, "POST", "/v3/auth/tokens", tokenAuth(fx.tokens[i%len(fx.tokens)]), nil, http.StatusCreated)
		return err
	}},
	"validate": {req: func(ctx context.Context, c *client, fx *fixture, i int) error {
		_, _, err := c.do(ctx, "GET", "/v3/auth/tokens", nil, map[string]string{
			"X-Auth-Token": fx.adminToken, "X-Subject-Token": fx.tokens[i%len(fx.tokens)],
		}, http.StatusOK)
		return err
	}},
	"validate-nocatalog": {req: func(ctx context.Context, c *client, fx *fixture, i int) error {
		_, _, err := c.do(ctx, "GET", "/v3/auth/tokens?nocatalog", nil, map[string]string{
			"X-Auth-Token": fx.adminToken, "X-Subject-Token": fx.tokens[i%len(fx.tokens)],
		}, http.StatusOK)
		return err
	}},
	"check": {req: func(ctx context.Context, c *client, fx *fixture, i int) error {
		_, _, err := c.do(ctx, "HEAD", "/v3/auth/tokens", nil, map[string]string{
			"X-Auth-Token": fx.adminToken, "X-Subject-Token": fx.tokens[i%len(fx.tokens)],
		}, http.StatusOK)
		return err
	}},
	"catalog": {req: func(ctx context.Context, c *client, fx *fixture, i int) error {
		_, _, err := c.do(ctx, "GET", "/v3/auth/catalog", nil, map[string]string{
			"X-Auth-Token": fx.tokens[i%len(fx.tokens)],
		}, http.StatusOK)
		return err
	}},
}

// result is one scenario's measurements.
type result struct {
	lat        []time.Duration // successful requests, sorted
	errors     int64
	firstErr   string
	wall       time.Duration
	serverCPU  time.Duration
	loadgenCPU time.Duration
	otherCPU   time.Duration // every other process on the machine
}

// measure runs sc with workers for warmup (discarded) and then d.
func measure(ctx context.Context, c *client, fx *fixture, sc scenario, workers int, warmup, d time.Duration, serverPID int) (*result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var measuring atomic.Bool
	var errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := w; ctx.Err() == nil; i += workers {
				start := time.Now()
				err := sc.req(ctx, c, fx, i)
				took := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, took)
			}
			lats[w] = mine
		}()
	}
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
	}
	srv0, gen0, all0 := cpuTime(serverPID), selfCPU(), machineBusy()
	start := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	measuring.Store(false)
	wall := time.Since(start)
	srv1, gen1, all1 := cpuTime(serverPID), selfCPU(), machineBusy()
	cancel()
	wg.Wait()
	r := &result{errors: errs.Load(), wall: wall, serverCPU: srv1 - srv0, loadgenCPU: gen1 - gen0}
	if all1 > all0 && serverPID != 0 {
		r.otherCPU = max(0, (all1-all0)-r.serverCPU-r.loadgenCPU)
	}
	if s, ok := firstErr.Load().(string); ok {
		r.firstErr = s
	}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	slices.Sort(r.lat)
	return r, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(p*float64(len(r.lat)-1))]
}

func (r *result) row(name string, workers int) string {
	n := len(r.lat)
	rate := float64(n) / r.wall.Seconds()
	var maxLat time.Duration
	if n > 0 {
		maxLat = r.lat[n-1]
	}
	cores := func(d time.Duration) string {
		if d <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", d.Seconds()/r.wall.Seconds())
	}
	perReq := "–"
	if r.serverCPU > 0 && n > 0 {
		perReq = fmt.Sprintf("%.0f µs", float64(r.serverCPU)/float64(n)/float64(time.Microsecond))
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |",
		name, workers, n, r.errors, rate, ms(r.pct(.50)), ms(r.pct(.95)), ms(r.pct(.99)), ms(maxLat),
		perReq, cores(r.serverCPU), cores(r.loadgenCPU), cores(r.otherCPU))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
