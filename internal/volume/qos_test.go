package volume_test

import (
	"database/sql"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/volume"
)

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func TestQoSSpecsAPI(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		// Create: Cinder's sample body, 200, the spec and its links.
		r := e.do("admin", "POST", v3+"/p-admin/qos-specs", "", `{"qos_specs": {"name": "reliability-spec", "delay": "1"}}`).Expect(t, 200, "")
		if got := keysOf(r.Body); !slices.Equal(got, []string{"links", "qos_specs"}) {
			t.Errorf("create body keys %v", got)
		}
		q := obj(t, r.Body, "qos_specs")
		id := q["id"].(string)
		if got := keysOf(q); !slices.Equal(got, []string{"consumer", "id", "name", "specs"}) || q["consumer"] != "back-end" ||
			q["name"] != "reliability-spec" || obj(t, q, "specs")["delay"] != "1" {
			t.Errorf("created %v", q)
		}
		links := list(t, r.Body, "links")
		if self := links[0].(map[string]any); self["rel"] != "self" || self["href"] != publicURL+v3+"/p-admin/qos-specs/"+id {
			t.Errorf("links %v", links)
		}
		if bm := links[1].(map[string]any); bm["rel"] != "bookmark" || bm["href"] != publicURL+"/volume/p-admin/qos-specs/"+id {
			t.Errorf("links %v", links)
		}
		r = e.do("admin", "POST", v3+"/qos-specs", "", `{"qos_specs": {"name": "fe", "consumer": "front-end", "read_iops_sec": "20000"}}`).Expect(t, 200, "")
		fe := obj(t, r.Body, "qos_specs")
		feID := fe["id"].(string)
		if fe["consumer"] != "front-end" || len(obj(t, fe, "specs")) != 1 {
			t.Errorf("front-end spec %v", fe)
		}

		// Errors of every call, as Cinder answers them.
		for _, c := range []struct {
			who, method, path, body string
			status                  int
			fault, message          string
		}{
			{"alice", "GET", "/qos-specs", "", 403, "forbidden", ""},
			{"alice", "POST", "/qos-specs", `{"qos_specs": {"name": "x"}}`, 403, "forbidden", ""},
			{"alice", "GET", "/qos-specs/" + id, "", 403, "forbidden", ""},
			{"alice", "GET", "/qos-specs/" + id + "/associate?vol_type_id=" + volume.DefaultTypeID, "", 403, "forbidden", ""},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "reliability-spec"}}`, 409, "conflictingRequest", "QoS Specs reliability-spec already exists."},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"consumer": "both"}}`, 400, "badRequest", "'name' is a required property"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "  "}}`, 400, "badRequest", "Invalid input for field/attribute name"},
			{"admin", "POST", "/qos-specs", `{"qos": {"name": "x"}}`, 400, "badRequest", "qos_specs"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": ["x"]}`, 400, "badRequest", "is not of type 'object'"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "x", "consumer": "middle"}}`, 400, "badRequest",
				"Invalid qos specs: Valid consumer of QoS specs are: ['front-end', 'back-end', 'both']"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "x", "total_bytes_sec": "fast"}}`, 400, "badRequest", "Invalid qos specs: total_bytes_sec must be an integer"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "x", "read_iops_sec": "-5"}}`, 400, "badRequest", "read_iops_sec must be an integer"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "x", "write_iops_sec_per_gb": "1.5"}}`, 400, "badRequest", "write_iops_sec_per_gb must be an integer"},
			{"admin", "POST", "/qos-specs", `{"qos_specs": {"name": "x", "delay": {"a": 1}}}`, 400, "badRequest", "is not of type 'string'"},
			{"admin", "GET", "/qos-specs/nope", "", 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "PUT", "/qos-specs/nope", `{"qos_specs": {"a": "b"}}`, 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "PUT", "/qos-specs/" + id, `{"qos_specs": {"consumer": "nobody"}}`, 400, "badRequest", "Valid consumer"},
			{"admin", "PUT", "/qos-specs/" + id, `{"qos_specs": {"size_iops_sec": "4k"}}`, 400, "badRequest", "size_iops_sec must be an integer"},
			{"admin", "PUT", "/qos-specs/" + id + "/delete_keys", `{"keys": ["delay", "nokey"]}`, 404, "itemNotFound", "QoS spec " + id + " has no spec with key nokey."},
			{"admin", "PUT", "/qos-specs/" + id + "/delete_keys", `{"keys": "delay"}`, 400, "badRequest", "is not of type 'array'"},
			{"admin", "PUT", "/qos-specs/nope/delete_keys", `{"keys": ["delay"]}`, 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "DELETE", "/qos-specs/nope", "", 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "DELETE", "/qos-specs/" + id + "?force=maybe", "", 400, "badRequest", "Invalid value 'maybe' for force"},
			{"admin", "GET", "/qos-specs/" + id + "/associate", "", 400, "badRequest", "Volume Type id must not be None."},
			{"admin", "GET", "/qos-specs/" + id + "/disassociate", "", 400, "badRequest", "Volume Type id must not be None."},
			{"admin", "GET", "/qos-specs/" + id + "/associate?vol_type_id=notype", "", 404, "itemNotFound", "Volume type notype could not be found."},
			{"admin", "GET", "/qos-specs/nope/associate?vol_type_id=" + volume.DefaultTypeID, "", 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "GET", "/qos-specs/nope/associations", "", 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "GET", "/qos-specs/nope/disassociate_all", "", 404, "itemNotFound", "No such QoS spec nope."},
			{"admin", "GET", "/qos-specs?sort=size", "", 400, "badRequest", "Invalid sort key size."},
			{"admin", "GET", "/qos-specs?limit=x", "", 400, "badRequest", "limit must be a non-negative integer"},
			{"admin", "GET", "/qos-specs?marker=nope", "", 404, "itemNotFound", "Marker nope could not be found."},
		} {
			r := e.do(c.who, c.method, v3+c.path, "", c.body).Expect(t, c.status, c.fault)
			if msg, _ := obj(t, r.Body, c.fault)["message"].(string); !strings.Contains(msg, c.message) {
				t.Errorf("%s %s: message %q, want %q", c.method, c.path, msg, c.message)
			}
		}
		// Nothing of the refused creates was stored.
		r = e.do("admin", "GET", v3+"/qos-specs", "", "").Expect(t, 200, "")
		if n := len(list(t, r.Body, "qos_specs")); n != 2 {
			t.Errorf("%d specs after refused creates: %s", n, r.Raw)
		}

		// Set keys: the answer echoes them; consumer is not a key.
		r = e.do("admin", "PUT", v3+"/qos-specs/"+id, "", `{"qos_specs": {"consumer": "both", "total_iops_sec": 500, "delay": "2"}}`).Expect(t, 200, "")
		if got := obj(t, r.Body, "qos_specs"); got["consumer"] != "both" || got["total_iops_sec"] != "500" || got["delay"] != "2" {
			t.Errorf("set answer %v", r.Raw)
		}
		r = e.do("admin", "GET", v3+"/qos-specs/"+id, "", "").Expect(t, 200, "")
		q = obj(t, r.Body, "qos_specs")
		if specs := obj(t, q, "specs"); q["consumer"] != "both" || !maps.Equal(specs, map[string]any{"delay": "2", "total_iops_sec": "500"}) {
			t.Errorf("after set %v", r.Raw)
		}
		e.do("admin", "PUT", v3+"/qos-specs/"+id+"/delete_keys", "", `{"keys": ["delay"]}`).Expect(t, 202, "")
		r = e.do("admin", "GET", v3+"/qos-specs/"+id, "", "").Expect(t, 200, "")
		if specs := obj(t, obj(t, r.Body, "qos_specs"), "specs"); len(specs) != 1 || specs["total_iops_sec"] != "500" {
			t.Errorf("after delete_keys %v", r.Raw)
		}

		// List: sorted, paged with qos_specs_links, filtered.
		r = e.do("admin", "GET", v3+"/qos-specs?sort=name:asc&limit=1", "", "").Expect(t, 200, "")
		page := list(t, r.Body, "qos_specs")
		if len(page) != 1 || page[0].(map[string]any)["name"] != "fe" {
			t.Fatalf("first page %s", r.Raw)
		}
		next := list(t, r.Body, "qos_specs_links")[0].(map[string]any)["href"].(string)
		r = e.do("admin", "GET", strings.TrimPrefix(next, publicURL), "", "").Expect(t, 200, "")
		if page := list(t, r.Body, "qos_specs"); len(page) != 1 || page[0].(map[string]any)["name"] != "reliability-spec" {
			t.Errorf("second page %s", r.Raw)
		}
		if _, ok := r.Body["qos_specs_links"]; ok {
			t.Errorf("last page has a next link: %s", r.Raw)
		}
		r = e.do("admin", "GET", v3+"/qos-specs?consumer=front-end", "", "").Expect(t, 200, "")
		if page := list(t, r.Body, "qos_specs"); len(page) != 1 || page[0].(map[string]any)["id"] != feID {
			t.Errorf("filtered %s", r.Raw)
		}
		r = e.do("admin", "GET", v3+"/qos-specs?sort=name:asc&offset=1", "", "").Expect(t, 200, "")
		if page := list(t, r.Body, "qos_specs"); len(page) != 1 || page[0].(map[string]any)["id"] != id {
			t.Errorf("offset %s", r.Raw)
		}

		// Associations: one spec per type; type views show it to admins.
		r = e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "gold"}}`).Expect(t, 200, "")
		gold := obj(t, r.Body, "volume_type")["id"].(string)
		e.do("admin", "GET", v3+"/qos-specs/"+id+"/associate?vol_type_id="+gold, "", "").Expect(t, 202, "")
		e.do("admin", "GET", v3+"/qos-specs/"+id+"/associate?vol_type_id="+gold, "", "").Expect(t, 202, "")
		r = e.do("admin", "GET", v3+"/qos-specs/"+feID+"/associate?vol_type_id="+gold, "", "").Expect(t, 400, "badRequest")
		if want := "Invalid volume type: Type " + gold + " is already associated with another qos specs: " + id; obj(t, r.Body, "badRequest")["message"] != want {
			t.Errorf("second association: %s", r.Raw)
		}
		r = e.do("admin", "GET", v3+"/qos-specs/"+id+"/associations", "", "").Expect(t, 200, "")
		assoc := list(t, r.Body, "qos_associations")
		if len(assoc) != 1 || !maps.Equal(assoc[0].(map[string]any), map[string]any{"association_type": "volume_type", "name": "gold", "id": gold}) {
			t.Errorf("associations %s", r.Raw)
		}
		r = e.do("admin", "GET", v3+"/types/"+gold, "", "").Expect(t, 200, "")
		if got := obj(t, r.Body, "volume_type")["qos_specs_id"]; got != id {
			t.Errorf("type qos_specs_id = %v", got)
		}
		r = e.do("alice", "GET", v3+"/types/"+gold, "", "").Expect(t, 200, "")
		if got := obj(t, r.Body, "volume_type")["qos_specs_id"]; got != nil {
			t.Errorf("a member sees qos_specs_id %v", got)
		}
		r = e.do("admin", "GET", v3+"/types", "", "").Expect(t, 200, "")
		for _, x := range list(t, r.Body, "volume_types") {
			if x := x.(map[string]any); (x["id"] == gold) != (x["qos_specs_id"] == id) {
				t.Errorf("type list: %v", x)
			}
		}
		// Delete refuses a spec in use unless forced.
		r = e.do("admin", "DELETE", v3+"/qos-specs/"+id, "", "").Expect(t, 400, "badRequest")
		if obj(t, r.Body, "badRequest")["message"] != "Qos specs still in use." {
			t.Errorf("delete in use: %s", r.Raw)
		}
		e.do("admin", "GET", v3+"/qos-specs/"+id+"/disassociate?vol_type_id="+gold, "", "").Expect(t, 202, "")
		e.do("admin", "GET", v3+"/qos-specs/"+id+"/disassociate?vol_type_id="+gold, "", "").Expect(t, 202, "")
		r = e.do("admin", "GET", v3+"/qos-specs/"+id+"/associations", "", "").Expect(t, 200, "")
		if len(list(t, r.Body, "qos_associations")) != 0 {
			t.Errorf("after disassociate %s", r.Raw)
		}
		r = e.do("admin", "GET", v3+"/types/"+gold, "", "").Expect(t, 200, "")
		if got := obj(t, r.Body, "volume_type")["qos_specs_id"]; got != nil {
			t.Errorf("disassociated type qos_specs_id = %v", got)
		}
		e.do("admin", "GET", v3+"/qos-specs/"+feID+"/associate?vol_type_id="+gold, "", "").Expect(t, 202, "")
		e.do("admin", "GET", v3+"/qos-specs/"+feID+"/associate?vol_type_id="+volume.DefaultTypeID, "", "").Expect(t, 202, "")
		e.do("admin", "GET", v3+"/qos-specs/"+feID+"/disassociate_all", "", "").Expect(t, 202, "")
		r = e.do("admin", "GET", v3+"/qos-specs/"+feID+"/associations", "", "").Expect(t, 200, "")
		if len(list(t, r.Body, "qos_associations")) != 0 {
			t.Errorf("after disassociate_all %s", r.Raw)
		}
		e.do("admin", "GET", v3+"/qos-specs/"+feID+"/associate?vol_type_id="+gold, "", "").Expect(t, 202, "")
		e.do("admin", "DELETE", v3+"/qos-specs/"+feID+"?force=true", "", "").Expect(t, 202, "")
		e.do("admin", "GET", v3+"/qos-specs/"+feID, "", "").Expect(t, 404, "itemNotFound")
		r = e.do("admin", "GET", v3+"/types/"+gold, "", "").Expect(t, 200, "")
		if got := obj(t, r.Body, "volume_type")["qos_specs_id"]; got != nil {
			t.Errorf("type of a force-deleted spec: qos_specs_id = %v", got)
		}
		e.do("admin", "DELETE", v3+"/qos-specs/"+id, "", "").Expect(t, 202, "")
		r = e.do("admin", "GET", v3+"/qos-specs", "", "").Expect(t, 200, "")
		if n := len(list(t, r.Body, "qos_specs")); n != 0 {
			t.Errorf("specs left: %s", r.Raw)
		}
	})
}

// TestQoSConnectionInfo: an attachment of a volume whose type has a
// front-end (or both) spec carries it as connection_info.data.qos_specs,
// per-GB keys scaled by the volume's size; back-end specs stay behind.
func TestQoSConnectionInfo(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, c := range []struct {
		name, spec string
		want       map[string]any // nil: qos_specs null
	}{
		{"front", `"consumer": "front-end", "total_bytes_sec": "1048576", "read_iops_sec": "100"`,
			map[string]any{"total_bytes_sec": "1048576", "read_iops_sec": "100"}},
		{"both", `"consumer": "both", "write_iops_sec_per_gb": "30", "read_iops_sec_per_gb": "1", "read_iops_sec_per_gb_min": "50", "vendor:x": "y"`,
			map[string]any{"write_iops_sec": "60", "read_iops_sec": "50", "vendor:x": "y"}},
		{"back", `"consumer": "back-end", "total_iops_sec": "10"`, nil},
		{"none", ``, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "t-`+c.name+`"}}`).Expect(t, 200, "")
			typ := obj(t, r.Body, "volume_type")["id"].(string)
			if c.spec != "" {
				r = e.do("admin", "POST", v3+"/qos-specs", "", `{"qos_specs": {"name": "q-`+c.name+`", `+c.spec+`}}`).Expect(t, 200, "")
				e.do("admin", "GET", v3+"/qos-specs/"+obj(t, r.Body, "qos_specs")["id"].(string)+"/associate?vol_type_id="+typ, "", "").Expect(t, 202, "")
			}
			v := e.createVolume("alice", `{"volume": {"size": 2, "volume_type": "t-`+c.name+`"}}`)
			body := `{"attachment": {"volume_uuid": "` + v["id"].(string) + `", "instance_uuid": "8a3e1b2c-1111-4222-8333-444455556666", "connector": {"host": "h"}}}`
			r = e.do("alice", "POST", v3+"/attachments", "3.44", body).Expect(t, 200, "")
			data := obj(t, obj(t, obj(t, r.Body, "attachment"), "connection_info"), "data")
			got, present := data["qos_specs"]
			if !present {
				t.Fatalf("no qos_specs in %v", data)
			}
			if c.want == nil {
				if got != nil {
					t.Errorf("qos_specs = %v, want null", got)
				}
				return
			}
			m, _ := got.(map[string]any)
			if !maps.Equal(m, c.want) {
				b, _ := json.Marshal(got)
				t.Errorf("qos_specs = %s, want %v", b, c.want)
			}
		})
	}
}

// TestQoSMigration applies migration 2 to a database at version 1 that
// holds types: they keep their specs and have no QoS spec.
func TestQoSMigration(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		full := volume.Migrations()
		v1 := full
		v1.Expand = full.Expand[:1]
		phases := []db.Phase{db.Expand, db.Contract}
		if err := d.Migrate(t.Context(), phases, v1); err != nil {
			t.Fatal(err)
		}
		err := d.WithTx(t.Context(), func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(t.Context(), `INSERT INTO volume_types (id, name, is_public, created_at) VALUES ('t1', 'old', TRUE, '2026-01-01T00:00:00.000000Z')`); err != nil {
				return err
			}
			_, err := tx.ExecContext(t.Context(), `INSERT INTO volume_type_extra_specs (type_id, key, value) VALUES ('t1', 'k', 'v')`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(t.Context(), phases, full); err != nil {
			t.Fatal(err)
		}
		st := volume.NewStore(d)
		typ, err := st.GetType(t.Context(), nil, "t1", false)
		if err != nil || typ.QoSSpecsID != nil || typ.ExtraSpecs["k"] != "v" {
			t.Fatalf("type after migration: %+v, %v", typ, err)
		}
		if q, err := st.TypeQoS(t.Context(), "t1"); q != nil || err != nil {
			t.Errorf("TypeQoS = %v, %v", q, err)
		}
	})
}
