package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// testLogger writes to the test's output (shown on failure or with -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openBus(t testing.TB, cfg Config) *Bus {
	t.Helper()
	return openBusLog(t, cfg, testLogger(t))
}

func openBusLog(t testing.TB, cfg Config, log *slog.Logger) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cfg.Name == "" {
		cfg.Name = "test-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	b, err := Open(ctx, cfg, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSubscribe(t testing.TB, b *Bus, subject, queue string, accepts map[string]Version, h Handler) *Subscription {
	t.Helper()
	s, err := b.Subscribe(subject, queue, accepts, h)
	if err != nil {
		t.Fatalf("Subscribe(%q, %q): %v", subject, queue, err)
	}
	return s
}

type echoReq struct {
	Text string `json:"text"`
	N    int    `json:"n"`
}

type echoResp struct {
	Text    string `json:"text"`
	N       int    `json:"n"`
	Version string `json:"version"`
	Sender  string `json:"sender"`
}

func echoHandler(_ context.Context, m *Message) (any, error) {
	var r echoReq
	if err := m.Decode(&r); err != nil {
		return nil, err
	}
	return echoResp{Text: r.Text, N: r.N * 2, Version: m.Version.String(), Sender: m.Sender}, nil
}

func TestRequestReplyInProcess(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{Name: "api@test"})
	if b.ClientURL() != "" {
		t.Fatalf("in-process bus has ClientURL %q", b.ClientURL())
	}
	mustSubscribe(t, b, "echo", "", map[string]Version{"test.echo": V(1, 2)}, echoHandler)

	tests := []struct {
		name string
		req  any
		want echoResp
	}{
		{"struct", echoReq{Text: "hi", N: 21}, echoResp{Text: "hi", N: 42}},
		{"raw json", json.RawMessage(`{"text":"raw","n":1,"extra":"ignored"}`), echoResp{Text: "raw", N: 2}},
		{"map", map[string]any{"text": "m"}, echoResp{Text: "m"}},
		{"nil payload", nil, echoResp{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got echoResp
			if err := b.Request(testCtx(t), "echo", "test.echo", V(1, 1), tc.req, &got); err != nil {
				t.Fatalf("Request: %v", err)
			}
			tc.want.Version, tc.want.Sender = "1.1", "api@test"
			if got != tc.want {
				t.Fatalf("reply = %+v, want %+v", got, tc.want)
			}
		})
	}

	t.Run("RequestMsg", func(t *testing.T) {
		t.Parallel()
		m, err := b.RequestMsg(testCtx(t), "echo", "test.echo", V(1, 0), echoReq{Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != "test.echo" || m.Version != V(1, 0) || m.Sender != "api@test" || m.ID == "" || m.Time.IsZero() {
			t.Fatalf("reply message = %+v", m)
		}
	})
}

func TestPublishFanOut(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	const n = 2
	got := make(chan string, 10)
	for i := range n {
		mustSubscribe(t, b, "events.instance", "", map[string]Version{"instance.created": V(1, 0)},
			func(_ context.Context, m *Message) (any, error) {
				var p struct{ ID string }
				if err := m.Decode(&p); err != nil {
					return nil, err
				}
				got <- fmt.Sprintf("%d:%s", i, p.ID)
				return nil, nil
			})
	}
	if err := b.Publish(testCtx(t), "events.instance", "instance.created", V(1, 0), map[string]string{"ID": "vm1"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range n {
		select {
		case s := <-got:
			seen[s] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d subscribers got the event: %v", len(seen), n, seen)
		}
	}
	if !seen["0:vm1"] || !seen["1:vm1"] {
		t.Fatalf("deliveries = %v", seen)
	}
	select {
	case s := <-got:
		t.Fatalf("extra delivery %q", s)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestQueueGroupLoadBalancing(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	const members, requests = 3, 300
	var counts [members]atomic.Int64
	for i := range members {
		mustSubscribe(t, b, "work", "workers", map[string]Version{"work.do": V(1, 0)},
			func(context.Context, *Message) (any, error) {
				counts[i].Add(1)
				return i, nil
			})
	}
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for range requests {
		wg.Go(func() {
			var who int
			errs <- b.Request(ctx, "work", "work.do", V(1, 0), nil, &who)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for i := range members {
		c := counts[i].Load()
		total += c
		if c == 0 {
			t.Errorf("member %d got no requests", i)
		}
	}
	if total != requests {
		t.Fatalf("handled %d requests, want exactly %d (each once)", total, requests)
	}
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	b := openBusLog(t, Config{}, slog.New(slog.NewTextHandler(logs, nil)))
	mustSubscribe(t, b, "err", "", map[string]Version{"test.fail": V(1, 0)},
		func(ctx context.Context, m *Message) (any, error) {
			var mode string
			if err := m.Decode(&mode); err != nil {
				return nil, err
			}
			switch mode {
			case "typed":
				return nil, &Error{Code: CodeNotFound, Message: "no such instance", Retryable: false}
			case "wrapped":
				return nil, fmt.Errorf("lookup: %w", &Error{Code: CodeConflict, Message: "busy", Retryable: true})
			case "plain":
				return nil, errors.New("disk on fire")
			case "panic":
				panic("boom")
			case "deadline":
				return nil, fmt.Errorf("waiting: %w", context.DeadlineExceeded)
			case "unencodable":
				return func() {}, nil
			}
			return "ok", nil
		})

	tests := []struct {
		mode      string
		code      string
		retryable bool
		msg       string // substring of Message
	}{
		{"typed", CodeNotFound, false, "no such instance"},
		{"wrapped", CodeConflict, true, "busy"},
		{"plain", CodeInternal, false, "disk on fire"},
		{"panic", CodeInternal, false, "panic"},
		{"deadline", CodeTimeout, true, ""},
		{"unencodable", CodeInternal, false, "encode reply"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			err := b.Request(testCtx(t), "err", "test.fail", V(1, 0), tc.mode, nil)
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if be.Code != tc.code || be.Retryable != tc.retryable || !strings.Contains(be.Message, tc.msg) {
				t.Fatalf("err = %+v, want code %q retryable %v message ~%q", be, tc.code, tc.retryable, tc.msg)
			}
			if !errors.Is(err, &Error{Code: tc.code}) {
				t.Fatalf("errors.Is(err, &Error{Code: %q}) = false", tc.code)
			}
			if errors.Is(err, &Error{Code: "something_else"}) {
				t.Fatal("errors.Is matched a different code")
			}
		})
	}

	t.Run("bad payload", func(t *testing.T) {
		t.Parallel()
		err := b.Request(testCtx(t), "err", "test.fail", V(1, 0), 42, nil)
		if !errors.Is(err, &Error{Code: CodeBadRequest}) {
			t.Fatalf("err = %v, want bad_request", err)
		}
	})

	t.Run("panic logged", func(t *testing.T) {
		t.Parallel()
		_ = b.Request(testCtx(t), "err", "test.fail", V(1, 0), "panic", nil)
		out := logs.String()
		if !strings.Contains(out, "bus handler panic") || !strings.Contains(out, "boom") {
			t.Fatalf("panic not logged; log:\n%s", out)
		}
	})
}

func TestVersionAcceptance(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	mustSubscribe(t, b, "ver", "", map[string]Version{"compute.boot": V(1, 3), "compute.stop": V(2, 0)}, echoHandler)
	multi, err := b.SubscribeVersions("ver.multi", "", map[string][]Version{"compute.boot": {V(1, 3), V(2, 1)}}, echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	_ = multi

	tests := []struct {
		name    string
		subject string
		typ     string
		v       Version
		code    string // "" => delivered
	}{
		{"same", "ver", "compute.boot", V(1, 3), ""},
		{"older minor", "ver", "compute.boot", V(1, 0), ""},
		{"minor too new", "ver", "compute.boot", V(1, 4), CodeUnsupportedVersion},
		{"major too new", "ver", "compute.boot", V(2, 0), CodeUnsupportedVersion},
		{"major too old", "ver", "compute.stop", V(1, 9), CodeUnsupportedVersion},
		{"other type ok", "ver", "compute.stop", V(2, 0), ""},
		{"unknown type", "ver", "compute.delete", V(1, 0), CodeUnknownType},
		{"multi major 1", "ver.multi", "compute.boot", V(1, 2), ""},
		{"multi major 2", "ver.multi", "compute.boot", V(2, 1), ""},
		{"multi minor too new", "ver.multi", "compute.boot", V(2, 2), CodeUnsupportedVersion},
		{"multi major 3", "ver.multi", "compute.boot", V(3, 0), CodeUnsupportedVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got echoResp
			err := b.Request(testCtx(t), tc.subject, tc.typ, tc.v, echoReq{Text: "x"}, &got)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Request: %v", err)
				}
				if got.Version != tc.v.String() {
					t.Fatalf("handler saw version %s, want %s", got.Version, tc.v)
				}
				return
			}
			var be *Error
			if !errors.As(err, &be) || be.Code != tc.code {
				t.Fatalf("err = %v, want code %q", err, tc.code)
			}
			if be.Retryable {
				t.Fatalf("%s must not be retryable", be.Code)
			}
		})
	}
}

func TestVersionRejectedEventNotDelivered(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	got := make(chan Version, 4)
	mustSubscribe(t, b, "ev", "", map[string]Version{"net.port.up": V(1, 1)}, func(_ context.Context, m *Message) (any, error) {
		got <- m.Version
		return nil, nil
	})
	ctx := testCtx(t)
	for _, v := range []Version{V(1, 2), V(2, 0), V(1, 1)} {
		if err := b.Publish(ctx, "ev", "net.port.up", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case v := <-got:
		if v != V(1, 1) {
			t.Fatalf("delivered version %v; only 1.1 is acceptable", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acceptable event not delivered")
	}
	select {
	case v := <-got:
		t.Fatalf("unexpected delivery of %v", v)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestVersionCap(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	// An "old agent" that only knows 1.2.
	mustSubscribe(t, b, "agent", "", map[string]Version{"compute.boot": V(1, 2)}, echoHandler)

	if err := b.Request(testCtx(t), "agent", "compute.boot", V(1, 5), nil, nil); !errors.Is(err, &Error{Code: CodeUnsupportedVersion}) {
		t.Fatalf("uncapped 1.5 to a 1.2 agent: err = %v, want unsupported_version", err)
	}

	b.SetVersionCap("compute.boot", V(1, 2))
	tests := []struct {
		typ      string
		in, want Version
	}{
		{"compute.boot", V(1, 5), V(1, 2)},
		{"compute.boot", V(1, 2), V(1, 2)},
		{"compute.boot", V(1, 1), V(1, 1)},
		{"compute.boot", V(2, 0), V(1, 2)},
		{"compute.stop", V(1, 5), V(1, 5)},
	}
	for _, tc := range tests {
		if got := b.VersionFor(tc.typ, tc.in); got != tc.want {
			t.Errorf("VersionFor(%s, %v) = %v, want %v", tc.typ, tc.in, got, tc.want)
		}
	}

	var got echoResp
	if err := b.Request(testCtx(t), "agent", "compute.boot", V(1, 5), echoReq{}, &got); err != nil {
		t.Fatalf("capped request: %v", err)
	}
	if got.Version != "1.2" {
		t.Fatalf("agent saw version %s, want 1.2 (capped)", got.Version)
	}

	b.ClearVersionCap("compute.boot")
	if got := b.VersionFor("compute.boot", V(1, 5)); got != V(1, 5) {
		t.Fatalf("after ClearVersionCap VersionFor = %v", got)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	handlerCtxDone := make(chan error, 1)
	mustSubscribe(t, b, "slow", "", map[string]Version{"test.slow": V(1, 0)}, func(ctx context.Context, _ *Message) (any, error) {
		select {
		case <-ctx.Done():
			handlerCtxDone <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			handlerCtxDone <- nil
			return "late", nil
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Request(ctx, "slow", "test.slow", V(1, 0), nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("request took %v despite 150ms deadline", el)
	}
	// The requester's deadline travels in the envelope and bounds the handler.
	select {
	case err := <-handlerCtxDone:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("handler ctx err = %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler context not cancelled after requester deadline")
	}

	t.Run("already expired", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := b.Request(ctx, "slow", "test.slow", V(1, 0), nil, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("default timeout", func(t *testing.T) {
		t.Parallel()
		b2 := openBus(t, Config{RequestTimeout: 100 * time.Millisecond})
		mustSubscribe(t, b2, "slow", "", map[string]Version{"test.slow": V(1, 0)}, func(ctx context.Context, _ *Message) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		if err := b2.Request(context.Background(), "slow", "test.slow", V(1, 0), nil, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded from Config.RequestTimeout", err)
		}
	})
}

func TestNoResponders(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	start := time.Now()
	err := b.Request(testCtx(t), "nobody.home", "test.x", V(1, 0), nil, nil)
	if !errors.Is(err, ErrNoResponders) {
		t.Fatalf("err = %v, want ErrNoResponders", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("no-responders took as long as a timeout")
	}
}

// TestAgentOverTCP: the control plane runs the embedded server listening on
// TCP; an agent process connects to it by URL.
func TestAgentOverTCP(t *testing.T) {
	t.Parallel()
	ctrl := openBus(t, Config{Name: "kumo-api@ctl", Listen: "127.0.0.1:0"})
	url := ctrl.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL = %q", url)
	}
	agent := openBus(t, Config{Name: "kumo-agent@hv1", URL: url})
	if agent.ClientURL() != "" {
		t.Fatalf("client-only bus has ClientURL %q", agent.ClientURL())
	}
	ctx := testCtx(t)

	// Control plane -> agent request.
	mustSubscribe(t, agent, "agent.hv1", "", map[string]Version{"compute.boot": V(1, 0)}, echoHandler)
	if err := agent.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var got echoResp
	if err := ctrl.Request(ctx, "agent.hv1", "compute.boot", V(1, 0), echoReq{Text: "boot", N: 1}, &got); err != nil {
		t.Fatalf("ctrl -> agent: %v", err)
	}
	if got.Text != "boot" || got.N != 2 || got.Sender != "kumo-api@ctl" {
		t.Fatalf("reply = %+v", got)
	}

	// Agent -> control plane request and event.
	events := make(chan string, 1)
	mustSubscribe(t, ctrl, "ctl.api", "api", map[string]Version{"agent.hello": V(1, 0)}, echoHandler)
	mustSubscribe(t, ctrl, "ctl.events", "", map[string]Version{"agent.heartbeat": V(1, 0)}, func(_ context.Context, m *Message) (any, error) {
		events <- m.Sender
		return nil, nil
	})
	if err := ctrl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := agent.Request(ctx, "ctl.api", "agent.hello", V(1, 0), echoReq{Text: "hi"}, &got); err != nil {
		t.Fatalf("agent -> ctrl: %v", err)
	}
	if got.Sender != "kumo-agent@hv1" {
		t.Fatalf("ctrl saw sender %q", got.Sender)
	}
	if err := agent.Publish(ctx, "ctl.events", "agent.heartbeat", V(1, 0), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-events:
		if s != "kumo-agent@hv1" {
			t.Fatalf("event sender %q", s)
		}
	case <-ctx.Done():
		t.Fatal("event not received")
	}
}

func TestEmbeddedWithStoreDir(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{StoreDir: t.TempDir()})
	mustSubscribe(t, b, "echo", "", map[string]Version{"test.echo": V(1, 0)}, echoHandler)
	if err := b.Request(testCtx(t), "echo", "test.echo", V(1, 0), echoReq{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"bad listen", Config{Listen: "127.0.0.1"}},
		{"bad port", Config{Listen: "127.0.0.1:http"}},
		{"unreachable url", Config{URL: "nats://127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			b, err := Open(ctx, tc.cfg, testLogger(t))
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestSubscribeValidation(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	acc := map[string]Version{"t": V(1, 0)}
	tests := []struct {
		name    string
		subject string
		accepts map[string]Version
		h       Handler
	}{
		{"empty subject", "", acc, echoHandler},
		{"nil handler", "s", acc, nil},
		{"no accepts", "s", nil, echoHandler},
		{"empty type", "s", map[string]Version{"": V(1, 0)}, echoHandler},
		{"bad subject", "a b", acc, echoHandler},
	}
	for _, tc := range tests {
		if _, err := b.Subscribe(tc.subject, "", tc.accepts, tc.h); err == nil {
			t.Errorf("%s: Subscribe succeeded", tc.name)
		}
	}
}

// TestWireFormat pins the JSON field names of the envelope; they are the
// contract with agents of other versions.
func TestWireFormat(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{Name: "wire"})
	raw := make(chan []byte, 1)
	ns, err := b.Conn().Subscribe("wire", func(m *nats.Msg) { raw <- m.Data })
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Unsubscribe()
	if err := b.Publish(testCtx(t), "wire", "test.wire", V(3, 4), map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var data []byte
	select {
	case data = <-raw:
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "version", "id", "sender", "time", "payload"} {
		if _, ok := m[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, data)
		}
	}
	for _, k := range []string{"error", "timeout_ms"} {
		if _, ok := m[k]; ok {
			t.Errorf("event envelope has %q: %s", k, data)
		}
	}
	if string(m["version"]) != `"3.4"` || string(m["type"]) != `"test.wire"` || string(m["payload"]) != `{"a":1}` {
		t.Errorf("envelope = %s", data)
	}

	// A malformed envelope sent by a foreign client gets a typed error.
	mustSubscribe(t, b, "wire.req", "", map[string]Version{"test.wire": V(1, 0)}, echoHandler)
	for _, body := range []string{`not json`, `{"version":"1.0"}`, `{"type":"test.wire","version":"one"}`} {
		resp, err := b.Conn().Request("wire.req", []byte(body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var env Envelope
		if err := json.Unmarshal(resp.Data, &env); err != nil || env.Error == nil || env.Error.Code != CodeBadRequest {
			t.Errorf("%s: reply %s, want bad_request", body, resp.Data)
		}
	}
}

func TestConcurrentHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		maxConcurrent int
		wantPeak      int32
	}{
		{"parallel", 4, 4},
		{"serial", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := openBus(t, Config{MaxConcurrent: tc.maxConcurrent})
			var running, peak atomic.Int32
			mustSubscribe(t, b, "conc", "", map[string]Version{"t": V(1, 0)}, func(context.Context, *Message) (any, error) {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(100 * time.Millisecond)
				running.Add(-1)
				return nil, nil
			})
			ctx := testCtx(t)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if err := b.Request(ctx, "conc", "t", V(1, 0), nil, nil); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if p := peak.Load(); p != tc.wantPeak {
				t.Fatalf("peak concurrency %d, want %d", p, tc.wantPeak)
			}
		})
	}
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{})
	s := mustSubscribe(t, b, "u", "", map[string]Version{"t": V(1, 0)}, echoHandler)
	if err := b.Request(testCtx(t), "u", "t", V(1, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	if err := b.Request(testCtx(t), "u", "t", V(1, 0), nil, nil); !errors.Is(err, ErrNoResponders) {
		t.Fatalf("after Unsubscribe err = %v, want ErrNoResponders", err)
	}
}

// TestCloseClean: Close lets a running handler finish and answer, returns
// promptly, is idempotent, and later calls fail with ErrClosed.
func TestCloseClean(t *testing.T) {
	t.Parallel()
	srv := openBus(t, Config{Listen: "127.0.0.1:0", DrainTimeout: 5 * time.Second})
	cli := openBus(t, Config{URL: srv.ClientURL()})

	started := make(chan struct{})
	mustSubscribe(t, srv, "close", "", map[string]Version{"t": V(1, 0)}, func(context.Context, *Message) (any, error) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		return "finished", nil
	})
	if err := srv.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	reply := make(chan error, 1)
	go func() {
		var s string
		err := cli.Request(testCtx(t), "close", "t", V(1, 0), nil, &s)
		if err == nil && s != "finished" {
			err = fmt.Errorf("reply %q", s)
		}
		reply <- err
	}()
	<-started

	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if err := <-reply; err != nil {
		t.Fatalf("in-flight request during Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := testCtx(t)
	if err := srv.Publish(ctx, "x", "t", V(1, 0), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if err := srv.Request(ctx, "x", "t", V(1, 0), nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Request after Close: %v", err)
	}
	if _, err := srv.Subscribe("x", "", map[string]Version{"t": V(1, 0)}, echoHandler); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

// TestCloseStuckHandler: a handler that ignores the bus does not hang Close
// beyond DrainTimeout plus the grace period, and sees its context cancelled.
func TestCloseStuckHandler(t *testing.T) {
	t.Parallel()
	b := openBus(t, Config{DrainTimeout: 200 * time.Millisecond})
	started, cancelled := make(chan struct{}), make(chan struct{})
	mustSubscribe(t, b, "stuck", "", map[string]Version{"t": V(1, 0)}, func(ctx context.Context, _ *Message) (any, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	if err := b.Publish(testCtx(t), "stuck", "t", V(1, 0), nil); err != nil {
		t.Fatal(err)
	}
	<-started
	start := time.Now()
	b.Close()
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Close took %v", el)
	}
	select {
	case <-cancelled:
	case <-time.After(time.Second):
		t.Fatal("handler context not cancelled by Close")
	}
}

// TestCloseAfterServerGone: an agent whose server vanished closes promptly
// instead of waiting for a drain round trip that cannot happen.
func TestCloseAfterServerGone(t *testing.T) {
	t.Parallel()
	srv := openBus(t, Config{Listen: "127.0.0.1:0"})
	cli := openBus(t, Config{URL: srv.ClientURL()})
	mustSubscribe(t, cli, "a", "", map[string]Version{"t": V(1, 0)}, echoHandler)
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for cli.Conn().IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cli.Close()
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Close took %v", el)
	}
}

// TestCloseNoGoroutineLeak is deliberately not parallel: it counts
// goroutines, and parallel tests only start after sequential ones finish.
func TestCloseNoGoroutineLeak(t *testing.T) {
	cycle := func() {
		ctx := context.Background()
		srv, err := Open(ctx, Config{Listen: "127.0.0.1:0"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := Open(ctx, Config{URL: srv.ClientURL()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Subscribe("g", "q", map[string]Version{"t": V(1, 0)}, echoHandler); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Subscribe("g.ev", "", map[string]Version{"t": V(1, 0)}, echoHandler); err != nil {
			t.Fatal(err)
		}
		if err := srv.Request(ctx, "g", "t", V(1, 0), echoReq{}, nil); err != nil {
			t.Fatal(err)
		}
		_ = srv.Publish(ctx, "g.ev", "t", V(1, 0), nil)
		cli.Close()
		srv.Close()
	}
	cycle() // warm up package-level goroutines
	before := runtime.NumGoroutine()
	for range 3 {
		cycle()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before, n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
