package apiutil

import (
	"encoding/json"
	"fmt"
	"html"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// FaultFormat renders an *Error as the body a service's clients expect;
// it sees the request for the request id and content negotiation.
type FaultFormat func(e *Error, r *http.Request) (contentType string, body []byte)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// KeystoneFault: {"error": {"code": 404, "message": "...", "title": "Not Found"}}.
func KeystoneFault(e *Error, _ *http.Request) (string, []byte) {
	return "application/json", mustJSON(map[string]any{"error": map[string]any{
		"code": e.Status, "message": e.Message, "title": http.StatusText(e.Status),
	}})
}

// novaKeys are Nova's (and Cinder's) fault body keys by status.
var novaKeys = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
	405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
	415: "badMediaType", 429: "overLimit", 501: "notImplemented", 503: "serviceUnavailable",
}

// NovaFault: {"itemNotFound": {"code": 404, "message": "..."}}; Cinder uses
// the same shape. e.Code overrides the key.
func NovaFault(e *Error, _ *http.Request) (string, []byte) {
	key := e.Code
	if key == "" {
		key = novaKeys[e.Status]
	}
	if key == "" {
		key = "computeFault"
	}
	return "application/json", mustJSON(map[string]any{key: map[string]any{"code": e.Status, "message": e.Message}})
}

// neutronTypes are Neutron's default error types by status.
var neutronTypes = map[int]string{
	400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
	405: "HTTPMethodNotAllowed", 409: "HTTPConflict", 412: "HTTPPreconditionFailed",
	413: "HTTPRequestEntityTooLarge", 415: "HTTPUnsupportedMediaType", 500: "HTTPInternalServerError",
	501: "HTTPNotImplemented", 503: "HTTPServiceUnavailable",
}

// NeutronFault: {"NeutronError": {"type": "...", "message": "...", "detail": ""}}.
func NeutronFault(e *Error, _ *http.Request) (string, []byte) {
	typ := e.Code
	if typ == "" {
		typ = neutronTypes[e.Status]
	}
	return "application/json", mustJSON(map[string]any{"NeutronError": map[string]any{
		"type": typ, "message": e.Message, "detail": "",
	}})
}

// placementExplanations are the status texts Placement's WSGI framework
// puts before the specific message in an error's detail.
var placementExplanations = map[int]string{
	400: "The server could not comply with the request since it is either malformed or otherwise incorrect.",
	401: "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
	403: "Access was denied to this resource.",
	404: "The resource could not be found.",
	406: "The resource could not be generated that was acceptable to your browser (content of type application/json.",
	409: "There was a conflict when trying to complete your request.",
	413: "The request is larger than the server is willing or able to process.",
	415: "The request media type is not supported by this server.",
	500: "The server has either erred or is incapable of performing the requested operation.",
	501: "The server has not implemented the requested operation.",
}

// PlacementFault: {"errors": [{"status", "title", "detail", "request_id",
// "code"}]}; the code is sent from microversion 1.23 on (or when no
// version was negotiated).
func PlacementFault(e *Error, r *http.Request) (string, []byte) {
	requestID, withCode := "", true
	if r != nil {
		requestID = RequestID(r.Context())
		if v := VersionOf(r.Context()); v != (Version{}) {
			withCode = v.AtLeast(Version{1, 23})
		}
	}
	expl := placementExplanations[e.Status]
	if expl == "" {
		expl = http.StatusText(e.Status)
	}
	item := map[string]any{
		"status": e.Status, "title": http.StatusText(e.Status),
		"detail": expl + "\n\n " + e.Message + "  ", "request_id": requestID,
	}
	if withCode {
		code := e.Code
		if code == "" {
			code = "placement.undefined_code"
		}
		item["code"] = code
	}
	return "application/json", mustJSON(map[string]any{"errors": []any{item}})
}

// GlanceFault renders errors the way webob does for Glance: an HTML page
// by default, JSON when the client prefers application/json (gophercloud,
// openstacksdk), plain text when it accepts neither.
func GlanceFault(e *Error, r *http.Request) (string, []byte) {
	accept := ""
	if r != nil {
		accept = r.Header.Get("Accept")
	}
	status := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	switch negotiateFault(accept) {
	case "json":
		return "application/json", mustJSON(map[string]any{
			"message": e.Message + "<br /><br />\n\n\n",
			"code":    status,
			"title":   http.StatusText(e.Status),
		})
	case "plain":
		return "text/plain; charset=UTF-8", []byte(status + "\n\n" + e.Message + "\n\n   ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<html>\n <head>\n  <title>%s</title>\n </head>\n <body>\n  <h1>%s</h1>\n  %s<br /><br />\n\n\n\n </body>\n</html>",
		status, status, html.EscapeString(e.Message))
	return "text/html; charset=UTF-8", []byte(b.String())
}

// negotiateFault picks html, json or plain as webob does from Accept.
func negotiateFault(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "html"
	}
	q := map[string]float64{"text/html": -1, "application/json": -1}
	spec := map[string]int{"text/html": -1, "application/json": -1}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		qv := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				qv = f
			}
		}
		for offer := range q {
			typ, _, _ := strings.Cut(offer, "/")
			level := -1
			switch {
			case mt == offer:
				level = 2
			case mt == typ+"/*":
				level = 1
			case mt == "*/*":
				level = 0
			}
			if level > spec[offer] {
				spec[offer], q[offer] = level, qv
			}
		}
	}
	switch {
	case q["text/html"] > 0 && q["text/html"] >= q["application/json"]:
		return "html"
	case q["application/json"] > 0:
		return "json"
	}
	return "plain"
}
