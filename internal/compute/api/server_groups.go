package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Policy rule names of server groups.
const (
	ruleGroupIndex    = "os_compute_api:os-server-groups:index"
	ruleGroupIndexAll = "os_compute_api:os-server-groups:index:all_projects"
	ruleGroupCreate   = "os_compute_api:os-server-groups:create"
	ruleGroupShow     = "os_compute_api:os-server-groups:show"
	ruleGroupDelete   = "os_compute_api:os-server-groups:delete"
)

var (
	// V2_13: server group views show project_id and user_id.
	V2_13 = apiutil.Version{Major: 2, Minor: 13}
	// V2_15: soft-affinity and soft-anti-affinity policies.
	V2_15 = apiutil.Version{Major: 2, Minor: 15}
	// V2_64: one "policy" and "rules" (max_server_per_host) instead of
	// "policies"; views drop "metadata".
	V2_64 = apiutil.Version{Major: 2, Minor: 64}
)

var (
	groupCreateSchema = apiutil.MustSchema("compute-server-group-create", `{"type": "object",
	"properties": {"server_group": {"type": "object", "properties": {
		"name": {"type": "string", "minLength": 1, "maxLength": 255},
		"policies": {"type": "array", "items": {"type": "string", "enum": ["anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]},
			"uniqueItems": true, "minItems": 1, "maxItems": 1}},
		"required": ["name", "policies"], "additionalProperties": false}},
	"required": ["server_group"], "additionalProperties": false}`)
	groupCreateSchema264 = apiutil.MustSchema("compute-server-group-create-2.64", `{"type": "object",
	"properties": {"server_group": {"type": "object", "properties": {
		"name": {"type": "string", "minLength": 1, "maxLength": 255},
		"policy": {"type": "string", "enum": ["anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]},
		"rules": {"type": "object", "properties": {"max_server_per_host": {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1}},
			"additionalProperties": false}},
		"required": ["name", "policy"], "additionalProperties": false}},
	"required": ["server_group"], "additionalProperties": false}`)
)

func (a *API) groupView(r *http.Request, g *store.ServerGroup) map[string]any {
	v := map[string]any{"id": g.UUID, "name": g.Name, "members": g.Members}
	if atLeast(r, V2_64) {
		v["policy"] = g.Policy
		rules := map[string]any{}
		for k, n := range g.Rules {
			rules[k] = n
		}
		v["rules"] = rules
	} else {
		v["policies"] = []string{g.Policy}
		v["metadata"] = map[string]any{}
	}
	if atLeast(r, V2_13) {
		v["project_id"], v["user_id"] = g.ProjectID, g.UserID
	}
	return v
}

func (a *API) listServerGroups(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleGroupIndex, own(r)); err != nil {
		return nil, err
	}
	project := caller(r).ProjectID
	if v := r.URL.Query().Get("all_projects"); v != "" && boolValue([]byte(strconv.Quote(v))) {
		if err := a.authorize(r, ruleGroupIndexAll, own(r)); err == nil {
			project = ""
		}
	}
	all, err := a.st.ListServerGroups(ctx(r), nil, project)
	if err != nil {
		return nil, internal(err)
	}
	q := r.URL.Query()
	offset, limit := 0, len(all)
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, apiutil.BadRequest("Invalid input for query parameters offset. Value: %s.", s)
		}
		offset = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, apiutil.BadRequest("Invalid input for query parameters limit. Value: %s.", s)
		}
		limit = n
	}
	limit = min(limit, MaxLimit)
	out := []any{}
	for i := offset; i < len(all) && len(out) < limit; i++ {
		out = append(out, a.groupView(r, all[i]))
	}
	return apiutil.JSON(200, map[string]any{"server_groups": out}), nil
}

func (a *API) createServerGroup(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleGroupCreate, own(r)); err != nil {
		return nil, err
	}
	var body struct {
		Group struct {
			Name     string                     `json:"name"`
			Policies []string                   `json:"policies"`
			Policy   string                     `json:"policy"`
			Rules    map[string]json.RawMessage `json:"rules"`
		} `json:"server_group"`
	}
	schema := groupCreateSchema
	if atLeast(r, V2_64) {
		schema = groupCreateSchema264
	}
	if err := apiutil.DecodeJSON(r, schema, &body); err != nil {
		return nil, err
	}
	b := body.Group
	if err := checkName("name", b.Name); err != nil {
		return nil, err
	}
	policy := b.Policy
	if len(b.Policies) > 0 {
		policy = b.Policies[0]
	}
	if (policy == "soft-affinity" || policy == "soft-anti-affinity") && !atLeast(r, V2_15) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute 0. Value: %s. '%s' is not one of ['anti-affinity', 'affinity']", policy, policy)
	}
	rules := map[string]int64{}
	if raw, ok := b.Rules["max_server_per_host"]; ok {
		if policy != "anti-affinity" {
			return nil, apiutil.BadRequest("Only anti-affinity policy supports rules.")
		}
		n, err := intValue("max_server_per_host", raw, 1, 1<<31-1)
		if err != nil {
			return nil, err
		}
		rules["max_server_per_host"] = n
	}
	c := caller(r)
	g := &store.ServerGroup{UUID: newUUID(), Name: b.Name, ProjectID: c.ProjectID, UserID: c.UserID, Policy: policy, Rules: rules, Members: []string{}}
	err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.quota.Check(ctx(r), tx, c.ProjectID, c.UserID, map[string]int64{quota.ServerGroups: 1}); err != nil {
			return err
		}
		return a.st.CreateServerGroup(ctx(r), tx, g)
	})
	var over *quota.OverQuotaError
	if errors.As(err, &over) {
		return nil, apiutil.Forbidden("Quota exceeded, too many server groups.")
	}
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"server_group": a.groupView(r, g)}), nil
}

func (a *API) loadServerGroup(r *http.Request, rule string) (*store.ServerGroup, error) {
	id := r.PathValue("group_id")
	g, err := a.st.GetServerGroup(ctx(r), nil, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Instance group %s could not be found.", id)
	}
	if err != nil {
		return nil, internal(err)
	}
	target := map[string]string{"project_id": g.ProjectID, "user_id": g.UserID}
	if g.ProjectID != caller(r).ProjectID && !a.allowed(r, rule, target) {
		return nil, apiutil.NotFound("Instance group %s could not be found.", id)
	}
	if err := a.authorize(r, rule, target); err != nil {
		return nil, err
	}
	return g, nil
}

func (a *API) showServerGroup(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadServerGroup(r, ruleGroupShow)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"server_group": a.groupView(r, g)}), nil
}

func (a *API) deleteServerGroup(r *http.Request) (*apiutil.Response, error) {
	g, err := a.loadServerGroup(r, ruleGroupDelete)
	if err != nil {
		return nil, err
	}
	if err := a.st.DeleteServerGroup(ctx(r), g.UUID); err != nil {
		return nil, internal(err)
	}
	return &apiutil.Response{Status: 204}, nil
}

// joinGroup puts a new server in a group inside the create transaction,
// checking the server_group_members quota.
func (a *API) joinGroup(r *http.Request, tx *sql.Tx, g *store.ServerGroup, instance string, already int) error {
	limits, err := a.quota.Limits(ctx(r), tx, g.ProjectID, "")
	if err != nil {
		return err
	}
	if l := limits[quota.ServerGroupMembers]; l >= 0 && int64(len(g.Members)+already+1) > l {
		return apiutil.Forbidden("Quota exceeded, too many servers in group")
	}
	return a.st.AddGroupMember(ctx(r), tx, g.ID, instance)
}

// ServerGroupCounter counts a project's (or user's) server groups for
// the server_groups quota.
type ServerGroupCounter struct{}

// Resources implements quota.UsageCounter.
func (ServerGroupCounter) Resources() []string { return []string{quota.ServerGroups} }

// Count implements quota.UsageCounter.
func (ServerGroupCounter) Count(ctx context.Context, q db.Querier, projectID, userID string) (map[string]int64, error) {
	n, err := store.CountServerGroups(ctx, q, projectID, userID)
	return map[string]int64{quota.ServerGroups: n}, err
}
