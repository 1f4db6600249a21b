package server

import (
	"fmt"

	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/image"
	"github.com/kumo-cloud/kumo/internal/network"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/service"
)

// extraServices builds the API services beside identity.
func extraServices(deps service.Deps, cfg *config.Config) ([]service.API, error) {
	img, err := image.New(deps, image.Config{ProjectQuotaBytes: cfg.Image.ProjectQuotaBytes})
	if err != nil {
		return nil, fmt.Errorf("image service: %w", err)
	}
	nova, err := compute.New(deps, compute.Config{})
	if err != nil {
		return nil, fmt.Errorf("compute service: %w", err)
	}
	n := cfg.Network
	neutron, err := network.New(deps, network.Config{
		TenantNetworkTypes: n.TenantNetworkTypes, NetworkVLANRanges: n.NetworkVLANRanges, VNIRanges: n.VNIRanges,
		FlatNetworks: n.FlatNetworks, MechanismDrivers: n.MechanismDrivers, BaseMAC: n.BaseMAC,
		GlobalPhysnetMTU: n.GlobalPhysnetMTU, DNSDomain: n.DNSDomain, AvailabilityZone: n.AvailabilityZone,
		Quotas: n.Quotas, MaxLimit: n.MaxLimit,
	})
	if err != nil {
		return nil, fmt.Errorf("network service: %w", err)
	}
	pl, err := placement.New(deps, placement.Config{})
	if err != nil {
		return nil, fmt.Errorf("placement service: %w", err)
	}
	return []service.API{img, nova, neutron, pl}, nil
}
