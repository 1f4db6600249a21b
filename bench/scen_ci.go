package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() {
	scenarios["ci"] = scenario{
		help: "the CI regression run: small sizes of every scenario (< 60 s), each phase's server CPU per operation as a ratio to an authenticated GET's in the same run",
		run:  runCI,
	}
}

// CIReference is the phase every ci ratio divides by: GET
// /v3/auth/catalog, the cheapest authenticated API call, measured
// before and after the others.
const CIReference = "reference"

// Ratios returns, for a ci report, each phase's server CPU time per
// operation divided by the reference's (the mean of its two
// measurements). CPU time rather than latency: on a shared machine a
// request waits for a core for longer or shorter, but costs about the
// same CPU.
func (rep *Report) Ratios() map[string]float64 {
	var ref, n float64
	for _, r := range rep.Results {
		if r.Name == CIReference && r.ServerCPUPerOpMs > 0 {
			ref += r.ServerCPUPerOpMs
			n++
		}
	}
	out := map[string]float64{}
	if n == 0 {
		return out
	}
	ref /= n
	for _, r := range rep.Results {
		if r.Name != CIReference && r.ServerCPUPerOpMs > 0 {
			out[r.Name] = r.ServerCPUPerOpMs / ref
		}
	}
	return out
}

func runCI(ctx context.Context, e *env) error {
	d, wu := e.duration(2*time.Second), e.warmup(500*time.Millisecond)
	counted := func(name string, params map[string]any, count int, fn op) *Result {
		p := e.begin(ctx, name, params)
		lat, errs, first := e.load(ctx, name, 1, count, 0, 0, fn)
		r := p.end(ctx, lat, errs, first)
		e.logf("%s", r.line())
		return r
	}
	timed := func(name string, params map[string]any, fn op) *Result {
		p := e.begin(ctx, name, params)
		lat, errs, first := e.load(ctx, name, 1, 0, wu, d, fn)
		r := p.end(ctx, lat, errs, first)
		e.logf("%s", r.line())
		return r
	}
	catalog := e.c.url("", "/v3/auth/catalog")
	reference := func() {
		timed(CIReference, nil, func(ctx context.Context, _, _ int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "GET", catalog, nil, nil, http.StatusOK)
			return 0, err
		})
	}
	reference()

	rescope := mustJSON(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": e.c.token}},
		"scope":    map[string]any{"project": map[string]any{"id": e.c.projectID}},
	}})
	timed("issue-token", nil, func(ctx context.Context, _, _ int) (time.Duration, error) {
		_, _, err := e.c.do(ctx, "POST", e.c.url("", "/v3/auth/tokens"), rescope, nil, http.StatusCreated)
		return 0, err
	})

	image, err := e.computeSetup(ctx)
	if err != nil {
		return err
	}
	e.bootDelete(ctx, "boot-delete", image, 5, 40, nil)

	if err := e.seedServers(ctx, image, 500); err != nil {
		return err
	}
	list := e.c.url("compute", "/servers/detail?limit=1000")
	timed("server-list", map[string]any{"population": 500}, func(ctx context.Context, _, _ int) (time.Duration, error) {
		_, _, err := e.c.do(ctx, "GET", list, nil, computeHdr, http.StatusOK)
		return 0, err
	})

	if err := e.networkSetup(ctx); err != nil {
		return err
	}
	nid, err := e.createNet(ctx, "10.0.0.0/16")
	if err != nil {
		return err
	}
	port := mustJSON(map[string]any{"port": map[string]any{"network_id": nid}})
	timed("port-create", nil, func(ctx context.Context, _, _ int) (time.Duration, error) {
		_, _, err := e.c.do(ctx, "POST", e.c.url("network", "/v2.0/ports"), port, nil, http.StatusCreated)
		return 0, err
	})
	var g struct {
		SG struct{ ID string } `json:"security_group"`
	}
	if _, err := e.c.doJSON(ctx, "POST", e.c.url("network", "/v2.0/security-groups"),
		mustJSON(map[string]any{"security_group": map[string]any{"name": "ci"}}), nil, http.StatusCreated, &g); err != nil {
		return err
	}
	timed("sg-rule-create", nil, func(ctx context.Context, _, i int) (time.Duration, error) {
		rule := map[string]any{"security_group_id": g.SG.ID, "direction": "ingress", "protocol": "tcp",
			"port_range_min": i%65535 + 1, "port_range_max": i%65535 + 1}
		_, _, err := e.c.do(ctx, "POST", e.c.url("network", "/v2.0/security-group-rules"), mustJSON(map[string]any{"security_group_rule": rule}), nil, http.StatusCreated)
		return 0, err
	})

	if err := e.createProviders(ctx, 300); err != nil {
		return err
	}
	cand := e.c.url("placement", "/allocation_candidates?resources=VCPU:2,MEMORY_MB:2048,DISK_GB:20&limit=1000")
	timed("alloc-candidates", map[string]any{"providers": 300}, func(ctx context.Context, _, _ int) (time.Duration, error) {
		_, _, err := e.c.do(ctx, "GET", cand, nil, placementHdr, http.StatusOK)
		return 0, err
	})

	// Image: 32 MiB up and down, sequentially, as one operation.
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i * 7)
	}
	const size = 32 << 20
	counted("image-32MiB", map[string]any{"bytes": size}, 3, func(ctx context.Context, _, i int) (time.Duration, error) {
		var img struct{ ID string }
		body := mustJSON(map[string]any{"name": fmt.Sprintf("ci-%d", i), "disk_format": "raw", "container_format": "bare"})
		if _, err := e.c.doJSON(ctx, "POST", e.c.url("image", "/v2/images"), body, nil, http.StatusCreated, &img); err != nil {
			return 0, err
		}
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "PUT", e.c.url("image", "/v2/images/"+img.ID+"/file"), &pattern{block: block, left: size})
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Auth-Token", e.c.token)
		resp, err := e.c.hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return 0, fmt.Errorf("upload: status %d", resp.StatusCode)
		}
		_, data, err := e.c.do(ctx, "GET", e.c.url("image", "/v2/images/"+img.ID+"/file"), nil, nil, http.StatusOK)
		if err != nil || len(data) != size {
			return 0, fmt.Errorf("download: %d bytes, %v", len(data), err)
		}
		took := time.Since(t0)
		_, _, err = e.c.do(ctx, "DELETE", e.c.url("image", "/v2/images/"+img.ID), nil, nil, http.StatusNoContent)
		return took, err
	})
	reference()
	return nil
}
