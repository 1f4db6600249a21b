package apiutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	m := Microversions{Service: "compute", Legacy: "X-OpenStack-Nova-API-Version", Min: Version{2, 1}, Max: Version{2, 96}}
	cases := []struct {
		name   string
		hdr    map[string]string
		want   Version
		status int
	}{
		{"none", nil, Version{2, 1}, 0},
		{"new header", map[string]string{"OpenStack-API-Version": "compute 2.53"}, Version{2, 53}, 0},
		{"other service ignored", map[string]string{"OpenStack-API-Version": "volume 3.10"}, Version{2, 1}, 0},
		{"list", map[string]string{"OpenStack-API-Version": "volume 3.10, compute 2.10"}, Version{2, 10}, 0},
		{"legacy", map[string]string{"X-OpenStack-Nova-API-Version": "2.20"}, Version{2, 20}, 0},
		{"new wins over legacy", map[string]string{"OpenStack-API-Version": "compute 2.30", "X-OpenStack-Nova-API-Version": "2.20"}, Version{2, 30}, 0},
		{"latest", map[string]string{"OpenStack-API-Version": "compute latest"}, Version{2, 96}, 0},
		{"too new", map[string]string{"OpenStack-API-Version": "compute 2.97"}, Version{}, 406},
		{"too old", map[string]string{"OpenStack-API-Version": "compute 2.0"}, Version{}, 406},
		{"malformed", map[string]string{"OpenStack-API-Version": "compute two"}, Version{}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.hdr {
				h.Set(k, v)
			}
			v, err := m.Negotiate(h)
			if c.status != 0 {
				if AsError(err).Status != c.status {
					t.Fatalf("got %v, want status %d", err, c.status)
				}
				return
			}
			if err != nil || v != c.want {
				t.Fatalf("got %v %v, want %v", v, err, c.want)
			}
		})
	}
	h := http.Header{}
	m.Headers(h, Version{2, 53})
	if h.Get("OpenStack-API-Version") != "compute 2.53" || h.Get("X-OpenStack-Nova-API-Version") != "2.53" || !strings.Contains(h.Get("Vary"), "OpenStack-API-Version") {
		t.Fatalf("headers: %v", h)
	}
}

func TestFaults(t *testing.T) {
	e := NotFound("Network x could not be found.")
	cases := []struct {
		name string
		f    FaultFormat
		want string
	}{
		{"keystone", KeystoneFault, `{"error":{"code":404,"message":"Network x could not be found.","title":"Not Found"}}`},
		{"nova", NovaFault, `{"itemNotFound":{"code":404,"message":"Network x could not be found."}}`},
		{"neutron", NeutronFault, `{"NeutronError":{"detail":"","message":"Network x could not be found.","type":"HTTPNotFound"}}`},
	}
	for _, c := range cases {
		_, b := c.f(e, nil)
		if string(b) != c.want {
			t.Errorf("%s: %s", c.name, b)
		}
	}
	_, b := NeutronFault(NotFound("x").WithCode("NetworkNotFound"), nil)
	if !strings.Contains(string(b), `"type":"NetworkNotFound"`) {
		t.Errorf("neutron code: %s", b)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req = req.WithContext(context.WithValue(req.Context(), requestIDKey{}, "req-9"))
	_, b = PlacementFault(Conflict("stale").WithCode("placement.concurrent_update"), req)
	var pf struct {
		Errors []map[string]any `json:"errors"`
	}
	if json.Unmarshal(b, &pf) != nil || pf.Errors[0]["code"] != "placement.concurrent_update" || pf.Errors[0]["request_id"] != "req-9" || pf.Errors[0]["status"] != float64(409) {
		t.Errorf("placement: %s", b)
	}
}

func TestAsError(t *testing.T) {
	if AsError(fmt.Errorf("wrap: %w", ErrConflict)).Status != 409 {
		t.Error("sentinel conflict")
	}
	if e := AsError(errors.New("db exploded")); e.Status != 500 || strings.Contains(e.Message, "exploded") {
		t.Errorf("internal errors must not leak: %+v", e)
	}
	if e := AsError(fmt.Errorf("query: %w", context.Canceled)); e.Status != 499 {
		t.Errorf("client disconnect: %+v", e)
	}
	if AsError(fmt.Errorf("ctx: %w", BadRequest("x"))).Status != 400 {
		t.Error("wrapped *Error")
	}
}

func TestRouterFaultsAndRender(t *testing.T) {
	mux := http.NewServeMux()
	s := &Service{Name: "test", Prefix: "/t/", Fault: NovaFault, Routes: []Route{
		{Method: "GET", Path: "/t/items/{id}", Public: true, Handler: func(r *http.Request) (*Response, error) {
			if r.PathValue("id") == "boom" {
				panic("boom")
			}
			if r.PathValue("id") == "missing" {
				return nil, NotFound("Item missing could not be found.")
			}
			return JSON(200, map[string]any{"id": r.PathValue("id")}).SetHeader("X-Extra", "1"), nil
		}},
		{Method: "POST", Path: "/t/items", Public: true, Handler: func(r *http.Request) (*Response, error) {
			var v map[string]any
			schema := MustSchema("t", `{"type":"object","required":["item"],"properties":{"item":{"type":"object","required":["name"],"properties":{"name":{"type":"string","maxLength":3}}}}}`)
			if err := DecodeJSON(r, schema, &v); err != nil {
				return nil, err
			}
			return JSON(201, v), nil
		}},
	}}
	s.Register(mux)
	h := Middleware(mux, "http://cloud", nil, nil)
	cases := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/t/items/a", "", 200, `{"id":"a"}`},
		{"GET", "/t/items/missing", "", 404, `"itemNotFound"`},
		{"GET", "/t/items/boom", "", 500, `"computeFault"`},
		{"DELETE", "/t/items/a", "", 405, `"badMethod"`},
		{"GET", "/t/nothing", "", 404, `"itemNotFound"`},
		{"POST", "/t/items", `{"item": {"name": "abc"}}`, 201, `"abc"`},
		{"POST", "/t/items", `{"item": {"name": "abcd"}}`, 400, `item/name`},
		{"POST", "/t/items", `{"item": `, 400, `Malformed request body`},
		{"POST", "/t/items", `{}`, 400, `badRequest`},
	}
	for _, c := range cases {
		t.Run(c.method+c.path+c.body, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader(c.body)))
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.contains) {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if !strings.HasPrefix(rec.Header().Get("X-Openstack-Request-Id"), "req-") {
				t.Fatal("missing request id")
			}
		})
	}
}

func TestParsePage(t *testing.T) {
	for _, c := range []struct {
		q       string
		limit   int
		marker  string
		wantErr bool
	}{
		{"", 1000, "", false},
		{"limit=5&marker=abc", 5, "abc", false},
		{"limit=5000", 1000, "", false},
		{"limit=-1", 0, "", true},
		{"limit=x", 0, "", true},
	} {
		p, err := ParsePage(httptest.NewRequest("GET", "/x?"+c.q, nil), 0, 1000)
		if (err != nil) != c.wantErr || !c.wantErr && (p.Limit != c.limit || p.Marker != c.marker) {
			t.Errorf("%q: %+v %v", c.q, p, err)
		}
	}
	r := httptest.NewRequest("GET", "/compute/v2.1/servers?limit=2&name=a", nil)
	if l := NextLink(r, "http://c", "m1"); l.Href != "http://c/compute/v2.1/servers?limit=2&marker=m1&name=a" {
		t.Errorf("next: %s", l.Href)
	}
}

func TestGlanceFaultNegotiation(t *testing.T) {
	for _, c := range []struct{ accept, ct, contains string }{
		{"", "text/html", "<h1>404 Not Found</h1>"},
		{"application/json", "application/json", `"code":"404 Not Found"`},
		{"application/json;q=0.5, text/html;q=0.4", "application/json", `"title":"Not Found"`},
		{"text/plain", "text/plain", "404 Not Found\n\nNo image"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", c.accept)
		ct, b := GlanceFault(NotFound("No image found with ID x"), r)
		if !strings.HasPrefix(ct, c.ct) || !strings.Contains(string(b), c.contains) {
			t.Errorf("%q: %s %s", c.accept, ct, b)
		}
	}
}

// A literal route beside a wildcard sibling must not make Register panic,
// and each keeps its own methods.
func TestRegisterLiteralBesideWildcard(t *testing.T) {
	ok := func(r *http.Request) (*Response, error) { return JSON(200, map[string]string{"p": r.Pattern}), nil }
	mux := http.NewServeMux()
	(&Service{Name: "t", Prefix: "/c/", Fault: NovaFault, Routes: []Route{
		{Method: "GET", Path: "/c/flavors/detail", Handler: ok, Public: true},
		{Method: "GET", Path: "/c/flavors/{id}", Handler: ok, Public: true},
		{Method: "DELETE", Path: "/c/flavors/{id}", Handler: ok, Public: true},
		{Method: "", Path: "/c/legacy/{rest...}", Handler: ok, Public: true},
	}}).Register(mux)
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/c/flavors/detail", 200}, {"GET", "/c/flavors/7", 200}, {"DELETE", "/c/flavors/7", 200},
		{"POST", "/c/flavors/7", 405}, {"DELETE", "/c/flavors/detail", 200}, {"PUT", "/c/legacy/a/b", 200},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.status)
		}
	}
}

// appended is a body that encodes itself.
type appended string

func (a appended) AppendJSON(b []byte) []byte { return append(b, a...) }

// A JSONAppender body is written as it encodes itself, with the JSON
// content type and its length, and recycled buffers never leak one
// response into the next.
func TestJSONAppenderBody(t *testing.T) {
	mux := http.NewServeMux()
	(&Service{Name: "t", Prefix: "/a/", Fault: NovaFault, Routes: []Route{
		{Method: "GET", Path: "/a/{n}", Public: true, Handler: func(r *http.Request) (*Response, error) {
			return JSON(200, appended(`{"n":"`+r.PathValue("n")+`"}`)), nil
		}},
	}}).Register(mux)
	for _, n := range []string{strings.Repeat("x", 100<<10), "short", strings.Repeat("y", 5<<20), "s"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/a/"+n, nil))
		want := `{"n":"` + n + `"}`
		if rec.Code != 200 || rec.Body.String() != want {
			t.Fatalf("%d: %.40s (len %d, want %d)", rec.Code, rec.Body.String(), rec.Body.Len(), len(want))
		}
		if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Fatalf("headers %v", rec.Header())
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("HEAD", "/a/x", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "9" {
		t.Fatalf("HEAD: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

// AppendJSONString writes strings byte for byte as encoding/json does.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "héllo wörld ☃ 😀", "bad \xff utf-8 \xc3", "line\u2028sep\u2029par", "ends in \\"} {
		want, _ := json.Marshal(s)
		if got := AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendJSONString(%q) = %s, want x%s", s, got, want)
		}
	}
}
