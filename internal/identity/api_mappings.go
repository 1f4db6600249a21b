package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"regexp"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// OS-FEDERATION mappings: the rules that would turn a federated user's
// assertion into a local user, groups and projects. Kumo stores and
// validates them; it has no identity providers, protocols or federated
// authentication yet, so nothing applies them (docs/support-matrix.md).

const remoteMatch = `{"type": "array", "items": {"type": "string"}}`

var mappingSchema = wrapSchema("mapping", "mapping", `{
	"type": "object", "required": ["rules"],
	"properties": {
		"schema_version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"},
		"rules": {"type": "array", "minItems": 1, "items": {
			"type": "object", "required": ["local", "remote"], "additionalProperties": false,
			"properties": {
				"local": {"type": "array", "minItems": 1, "items": {"type": "object"}},
				"remote": {"type": "array", "minItems": 1, "items": {
					"type": "object", "required": ["type"], "additionalProperties": false,
					"properties": {"type": {"type": "string", "minLength": 1}, "regex": {"type": "boolean"},
						"any_one_of": `+remoteMatch+`, "not_any_of": `+remoteMatch+`, "blacklist": `+remoteMatch+`, "whitelist": `+remoteMatch+`},
					"not": {"anyOf": [
						{"required": ["any_one_of", "not_any_of"]}, {"required": ["any_one_of", "blacklist"]}, {"required": ["any_one_of", "whitelist"]},
						{"required": ["not_any_of", "blacklist"]}, {"required": ["not_any_of", "whitelist"]}, {"required": ["blacklist", "whitelist"]}]}
				}}
			}
		}}
	}}`)

var mappingID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

type mapping struct {
	ID, SchemaVersion string
	Rules             json.RawMessage
}

func mappingView(r *http.Request, m *mapping) map[string]any {
	return map[string]any{"id": m.ID, "rules": m.Rules, "schema_version": m.SchemaVersion,
		"links": map[string]any{"self": base(r) + "/OS-FEDERATION/mappings/" + m.ID}}
}

func scanMapping(sc scanner) (*mapping, error) {
	var m mapping
	var rules string
	if err := sc.Scan(&m.ID, &rules, &m.SchemaVersion); err != nil {
		return nil, err
	}
	m.Rules = json.RawMessage(rules)
	return &m, nil
}

func (s *Store) getMapping(ctx context.Context, id string) (*mapping, error) {
	return queryOne(ctx, s.q(), scanMapping, "mapping", id, `SELECT id, rules, schema_version FROM federation_mappings WHERE id = $1`, id)
}

func (s *Store) putMapping(ctx context.Context, m *mapping, create bool) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if create {
			_, err := tx.ExecContext(ctx, `INSERT INTO federation_mappings (id, rules, schema_version) VALUES ($1, $2, $3)`, m.ID, string(m.Rules), m.SchemaVersion)
			if db.IsUniqueViolation(err) {
				return conflict("mapping", "id", m.ID)
			}
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE federation_mappings SET rules = $2, schema_version = $3 WHERE id = $1`, m.ID, string(m.Rules), m.SchemaVersion)
		return mustAffect(res, err, "mapping", m.ID)
	})
}

// mappingBody decodes and validates a mapping request.
func mappingBody(r *http.Request, id string) (*mapping, error) {
	var doc struct {
		Mapping struct {
			Rules         json.RawMessage `json:"rules"`
			SchemaVersion string          `json:"schema_version"`
		} `json:"mapping"`
	}
	if err := decodeJSON(r, mappingSchema, &doc); err != nil {
		return nil, err
	}
	m := &mapping{ID: id, Rules: doc.Mapping.Rules, SchemaVersion: doc.Mapping.SchemaVersion}
	if m.SchemaVersion == "" {
		m.SchemaVersion = "1.0"
	}
	return m, nil
}

func (a *API) listMappings(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_mappings", nil); err != nil {
		return nil, err
	}
	l, err := queryAll(r.Context(), a.svc.store.q(), scanMapping, `SELECT id, rules, schema_version FROM federation_mappings ORDER BY id`)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, m := range l {
		out = append(out, mappingView(r, m))
	}
	return apiutil.JSON(200, map[string]any{"mappings": out, "links": listLinks(r)}), nil
}

func (a *API) createMapping(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_mapping", nil); err != nil {
		return nil, err
	}
	id := r.PathValue("mapping_id")
	if !mappingID.MatchString(id) {
		return nil, apiutil.BadRequest("Invalid mapping id %q: up to 64 letters, digits, '.', '_' or '-'.", id)
	}
	m, err := mappingBody(r, id)
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.putMapping(r.Context(), m, true)); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"mapping": mappingView(r, m)}), nil
}

func (a *API) getMapping(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_mapping", nil); err != nil {
		return nil, err
	}
	m, err := a.svc.store.getMapping(r.Context(), r.PathValue("mapping_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"mapping": mappingView(r, m)}), nil
}

func (a *API) updateMapping(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_mapping", nil); err != nil {
		return nil, err
	}
	old, err := a.svc.store.getMapping(r.Context(), r.PathValue("mapping_id"))
	if err != nil {
		return nil, err
	}
	m, err := mappingBody(r, old.ID)
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.putMapping(r.Context(), m, false)); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"mapping": mappingView(r, m)}), nil
}

func (a *API) deleteMapping(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_mapping", nil); err != nil {
		return nil, err
	}
	id := r.PathValue("mapping_id")
	err := a.svc.store.write(r.Context(), func(tx *sql.Tx) error {
		res, err := tx.ExecContext(r.Context(), `DELETE FROM federation_mappings WHERE id = $1`, id)
		return mustAffect(res, err, "mapping", id)
	})
	if err := a.svc.after(r.Context(), err); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
