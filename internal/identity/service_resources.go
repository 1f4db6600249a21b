package identity

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Store exposes the store for read paths that need no rules.
func (s *Service) Store() *Store { return s.store }

// after runs a store write and then refreshes the caches.
func (s *Service) after(ctx context.Context, err error) error {
	if err == nil {
		s.changed(ctx)
	}
	return err
}

// ---- domains ----

func (s *Service) CreateDomain(ctx context.Context, d *Domain) error {
	if d.ID == "" {
		d.ID = newID()
	}
	d.CreatedAt = s.now()
	return s.after(ctx, s.store.CreateDomain(ctx, d))
}

func (s *Service) UpdateDomain(ctx context.Context, d *Domain) error {
	return s.after(ctx, s.store.UpdateDomain(ctx, d))
}

func (s *Service) DeleteDomain(ctx context.Context, id string) error {
	d, err := s.store.GetDomain(ctx, id)
	if err != nil {
		return err
	}
	if d.Enabled {
		return apiutil.Forbidden("Cannot delete a domain that is enabled, please disable it first.")
	}
	return s.after(ctx, s.store.DeleteDomain(ctx, id))
}

// ---- projects ----

func (s *Service) CreateProject(ctx context.Context, p *Project) error {
	if p.DomainID == "" && p.ParentID != "" {
		parent, err := s.store.GetProject(ctx, p.ParentID)
		if err != nil {
			return apiutil.NotFound("Could not find project: %s.", p.ParentID)
		}
		p.DomainID = parent.DomainID
	}
	if p.DomainID == "" {
		p.DomainID = "default"
	}
	if _, err := s.store.GetDomain(ctx, p.DomainID); err != nil {
		return apiutil.BadRequest("Could not find domain: %s.", p.DomainID)
	}
	if p.ParentID == p.DomainID {
		p.ParentID = ""
	}
	if p.ParentID != "" {
		parent, err := s.store.GetProject(ctx, p.ParentID)
		if err != nil {
			return apiutil.NotFound("Could not find project: %s.", p.ParentID)
		}
		if parent.DomainID != p.DomainID {
			return apiutil.BadRequest("Cannot create project, the parent (%s) is in a different domain (%s).", parent.ID, parent.DomainID)
		}
	}
	if err := validTags(p.Tags); err != nil {
		return err
	}
	p.ID, p.CreatedAt = newID(), s.now()
	return s.after(ctx, s.store.CreateProject(ctx, p))
}

func validTags(tags []string) error {
	if len(tags) > 80 {
		return apiutil.BadRequest("Invalid input for field 'tags': too many tags (80 at most).")
	}
	for _, t := range tags {
		if t == "" || len(t) > 255 || strings.ContainsAny(t, ",/") {
			return apiutil.BadRequest("Invalid input for field 'tags': %q is not a valid tag.", t)
		}
	}
	return nil
}

func (s *Service) UpdateProject(ctx context.Context, p *Project) error {
	if err := validTags(p.Tags); err != nil {
		return err
	}
	return s.after(ctx, s.store.UpdateProject(ctx, p))
}

func (s *Service) DeleteProject(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteProject(ctx, id))
}

// UserProjects lists the enabled projects on which a user has any role,
// directly, through a group or inherited from a domain.
func (s *Service) UserProjects(ctx context.Context, userID string) ([]*Project, error) {
	actors, err := s.actors(ctx, userID)
	if err != nil {
		return nil, err
	}
	as, err := s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserProject, GroupProject, UserDomain, GroupDomain}, ActorIDs: actors})
	if err != nil {
		return nil, err
	}
	ids, domains := map[string]bool{}, map[string]bool{}
	for _, a := range as {
		switch {
		case a.Kind == UserProject || a.Kind == GroupProject:
			ids[a.TargetID] = true
		case a.Inherited:
			domains[a.TargetID] = true
		}
	}
	all, err := s.store.ListProjects(ctx, Filter{"enabled": true})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(p *Project) bool { return !ids[p.ID] && !domains[p.DomainID] }), nil
}

// UserDomains lists the enabled domains on which a user has a role.
func (s *Service) UserDomains(ctx context.Context, userID string) ([]*Domain, error) {
	actors, err := s.actors(ctx, userID)
	if err != nil {
		return nil, err
	}
	no := false
	as, err := s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserDomain, GroupDomain}, ActorIDs: actors, Inherited: &no})
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, a := range as {
		ids[a.TargetID] = true
	}
	all, err := s.store.ListDomains(ctx, Filter{"enabled": true})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(d *Domain) bool { return !ids[d.ID] }), nil
}

// HasSystemRole reports whether a user has any role on the system.
func (s *Service) HasSystemRole(ctx context.Context, userID string) (bool, error) {
	actors, err := s.actors(ctx, userID)
	if err != nil {
		return false, err
	}
	as, err := s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserSystem, GroupSystem}, ActorIDs: actors})
	return len(as) > 0, err
}

func (s *Service) actors(ctx context.Context, userID string) ([]string, error) {
	groups, err := s.store.GroupsOfUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := []string{userID}
	for _, g := range groups {
		out = append(out, g.ID)
	}
	return out, nil
}

// ---- users ----

func (s *Service) CreateUser(ctx context.Context, u *User, password *string) error {
	if u.DomainID == "" {
		u.DomainID = "default"
	}
	if _, err := s.store.GetDomain(ctx, u.DomainID); err != nil {
		return apiutil.BadRequest("Could not find domain: %s.", u.DomainID)
	}
	if u.DefaultProjectID != "" {
		if _, err := s.store.GetProject(ctx, u.DefaultProjectID); err != nil {
			return apiutil.BadRequest("Could not find project: %s.", u.DefaultProjectID)
		}
	}
	if password != nil {
		h, err := s.hashSecret(*password)
		if err != nil {
			return err
		}
		u.PasswordHash, u.PasswordCreatedAt = h, s.now()
	}
	u.ID, u.CreatedAt = newID(), s.now()
	return s.after(ctx, s.store.CreateUser(ctx, u))
}

// UpdateUser writes u; a new password or a disabled account revokes the
// user's existing tokens.
func (s *Service) UpdateUser(ctx context.Context, u *User, password *string) error {
	if u.DefaultProjectID != "" {
		if _, err := s.store.GetProject(ctx, u.DefaultProjectID); err != nil {
			return apiutil.BadRequest("Could not find project: %s.", u.DefaultProjectID)
		}
	}
	revoke := !u.Enabled
	if password != nil {
		h, err := s.hashSecret(*password)
		if err != nil {
			return err
		}
		u.PasswordHash, u.PasswordCreatedAt, u.FailedAuthCount, u.FailedAuthAt = h, s.now(), 0, time.Time{}
		revoke = true
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	if revoke {
		if err := s.revokeUser(ctx, u.ID); err != nil {
			return err
		}
	}
	s.changed(ctx)
	return nil
}

// ChangePassword is the self-service password change: the original
// password must be right.
func (s *Service) ChangePassword(ctx context.Context, userID, original, password string) error {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if _, err := s.checkPassword(ctx, &refUser{ID: userID, Password: &original}); err != nil {
		return err
	}
	return s.UpdateUser(ctx, u, &password)
}

func (s *Service) DeleteUser(ctx context.Context, id string) error {
	if err := s.store.DeleteUser(ctx, id); err != nil {
		return err
	}
	return s.after(ctx, s.revokeUser(ctx, id))
}

// ---- groups ----

func (s *Service) CreateGroup(ctx context.Context, g *Group) error {
	if g.DomainID == "" {
		g.DomainID = "default"
	}
	if _, err := s.store.GetDomain(ctx, g.DomainID); err != nil {
		return apiutil.BadRequest("Could not find domain: %s.", g.DomainID)
	}
	g.ID = newID()
	return s.after(ctx, s.store.CreateGroup(ctx, g))
}

func (s *Service) UpdateGroup(ctx context.Context, g *Group) error {
	return s.after(ctx, s.store.UpdateGroup(ctx, g))
}

func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteGroup(ctx, id))
}

func (s *Service) AddGroupMember(ctx context.Context, groupID, userID string) error {
	if _, err := s.store.GetGroup(ctx, groupID); err != nil {
		return err
	}
	if _, err := s.store.GetUser(ctx, userID); err != nil {
		return err
	}
	return s.after(ctx, s.store.AddGroupMember(ctx, groupID, userID))
}

func (s *Service) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	return s.after(ctx, s.store.RemoveGroupMember(ctx, groupID, userID))
}

// ---- roles ----

func (s *Service) CreateRole(ctx context.Context, r *Role) error {
	if r.DomainID != "" {
		if _, err := s.store.GetDomain(ctx, r.DomainID); err != nil {
			return apiutil.BadRequest("Could not find domain: %s.", r.DomainID)
		}
	}
	r.ID = newID()
	return s.after(ctx, s.store.CreateRole(ctx, r))
}

func (s *Service) UpdateRole(ctx context.Context, r *Role) error {
	return s.after(ctx, s.store.UpdateRole(ctx, r))
}

func (s *Service) DeleteRole(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteRole(ctx, id))
}

func (s *Service) CreateImpliedRole(ctx context.Context, prior, implied string) error {
	if prior == implied {
		return apiutil.BadRequest("A role cannot imply itself.")
	}
	for _, id := range []string{prior, implied} {
		if _, err := s.store.GetRole(ctx, id); err != nil {
			return err
		}
	}
	// Refuse cycles: implied must not already reach prior.
	imp, err := s.store.ImpliedRoles(ctx)
	if err != nil {
		return err
	}
	if implied == prior || slices.Contains(reachable(imp, implied), prior) {
		return apiutil.BadRequest("Role %s implying %s would create a cycle.", prior, implied)
	}
	return s.after(ctx, s.store.CreateImpliedRole(ctx, prior, implied))
}

func (s *Service) DeleteImpliedRole(ctx context.Context, prior, implied string) error {
	return s.after(ctx, s.store.DeleteImpliedRole(ctx, prior, implied))
}

// Grant assigns a role after checking that actor, target and role exist.
func (s *Service) Grant(ctx context.Context, a Assignment) error {
	if err := s.checkAssignment(ctx, a); err != nil {
		return err
	}
	return s.after(ctx, s.store.Grant(ctx, a))
}

func (s *Service) Revoke(ctx context.Context, a Assignment) error {
	if err := s.checkAssignment(ctx, a); err != nil {
		return err
	}
	return s.after(ctx, s.store.Revoke(ctx, a))
}

func (s *Service) checkAssignment(ctx context.Context, a Assignment) error {
	var err error
	switch a.Kind {
	case UserProject, UserDomain, UserSystem:
		_, err = s.store.GetUser(ctx, a.ActorID)
	default:
		_, err = s.store.GetGroup(ctx, a.ActorID)
	}
	if err != nil {
		return err
	}
	switch a.Kind {
	case UserProject, GroupProject:
		_, err = s.store.GetProject(ctx, a.TargetID)
	case UserDomain, GroupDomain:
		_, err = s.store.GetDomain(ctx, a.TargetID)
	}
	if err != nil {
		return err
	}
	_, err = s.store.GetRole(ctx, a.RoleID)
	return err
}

// ---- catalog ----

func (s *Service) CreateRegion(ctx context.Context, r *Region) error {
	if r.ID == "" {
		r.ID = newID()
	}
	return s.after(ctx, s.store.CreateRegion(ctx, r))
}

func (s *Service) UpdateRegion(ctx context.Context, r *Region) error {
	if r.ParentRegionID == r.ID {
		return apiutil.BadRequest("Circular reference: region %s cannot be its own parent.", r.ID)
	}
	return s.after(ctx, s.store.UpdateRegion(ctx, r))
}

func (s *Service) DeleteRegion(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteRegion(ctx, id))
}

func (s *Service) CreateService(ctx context.Context, c *CatalogService) error {
	c.ID = newID()
	return s.after(ctx, s.store.CreateService(ctx, c))
}

func (s *Service) UpdateService(ctx context.Context, c *CatalogService) error {
	return s.after(ctx, s.store.UpdateService(ctx, c))
}

func (s *Service) DeleteService(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteService(ctx, id))
}

func (s *Service) CreateEndpoint(ctx context.Context, e *Endpoint) error {
	if _, err := s.store.GetService(ctx, e.ServiceID); err != nil {
		return apiutil.BadRequest("Could not find service: %s.", e.ServiceID)
	}
	if e.RegionID != "" {
		if _, err := s.store.GetRegion(ctx, e.RegionID); err != nil {
			return apiutil.BadRequest("Could not find region: %s.", e.RegionID)
		}
	}
	e.ID = newID()
	return s.after(ctx, s.store.CreateEndpoint(ctx, e))
}

func (s *Service) UpdateEndpoint(ctx context.Context, e *Endpoint) error {
	return s.after(ctx, s.store.UpdateEndpoint(ctx, e))
}

func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteEndpoint(ctx, id))
}

// ---- application credentials ----

// CreateAppCred creates a credential for the caller's project. roleIDs nil
// means every role the caller's token carries; named roles must be among
// them. It returns the secret, shown only once.
func (s *Service) CreateAppCred(ctx context.Context, ac *AppCred, secret string, callerRoles []string) (string, error) {
	if ac.ProjectID == "" {
		return "", apiutil.BadRequest("Application credentials need a project-scoped token.")
	}
	if !ac.ExpiresAt.IsZero() && !ac.ExpiresAt.After(s.now()) {
		return "", apiutil.BadRequest("Invalid input for field 'expires_at': the expiration time is in the past.")
	}
	if len(ac.RoleIDs) == 0 {
		ac.RoleIDs = callerRoles
	}
	for _, id := range ac.RoleIDs {
		if !slices.Contains(callerRoles, id) {
			return "", apiutil.Forbidden("Cannot create an application credential with a role (%s) that the current token does not have.", id)
		}
	}
	if secret == "" {
		secret = newAuditID() + newAuditID() + newAuditID()
	}
	h, err := s.hashSecret(secret)
	if err != nil {
		return "", err
	}
	ac.ID, ac.SecretHash, ac.CreatedAt = newID(), h, s.now()
	if err := s.after(ctx, s.store.CreateAppCred(ctx, ac)); err != nil {
		return "", err
	}
	return secret, nil
}

func (s *Service) DeleteAppCred(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteAppCred(ctx, id))
}

// RoleByIDOrName finds a role by id, else by name among global roles.
func (s *Service) RoleByIDOrName(ctx context.Context, id, name string) (*Role, error) {
	if id != "" {
		return s.store.GetRole(ctx, id)
	}
	rs, err := s.store.ListRoles(ctx, Filter{"name": name, "domain_id": ""})
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, apiutil.NotFound("Could not find role: %s.", name)
	}
	return rs[0], nil
}

// subtree returns a project and all its descendants; for a domain id (the
// project acting as the domain) every project of the domain.
func (s *Service) subtree(ctx context.Context, id string) ([]string, error) {
	if _, err := s.store.GetDomain(ctx, id); err == nil {
		ps, err := s.store.ListProjects(ctx, Filter{"domain_id": id})
		if err != nil {
			return nil, err
		}
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out, nil
	}
	out := []string{id}
	for i := 0; i < len(out) && len(out) < 100000; i++ {
		children, err := s.store.ListProjects(ctx, Filter{"parent_id": out[i]})
		if err != nil {
			return nil, err
		}
		for _, c := range children {
			out = append(out, c.ID)
		}
	}
	return out, nil
}

// ---- trusts ----

// projectRoles returns the ids of the roles a user holds on a project,
// implied ones included.
func (s *Service) projectRoles(ctx context.Context, userID, projectID string) ([]string, error) {
	pr, err := s.store.GetProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	sn, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	roles, err := s.effectiveRoles(ctx, sn, userID, &payload{ProjectID: projectID}, pr.DomainID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(roles))
	for _, r := range roles {
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// DeleteTrust deletes a trust; tokens scoped with it stop validating
// because validation loads the trust.
func (s *Service) DeleteTrust(ctx context.Context, id string) error {
	return s.after(ctx, s.store.DeleteTrust(ctx, id, s.now()))
}
