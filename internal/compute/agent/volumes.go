package agent

import (
	"context"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// volumeOp plugs or unplugs a volume through the driver's optional
// virt.VolumeDriver interface.
func (a *Agent) volumeOp(ctx context.Context, req *rpc.OpRequest) error {
	if req.Volume == nil || req.Volume.ID == "" {
		return bus.NewError(bus.CodeBadRequest, "no volume in %s", req.Op)
	}
	vd, ok := a.driver.(virt.VolumeDriver)
	if !ok {
		return bus.NewError(rpc.CodeUnsupported, "driver %s cannot attach volumes", a.driver.Name())
	}
	v := req.Volume
	if req.Op == rpc.OpDetachVolume {
		return vd.DetachVolume(ctx, req.Instance.UUID, v.ID)
	}
	return vd.AttachVolume(ctx, req.Instance.UUID, virt.Volume{ID: v.ID, Path: v.Path, Format: v.Format,
		Device: v.Device, ReadOnly: v.ReadOnly, QoS: v.QoS})
}
