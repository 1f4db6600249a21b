package placement

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/service"
)

type harness struct {
	t   testing.TB
	svc *Service
	h   http.Handler
}

func newHarness(t testing.TB, d *db.DB) *harness {
	v := authtest.New()
	v.Add("admin", "u-admin", "p-admin", "admin")
	v.Add("svc", "u-nova", "p-service", "service")
	v.Add("member", "u-member", "p-1", "member", "reader")
	svc, err := New(service.Deps{DB: d, Auth: v}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	return &harness{t: t, svc: svc, h: apiutil.Middleware(mux, "http://kumo", nil, nil)}
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// errCode returns the error code of a Placement error body.
func (r reply) errCode() string {
	errs, _ := r.body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	code, _ := errs[0].(map[string]any)["code"].(string)
	return code
}

func (h *harness) do(method, path, ver string, body any, token ...string) reply {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req := httptest.NewRequest(method, path, rd)
	tok := "admin"
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	if ver != "" {
		req.Header.Set("OpenStack-API-Version", "placement "+ver)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	out := reply{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	_ = json.Unmarshal(out.raw, &out.body)
	return out
}

// must asserts a status (and error code when code != "").
func (h *harness) must(r reply, status int, code string) reply {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code != "" && r.errCode() != code {
		h.t.Fatalf("code %q, want %q: %s", r.errCode(), code, r.raw)
	}
	return r
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

const latest = "1.36"

func (h *harness) provider(name, parent string) string {
	h.t.Helper()
	body := map[string]any{"name": name}
	if parent != "" {
		body["parent_provider_uuid"] = parent
	}
	r := h.must(h.do("POST", "/placement/resource_providers", latest, body), 200, "")
	return r.body["uuid"].(string)
}

func (h *harness) inventory(uuid string, invs map[string]any) int64 {
	h.t.Helper()
	g := h.must(h.do("GET", "/placement/resource_providers/"+uuid+"/inventories", latest, nil), 200, "")
	r := h.must(h.do("PUT", "/placement/resource_providers/"+uuid+"/inventories", latest, map[string]any{
		"resource_provider_generation": g.body["resource_provider_generation"], "inventories": invs}), 200, "")
	return num(r.body["resource_provider_generation"])
}

func TestVersionsAndNegotiation(t *testing.T) {
	h := newHarness(t, dbtest.OpenSQLite(t, Migrations()))
	r := h.must(h.do("GET", "/placement/", "", nil, ""), 200, "")
	vs := r.body["versions"].([]any)[0].(map[string]any)
	if vs["min_version"] != "1.0" || vs["max_version"] != latest || vs["id"] != "v1.0" {
		t.Fatalf("versions: %s", r.raw)
	}
	r = h.must(h.do("GET", "/placement/resource_providers", "1.99", nil), 406, "")
	r = h.must(h.do("GET", "/placement/resource_providers", "latest", nil), 200, "")
	if r.header.Get("OpenStack-API-Version") != "placement "+latest {
		t.Fatalf("header %q", r.header.Get("OpenStack-API-Version"))
	}
	if r.header.Get("Cache-Control") != "no-cache" || r.header.Get("Last-Modified") == "" {
		t.Fatalf("1.15 headers missing: %v", r.header)
	}
	// Routes newer than the requested version are 404.
	h.must(h.do("GET", "/placement/traits", "1.5", nil), 404, "")
	h.must(h.do("GET", "/placement/allocation_candidates?resources=VCPU:1", "1.9", nil), 404, "")
	// Auth and policy.
	h.must(h.do("GET", "/placement/resource_providers", latest, nil, ""), 401, "")
	h.must(h.do("GET", "/placement/resource_providers", latest, nil, "member"), 403, "")
	h.must(h.do("GET", "/placement/resource_providers", latest, nil, "svc"), 200, "")
	// Error body: code only from 1.23, detail in Placement's shape.
	r = h.must(h.do("GET", "/placement/resource_providers/nope", "1.22", nil), 404, "")
	e := r.body["errors"].([]any)[0].(map[string]any)
	if _, ok := e["code"]; ok {
		t.Fatalf("code before 1.23: %s", r.raw)
	}
	if !strings.HasPrefix(e["detail"].(string), "The resource could not be found.\n\n ") || e["title"] != "Not Found" || e["request_id"] == "" {
		t.Fatalf("error body: %s", r.raw)
	}
	h.must(h.do("GET", "/placement/resource_providers/nope", "1.23", nil), 404, codeUndefined)
}

func TestProviders(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		// Before 1.20: 201 with Location and no body.
		r := h.must(h.do("POST", "/placement/resource_providers", "1.19", map[string]any{"name": "old", "uuid": "aaaaaaaa-0000-0000-0000-000000000001"}), 201, "")
		if r.header.Get("Location") != "/placement/resource_providers/aaaaaaaa-0000-0000-0000-000000000001" || len(r.raw) != 0 {
			t.Fatalf("1.19 create: %v %s", r.header, r.raw)
		}
		root := h.provider("cn1", "")
		child := h.provider("cn1-numa0", root)
		grandchild := h.provider("cn1-numa0-pf", child)
		r = h.must(h.do("GET", "/placement/resource_providers/"+grandchild, latest, nil), 200, "")
		if r.body["root_provider_uuid"] != root || r.body["parent_provider_uuid"] != child || num(r.body["generation"]) != 0 {
			t.Fatalf("nested: %s", r.raw)
		}
		links := r.body["links"].([]any)
		if len(links) != 6 {
			t.Fatalf("links: %v", links)
		}
		r = h.must(h.do("GET", "/placement/resource_providers/"+root, "1.13", nil), 200, "")
		if _, ok := r.body["root_provider_uuid"]; ok {
			t.Fatalf("root before 1.14: %s", r.raw)
		}
		// Duplicates and bad input.
		h.must(h.do("POST", "/placement/resource_providers", latest, map[string]any{"name": "cn1"}), 409, codeDuplicateName)
		h.must(h.do("POST", "/placement/resource_providers", latest, map[string]any{"name": "x", "uuid": root}), 409, codeDuplicateName)
		h.must(h.do("POST", "/placement/resource_providers", latest, map[string]any{"name": "x", "uuid": "not-a-uuid"}), 400, "")
		h.must(h.do("POST", "/placement/resource_providers", latest, map[string]any{"name": "x", "parent_provider_uuid": "aaaaaaaa-0000-0000-0000-00000000ffff"}), 400, "")
		h.must(h.do("POST", "/placement/resource_providers", latest, map[string]any{"nome": "x"}), 400, "")
		h.must(h.do("POST", "/placement/resource_providers", latest, `{"name": `), 400, "")
		h.must(h.do("POST", "/placement/resource_providers", latest, map[string]any{"name": "x", "parent_provider_uuid": nil, "extra": 1}), 400, "")
		// List filters.
		list := func(q string) int {
			r := h.must(h.do("GET", "/placement/resource_providers"+q, latest, nil), 200, "")
			return len(r.body["resource_providers"].([]any))
		}
		if n := list(""); n != 4 {
			t.Fatalf("list all: %d", n)
		}
		if n := list("?name=cn1"); n != 1 {
			t.Fatalf("name: %d", n)
		}
		if n := list("?uuid=" + child); n != 1 {
			t.Fatalf("uuid: %d", n)
		}
		if n := list("?in_tree=" + grandchild); n != 3 {
			t.Fatalf("in_tree: %d", n)
		}
		h.must(h.do("GET", "/placement/resource_providers?uuid=bad", latest, nil), 400, "")
		h.must(h.do("GET", "/placement/resource_providers?resources=NOPE:1", latest, nil), 400, "")
		h.must(h.do("GET", "/placement/resource_providers?required=CUSTOM_NOPE", latest, nil), 400, "")
		// Update: rename, duplicate name, reparent refused before 1.37.
		r = h.must(h.do("PUT", "/placement/resource_providers/"+child, latest, map[string]any{"name": "numa0"}), 200, "")
		if r.body["name"] != "numa0" || r.body["parent_provider_uuid"] != root {
			t.Fatalf("rename: %s", r.raw)
		}
		h.must(h.do("PUT", "/placement/resource_providers/"+child, latest, map[string]any{"name": "cn1"}), 409, codeDuplicateName)
		other := h.provider("cn2", "")
		h.must(h.do("PUT", "/placement/resource_providers/"+child, latest, map[string]any{"name": "numa0", "parent_provider_uuid": other}), 400, "")
		h.must(h.do("PUT", "/placement/resource_providers/aaaaaaaa-0000-0000-0000-00000000ffff", latest, map[string]any{"name": "q"}), 404, "")
		// Delete: parent with children refused, then bottom-up.
		h.must(h.do("DELETE", "/placement/resource_providers/"+root, latest, nil), 409, codeCannotDeleteParent)
		h.must(h.do("DELETE", "/placement/resource_providers/"+grandchild, latest, nil), 204, "")
		h.must(h.do("DELETE", "/placement/resource_providers/"+grandchild, latest, nil), 404, "")
		// Provider with allocations cannot be deleted.
		h.inventory(other, map[string]any{"VCPU": map[string]any{"total": 4}})
		consumer := "cccccccc-0000-0000-0000-000000000001"
		h.must(h.do("PUT", "/placement/allocations/"+consumer, latest, map[string]any{
			"allocations": map[string]any{other: map[string]any{"resources": map[string]any{"VCPU": 1}}},
			"project_id":  "p", "user_id": "u", "consumer_generation": nil}), 204, "")
		h.must(h.do("DELETE", "/placement/resource_providers/"+other, latest, nil), 409, codeProviderInUse)
	})
}

func TestInventories(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		rp := h.provider("cn", "")
		base := "/placement/resource_providers/" + rp + "/inventories"
		r := h.must(h.do("PUT", base, latest, map[string]any{"resource_provider_generation": 0, "inventories": map[string]any{
			"VCPU":      map[string]any{"total": 8, "allocation_ratio": 2.0, "max_unit": 8},
			"MEMORY_MB": map[string]any{"total": 4096, "reserved": 512, "step_size": 256},
		}}), 200, "")
		if num(r.body["resource_provider_generation"]) != 1 {
			t.Fatalf("gen: %s", r.raw)
		}
		vcpu := r.body["inventories"].(map[string]any)["VCPU"].(map[string]any)
		if num(vcpu["min_unit"]) != 1 || num(vcpu["step_size"]) != 1 || vcpu["allocation_ratio"] != 2.0 || num(vcpu["reserved"]) != 0 {
			t.Fatalf("defaults: %v", vcpu)
		}
		// Stale generation.
		h.must(h.do("PUT", base, latest, map[string]any{"resource_provider_generation": 0, "inventories": map[string]any{}}), 409, codeConcurrentUpdate)
		// Bad inventories: negative, inconsistent, unknown class, bad type, reserved > total.
		for _, inv := range []map[string]any{
			{"VCPU": map[string]any{"total": -1}},
			{"VCPU": map[string]any{"total": 4, "reserved": 5}},
			{"VCPU": map[string]any{"total": 4, "min_unit": 5, "max_unit": 2}},
			{"VCPU": map[string]any{"total": 4, "allocation_ratio": -1}},
			{"CUSTOM_NOPE": map[string]any{"total": 4}},
			{"VCPU": map[string]any{"total": "4"}},
			{"VCPU": map[string]any{"total": 4, "bogus": 1}},
			{"vcpu": map[string]any{"total": 4}},
		} {
			h.must(h.do("PUT", base, latest, map[string]any{"resource_provider_generation": 1, "inventories": inv}), 400, "")
		}
		// reserved == total only from 1.26.
		h.must(h.do("PUT", base, "1.25", map[string]any{"resource_provider_generation": 1, "inventories": map[string]any{"VCPU": map[string]any{"total": 4, "reserved": 4}}}), 400, "")
		// Nothing half-written: generation still 1.
		r = h.must(h.do("GET", base, latest, nil), 200, "")
		if num(r.body["resource_provider_generation"]) != 1 || len(r.body["inventories"].(map[string]any)) != 2 {
			t.Fatalf("after failures: %s", r.raw)
		}
		// POST one, GET one, PUT one, DELETE one.
		r = h.must(h.do("POST", base, latest, map[string]any{"resource_class": "DISK_GB", "total": 100, "resource_provider_generation": 1}), 201, "")
		if !strings.HasSuffix(r.header.Get("Location"), "/inventories/DISK_GB") || num(r.body["resource_provider_generation"]) != 2 {
			t.Fatalf("post: %v %s", r.header, r.raw)
		}
		h.must(h.do("POST", base, latest, map[string]any{"resource_class": "DISK_GB", "total": 100, "resource_provider_generation": 2}), 409, "")
		r = h.must(h.do("GET", base+"/DISK_GB", latest, nil), 200, "")
		if num(r.body["total"]) != 100 {
			t.Fatalf("get one: %s", r.raw)
		}
		h.must(h.do("GET", base+"/PCPU", latest, nil), 404, "")
		h.must(h.do("PUT", base+"/DISK_GB", latest, map[string]any{"total": 200, "resource_provider_generation": 1}), 409, codeConcurrentUpdate)
		r = h.must(h.do("PUT", base+"/DISK_GB", latest, map[string]any{"total": 200, "resource_provider_generation": 2}), 200, "")
		if num(r.body["total"]) != 200 || num(r.body["resource_provider_generation"]) != 3 {
			t.Fatalf("put one: %s", r.raw)
		}
		h.must(h.do("PUT", base+"/PCPU", latest, map[string]any{"total": 2, "resource_provider_generation": 3}), 400, "")
		// In-use inventory cannot be removed.
		h.must(h.do("PUT", "/placement/allocations/cccccccc-0000-0000-0000-000000000002", latest, map[string]any{
			"allocations": map[string]any{rp: map[string]any{"resources": map[string]any{"DISK_GB": 50}}},
			"project_id":  "p", "user_id": "u", "consumer_generation": nil}), 204, "")
		h.must(h.do("DELETE", base+"/DISK_GB", latest, nil), 409, codeInventoryInUse)
		h.must(h.do("DELETE", base, latest, nil), 409, codeInventoryInUse)
		g := num(h.must(h.do("GET", base, latest, nil), 200, "").body["resource_provider_generation"])
		h.must(h.do("PUT", base, latest, map[string]any{"resource_provider_generation": g, "inventories": map[string]any{
			"VCPU": map[string]any{"total": 8}}}), 409, codeInventoryInUse)
		// Lowering capacity below usage is accepted, as Placement does.
		h.must(h.do("PUT", base+"/DISK_GB", latest, map[string]any{"total": 10, "resource_provider_generation": g}), 200, "")
		h.must(h.do("DELETE", base+"/VCPU", latest, nil), 204, "")
		h.must(h.do("DELETE", base+"/VCPU", latest, nil), 404, "")
		// Content type.
		req := h.do("PUT", base, latest, nil)
		_ = req
		r = h.doRaw("PUT", base, "text/plain", `{}`)
		h.must(r, 415, "")
	})
}

func (h *harness) doRaw(method, path, ctype, body string) reply {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-Auth-Token", "admin")
	req.Header.Set("Content-Type", ctype)
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	out := reply{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	_ = json.Unmarshal(out.raw, &out.body)
	return out
}

func TestClassesAndTraits(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		r := h.must(h.do("GET", "/placement/resource_classes", latest, nil), 200, "")
		if len(r.body["resource_classes"].([]any)) != len(standardClasses) {
			t.Fatalf("classes: %s", r.raw)
		}
		h.must(h.do("POST", "/placement/resource_classes", latest, map[string]any{"name": "CUSTOM_GOLD"}), 201, "")
		h.must(h.do("POST", "/placement/resource_classes", latest, map[string]any{"name": "CUSTOM_GOLD"}), 409, codeDuplicateName)
		h.must(h.do("POST", "/placement/resource_classes", latest, map[string]any{"name": "GOLD"}), 400, "")
		h.must(h.do("GET", "/placement/resource_classes/CUSTOM_GOLD", latest, nil), 200, "")
		h.must(h.do("GET", "/placement/resource_classes/CUSTOM_NONE", latest, nil), 404, "")
		h.must(h.do("PUT", "/placement/resource_classes/CUSTOM_SILVER", latest, nil), 201, "")
		h.must(h.do("PUT", "/placement/resource_classes/CUSTOM_SILVER", latest, nil), 204, "")
		h.must(h.do("PUT", "/placement/resource_classes/VCPU", latest, nil), 400, "")
		h.must(h.do("DELETE", "/placement/resource_classes/VCPU", latest, nil), 400, "")
		rp := h.provider("cn", "")
		h.inventory(rp, map[string]any{"CUSTOM_GOLD": map[string]any{"total": 1}})
		h.must(h.do("DELETE", "/placement/resource_classes/CUSTOM_GOLD", latest, nil), 409, "")
		h.must(h.do("DELETE", "/placement/resource_classes/CUSTOM_SILVER", latest, nil), 204, "")
		h.must(h.do("DELETE", "/placement/resource_classes/CUSTOM_SILVER", latest, nil), 404, "")
		// 1.2-1.6 rename.
		h.must(h.do("POST", "/placement/resource_classes", "1.2", map[string]any{"name": "CUSTOM_A"}), 201, "")
		r = h.must(h.do("PUT", "/placement/resource_classes/CUSTOM_A", "1.6", map[string]any{"name": "CUSTOM_B"}), 200, "")
		if r.body["name"] != "CUSTOM_B" {
			t.Fatalf("rename: %s", r.raw)
		}

		// Traits.
		h.must(h.do("PUT", "/placement/traits/CUSTOM_FAST", latest, nil), 201, "")
		h.must(h.do("PUT", "/placement/traits/CUSTOM_FAST", latest, nil), 204, "")
		h.must(h.do("PUT", "/placement/traits/FAST", latest, nil), 400, "")
		h.must(h.do("GET", "/placement/traits/CUSTOM_FAST", latest, nil), 204, "")
		h.must(h.do("GET", "/placement/traits/HW_CPU_X86_AVX2", latest, nil), 204, "")
		h.must(h.do("GET", "/placement/traits/CUSTOM_SLOW", latest, nil), 404, "")
		r = h.must(h.do("GET", "/placement/traits?name=startswith:CUSTOM", latest, nil), 200, "")
		if got := r.body["traits"].([]any); len(got) != 1 || got[0] != "CUSTOM_FAST" {
			t.Fatalf("startswith: %s", r.raw)
		}
		r = h.must(h.do("GET", "/placement/traits?name=in:CUSTOM_FAST,HW_CPU_X86_AVX,NOPE", latest, nil), 200, "")
		if len(r.body["traits"].([]any)) != 2 {
			t.Fatalf("in: %s", r.raw)
		}
		h.must(h.do("GET", "/placement/traits?name=CUSTOM", latest, nil), 400, "")
		h.must(h.do("GET", "/placement/traits?associated=maybe", latest, nil), 400, "")
		// Provider traits with generations.
		base := "/placement/resource_providers/" + rp + "/traits"
		g := num(h.must(h.do("GET", base, latest, nil), 200, "").body["resource_provider_generation"])
		r = h.must(h.do("PUT", base, latest, map[string]any{"traits": []string{"CUSTOM_FAST", "HW_CPU_X86_AVX"}, "resource_provider_generation": g}), 200, "")
		if num(r.body["resource_provider_generation"]) != g+1 || len(r.body["traits"].([]any)) != 2 {
			t.Fatalf("put traits: %s", r.raw)
		}
		h.must(h.do("PUT", base, latest, map[string]any{"traits": []string{"CUSTOM_FAST"}, "resource_provider_generation": g}), 409, codeConcurrentUpdate)
		h.must(h.do("PUT", base, latest, map[string]any{"traits": []string{"CUSTOM_NOPE"}, "resource_provider_generation": g + 1}), 400, "")
		h.must(h.do("PUT", base, latest, map[string]any{"traits": []string{"bad-name"}, "resource_provider_generation": g + 1}), 400, "")
		r = h.must(h.do("GET", "/placement/traits?associated=true", latest, nil), 200, "")
		if len(r.body["traits"].([]any)) != 2 {
			t.Fatalf("associated: %s", r.raw)
		}
		h.must(h.do("DELETE", "/placement/traits/CUSTOM_FAST", latest, nil), 409, "")
		h.must(h.do("DELETE", "/placement/traits/HW_CPU_X86_AVX", latest, nil), 400, "")
		// List providers by required traits.
		other := h.provider("cn2", "")
		_ = other
		r = h.must(h.do("GET", "/placement/resource_providers?required=CUSTOM_FAST", latest, nil), 200, "")
		if len(r.body["resource_providers"].([]any)) != 1 {
			t.Fatalf("required: %s", r.raw)
		}
		r = h.must(h.do("GET", "/placement/resource_providers?required=!CUSTOM_FAST", latest, nil), 200, "")
		if len(r.body["resource_providers"].([]any)) != 1 {
			t.Fatalf("forbidden: %s", r.raw)
		}
		h.must(h.do("DELETE", base, latest, nil), 204, "")
		h.must(h.do("DELETE", "/placement/traits/CUSTOM_FAST", latest, nil), 204, "")
	})
}

func TestAggregates(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		rp := h.provider("cn", "")
		rp2 := h.provider("cn2", "")
		base := "/placement/resource_providers/" + rp + "/aggregates"
		const a1, a2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
		// Before 1.19: a bare list, no generation.
		r := h.must(h.do("PUT", base, "1.18", []string{a1}), 200, "")
		if _, ok := r.body["resource_provider_generation"]; ok {
			t.Fatalf("1.18: %s", r.raw)
		}
		r = h.must(h.do("GET", base, latest, nil), 200, "")
		g := num(r.body["resource_provider_generation"])
		r = h.must(h.do("PUT", base, latest, map[string]any{"aggregates": []string{a1, a2}, "resource_provider_generation": g}), 200, "")
		if len(r.body["aggregates"].([]any)) != 2 || num(r.body["resource_provider_generation"]) != g+1 {
			t.Fatalf("put: %s", r.raw)
		}
		h.must(h.do("PUT", base, latest, map[string]any{"aggregates": []string{a1}, "resource_provider_generation": g}), 409, codeConcurrentUpdate)
		h.must(h.do("PUT", base, latest, map[string]any{"aggregates": []string{"nope"}, "resource_provider_generation": g + 1}), 400, "")
		h.must(h.do("PUT", base, latest, map[string]any{"aggregates": []string{a1, a1}, "resource_provider_generation": g + 1}), 400, "")
		h.must(h.do("PUT", base, latest, []string{a1}), 400, "")
		h.must(h.do("PUT", "/placement/resource_providers/"+rp2+"/aggregates", latest, map[string]any{"aggregates": []string{a2}, "resource_provider_generation": 0}), 200, "")
		list := func(q string) int {
			r := h.must(h.do("GET", "/placement/resource_providers?"+q, latest, nil), 200, "")
			return len(r.body["resource_providers"].([]any))
		}
		if list("member_of="+a1) != 1 || list("member_of=in:"+a1+","+a2) != 2 || list("member_of="+a2+"&member_of=!"+a1) != 1 {
			t.Fatal("member_of filters")
		}
		if list("member_of="+a1+"&member_of=!"+a1) != 0 {
			t.Fatal("member_of contradiction")
		}
		h.must(h.do("GET", "/placement/resource_providers?member_of=bad", latest, nil), 400, "")
	})
}

func TestAllocations(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d)
		rp := h.provider("cn", "")
		rp2 := h.provider("cn2", "")
		h.inventory(rp, map[string]any{"VCPU": map[string]any{"total": 4, "max_unit": 4}, "MEMORY_MB": map[string]any{"total": 1024, "step_size": 256}})
		h.inventory(rp2, map[string]any{"VCPU": map[string]any{"total": 4}})
		const c1, c2 = "cccccccc-0000-0000-0000-000000000001", "cccccccc-0000-0000-0000-000000000002"
		put := func(consumer string, gen any, allocs map[string]any, ver string) reply {
			body := map[string]any{"allocations": allocs, "project_id": "proj", "user_id": "user"}
			if ver >= "1.28" {
				body["consumer_generation"] = gen
			}
			return h.do("PUT", "/placement/allocations/"+consumer, ver, body)
		}
		res := func(p string, r map[string]any) map[string]any {
			return map[string]any{p: map[string]any{"resources": r}}
		}
		h.must(put(c1, nil, res(rp, map[string]any{"VCPU": 2, "MEMORY_MB": 512}), latest), 204, "")
		r := h.must(h.do("GET", "/placement/allocations/"+c1, latest, nil), 200, "")
		if num(r.body["consumer_generation"]) != 1 || r.body["project_id"] != "proj" {
			t.Fatalf("get: %s", r.raw)
		}
		a := r.body["allocations"].(map[string]any)[rp].(map[string]any)
		if num(a["resources"].(map[string]any)["VCPU"]) != 2 || num(a["generation"]) != 2 {
			t.Fatalf("alloc: %s", r.raw)
		}
		// Consumer generation.
		h.must(put(c1, nil, res(rp, map[string]any{"VCPU": 1}), latest), 409, codeConcurrentUpdate)
		h.must(put(c1, 5, res(rp, map[string]any{"VCPU": 1}), latest), 409, codeConcurrentUpdate)
		h.must(put(c2, 1, res(rp, map[string]any{"VCPU": 1}), latest), 409, codeConcurrentUpdate)
		// Capacity and constraints; nothing half-written.
		h.must(put(c2, nil, res(rp, map[string]any{"VCPU": 3}), latest), 409, "")
		h.must(put(c2, nil, res(rp, map[string]any{"MEMORY_MB": 100}), latest), 409, "")
		h.must(put(c2, nil, map[string]any{
			rp2: map[string]any{"resources": map[string]any{"VCPU": 1}},
			rp:  map[string]any{"resources": map[string]any{"VCPU": 5}}}, latest), 409, "")
		r = h.must(h.do("GET", "/placement/resource_providers/"+rp2+"/usages", latest, nil), 200, "")
		if num(r.body["usages"].(map[string]any)["VCPU"]) != 0 {
			t.Fatalf("half-written: %s", r.raw)
		}
		h.must(put(c2, nil, res(rp, map[string]any{"DISK_GB": 1}), latest), 409, "")
		h.must(put(c2, nil, res(rp, map[string]any{"CUSTOM_NOPE": 1}), latest), 400, "")
		h.must(put(c2, nil, res("dddddddd-0000-0000-0000-000000000000", map[string]any{"VCPU": 1}), latest), 400, "")
		h.must(put(c2, nil, res(rp, map[string]any{"VCPU": 0}), latest), 400, "")
		h.must(put(c2, nil, res(rp, map[string]any{"VCPU": "1"}), latest), 400, "")
		h.must(put("not-a-uuid", nil, res(rp, map[string]any{"VCPU": 1}), latest), 400, "")
		h.must(h.do("PUT", "/placement/allocations/"+c2, latest, map[string]any{"allocations": res(rp, map[string]any{"VCPU": 1})}), 400, "")
		// Pre-1.12 list format; pre-1.28 no generation.
		h.must(h.do("PUT", "/placement/allocations/"+c2, "1.8", map[string]any{
			"allocations": []any{map[string]any{"resource_provider": map[string]any{"uuid": rp2}, "resources": map[string]any{"VCPU": 2}}},
			"project_id":  "proj", "user_id": "user"}), 204, "")
		h.must(h.do("PUT", "/placement/allocations/"+c2, "1.7", map[string]any{
			"allocations": []any{map[string]any{"resource_provider": map[string]any{"uuid": rp2}, "resources": map[string]any{"VCPU": 1}}}}), 204, "")
		r = h.must(h.do("GET", "/placement/allocations/"+c2, "1.11", nil), 200, "")
		if _, ok := r.body["project_id"]; ok {
			t.Fatalf("1.11 has project: %s", r.raw)
		}
		h.must(put(c2, nil, res(rp2, map[string]any{"VCPU": 1}), "1.27"), 204, "")
		// Usages.
		r = h.must(h.do("GET", "/placement/usages?project_id=proj", latest, nil), 200, "")
		if u := r.body["usages"].(map[string]any); num(u["VCPU"]) != 3 || num(u["MEMORY_MB"]) != 512 {
			t.Fatalf("usages: %s", r.raw)
		}
		h.must(h.do("GET", "/placement/usages", latest, nil), 400, "")
		r = h.must(h.do("GET", "/placement/resource_providers/"+rp+"/allocations", latest, nil), 200, "")
		if _, ok := r.body["allocations"].(map[string]any)[c1]; !ok {
			t.Fatalf("provider allocations: %s", r.raw)
		}
		// Move: POST /allocations swaps c1 to rp2 and gives c2 nothing, atomically.
		gen1 := num(h.must(h.do("GET", "/placement/allocations/"+c1, latest, nil), 200, "").body["consumer_generation"])
		gen2 := num(h.must(h.do("GET", "/placement/allocations/"+c2, latest, nil), 200, "").body["consumer_generation"])
		h.must(h.do("POST", "/placement/allocations", latest, map[string]any{
			c1: map[string]any{"allocations": res(rp2, map[string]any{"VCPU": 4}), "project_id": "proj", "user_id": "user", "consumer_generation": gen1},
			c2: map[string]any{"allocations": map[string]any{}, "project_id": "proj", "user_id": "user", "consumer_generation": gen2},
		}), 204, "")
		r = h.must(h.do("GET", "/placement/allocations/"+c2, latest, nil), 200, "")
		if len(r.body["allocations"].(map[string]any)) != 0 {
			t.Fatalf("c2 after move: %s", r.raw)
		}
		// A failing move changes nothing.
		h.must(h.do("POST", "/placement/allocations", latest, map[string]any{
			c1: map[string]any{"allocations": res(rp, map[string]any{"VCPU": 1}), "project_id": "proj", "user_id": "user", "consumer_generation": gen1},
			c2: map[string]any{"allocations": res(rp2, map[string]any{"VCPU": 1}), "project_id": "proj", "user_id": "user", "consumer_generation": nil},
		}), 409, "")
		h.must(h.do("POST", "/placement/allocations", latest, map[string]any{}), 400, "")
		h.must(h.do("POST", "/placement/allocations", "1.12", map[string]any{}), 404, "")
		r = h.must(h.do("GET", "/placement/resource_providers/"+rp2+"/usages", latest, nil), 200, "")
		if num(r.body["usages"].(map[string]any)["VCPU"]) != 4 {
			t.Fatalf("usages after move: %s", r.raw)
		}
		h.must(h.do("DELETE", "/placement/allocations/"+c1, latest, nil), 204, "")
		h.must(h.do("DELETE", "/placement/allocations/"+c1, latest, nil), 404, "")
		r = h.must(h.do("GET", "/placement/resource_providers/"+rp2+"/usages", latest, nil), 200, "")
		if num(r.body["usages"].(map[string]any)["VCPU"]) != 0 {
			t.Fatalf("usages after delete: %s", r.raw)
		}
	})
}
