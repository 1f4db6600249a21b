// Package service defines how an API service plugs into the kumo process:
// what it is given (Deps) and what it gives back (its migrations, default
// policy rules, routes and catalog entry). cmd/kumo wires them together.
package service

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Deps is what the process hands every service.
type Deps struct {
	DB        *db.DB
	Bus       *bus.Bus // may be nil in unit tests
	Policy    *policy.Enforcer
	Auth      auth.Validator
	Log       *slog.Logger
	Metrics   prometheus.Registerer
	DataDir   string
	PublicURL string // root URL of this process as clients reach it, no trailing slash
}

// CatalogEntry is what a service publishes in the Keystone catalog.
type CatalogEntry struct {
	Type string // "compute"
	Name string // "nova"
	Path string // appended to the public URL: "/compute/v2.1"
}

// API is a service ready to serve.
type API interface {
	// Routes returns the service's route table, mounted on the shared mux.
	Routes() *apiutil.Service
	// Catalog returns the catalog entries of the service.
	Catalog() []CatalogEntry
	// Run starts background work (periodic tasks, bus subscribers) and
	// returns when ctx is done.
	Run(ctx context.Context) error
}
