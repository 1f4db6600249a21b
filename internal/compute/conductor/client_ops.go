package conductor

import (
	"context"
	"errors"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
)

// InstanceOp runs one synchronous agent operation for the API (changing
// the admin password, injecting an NMI); agent errors come back as
// *bus.Error with the rpc codes, an absent agent as ErrHostUnavailable.
func (c *Client) InstanceOp(ctx context.Context, host string, req rpc.OpRequest) (rpc.OpReply, error) {
	var reply rpc.OpReply
	err := c.Bus.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion, req, &reply)
	if errors.Is(err, bus.ErrNoResponders) {
		return reply, ErrHostUnavailable
	}
	return reply, err
}
