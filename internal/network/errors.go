package network

import (
	"fmt"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Neutron reports errors as {"NeutronError": {"type", "message", "detail"}};
// the type is the name of the Neutron exception, which clients such as
// openstacksdk and Terraform match on. These helpers build *apiutil.Error
// values carrying that type as Code.

func nerr(status int, typ, format string, args ...any) *apiutil.Error {
	e := &apiutil.Error{Status: status, Message: fmt.Sprintf(format, args...), Code: typ}
	switch status {
	case http.StatusBadRequest:
		e.Err = apiutil.ErrBadRequest
	case http.StatusForbidden:
		e.Err = apiutil.ErrForbidden
	case http.StatusNotFound:
		e.Err = apiutil.ErrNotFound
	case http.StatusConflict:
		e.Err = apiutil.ErrConflict
	}
	return e
}

// badInput is a request that fails attribute validation (HTTPBadRequest).
func badInput(format string, args ...any) *apiutil.Error {
	return nerr(400, "HTTPBadRequest", format, args...)
}

// invalidInput is Neutron's InvalidInput: a semantically invalid request.
func invalidInput(format string, args ...any) *apiutil.Error {
	return nerr(400, "InvalidInput", "Invalid input for operation: "+format+".", args...)
}

func notFound(typ, format string, args ...any) *apiutil.Error {
	return nerr(404, typ, format, args...)
}

func conflict(typ, format string, args ...any) *apiutil.Error {
	return nerr(409, typ, format, args...)
}

func badRequest(typ, format string, args ...any) *apiutil.Error {
	return nerr(400, typ, format, args...)
}

func policyDenied(rule string) *apiutil.Error {
	return nerr(403, "PolicyNotAuthorized", "(rule:%s) is disallowed by policy", rule)
}

func overQuota(resource string) *apiutil.Error {
	return nerr(409, "OverQuota", "Quota exceeded for resources: ['%s'].", resource)
}

func networkNotFound(id string) *apiutil.Error {
	return notFound("NetworkNotFound", "Network %s could not be found.", id)
}

func subnetNotFound(id string) *apiutil.Error {
	return notFound("SubnetNotFound", "Subnet %s could not be found.", id)
}

func portNotFound(id string) *apiutil.Error {
	return notFound("PortNotFound", "Port %s could not be found.", id)
}

// createdResponse renders the 201 answer of a create: one object, or the
// plural list for a bulk create.
func createdResponse[T any](bulk bool, plural, singular string, items []T, render func(T) map[string]any) *apiutil.Response {
	if !bulk {
		return apiutil.JSON(201, map[string]any{singular: render(items[0])})
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = render(it)
	}
	return apiutil.JSON(201, map[string]any{plural: out})
}
