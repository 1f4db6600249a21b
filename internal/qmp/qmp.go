// Package qmp is a small typed client for the QEMU Machine Protocol: one
// connection (usually a unix socket per guest), capabilities negotiation,
// commands matched to replies by id so callers may share a client, and an
// event stream any number of subscribers can follow.
//
// Only the commands Kumo uses have typed wrappers (commands.go); Execute
// runs any other.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned for commands on a closed or broken connection.
var ErrClosed = errors.New("qmp: connection closed")

// Error is an error reply from QEMU.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// Event is an asynchronous QMP event such as SHUTDOWN or STOP.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data,omitempty"`
	Time time.Time       `json:"-"`
}

// Version is QEMU's version from the greeting.
type Version struct {
	Major, Minor, Micro int
	Package             string
}

// message is anything QEMU sends: a greeting, a reply or an event.
type message struct {
	Greeting *struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
	} `json:"QMP,omitempty"`
	ID        *uint64         `json:"id,omitempty"`
	Return    json.RawMessage `json:"return,omitempty"`
	Error     *Error          `json:"error,omitempty"`
	Event     string          `json:"event,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp,omitempty"`
}

type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        uint64 `json:"id"`
}

type reply struct {
	ret json.RawMessage
	err *Error
}

// Client is one QMP connection. It is safe for concurrent use.
type Client struct {
	conn    net.Conn
	version Version

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan reply
	subs    map[chan Event]struct{}
	err     error // set once the reader stops

	done chan struct{}
}

// Dial connects to a QMP unix socket and negotiates capabilities.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial %s: %w", path, err)
	}
	c, err := New(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// New runs the QMP handshake on conn: read the greeting, enter command mode.
// The client owns conn from here on.
func New(ctx context.Context, conn net.Conn) (*Client, error) {
	c := &Client{conn: conn, pending: map[uint64]chan reply{}, subs: map[chan Event]struct{}{}, done: make(chan struct{})}
	r := bufio.NewReader(conn)
	dec := json.NewDecoder(r)

	// The greeting is read before the reader goroutine starts; a deadline
	// from ctx keeps a silent peer from blocking us forever.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	var greet message
	err := dec.Decode(&greet)
	stop()
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("qmp: read greeting: %w", err)
	}
	if greet.Greeting == nil {
		return nil, fmt.Errorf("qmp: peer did not greet")
	}
	v := greet.Greeting.Version
	c.version = Version{Major: v.QEMU.Major, Minor: v.QEMU.Minor, Micro: v.QEMU.Micro, Package: v.Package}

	go c.read(dec)
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("qmp: negotiate capabilities: %w", err)
	}
	return c, nil
}

// Version is the peer's QEMU version.
func (c *Client) Version() Version { return c.version }

// Done is closed when the connection ends (QEMU exited or Close).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Subscribe returns a channel of events from now on and a function that
// ends the subscription. A subscriber that falls more than buf events
// behind loses the newest ones rather than stalling the connection. The
// channel is closed when the connection ends.
func (c *Client) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			if _, ok := c.subs[ch]; ok {
				delete(c.subs, ch)
				close(ch)
			}
			c.mu.Unlock()
		})
	}
}

// WaitEvent waits for the first event whose name is one of names on a
// subscription made before the action that causes it.
func WaitEvent(ctx context.Context, events <-chan Event, names ...string) (Event, error) {
	for {
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case ev, ok := <-events:
			if !ok {
				return Event{}, ErrClosed
			}
			for _, n := range names {
				if ev.Name == n {
					return ev, nil
				}
			}
		}
	}
}

func (c *Client) read(dec *json.Decoder) {
	var err error
	for {
		var m message
		if err = dec.Decode(&m); err != nil {
			break
		}
		switch {
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data, Time: time.Now()}
			if m.Timestamp != nil {
				ev.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			c.mu.Lock()
			for ch := range c.subs {
				select {
				case ch <- ev:
				default:
				}
			}
			c.mu.Unlock()
		case m.ID != nil:
			c.mu.Lock()
			ch := c.pending[*m.ID]
			delete(c.pending, *m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- reply{ret: m.Return, err: m.Error}
			}
		}
	}
	c.conn.Close()
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %v", ErrClosed, err)
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	for ch := range c.subs {
		close(ch)
		delete(c.subs, ch)
	}
	c.mu.Unlock()
	close(c.done)
}

// Execute runs a command with optional arguments and decodes its return
// value into result (unless nil). QEMU's error replies come back as *Error.
func (c *Client) Execute(ctx context.Context, cmd string, args, result any) error {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", cmd, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	b, err := json.Marshal(request{Execute: cmd, Arguments: args, ID: id})
	if err != nil {
		forget()
		return fmt.Errorf("qmp: %s: encode: %w", cmd, err)
	}
	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetWriteDeadline(dl)
	}
	_, err = c.conn.Write(append(b, '\n'))
	_ = c.conn.SetWriteDeadline(time.Time{})
	c.wmu.Unlock()
	if err != nil {
		forget()
		return fmt.Errorf("qmp: %s: %w", cmd, err)
	}

	select {
	case <-ctx.Done():
		forget()
		return fmt.Errorf("qmp: %s: %w", cmd, ctx.Err())
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("qmp: %s: %w", cmd, ErrClosed)
		}
		if r.err != nil {
			return r.err
		}
		if result != nil && len(r.ret) > 0 {
			if err := json.Unmarshal(r.ret, result); err != nil {
				return fmt.Errorf("qmp: %s: decode reply: %w", cmd, err)
			}
		}
		return nil
	}
}
