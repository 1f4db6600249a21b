package volume

import (
	"encoding/json"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func (s *Service) backupView(r *http.Request, b *Backup, detail bool) map[string]any {
	out := map[string]any{"id": b.ID, "name": np(b.Name), "links": links(r, b.ProjectID, "backups", b.ID)}
	if !detail {
		return out
	}
	for k, v := range map[string]any{
		"description": np(b.Description), "status": b.Status, "size": b.Size, "volume_id": b.VolumeID,
		"snapshot_id": nil, "availability_zone": s.cfg.Zone, "container": "volume-backups",
		"created_at": wt(b.CreatedAt), "updated_at": wt(b.UpdatedAt), "data_timestamp": wt(b.CreatedAt),
		"fail_reason": np(b.FailReason), "has_dependent_backups": false, "is_incremental": false, "object_count": 1,
	} {
		out[k] = v
	}
	if atLeast(r, 18) {
		out["os-backup-project-attr:project_id"] = b.ProjectID
	}
	if atLeast(r, 43) {
		out["metadata"] = map[string]string{}
	}
	if atLeast(r, 56) {
		out["user_id"] = b.UserID
	}
	return out
}

func (s *Service) listBackups(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		q := r.URL.Query()
		limit, _, marker, _, err := pageQuery(q, map[string]string{"created_at": ""})
		if err != nil {
			return nil, err
		}
		bq := BackupQuery{Limit: limit, Marker: marker, AllProjects: q.Has("all_tenants")}
		for k, p := range map[string]**string{"name": &bq.Name, "status": &bq.Status, "volume_id": &bq.VolumeID} {
			if q.Has(k) {
				v := q.Get(k)
				*p = &v
			}
		}
		list, more, err := s.ListBackups(r.Context(), bq)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(list))
		for i, b := range list {
			out[i] = s.backupView(r, b, detail)
		}
		body := map[string]any{"backups": out}
		if more && len(list) > 0 {
			body["backups_links"] = []apiutil.Link{nextLink(r, list[len(list)-1].ID)}
		}
		return apiutil.JSON(200, body), nil
	}
}

func (s *Service) createBackup(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Backup *struct {
			VolumeID    string  `json:"volume_id"`
			Name        *string `json:"name"`
			Description *string `json:"description"`
			Force       bool    `json:"force"`
			Incremental bool    `json:"incremental"`
			SnapshotID  *string `json:"snapshot_id"`
			Container   *string `json:"container"`
		} `json:"backup"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	b := body.Backup
	if b == nil || b.VolumeID == "" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute volume_id.")
	}
	if b.SnapshotID != nil && *b.SnapshotID != "" {
		return nil, apiutil.BadRequest("Invalid input received: Backups of snapshots are not supported; back up the volume.")
	}
	bk, err := s.CreateBackup(r.Context(), BackupRequest{VolumeID: b.VolumeID, Name: b.Name, Description: b.Description,
		Force: b.Force, Incremental: b.Incremental})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(202, map[string]any{"backup": s.backupView(r, bk, false)}), nil
}

func (s *Service) showBackup(r *http.Request) (*apiutil.Response, error) {
	b, err := s.GetBackup(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"backup": s.backupView(r, b, true)}), nil
}

func (s *Service) updateBackup(r *http.Request) (*apiutil.Response, error) {
	if !atLeast(r, 9) {
		return nil, &apiutil.Error{Status: 405, Message: "The method is not allowed for the requested URL.", Err: apiutil.ErrNotAllowed}
	}
	var body struct {
		Backup map[string]*string `json:"backup"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.Backup == nil {
		return nil, apiutil.BadRequest("Missing required element 'backup' in request body.")
	}
	var req UpdateRequest
	for k, v := range body.Backup {
		switch k {
		case "name":
			req.Name, req.SetName = v, true
		case "description":
			req.Description, req.SetDesc = v, true
		default:
			return nil, apiutil.BadRequest("Invalid input for field/attribute backup. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	b, err := s.UpdateBackup(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"backup": s.backupView(r, b, true)}), nil
}

func (s *Service) deleteBackup(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 202}, s.DeleteBackup(r.Context(), r.PathValue("id"), false)
}

func (s *Service) restoreBackup(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Restore *struct {
			VolumeID string  `json:"volume_id"`
			Name     *string `json:"name"`
		} `json:"restore"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.Restore == nil {
		return nil, apiutil.BadRequest("Missing required element 'restore' in request body.")
	}
	v, err := s.RestoreBackup(r.Context(), r.PathValue("id"), body.Restore.VolumeID, body.Restore.Name)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(202, map[string]any{"restore": map[string]any{
		"backup_id": r.PathValue("id"), "volume_id": v.ID, "volume_name": np(v.Name),
	}}), nil
}

func (s *Service) backupAction(r *http.Request) (*apiutil.Response, error) {
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if len(body) != 1 {
		return nil, apiutil.BadRequest("There is either no action or more than one action in the request body.")
	}
	for action, raw := range body {
		switch action {
		case "os-reset_status":
			var a struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, apiutil.BadRequest("Malformed request body")
			}
			return &apiutil.Response{Status: 202}, s.ResetBackupStatus(r.Context(), r.PathValue("id"), a.Status)
		case "os-force_delete":
			return &apiutil.Response{Status: 202}, s.DeleteBackup(r.Context(), r.PathValue("id"), true)
		}
		return nil, apiutil.BadRequest("There is no such action: %s", action)
	}
	return nil, nil
}
