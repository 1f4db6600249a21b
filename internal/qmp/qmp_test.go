package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeQEMU speaks the server side of QMP on one end of a net.Pipe.
type fakeQEMU struct {
	t    *testing.T
	conn net.Conn
	wmu  sync.Mutex
	// handle answers a command; nil return and nil error means {} reply.
	handle func(cmd string, args json.RawMessage) (any, *Error)
	got    chan string // commands seen, in order
}

func startFake(t *testing.T, handle func(string, json.RawMessage) (any, *Error)) (*fakeQEMU, net.Conn) {
	t.Helper()
	srv, cli := net.Pipe()
	f := &fakeQEMU{t: t, conn: srv, handle: handle, got: make(chan string, 64)}
	go f.serve()
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return f, cli
}

func (f *fakeQEMU) send(v any) {
	b, _ := json.Marshal(v)
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, _ = f.conn.Write(append(b, '\r', '\n'))
}

func (f *fakeQEMU) event(name string, data any) {
	f.send(map[string]any{"event": name, "data": data,
		"timestamp": map[string]int64{"seconds": 1700000000, "microseconds": 5}})
}

func (f *fakeQEMU) serve() {
	f.send(map[string]any{"QMP": map[string]any{
		"version":      map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": "Debian"},
		"capabilities": []string{"oob"},
	}})
	sc := bufio.NewScanner(f.conn)
	negotiated := false
	for sc.Scan() {
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
			ID        json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			f.send(map[string]any{"error": Error{Class: "GenericError", Desc: "bad json"}})
			continue
		}
		f.got <- req.Execute
		if req.Execute == "qmp_capabilities" {
			negotiated = true
			f.send(map[string]any{"return": map[string]any{}, "id": req.ID})
			continue
		}
		if !negotiated {
			f.send(map[string]any{"error": Error{Class: "CommandNotFound", Desc: "expecting capabilities negotiation"}, "id": req.ID})
			continue
		}
		ret, qerr := f.handle(req.Execute, req.Arguments)
		if qerr != nil {
			f.send(map[string]any{"error": qerr, "id": req.ID})
			continue
		}
		if ret == nil {
			ret = map[string]any{}
		}
		f.send(map[string]any{"return": ret, "id": req.ID})
		if req.Execute == "quit" {
			f.conn.Close()
			return
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHandshakeAndCommands(t *testing.T) {
	state := "running"
	var mu sync.Mutex
	f, conn := startFake(t, func(cmd string, args json.RawMessage) (any, *Error) {
		mu.Lock()
		defer mu.Unlock()
		switch cmd {
		case "query-status":
			return Status{Running: state == "running", Status: state}, nil
		case "stop":
			state = "paused"
		case "cont":
			state = "running"
		case "migrate":
			var a struct{ URI string }
			_ = json.Unmarshal(args, &a)
			if a.URI != "exec:cat > /x" {
				return nil, &Error{Class: "GenericError", Desc: "uri " + a.URI}
			}
		case "query-migrate":
			return MigrationInfo{Status: "completed"}, nil
		case "system_reset", "system_powerdown", "quit":
		default:
			return nil, &Error{Class: "CommandNotFound", Desc: "The command " + cmd + " has not been found"}
		}
		return nil, nil
	})
	ctx := ctxT(t)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := c.Version(); v.Major != 7 || v.Minor != 2 || v.Package != "Debian" {
		t.Fatalf("version %+v", v)
	}
	if got := <-f.got; got != "qmp_capabilities" {
		t.Fatalf("first command %q, want qmp_capabilities", got)
	}

	st, err := c.QueryStatus(ctx)
	if err != nil || st.Status != StatusRunning || !st.Running {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.QueryStatus(ctx); st.Status != StatusPaused || st.Running {
		t.Fatalf("after stop: %+v", st)
	}
	if err := c.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Migrate(ctx, "exec:cat > /x"); err != nil {
		t.Fatal(err)
	}
	if m, err := c.QueryMigrate(ctx); err != nil || m.Status != "completed" {
		t.Fatalf("query-migrate %+v %v", m, err)
	}

	err = c.Execute(ctx, "no-such-command", nil, nil)
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Fatalf("want CommandNotFound, got %v", err)
	}

	if err := c.Quit(ctx); err != nil {
		t.Fatalf("quit: %v", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection did not end after quit")
	}
	if err := c.SystemReset(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("command after close: %v", err)
	}
}

func TestConcurrentCommands(t *testing.T) {
	_, conn := startFake(t, func(cmd string, _ json.RawMessage) (any, *Error) {
		return Status{Running: true, Status: "running"}, nil
	})
	ctx := ctxT(t)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := c.QueryStatus(ctx); err != nil || st.Status != "running" {
				t.Errorf("status %+v %v", st, err)
			}
		}()
	}
	wg.Wait()
}

func TestEvents(t *testing.T) {
	f, conn := startFake(t, func(cmd string, _ json.RawMessage) (any, *Error) { return nil, nil })
	ctx := ctxT(t)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	ev1, cancel1 := c.Subscribe(8)
	ev2, cancel2 := c.Subscribe(8)
	defer cancel2()
	f.event("STOP", nil)
	f.event("SHUTDOWN", map[string]any{"guest": true, "reason": "guest-shutdown"})

	got, err := WaitEvent(ctx, ev1, EventShutdown)
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Guest  bool   `json:"guest"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(got.Data, &data); err != nil || !data.Guest || data.Reason != "guest-shutdown" {
		t.Fatalf("event data %s: %v", got.Data, err)
	}
	if got.Time.Unix() != 1700000000 {
		t.Fatalf("event time %v", got.Time)
	}
	if e := <-ev2; e.Name != EventStop {
		t.Fatalf("second subscriber first event %q", e.Name)
	}
	cancel1()
	cancel1() // idempotent
	if _, ok := <-ev1; ok {
		t.Fatal("cancelled subscription still open")
	}

	// The connection ending closes the remaining subscriptions.
	f.conn.Close()
	if _, err := WaitEvent(ctx, ev2, "NEVER"); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait on closed connection: %v", err)
	}
}

func TestContextTimeout(t *testing.T) {
	block := make(chan struct{})
	_, conn := startFake(t, func(cmd string, _ json.RawMessage) (any, *Error) {
		if cmd == "query-status" {
			<-block
		}
		return nil, nil
	})
	defer close(block)
	c, err := New(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.QueryStatus(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
}

func TestSilentPeerGreetingTimeout(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := New(ctx, cli); err == nil {
		t.Fatal("handshake with a silent peer succeeded")
	}
}
