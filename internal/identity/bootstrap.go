package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/service"
)

// BootstrapConfig is what `kumo bootstrap` (and the first `kumo serve`)
// ensures exists.
type BootstrapConfig struct {
	AdminPassword string // empty: keep an existing admin's password, or generate one
	Region        string // default RegionOne
	PublicURL     string // root URL of the APIs
	Services      []service.CatalogEntry
}

// BootstrapResult reports what bootstrap did.
type BootstrapResult struct {
	AdminUserID, AdminProjectID string
	GeneratedPassword           string // set only when a password was generated
}

// Bootstrap creates, idempotently, the default domain, the admin, member
// and reader roles (admin implies member implies reader), the admin project
// and user with the admin role on the project and on the system, the
// region, and a catalog entry with public, internal and admin endpoints for
// every service. Running it again updates endpoint URLs and, when a
// password is given, the admin password.
func (s *Service) Bootstrap(ctx context.Context, cfg BootstrapConfig) (*BootstrapResult, error) {
	if cfg.Region == "" {
		cfg.Region = "RegionOne"
	}
	res := &BootstrapResult{}
	if _, err := s.store.GetDomain(ctx, "default"); errors.Is(err, apiutil.ErrNotFound) {
		if err := s.CreateDomain(ctx, &Domain{ID: "default", Name: "Default", Description: "The default domain", Enabled: true}); err != nil {
			return nil, fmt.Errorf("bootstrap domain: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	roles := map[string]string{}
	for _, name := range []string{"admin", "member", "reader", "service"} {
		rs, err := s.store.ListRoles(ctx, Filter{"name": name, "domain_id": ""})
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 {
			roles[name] = rs[0].ID
			continue
		}
		ro := &Role{Name: name}
		if err := s.CreateRole(ctx, ro); err != nil {
			return nil, fmt.Errorf("bootstrap role %s: %w", name, err)
		}
		roles[name] = ro.ID
	}
	imp, err := s.store.ImpliedRoles(ctx)
	if err != nil {
		return nil, err
	}
	for _, pair := range [][2]string{{"admin", "member"}, {"member", "reader"}} {
		if !slices.Contains(imp[roles[pair[0]]], roles[pair[1]]) {
			if err := s.CreateImpliedRole(ctx, roles[pair[0]], roles[pair[1]]); err != nil {
				return nil, fmt.Errorf("bootstrap implied role: %w", err)
			}
		}
	}
	proj, err := s.store.GetProjectByName(ctx, "default", "admin")
	if errors.Is(err, apiutil.ErrNotFound) {
		proj = &Project{Name: "admin", DomainID: "default", Description: "Bootstrap project for initializing the cloud.", Enabled: true}
		if err := s.CreateProject(ctx, proj); err != nil {
			return nil, fmt.Errorf("bootstrap project: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	res.AdminProjectID = proj.ID
	user, err := s.store.GetUserByName(ctx, "default", "admin")
	switch {
	case errors.Is(err, apiutil.ErrNotFound):
		pw := cfg.AdminPassword
		if pw == "" {
			pw = generatePassword()
			res.GeneratedPassword = pw
		}
		user = &User{Name: "admin", DomainID: "default", Enabled: true, DefaultProjectID: proj.ID}
		if err := s.CreateUser(ctx, user, &pw); err != nil {
			return nil, fmt.Errorf("bootstrap user: %w", err)
		}
	case err != nil:
		return nil, err
	default:
		// Like keystone-manage bootstrap: the admin ends enabled and unlocked.
		needUpdate := !user.Enabled || user.FailedAuthCount > 0
		user.Enabled, user.FailedAuthCount = true, 0
		var pw *string
		if cfg.AdminPassword != "" && !checkSecret(user.PasswordHash, cfg.AdminPassword) {
			pw = &cfg.AdminPassword
		}
		if pw != nil || needUpdate {
			if err := s.UpdateUser(ctx, user, pw); err != nil {
				return nil, fmt.Errorf("bootstrap user: %w", err)
			}
		}
	}
	res.AdminUserID = user.ID
	for _, g := range []Assignment{
		{Kind: UserProject, ActorID: user.ID, TargetID: proj.ID, RoleID: roles["admin"]},
		{Kind: UserSystem, ActorID: user.ID, TargetID: SystemTarget, RoleID: roles["admin"]},
	} {
		if err := s.Grant(ctx, g); err != nil {
			return nil, fmt.Errorf("bootstrap grant: %w", err)
		}
	}
	if _, err := s.store.GetRegion(ctx, cfg.Region); errors.Is(err, apiutil.ErrNotFound) {
		if err := s.CreateRegion(ctx, &Region{ID: cfg.Region}); err != nil {
			return nil, fmt.Errorf("bootstrap region: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	for _, e := range cfg.Services {
		if err := s.ensureCatalog(ctx, cfg, e); err != nil {
			return nil, fmt.Errorf("bootstrap catalog %s: %w", e.Type, err)
		}
	}
	return res, nil
}

func (s *Service) ensureCatalog(ctx context.Context, cfg BootstrapConfig, e service.CatalogEntry) error {
	svcs, err := s.store.ListServices(ctx, Filter{"type": e.Type})
	if err != nil {
		return err
	}
	var sv *CatalogService
	if len(svcs) > 0 {
		sv = svcs[0]
	} else {
		sv = &CatalogService{Type: e.Type, Name: e.Name, Enabled: true, Description: "Kumo " + e.Type + " service"}
		if err := s.CreateService(ctx, sv); err != nil {
			return err
		}
	}
	url := strings.TrimRight(cfg.PublicURL, "/") + e.Path
	eps, err := s.store.ListEndpoints(ctx, Filter{"service_id": sv.ID})
	if err != nil {
		return err
	}
	for _, iface := range []string{"public", "internal", "admin"} {
		var found *Endpoint
		for _, ep := range eps {
			if ep.Interface == iface && ep.RegionID == cfg.Region {
				found = ep
				break
			}
		}
		switch {
		case found == nil:
			if err := s.CreateEndpoint(ctx, &Endpoint{ServiceID: sv.ID, Interface: iface, URL: url, RegionID: cfg.Region, Enabled: true}); err != nil {
				return err
			}
		case found.URL != url:
			found.URL = url
			if err := s.UpdateEndpoint(ctx, found); err != nil {
				return err
			}
		}
	}
	return nil
}

func generatePassword() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
