package apitest

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"
)

// recorder is a testing.TB whose Fatalf records the failure and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder in its own goroutine and returns the
// failure it reported ("" for none).
func run(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failed
}

func TestDoAndExpect(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Version", req.Header.Get("OpenStack-API-Version"))
		switch req.URL.Path {
		case "/fault":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"itemNotFound": {"code": 404, "message": "gone"}}`)
		case "/badcode":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"itemNotFound": {"code": 400, "message": "gone"}}`)
		case "/list":
			fmt.Fprint(w, `{"things": [{"id": "a"}], "thing": {"id": "b"}}`)
		case "/text":
			fmt.Fprint(w, `not json`)
		}
	})
	for _, tc := range []struct {
		name, path string
		status     int
		fault      string
		fails      bool
	}{
		{"fault as expected", "/fault", 404, "itemNotFound", false},
		{"other status", "/fault", 400, "", true},
		{"other fault key", "/fault", 404, "badRequest", true},
		{"fault code differs from the status", "/badcode", 404, "itemNotFound", true},
		{"plain 200", "/list", 200, "", false},
		{"body not JSON", "/text", 200, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed := run(t, func(tb testing.TB) {
				Do(tb, h, "compute", "tok", "GET", tc.path, "", "").Expect(tb, tc.status, tc.fault)
			})
			if (failed != "") != tc.fails {
				t.Errorf("failure %q, want failing %v", failed, tc.fails)
			}
		})
	}
	r := Do(t, h, "compute", "", "GET", "/list", "2.1", "")
	if r.Header.Get("X-Version") != "compute 2.1" {
		t.Errorf("version header sent: %q", r.Header.Get("X-Version"))
	}
	if Obj(t, r.Body, "thing")["id"] != "b" || len(List(t, r.Body, "things")) != 1 {
		t.Errorf("body %v", r.Body)
	}
	if failed := run(t, func(tb testing.TB) { List(tb, r.Body, "thing") }); failed == "" {
		t.Error("List of an object did not fail")
	}
}
