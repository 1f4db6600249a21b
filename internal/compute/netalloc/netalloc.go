// Package netalloc is Compute's side of the networking service: it
// implements conductor.NetworkAllocator on the Neutron control plane
// (internal/network), in process, the way Nova's network API drives
// Neutron. It turns a server's "networks" request into port requests,
// validates them as the user at create time, allocates and binds ports
// once the host is known, renders ports as Nova interfaces (addresses,
// os-interface) and releases them when the server goes. It also carries
// Neutron's events back to Compute (Notifier).
//
// It is a package of its own so that neither side imports the other:
// internal/network knows nothing of Nova, internal/compute nothing of
// Neutron's tables; internal/server wires the two together.
package netalloc

import (
	"context"
	"errors"
	"net/netip"

	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/network"
)

// Neutron is what the adapter needs of the networking service
// (*network.Service implements it).
type Neutron interface {
	GetNetwork(ctx context.Context, id string) (*network.NetInfo, error)
	GetPort(ctx context.Context, id string) (*network.ServerPort, error)
	AvailableNetworks(ctx context.Context, project string) ([]*network.NetInfo, error)
	AutoAllocatedNetwork(ctx context.Context, project string, dryRun bool) (string, error)
	FixedIPUser(ctx context.Context, networkID string, ip netip.Addr) (string, bool, error)
	ServerPorts(ctx context.Context, uuids []string) (map[string][]*network.ServerPort, error)
	AllocateServerPorts(ctx context.Context, b network.ServerBinding, reqs []network.ServerPortRequest, add bool) ([]*network.ServerPort, error)
	RebindServerPorts(ctx context.Context, uuid, host, zone string) error
	ReleaseServerPorts(ctx context.Context, uuid, portID string) error
}

// Allocator implements conductor.NetworkAllocator.
type Allocator struct {
	n Neutron
	// Zone is the availability zone in device_owner ("compute:<zone>")
	// for servers that did not ask for one (default "nova").
	Zone string
}

// New returns an allocator on n.
func New(n Neutron) *Allocator { return &Allocator{n: n, Zone: "nova"} }

var _ conductor.NetworkAllocator = (*Allocator)(nil)

func (a *Allocator) zone(inst *store.Instance) string {
	if inst.AvailabilityZone != nil && *inst.AvailabilityZone != "" {
		return *inst.AvailabilityZone
	}
	return a.Zone
}

func (a *Allocator) binding(inst *store.Instance, host string) network.ServerBinding {
	return network.ServerBinding{ServerUUID: inst.UUID, ProjectID: inst.ProjectID, Host: host, Zone: a.zone(inst),
		Hostname: inst.Hostname}
}

// Validate implements conductor.NetworkAllocator with Nova's checks:
// networks and ports must exist for the caller, a port must be free and
// have an address, a fixed IP must be valid and free, a port or fixed IP
// cannot serve more than one server, and "auto" (or nothing) must find
// exactly one network or be able to allocate one.
func (a *Allocator) Validate(ctx context.Context, project string, req conductor.Networks, count int) error {
	if req.None {
		return nil
	}
	if len(req.Requests) == 0 {
		nets, err := a.n.AvailableNetworks(ctx, project)
		if err != nil {
			return err
		}
		switch {
		case len(nets) > 1:
			return &conductor.ErrNetworkInvalid{Msg: "Multiple possible networks found, use a Network ID to be more specific.", Status: 409}
		case len(nets) == 0 && req.Auto:
			if _, err := a.n.AutoAllocatedNetwork(ctx, project, true); err != nil {
				return &conductor.ErrNetworkInvalid{Msg: "Unable to automatically allocate a network for project " + project}
			}
		}
		return nil
	}
	seenPorts := map[string]bool{}
	for _, r := range req.Requests {
		if r.Port != "" {
			if count > 1 {
				return &conductor.ErrNetworkInvalid{Msg: "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports."}
			}
			if seenPorts[r.Port] {
				return &conductor.ErrNetworkInvalid{Msg: "Port id " + r.Port + " is duplicated in the request.", Status: 409}
			}
			seenPorts[r.Port] = true
			p, err := a.n.GetPort(ctx, r.Port)
			if errors.Is(err, network.ErrPortNotFound) {
				return &conductor.ErrPortNotFound{ID: r.Port}
			}
			if err != nil {
				return err
			}
			if p.DeviceID != "" {
				return &conductor.ErrPortInUse{ID: r.Port}
			}
			if len(p.FixedIPs) == 0 {
				return &conductor.ErrNetworkInvalid{Msg: "Port " + r.Port + " requires a FixedIP in order to be used."}
			}
			continue
		}
		n, err := a.n.GetNetwork(ctx, r.UUID)
		if errors.Is(err, network.ErrNetworkNotFound) {
			return &conductor.ErrNetworkNotFound{ID: r.UUID}
		}
		if err != nil {
			return err
		}
		if r.FixedIP == "" {
			continue
		}
		if count > 1 {
			return &conductor.ErrNetworkInvalid{Msg: "Unable to launch multiple instances with a single configured fixed IP. Please launch your instance one by one with different fixed IPs."}
		}
		ip, err := netip.ParseAddr(r.FixedIP)
		if err != nil || !inSubnets(n, ip) {
			return &conductor.ErrNetworkInvalid{Msg: "Invalid fixed IP address (" + r.FixedIP + ")"}
		}
		if dev, used, err := a.n.FixedIPUser(ctx, n.ID, ip); err != nil {
			return err
		} else if used {
			return &conductor.ErrNetworkInvalid{Msg: "Fixed IP address " + ip.String() + " is already in use on instance " + dev + "."}
		}
	}
	return nil
}

func inSubnets(n *network.NetInfo, ip netip.Addr) bool {
	for _, s := range n.Subnets {
		if s.CIDR.Contains(ip) {
			return true
		}
	}
	return false
}

// portRequests turns a server's request into port requests; "auto" and
// nothing resolve to the one available network (or the auto-allocated
// one).
func (a *Allocator) portRequests(ctx context.Context, project string, req conductor.Networks) ([]network.ServerPortRequest, error) {
	if req.None {
		return nil, nil
	}
	if len(req.Requests) == 0 {
		nets, err := a.n.AvailableNetworks(ctx, project)
		if err != nil {
			return nil, err
		}
		switch {
		case len(nets) == 1:
			return []network.ServerPortRequest{{NetworkID: nets[0].ID}}, nil
		case len(nets) > 1:
			return nil, &conductor.ErrNetworkInvalid{Msg: "Multiple possible networks found, use a Network ID to be more specific.", Status: 409}
		case req.Auto:
			id, err := a.n.AutoAllocatedNetwork(ctx, project, false)
			if err != nil {
				return nil, &conductor.ErrNetworkInvalid{Msg: "Unable to automatically allocate a network for project " + project + ": " + err.Error()}
			}
			return []network.ServerPortRequest{{NetworkID: id}}, nil
		}
		return nil, nil
	}
	out := make([]network.ServerPortRequest, 0, len(req.Requests))
	for _, r := range req.Requests {
		pr := network.ServerPortRequest{NetworkID: r.UUID, PortID: r.Port, Tag: r.Tag}
		if r.FixedIP != "" {
			ip, err := netip.ParseAddr(r.FixedIP)
			if err != nil {
				return nil, &conductor.ErrNetworkInvalid{Msg: "Invalid fixed IP address (" + r.FixedIP + ")"}
			}
			pr.FixedIP = ip
		}
		out = append(out, pr)
	}
	return out, nil
}

// Allocate implements conductor.NetworkAllocator.
func (a *Allocator) Allocate(ctx context.Context, inst *store.Instance, host string, req conductor.Networks) ([]conductor.VIF, error) {
	if req.None {
		// "networks": "none": the new server has no port to create or
		// bind (interfaces are attached only once it is built).
		return nil, nil
	}
	reqs, err := a.portRequests(ctx, inst.ProjectID, req)
	if err != nil {
		return nil, err
	}
	ports, err := a.n.AllocateServerPorts(ctx, a.binding(inst, host), reqs, false)
	if err != nil {
		return nil, mapError(err)
	}
	return vifs(ports), nil
}

// Rebind implements conductor.NetworkAllocator.
func (a *Allocator) Rebind(ctx context.Context, inst *store.Instance, host string) error {
	return a.n.RebindServerPorts(ctx, inst.UUID, host, a.zone(inst))
}

// Deallocate implements conductor.NetworkAllocator.
func (a *Allocator) Deallocate(ctx context.Context, inst *store.Instance) error {
	return a.n.ReleaseServerPorts(ctx, inst.UUID, "")
}

// Plugged implements conductor.NetworkAllocator.
func (a *Allocator) Plugged(ctx context.Context, inst *store.Instance) (bool, error) {
	ports, err := a.n.ServerPorts(ctx, []string{inst.UUID})
	if err != nil {
		return false, err
	}
	for _, p := range ports[inst.UUID] {
		if p.Status != "ACTIVE" {
			return false, nil
		}
	}
	return true, nil
}

// Interfaces implements conductor.NetworkAllocator.
func (a *Allocator) Interfaces(ctx context.Context, uuids []string) (map[string][]conductor.VIF, error) {
	ports, err := a.n.ServerPorts(ctx, uuids)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]conductor.VIF, len(ports))
	for id, ps := range ports {
		out[id] = vifs(ps)
	}
	return out, nil
}

// Attach implements conductor.NetworkAllocator: the port is checked as
// the caller of ctx, then claimed (or created) and bound to the
// server's host.
func (a *Allocator) Attach(ctx context.Context, inst *store.Instance, req conductor.NetworkRequest) (conductor.VIF, error) {
	nets := conductor.Networks{Requests: []conductor.NetworkRequest{req}}
	if req.UUID == "" && req.Port == "" {
		// Neither network nor port: the project's one available network.
		nets = conductor.Networks{}
	}
	if err := a.Validate(ctx, inst.ProjectID, nets, 1); err != nil {
		return conductor.VIF{}, err
	}
	reqs, err := a.portRequests(ctx, inst.ProjectID, nets)
	if err != nil {
		return conductor.VIF{}, err
	}
	if len(reqs) == 0 {
		return conductor.VIF{}, &conductor.ErrNetworkInvalid{Msg: "No network is available to attach an interface to."}
	}
	if req.Tag != "" {
		reqs[0].Tag = req.Tag
	}
	ports, err := a.n.AllocateServerPorts(context.WithoutCancel(ctx), a.binding(inst, inst.HostName()), reqs, true)
	if err != nil {
		return conductor.VIF{}, mapError(err)
	}
	if len(ports) == 0 {
		return conductor.VIF{}, errors.New("no port allocated")
	}
	return vifs(ports)[0], nil
}

// Detach implements conductor.NetworkAllocator.
func (a *Allocator) Detach(ctx context.Context, inst *store.Instance, portID string) error {
	err := a.n.ReleaseServerPorts(ctx, inst.UUID, portID)
	if errors.Is(err, network.ErrPortNotFound) {
		return &conductor.ErrPortNotFound{ID: portID}
	}
	return err
}

func mapError(err error) error {
	switch {
	case errors.Is(err, network.ErrPortNotFound):
		return &conductor.ErrNetworkInvalid{Msg: err.Error(), Status: 404}
	case errors.Is(err, network.ErrPortInUse):
		return &conductor.ErrNetworkInvalid{Msg: err.Error(), Status: 409}
	case errors.Is(err, network.ErrNetworkNotFound):
		return &conductor.ErrNetworkInvalid{Msg: err.Error(), Status: 404}
	case errors.Is(err, network.ErrFixedIPInUse):
		return &conductor.ErrNetworkInvalid{Msg: err.Error()}
	}
	return err
}

// vifs renders ports as Compute's interfaces: fixed addresses, then the
// floating IPs associated with them.
func vifs(ports []*network.ServerPort) []conductor.VIF {
	out := make([]conductor.VIF, 0, len(ports))
	for _, p := range ports {
		v := conductor.VIF{PortID: p.ID, NetworkID: p.NetworkID, NetworkLabel: p.NetworkName, MAC: p.MAC,
			Status: p.Status, Tag: p.Tag, IPs: []string{}}
		for _, f := range p.FixedIPs {
			v.IPs = append(v.IPs, f.Address)
			v.Addresses = append(v.Addresses, conductor.Address{Addr: f.Address, Version: f.Version, Type: "fixed", SubnetID: f.SubnetID})
		}
		for _, f := range p.FloatingIPs {
			ver := 4
			if ip, err := netip.ParseAddr(f.Address); err == nil && ip.Is6() {
				ver = 6
			}
			v.Addresses = append(v.Addresses, conductor.Address{Addr: f.Address, Version: ver, Type: "floating"})
		}
		out = append(out, v)
	}
	return out
}

// EventSink receives server events (*compute.Service implements it).
type EventSink interface {
	ExternalEvents(ctx context.Context, events []api.ExternalEvent) ([]api.ExternalEvent, int)
}

// Notifier carries the networking service's events to Compute, as
// Neutron's Nova notifier posts them to os-server-external-events.
func Notifier(sink EventSink) network.ComputeNotifier {
	return func(ctx context.Context, events []network.ServerEvent) {
		out := make([]api.ExternalEvent, len(events))
		for i, e := range events {
			out[i] = api.ExternalEvent{Name: e.Name, ServerUUID: e.ServerUUID, Tag: e.Tag, Status: e.Status}
		}
		sink.ExternalEvents(ctx, out)
	}
}
