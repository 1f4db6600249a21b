package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() {
	scenarios["token"] = scenario{
		help: "token issue (password, token rescope) and validation (full, nocatalog, HEAD) and an authenticated catalog call",
		run:  runToken,
	}
}

// tokens derives n project-scoped tokens by rescoping (cheap: no
// password hash), so validation sees n distinct tokens.
func (e *env) tokens(ctx context.Context, n int) ([]string, error) {
	var out []string
	body := mustJSON(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": e.c.token}},
		"scope":    map[string]any{"project": map[string]any{"id": e.c.projectID}},
	}})
	for range n {
		h, _, err := e.c.do(ctx, "POST", e.c.url("", "/v3/auth/tokens?nocatalog"), body, nil, http.StatusCreated)
		if err != nil {
			return nil, fmt.Errorf("rescope: %w", err)
		}
		out = append(out, h.Get("X-Subject-Token"))
	}
	return out, nil
}

func runToken(ctx context.Context, e *env) error {
	toks, err := e.tokens(ctx, 64)
	if err != nil {
		return err
	}
	pw := passwordAuth(e.c.creds)
	rescope := make([][]byte, len(toks))
	for i, t := range toks {
		rescope[i] = mustJSON(map[string]any{"auth": map[string]any{
			"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": t}},
			"scope":    map[string]any{"project": map[string]any{"id": e.c.projectID}},
		}})
	}
	url := e.c.url("", "/v3/auth/tokens")
	phases := []struct {
		name    string
		workers int
		fn      op
	}{
		{"issue-password", 8, func(ctx context.Context, _, _ int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "POST", url, pw, map[string]string{"X-Auth-Token": ""}, http.StatusCreated)
			return 0, err
		}},
		{"issue-token", 8, func(ctx context.Context, _, i int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "POST", url, rescope[i%len(rescope)], map[string]string{"X-Auth-Token": ""}, http.StatusCreated)
			return 0, err
		}},
		{"validate", 32, func(ctx context.Context, _, i int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "GET", url, nil, map[string]string{"X-Subject-Token": toks[i%len(toks)]}, http.StatusOK)
			return 0, err
		}},
		{"validate-nocatalog", 32, func(ctx context.Context, _, i int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "GET", url+"?nocatalog", nil, map[string]string{"X-Subject-Token": toks[i%len(toks)]}, http.StatusOK)
			return 0, err
		}},
		{"check", 32, func(ctx context.Context, _, i int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "HEAD", url, nil, map[string]string{"X-Subject-Token": toks[i%len(toks)]}, http.StatusOK)
			return 0, err
		}},
		{"catalog", 32, func(ctx context.Context, _, i int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "GET", e.c.url("", "/v3/auth/catalog"), nil, map[string]string{"X-Auth-Token": toks[i%len(toks)]}, http.StatusOK)
			return 0, err
		}},
	}
	for _, ph := range phases {
		w := e.conc(ph.workers)
		p := e.begin(ctx, ph.name, map[string]any{"concurrency": w})
		lat, errs, first := e.load(ctx, ph.name, w, 0, e.warmup(2*time.Second), e.duration(10*time.Second), ph.fn)
		r := p.end(ctx, lat, errs, first)
		if ph.name == "validate" {
			r.target("validations/s", r.OpsPerSecond, 10000, "/s", true)
		}
		e.logf("%s", r.line())
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
