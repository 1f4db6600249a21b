package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Envelope is the JSON document carried by every bus message, requests,
// replies and events alike. The field set and the rules for changing it are
// described in the package documentation.
type Envelope struct {
	Type    string          `json:"type"`
	Version string          `json:"version"`
	ID      string          `json:"id"`
	Sender  string          `json:"sender,omitempty"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	// TimeoutMS is set on requests: how long, in milliseconds, the
	// requester was still willing to wait when it sent the message. The
	// receiver bounds the handler's context with it. It is relative so
	// that clock skew between hosts does not matter.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// Error codes used by the bus itself. Applications may define their own
// codes; callers must branch on Code (or Retryable), never on Message.
const (
	// CodeInternal: the handler failed (returned a plain error or panicked).
	CodeInternal = "internal"
	// CodeUnsupportedVersion: the receiver does not understand this
	// version of the message type (major differs or minor is too new).
	CodeUnsupportedVersion = "unsupported_version"
	// CodeUnknownType: the receiver does not handle this message type at all.
	CodeUnknownType = "unknown_type"
	// CodeBadRequest: the envelope or payload could not be decoded.
	CodeBadRequest = "bad_request"
	// CodeTimeout: the handler ran out of time (its context expired).
	CodeTimeout = "timeout"
	// CodeUnavailable: the receiver is shutting down; try again.
	CodeUnavailable = "unavailable"
	// CodeNotFound and CodeConflict are conventional application codes.
	CodeNotFound = "not_found"
	CodeConflict = "conflict"
)

// Error is a typed error carried in a reply envelope. A handler that returns
// an *Error (or an error wrapping one) has it delivered verbatim to the
// requester, where Request returns it as an *Error, so errors.As works on
// both sides of the bus. Match on Code, never on Message.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
}

// NewError returns an *Error with the given code and a formatted message.
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "bus: remote error: " + e.Code
	}
	return "bus: remote error: " + e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &bus.Error{Code: bus.CodeNotFound}) works.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) || t == nil {
		return false
	}
	return e.Code == t.Code
}

// Message is a decoded, version-checked message handed to a Handler (or
// returned by RequestMsg for a reply).
type Message struct {
	Type    string
	Version Version
	ID      string
	Sender  string
	Subject string
	Time    time.Time
	Payload json.RawMessage

	reply string
}

// IsRequest reports whether the sender is waiting for a reply.
func (m *Message) IsRequest() bool { return m.reply != "" }

// Decode unmarshals the payload into v. Unknown fields are ignored (that is
// what makes minor versions additive). A failure is returned as an *Error
// with CodeBadRequest, so a handler can return it unchanged. An absent
// payload leaves v untouched.
func (m *Message) Decode(v any) error {
	if len(m.Payload) == 0 || bytes.Equal(m.Payload, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("decode %s %s payload: %v", m.Type, m.Version, err)}
	}
	return nil
}
