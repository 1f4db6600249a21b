package conductor

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/tunnel"
)

// Client is what the API needs from the conductor side, over the bus:
// kicking new tasks and the synchronous agent calls (console output).
type Client struct {
	Bus *bus.Bus
	// Local, when set, is kicked directly (all-in-one saves a bus hop).
	Local *Conductor
}

// Kick tells a conductor that uuid has a new task. A lost kick only
// delays the task until the next scan.
func (c *Client) Kick(ctx context.Context, uuid string) {
	if c.Local != nil {
		c.Local.Kick(uuid)
		return
	}
	if c.Bus != nil {
		_ = c.Bus.Publish(context.WithoutCancel(ctx), rpc.SubjectConductor, rpc.MsgKick, rpc.KickVersion, rpc.Kick{UUID: uuid})
	}
}

// ErrHostUnavailable is returned when the agent of a host does not answer.
var ErrHostUnavailable = errors.New("compute host unavailable")

// ConsoleConnect asks the agent of host where the console of type typ
// (serial, vnc) of an instance can be reached.
func (c *Client) ConsoleConnect(ctx context.Context, host, uuid, typ string) (*rpc.Console, error) {
	var reply rpc.OpReply
	err := c.Bus.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion,
		rpc.OpRequest{Op: rpc.OpConsoleConnect, Instance: rpc.Instance{UUID: uuid}, ConsoleType: typ}, &reply)
	if errors.Is(err, bus.ErrNoResponders) {
		return nil, ErrHostUnavailable
	}
	if err != nil {
		return nil, err
	}
	if reply.Console == nil {
		return nil, errors.New("agent answered without a console")
	}
	return reply.Console, nil
}

// OpenConsole joins the console of type typ of an instance on host to a
// stream over the bus (internal/compute/tunnel), wherever the host is.
// An agent that cannot tunnel (older than compute.instance.op 1.5)
// reports a host-local socket, which is dialled instead.
func (c *Client) OpenConsole(ctx context.Context, host, uuid, typ string) (io.ReadWriteCloser, error) {
	id := tunnel.NewID()
	t, err := tunnel.Dial(c.Bus.Conn(), id)
	if err != nil {
		return nil, err
	}
	var reply rpc.OpReply
	err = c.Bus.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion,
		rpc.OpRequest{Op: rpc.OpConsoleConnect, Instance: rpc.Instance{UUID: uuid}, ConsoleType: typ, Tunnel: id}, &reply)
	switch {
	case errors.Is(err, bus.ErrNoResponders):
		err = ErrHostUnavailable
	case err == nil && reply.Console == nil:
		err = errors.New("agent answered without a console")
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	if reply.Console.Tunnel {
		return t, nil
	}
	t.Close()
	var d net.Dialer
	return d.DialContext(ctx, "unix", reply.Console.Path)
}

// ConsoleOutput reads the last maxBytes of an instance's console.
func (c *Client) ConsoleOutput(ctx context.Context, host, uuid string, maxBytes int) (string, error) {
	var reply rpc.OpReply
	err := c.Bus.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion,
		rpc.OpRequest{Op: rpc.OpConsole, Instance: rpc.Instance{UUID: uuid}, MaxBytes: maxBytes}, &reply)
	if errors.Is(err, bus.ErrNoResponders) {
		return "", ErrHostUnavailable
	}
	return reply.Output, err
}
