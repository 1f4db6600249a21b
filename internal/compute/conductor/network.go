package conductor

import (
	"context"

	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// NetworkRequest is one entry of a server create's "networks".
type NetworkRequest struct {
	UUID    string `json:"uuid,omitempty"`
	Port    string `json:"port,omitempty"`
	FixedIP string `json:"fixed_ip,omitempty"`
	Tag     string `json:"tag,omitempty"`
}

// Networks is what a server asked for: "auto", "none", a list, or
// nothing at all (before microversion 2.37: the one network available,
// none when there is none).
type Networks struct {
	Auto     bool             `json:"auto,omitempty"`
	None     bool             `json:"none,omitempty"`
	Requests []NetworkRequest `json:"requests,omitempty"`
}

// VIF is an interface of an instance (a Neutron port).
type VIF struct {
	PortID       string    `json:"port_id"`
	NetworkID    string    `json:"network_id"`
	NetworkLabel string    `json:"network_label,omitempty"`
	MAC          string    `json:"mac"`
	Status       string    `json:"status,omitempty"` // the port's: ACTIVE once plugged
	Tag          string    `json:"tag,omitempty"`
	Addresses    []Address `json:"addresses,omitempty"`
	// IPs are the fixed addresses (kept for older readers).
	IPs []string `json:"ips"`
}

// Address is one address of a VIF; Type is "fixed" or "floating".
type Address struct {
	Addr     string `json:"addr"`
	Version  int    `json:"version"`
	Type     string `json:"type"`
	SubnetID string `json:"subnet_id,omitempty"`
}

// NetworkAllocator gives instances their network interfaces. The API
// validates requests with it at create time (ctx carries the caller, so
// visibility follows the user's rights); the conductor allocates once a
// host is chosen and deallocates on delete and on a failed build.
// Allocate, Rebind and Deallocate must be idempotent (a restarted
// conductor repeats them).
type NetworkAllocator interface {
	// Validate checks a create request of count servers.
	Validate(ctx context.Context, projectID string, req Networks, count int) error
	// Allocate creates or claims the instance's ports and binds them all
	// to host; once they exist it only rebinds them.
	Allocate(ctx context.Context, inst *store.Instance, host string, req Networks) ([]VIF, error)
	// Rebind moves the instance's ports to host ("" unbinds them).
	Rebind(ctx context.Context, inst *store.Instance, host string) error
	// Deallocate deletes the ports Compute created and unbinds the
	// others.
	Deallocate(ctx context.Context, inst *store.Instance) error
	// Plugged reports whether every interface of the instance is plugged
	// (its port ACTIVE).
	Plugged(ctx context.Context, inst *store.Instance) (bool, error)
	// Interfaces returns the VIFs of instances, by instance UUID.
	Interfaces(ctx context.Context, uuids []string) (map[string][]VIF, error)
	// Attach adds one interface (os-interface); Detach removes one.
	Attach(ctx context.Context, inst *store.Instance, req NetworkRequest) (VIF, error)
	Detach(ctx context.Context, inst *store.Instance, portID string) error
}

// ErrNetworkNotFound is returned for a network it does not know; the
// API answers 400 at create, 404 for os-interface.
type ErrNetworkNotFound struct{ ID string }

func (e *ErrNetworkNotFound) Error() string { return "Network " + e.ID + " could not be found." }

// ErrPortNotFound is a port the caller cannot see.
type ErrPortNotFound struct{ ID string }

func (e *ErrPortNotFound) Error() string { return "Port id " + e.ID + " could not be found." }

// ErrPortInUse is a port already attached to another device (409).
type ErrPortInUse struct{ ID string }

func (e *ErrPortInUse) Error() string { return "Port " + e.ID + " is still in use." }

// ErrNetworkInvalid is any other bad network request (400), with Nova's
// message; Status, when set, overrides 400 (409 for NetworkAmbiguous).
type ErrNetworkInvalid struct {
	Msg    string
	Status int
}

func (e *ErrNetworkInvalid) Error() string { return e.Msg }

// NoNetwork is the allocator without a networking service: "auto" and
// "none" give a server no interfaces; any specific network or port is
// unknown.
type NoNetwork struct{}

// Validate implements NetworkAllocator.
func (NoNetwork) Validate(_ context.Context, _ string, req Networks, _ int) error {
	for _, r := range req.Requests {
		if r.Port != "" {
			return &ErrPortNotFound{ID: r.Port}
		}
		return &ErrNetworkNotFound{ID: r.UUID}
	}
	return nil
}

// Allocate implements NetworkAllocator.
func (NoNetwork) Allocate(context.Context, *store.Instance, string, Networks) ([]VIF, error) {
	return nil, nil
}

// Rebind implements NetworkAllocator.
func (NoNetwork) Rebind(context.Context, *store.Instance, string) error { return nil }

// Deallocate implements NetworkAllocator.
func (NoNetwork) Deallocate(context.Context, *store.Instance) error { return nil }

// Plugged implements NetworkAllocator.
func (NoNetwork) Plugged(context.Context, *store.Instance) (bool, error) { return true, nil }

// Interfaces implements NetworkAllocator.
func (NoNetwork) Interfaces(context.Context, []string) (map[string][]VIF, error) {
	return map[string][]VIF{}, nil
}

// Attach implements NetworkAllocator.
func (NoNetwork) Attach(_ context.Context, _ *store.Instance, req NetworkRequest) (VIF, error) {
	if req.Port != "" {
		return VIF{}, &ErrPortNotFound{ID: req.Port}
	}
	return VIF{}, &ErrNetworkNotFound{ID: req.UUID}
}

// Detach implements NetworkAllocator.
func (NoNetwork) Detach(_ context.Context, _ *store.Instance, portID string) error {
	return &ErrPortNotFound{ID: portID}
}
