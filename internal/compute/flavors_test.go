package compute_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
)

func flavorNames(t *testing.T, r resp) []string {
	var out []string
	for _, f := range list(t, r.Body, "flavors") {
		out = append(out, f.(map[string]any)["name"].(string))
	}
	return out
}

func TestSeededFlavorsAndViewsPerVersion(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	e.do("admin", "POST", v21+"/flavors/1/os-extra_specs", "", `{"extra_specs": {"hw:numa_nodes": "1"}}`).Expect(t, 200, "")
	for _, tc := range []struct {
		version              string
		swap                 any
		description, extraSp bool
	}{
		{"2.1", "", false, false},
		{"2.54", "", false, false},
		{"2.55", "", true, false},
		{"2.61", "", true, true},
		{"2.74", "", true, true},
		{"2.75", float64(0), true, true},
		{"2.96", float64(0), true, true},
	} {
		t.Run(tc.version, func(t *testing.T) {
			f := obj(t, e.do("alice", "GET", v21+"/flavors/1", tc.version, "").Expect(t, 200, "").Body, "flavor")
			if f["swap"] != tc.swap {
				t.Errorf("swap = %#v, want %#v", f["swap"], tc.swap)
			}
			if _, ok := f["description"]; ok != tc.description {
				t.Errorf("description present = %v", ok)
			}
			if _, ok := f["extra_specs"]; ok != tc.extraSp {
				t.Errorf("extra_specs present = %v", ok)
			}
			for _, k := range []string{"id", "name", "ram", "disk", "vcpus", "links", "OS-FLV-EXT-DATA:ephemeral",
				"OS-FLV-DISABLED:disabled", "os-flavor-access:is_public", "rxtx_factor"} {
				if _, ok := f[k]; !ok {
					t.Errorf("missing %s", k)
				}
			}
			if f["name"] != "m1.tiny" || f["ram"] != float64(512) || f["rxtx_factor"] != 1.0 {
				t.Errorf("flavor %v", f)
			}
			l := f["links"].([]any)
			if l[0].(map[string]any)["href"] != publicURL+"/compute/v2.1/flavors/1" ||
				l[1].(map[string]any)["href"] != publicURL+"/compute/flavors/1" {
				t.Errorf("links %v", l)
			}
			// The summary list has only id, name, links (+ description).
			s := list(t, e.do("alice", "GET", v21+"/flavors", tc.version, "").Expect(t, 200, "").Body, "flavors")[0].(map[string]any)
			want := 3
			if tc.description {
				want = 4
			}
			if len(s) != want {
				t.Errorf("summary %v", s)
			}
		})
	}
	if got := flavorNames(t, e.do("alice", "GET", v21+"/flavors", "", "")); len(got) != 7 {
		t.Fatalf("seeded flavors %v", got)
	}
}

func TestFlavorListFilters(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "private", "ram": 1024, "vcpus": 1, "disk": 10, "id": "priv", "os-flavor-access:is_public": false}}`).Expect(t, 200, "")
	names := func(tok, q string) string {
		return strings.Join(flavorNames(t, e.do(tok, "GET", v21+"/flavors/detail"+q, "", "").Expect(t, 200, "")), ",")
	}
	for _, tc := range []struct{ tok, q, want string }{
		{"alice", "", "m1.tiny,m1.small,m1.medium,m1.large,m1.nano,m1.xlarge,m1.micro"},
		{"admin", "", "m1.tiny,m1.small,m1.medium,m1.large,m1.nano,m1.xlarge,m1.micro,private"},
		{"admin", "?is_public=false", "private"},
		{"admin", "?is_public=None", "m1.tiny,m1.small,m1.medium,m1.large,m1.nano,m1.xlarge,m1.micro,private"},
		{"alice", "?is_public=false", "m1.tiny,m1.small,m1.medium,m1.large,m1.nano,m1.xlarge,m1.micro"},
		{"alice", "?minRam=4096", "m1.medium,m1.large,m1.xlarge"},
		{"alice", "?minDisk=80&sort_key=memory_mb&sort_dir=desc", "m1.xlarge,m1.large"},
		{"alice", "?sort_key=name", "m1.large,m1.medium,m1.micro,m1.nano,m1.small,m1.tiny,m1.xlarge"},
		{"alice", "?limit=2", "m1.tiny,m1.small"},
		{"alice", "?limit=2&marker=2", "m1.medium,m1.large"},
		{"alice", "?sort_key=memory_mb&limit=2&marker=84", "m1.tiny,m1.small"},
	} {
		if got := names(tc.tok, tc.q); got != tc.want {
			t.Errorf("%s %s: got %s, want %s", tc.tok, tc.q, got, tc.want)
		}
	}
	// Private flavor visible to a project once given access.
	e.do("admin", "POST", v21+"/flavors/priv/action", "", `{"addTenantAccess": {"tenant": "p1"}}`).Expect(t, 200, "")
	if got := names("alice", "?minRam=1024&minDisk=10&sort_key=name"); got != "m1.large,m1.medium,m1.small,m1.xlarge,private" {
		t.Errorf("after access: %s", got)
	}
	if got := names("bob", "?minRam=1024&minDisk=10&sort_key=name"); got != "m1.large,m1.medium,m1.small,m1.xlarge" {
		t.Errorf("other project: %s", got)
	}
	// Pagination links.
	r := e.do("alice", "GET", v21+"/flavors?limit=2", "", "").Expect(t, 200, "")
	l := list(t, r.Body, "flavors_links")[0].(map[string]any)
	if l["rel"] != "next" || l["href"] != publicURL+"/compute/v2.1/flavors?limit=2&marker=2" {
		t.Errorf("next link %v", l)
	}
	if _, ok := e.do("alice", "GET", v21+"/flavors", "", "").Body["flavors_links"]; ok {
		t.Errorf("links on a last page")
	}
	for _, q := range []string{"?marker=nope", "?limit=-1", "?limit=x", "?minRam=x", "?minDisk=1.5", "?sort_key=bogus", "?sort_dir=up", "?is_public=maybe"} {
		tok := "alice"
		if q == "?is_public=maybe" {
			tok = "admin"
		}
		e.do(tok, "GET", v21+"/flavors"+q, "", "").Expect(t, 400, "badRequest")
	}
}

func TestFlavorManage(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	// Generated UUID id, defaults, 2.55 description, 2.61 extra_specs, 2.75 swap.
	r := e.do("admin", "POST", v21+"/flavors", "2.75", `{"flavor": {"name": "test", "ram": "256", "vcpus": 2, "disk": 0, "description": "d"}}`).Expect(t, 200, "")
	f := obj(t, r.Body, "flavor")
	id := f["id"].(string)
	if len(id) != 36 || f["swap"] != float64(0) || f["description"] != "d" || f["os-flavor-access:is_public"] != true || f["ram"] != float64(256) {
		t.Fatalf("created %v", f)
	}
	if specs, ok := f["extra_specs"].(map[string]any); !ok || len(specs) != 0 {
		t.Fatalf("extra_specs %v", f["extra_specs"])
	}
	// Numeric id, ephemeral, swap, rxtx.
	r = e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "n", "ram": 1, "vcpus": 1, "disk": 1, "id": 77, "swap": 512, "OS-FLV-EXT-DATA:ephemeral": 5, "rxtx_factor": 2.5}}`).Expect(t, 200, "")
	f = obj(t, r.Body, "flavor")
	if f["id"] != "77" || f["swap"] != float64(512) || f["OS-FLV-EXT-DATA:ephemeral"] != float64(5) || f["rxtx_factor"] != 2.5 {
		t.Fatalf("created %v", f)
	}
	// Duplicates.
	e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "n", "ram": 1, "vcpus": 1, "disk": 1}}`).Expect(t, 409, "conflictingRequest")
	e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "other", "ram": 1, "vcpus": 1, "disk": 1, "id": "77"}}`).Expect(t, 409, "conflictingRequest")
	// Bad input.
	for _, body := range []string{
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1}}`,
		`{"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 1}}`,
		`{"flavor": {"name": "x", "ram": -1, "vcpus": 1, "disk": 1}}`,
		`{"flavor": {"name": "x", "ram": "abc", "vcpus": 1, "disk": 1}}`,
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "bogus": 1}}`,
		`{"flavor": {"name": " x", "ram": 1, "vcpus": 1, "disk": 1}}`,
		`{"flavor": {"name": "` + strings.Repeat("a", 256) + `", "ram": 1, "vcpus": 1, "disk": 1}}`,
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "id": "bad/id"}}`,
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "rxtx_factor": 0}}`,
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": "maybe"}}`,
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "description": "d"}}`, // before 2.55
		`{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "OS-FLV-DISABLED:disabled": true}}`,
		`{"flavor": {"name": "x", "ram": 3000000000, "vcpus": 1, "disk": 1}}`,
		`{"flavor": `, `[]`, ``,
	} {
		e.do("admin", "POST", v21+"/flavors", "", body).Expect(t, 400, "badRequest")
	}
	// Only admins manage flavors.
	e.do("alice", "POST", v21+"/flavors", "", `{"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}}`).Expect(t, 403, "forbidden")
	e.do("alice", "DELETE", v21+"/flavors/77", "", "").Expect(t, 403, "forbidden")
	// Update (2.55+) description.
	e.do("admin", "PUT", v21+"/flavors/77", "2.54", `{"flavor": {"description": "x"}}`).Expect(t, 404, "itemNotFound")
	r = e.do("admin", "PUT", v21+"/flavors/77", "2.55", `{"flavor": {"description": "new"}}`).Expect(t, 200, "")
	if obj(t, r.Body, "flavor")["description"] != "new" {
		t.Fatalf("update %v", r.Body)
	}
	e.do("admin", "PUT", v21+"/flavors/77", "2.55", `{"flavor": {"name": "new"}}`).Expect(t, 400, "badRequest")
	e.do("admin", "PUT", v21+"/flavors/nope", "2.55", `{"flavor": {"description": null}}`).Expect(t, 404, "itemNotFound")
	e.do("alice", "PUT", v21+"/flavors/77", "2.55", `{"flavor": {"description": "x"}}`).Expect(t, 403, "forbidden")
	// Delete.
	e.do("admin", "DELETE", v21+"/flavors/77", "", "").Expect(t, 202, "")
	e.do("admin", "DELETE", v21+"/flavors/77", "", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "GET", v21+"/flavors/77", "", "").Expect(t, 404, "itemNotFound")
}

func TestFlavorExtraSpecs(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	base := v21 + "/flavors/1/os-extra_specs"
	r := e.do("admin", "POST", base, "", `{"extra_specs": {"hw:cpu_policy": "shared", "n": 1}}`).Expect(t, 200, "")
	if obj(t, r.Body, "extra_specs")["n"] != float64(1) {
		t.Fatalf("echo %v", r.Body)
	}
	r = e.do("rob", "GET", base, "", "").Expect(t, 200, "")
	if s := obj(t, r.Body, "extra_specs"); s["n"] != "1" || s["hw:cpu_policy"] != "shared" {
		t.Fatalf("list %v", r.Body)
	}
	if e.do("rob", "GET", base+"/n", "", "").Expect(t, 200, "").Body["n"] != "1" {
		t.Fatal("show")
	}
	e.do("rob", "GET", base+"/none", "", "").Expect(t, 404, "itemNotFound")
	r = e.do("admin", "PUT", base+"/n", "", `{"n": "2"}`).Expect(t, 200, "")
	if r.Body["n"] != "2" {
		t.Fatalf("update %v", r.Body)
	}
	e.do("admin", "PUT", base+"/n", "", `{"m": "2"}`).Expect(t, 400, "badRequest")
	e.do("admin", "PUT", base+"/n", "", `{"n": "2", "m": "3"}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", base, "", `{"extra_specs": {"bad/key": "1"}}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", base, "", `{"extra_specs": {"k": "`+strings.Repeat("v", 256)+`"}}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", base, "", `{"specs": {}}`).Expect(t, 400, "badRequest")
	// Validation of known keys from 2.86 only; unknown keys pass.
	e.do("admin", "POST", base, "2.85", `{"extra_specs": {"hw:cpu_policy": "bogus"}}`).Expect(t, 200, "")
	e.do("admin", "POST", base, "2.86", `{"extra_specs": {"hw:cpu_policy": "bogus"}}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", base, "2.86", `{"extra_specs": {"resources:VCPU": "x"}}`).Expect(t, 400, "badRequest")
	e.do("admin", "POST", base, "2.86", `{"extra_specs": {"trait:HW_CPU_X86_AVX": "required", "hw:unknown_thing": "x", "resources:CUSTOM_GPU": "1"}}`).Expect(t, 200, "")
	// Policy and missing flavor.
	e.do("alice", "POST", base, "", `{"extra_specs": {"a": "b"}}`).Expect(t, 403, "forbidden")
	e.do("alice", "DELETE", base+"/n", "", "").Expect(t, 403, "forbidden")
	e.do("admin", "GET", v21+"/flavors/nope/os-extra_specs", "", "").Expect(t, 404, "itemNotFound")
	e.do("admin", "POST", v21+"/flavors/nope/os-extra_specs", "", `{"extra_specs": {"a": "b"}}`).Expect(t, 404, "itemNotFound")
	e.do("admin", "DELETE", base+"/n", "", "").Expect(t, 200, "") // Nova answers 200 with no body
	e.do("admin", "DELETE", base+"/n", "", "").Expect(t, 404, "itemNotFound")
}

func TestFlavorAccess(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	e.do("admin", "POST", v21+"/flavors", "", `{"flavor": {"name": "p", "ram": 1, "vcpus": 1, "disk": 1, "id": "p", "os-flavor-access:is_public": "False"}}`).Expect(t, 200, "")
	act := func(tok, version, flavor, body string) resp {
		return e.do(tok, "POST", v21+"/flavors/"+flavor+"/action", version, body)
	}
	r := act("admin", "", "p", `{"addTenantAccess": {"tenant": "p1"}}`).Expect(t, 200, "")
	fa := list(t, r.Body, "flavor_access")
	if len(fa) != 1 || fmt.Sprint(fa[0]) != "map[flavor_id:p tenant_id:p1]" {
		t.Fatalf("access %v", fa)
	}
	act("admin", "", "p", `{"addTenantAccess": {"tenant": "p1"}}`).Expect(t, 409, "conflictingRequest")
	act("admin", "", "p", `{"addTenantAccess": {"tenant": "p2"}}`).Expect(t, 200, "")
	r = e.do("admin", "GET", v21+"/flavors/p/os-flavor-access", "", "").Expect(t, 200, "")
	if len(list(t, r.Body, "flavor_access")) != 2 {
		t.Fatalf("list %v", r.Body)
	}
	act("admin", "", "p", `{"removeTenantAccess": {"tenant": "p2"}}`).Expect(t, 200, "")
	act("admin", "", "p", `{"removeTenantAccess": {"tenant": "p2"}}`).Expect(t, 404, "itemNotFound")
	act("admin", "", "nope", `{"addTenantAccess": {"tenant": "p2"}}`).Expect(t, 404, "itemNotFound")
	act("admin", "", "nope", `{"removeTenantAccess": {"tenant": "p2"}}`).Expect(t, 404, "itemNotFound")
	// Public flavors: 409 from 2.7, no access list.
	act("admin", "2.7", "1", `{"addTenantAccess": {"tenant": "p2"}}`).Expect(t, 409, "conflictingRequest")
	e.do("admin", "GET", v21+"/flavors/1/os-flavor-access", "", "").Expect(t, 404, "itemNotFound")
	e.do("admin", "GET", v21+"/flavors/nope/os-flavor-access", "", "").Expect(t, 404, "itemNotFound")
	// Bad bodies, unknown actions, policy.
	act("admin", "", "p", `{"addTenantAccess": {}}`).Expect(t, 400, "badRequest")
	act("admin", "", "p", `{"addTenantAccess": {"tenant": "p3", "x": 1}}`).Expect(t, 400, "badRequest")
	act("admin", "", "p", `{"addTenantAccess": {"tenant": ""}}`).Expect(t, 400, "badRequest")
	act("admin", "", "p", `{"fly": {}}`).Expect(t, 400, "badRequest")
	act("admin", "", "p", `nope`).Expect(t, 400, "badRequest")
	act("alice", "", "p", `{"addTenantAccess": {"tenant": "p1"}}`).Expect(t, 403, "forbidden")
	e.do("alice", "GET", v21+"/flavors/p/os-flavor-access", "", "").Expect(t, 403, "forbidden")
	// A private flavor can be shown by id by anyone (as in Nova).
	e.do("bob", "GET", v21+"/flavors/p", "", "").Expect(t, 200, "")
}
