package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// tagKind is a resource that carries tags (standard-attr-tag).
type tagKind struct {
	collection, resource, table, notFound string
	// visibleSQL, when set, is a condition (with $2 the caller's project)
	// under which other projects see the resource.
	extraVisible string
	getRule      string
	updateRule   string
}

var taggable = []tagKind{
	{"networks", "network", "net_networks", "NetworkNotFound", "(shared OR external)", "get_network", "update_network"},
	{"subnets", "subnet", "net_subnets", "SubnetNotFound", "network_id IN (SELECT id FROM net_networks WHERE shared)", "get_subnet", "update_subnet"},
	{"ports", "port", "net_ports", "PortNotFound", "", "get_port", "update_port"},
	{"routers", "router", "net_routers", "RouterNotFound", "", "get_router", "update_router"},
	{"floatingips", "floatingip", "net_floatingips", "FloatingIPNotFound", "", "get_floatingip", "update_floatingip"},
	{"security-groups", "security_group", "net_security_groups", "SecurityGroupNotFound", "", "get_security_group", "update_security_group"},
	{"subnetpools", "subnetpool", "net_subnetpools", "SubnetPoolNotFound", "shared", "get_subnetpool", "update_subnetpool"},
}

func validateTags(tags []string) error {
	for _, t := range tags {
		if t == "" || len(t) > 255 || strings.Contains(t, ",") {
			return badInput("Invalid input for tags. Reason: '%s' is not a valid tag.", t)
		}
	}
	return nil
}

func sortedTags(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// loadTags reads the tags of ids, calling set once per resource that has any.
func loadTags(ctx context.Context, q db.Querier, resource string, ids []string, set func(id string, tags []string)) error {
	tags := map[string][]string{}
	err := func() error {
		if len(ids) == 0 {
			return nil
		}
		in, arg := idsIn(q, ids)
		in = strings.Replace(in, "$1", "$2", 1)
		rows, err := q.QueryContext(ctx, "SELECT resource_id, tag FROM net_tags WHERE resource_type = $1 AND resource_id "+in+" ORDER BY tag", resource, arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, tag string
			if err := rows.Scan(&id, &tag); err != nil {
				return err
			}
			tags[id] = append(tags[id], tag)
		}
		return rows.Err()
	}()
	for id, t := range tags {
		set(id, t)
	}
	return err
}

func (tx *txn) setTags(ctx context.Context, resource, id string, tags []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM net_tags WHERE resource_type = $1 AND resource_id = $2`, resource, id); err != nil {
		return err
	}
	for _, t := range sortedTags(tags) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO net_tags (resource_type, resource_id, tag) VALUES ($1, $2, $3)`, resource, id, t); err != nil {
			return err
		}
	}
	return nil
}

// tagHandler serves the tags sub-resource of kind; op is list, replace,
// clear, check, add or remove.
func (s *Service) tagHandler(kind tagKind, op string) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		c := s.caller(r)
		id := r.PathValue("id")
		tag := r.PathValue("tag")
		ctx := r.Context()
		write := op != "list" && op != "check"
		var newTags []string
		if op == "replace" {
			b, err := apiutil.ReadBody(r)
			if err != nil {
				return nil, err
			}
			var body struct {
				Tags *[]string `json:"tags"`
			}
			if err := json.Unmarshal(b, &body); err != nil || body.Tags == nil {
				return nil, badInput("Invalid input for tags. Reason: a list of tags is required.")
			}
			newTags = *body.Tags
			if err := validateTags(newTags); err != nil {
				return nil, err
			}
		}
		if op == "add" {
			if err := validateTags([]string{tag}); err != nil {
				return nil, err
			}
		}
		var result []string
		found := false
		run := func(q db.Querier, tx *txn) error {
			var project string
			var rev int64
			visible := "FALSE"
			if kind.extraVisible != "" {
				visible = kind.extraVisible
			}
			var extra int
			err := q.QueryRowContext(ctx, "SELECT project_id, revision_number, CASE WHEN "+visible+" THEN 1 ELSE 0 END FROM "+kind.table+" WHERE id = $1", id).Scan(&project, &rev, &extra)
			if err == sql.ErrNoRows {
				return notFound(kind.notFound, "%s %s could not be found.", titleResource(kind.resource), id)
			}
			if err != nil {
				return err
			}
			if !c.admin && project != c.ProjectID && extra == 0 {
				return notFound(kind.notFound, "%s %s could not be found.", titleResource(kind.resource), id)
			}
			rule := kind.getRule
			if write {
				rule = kind.updateRule
			}
			if extra == 0 || write {
				if err := s.authorize(c, rule, ownerTarget(project)); err != nil {
					return err
				}
			}
			if write {
				if err := ifMatch(r, rev); err != nil {
					return err
				}
			}
			cur := []string{}
			if err := loadTags(ctx, q, kind.resource, []string{id}, func(_ string, t []string) { cur = t }); err != nil {
				return err
			}
			found = slices.Contains(cur, tag)
			switch op {
			case "list", "check":
				result = cur
				return nil
			case "replace":
				result = sortedTags(newTags)
			case "clear":
				result = nil
			case "add":
				if found {
					result = cur
					return nil
				}
				result = sortedTags(append(cur, tag))
			case "remove":
				if !found {
					return notFound("TagNotFound", "Tag %s could not be found.", tag)
				}
				result = slices.DeleteFunc(slices.Clone(cur), func(t string) bool { return t == tag })
			}
			if err := tx.setTags(ctx, kind.resource, id, result); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, "UPDATE "+kind.table+" SET revision_number = revision_number + 1, updated_at = $1 WHERE id = $2",
				db.FormatTime(s.nowUTC()), id)
			return err
		}
		var err error
		if write {
			err = s.withTx(ctx, func(tx *txn) error { return run(tx, tx) })
		} else {
			err = run(s.db.Reader(), nil)
		}
		if err != nil {
			return nil, err
		}
		switch op {
		case "list", "replace":
			return apiutil.JSON(200, map[string]any{"tags": nonNil(result)}), nil
		case "check":
			if !found {
				return nil, notFound("TagNotFound", "Tag %s could not be found.", tag)
			}
			return apiutil.NoContent(), nil
		case "add":
			return &apiutil.Response{Status: 201}, nil
		}
		return apiutil.NoContent(), nil
	}
}
