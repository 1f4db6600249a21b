package identity

import (
	"maps"
	"net/http"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func (a *API) listRoles(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_roles", nil); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := Filter{"domain_id": q.Get("domain_id")}
	if n := q.Get("name"); n != "" {
		f["name"] = n
	}
	rs, err := a.svc.store.ListRoles(r.Context(), f)
	if err != nil {
		return nil, err
	}
	lf := parseListFilter(r)
	rs = slices.DeleteFunc(rs, func(ro *Role) bool { return !lf.matchName(ro.Name) })
	out := make([]any, 0, len(rs))
	for _, ro := range rs {
		out = append(out, roleView(r, ro))
	}
	return apiutil.JSON(200, map[string]any{"roles": out, "links": listLinks(r)}), nil
}

func (a *API) createRole(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_role", nil); err != nil {
		return nil, err
	}
	m, err := body(r, roleCreateSchema, "role")
	if err != nil {
		return nil, err
	}
	ro := &Role{Name: str(m, "name"), DomainID: str(m, "domain_id"), Description: str(m, "description"),
		Extra: extras(m, "name", "domain_id", "description", "options", "id", "links")}
	if err := a.svc.CreateRole(r.Context(), ro); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"role": roleView(r, ro)}), nil
}

func (a *API) getRole(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:get_role", nil); err != nil {
		return nil, err
	}
	ro, err := a.svc.store.GetRole(r.Context(), r.PathValue("role_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"role": roleView(r, ro)}), nil
}

func (a *API) updateRole(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:update_role", nil); err != nil {
		return nil, err
	}
	m, err := body(r, roleUpdateSchema, "role")
	if err != nil {
		return nil, err
	}
	ro, err := a.svc.store.GetRole(r.Context(), r.PathValue("role_id"))
	if err != nil {
		return nil, err
	}
	if v, ok := m["name"].(string); ok {
		ro.Name = v
	}
	if v, ok := strPtr(m, "description"); ok {
		ro.Description = deref(v)
	}
	maps.Copy(ro.Extra, extras(m, "name", "domain_id", "description", "options", "id", "links"))
	if err := a.svc.UpdateRole(r.Context(), ro); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"role": roleView(r, ro)}), nil
}

func (a *API) deleteRole(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_role", nil); err != nil {
		return nil, err
	}
	if err := a.svc.DeleteRole(r.Context(), r.PathValue("role_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- implied roles ----

func roleRef(r *http.Request, ro *Role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "links": selfLink(r, "roles", ro.ID)}
}

func (a *API) inference(r *http.Request, prior *Role, implied []string) (map[string]any, error) {
	imps := []any{}
	for _, id := range implied {
		ro, err := a.svc.store.GetRole(r.Context(), id)
		if err != nil {
			return nil, err
		}
		imps = append(imps, roleRef(r, ro))
	}
	return map[string]any{"prior_role": roleRef(r, prior), "implies": imps}, nil
}

func (a *API) listImplies(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_implied_roles", nil); err != nil {
		return nil, err
	}
	prior, err := a.svc.store.GetRole(r.Context(), r.PathValue("role_id"))
	if err != nil {
		return nil, err
	}
	imp, err := a.svc.store.ImpliedRoles(r.Context())
	if err != nil {
		return nil, err
	}
	inf, err := a.inference(r, prior, imp[prior.ID])
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"role_inference": inf, "links": listLinks(r)}), nil
}

func (a *API) createImply(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:create_implied_role", nil); err != nil {
		return nil, err
	}
	p, i := r.PathValue("role_id"), r.PathValue("implied_id")
	if err := a.svc.CreateImpliedRole(r.Context(), p, i); err != nil {
		return nil, err
	}
	return a.implyView(r, 201, p, i)
}

func (a *API) implyView(r *http.Request, status int, p, i string) (*apiutil.Response, error) {
	prior, err := a.svc.store.GetRole(r.Context(), p)
	if err != nil {
		return nil, err
	}
	implied, err := a.svc.store.GetRole(r.Context(), i)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(status, map[string]any{"role_inference": map[string]any{"prior_role": roleRef(r, prior), "implies": roleRef(r, implied)},
		"links": map[string]any{"self": base(r) + "/roles/" + p + "/implies/" + i}}), nil
}

func (a *API) getImply(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_implied_roles", nil); err != nil {
		return nil, err
	}
	p, i := r.PathValue("role_id"), r.PathValue("implied_id")
	imp, err := a.svc.store.ImpliedRoles(r.Context())
	if err != nil {
		return nil, err
	}
	if !slices.Contains(imp[p], i) {
		return nil, apiutil.NotFound("%s does not imply %s.", p, i)
	}
	if r.Method == http.MethodHead {
		return apiutil.NoContent(), nil
	}
	return a.implyView(r, 200, p, i)
}

func (a *API) deleteImply(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:delete_implied_role", nil); err != nil {
		return nil, err
	}
	if err := a.svc.DeleteImpliedRole(r.Context(), r.PathValue("role_id"), r.PathValue("implied_id")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (a *API) listInferences(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, "identity:list_implied_roles", nil); err != nil {
		return nil, err
	}
	imp, err := a.svc.store.ImpliedRoles(r.Context())
	if err != nil {
		return nil, err
	}
	out := []any{}
	for p, is := range imp {
		prior, err := a.svc.store.GetRole(r.Context(), p)
		if err != nil {
			return nil, err
		}
		inf, err := a.inference(r, prior, is)
		if err != nil {
			return nil, err
		}
		out = append(out, inf)
	}
	return apiutil.JSON(200, map[string]any{"role_inferences": out, "links": listLinks(r)}), nil
}

// ---- grants ----

func grantTarget(r *http.Request, kind string) string {
	switch kind {
	case UserProject, GroupProject:
		return r.PathValue("project_id")
	case UserDomain, GroupDomain:
		return r.PathValue("domain_id")
	}
	return SystemTarget
}

// grantPolicyTarget gives the domain the grant's target lives in.
func (a *API) grantPolicyTarget(r *http.Request, kind, target string) map[string]string {
	t := map[string]string{}
	switch kind {
	case UserProject, GroupProject:
		t["project_id"] = target
		if p, err := a.svc.store.GetProject(r.Context(), target); err == nil {
			t["domain_id"] = p.DomainID
		}
	case UserDomain, GroupDomain:
		t["domain_id"] = target
	}
	return t
}

func (a *API) assignment(r *http.Request, kind string, inherited bool, rule string) (Assignment, error) {
	as := Assignment{Kind: kind, ActorID: r.PathValue("actor_id"), TargetID: grantTarget(r, kind), RoleID: r.PathValue("role_id"), Inherited: inherited}
	return as, a.authorize(r, rule, a.grantPolicyTarget(r, kind, as.TargetID))
}

func (a *API) grant(kind string, inherited bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		as, err := a.assignment(r, kind, inherited, "identity:create_grant")
		if err != nil {
			return nil, err
		}
		if err := a.svc.Grant(r.Context(), as); err != nil {
			return nil, err
		}
		return apiutil.NoContent(), nil
	}
}

func (a *API) revoke(kind string, inherited bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		as, err := a.assignment(r, kind, inherited, "identity:revoke_grant")
		if err != nil {
			return nil, err
		}
		if err := a.svc.Revoke(r.Context(), as); err != nil {
			return nil, err
		}
		return apiutil.NoContent(), nil
	}
}

func (a *API) checkGrant(kind string, inherited bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		as, err := a.assignment(r, kind, inherited, "identity:check_grant")
		if err != nil {
			return nil, err
		}
		if err := a.svc.checkAssignment(r.Context(), as); err != nil {
			return nil, err
		}
		inh := inherited
		l, err := a.svc.store.ListAssignments(r.Context(), AssignmentFilter{Kinds: []string{kind}, ActorIDs: []string{as.ActorID}, TargetID: as.TargetID, RoleID: as.RoleID, Inherited: &inh})
		if err != nil {
			return nil, err
		}
		if len(l) == 0 {
			return nil, apiutil.NotFound("Could not find role assignment with role: %s, user or group: %s, project, domain, or system: %s.", as.RoleID, as.ActorID, as.TargetID)
		}
		return apiutil.NoContent(), nil
	}
}

func (a *API) listGrants(kind string) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		actor, target := r.PathValue("actor_id"), grantTarget(r, kind)
		if err := a.authorize(r, "identity:list_grants", a.grantPolicyTarget(r, kind, target)); err != nil {
			return nil, err
		}
		no := false
		l, err := a.svc.store.ListAssignments(r.Context(), AssignmentFilter{Kinds: []string{kind}, ActorIDs: []string{actor}, TargetID: target, Inherited: &no})
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, as := range l {
			ro, err := a.svc.store.GetRole(r.Context(), as.RoleID)
			if err != nil {
				return nil, err
			}
			out = append(out, roleView(r, ro))
		}
		return apiutil.JSON(200, map[string]any{"roles": out, "links": listLinks(r)}), nil
	}
}

// ---- /v3/role_assignments ----

func (a *API) listAssignments(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	target := map[string]string{"domain_id": q.Get("scope.domain.id")}
	if pid := q.Get("scope.project.id"); pid != "" {
		if p, err := a.svc.store.GetProject(r.Context(), pid); err == nil {
			target["domain_id"] = p.DomainID
		}
	}
	err := a.authorize(r, "identity:list_role_assignments", target)
	if err != nil {
		return nil, err
	}
	effective := q.Has("effective")
	names := q.Has("include_names")
	f := AssignmentFilter{RoleID: q.Get("role.id")}
	switch {
	case q.Get("scope.project.id") != "":
		f.TargetID, f.Kinds = q.Get("scope.project.id"), []string{UserProject, GroupProject}
	case q.Get("scope.domain.id") != "":
		f.TargetID, f.Kinds = q.Get("scope.domain.id"), []string{UserDomain, GroupDomain}
	case q.Get("scope.system") != "":
		f.TargetID, f.Kinds = SystemTarget, []string{UserSystem, GroupSystem}
	}
	userID, groupID := q.Get("user.id"), q.Get("group.id")
	if userID != "" && groupID != "" {
		return nil, apiutil.BadRequest("Specify a user or group, not both.")
	}
	if userID != "" {
		f.ActorIDs = []string{userID}
		if effective {
			actors, err := a.svc.actors(r.Context(), userID)
			if err != nil {
				return nil, err
			}
			f.ActorIDs = actors
		}
	}
	if groupID != "" {
		f.ActorIDs = []string{groupID}
	}
	if effective {
		// An effective role may come from an implied one: filter after expansion.
		f.RoleID = ""
	}
	targets := []string{f.TargetID}
	if q.Has("include_subtree") && q.Get("scope.project.id") != "" {
		if targets, err = a.svc.subtree(r.Context(), f.TargetID); err != nil {
			return nil, err
		}
	}
	var list []Assignment
	for _, t := range targets {
		f.TargetID = t
		l, err := a.svc.store.ListAssignments(r.Context(), f)
		if err != nil {
			return nil, err
		}
		list = append(list, l...)
	}
	type row struct {
		a         Assignment
		userID    string // effective: the user a group assignment expands to
		groupID   string
		priorRole string
	}
	var rows []row
	for _, as := range list {
		isGroup := as.Kind == GroupProject || as.Kind == GroupDomain || as.Kind == GroupSystem
		switch {
		case effective && isGroup:
			members, err := a.svc.store.UsersInGroup(r.Context(), as.ActorID)
			if err != nil {
				return nil, err
			}
			for _, m := range members {
				if userID != "" && m.ID != userID {
					continue
				}
				rows = append(rows, row{a: as, userID: m.ID, groupID: as.ActorID})
			}
		default:
			rows = append(rows, row{a: as})
		}
	}
	if effective {
		sn, err := a.svc.snapshot(r.Context())
		if err != nil {
			return nil, err
		}
		var extra []row
		for _, rw := range rows {
			for _, imp := range reachable(sn.implied, rw.a.RoleID) {
				n := rw
				n.a.RoleID, n.priorRole = imp, rw.a.RoleID
				extra = append(extra, n)
			}
		}
		rows = append(rows, extra...)
		if want := q.Get("role.id"); want != "" {
			rows = slices.DeleteFunc(rows, func(rw row) bool { return rw.a.RoleID != want })
		}
	}
	out := make([]any, 0, len(rows))
	for _, rw := range rows {
		v, err := a.assignmentView(r, rw.a, rw.userID, rw.groupID, rw.priorRole, names)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return apiutil.JSON(200, map[string]any{"role_assignments": out, "links": listLinks(r)}), nil
}

func (a *API) assignmentView(r *http.Request, as Assignment, effUser, viaGroup, prior string, names bool) (map[string]any, error) {
	ctx := r.Context()
	v := map[string]any{}
	role := map[string]any{"id": as.RoleID}
	if names {
		if ro, err := a.svc.store.GetRole(ctx, as.RoleID); err == nil {
			role["name"] = ro.Name
			if ro.DomainID != "" {
				role["domain"] = map[string]any{"id": ro.DomainID}
			}
		}
	}
	v["role"] = role
	actorKind, actorPath := "user", "users"
	if as.Kind == GroupProject || as.Kind == GroupDomain || as.Kind == GroupSystem {
		actorKind, actorPath = "group", "groups"
	}
	actorID := as.ActorID
	if effUser != "" {
		actorKind, actorID = "user", effUser
	}
	actor := map[string]any{"id": actorID}
	if names {
		if actorKind == "user" {
			if u, err := a.svc.store.GetUser(ctx, actorID); err == nil {
				actor["name"], actor["domain"] = u.Name, a.domainRef(r, u.DomainID)
			}
		} else if g, err := a.svc.store.GetGroup(ctx, actorID); err == nil {
			actor["name"], actor["domain"] = g.Name, a.domainRef(r, g.DomainID)
		}
	}
	v[actorKind] = actor
	scope := map[string]any{}
	var link string
	switch as.Kind {
	case UserProject, GroupProject:
		p := map[string]any{"id": as.TargetID}
		if names {
			if pr, err := a.svc.store.GetProject(ctx, as.TargetID); err == nil {
				p["name"], p["domain"] = pr.Name, a.domainRef(r, pr.DomainID)
			}
		}
		scope["project"] = p
		link = base(r) + "/projects/" + as.TargetID + "/" + actorPath + "/" + as.ActorID + "/roles/" + as.RoleID
	case UserDomain, GroupDomain:
		d := map[string]any{"id": as.TargetID}
		if names {
			if dm, err := a.svc.store.GetDomain(ctx, as.TargetID); err == nil {
				d["name"] = dm.Name
			}
		}
		scope["domain"] = d
		link = base(r) + "/domains/" + as.TargetID + "/" + actorPath + "/" + as.ActorID + "/roles/" + as.RoleID
		if as.Inherited {
			scope["OS-INHERIT:inherited_to"] = "projects"
			link = base(r) + "/OS-INHERIT/domains/" + as.TargetID + "/" + actorPath + "/" + as.ActorID + "/roles/" + as.RoleID + "/inherited_to_projects"
		}
	default:
		scope["system"] = map[string]any{"all": true}
		link = base(r) + "/system/" + actorPath + "/" + as.ActorID + "/roles/" + as.RoleID
	}
	v["scope"] = scope
	links := map[string]any{"assignment": link}
	if viaGroup != "" {
		links["membership"] = base(r) + "/groups/" + viaGroup + "/users/" + effUser
	}
	if prior != "" {
		links["prior_role"] = base(r) + "/roles/" + prior
	}
	v["links"] = links
	return v, nil
}

func (a *API) domainRef(r *http.Request, id string) map[string]any {
	d := map[string]any{"id": id}
	if dm, err := a.svc.store.GetDomain(r.Context(), id); err == nil {
		d["name"] = dm.Name
	}
	return d
}
