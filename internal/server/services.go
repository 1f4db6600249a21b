package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/agent"
	"github.com/kumo-cloud/kumo/internal/compute/api"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/netalloc"
	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/identity"
	"github.com/kumo-cloud/kumo/internal/image"
	"github.com/kumo-cloud/kumo/internal/image/cache"
	"github.com/kumo-cloud/kumo/internal/network"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/qemu"
)

// extraServices builds the API services beside identity.
func extraServices(deps service.Deps, cfg *config.Config, limits identity.LimitReader) ([]service.API, error) {
	img, err := image.New(deps, image.Config{ProjectQuotaBytes: cfg.Image.ProjectQuotaBytes, DirectIO: cfg.Image.DirectIO,
		HashingAlgorithm: cfg.Image.HashingAlgorithm, UseKeystoneLimits: cfg.Image.UseKeystoneLimits, Limits: limits,
		LimitsRegion: cfg.Region, ImportMethods: cfg.Image.ImportMethods,
		ImportFilter: image.ImportFilter(cfg.Image.ImportFilteringOpts)})
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
	var nova *compute.Service
	vol, err := newVolume(deps, cfg, img, func(ctx context.Context, uuid string) (bool, error) {
		return nova.InstanceExists(ctx, uuid)
	})
	if err != nil {
		return nil, err
	}
	driver := ComputeDriver(cfg.Compute.Driver, deps.Log)
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
	vifWait := cfg.Compute.VIFPluggingTimeout.Duration
	if vifWait <= 0 {
		vifWait = -1
	}
	nova, err = compute.New(deps, compute.Config{
		Volumes: novaVolumes{vol},
		Network: netalloc.New(neutron),
		ConductorConfig: conductor.Config{VIFPluggingTimeout: vifWait, Images: conductorImages{img}, Volumes: conductorVolumes{vol},
			VIFPluggingNotFatal: !cfg.Compute.VIFPluggingIsFatal},
		Conductor:        true,
		Driver:           driver,
		ForceConfigDrive: cfg.Compute.ForceConfigDrive,
		MigrationAddress: cfg.Compute.MigrationAddress,
		Hosts:            cfg.Compute.Hosts,
		ReclaimInterval:  cfg.Compute.ReclaimInstanceInterval.Duration,
		Images:           novaImages{img},
		ImageCache:       imgCache,
		Placement:        pl,
		Networking:       networkingHandler(neutron),
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
	// Port status changes reach Compute as external events.
	neutron.SetComputeNotifier(netalloc.Notifier(nova))
	apis := []service.API{img, nova, neutron, pl, vol}
	if ag, err := inProcessNetworkAgent(deps, cfg, driver); err != nil {
		return nil, fmt.Errorf("network agent: %w", err)
	} else if ag != nil {
		apis = append(apis, ag)
	}
	return apis, nil
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
	out := novaImage(img)
	if img.DiskFormat != nil {
		out.DiskFormat = *img.DiskFormat
	}
	if img.ContainerFormat != nil {
		out.ContainerFormat = *img.ContainerFormat
	}
	return out, nil
}

// CreateImage implements api.ImageCreator: a queued, private image of the
// caller's project that a compute host uploads a snapshot into.
func (n novaImages) CreateImage(ctx context.Context, s api.SnapshotImage) (string, error) {
	body := map[string]any{"name": s.Name, "disk_format": s.DiskFormat, "container_format": s.ContainerFormat,
		"min_disk": float64(s.MinDisk), "min_ram": float64(s.MinRAM), "visibility": "private"}
	for k, v := range s.Properties {
		if _, std := body[k]; !std {
			body[k] = v
		}
	}
	img, err := n.s.Create(ctx, body)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// conductorImages lets the conductor delete snapshot images as the
// compute service.
type conductorImages struct{ s *image.Service }

func (c conductorImages) DeleteImage(ctx context.Context, id string) error {
	err := c.s.Delete(localImages(c).ctx(ctx), id)
	if err != nil && apiutil.AsError(err).Status == 404 {
		return nil
	}
	return err
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
	m := cache.Meta{ID: id, Properties: img.Properties}
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

// Upload implements cache.Uploader: snapshots from the in-process agents.
func (l localImages) Upload(ctx context.Context, id string, r io.Reader) error {
	return l.s.Upload(l.ctx(ctx), id, r, -1)
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

// UploadImage implements api.ImageUploader (the empty data of a
// volume-backed server's snapshot image).
func (n novaImages) UploadImage(ctx context.Context, id string, r io.Reader, size int64) error {
	return n.s.Upload(ctx, id, r, size)
}

// networkingHandler is the networking API as an http.Handler, for the
// compute API's security group calls made as the caller.
func networkingHandler(n *network.Service) http.Handler {
	mux := http.NewServeMux()
	n.Routes().Register(mux)
	return mux
}
