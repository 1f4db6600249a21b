package compute_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute"
)

func TestVersionDiscovery(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	r := e.do("", "GET", "/compute/", "", "").Expect(t, 200, "")
	vs := list(t, r.Body, "versions")
	v := vs[0].(map[string]any)
	if v["id"] != "v2.1" || v["version"] != "2.96" || v["min_version"] != "2.1" || v["status"] != "CURRENT" {
		t.Fatalf("versions: %v", v)
	}
	r = e.do("", "GET", "/compute/v2.1/", "", "").Expect(t, 200, "")
	doc := obj(t, r.Body, "version")
	if doc["version"] != "2.96" {
		t.Fatalf("version doc: %v", doc)
	}
	links := doc["links"].([]any)
	if links[0].(map[string]any)["href"] != publicURL+"/compute/v2.1/" {
		t.Fatalf("self link: %v", links)
	}
	e.do("", "GET", "/compute/v2.1", "", "").Expect(t, 200, "")
}

func TestMicroversionNegotiation(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	for _, tc := range []struct {
		name, header, value string
		status              int
		want                string
		fault               string
	}{
		{"none", "", "", 200, "2.1", ""},
		{"new header", "OpenStack-API-Version", "compute 2.55", 200, "2.55", ""},
		{"legacy header", "X-OpenStack-Nova-API-Version", "2.60", 200, "2.60", ""},
		{"latest", "OpenStack-API-Version", "compute latest", 200, "2.96", ""},
		{"too new", "OpenStack-API-Version", "compute 2.97", 406, "", "computeFault"},
		{"too old", "X-OpenStack-Nova-API-Version", "2.0", 406, "", "computeFault"},
		{"malformed", "OpenStack-API-Version", "compute 2.x", 400, "", "badRequest"},
		{"other service", "OpenStack-API-Version", "volume 3.50", 200, "2.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", v21+"/flavors", nil)
			req.Header.Set("X-Auth-Token", "alice")
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.fault != "" {
				if !strings.Contains(w.Body.String(), `"`+tc.fault+`"`) {
					t.Fatalf("fault key %s missing: %s", tc.fault, w.Body)
				}
				return
			}
			if got := w.Header().Get("OpenStack-API-Version"); got != "compute "+tc.want {
				t.Fatalf("OpenStack-API-Version %q", got)
			}
			if got := w.Header().Get("X-OpenStack-Nova-API-Version"); got != tc.want {
				t.Fatalf("X-OpenStack-Nova-API-Version %q", got)
			}
			if got := w.Header().Get("Vary"); got != "OpenStack-API-Version, X-OpenStack-Nova-API-Version" {
				t.Fatalf("Vary %q", got)
			}
		})
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	e.do("alice", "GET", v21+"/nope", "", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "PATCH", v21+"/flavors", "", "").Expect(t, 405, "badMethod")
	e.do("", "GET", v21+"/flavors", "", "").Expect(t, 401, "unauthorized")
}
