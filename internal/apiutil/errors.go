// Package apiutil is the HTTP plumbing every Kumo API shares: routes as
// data, one renderer for bodies and faults, OpenStack fault formats per
// service, microversion negotiation, JSON schema validation of request
// bodies, pagination, request ids, metrics and token authentication.
package apiutil

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/policy"
)

// Sentinel errors that services wrap with %w; the renderer maps them to a
// status code when no *Error is in the chain.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrOverLimit    = errors.New("over limit")
	ErrNotAllowed   = errors.New("method not allowed")
	ErrUnsupported  = errors.New("not implemented")
)

// Error is an API error: a status code, a message for the user, and an
// optional service-specific code (a Neutron error type such as
// "NetworkNotFound", a Placement code such as "placement.concurrent_update",
// a Nova fault key such as "overLimit").
type Error struct {
	Status  int
	Message string
	Code    string
	Header  http.Header
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// WithCode sets the service-specific code and returns e.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// Errorf builds an *Error with a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func BadRequest(format string, args ...any) *Error {
	return &Error{Status: 400, Message: fmt.Sprintf(format, args...), Err: ErrBadRequest}
}

func Unauthorized(format string, args ...any) *Error {
	return &Error{Status: 401, Message: fmt.Sprintf(format, args...), Err: ErrUnauthorized}
}

func Forbidden(format string, args ...any) *Error {
	return &Error{Status: 403, Message: fmt.Sprintf(format, args...), Err: ErrForbidden}
}

func NotFound(format string, args ...any) *Error {
	return &Error{Status: 404, Message: fmt.Sprintf(format, args...), Err: ErrNotFound}
}

func Conflict(format string, args ...any) *Error {
	return &Error{Status: 409, Message: fmt.Sprintf(format, args...), Err: ErrConflict}
}

// AsError finds the *Error in err's chain, or maps a sentinel to one; any
// other error becomes a 500 whose message hides the internals.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		// The client went away: nothing to report as a server error.
		return &Error{Status: 499, Message: "Client closed the request.", Err: err}
	}
	if errors.Is(err, policy.ErrForbidden) {
		return &Error{Status: 403, Message: err.Error(), Err: err}
	}
	for _, m := range []struct {
		err    error
		status int
	}{
		{ErrBadRequest, 400}, {ErrUnauthorized, 401}, {ErrForbidden, 403},
		{ErrNotFound, 404}, {ErrNotAllowed, 405}, {ErrConflict, 409},
		{ErrOverLimit, 413}, {ErrUnsupported, 501},
	} {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Message: err.Error(), Err: err}
		}
	}
	return &Error{Status: 500, Message: "An unexpected error prevented the server from fulfilling your request.", Err: err}
}
