package compute

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// metadataResponder answers the network agents' metadata service: what an
// instance is told about itself (compute.instance.metadata) and the
// password its guest posts (compute.instance.password). Passwords are
// kept in this process's memory only (Nova keeps them in system
// metadata, which Kumo's store does not have yet).
type metadataResponder struct {
	st  *store.Store
	log *slog.Logger

	mu        sync.Mutex
	passwords map[string]string
}

func (m *metadataResponder) run(ctx context.Context, b *bus.Bus) error {
	sub, err := b.Subscribe(rpc.SubjectMetadata, rpc.QueueMetadata, map[string]bus.Version{
		rpc.MsgMetadata: rpc.MetadataVersion, rpc.MsgPassword: rpc.PasswordVersion}, m.handle)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

func (m *metadataResponder) handle(ctx context.Context, msg *bus.Message) (any, error) {
	switch msg.Type {
	case rpc.MsgMetadata:
		var req rpc.MetadataRequest
		if err := msg.Decode(&req); err != nil {
			return nil, err
		}
		i, err := m.st.GetInstance(ctx, nil, req.InstanceID)
		if errors.Is(err, store.ErrNotFound) || err == nil && i.Deleted {
			return nil, bus.NewError(bus.CodeNotFound, "instance %s not found", req.InstanceID)
		}
		if err != nil {
			return nil, err
		}
		md := &rpc.InstanceMetadata{UUID: i.UUID, Name: i.Name, Hostname: i.Hostname, ProjectID: i.ProjectID,
			LaunchIndex: i.LaunchIndex, ReservationID: i.ReservationID, InstanceType: i.Flavor.Name, ImageID: i.ImageRef,
			Meta: i.Metadata, InstanceName: i.InstanceName(), Host: i.HostName()}
		if i.AvailabilityZone != nil {
			md.AvailabilityZone = *i.AvailabilityZone
		}
		md.LocalDevices = localDevices(i.Flavor)
		if i.KeyName != nil && i.KeyData != nil {
			md.KeyName = *i.KeyName
			md.PublicKeys = map[string]string{*i.KeyName: *i.KeyData}
		}
		if i.UserData != nil {
			// The API stores user_data as given: base64 (it checked that).
			ud, err := base64.StdEncoding.DecodeString(*i.UserData)
			if err != nil {
				ud = []byte(*i.UserData)
			}
			md.UserData = ud
		}
		return md, nil
	case rpc.MsgPassword:
		var req rpc.PasswordRequest
		if err := msg.Decode(&req); err != nil {
			return nil, err
		}
		if _, err := m.st.GetInstance(ctx, nil, req.InstanceID); errors.Is(err, store.ErrNotFound) {
			return nil, bus.NewError(bus.CodeNotFound, "instance %s not found", req.InstanceID)
		} else if err != nil {
			return nil, err
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if req.Get {
			return rpc.PasswordReply{Password: m.passwords[req.InstanceID]}, nil
		}
		if m.passwords[req.InstanceID] != "" {
			return nil, bus.NewError(bus.CodeConflict, "password of %s already set", req.InstanceID)
		}
		m.passwords[req.InstanceID] = req.Password
		return rpc.PasswordReply{Password: req.Password}, nil
	}
	return nil, bus.NewError(bus.CodeUnknownType, "unknown message %s", msg.Type)
}

// localDevices names an instance's ephemeral and swap disks as the EC2
// block-device-mapping does (Nova's ephemeralN and swap): they follow the
// root disk in the order the driver presents them, ephemeral disks first.
func localDevices(f store.InstanceFlavor) map[string]string {
	n, swap := f.LocalDisks()
	out := map[string]string{}
	dev := 'b'
	for k := range n {
		out[fmt.Sprintf("ephemeral%d", k)] = "/dev/vd" + string(dev)
		dev++
	}
	if swap {
		out["swap"] = "/dev/vd" + string(dev)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
