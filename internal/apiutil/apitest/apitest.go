// Package apitest sends requests to an API handler in tests and checks
// the OpenStack-style answers: the status, the fault body ({"<fault>":
// {"code": status, "message": "..."}}) and the objects and lists inside.
package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Response is a recorded answer; Body holds its JSON object, if any.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Do sends a request to h with token as X-Auth-Token (none when ""),
// version as the OpenStack-API-Version of service ("compute", "volume";
// no header when "") and body as JSON (none when ""). A body that is not
// a JSON object fails the test.
func Do(t testing.TB, h http.Handler, service, token, method, path, version, body string) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if version != "" {
		req.Header.Set("OpenStack-API-Version", service+" "+version)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	out := Response{Status: w.Code, Header: w.Header(), Raw: w.Body.String()}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out.Body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v\n%s", method, path, err, w.Body.String())
		}
	}
	return out
}

// Expect checks the status and, when fault is not "", that the body is
// that fault with the same code and a message.
func (r Response) Expect(t testing.TB, status int, fault string) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if fault != "" {
		f, ok := r.Body[fault].(map[string]any)
		if !ok {
			t.Fatalf("no %q fault in %s", fault, r.Raw)
		}
		if code, _ := f["code"].(float64); int(code) != status || f["message"] == "" {
			t.Fatalf("bad fault body %s", r.Raw)
		}
	}
	return r
}

// Obj is the object v (a JSON object) holds under key.
func Obj(t testing.TB, v any, key string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %v", v)
	}
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("no object %q in %v", key, m)
	}
	return o
}

// List is the list v holds under key.
func List(t testing.TB, v map[string]any, key string) []any {
	t.Helper()
	l, ok := v[key].([]any)
	if !ok {
		t.Fatalf("no list %q in %v", key, v)
	}
	return l
}
