package volume

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// More rules (Cinder's names).
const (
	ruleRetype          = "volume:retype"
	ruleReserve         = "volume_extension:volume_actions:reserve"
	ruleSnapForceDelete = "volume_extension:snapshot_admin_actions:force_delete"
	ruleSnapUpdateState = "snapshot_extension:snapshot_actions:update_snapshot_status"
	rulePools           = "scheduler_extension:scheduler_stats:get_pools"
)

func moreRules() []policy.Rule {
	const (
		admin  = "role:admin"
		member = "role:admin or (role:member and project_id:%(project_id)s)"
	)
	return []policy.Rule{
		{Name: ruleRetype, Check: member, Description: "Change a volume's type."},
		{Name: ruleReserve, Check: member, Description: "Reserve or unreserve a volume (pre-3.27 attach flow)."},
		{Name: ruleSnapForceDelete, Check: admin, Description: "Force-delete a snapshot."},
		{Name: ruleSnapUpdateState, Check: member, Description: "Update a snapshot's status (assisted snapshots)."},
		{Name: rulePools, Check: admin, Description: "List the backend pools and their capacities."},
		{Name: ruleReimage, Check: member, Description: "Re-image an available or error volume (os-reimage)."},
		{Name: ruleReimageReserved, Check: member, Description: "Re-image a reserved volume (os-reimage with reimage_reserved)."},
	}
}

// Retype changes a volume's type when its backend satisfies the new one
// (Kumo does not migrate volumes between backends).
func (s *Service) Retype(ctx context.Context, id, newType string) error {
	c := callerOf(ctx)
	if _, err := s.load(ctx, c, id, ruleRetype); err != nil {
		return err
	}
	t, err := s.resolveType(ctx, c, newType)
	if err != nil {
		return err
	}
	_, err = s.store.UpdateVolume(ctx, id, func(_ *sql.Tx, v *Volume) error {
		if v.Status != StatusAvailable && v.Status != StatusInUse {
			return apiutil.BadRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", id, v.Status)
		}
		if want := t.ExtraSpecs["volume_backend_name"]; want != "" && want != v.Backend() {
			return apiutil.BadRequest("Invalid volume: Retype to %s needs a migration to backend %s, which is not supported.", t.Name, want)
		}
		if len(v.Attachments) > 1 && !specTrue(t.ExtraSpecs["multiattach"]) {
			return apiutil.BadRequest("Invalid volume: Volume %s has several attachments; the new type must allow multiattach.", id)
		}
		v.TypeID, v.TypeName = t.ID, t.Name
		v.Multiattach = specTrue(t.ExtraSpecs["multiattach"])
		v.UpdatedAt = s.now().UTC()
		return nil
	})
	return err
}

// Reserve marks an available volume attaching (os-reserve); Unreserve
// undoes it.
func (s *Service) Reserve(ctx context.Context, id string, reserve bool) error {
	_, err := s.change(ctx, id, ruleReserve, func(v *Volume) error {
		if reserve {
			if v.Status != StatusAvailable {
				return apiutil.BadRequest("Invalid volume: Volume %s status must be available to reserve, but the current status is %s.", id, v.Status)
			}
			v.Status = StatusAttaching
			return nil
		}
		if v.Status == StatusAttaching && len(v.Attachments) == 0 {
			v.Status = StatusAvailable
		}
		return nil
	})
	return err
}

// ForceDeleteSnapshot deletes a snapshot in any status but deleting.
func (s *Service) ForceDeleteSnapshot(ctx context.Context, id string) error {
	c := callerOf(ctx)
	if _, err := s.loadSnapshot(ctx, c, id, ruleSnapForceDelete); err != nil {
		return err
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(_ *sql.Tx, sn *Snapshot) error {
		if sn.Status == SnapDeleting && sn.Task != nil {
			return apiutil.BadRequest("Invalid snapshot: Snapshot %s is already being deleted.", id)
		}
		sn.Status, sn.Task, sn.UpdatedAt = SnapDeleting, &Task{Op: "delete"}, s.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	s.kickSnapshot(id)
	return nil
}

// UpdateSnapshotStatus is os-update_snapshot_status: creating may become
// available or error, deleting may become error_deleting.
func (s *Service) UpdateSnapshotStatus(ctx context.Context, id, status, progress string) error {
	c := callerOf(ctx)
	if _, err := s.loadSnapshot(ctx, c, id, ruleSnapUpdateState); err != nil {
		return err
	}
	allowed := map[string][]string{
		SnapCreating: {SnapCreating, SnapAvailable, SnapError},
		SnapDeleting: {SnapDeleting, SnapErrorDeleting},
	}
	_, err := s.store.UpdateSnapshot(ctx, id, func(_ *sql.Tx, sn *Snapshot) error {
		if !slices.Contains(allowed[sn.Status], status) {
			return apiutil.BadRequest("Invalid input received: Provided snapshot status %s not allowed for snapshot with status %s.", status, sn.Status)
		}
		sn.Status, sn.Task = status, nil
		if progress != "" {
			sn.Progress = progress
		}
		sn.UpdatedAt = s.now().UTC()
		return nil
	})
	return err
}

// Pool is one backend pool as scheduler-stats shows it.
type Pool struct {
	Name         string
	Capabilities map[string]any
}

// Pools lists the backends with their capacities.
func (s *Service) Pools(ctx context.Context) ([]Pool, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, rulePools, c.project); err != nil {
		return nil, err
	}
	var out []Pool
	for _, b := range s.cfg.Backends {
		capa, err := b.Capacity(ctx)
		if err != nil {
			return nil, errors.Join(errors.New("backend "+b.Name()), err)
		}
		prov, err := s.store.ProvisionedGB(ctx, s.hostOf(b))
		if err != nil {
			return nil, err
		}
		out = append(out, Pool{Name: s.hostOf(b), Capabilities: map[string]any{
			"volume_backend_name": b.Name(), "pool_name": b.Name(), "driver_version": "1.0", "vendor_name": "Kumo",
			"storage_protocol": "local", "total_capacity_gb": capa.TotalGB, "free_capacity_gb": capa.FreeGB,
			"allocated_capacity_gb": prov, "provisioned_capacity_gb": prov, "reserved_percentage": 0,
			"thin_provisioning_support": capa.Thin, "thick_provisioning_support": !capa.Thin,
			"max_over_subscription_ratio": s.cfg.OverSubscription, "multiattach": true,
			"timestamp": s.now().UTC().Format(wireTime),
		}})
	}
	return out, nil
}
