package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
)

type catalogEntry struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Name      string         `json:"name"`
	Endpoints []endpointView `json:"endpoints"`
}

type endpointView struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	Region    any    `json:"region"`
	RegionID  any    `json:"region_id"`
	URL       string `json:"url"`
}

func (s *Service) loadCatalog(ctx context.Context) ([]catalogEntry, error) {
	svcs, err := s.store.ListServices(ctx, nil)
	if err != nil {
		return nil, err
	}
	eps, err := s.store.ListEndpoints(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := []catalogEntry{}
	for _, sv := range svcs {
		if !sv.Enabled {
			continue
		}
		ce := catalogEntry{ID: sv.ID, Type: sv.Type, Name: sv.Name, Endpoints: []endpointView{}}
		for _, e := range eps {
			if e.ServiceID != sv.ID || !e.Enabled {
				continue
			}
			ev := endpointView{ID: e.ID, Interface: e.Interface, URL: e.URL}
			if e.RegionID != "" {
				ev.Region, ev.RegionID = e.RegionID, e.RegionID
			}
			ce.Endpoints = append(ce.Endpoints, ev)
		}
		out = append(out, ce)
	}
	return out, nil
}

// Catalog returns the service catalog.
func (s *Service) Catalog(ctx context.Context) ([]catalogEntry, error) {
	sn, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return sn.catalog, nil
}

// ---- authentication requests ----

type refDomain struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

type refUser struct {
	ID       string     `json:"id,omitempty"`
	Name     string     `json:"name,omitempty"`
	Domain   *refDomain `json:"domain,omitempty"`
	Password *string    `json:"password,omitempty"`
}

type refProject struct {
	ID     string     `json:"id,omitempty"`
	Name   string     `json:"name,omitempty"`
	Domain *refDomain `json:"domain,omitempty"`
}

// AuthRequest is the body of POST /v3/auth/tokens.
type AuthRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User refUser `json:"user"`
			} `json:"password,omitempty"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token,omitempty"`
			AppCred *struct {
				ID     string   `json:"id,omitempty"`
				Name   string   `json:"name,omitempty"`
				Secret string   `json:"secret"`
				User   *refUser `json:"user,omitempty"`
			} `json:"application_credential,omitempty"`
		} `json:"identity"`
		Scope any `json:"scope,omitempty"` // "unscoped" or an object
	} `json:"auth"`
}

type scopeRequest struct {
	Project *refProject `json:"project,omitempty"`
	Domain  *refDomain  `json:"domain,omitempty"`
	System  *struct {
		All bool `json:"all"`
	} `json:"system,omitempty"`
	Trust *struct {
		ID string `json:"id"`
	} `json:"OS-TRUST:trust,omitempty"`
}

var errAuth = apiutil.Unauthorized("The request you have made requires authentication.")

// Authenticate checks the identity in req, resolves the scope and issues
// a token.
func (s *Service) Authenticate(ctx context.Context, req *AuthRequest, scope *scopeRequest, unscoped bool) (string, *auth.Context, error) {
	id := req.Auth.Identity
	if len(id.Methods) == 0 {
		return "", nil, apiutil.BadRequest("Invalid input for field 'identity/methods': [] is too short")
	}
	now := s.now().UTC()
	p := &payload{IssuedAt: now.UnixMicro(), ExpiresAt: now.Add(s.cfg.TokenTTL).UnixMicro(), AuditIDs: []string{newAuditID()}}
	var fromToken *auth.Context
	for _, m := range id.Methods {
		var userID string
		switch m {
		case "password":
			if id.Password == nil {
				return "", nil, apiutil.BadRequest("Expecting to find password in identity. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
			}
			u, err := s.checkPassword(ctx, &id.Password.User)
			if err != nil {
				return "", nil, err
			}
			userID = u.ID
		case "token":
			if id.Token == nil || id.Token.ID == "" {
				return "", nil, apiutil.BadRequest("Expecting to find token in identity.")
			}
			c, err := s.validate(ctx, id.Token.ID)
			if errors.Is(err, errTokenNotFound) {
				return "", nil, apiutil.NotFound("Failed to validate token")
			}
			if err != nil {
				return "", nil, err
			}
			if c.AppCred != nil {
				return "", nil, apiutil.Forbidden("Cannot rescope a token issued from an application credential.")
			}
			if c.TrustID != "" {
				return "", nil, apiutil.Forbidden("Cannot rescope a token scoped with a trust.")
			}
			fromToken = c
			userID = c.UserID
			// A rescoped token lives no longer than the one it came from
			// and keeps its audit chain.
			p.ExpiresAt = min(p.ExpiresAt, c.ExpiresAt.UnixMicro())
			p.AuditIDs = append(p.AuditIDs, c.AuditIDs[0])
		case "application_credential":
			if id.AppCred == nil {
				return "", nil, apiutil.BadRequest("Expecting to find application_credential in identity.")
			}
			if scope != nil || unscoped {
				return "", nil, apiutil.Unauthorized("Application credentials cannot request a scope.")
			}
			ac, err := s.checkAppCred(ctx, id.AppCred.ID, id.AppCred.Name, id.AppCred.Secret, id.AppCred.User)
			if err != nil {
				return "", nil, err
			}
			userID = ac.UserID
			p.AppCredID, p.ProjectID = ac.ID, ac.ProjectID
			if !ac.ExpiresAt.IsZero() {
				p.ExpiresAt = min(p.ExpiresAt, ac.ExpiresAt.UnixMicro())
			}
		default:
			return "", nil, apiutil.Unauthorized("Attempted to authenticate with an unsupported method.")
		}
		if p.UserID != "" && p.UserID != userID {
			return "", nil, apiutil.Unauthorized("The request you have made requires authentication.")
		}
		p.UserID = userID
		if !slices.Contains(p.Methods, m) {
			p.Methods = append(p.Methods, m)
		}
	}
	if fromToken != nil && !slices.Contains(p.Methods, "token") {
		p.Methods = append(p.Methods, "token")
	}
	if fromToken != nil {
		// Methods of the original token carry over, like Keystone does.
		for _, m := range fromToken.Methods {
			if !slices.Contains(p.Methods, m) {
				p.Methods = append(p.Methods, m)
			}
		}
	}
	if p.AppCredID == "" {
		if err := s.resolveScope(ctx, p, scope, unscoped); err != nil {
			return "", nil, err
		}
	}
	sn, err := s.snapshot(ctx)
	if err != nil {
		return "", nil, err
	}
	c, err := s.buildContext(ctx, sn, p)
	if errors.Is(err, errTokenNotFound) {
		switch {
		case p.TrustID != "":
			return "", nil, apiutil.Forbidden("The trustor no longer holds any role of trust %s on project %s.", p.TrustID, p.ProjectID)
		case p.ProjectID != "":
			return "", nil, apiutil.Unauthorized("User %s has no access to project %s", p.UserID, p.ProjectID)
		case p.DomainID != "":
			return "", nil, apiutil.Unauthorized("User %s has no access to domain %s", p.UserID, p.DomainID)
		case p.System:
			return "", nil, apiutil.Unauthorized("User %s has no access to the system", p.UserID)
		}
		return "", nil, errAuth
	}
	if err != nil {
		return "", nil, err
	}
	return s.sealFor(p, c)
}

// sealFor seals p into a token and records it in c.
func (s *Service) sealFor(p *payload, c *auth.Context) (string, *auth.Context, error) {
	tok, err := s.keys.Load().seal(p)
	if err != nil {
		return "", nil, fmt.Errorf("identity: seal token: %w", err)
	}
	c.Token = tok
	return tok, c, nil
}

func (s *Service) findDomain(ctx context.Context, d *refDomain) (*Domain, error) {
	switch {
	case d == nil:
		return nil, apiutil.BadRequest("Expecting to find domain in user or project.")
	case d.ID != "":
		return s.store.GetDomain(ctx, d.ID)
	case d.Name != "":
		return s.store.GetDomainByName(ctx, d.Name)
	}
	return nil, apiutil.BadRequest("Expecting to find id or name in domain.")
}

func (s *Service) findUser(ctx context.Context, ref *refUser) (*User, error) {
	if ref.ID != "" {
		return s.store.GetUser(ctx, ref.ID)
	}
	if ref.Name == "" {
		return nil, apiutil.BadRequest("Expecting to find id or name in user.")
	}
	d, err := s.findDomain(ctx, ref.Domain)
	if err != nil {
		return nil, err
	}
	return s.store.GetUserByName(ctx, d.ID, ref.Name)
}

// checkPassword authenticates a user by password with lockout.
func (s *Service) checkPassword(ctx context.Context, ref *refUser) (*User, error) {
	if ref.Password == nil {
		return nil, apiutil.BadRequest("Expecting to find password in user.")
	}
	u, err := s.findUser(ctx, ref)
	if errors.Is(err, apiutil.ErrNotFound) {
		// Same answer and about the same time as a wrong password.
		checkSecret(hashPrefix+"$2a$10$invalidinvalidinvalidinvalidinvalidinvalidinvalidinv", *ref.Password)
		return nil, errAuth
	}
	if err != nil {
		return nil, err
	}
	d, err := s.store.GetDomain(ctx, u.DomainID)
	if err != nil {
		return nil, err
	}
	if !u.Enabled || !d.Enabled {
		return nil, apiutil.Unauthorized("The account is disabled for user: %s.", u.ID)
	}
	now := s.now()
	if s.cfg.LockoutAttempts > 0 && u.FailedAuthCount >= s.cfg.LockoutAttempts && now.Before(u.FailedAuthAt.Add(s.cfg.LockoutDuration)) {
		return nil, apiutil.Unauthorized("The account is locked for user: %s.", u.ID)
	}
	if u.PasswordHash == "" || !checkSecret(u.PasswordHash, *ref.Password) {
		n, err := s.store.RecordAuthFailure(ctx, u.ID, now)
		if err != nil {
			return nil, err
		}
		if s.cfg.LockoutAttempts > 0 && n >= s.cfg.LockoutAttempts {
			s.log.Warn("user locked out after failed authentications", "user", u.ID, "failures", n)
		}
		return nil, errAuth
	}
	if !u.PasswordExpiresAt.IsZero() && now.After(u.PasswordExpiresAt) {
		return nil, apiutil.Unauthorized("The password is expired and needs to be changed for user: %s.", u.ID)
	}
	if u.FailedAuthCount > 0 {
		if err := s.store.ResetAuthFailures(ctx, u.ID, now); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (s *Service) checkAppCred(ctx context.Context, id, name, secret string, user *refUser) (*AppCred, error) {
	var ac *AppCred
	var err error
	switch {
	case id != "":
		ac, err = s.store.GetAppCred(ctx, id)
	case name != "" && user != nil:
		var u *User
		if u, err = s.findUser(ctx, user); err == nil {
			ac, err = s.store.GetAppCredByName(ctx, u.ID, name)
		}
	default:
		return nil, apiutil.BadRequest("Expecting to find id, or name and user, in application_credential.")
	}
	if errors.Is(err, apiutil.ErrNotFound) {
		return nil, errAuth
	}
	if err != nil {
		return nil, err
	}
	if !ac.ExpiresAt.IsZero() && !s.now().Before(ac.ExpiresAt) {
		return nil, apiutil.Unauthorized("Application credential %s has expired.", ac.ID)
	}
	if !checkSecret(ac.SecretHash, secret) {
		return nil, errAuth
	}
	return ac, nil
}

// resolveScope fills the scope of p from the request, or from the user's
// default project when the request names none.
func (s *Service) resolveScope(ctx context.Context, p *payload, sc *scopeRequest, unscoped bool) error {
	switch {
	case unscoped:
		return nil
	case sc == nil:
		u, err := s.store.GetUser(ctx, p.UserID)
		if err != nil {
			return err
		}
		if u.DefaultProjectID == "" {
			return nil
		}
		// Scope to the default project only where the user has a role.
		trial := *p
		trial.ProjectID = u.DefaultProjectID
		sn, err := s.snapshot(ctx)
		if err != nil {
			return err
		}
		if _, err := s.buildContext(ctx, sn, &trial); err == nil {
			p.ProjectID = u.DefaultProjectID
		}
		return nil
	case sc.Project != nil:
		var pr *Project
		var err error
		if sc.Project.ID != "" {
			pr, err = s.store.GetProject(ctx, sc.Project.ID)
		} else if sc.Project.Name != "" {
			var d *Domain
			if d, err = s.findDomain(ctx, sc.Project.Domain); err == nil {
				pr, err = s.store.GetProjectByName(ctx, d.ID, sc.Project.Name)
			}
		} else {
			return apiutil.BadRequest("Expecting to find id or name in project.")
		}
		if errors.Is(err, apiutil.ErrNotFound) {
			return apiutil.Unauthorized("%s", strings.TrimSuffix(apiutil.AsError(err).Message, "."))
		}
		if err != nil {
			return err
		}
		if !pr.Enabled {
			return apiutil.Unauthorized("Project %s is disabled.", pr.ID)
		}
		p.ProjectID = pr.ID
	case sc.Domain != nil:
		d, err := s.findDomain(ctx, sc.Domain)
		if errors.Is(err, apiutil.ErrNotFound) {
			return apiutil.Unauthorized("%s", strings.TrimSuffix(apiutil.AsError(err).Message, "."))
		}
		if err != nil {
			return err
		}
		if !d.Enabled {
			return apiutil.Unauthorized("Domain %s is disabled.", d.ID)
		}
		p.DomainID = d.ID
	case sc.Trust != nil:
		return s.trustScope(ctx, p, sc.Trust.ID)
	case sc.System != nil:
		if !sc.System.All {
			return apiutil.BadRequest("Invalid input for field 'scope/system/all': only true is supported.")
		}
		p.System = true
	default:
		return apiutil.BadRequest("Invalid scope: expecting project, domain or system.")
	}
	return nil
}

// RevokeToken revokes the token c and every token rescoped from it.
func (s *Service) RevokeToken(ctx context.Context, c *auth.Context) error {
	err := s.store.AddRevocation(ctx, Revocation{Kind: "audit_id", Value: c.AuditIDs[0], IssuedBefore: s.now(), ExpiresAt: c.ExpiresAt.Add(time.Minute)})
	if err != nil {
		return err
	}
	s.changed(ctx)
	return nil
}

// revokeUser revokes every token of a user issued until now.
func (s *Service) revokeUser(ctx context.Context, userID string) error {
	return s.store.AddRevocation(ctx, Revocation{Kind: "user_id", Value: userID, IssuedBefore: s.now(), ExpiresAt: s.now().Add(s.cfg.TokenTTL + time.Minute)})
}

// trustScope scopes p with a trust: the authenticated user must be its
// trustee; the token acts on the trust's project, as the trustor when the
// trust allows impersonation, and carries the trust's roles.
func (s *Service) trustScope(ctx context.Context, p *payload, id string) error {
	if id == "" {
		return apiutil.BadRequest("Expecting to find id in OS-TRUST:trust.")
	}
	t, err := s.store.GetTrust(ctx, id)
	if err != nil {
		return err
	}
	if t.TrusteeUserID != p.UserID {
		return apiutil.Forbidden("User %s is not the trustee of trust %s.", p.UserID, id)
	}
	if !t.ExpiresAt.IsZero() {
		if !s.now().Before(t.ExpiresAt) {
			return apiutil.NotFound("Could not find trust: %s.", id)
		}
		p.ExpiresAt = min(p.ExpiresAt, t.ExpiresAt.UnixMicro())
	}
	if t.ProjectID == "" {
		return apiutil.Forbidden("Trust %s has no project to scope to.", id)
	}
	if t.RemainingUses != nil {
		if err := s.store.ConsumeTrust(ctx, id); err != nil {
			return apiutil.Forbidden("Trust %s has no remaining uses.", id)
		}
		s.changed(ctx)
	}
	p.TrustID, p.ProjectID = t.ID, t.ProjectID
	if t.Impersonation {
		p.UserID = t.TrustorUserID
	}
	return nil
}
