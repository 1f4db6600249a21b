package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/compute/agent"
	"github.com/kumo-cloud/kumo/internal/image/cache"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/qemu"
)

// AgentConfig configures `kumo agent compute` on a host of its own.
type AgentConfig struct {
	NATSURL string // the control plane's NATS (required)
	Host    string // host name to register; default the machine's
	HostIP  string
	// MigrationAddress is where this host receives live migrations
	// (default HostIP, else 127.0.0.1).
	MigrationAddress string
	Driver           string // fake or qemu
	QEMUAccel        string
	DataDir          string // instance state and image cache
	// ImageURL is the image endpoint (http://controller:5000/image); with
	// it, images are fetched as the OS_* credentials in the environment.
	ImageURL string
	// Resources tunes the resource tracker (allocation ratios, reserved).
	Resources agent.ResourceConfig
}

// RunComputeAgent runs a compute agent that reaches the control plane only
// through the bus (and the image API for image data), until ctx ends.
func RunComputeAgent(ctx context.Context, cfg AgentConfig, log *slog.Logger) error {
	if cfg.NATSURL == "" {
		return errors.New("agent: --nats-url is required (the control plane's NATS)")
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		cfg.Host = h
	}
	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, Name: "kumo-agent@" + cfg.Host}, log)
	if err != nil {
		return fmt.Errorf("agent: bus: %w", err)
	}
	defer b.Close()
	var images agent.Images
	if cfg.ImageURL != "" {
		tok, err := tokenSource(ctx)
		if err != nil {
			return fmt.Errorf("agent: credentials for the image service: %w", err)
		}
		c, err := cache.New(filepath.Join(cfg.DataDir, "image-cache"), &cache.HTTPFetcher{BaseURL: cfg.ImageURL, Token: tok}, log.With("component", "image-cache"))
		if err != nil {
			return err
		}
		images = c
	} else if cfg.Driver != "fake" {
		return errors.New("agent: --image-url is needed to fetch images for a real hypervisor")
	}
	d, err := compute.NewDriver(cfg.Driver, cfg.Host, map[string]func(string) (virt.Driver, error){
		"qemu": func(host string) (virt.Driver, error) {
			return qemu.New(qemu.Config{StateDir: filepath.Join(cfg.DataDir, "qemu"), Accel: cfg.QEMUAccel, Logger: log.With("component", "qemu")})
		},
	})
	if err != nil {
		return err
	}
	a, err := compute.NewAgent(b, d, images, agent.Config{Host: cfg.Host, HostIP: cfg.HostIP, MigrationAddress: cfg.MigrationAddress, Resources: cfg.Resources}, log.With("component", "agent")) // the agent adds its host
	if err != nil {
		return err
	}
	log.Info("compute agent running", "host", cfg.Host, "driver", d.Name(), "nats", cfg.NATSURL)
	return a.Run(ctx)
}

// tokenSource authenticates with the OS_* environment (password or
// application credential) and renews the token well before it expires.
func tokenSource(ctx context.Context) (func(context.Context) (string, error), error) {
	opts, err := openstack.AuthOptionsFromEnv()
	if err != nil {
		return nil, err
	}
	opts.AllowReauth = true
	var (
		mu  sync.Mutex
		p   *gophercloud.ProviderClient
		got time.Time
	)
	get := func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if p == nil || time.Since(got) > 30*time.Minute {
			np, err := openstack.AuthenticatedClient(ctx, opts)
			if err != nil {
				return "", err
			}
			p, got = np, time.Now()
		}
		return p.Token(), nil
	}
	if _, err := get(ctx); err != nil {
		return nil, err
	}
	return get, nil
}
