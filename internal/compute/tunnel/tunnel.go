// Package tunnel carries a byte stream (an interactive console) between
// the console proxy and a compute agent over the bus, so that consoles of
// guests on other hosts are reachable without the host opening a port:
// agents dial out to NATS, as for everything else.
//
// A tunnel is two NATS subjects named by a random id,
//
//	kumo.compute.tunnel.<id>.up    proxy -> agent
//	kumo.compute.tunnel.<id>.down  agent -> proxy
//
// carrying raw frames (no bus envelope: a console is bytes, and the id is
// agreed through the versioned compute.instance.op console_connect). A
// frame's first byte is its kind: 'd' data (the rest), 'k' keepalive, 'x'
// end. NATS keeps one publisher's messages in order; a side that hears
// nothing for Idle (keepalives every Idle/3) ends the tunnel, so a proxy
// or agent that vanishes does not hold a console forever.
package tunnel

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Idle is how long a tunnel lives without hearing from the other side.
const Idle = 45 * time.Second

// maxFrame bounds one data frame (well under NATS's 1 MiB payload limit).
const maxFrame = 64 << 10

// ErrIdle ends a tunnel whose other side went silent.
var ErrIdle = errors.New("tunnel: the other side went silent")

// NewID returns a fresh tunnel id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func subject(id, dir string) string { return "kumo.compute.tunnel." + id + "." + dir }

// Conn is one side of a tunnel: an io.ReadWriteCloser.
type Conn struct {
	nc  *nats.Conn
	out string
	sub *nats.Subscription
	in  chan []byte

	mu     sync.Mutex
	buf    []byte
	closed bool
	err    error
	done   chan struct{}
	once   sync.Once
}

// Dial opens the proxy's side of tunnel id: it listens before the agent
// is asked to join, so no early byte (a VNC greeting) is lost.
func Dial(nc *nats.Conn, id string) (*Conn, error) {
	return open(nc, subject(id, "down"), subject(id, "up"))
}

// Accept opens the agent's side of tunnel id.
func Accept(nc *nats.Conn, id string) (*Conn, error) {
	return open(nc, subject(id, "up"), subject(id, "down"))
}

func open(nc *nats.Conn, in, out string) (*Conn, error) {
	c := &Conn{nc: nc, out: out, in: make(chan []byte, 256), done: make(chan struct{})}
	sub, err := nc.Subscribe(in, func(m *nats.Msg) {
		select {
		case c.in <- m.Data:
		case <-c.done:
		}
	})
	if err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	c.sub = sub
	go c.keepalive()
	return c, nil
}

func (c *Conn) keepalive() {
	t := time.NewTicker(Idle / 3)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			_ = c.nc.Publish(c.out, []byte{'k'})
		}
	}
}

// Read returns the next bytes the other side wrote; io.EOF once it ended
// the tunnel.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if len(c.buf) > 0 {
			n := copy(p, c.buf)
			c.buf = c.buf[n:]
			c.mu.Unlock()
			return n, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()
		select {
		case f := <-c.in:
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case 'd':
				c.mu.Lock()
				c.buf = append(c.buf, f[1:]...)
				c.mu.Unlock()
			case 'x':
				c.fail(io.EOF)
			}
		case <-time.After(Idle):
			c.fail(ErrIdle)
		case <-c.done:
			c.fail(io.EOF)
		}
	}
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// Write sends p to the other side.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, io.ErrClosedPipe
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxFrame)
		f := make([]byte, 1+k)
		f[0] = 'd'
		copy(f[1:], p[:k])
		if err := c.nc.Publish(c.out, f); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// Close ends the tunnel for both sides.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		_ = c.nc.Publish(c.out, []byte{'x'})
		_ = c.nc.Flush()
		_ = c.sub.Unsubscribe()
		close(c.done)
	})
	return nil
}

// Join copies between a tunnel and a local connection until either ends,
// then closes both.
func Join(t *Conn, local io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(local, t); done <- struct{}{} }()
	go func() { _, _ = io.Copy(t, local); done <- struct{}{} }()
	<-done
	t.Close()
	local.Close()
	<-done
}
