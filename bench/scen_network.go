package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() {
	scenarios["port-create"] = scenario{
		help: "POST /v2.0/ports (IPAM on a /16) at --concurrency (default 1)",
		run:  runPortCreate,
	}
	scenarios["sg-rule-create"] = scenario{
		help: "POST /v2.0/security-group-rules in one group at --concurrency (default 1)",
		run:  runSGRuleCreate,
	}
}

// networkSetup lifts the project's port and rule quotas.
func (e *env) networkSetup(ctx context.Context) error {
	q := mustJSON(map[string]any{"quota": map[string]any{"port": -1, "security_group_rule": -1, "network": -1, "subnet": -1}})
	if _, _, err := e.c.do(ctx, "PUT", e.c.url("network", "/v2.0/quotas/"+e.c.projectID), q, nil, http.StatusOK); err != nil {
		return fmt.Errorf("raise network quotas: %w", err)
	}
	return nil
}

func (e *env) createNet(ctx context.Context, cidr string) (string, error) {
	var n struct {
		Network struct{ ID string } `json:"network"`
	}
	if _, err := e.c.doJSON(ctx, "POST", e.c.url("network", "/v2.0/networks"), mustJSON(map[string]any{"network": map[string]any{"name": "bench"}}), nil, http.StatusCreated, &n); err != nil {
		return "", err
	}
	sub := map[string]any{"subnet": map[string]any{"network_id": n.Network.ID, "cidr": cidr, "ip_version": 4}}
	if _, _, err := e.c.do(ctx, "POST", e.c.url("network", "/v2.0/subnets"), mustJSON(sub), nil, http.StatusCreated); err != nil {
		return "", err
	}
	return n.Network.ID, nil
}

func runPortCreate(ctx context.Context, e *env) error {
	if err := e.networkSetup(ctx); err != nil {
		return err
	}
	nid, err := e.createNet(ctx, "10.0.0.0/16")
	if err != nil {
		return err
	}
	body := mustJSON(map[string]any{"port": map[string]any{"network_id": nid}})
	u := e.c.url("network", "/v2.0/ports")
	conc := e.conc(1)
	p := e.begin(ctx, "port-create", map[string]any{"concurrency": conc, "subnet": "/16"})
	lat, errs, first := e.load(ctx, "port-create", conc, 0, e.warmup(2*time.Second), e.duration(10*time.Second),
		func(ctx context.Context, _, _ int) (time.Duration, error) {
			_, _, err := e.c.do(ctx, "POST", u, body, nil, http.StatusCreated)
			return 0, err
		})
	r := p.end(ctx, lat, errs, first)
	r.target("p50", r.P50ms, 10, "ms", false)
	e.logf("%s", r.line())
	return nil
}

func runSGRuleCreate(ctx context.Context, e *env) error {
	if err := e.networkSetup(ctx); err != nil {
		return err
	}
	var g struct {
		SG struct{ ID string } `json:"security_group"`
	}
	if _, err := e.c.doJSON(ctx, "POST", e.c.url("network", "/v2.0/security-groups"),
		mustJSON(map[string]any{"security_group": map[string]any{"name": "bench"}}), nil, http.StatusCreated, &g); err != nil {
		return err
	}
	u := e.c.url("network", "/v2.0/security-group-rules")
	conc := e.conc(1)
	p := e.begin(ctx, "sg-rule-create", map[string]any{"concurrency": conc})
	lat, errs, first := e.load(ctx, "sg-rule-create", conc, 0, e.warmup(2*time.Second), e.duration(10*time.Second),
		func(ctx context.Context, _, i int) (time.Duration, error) {
			// Every rule is distinct: port i on one of three protocols,
			// then from a different /24.
			port := i%65535 + 1
			rule := map[string]any{"security_group_id": g.SG.ID, "direction": "ingress", "ethertype": "IPv4",
				"protocol": []string{"tcp", "udp", "sctp"}[i/65535%3], "port_range_min": port, "port_range_max": port,
				"remote_ip_prefix": fmt.Sprintf("10.%d.%d.0/24", i/196605%256, i/196605/256%256)}
			_, _, err := e.c.do(ctx, "POST", u, mustJSON(map[string]any{"security_group_rule": rule}), nil, http.StatusCreated)
			return 0, err
		})
	r := p.end(ctx, lat, errs, first)
	r.target("p50", r.P50ms, 10, "ms", false)
	e.logf("%s", r.line())
	return nil
}
