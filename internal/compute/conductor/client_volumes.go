package conductor

import (
	"context"
	"errors"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
)

// AttachVolume asks the agent of host to plug a volume into an instance.
func (c *Client) AttachVolume(ctx context.Context, host, uuid string, v rpc.Volume) error {
	return c.volumeOp(ctx, host, uuid, rpc.OpAttachVolume, v)
}

// DetachVolume asks the agent of host to unplug a volume.
func (c *Client) DetachVolume(ctx context.Context, host, uuid string, v rpc.Volume) error {
	return c.volumeOp(ctx, host, uuid, rpc.OpDetachVolume, v)
}

func (c *Client) volumeOp(ctx context.Context, host, uuid, op string, v rpc.Volume) error {
	err := c.Bus.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion,
		rpc.OpRequest{Op: op, Instance: rpc.Instance{UUID: uuid}, Volume: &v}, nil)
	if errors.Is(err, bus.ErrNoResponders) {
		return ErrHostUnavailable
	}
	return err
}
