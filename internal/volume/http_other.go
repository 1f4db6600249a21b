package volume

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// ---- snapshots ----

func (s *Service) snapshotView(r *http.Request, sn *Snapshot, detail bool) map[string]any {
	out := map[string]any{"id": sn.ID, "name": np(sn.Name), "description": np(sn.Description), "status": sn.Status,
		"size": sn.Size, "volume_id": sn.VolumeID, "created_at": wt(sn.CreatedAt), "updated_at": wt(sn.UpdatedAt),
		"metadata": sn.Metadata}
	if detail {
		out["os-extended-snapshot-attributes:progress"] = sn.Progress
		out["os-extended-snapshot-attributes:project_id"] = sn.ProjectID
	}
	if atLeast(r, 14) {
		out["group_snapshot_id"] = nil
	}
	if atLeast(r, 41) {
		out["user_id"] = sn.UserID
	}
	return out
}

func (s *Service) listSnapshots(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		q := r.URL.Query()
		limit, offset, marker, sorts, err := pageQuery(q, snapSort)
		if err != nil {
			return nil, err
		}
		sq := SnapshotQuery{Sort: sorts, Limit: limit, Offset: offset}
		if q.Has("all_tenants") {
			sq.AllProjects = true
			if v := q.Get("all_tenants"); v != "" {
				sq.AllProjects, _ = boolParam(v)
			}
		}
		if v := q.Get("project_id"); v != "" && sq.AllProjects {
			sq.Project = v
		}
		for k, p := range map[string]**string{"name": &sq.Name, "status": &sq.Status, "volume_id": &sq.VolumeID} {
			if q.Has(k) {
				v := q.Get(k)
				*p = &v
			}
		}
		list, more, err := s.ListSnapshots(r.Context(), sq, marker)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(list))
		for i, sn := range list {
			out[i] = s.snapshotView(r, sn, detail)
		}
		body := map[string]any{"snapshots": out}
		if more && len(list) > 0 {
			body["snapshots_links"] = []apiutil.Link{nextLink(r, list[len(list)-1].ID)}
		}
		return apiutil.JSON(200, body), nil
	}
}

func (s *Service) createSnapshot(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Snapshot *struct {
			VolumeID    string            `json:"volume_id"`
			Name        *string           `json:"name"`
			DisplayName *string           `json:"display_name"`
			Description *string           `json:"description"`
			Force       any               `json:"force"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"snapshot"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	b := body.Snapshot
	if b == nil {
		return nil, apiutil.BadRequest("Missing required element 'snapshot' in request body.")
	}
	if b.VolumeID == "" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute volume_id.")
	}
	force := false
	switch f := b.Force.(type) {
	case bool:
		force = f
	case string:
		var err error
		if force, err = boolParam(f); err != nil {
			return nil, apiutil.BadRequest("Invalid value '%s' for force.", f)
		}
	case nil:
	default:
		return nil, apiutil.BadRequest("Invalid value for force.")
	}
	if err := checkMeta(b.Metadata); err != nil {
		return nil, err
	}
	name := b.Name
	if name == nil {
		name = b.DisplayName
	}
	sn, err := s.CreateSnapshot(r.Context(), SnapshotRequest{VolumeID: b.VolumeID, Name: name, Description: b.Description,
		Force: force, Metadata: b.Metadata})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(202, map[string]any{"snapshot": s.snapshotView(r, sn, true)}), nil
}

func (s *Service) showSnapshot(r *http.Request) (*apiutil.Response, error) {
	sn, err := s.GetSnapshot(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"snapshot": s.snapshotView(r, sn, true)}), nil
}

func (s *Service) updateSnapshot(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Snapshot map[string]*string `json:"snapshot"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.Snapshot == nil {
		return nil, apiutil.BadRequest("Missing required element 'snapshot' in request body.")
	}
	var req UpdateRequest
	for k, v := range body.Snapshot {
		switch k {
		case "name", "display_name":
			req.Name, req.SetName = v, true
		case "description", "display_description":
			req.Description, req.SetDesc = v, true
		default:
			return nil, apiutil.BadRequest("Invalid input for field/attribute snapshot. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	sn, err := s.UpdateSnapshot(r.Context(), r.PathValue("id"), req, false)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"snapshot": s.snapshotView(r, sn, true)}), nil
}

func (s *Service) deleteSnapshot(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 202}, s.DeleteSnapshot(r.Context(), r.PathValue("id"))
}

func (s *Service) snapshotAction(r *http.Request) (*apiutil.Response, error) {
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if len(body) != 1 {
		return nil, apiutil.BadRequest("There is either no action or more than one action in the request body.")
	}
	var a struct {
		Status   string `json:"status"`
		Progress string `json:"progress"`
	}
	for action, raw := range body {
		if action != "os-force_delete" {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, apiutil.BadRequest("Malformed request body")
			}
		}
		switch action {
		case "os-reset_status":
			return &apiutil.Response{Status: 202}, s.ResetSnapshotStatus(r.Context(), r.PathValue("id"), a.Status)
		case "os-update_snapshot_status":
			return &apiutil.Response{Status: 202}, s.UpdateSnapshotStatus(r.Context(), r.PathValue("id"), a.Status, a.Progress)
		case "os-force_delete":
			return &apiutil.Response{Status: 202}, s.ForceDeleteSnapshot(r.Context(), r.PathValue("id"))
		}
		return nil, apiutil.BadRequest("There is no such action: %s", action)
	}
	return nil, nil
}

func (s *Service) getSnapshotMetadata(r *http.Request) (*apiutil.Response, error) {
	sn, err := s.GetSnapshot(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"metadata": sn.Metadata}), nil
}

func (s *Service) setSnapshotMetadata(replace bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		var body struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := decode(r, &body); err != nil {
			return nil, err
		}
		if body.Metadata == nil {
			return nil, apiutil.BadRequest("Malformed request body")
		}
		if err := checkMeta(body.Metadata); err != nil {
			return nil, err
		}
		sn, err := s.UpdateSnapshot(r.Context(), r.PathValue("id"), UpdateRequest{Metadata: body.Metadata}, replace)
		if err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"metadata": sn.Metadata}), nil
	}
}

func (s *Service) getSnapshotMetadataKey(r *http.Request) (*apiutil.Response, error) {
	sn, err := s.GetSnapshot(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v, ok := sn.Metadata[r.PathValue("key")]
	if !ok {
		return nil, apiutil.NotFound("Metadata item was not found")
	}
	return apiutil.JSON(200, map[string]any{"meta": map[string]string{r.PathValue("key"): v}}), nil
}

func (s *Service) putSnapshotMetadataKey(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if _, ok := body.Meta[r.PathValue("key")]; !ok || len(body.Meta) != 1 {
		return nil, apiutil.BadRequest("Request body and URI mismatch")
	}
	if _, err := s.UpdateSnapshot(r.Context(), r.PathValue("id"), UpdateRequest{Metadata: body.Meta}, false); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"meta": body.Meta}), nil
}

func (s *Service) deleteSnapshotMetadataKey(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 200}, s.DeleteSnapshotMetadata(r.Context(), r.PathValue("id"), r.PathValue("key"))
}

// ---- types ----

func (s *Service) typeView(r *http.Request, t *VolumeType) map[string]any {
	out := map[string]any{"id": t.ID, "name": t.Name, "description": np(t.Description), "is_public": t.IsPublic,
		"os-volume-type-access:is_public": t.IsPublic, "qos_specs_id": nil}
	if t.QoSSpecsID != nil && s.CanSeeTypeQoS(r.Context()) {
		out["qos_specs_id"] = *t.QoSSpecsID
	}
	if s.CanSeeSpecs(r.Context()) {
		out["extra_specs"] = t.ExtraSpecs
	} else {
		// Users see the specs that matter to them, as Cinder's
		// user-visible extra specs.
		vis := map[string]string{}
		for _, k := range []string{"multiattach", "RESKEY:availability_zones", "replication_enabled"} {
			if v, ok := t.ExtraSpecs[k]; ok {
				vis[k] = v
			}
		}
		out["extra_specs"] = vis
	}
	return out
}

func (s *Service) listTypes(r *http.Request) (*apiutil.Response, error) {
	var isPublic *bool
	if v := r.URL.Query().Get("is_public"); v != "" && !strings.EqualFold(v, "none") {
		b, err := boolParam(v)
		if err != nil {
			return nil, apiutil.BadRequest("Invalid is_public filter [%s]", v)
		}
		isPublic = &b
	}
	ts, err := s.ListTypes(r.Context(), isPublic)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = s.typeView(r, t)
	}
	return apiutil.JSON(200, map[string]any{"volume_types": out}), nil
}

func (s *Service) showType(r *http.Request) (*apiutil.Response, error) {
	t, err := s.GetType(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"volume_type": s.typeView(r, t)}), nil
}

type typeBody struct {
	VolumeType *struct {
		Name        *string           `json:"name"`
		Description *string           `json:"description"`
		IsPublic    *bool             `json:"os-volume-type-access:is_public"`
		IsPublic2   *bool             `json:"is_public"`
		ExtraSpecs  map[string]string `json:"extra_specs"`
	} `json:"volume_type"`
}

func (b typeBody) request() (TypeRequest, error) {
	t := b.VolumeType
	if t == nil {
		return TypeRequest{}, apiutil.BadRequest("Missing required element 'volume_type' in request body.")
	}
	req := TypeRequest{Name: t.Name, Description: t.Description, SetDesc: t.Description != nil, IsPublic: t.IsPublic, ExtraSpecs: t.ExtraSpecs}
	if req.IsPublic == nil {
		req.IsPublic = t.IsPublic2
	}
	if t.Name != nil && len(*t.Name) > 255 {
		return req, apiutil.BadRequest("Invalid input for field/attribute name.")
	}
	return req, checkMeta(t.ExtraSpecs)
}

func (s *Service) createType(r *http.Request) (*apiutil.Response, error) {
	var body typeBody
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	req, err := body.request()
	if err != nil {
		return nil, err
	}
	t, err := s.CreateType(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"volume_type": s.typeView(r, t)}), nil
}

func (s *Service) updateType(r *http.Request) (*apiutil.Response, error) {
	var body typeBody
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	req, err := body.request()
	if err != nil {
		return nil, err
	}
	if req.Name == nil && !req.SetDesc && req.IsPublic == nil {
		return nil, apiutil.BadRequest("Specify volume type name, description, is_public or a combination thereof.")
	}
	t, err := s.UpdateType(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"volume_type": s.typeView(r, t)}), nil
}

func (s *Service) deleteType(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 202}, s.DeleteType(r.Context(), r.PathValue("id"))
}

func (s *Service) typeAction(r *http.Request) (*apiutil.Response, error) {
	var body map[string]struct {
		Project string `json:"project"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	for action, a := range body {
		if a.Project == "" {
			return nil, apiutil.BadRequest("Missing required element 'project' in request body.")
		}
		switch action {
		case "addProjectAccess":
			return &apiutil.Response{Status: 202}, s.SetTypeAccess(r.Context(), r.PathValue("id"), a.Project, true)
		case "removeProjectAccess":
			return &apiutil.Response{Status: 202}, s.SetTypeAccess(r.Context(), r.PathValue("id"), a.Project, false)
		}
		return nil, apiutil.BadRequest("There is no such action: %s", action)
	}
	return nil, apiutil.BadRequest("There is either no action or more than one action in the request body.")
}

func (s *Service) listTypeAccess(r *http.Request) (*apiutil.Response, error) {
	ps, err := s.TypeAccess(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = map[string]string{"volume_type_id": r.PathValue("id"), "project_id": p}
	}
	return apiutil.JSON(200, map[string]any{"volume_type_access": out}), nil
}

func (s *Service) specsOf(r *http.Request) (map[string]string, error) {
	c := callerOf(r.Context())
	if err := s.authorize(c, ruleTypeSpecs, c.project); err != nil {
		return nil, err
	}
	t, err := s.GetType(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return t.ExtraSpecs, nil
}

func (s *Service) listExtraSpecs(r *http.Request) (*apiutil.Response, error) {
	specs, err := s.specsOf(r)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"extra_specs": specs}), nil
}

func (s *Service) showExtraSpec(r *http.Request) (*apiutil.Response, error) {
	specs, err := s.specsOf(r)
	if err != nil {
		return nil, err
	}
	k := r.PathValue("key")
	v, ok := specs[k]
	if !ok {
		return nil, apiutil.NotFound("Volume Type %s has no extra specs with key %s.", r.PathValue("id"), k)
	}
	return apiutil.JSON(200, map[string]string{k: v}), nil
}

func (s *Service) createExtraSpecs(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.ExtraSpecs == nil {
		return nil, apiutil.BadRequest("Missing required element 'extra_specs' in request body.")
	}
	if err := checkMeta(body.ExtraSpecs); err != nil {
		return nil, err
	}
	if _, err := s.SetExtraSpecs(r.Context(), r.PathValue("id"), body.ExtraSpecs); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"extra_specs": body.ExtraSpecs}), nil
}

func (s *Service) updateExtraSpec(r *http.Request) (*apiutil.Response, error) {
	var body map[string]string
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	k := r.PathValue("key")
	if _, ok := body[k]; !ok || len(body) != 1 {
		return nil, apiutil.BadRequest("Request body and URI mismatch")
	}
	if _, err := s.SetExtraSpecs(r.Context(), r.PathValue("id"), body); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, body), nil
}

func (s *Service) deleteExtraSpec(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 202}, s.DeleteExtraSpec(r.Context(), r.PathValue("id"), r.PathValue("key"))
}

// ---- attachments ----

func attachmentView(a *Attachment, info map[string]any, detail bool) map[string]any {
	out := map[string]any{"id": a.ID, "status": a.Status, "instance": np(a.InstanceUUID), "volume_id": a.VolumeID}
	if !detail {
		return out
	}
	out["attached_at"] = wt(a.AttachTime)
	out["detached_at"] = wt(a.DetachTime)
	out["attach_mode"] = a.Mode
	if info == nil {
		info = map[string]any{}
	}
	out["connection_info"] = info
	return out
}

func (s *Service) needAttachments(r *http.Request) error {
	if !atLeast(r, 27) {
		return apiutil.NotFound("The resource could not be found.")
	}
	return nil
}

func (s *Service) listAttachments(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		if err := s.needAttachments(r); err != nil {
			return nil, err
		}
		q := r.URL.Query()
		limit, _, marker, sorts, err := pageQuery(q, map[string]string{"created_at": "", "id": ""})
		if err != nil {
			return nil, err
		}
		aq := AttachmentQuery{Limit: limit, Marker: marker, Desc: len(sorts) > 0 && sorts[0].Desc}
		if q.Has("all_tenants") {
			aq.AllProjects = true
		}
		for k, p := range map[string]**string{"volume_id": &aq.VolumeID, "instance_id": &aq.InstanceUUID, "status": &aq.Status} {
			if q.Has(k) {
				v := q.Get(k)
				*p = &v
			}
		}
		list, more, err := s.ListAttachments(r.Context(), aq)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(list))
		for i, a := range list {
			out[i] = attachmentView(a, nil, detail)
		}
		body := map[string]any{"attachments": out}
		if more && len(list) > 0 {
			body["attachments_links"] = []apiutil.Link{nextLink(r, list[len(list)-1].ID)}
		}
		return apiutil.JSON(200, body), nil
	}
}

func (s *Service) showAttachment(r *http.Request) (*apiutil.Response, error) {
	if err := s.needAttachments(r); err != nil {
		return nil, err
	}
	a, err := s.GetAttachment(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	var info map[string]any
	if a.Connector != nil {
		if v, err := s.store.GetVolume(r.Context(), nil, a.VolumeID); err == nil {
			info, _ = s.connectionInfo(r.Context(), v, a)
		}
	}
	return apiutil.JSON(200, map[string]any{"attachment": attachmentView(a, info, true)}), nil
}

func (s *Service) createAttachment(r *http.Request) (*apiutil.Response, error) {
	if err := s.needAttachments(r); err != nil {
		return nil, err
	}
	var body struct {
		Attachment *struct {
			VolumeUUID   string         `json:"volume_uuid"`
			InstanceUUID string         `json:"instance_uuid"`
			Connector    map[string]any `json:"connector"`
			Mode         string         `json:"mode"`
		} `json:"attachment"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	b := body.Attachment
	if b == nil || b.VolumeUUID == "" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute volume_uuid.")
	}
	if b.Mode != "" && !atLeast(r, 54) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute attachment. Additional properties are not allowed ('mode' was unexpected)")
	}
	a, _, info, err := s.CreateAttachment(r.Context(), AttachRequest{VolumeID: b.VolumeUUID, InstanceUUID: b.InstanceUUID,
		Connector: b.Connector, Mode: b.Mode})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"attachment": attachmentView(a, info, true)}), nil
}

func (s *Service) updateAttachment(r *http.Request) (*apiutil.Response, error) {
	if err := s.needAttachments(r); err != nil {
		return nil, err
	}
	var body struct {
		Attachment *struct {
			Connector map[string]any `json:"connector"`
		} `json:"attachment"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.Attachment == nil || body.Attachment.Connector == nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute connector.")
	}
	a, _, info, err := s.UpdateAttachment(r.Context(), r.PathValue("id"), body.Attachment.Connector)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"attachment": attachmentView(a, info, true)}), nil
}

func (s *Service) deleteAttachment(r *http.Request) (*apiutil.Response, error) {
	if err := s.needAttachments(r); err != nil {
		return nil, err
	}
	v, err := s.DeleteAttachment(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	rest := []any{}
	for _, a := range v.Attachments {
		rest = append(rest, attachmentView(a, nil, false))
	}
	return apiutil.JSON(200, map[string]any{"attachments": rest}), nil
}

func (s *Service) attachmentAction(r *http.Request) (*apiutil.Response, error) {
	if !atLeast(r, 44) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if _, ok := body["os-complete"]; !ok || len(body) != 1 {
		return nil, apiutil.BadRequest("There is either no action or more than one action in the request body.")
	}
	return &apiutil.Response{Status: 204}, s.CompleteAttachment(r.Context(), r.PathValue("id"), "")
}

// ---- quotas, limits, zones, services ----

func quotaView(qs *QuotaSet) map[string]any {
	out := map[string]any{"id": qs.Project}
	used := map[string]int64{}
	if qs.Usage != nil {
		used = map[string]int64{"volumes": qs.Usage.Volumes, "snapshots": qs.Usage.Snapshots, "gigabytes": qs.Usage.Gigabytes}
	}
	for k, limit := range qs.Limits {
		if qs.Usage != nil {
			out[k] = map[string]int64{"limit": limit, "in_use": used[k], "reserved": 0, "allocated": 0}
		} else {
			out[k] = limit
		}
	}
	return out
}

func (s *Service) showQuotas(r *http.Request) (*apiutil.Response, error) {
	usage, _ := boolParam(r.URL.Query().Get("usage"))
	qs, err := s.GetQuotas(r.Context(), r.PathValue("project"), usage)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"quota_set": quotaView(qs)}), nil
}

func (s *Service) quotaDefaults(r *http.Request) (*apiutil.Response, error) {
	qs, err := s.DefaultQuotas(r.Context(), r.PathValue("project"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"quota_set": quotaView(qs)}), nil
}

func (s *Service) updateQuotas(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.QuotaSet == nil {
		return nil, apiutil.BadRequest("Missing required element 'quota_set' in request body.")
	}
	limits := map[string]int64{}
	for k, raw := range body.QuotaSet {
		if k == "id" || k == "tenant_id" {
			continue
		}
		n, _, err := flexInt(raw, k)
		if err != nil {
			return nil, err
		}
		limits[k] = int64(n)
	}
	qs, err := s.UpdateQuotas(r.Context(), r.PathValue("project"), limits)
	if err != nil {
		return nil, err
	}
	v := quotaView(qs)
	delete(v, "id")
	return apiutil.JSON(200, map[string]any{"quota_set": v}), nil
}

func (s *Service) deleteQuotas(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 200}, s.DeleteQuotas(r.Context(), r.PathValue("project"))
}

func (s *Service) limits(r *http.Request) (*apiutil.Response, error) {
	l, u, err := s.Limits(r.Context())
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]any{
		"maxTotalVolumes": l["volumes"], "maxTotalSnapshots": l["snapshots"], "maxTotalVolumeGigabytes": l["gigabytes"],
		"maxTotalBackups": l["backups"], "maxTotalBackupGigabytes": l["backup_gigabytes"],
		"totalVolumesUsed": u.Volumes, "totalSnapshotsUsed": u.Snapshots, "totalGigabytesUsed": u.Gigabytes,
		"totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0,
	}}}), nil
}

func (s *Service) pools(r *http.Request) (*apiutil.Response, error) {
	ps, err := s.Pools(r.Context())
	if err != nil {
		return nil, err
	}
	detail, _ := boolParam(r.URL.Query().Get("detail"))
	out := make([]any, len(ps))
	for i, p := range ps {
		m := map[string]any{"name": p.Name}
		if detail {
			m["capabilities"] = p.Capabilities
		}
		out[i] = m
	}
	return apiutil.JSON(200, map[string]any{"pools": out}), nil
}

func (s *Service) zones(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(200, map[string]any{"availabilityZoneInfo": []any{
		map[string]any{"zoneName": s.Zone(), "zoneState": map[string]bool{"available": true}},
	}}), nil
}

func serviceView(si ServiceInfo) map[string]any {
	return map[string]any{"binary": si.Binary, "host": si.Host, "zone": si.Zone, "status": si.Status,
		"state": si.State, "updated_at": wt(si.UpdatedAt), "disabled_reason": np(si.DisabledReason)}
}

func (s *Service) listServices(r *http.Request) (*apiutil.Response, error) {
	all, err := s.Services(r.Context())
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	out := []any{}
	for _, si := range all {
		if h := q.Get("host"); h != "" && si.Host != h {
			continue
		}
		if b := q.Get("binary"); b != "" && si.Binary != b {
			continue
		}
		out = append(out, serviceView(si))
	}
	return apiutil.JSON(200, map[string]any{"services": out}), nil
}

func (s *Service) updateService(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Host           string  `json:"host"`
		Binary         string  `json:"binary"`
		DisabledReason *string `json:"disabled_reason"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.Host == "" || body.Binary == "" {
		return nil, apiutil.BadRequest("Missing required element 'host' or 'binary' in request body.")
	}
	var disabled bool
	switch r.PathValue("action") {
	case "enable":
		body.DisabledReason = nil
	case "disable":
		disabled = true
	case "disable-log-reason":
		disabled = true
		if body.DisabledReason == nil || *body.DisabledReason == "" {
			return nil, apiutil.BadRequest("Disabled reason contains invalid characters or is too long")
		}
	default:
		return nil, apiutil.NotFound("Unknown action")
	}
	si, err := s.SetService(r.Context(), body.Binary, body.Host, disabled, body.DisabledReason)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"host": si.Host, "binary": si.Binary, "status": si.Status,
		"disabled": disabled, "disabled_reason": np(si.DisabledReason)}), nil
}
