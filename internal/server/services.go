package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/agent"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/image"
	"github.com/kumo-cloud/kumo/internal/image/cache"
	"github.com/kumo-cloud/kumo/internal/network"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/qemu"
)

// extraServices builds the API services beside identity.
func extraServices(deps service.Deps, cfg *config.Config) ([]service.API, error) {
	img, err := image.New(deps, image.Config{ProjectQuotaBytes: cfg.Image.ProjectQuotaBytes})
	if err != nil {
		return nil, fmt.Errorf("image service: %w", err)
	}
	imgCache, err := cache.New(filepath.Join(cfg.DataDir, "image-cache"), localImages{img}, deps.Log.With("component", "image-cache"))
	if err != nil {
		return nil, err
	}
	pl, err := placement.New(deps, placement.Config{})
	if err != nil {
		return nil, fmt.Errorf("placement service: %w", err)
	}
	if cfg.Compute.Driver == "fake" {
		deps.Log.Warn("compute driver is fake: servers are simulated, no real VMs run (use --compute-driver qemu)")
	}
	nova, err := compute.New(deps, compute.Config{
		Conductor:  true,
		Driver:     cfg.Compute.Driver,
		Hosts:      cfg.Compute.Hosts,
		Images:     novaImages{img},
		ImageCache: imgCache,
		Placement:  pl,
		AgentResources: agent.ResourceConfig{CPUAllocationRatio: cfg.Compute.CPUAllocationRatio,
			RAMAllocationRatio: cfg.Compute.RAMAllocationRatio, DiskAllocationRatio: cfg.Compute.DiskAllocationRatio,
			ReservedHostCPUs: cfg.Compute.ReservedHostCPUs, ReservedHostMemoryMB: cfg.Compute.ReservedHostMemoryMB,
			ReservedHostDiskGB: cfg.Compute.ReservedHostDiskGB},
		Drivers: map[string]func(host string) (virt.Driver, error){
			"qemu": func(host string) (virt.Driver, error) {
				return qemu.New(qemu.Config{
					StateDir: filepath.Join(cfg.DataDir, "qemu", host), Accel: cfg.Compute.QEMUAccel,
					Logger: deps.Log.With("component", "qemu", "host", host),
				})
			},
		},
	})
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
	return []service.API{img, nova, neutron, pl}, nil
}

// novaImages lets the compute API check imageRef as the caller sees it.
type novaImages struct{ s *image.Service }

func (n novaImages) GetImage(ctx context.Context, id string) (*api.Image, error) {
	img, err := n.s.Get(ctx, id)
	if err != nil {
		if apiutil.AsError(err).Status == 404 {
			return nil, api.ErrImageNotFound
		}
		return nil, err
	}
	out := &api.Image{ID: img.ID, Status: img.Status, MinDisk: img.MinDisk, MinRAM: img.MinRAM, Properties: img.Properties}
	if img.Name != nil {
		out.Name = *img.Name
	}
	if img.Size != nil {
		out.Size = *img.Size
	}
	return out, nil
}

// localImages is the image cache's fetcher inside the all-in-one process:
// it reads the image service directly, as the compute service's own
// identity (remote agents use cache.HTTPFetcher).
type localImages struct{ s *image.Service }

func (l localImages) ctx(ctx context.Context) context.Context {
	return auth.With(ctx, &auth.Context{UserID: "kumo-compute", UserName: "kumo-compute",
		Roles: []auth.Role{{Name: "admin"}, {Name: "member"}, {Name: "reader"}, {Name: "service"}}})
}

func (l localImages) Meta(ctx context.Context, id string) (cache.Meta, error) {
	img, err := l.s.Get(l.ctx(ctx), id)
	if err != nil {
		return cache.Meta{}, err
	}
	if img.Status != image.StatusActive {
		return cache.Meta{}, fmt.Errorf("image %s is %s, not active", id, img.Status)
	}
	m := cache.Meta{ID: id}
	if img.Size != nil {
		m.Size = *img.Size
	}
	if img.HashAlgo != nil {
		m.HashAlgo = *img.HashAlgo
	}
	if img.HashValue != nil {
		m.HashValue = *img.HashValue
	}
	if img.DiskFormat != nil {
		m.DiskFormat = *img.DiskFormat
	}
	return m, nil
}

func (l localImages) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	d, err := l.s.Download(l.ctx(ctx), id, "", true)
	if err != nil {
		return nil, err
	}
	if d.File == nil {
		return nil, fmt.Errorf("image %s has no data", id)
	}
	return d.File, nil
}
