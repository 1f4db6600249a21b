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

// Networks is what a server asked for: "auto", "none", or a list.
type Networks struct {
	Auto     bool             `json:"auto,omitempty"`
	None     bool             `json:"none,omitempty"`
	Requests []NetworkRequest `json:"requests,omitempty"`
}

// VIF is an allocated interface of an instance (a Neutron port).
type VIF struct {
	PortID    string   `json:"port_id"`
	NetworkID string   `json:"network_id"`
	MAC       string   `json:"mac"`
	IPs       []string `json:"ips"`
}

// NetworkAllocator gives instances their network interfaces. The API
// validates requests with it at create time; the conductor allocates
// once a host is chosen and deallocates on delete and on a failed build.
// Allocate and Deallocate must be idempotent (a restarted conductor
// repeats them). The Neutron integration implements it later.
type NetworkAllocator interface {
	Validate(ctx context.Context, projectID string, req Networks) error
	Allocate(ctx context.Context, inst *store.Instance, host string, req Networks) ([]VIF, error)
	Deallocate(ctx context.Context, inst *store.Instance) error
}

// ErrNetworkNotFound is returned by Validate for a network or port it
// does not know; the API answers 400.
type ErrNetworkNotFound struct{ ID string }

func (e *ErrNetworkNotFound) Error() string { return "Network " + e.ID + " could not be found." }

// NoNetwork is the allocator until Neutron is wired: "auto" and "none"
// give a server no interfaces; any specific network or port is unknown.
type NoNetwork struct{}

// Validate implements NetworkAllocator.
func (NoNetwork) Validate(_ context.Context, _ string, req Networks) error {
	for _, r := range req.Requests {
		id := r.UUID
		if id == "" {
			id = r.Port
		}
		return &ErrNetworkNotFound{ID: id}
	}
	return nil
}

// Allocate implements NetworkAllocator.
func (NoNetwork) Allocate(context.Context, *store.Instance, string, Networks) ([]VIF, error) {
	return nil, nil
}

// Deallocate implements NetworkAllocator.
func (NoNetwork) Deallocate(context.Context, *store.Instance) error { return nil }
