package apiutil

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/auth"
)

// Response is what a handler returns; one renderer writes it.
type Response struct {
	Status      int
	Body        any // encoded as JSON when not nil
	Header      http.Header
	ContentType string
	// Stream writes a raw body (image data, for example) when set.
	Stream func(w io.Writer) error
	// Takeover, when set, answers the request itself (a websocket
	// upgrade); nothing else is written.
	Takeover func(w http.ResponseWriter, r *http.Request)
}

// JSONAppender is a response body that encodes itself: AppendJSON
// appends exactly one JSON value to b. Large lists use it to skip
// encoding/json's reflection, map key sorting and re-validation.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// appendBufs keeps a few buffers JSONAppender bodies were encoded into
// for the next ones (a 1,000-server page is ~1.5 MB; a sync.Pool would
// lose them at every GC, which such pages trigger every few requests).
var appendBufs = make(chan []byte, 2)

const maxKeptBuf = 4 << 20

func getAppendBuf() []byte {
	select {
	case b := <-appendBufs:
		return b[:0]
	default:
		return make([]byte, 0, 64<<10)
	}
}

func putAppendBuf(b []byte) {
	if cap(b) > maxKeptBuf {
		return
	}
	select {
	case appendBufs <- b:
	default:
	}
}

// JSON is a response with a JSON body.
func JSON(status int, body any) *Response { return &Response{Status: status, Body: body} }

// NoContent is an empty 204 response.
func NoContent() *Response { return &Response{Status: http.StatusNoContent} }

// SetHeader sets a response header and returns r.
func (r *Response) SetHeader(k, v string) *Response {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header.Set(k, v)
	return r
}

// Handler handles one route.
type Handler func(r *http.Request) (*Response, error)

// Route is one entry of a service's route table.
type Route struct {
	Method  string // GET, POST, PUT, PATCH, DELETE, HEAD
	Path    string // net/http pattern path, e.g. /v3/projects/{project_id}
	Handler Handler
	Public  bool // served without a token
}

// Service is an API mounted on the shared mux.
type Service struct {
	Name   string // "identity", "compute", ... for logs and metrics
	Prefix string // subtree owned by the service, for its 404 body ("/v3/")
	Fault  FaultFormat
	Routes []Route
	Auth   auth.Validator
	Log    *slog.Logger
	// Before, when set, runs after authentication for every non-public
	// route (microversion negotiation, for example); it may add to the
	// request context or reject it.
	Before func(r *http.Request) (*http.Request, error)
	// Decorate, when set, can add headers to every response of the service.
	Decorate func(r *http.Request, h http.Header)
	// Fallback, when set, serves (authenticated) the requests under Prefix
	// that no route matches, instead of the 404.
	Fallback Handler
}

// Register mounts the routes on mux, plus a 405 answer for known paths with
// other methods and a 404 answer for the rest of the service's subtree,
// both in the service's fault format.
func (s *Service) Register(mux *http.ServeMux) {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	methods := map[string][]string{}
	real := map[string]bool{}
	var order []string
	for _, rt := range s.Routes {
		pattern := strings.TrimSpace(rt.Method + " " + rt.Path)
		mux.Handle(pattern, s.wrap(rt))
		real[pattern] = true
		if rt.Method == "" {
			continue // a catch-all route answers every method itself
		}
		if _, ok := methods[rt.Path]; !ok {
			order = append(order, rt.Path)
		}
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	// A known path asked with another method gets a 405 with Allow, unless
	// another route (a wildcard sibling) serves that method there.
	for _, p := range order {
		allowed := methods[p]
		if slices.Contains(allowed, "GET") && !slices.Contains(allowed, "HEAD") {
			allowed = append(allowed, "HEAD")
		}
		allow := strings.Join(allowed, ", ")
		sample := samplePath(p)
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(allowed, m) {
				continue
			}
			if _, pat := mux.Handler(&http.Request{Method: m, URL: &url.URL{Path: sample}}); real[pat] {
				continue
			}
			s.handle405(mux, m+" "+p, allow)
		}
	}
	if s.Prefix != "" {
		var fallback http.Handler
		if s.Fallback != nil {
			fallback = s.wrap(Route{Handler: s.Fallback})
		}
		mux.HandleFunc(s.Prefix, func(w http.ResponseWriter, r *http.Request) {
			if allowed, ok := methods[s.Prefix]; ok && r.URL.Path == s.Prefix {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				s.WriteError(w, r, &Error{Status: 405, Message: "The method is not allowed for the requested URL.", Err: ErrNotAllowed})
				return
			}
			if fallback != nil {
				fallback.ServeHTTP(w, r)
				return
			}
			s.WriteError(w, r, NotFound("The resource could not be found."))
		})
	}
}

// samplePath turns a pattern path into a concrete path it matches.
func samplePath(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		if p[i:i+j+1] != "{$}" {
			b.WriteString("x")
		}
		p = p[i+j+1:]
	}
}

// handle405 registers a 405 answer; a pattern that would clash with
// another service's route is skipped (that route answers instead).
func (s *Service) handle405(mux *http.ServeMux, pattern, allow string) {
	defer func() {
		if p := recover(); p != nil {
			s.Log.Debug("no 405 route", "pattern", pattern, "reason", p)
		}
	}()
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.WriteError(w, r, &Error{Status: 405, Message: "The method is not allowed for the requested URL.", Err: ErrNotAllowed})
	})
}

func (s *Service) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Log.Error("handler panic", "service", s.Name, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				s.WriteError(w, r, &Error{Status: 500, Message: "An unexpected error prevented the server from fulfilling your request.", Err: fmt.Errorf("panic: %v", p)})
			}
		}()
		if !rt.Public {
			var err error
			if r, err = s.authenticate(r); err != nil {
				s.WriteError(w, r, err)
				return
			}
		}
		if s.Before != nil {
			nr, err := s.Before(r)
			if err != nil {
				s.WriteError(w, r, err)
				return
			}
			r = nr
		}
		resp, err := rt.Handler(r)
		if err != nil {
			s.WriteError(w, r, err)
			return
		}
		s.write(w, r, resp)
	})
}

func (s *Service) authenticate(r *http.Request) (*http.Request, error) {
	if s.Auth == nil {
		return r, nil
	}
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return r, Unauthorized("The request you have made requires authentication.")
	}
	c, err := s.Auth.ValidateToken(r.Context(), tok)
	if err != nil {
		return r, err
	}
	if c.AppCred != nil && c.AppCred.AccessRules != nil {
		if types, path := s.accessTarget(r); !c.AppCred.Permits(types, path, r.Method) {
			return r, Unauthorized("The request you have made requires authentication: the access rules of the application credential do not permit it.")
		}
	}
	return r.WithContext(auth.With(r.Context(), c)), nil
}

func (s *Service) write(w http.ResponseWriter, r *http.Request, resp *Response) {
	if resp == nil {
		resp = NoContent()
	}
	if resp.Takeover != nil {
		resp.Takeover(w, r)
		return
	}
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	if s.Decorate != nil {
		s.Decorate(r, h)
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case resp.Stream != nil:
		if resp.ContentType != "" {
			h.Set("Content-Type", resp.ContentType)
		}
		w.WriteHeader(status)
		if r.Method == http.MethodHead {
			return
		}
		if err := resp.Stream(w); err != nil {
			s.Log.Warn("streaming response failed", "service", s.Name, "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
	case resp.Body != nil:
		var b []byte
		if ja, ok := resp.Body.(JSONAppender); ok {
			b = ja.AppendJSON(getAppendBuf())
			defer putAppendBuf(b)
		} else {
			var err error
			if b, err = json.Marshal(resp.Body); err != nil {
				s.WriteError(w, r, fmt.Errorf("encode response: %w", err))
				return
			}
		}
		ct := resp.ContentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(b)
		}
	default:
		if status != http.StatusNoContent && status != http.StatusNotModified {
			h.Set("Content-Length", "0")
		}
		w.WriteHeader(status)
	}
}

// WriteError writes err in the service's fault format.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	if e.Status >= 500 {
		s.Log.Error("request failed", "service", s.Name, "method", r.Method, "path", r.URL.Path,
			"request_id", RequestID(r.Context()), "err", err)
	}
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	if e.Status == 401 && s.Auth != nil && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", KeystoneURI(r)))
	}
	if s.Decorate != nil {
		s.Decorate(r, h)
	}
	fault := s.Fault
	if fault == nil {
		fault = KeystoneFault
	}
	ct, body := fault(e, r)
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
