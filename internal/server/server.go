// Package server assembles a kumo process from its configuration: the
// database, the bus, the policy engine and every API service, served on one
// HTTP listener.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute"
	"github.com/kumo-cloud/kumo/internal/config"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/identity"
	"github.com/kumo-cloud/kumo/internal/image"
	"github.com/kumo-cloud/kumo/internal/network"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/kumo-cloud/kumo/internal/policy"
	"github.com/kumo-cloud/kumo/internal/service"
	"github.com/kumo-cloud/kumo/internal/volume"
)

// Migrations lists every component's schema, in dependency order.
func Migrations() []db.Set {
	return []db.Set{identity.Migrations(), image.Migrations(), compute.Migrations(), network.Migrations(), placement.Migrations(), volume.Migrations()}
}

// PolicyDefaults collects every service's default rules.
func PolicyDefaults() []policy.Rule {
	var out []policy.Rule
	for _, rules := range [][]policy.Rule{identity.PolicyDefaults(), image.PolicyDefaults(), compute.PolicyDefaults(), network.PolicyDefaults(), placement.PolicyDefaults(), volume.PolicyDefaults()} {
		out = append(out, rules...)
	}
	return out
}

// Server is a running kumo process.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	DB       *db.DB
	Bus      *bus.Bus
	Identity *identity.Service
	apis     []service.API
	registry *prometheus.Registry
	mux      *http.ServeMux
}

// OpenDB opens the configured database.
func OpenDB(ctx context.Context, cfg *config.Config, log *slog.Logger) (*db.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return db.Open(ctx, cfg.Database.DSN, cfg.DataDir, log.With("component", "db"))
}

// New builds the process: opens the database (migrating it when
// auto_sync is on), starts or joins the bus and constructs the services.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, registry: prometheus.NewRegistry(), mux: http.NewServeMux()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var err error
	if s.DB, err = OpenDB(ctx, cfg, log); err != nil {
		return nil, err
	}
	s.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kumo_db_queries_total", Help: "SQL statements run by this process."},
			func() float64 { return float64(s.DB.Queries()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kumo_db_transactions_total", Help: "Database transactions begun by this process."},
			func() float64 { return float64(s.DB.Transactions()) }))
	if cfg.Database.AutoSync {
		if err := s.DB.Migrate(ctx, []db.Phase{db.Expand, db.Contract}, Migrations()...); err != nil {
			s.Close()
			return nil, err
		}
	}
	overrides, err := policy.LoadOverrides(cfg.PolicyFile)
	if err != nil {
		s.Close()
		return nil, err
	}
	enf, err := policy.New(PolicyDefaults(), overrides)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Bus, err = bus.Open(ctx, bus.Config{URL: cfg.NATS.URL, Listen: cfg.NATS.Listen, Name: "kumo"}, log)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("bus: %w", err)
	}
	s.Identity = identity.NewService(identity.NewStore(s.DB), identity.Config{
		TokenTTL:          cfg.Identity.TokenTTL.Duration,
		LockoutAttempts:   cfg.Identity.LockoutAttempts,
		LockoutDuration:   cfg.Identity.LockoutDuration.Duration,
		CredentialKeyFile: cfg.Identity.CredentialKeyFile,
	}, enf, log.With("component", "identity"))
	s.Identity.SetBus(s.Bus)
	if err := s.Identity.Start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	deps := service.Deps{
		DB: s.DB, Bus: s.Bus, Policy: enf, Auth: s.Identity, Log: log, Metrics: s.registry,
		DataDir: cfg.DataDir, PublicURL: cfg.PublicURL,
	}
	s.apis = append(s.apis, identity.NewAPI(s.Identity))
	extra, err := extraServices(deps, cfg, s.Identity)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.apis = append(s.apis, extra...)
	for _, a := range s.apis {
		a.Routes().Register(s.mux)
	}
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	return s, nil
}

// Catalog lists the catalog entries of every service.
func (s *Server) Catalog() []service.CatalogEntry {
	var out []service.CatalogEntry
	for _, a := range s.apis {
		out = append(out, a.Catalog()...)
	}
	return out
}

// Bootstrap runs the identity bootstrap with this process's catalog.
func (s *Server) Bootstrap(ctx context.Context, adminPassword string) (*identity.BootstrapResult, error) {
	return s.Identity.Bootstrap(ctx, identity.BootstrapConfig{
		AdminPassword: adminPassword, Region: s.cfg.Region, PublicURL: s.cfg.PublicURL, Services: s.Catalog(),
	})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := "ok", http.StatusOK
	if _, err := s.Identity.Store().Generation(ctx); err != nil {
		status, code = "database unavailable", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"status": %q}`+"\n", status)
}

// Handler is the whole HTTP API with its middleware.
func (s *Server) Handler() http.Handler {
	return apiutil.Middleware(s.mux, s.cfg.PublicURL, s.log.With("component", "http"), apiutil.NewMetrics(s.registry))
}

// Serve listens and serves until ctx is done, then shuts down gracefully:
// the listener closes, in-flight requests finish (up to the shutdown
// timeout), background work stops.
func (s *Server) Serve(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, a := range s.apis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(bg); err != nil {
				s.log.Error("service stopped", "err", err)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("kumo is serving", "listen", ln.Addr().String(), "public_url", s.cfg.PublicURL, "data_dir", s.cfg.DataDir, "database", s.DB.String())
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.Duration)
		err = hs.Shutdown(sctx)
		cancel()
	}
	stopBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the bus and the database.
func (s *Server) Close() {
	if s.Bus != nil {
		_ = s.Bus.Close()
	}
	if s.DB != nil {
		_ = s.DB.Close()
	}
}

// WriteClientConfig writes DIR/clouds.yaml (cloud "kumo") and
// DIR/admin-openrc for the admin user. Without a password (an existing
// admin, password unknown) existing files are kept as they are.
func WriteClientConfig(dir, authURL, region, password string) error {
	clouds := filepath.Join(dir, "clouds.yaml")
	openrc := filepath.Join(dir, "admin-openrc")
	if password == "" {
		if _, err := os.Stat(clouds); err == nil {
			return nil
		}
	}
	y := fmt.Sprintf(`clouds:
  kumo:
    auth:
      auth_url: %s/v3
      username: admin
      password: %q
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: %s
    interface: public
    identity_api_version: 3
`, authURL, password, region)
	if err := writeFileAtomic(clouds, []byte(y), 0o600); err != nil {
		return err
	}
	rc := fmt.Sprintf(`export OS_AUTH_URL=%s/v3
export OS_USERNAME=admin
export OS_PASSWORD=%s
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=%s
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
`, authURL, shellQuote(password), region)
	return writeFileAtomic(openrc, []byte(rc), 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
