package placement

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/policy"
)

const prefix = "/placement"

// Routes implements service.API.
func (s *Service) Routes() *apiutil.Service {
	type rt = apiutil.Route
	r := func(method, path, rule string, min int, h apiutil.Handler) rt {
		return rt{Method: method, Path: prefix + path, Handler: s.handle(rule, v(min), h)}
	}
	return &apiutil.Service{
		Name:     "placement",
		Prefix:   prefix + "/",
		Fault:    apiutil.PlacementFault,
		Auth:     s.deps.Auth,
		Log:      s.log,
		Before:   Microversions.Before,
		Decorate: Microversions.Decorate,
		Routes: []rt{
			{Method: "GET", Path: prefix + "/{$}", Public: true, Handler: s.versions},
			{Method: "GET", Path: prefix, Public: true, Handler: s.versions},

			r("GET", "/resource_providers", "placement:resource_providers:list", 0, s.listProviders),
			r("POST", "/resource_providers", "placement:resource_providers:create", 0, s.createProvider),
			r("GET", "/resource_providers/{uuid}", "placement:resource_providers:show", 0, s.getProvider),
			r("PUT", "/resource_providers/{uuid}", "placement:resource_providers:update", 0, s.updateProvider),
			r("DELETE", "/resource_providers/{uuid}", "placement:resource_providers:delete", 0, s.deleteProvider),

			r("GET", "/resource_providers/{uuid}/inventories", "placement:resource_providers:inventories:list", 0, s.getInventories),
			r("PUT", "/resource_providers/{uuid}/inventories", "placement:resource_providers:inventories:update", 0, s.putInventories),
			r("POST", "/resource_providers/{uuid}/inventories", "placement:resource_providers:inventories:create", 0, s.postInventory),
			r("DELETE", "/resource_providers/{uuid}/inventories", "placement:resource_providers:inventories:delete", 5, s.deleteInventories),
			r("GET", "/resource_providers/{uuid}/inventories/{rc}", "placement:resource_providers:inventories:show", 0, s.getInventory),
			r("PUT", "/resource_providers/{uuid}/inventories/{rc}", "placement:resource_providers:inventories:update", 0, s.putInventory),
			r("DELETE", "/resource_providers/{uuid}/inventories/{rc}", "placement:resource_providers:inventories:delete", 0, s.deleteInventory),

			r("GET", "/resource_providers/{uuid}/aggregates", "placement:resource_providers:aggregates:list", 1, s.getAggregates),
			r("PUT", "/resource_providers/{uuid}/aggregates", "placement:resource_providers:aggregates:update", 1, s.putAggregates),
			r("GET", "/resource_providers/{uuid}/traits", "placement:resource_providers:traits:list", 6, s.getProviderTraits),
			r("PUT", "/resource_providers/{uuid}/traits", "placement:resource_providers:traits:update", 6, s.putProviderTraits),
			r("DELETE", "/resource_providers/{uuid}/traits", "placement:resource_providers:traits:delete", 6, s.deleteProviderTraits),
			r("GET", "/resource_providers/{uuid}/usages", "placement:resource_providers:usages", 0, s.providerUsages),
			r("GET", "/resource_providers/{uuid}/allocations", "placement:resource_providers:allocations:list", 0, s.providerAllocations),

			r("GET", "/resource_classes", "placement:resource_classes:list", 2, s.listClasses),
			r("POST", "/resource_classes", "placement:resource_classes:create", 2, s.createClass),
			r("GET", "/resource_classes/{name}", "placement:resource_classes:show", 2, s.getClass),
			r("PUT", "/resource_classes/{name}", "placement:resource_classes:update", 2, s.putClass),
			r("DELETE", "/resource_classes/{name}", "placement:resource_classes:delete", 2, s.deleteClass),

			r("GET", "/traits", "placement:traits:list", 6, s.listTraits),
			r("GET", "/traits/{name}", "placement:traits:show", 6, s.getTrait),
			r("PUT", "/traits/{name}", "placement:traits:update", 6, s.putTrait),
			r("DELETE", "/traits/{name}", "placement:traits:delete", 6, s.deleteTrait),

			r("GET", "/usages", "placement:usages", 9, s.usages),
			r("GET", "/allocations/{consumer}", "placement:allocations:list", 0, s.getAllocations),
			r("PUT", "/allocations/{consumer}", "placement:allocations:update", 0, s.putAllocations),
			r("DELETE", "/allocations/{consumer}", "placement:allocations:delete", 0, s.deleteAllocations),
			r("POST", "/allocations", "placement:allocations:manage", 13, s.postAllocations),
			r("POST", "/reshaper", "placement:reshaper:reshape", 30, s.reshaper),
			r("GET", "/allocation_candidates", "placement:allocation_candidates:list", 10, s.allocationCandidates),
		},
	}
}

// handle wraps a handler: version gate (404 below min, as Placement
// answers for routes a version does not have), policy, and rendering of
// errors in Placement's format for the negotiated version.
func (s *Service) handle(rule string, min apiutil.Version, h apiutil.Handler) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		ver := apiutil.VersionOf(r.Context())
		if ver.Less(min) {
			return s.errorResponse(r, notFound("The resource could not be found.")), nil
		}
		if err := s.authorize(r, rule); err != nil {
			return s.errorResponse(r, err), nil
		}
		resp, err := h(r)
		if err != nil {
			return s.errorResponse(r, err), nil
		}
		if r.Method == http.MethodGet && ver.AtLeast(v(15)) && resp != nil {
			if resp.Header.Get("Last-Modified") == "" {
				resp.SetHeader("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
			}
			resp.SetHeader("Cache-Control", "no-cache")
		}
		return resp, nil
	}
}

func (s *Service) authorize(r *http.Request, rule string) error {
	if s.deps.Auth == nil || rule == "" {
		return nil
	}
	c := auth.From(r.Context())
	if c == nil {
		return apiutil.Unauthorized("The request you have made requires authentication.")
	}
	err := s.policy.Authorize(rule, c.Policy(), nil)
	if errors.Is(err, policy.ErrForbidden) {
		return apiutil.Forbidden("Policy does not allow %s to be performed.", rule)
	}
	return err
}

func (s *Service) errorResponse(r *http.Request, err error) *apiutil.Response {
	e := apiutil.AsError(err)
	if e.Status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", apiutil.RequestID(r.Context()), "err", err)
	}
	ct, body := apiutil.PlacementFault(e, r)
	resp := &apiutil.Response{Status: e.Status, ContentType: ct,
		Stream: func(w io.Writer) error { _, err := w.Write(body); return err }}
	for k, vals := range e.Header {
		for _, val := range vals {
			resp.SetHeader(k, val)
		}
	}
	return resp
}

func (s *Service) versions(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(200, map[string]any{"versions": []any{map[string]any{
		"id": "v1.0", "min_version": vMin.String(), "max_version": vMax.String(), "status": "CURRENT",
		"links": []any{map[string]any{"rel": "self", "href": ""}},
	}}}), nil
}

// decode checks the content type, validates body against schema and
// decodes it into out.
func decode(r *http.Request, schema *apiutil.Schema, out any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/json" {
		if ct == "" {
			ct = "None"
		}
		return &apiutil.Error{Status: 415, Message: fmt.Sprintf("The media type %s is not supported, use application/json", ct)}
	}
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return err
	}
	if err := apiutil.DecodeJSONBytes(b, schema, out); err != nil {
		e := apiutil.AsError(err)
		if e.Status == 400 {
			return badRequest("JSON does not validate: %s", strings.TrimPrefix(e.Message, "Invalid input for "))
		}
		return err
	}
	return nil
}

var schemaCache sync.Map

// schema compiles (once) the JSON schema text src.
func schema(src string) *apiutil.Schema {
	if s, ok := schemaCache.Load(src); ok {
		return s.(*apiutil.Schema)
	}
	s := apiutil.MustSchema(fmt.Sprintf("placement-%d", len(src)), src)
	schemaCache.Store(src, s)
	return s
}

func link(rel, href string) map[string]string { return map[string]string{"rel": rel, "href": href} }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
