package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Handler handles one message. For requests, reply is JSON-encoded into the
// reply envelope; it must use the shape of m.Version (the requester's
// version). A returned *Error (or an error wrapping one) reaches the
// requester unchanged; any other error is sent as CodeInternal. Panics are
// recovered and sent as CodeInternal. For published events the reply is
// ignored and errors are only logged.
//
// ctx is cancelled when the requester's timeout elapses or when the
// subscription is stopped and its drain timeout has passed.
type Handler func(ctx context.Context, m *Message) (reply any, err error)

// handlerStopGrace is how long stop waits for handlers after cancelling
// their contexts.
const handlerStopGrace = time.Second

// Publish sends an event to every subscriber of subject (one per queue
// group). The version sent is b.VersionFor(msgType, v). Publish does not
// wait for delivery; receivers that reject the message only log it.
func (b *Bus) Publish(ctx context.Context, subject, msgType string, v Version, payload any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return ErrClosed
	}
	data, err := b.encode(msgType, b.VersionFor(msgType, v), payload, 0)
	if err != nil {
		return err
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return b.natsErr("publish", subject, msgType, err)
	}
	return nil
}

// Request sends a request and decodes the reply payload into reply (which
// may be nil to discard it). It waits until ctx is done, or for
// Config.RequestTimeout if ctx has no deadline. A remote failure is
// returned as *Error; with no subscriber on subject the error is
// ErrNoResponders; on timeout it wraps context.DeadlineExceeded.
func (b *Bus) Request(ctx context.Context, subject, msgType string, v Version, payload, reply any) error {
	m, err := b.RequestMsg(ctx, subject, msgType, v, payload)
	if err != nil {
		return err
	}
	if reply == nil || len(m.Payload) == 0 {
		return nil
	}
	if err := json.Unmarshal(m.Payload, reply); err != nil {
		return fmt.Errorf("bus: decode %s %s reply from %s: %w", m.Type, m.Version, m.Sender, err)
	}
	return nil
}

// RequestMsg is Request returning the whole reply message (sender,
// version, raw payload) instead of decoding it.
func (b *Bus) RequestMsg(ctx context.Context, subject, msgType string, v Version, payload any) (*Message, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.RequestTimeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: request %s on %s: %w", msgType, subject, err)
	}
	dl, _ := ctx.Deadline()
	data, err := b.encode(msgType, b.VersionFor(msgType, v), payload, time.Until(dl))
	if err != nil {
		return nil, err
	}
	resp, err := b.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, b.natsErr("request", subject, msgType, err)
	}
	var env Envelope
	if err := json.Unmarshal(resp.Data, &env); err != nil {
		return nil, fmt.Errorf("bus: request %s on %s: malformed reply: %w", msgType, subject, err)
	}
	if env.Error != nil {
		return nil, env.Error
	}
	rv, err := ParseVersion(env.Version)
	if err != nil {
		return nil, fmt.Errorf("bus: request %s on %s: malformed reply: %w", msgType, subject, err)
	}
	return &Message{
		Type:    env.Type,
		Version: rv,
		ID:      env.ID,
		Sender:  env.Sender,
		Subject: resp.Subject,
		Time:    env.Time,
		Payload: env.Payload,
	}, nil
}

func (b *Bus) encode(msgType string, v Version, payload any, timeout time.Duration) ([]byte, error) {
	if msgType == "" {
		return nil, errors.New("bus: empty message type")
	}
	env := Envelope{
		Type:    msgType,
		Version: v.String(),
		ID:      nuid.Next(),
		Sender:  b.name,
		Time:    time.Now().UTC(),
	}
	if payload != nil {
		p, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("bus: encode %s %s payload: %w", msgType, v, err)
		}
		env.Payload = p
	}
	if timeout > 0 {
		// Round up so the receiver's deadline is never before ours.
		env.TimeoutMS = int64((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	return json.Marshal(&env)
}

func (b *Bus) natsErr(op, subject, msgType string, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("bus: %s %s on %s: %w", op, msgType, subject, ErrNoResponders)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("bus: %s %s on %s: %w", op, msgType, subject, ErrClosed)
	}
	return fmt.Errorf("bus: %s %s on %s: %w", op, msgType, subject, err)
}

// Subscription is a live handler registration; see Bus.Subscribe.
type Subscription struct {
	b       *Bus
	subject string
	queue   string
	accepts map[string][]Version
	h       Handler
	log     *slog.Logger
	nsub    *nats.Subscription
	sem     chan struct{}

	ctx    context.Context // parent of handler contexts
	cancel context.CancelFunc

	mu       sync.Mutex
	stopped  bool
	inflight sync.WaitGroup
	stopOnce sync.Once
}

// Subscribe registers h for subject (NATS wildcards allowed). With queue ""
// every subscriber receives every message (fan-out); subscribers sharing a
// non-empty queue name share the load, each message going to one of them.
//
// accepts lists the message types this subscription handles and, for each,
// the highest version it understands. A message of the same major and a
// minor <= the listed one is delivered to h. Otherwise the sender of a
// request gets *Error with CodeUnsupportedVersion (or CodeUnknownType for a
// type not listed) and h is not called; rejected events are logged.
func (b *Bus) Subscribe(subject, queue string, accepts map[string]Version, h Handler) (*Subscription, error) {
	multi := make(map[string][]Version, len(accepts))
	for t, v := range accepts {
		multi[t] = []Version{v}
	}
	return b.SubscribeVersions(subject, queue, multi, h)
}

// SubscribeVersions is Subscribe for receivers that serve several major
// versions of a message type at once (during a major-version migration):
// accepts lists, per type, the highest understood version of each
// supported major. A message is delivered if any entry accepts it.
func (b *Bus) SubscribeVersions(subject, queue string, accepts map[string][]Version, h Handler) (*Subscription, error) {
	if subject == "" {
		return nil, errors.New("bus: subscribe: empty subject")
	}
	if h == nil {
		return nil, errors.New("bus: subscribe: nil handler")
	}
	if len(accepts) == 0 {
		return nil, errors.New("bus: subscribe: accepts lists no message types")
	}
	acc := make(map[string][]Version, len(accepts))
	for t, vs := range accepts {
		if t == "" {
			return nil, errors.New("bus: subscribe: empty message type in accepts")
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("bus: subscribe: no versions listed for %s", t)
		}
		acc[t] = slices.Clone(vs)
	}
	s := &Subscription{
		b:       b,
		subject: subject,
		queue:   queue,
		accepts: acc,
		h:       h,
		log:     b.log.With("subject", subject, "queue", queue),
		sem:     make(chan struct{}, b.cfg.MaxConcurrent),
	}
	s.ctx, s.cancel = context.WithCancel(b.ctx)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.cancel()
		return nil, ErrClosed
	}
	var err error
	if queue == "" {
		s.nsub, err = b.nc.Subscribe(subject, s.onMsg)
	} else {
		s.nsub, err = b.nc.QueueSubscribe(subject, queue, s.onMsg)
	}
	if err != nil {
		s.cancel()
		return nil, b.natsErr("subscribe", subject, "", err)
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// Unsubscribe stops the subscription: the server stops routing to it,
// messages already queued are still handled and answered, and it waits for
// running handlers (up to Config.DrainTimeout, after which their contexts
// are cancelled). Do not call it from the subscription's own handler. It is
// safe to call more than once.
func (s *Subscription) Unsubscribe() error {
	s.stop()
	return nil
}

// Flush waits until the server has processed everything sent so far on
// this connection, including subscriptions (useful before publishing from
// another connection).
func (b *Bus) Flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.RequestTimeout)
		defer cancel()
	}
	return b.nc.FlushWithContext(ctx)
}

func (s *Subscription) stop() {
	s.stopOnce.Do(func() {
		defer func() {
			s.b.mu.Lock()
			delete(s.b.subs, s)
			s.b.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.DrainTimeout)
		defer cancel()

		// Drain: the server stops routing to us, and nats.go delivers what
		// is already queued before closing the subscription.
		// Skipped while disconnected: queued messages are dropped (their replies
		// could not be sent now anyway) rather than waiting for a drain
		// round trip that cannot happen.
		closed := s.nsub.StatusChanged(nats.SubscriptionClosed)
		if s.b.nc.IsConnected() && s.nsub.Drain() == nil {
			select {
			case <-closed:
			case <-ctx.Done():
				s.log.Warn("bus subscription drain timed out")
			}
		}
		_ = s.nsub.Unsubscribe() // no-op if drained; drops leftovers otherwise

		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()

		done := make(chan struct{})
		go func() {
			s.inflight.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.cancel()
			select {
			case <-done:
			case <-time.After(handlerStopGrace):
				s.log.Warn("bus handlers still running after subscription stop")
			}
		}
		s.cancel()
	})
}

// onMsg runs on the subscription's NATS dispatcher goroutine. It only
// waits for a free handler slot, so a slow handler holds back at most
// MaxConcurrent messages of this subscription, never the connection.
func (s *Subscription) onMsg(nm *nats.Msg) {
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		s.rejectRaw(nm, &Error{Code: CodeUnavailable, Message: "subscriber shutting down", Retryable: true})
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		<-s.sem
		s.rejectRaw(nm, &Error{Code: CodeUnavailable, Message: "subscriber shutting down", Retryable: true})
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.inflight.Done()
		defer func() { <-s.sem }()
		s.handle(nm)
	}()
}

func (s *Subscription) handle(nm *nats.Msg) {
	var env Envelope
	if err := json.Unmarshal(nm.Data, &env); err != nil {
		s.rejectRaw(nm, NewError(CodeBadRequest, "malformed envelope: %v", err))
		return
	}
	if env.Type == "" {
		s.reject(nm, &env, NewError(CodeBadRequest, "envelope has no type"))
		return
	}
	ver, err := ParseVersion(env.Version)
	if err != nil {
		s.reject(nm, &env, NewError(CodeBadRequest, "%s: %v", env.Type, err))
		return
	}
	acc, ok := s.accepts[env.Type]
	if !ok {
		s.reject(nm, &env, NewError(CodeUnknownType, "message type %s is not handled on %s", env.Type, nm.Subject))
		return
	}
	if !slices.ContainsFunc(acc, func(a Version) bool { return a.Accepts(ver) }) {
		s.reject(nm, &env, NewError(CodeUnsupportedVersion, "%s version %s not supported; receiver accepts %s", env.Type, ver, acceptRange(acc)))
		return
	}

	m := &Message{
		Type:    env.Type,
		Version: ver,
		ID:      env.ID,
		Sender:  env.Sender,
		Subject: nm.Subject,
		Time:    env.Time,
		Payload: env.Payload,
		reply:   nm.Reply,
	}
	ctx := s.ctx
	var requesterGone func() bool
	if env.TimeoutMS > 0 {
		deadline := time.Now().Add(time.Duration(env.TimeoutMS) * time.Millisecond)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
		requesterGone = func() bool { return !time.Now().Before(deadline) }
	}
	reply, err := s.call(ctx, m)
	if err != nil {
		if nm.Reply == "" {
			s.log.Warn("bus event handler failed", "type", m.Type, "version", m.Version.String(), "id", m.ID, "sender", m.Sender, "err", err)
			return
		}
		if requesterGone != nil && requesterGone() {
			// The requester stopped waiting (its deadline is no later than
			// ours); it reports its own timeout, so don't answer.
			s.log.Debug("bus request expired in handler", "type", m.Type, "version", m.Version.String(), "id", m.ID, "sender", m.Sender, "err", err)
			return
		}
		e := s.toError(err)
		s.respond(nm, &env, nil, e)
		return
	}
	if nm.Reply == "" {
		return
	}
	var payload json.RawMessage
	if reply != nil {
		p, err := json.Marshal(reply)
		if err != nil {
			s.log.Error("bus reply encode failed", "type", m.Type, "version", m.Version.String(), "id", m.ID, "err", err)
			s.respond(nm, &env, nil, NewError(CodeInternal, "encode reply: %v", err))
			return
		}
		payload = p
	}
	s.respond(nm, &env, payload, nil)
}

// call runs the handler, turning a panic into a CodeInternal error.
func (s *Subscription) call(ctx context.Context, m *Message) (reply any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("bus handler panic", "type", m.Type, "version", m.Version.String(), "id", m.ID, "sender", m.Sender,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			reply, err = nil, &Error{Code: CodeInternal, Message: "handler panic (message id " + m.ID + ")"}
		}
	}()
	return s.h(ctx, m)
}

func (s *Subscription) toError(err error) *Error {
	var be *Error
	switch {
	case errors.As(err, &be) && be != nil:
		return be
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeTimeout, Message: err.Error(), Retryable: true}
	case errors.Is(err, context.Canceled) && s.ctx.Err() != nil:
		return &Error{Code: CodeUnavailable, Message: "subscriber shutting down", Retryable: true}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// reject answers a message that never reached the handler.
func (s *Subscription) reject(nm *nats.Msg, env *Envelope, e *Error) {
	if nm.Reply == "" {
		s.log.Warn("bus event rejected", "type", env.Type, "version", env.Version, "id", env.ID, "sender", env.Sender, "code", e.Code, "err", e.Message)
		return
	}
	s.log.Debug("bus request rejected", "type", env.Type, "version", env.Version, "id", env.ID, "sender", env.Sender, "code", e.Code, "err", e.Message)
	s.respond(nm, env, nil, e)
}

func (s *Subscription) rejectRaw(nm *nats.Msg, e *Error) {
	s.reject(nm, &Envelope{}, e)
}

func (s *Subscription) respond(nm *nats.Msg, req *Envelope, payload json.RawMessage, e *Error) {
	env := Envelope{
		Type:    req.Type,
		Version: req.Version,
		ID:      req.ID,
		Sender:  s.b.name,
		Time:    time.Now().UTC(),
		Payload: payload,
		Error:   e,
	}
	data, err := json.Marshal(&env)
	if err == nil {
		err = s.b.nc.Publish(nm.Reply, data)
	}
	if err != nil && e == nil {
		// Most likely the reply is too large; tell the requester rather
		// than letting it time out.
		s.respond(nm, req, nil, NewError(CodeInternal, "send reply: %v", err))
		return
	}
	if err != nil {
		s.log.Error("bus reply failed", "type", req.Type, "id", req.ID, "err", err)
	}
}

// acceptRange describes accepted versions for error messages: "1.0-1.4, 2.0-2.1".
func acceptRange(acc []Version) string {
	parts := make([]string, len(acc))
	for i, a := range acc {
		parts[i] = V(a.Major, 0).String() + "-" + a.String()
	}
	return strings.Join(parts, ", ")
}
