// Package bus is Kumo's message bus: versioned request/reply and events
// over NATS.
//
// All-in-one Kumo runs an embedded NATS server (Config.URL empty), either
// purely in-process (Config.Listen empty, no TCP port) or listening so that
// agents can connect (Bus.ClientURL). Split deployments point every process
// at an external NATS cluster with Config.URL. Agents never touch the
// database: everything they exchange with the control plane goes through
// this package, so the rules below are what keeps a mixed-version cluster
// working during a rolling upgrade.
//
// # The message version contract
//
// This file is the single place where the bus message contract is written
// down. Change it only together with the code, and never in a way that
// breaks a released agent.
//
// # Envelope
//
// Every NATS message body is one JSON object, the Envelope:
//
//	{
//	  "type":       "compute.instance.boot",   // message type, required
//	  "version":    "1.3",                     // "major.minor" of the payload schema, required
//	  "id":         "nK2x...",                 // unique per message; a reply repeats the request's id
//	  "sender":     "kumo-api@host1",          // Config.Name of the sender
//	  "time":       "2025-01-02T03:04:05.6Z",  // sender's clock, RFC 3339, informational only
//	  "timeout_ms": 29998,                     // requests only: time the requester will still wait
//	  "payload":    {...},                     // type-specific body, absent if none
//	  "error":      {"code": "...", "message": "...", "retryable": false} // replies only, on failure
//	}
//
// The envelope itself evolves only by adding optional fields; readers
// ignore fields they do not know. Removing or re-typing an envelope field
// is forbidden. Headers are not used, so any NATS client that can write
// JSON can speak the protocol.
//
// A reply carries the request's type, version and id, and either a payload
// (in the schema of the request's version) or an error, never both. The
// subject carries routing only (who receives it); what the message means is
// decided by "type" and "version" alone.
//
// # Versions
//
// Versions are per message type, not per service or per release. Within a
// major version, a new minor may only add optional payload fields (to
// requests, replies or events) with a zero value that means "the old
// behaviour". Every reader ignores unknown fields (encoding/json does by
// default; Message.Decode relies on it). Anything else — removing or
// renaming a field, changing its type or meaning, making a field required —
// needs a new major version, which is effectively a new message type that
// receivers must support side by side with the old major for at least one
// release.
//
// Receivers declare, per subscription, the highest version they understand
// of each message type (the accepts map of Bus.Subscribe). A message is
// delivered to the handler if and only if its major equals the accepted
// major and its minor is less than or equal to the accepted minor. A newer
// minor is refused, not silently truncated, because its new fields may
// change behaviour the old receiver cannot honour. Refused requests are
// answered with an Error of code "unsupported_version"; a type missing
// from accepts is answered with "unknown_type"; refused events are dropped
// and logged. During a major-version migration a receiver serves both
// majors from one subscription with Bus.SubscribeVersions (one highest
// minor per major) and switches on Message.Version.Major.
//
// Handlers must answer in the shape of the version they received
// (Message.Version): a 1.2 requester gets a 1.2 reply even from a 1.5
// receiver.
//
// # Rolling upgrades and version caps
//
// Upgrade receivers (agents) before senders, or cap senders. Bus.SetVersionCap
// pins the version a process sends for a message type; Publish and Request
// send min(requested version, cap), so the version on the wire never
// exceeds the cap. Operators set the cap to the oldest version still
// deployed and lift it when the last old receiver is gone. If the payload a
// sender builds depends on the version, it calls Bus.VersionFor first and
// builds the payload for the version returned. A cap below the sender's
// major is only valid if the sender still knows how to build that major.
//
// In a queue group, any member may receive a request, so during an upgrade
// a version must be capped to what the oldest member accepts; the bus does
// not retry "unsupported_version" on another member.
//
// # Errors
//
// Remote failures travel as Error{Code, Message, Retryable}. Callers branch
// on Code (and Retryable), never on Message, which is for humans and logs.
// Codes used by the bus itself: "internal" (handler returned an untyped
// error or panicked), "unsupported_version", "unknown_type", "bad_request"
// (undecodable envelope or payload), "timeout" (the handler's context
// expired; retryable) and "unavailable" (receiver shutting down;
// retryable). Applications add their own codes, such as "not_found" and
// "conflict". A code, once used for a message type, keeps its meaning.
//
// Locally produced failures are Go errors: ErrNoResponders when nothing
// subscribes to the subject, context.DeadlineExceeded (wrapped) when the
// requester's context expires, ErrClosed after Close.
//
// # Delivery
//
// Delivery is NATS core: at most once, no persistence. Requests that matter
// must be idempotent (keyed by a caller-chosen id in the payload) so that
// they can be retried after a timeout. Handlers run concurrently, at most
// Config.MaxConcurrent per subscription; with MaxConcurrent 1 messages on a
// subscription are handled in order. A handler's context is cancelled when
// the requester's timeout ("timeout_ms") elapses.
package bus
