package placement

import (
	"errors"
	"fmt"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Placement's error codes (errors.inc), sent in error bodies from 1.23.
const (
	codeUndefined          = "placement.undefined_code"
	codeConcurrentUpdate   = "placement.concurrent_update"
	codeInventoryInUse     = "placement.inventory.inuse"
	codeDuplicateName      = "placement.duplicate_name"
	codeProviderInUse      = "placement.resource_provider.inuse"
	codeCannotDeleteParent = "placement.resource_provider.cannot_delete_parent"
	codeProviderNotFound   = "placement.resource_provider.not_found"
	codeQueryDuplicateKey  = "placement.query.duplicate_key"
	codeQueryBadValue      = "placement.query.bad_value"
)

// Sentinels of the Go-level API; the HTTP layer maps them through
// apiutil.AsError (each is wrapped in an *apiutil.Error carrying the
// status and code), and in-process callers test them with errors.Is.
var (
	// ErrConcurrentUpdate: a provider or consumer generation did not match.
	ErrConcurrentUpdate = errors.New("placement: concurrent update")
	// ErrCapacityExceeded: an allocation does not fit the inventory.
	ErrCapacityExceeded = errors.New("placement: capacity exceeded")
	// ErrNotFound: a provider, class, trait, consumer or inventory is missing.
	ErrNotFound = errors.New("placement: not found")
	// ErrInvalid: the request is malformed or semantically wrong.
	ErrInvalid = errors.New("placement: invalid request")
	// ErrInUse: the object still has dependants (allocations, children).
	ErrInUse = errors.New("placement: in use")
	// ErrDuplicate: a provider, class or trait of that name already exists.
	ErrDuplicate = errors.New("placement: duplicate")
)

func perr(status int, sentinel error, code, format string, args ...any) *apiutil.Error {
	return &apiutil.Error{Status: status, Message: fmt.Sprintf(format, args...), Code: code,
		Err: fmt.Errorf("%w", sentinel)}
}

func badRequest(format string, args ...any) *apiutil.Error {
	return perr(400, ErrInvalid, "", format, args...)
}

func notFound(format string, args ...any) *apiutil.Error {
	return perr(404, ErrNotFound, "", format, args...)
}

func conflict(code string, sentinel error, format string, args ...any) *apiutil.Error {
	return perr(409, sentinel, code, format, args...)
}

func staleGeneration(format string, args ...any) *apiutil.Error {
	return perr(409, ErrConcurrentUpdate, codeConcurrentUpdate, format, args...)
}
