package network

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
)

// auto-allocated-topology (get-me-a-network): on first request a project
// gets a network, an IPv4 subnet from the default subnet pool and a
// router from it to the default external network; later requests return
// the same network. Like Neutron it needs an external network marked
// is_default and a default IPv4 subnet pool; without them the request
// fails with a 409 "Deployment error". The resources are made through
// the same code paths as API requests, so every rule and quota applies.

func autoTopologyFailure(reason string) *apiutil.Error {
	return conflict("AutoAllocationFailure", "Deployment error: %s.", reason)
}

// autoRequirements finds the default external network and checks that a
// default IPv4 subnet pool exists.
func (s *Service) autoRequirements(ctx context.Context) (string, error) {
	q := s.db.Reader()
	var ext string
	err := q.QueryRowContext(ctx, `SELECT id FROM net_networks WHERE external AND is_default ORDER BY created_at LIMIT 1`).Scan(&ext)
	if err == sql.ErrNoRows {
		return "", autoTopologyFailure("No default router:external network")
	}
	if err != nil {
		return "", err
	}
	var pools int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_subnetpools WHERE is_default AND ip_version = 4`).Scan(&pools); err != nil {
		return "", err
	}
	if pools == 0 {
		return "", autoTopologyFailure("No default subnetpools defined")
	}
	return ext, nil
}

func (s *Service) autoAllocated(ctx context.Context, project string) (string, string, error) {
	var netID string
	var router sql.NullString
	err := s.db.Reader().QueryRowContext(ctx, `SELECT network_id, router_id FROM net_auto_allocated WHERE project_id = $1`, project).Scan(&netID, &router)
	if err == sql.ErrNoRows {
		return "", "", nil
	}
	return netID, router.String, err
}

// autoAllocate returns (creating when needed) the project's network.
func (s *Service) autoAllocate(ctx context.Context, project string, dryRun bool) (string, error) {
	if id, _, err := s.autoAllocated(ctx, project); err != nil || id != "" {
		return id, err
	}
	ext, err := s.autoRequirements(ctx)
	if err != nil || dryRun {
		return "", err
	}
	ac := projectCaller(project).Context
	var netID, subID, routerID string
	cleanup := func() {
		bg := context.WithoutCancel(ctx)
		if routerID != "" && subID != "" {
			_, _ = s.call(bg, ac, s.removeRouterInterface, "PUT", map[string]string{"id": routerID}, map[string]any{"subnet_id": subID})
		}
		if routerID != "" {
			_, _ = s.call(bg, ac, s.deleteRouter, "DELETE", map[string]string{"id": routerID}, nil)
		}
		if netID != "" {
			_, _ = s.call(bg, ac, s.deleteNetwork, "DELETE", map[string]string{"id": netID}, nil)
		}
	}
	out, err := s.call(ctx, ac, s.createNetworks, "POST", nil, map[string]any{"network": map[string]any{
		"name": "auto_allocated_network", "project_id": project, "admin_state_up": false}})
	if err != nil {
		return "", err
	}
	netID = idOf(out, "network")
	out, err = s.call(ctx, ac, s.createSubnets, "POST", nil, map[string]any{"subnet": map[string]any{
		"name": "auto_allocated_subnet_v4", "project_id": project, "network_id": netID, "ip_version": 4,
		"use_default_subnetpool": true}})
	if err != nil {
		cleanup()
		return "", err
	}
	subID = idOf(out, "subnet")
	out, err = s.call(ctx, ac, s.createRouters, "POST", nil, map[string]any{"router": map[string]any{
		"name": "auto_allocated_router", "project_id": project, "external_gateway_info": map[string]any{"network_id": ext}}})
	if err != nil {
		cleanup()
		return "", err
	}
	routerID = idOf(out, "router")
	if _, err := s.call(ctx, ac, s.addRouterInterface, "PUT", map[string]string{"id": routerID}, map[string]any{"subnet_id": subID}); err != nil {
		subID = ""
		cleanup()
		return "", err
	}
	// The network is usable now: bring it up and record the topology.
	if _, err := s.call(ctx, ac, s.updateNetwork, "PUT", map[string]string{"id": netID}, map[string]any{"network": map[string]any{"admin_state_up": true}}); err != nil {
		cleanup()
		return "", err
	}
	err = s.withTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO net_auto_allocated (project_id, network_id, router_id) VALUES ($1, $2, $3)`, project, netID, routerID)
		return err
	})
	if err != nil {
		// A concurrent request won: keep its topology, drop ours.
		cleanup()
		if id, _, err2 := s.autoAllocated(ctx, project); err2 == nil && id != "" {
			return id, nil
		}
		return "", err
	}
	return netID, nil
}

func idOf(m map[string]any, key string) string {
	if o, ok := m[key].(map[string]any); ok {
		id, _ := o["id"].(string)
		return id
	}
	return ""
}

// call runs one of the service's handlers in process as ac.
func (s *Service) call(ctx context.Context, ac *auth.Context, h apiutil.Handler, method string, path map[string]string, body any) (map[string]any, error) {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return nil, err
		}
	}
	r, err := http.NewRequestWithContext(auth.With(ctx, ac), method, "http://kumo.internal"+prefix+"/v2.0/", &buf)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	for k, v := range path {
		r.SetPathValue(k, v)
	}
	resp, err := h(r)
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Body == nil {
		return nil, nil
	}
	raw, err := json.Marshal(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("network: internal call: %w", err)
	}
	return out, nil
}

func (s *Service) autoTopologyProject(r *http.Request, rule string) (*caller, string, error) {
	c := s.caller(r)
	project := r.PathValue("project_id")
	if err := s.authorize(c, rule, ownerTarget(project)); err != nil {
		return nil, "", err
	}
	return c, project, nil
}

func (s *Service) showAutoTopology(r *http.Request) (*apiutil.Response, error) {
	_, project, err := s.autoTopologyProject(r, "get_auto_allocated_topology")
	if err != nil {
		return nil, err
	}
	dry := false
	for _, f := range r.URL.Query()["fields"] {
		if f == "dry-run" {
			dry = true
		}
	}
	id, err := s.autoAllocate(r.Context(), project, dry)
	if err != nil {
		return nil, err
	}
	if dry && id == "" {
		id = "dry-run=pass"
	}
	return apiutil.JSON(200, map[string]any{"auto_allocated_topology": map[string]any{
		"id": id, "project_id": project, "tenant_id": project}}), nil
}

func (s *Service) deleteAutoTopology(r *http.Request) (*apiutil.Response, error) {
	_, project, err := s.autoTopologyProject(r, "delete_auto_allocated_topology")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	netID, routerID, err := s.autoAllocated(ctx, project)
	if err != nil {
		return nil, err
	}
	if netID == "" {
		return nil, notFound("NotFound", "Auto Allocated Topology for project %s could not be found.", project)
	}
	ac := projectCaller(project).Context
	if routerID != "" {
		subs, err := networkSubnets(ctx, s.db.Reader(), netID, "")
		if err != nil {
			return nil, err
		}
		for _, sn := range subs {
			if _, err := s.call(ctx, ac, s.removeRouterInterface, "PUT", map[string]string{"id": routerID}, map[string]any{"subnet_id": sn.ID}); err != nil && !isNotFound(err) {
				return nil, err
			}
		}
	}
	if err := s.withTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM net_auto_allocated WHERE project_id = $1`, project)
		return err
	}); err != nil {
		return nil, err
	}
	if routerID != "" {
		if _, err := s.call(ctx, ac, s.deleteRouter, "DELETE", map[string]string{"id": routerID}, nil); err != nil && !isNotFound(err) {
			return nil, err
		}
	}
	if _, err := s.call(ctx, ac, s.deleteNetwork, "DELETE", map[string]string{"id": netID}, nil); err != nil && !isNotFound(err) {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
