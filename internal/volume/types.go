package volume

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func typeNotFound(id string) error {
	return apiutil.NotFound("Volume type %s could not be found.", id)
}

// GetType returns a type the caller may see (by id, or by name).
func (s *Service) GetType(ctx context.Context, id string) (*VolumeType, error) {
	c := callerOf(ctx)
	if id == "default" {
		id = s.cfg.DefaultType
	}
	t, err := s.resolveType(ctx, c, id)
	if err != nil {
		var e *apiutil.Error
		if errors.As(err, &e) && e.Status == 404 {
			return nil, typeNotFound(id)
		}
		return nil, err
	}
	return t, nil
}

// CanSeeSpecs reports whether the caller sees extra specs.
func (s *Service) CanSeeSpecs(ctx context.Context) bool {
	c := callerOf(ctx)
	return s.can(c, ruleTypeSpecs, c.project)
}

// ListTypes lists the types the caller may use; admins see all, or
// filter with isPublic.
func (s *Service) ListTypes(ctx context.Context, isPublic *bool) ([]*VolumeType, error) {
	c := callerOf(ctx)
	if c.admin {
		return s.store.ListTypes(ctx, "", true, isPublic)
	}
	t := true
	if isPublic != nil && !*isPublic {
		return s.store.ListTypes(ctx, c.project, false, isPublic)
	}
	_ = t
	return s.store.ListTypes(ctx, c.project, false, nil)
}

// TypeRequest creates or updates a type.
type TypeRequest struct {
	Name        *string
	Description *string
	SetDesc     bool
	IsPublic    *bool
	ExtraSpecs  map[string]string
}

// CreateType adds a type.
func (s *Service) CreateType(ctx context.Context, req TypeRequest) (*VolumeType, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypesManage, c.project); err != nil {
		return nil, err
	}
	if req.Name == nil || *req.Name == "" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute name.")
	}
	t := &VolumeType{ID: newUUID(), Name: *req.Name, Description: req.Description, IsPublic: true,
		ExtraSpecs: req.ExtraSpecs, CreatedAt: s.now().UTC()}
	if req.IsPublic != nil {
		t.IsPublic = *req.IsPublic
	}
	if t.ExtraSpecs == nil {
		t.ExtraSpecs = map[string]string{}
	}
	if err := s.store.CreateType(ctx, t); err != nil {
		if errors.Is(err, errDuplicate) {
			return nil, apiutil.Conflict("Volume Type %s already exists.", t.Name)
		}
		return nil, err
	}
	return t, nil
}

// UpdateType changes name, description or is_public.
func (s *Service) UpdateType(ctx context.Context, id string, req TypeRequest) (*VolumeType, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypesManage, c.project); err != nil {
		return nil, err
	}
	t, err := s.store.UpdateType(ctx, id, func(_ *sql.Tx, t *VolumeType) error {
		if req.Name != nil {
			if *req.Name == "" {
				return apiutil.BadRequest("Invalid input received: Volume type name can not be empty.")
			}
			t.Name = *req.Name
		}
		if req.SetDesc {
			t.Description = req.Description
		}
		if req.IsPublic != nil {
			t.IsPublic = *req.IsPublic
		}
		t.UpdatedAt = time.Now().UTC()
		return nil
	})
	switch {
	case errors.Is(err, errNoRow):
		return nil, typeNotFound(id)
	case errors.Is(err, errDuplicate):
		return nil, apiutil.Conflict("Volume Type %s already exists.", deref(req.Name))
	}
	return t, err
}

// DeleteType removes an unused type.
func (s *Service) DeleteType(ctx context.Context, id string) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypesManage, c.project); err != nil {
		return err
	}
	t, err := s.store.GetType(ctx, nil, id, false)
	if errors.Is(err, errNoRow) {
		return typeNotFound(id)
	}
	if err != nil {
		return err
	}
	if t.Name == s.cfg.DefaultType {
		return apiutil.BadRequest("Invalid volume type: Default volume type can not be deleted.")
	}
	err = s.store.DeleteType(ctx, id, apiutil.BadRequest("Target volume type is still in use."))
	if errors.Is(err, errNoRow) {
		return typeNotFound(id)
	}
	return err
}

// SetExtraSpecs merges specs into a type.
func (s *Service) SetExtraSpecs(ctx context.Context, id string, specs map[string]string) (map[string]string, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypesManage, c.project); err != nil {
		return nil, err
	}
	t, err := s.store.UpdateType(ctx, id, func(_ *sql.Tx, t *VolumeType) error {
		maps.Copy(t.ExtraSpecs, specs)
		return nil
	})
	if errors.Is(err, errNoRow) {
		return nil, typeNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return t.ExtraSpecs, nil
}

// DeleteExtraSpec removes one spec.
func (s *Service) DeleteExtraSpec(ctx context.Context, id, key string) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypesManage, c.project); err != nil {
		return err
	}
	_, err := s.store.UpdateType(ctx, id, func(_ *sql.Tx, t *VolumeType) error {
		if _, ok := t.ExtraSpecs[key]; !ok {
			return apiutil.NotFound("Volume Type %s has no extra specs with key %s.", id, key)
		}
		delete(t.ExtraSpecs, key)
		return nil
	})
	if errors.Is(err, errNoRow) {
		return typeNotFound(id)
	}
	return err
}

// TypeAccess lists the projects of a private type.
func (s *Service) TypeAccess(ctx context.Context, id string) ([]string, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypeAccessList, c.project); err != nil {
		return nil, err
	}
	t, err := s.store.GetType(ctx, nil, id, false)
	if errors.Is(err, errNoRow) {
		return nil, typeNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if t.IsPublic {
		return nil, apiutil.NotFound("Access list not available for public volume types.")
	}
	return s.store.TypeProjects(ctx, id)
}

// SetTypeAccess adds or removes a project's access to a private type.
func (s *Service) SetTypeAccess(ctx context.Context, id, project string, add bool) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleTypeAccess, c.project); err != nil {
		return err
	}
	t, err := s.store.GetType(ctx, nil, id, false)
	if errors.Is(err, errNoRow) {
		return typeNotFound(id)
	}
	if err != nil {
		return err
	}
	if t.IsPublic {
		return apiutil.BadRequest("Invalid volume type: Type access modification is not applicable to public volume type.")
	}
	err = s.store.SetTypeAccess(ctx, id, project, add)
	switch {
	case errors.Is(err, errDuplicate):
		return apiutil.Conflict("Volume type access for %s / %s combination already exists.", id, project)
	case errors.Is(err, errNoRow):
		return apiutil.NotFound("Volume type access not found for %s / %s combination.", id, project)
	}
	return err
}

// ServiceInfo is one row of os-services.
type ServiceInfo struct {
	Binary, Host, Zone, Status, State string
	UpdatedAt                         time.Time
	DisabledReason                    *string
	Backend                           string
}

// Services lists the scheduler and one volume service per backend.
func (s *Service) Services(ctx context.Context) ([]ServiceInfo, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleServices, c.project); err != nil {
		return nil, err
	}
	states, err := s.store.ServiceStates(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	out := []ServiceInfo{{Binary: "cinder-scheduler", Host: s.cfg.Host}}
	for _, b := range s.cfg.Backends {
		out = append(out, ServiceInfo{Binary: "cinder-volume", Host: s.cfg.Host + "@" + b.Name(), Backend: b.Name()})
	}
	for i := range out {
		si := &out[i]
		si.Zone, si.Status, si.State, si.UpdatedAt = s.cfg.Zone, "enabled", "up", now
		if st, ok := states[si.Binary+"/"+si.Host]; ok && st.Disabled {
			si.Status, si.DisabledReason = "disabled", st.Reason
		}
		if si.Backend != "" {
			if _, err := s.backends[si.Backend].Capacity(ctx); err != nil {
				si.State = "down"
			}
		}
	}
	return out, nil
}

// SetService enables or disables a service.
func (s *Service) SetService(ctx context.Context, binary, host string, disabled bool, reason *string) (*ServiceInfo, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleServicesUpdate, c.project); err != nil {
		return nil, err
	}
	all, err := s.Services(ctx)
	if err != nil {
		return nil, err
	}
	for _, si := range all {
		if si.Binary == binary && si.Host == host {
			if err := s.store.SetServiceState(ctx, binary, host, ServiceState{Disabled: disabled, Reason: reason}, s.now().UTC().Format(timeFmt)); err != nil {
				return nil, err
			}
			si.Status = "enabled"
			si.DisabledReason = nil
			if disabled {
				si.Status, si.DisabledReason = "disabled", reason
			}
			return &si, nil
		}
	}
	return nil, apiutil.NotFound("Service %s could not be found.", host)
}

// Limits returns the caller's absolute limits and usage.
func (s *Service) Limits(ctx context.Context) (map[string]int64, Usage, error) {
	c := callerOf(ctx)
	l, err := s.limitsOf(ctx, nil, c.project)
	if err != nil {
		return nil, Usage{}, err
	}
	u, err := s.store.UsageOf(ctx, s.deps.DB.Reader(), c.project)
	return l, u, err
}

// Zone returns the availability zone.
func (s *Service) Zone() string { return s.cfg.Zone }
