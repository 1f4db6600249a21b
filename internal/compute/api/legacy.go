package api

import (
	"context"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// legacyRouter serves the routes again below /compute/v2.1/{project_id}/,
// the URL form from before microversion 2.18 that clients built from old
// catalogs still use. It strips the project id, checks it against the
// token's project (Nova answers a mismatch with 400) and dispatches to
// the same handlers; links in responses keep the project id.
type legacyRouter struct {
	mux *http.ServeMux
}

type legacyResult struct {
	resp *apiutil.Response
	err  error
	hit  bool
}

type legacyResultKey struct{}

func newLegacyRouter(routes []apiutil.Route) *legacyRouter {
	lr := &legacyRouter{mux: http.NewServeMux()}
	paths := map[string]bool{}
	for _, rt := range routes {
		h := rt.Handler
		lr.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) {
			res := r.Context().Value(legacyResultKey{}).(*legacyResult)
			res.resp, res.err = h(r)
			res.hit = true
		})
		if !paths[rt.Path] {
			paths[rt.Path] = true
			lr.mux.HandleFunc(rt.Path, func(w http.ResponseWriter, r *http.Request) {
				res := r.Context().Value(legacyResultKey{}).(*legacyResult)
				res.err = &apiutil.Error{Status: 405, Message: "The method is not allowed for the requested URL.", Err: apiutil.ErrNotAllowed}
				res.hit = true
			})
		}
	}
	return lr
}

// serve is the handler of /compute/v2.1/{project_id}/{rest...}.
func (lr *legacyRouter) serve(r *http.Request) (*apiutil.Response, error) {
	project := r.PathValue("project_id")
	if c := caller(r); c.ProjectID != "" && project != c.ProjectID && !c.IsAdmin() {
		return nil, apiutil.BadRequest("Malformed request URL: URL's project_id '%s' doesn't match Context's project_id '%s'", project, c.ProjectID)
	}
	res := &legacyResult{}
	c := context.WithValue(r.Context(), legacyResultKey{}, res)
	c = context.WithValue(c, prefixKey{}, project)
	c = context.WithValue(c, origPathKey{}, r.URL.Path)
	r2 := r.Clone(c)
	r2.URL.Path = "/" + r.PathValue("rest")
	r2.URL.RawPath = ""
	lr.mux.ServeHTTP(discard{}, r2)
	if !res.hit {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	return res.resp, res.err
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
