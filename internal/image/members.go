package image

import (
	"context"
	"errors"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Image sharing: the owner adds projects as members of a shared image;
// each member accepts or rejects it. Members see the image whatever their
// status; it appears in their default list only once accepted.

func (s *Service) sharedImage(ctx context.Context, c caller, id string) (*Image, bool, error) {
	img, isMember, err := s.load(ctx, c, id)
	if err != nil {
		return nil, false, err
	}
	if img.Visibility != VisShared {
		return nil, false, apiutil.Forbidden("Only shared images have members.")
	}
	return img, isMember, nil
}

func memberNotFound(imageID, memberID string) error {
	return apiutil.NotFound("%s not found in the member list of the image %s.", memberID, imageID)
}

// AddMember shares an image with a project.
func (s *Service) AddMember(ctx context.Context, imageID, memberID string) (*Member, error) {
	c := callerOf(ctx)
	img, isMember, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleAddMember, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	if memberID == "" || len(memberID) > 255 {
		return nil, apiutil.BadRequest("Member to be added not specified")
	}
	members, err := s.store.ListMembers(ctx, imageID)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(members, func(m *Member) bool { return m.MemberID == memberID }) {
		return nil, apiutil.Conflict("The target member %s is already associated with image %s.", memberID, imageID)
	}
	if len(members) >= s.cfg.MaxMembers {
		return nil, &apiutil.Error{Status: 413, Err: apiutil.ErrOverLimit,
			Message: "The image has reached its maximum number of members."}
	}
	now := s.now().UTC()
	m := &Member{ImageID: imageID, MemberID: memberID, Status: MemberPending, CreatedAt: now, UpdatedAt: now}
	if err := s.store.AddMember(ctx, m); err != nil {
		switch {
		case errors.Is(err, ErrDuplicate):
			return nil, apiutil.Conflict("The target member %s is already associated with image %s.", memberID, imageID)
		case errors.Is(err, ErrNotFound):
			return nil, notFound(imageID)
		}
		return nil, err
	}
	return m, nil
}

// ListMembers lists the members the caller may see: all of them for the
// owner, only its own membership for a member.
func (s *Service) ListMembers(ctx context.Context, imageID string) ([]*Member, error) {
	c := callerOf(ctx)
	img, isMember, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleGetMembers, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	members, err := s.store.ListMembers(ctx, imageID)
	if err != nil {
		return nil, err
	}
	if c.admin || img.Owner == c.project {
		return members, nil
	}
	return slices.DeleteFunc(members, func(m *Member) bool { return m.MemberID != c.project }), nil
}

// GetMember shows one membership.
func (s *Service) GetMember(ctx context.Context, imageID, memberID string) (*Member, error) {
	c := callerOf(ctx)
	img, isMember, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleGetMember, s.memberTarget(img, c, isMember)); err != nil {
		return nil, err
	}
	if !c.admin && img.Owner != c.project && memberID != c.project {
		return nil, memberNotFound(imageID, memberID)
	}
	m, err := s.store.GetMember(ctx, imageID, memberID)
	if errors.Is(err, ErrNotFound) {
		return nil, memberNotFound(imageID, memberID)
	}
	return m, err
}

// UpdateMember sets a membership status; only the member may.
func (s *Service) UpdateMember(ctx context.Context, imageID, memberID, status string) (*Member, error) {
	c := callerOf(ctx)
	img, _, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	if status != MemberPending && status != MemberAccepted && status != MemberRejected {
		return nil, apiutil.BadRequest("Provided object does not match schema 'member': '%s' is not one of ['pending', 'accepted', 'rejected']", status)
	}
	m, err := s.store.GetMember(ctx, imageID, memberID)
	if errors.Is(err, ErrNotFound) {
		return nil, memberNotFound(imageID, memberID)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(c, ruleModifyMember, target(img, memberID)); err != nil {
		return nil, err
	}
	m.Status = status
	m.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateMember(ctx, m); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, memberNotFound(imageID, memberID)
		}
		return nil, err
	}
	return m, nil
}

// DeleteMember stops sharing an image with a project.
func (s *Service) DeleteMember(ctx context.Context, imageID, memberID string) error {
	c := callerOf(ctx)
	img, isMember, err := s.sharedImage(ctx, c, imageID)
	if err != nil {
		return err
	}
	if err := s.authorize(c, ruleDeleteMember, s.memberTarget(img, c, isMember)); err != nil {
		return err
	}
	err = s.store.DeleteMember(ctx, imageID, memberID)
	if errors.Is(err, ErrNotFound) {
		return memberNotFound(imageID, memberID)
	}
	return err
}
