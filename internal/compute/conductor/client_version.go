package conductor

import (
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
)

// OpVersion is the version of compute.instance.op this client sends: the
// version this code speaks, lowered by a cap set for a rolling upgrade.
// Callers of ops added in a later version check it first.
func (c *Client) OpVersion() bus.Version {
	if c.Bus == nil {
		return rpc.OpVersion
	}
	return c.Bus.VersionFor(rpc.MsgOp, rpc.OpVersion)
}
