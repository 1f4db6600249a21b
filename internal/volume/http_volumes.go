package volume

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

const wireTime = "2006-01-02T15:04:05.000000"

func wt(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(wireTime)
}

func np(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func links(r *http.Request, project, coll, id string) []apiutil.Link {
	return []apiutil.Link{
		{Rel: "self", Href: base(r, project) + "/" + coll + "/" + id},
		{Rel: "bookmark", Href: strings.Replace(base(r, project), "/v3/", "/", 1) + "/" + coll + "/" + id},
	}
}

func (s *Service) volumeView(r *http.Request, v *Volume, detail bool) map[string]any {
	out := map[string]any{"id": v.ID, "name": np(v.Name), "links": links(r, v.ProjectID, "volumes", v.ID)}
	if !detail {
		return out
	}
	c := callerOf(r.Context())
	atts := []any{}
	for _, a := range v.Attachments {
		if a.Status != AttachAttached {
			continue
		}
		atts = append(atts, map[string]any{
			"id": v.ID, "attachment_id": a.ID, "volume_id": v.ID, "server_id": np(a.InstanceUUID),
			"host_name": np(a.Host), "device": np(a.Mountpoint), "attached_at": wt(a.AttachTime),
		})
	}
	bootable := "false"
	if v.Bootable {
		bootable = "true"
	}
	md := v.Metadata
	if md == nil {
		md = map[string]string{}
	}
	if ro, ok := v.AdminMeta["readonly"]; ok {
		md2 := make(map[string]string, len(md)+1)
		for k, x := range md {
			md2[k] = x
		}
		md2["readonly"] = ro
		md = md2
	}
	for k, val := range map[string]any{
		"attachments": atts, "availability_zone": v.Zone, "bootable": bootable, "consistencygroup_id": nil,
		"created_at": wt(v.CreatedAt), "updated_at": wt(v.UpdatedAt), "description": np(v.Description), "encrypted": false,
		"metadata": md, "migration_status": nil, "multiattach": v.Multiattach, "replication_status": nil,
		"size": v.Size, "snapshot_id": np(v.SnapshotID), "source_volid": np(v.SourceVolID), "status": v.Status,
		"user_id": v.UserID, "volume_type": v.TypeName,
	} {
		out[k] = val
	}
	if len(v.ImageMeta) > 0 {
		out["volume_image_metadata"] = v.ImageMeta
	}
	if s.can(c, ruleTenantAttr, v.ProjectID) {
		out["os-vol-tenant-attr:tenant_id"] = v.ProjectID
	}
	if s.can(c, ruleHostAttr, v.ProjectID) {
		out["os-vol-host-attr:host"] = np(v.Host)
		out["os-vol-mig-status-attr:migstat"] = nil
		out["os-vol-mig-status-attr:name_id"] = nil
	}
	if atLeast(r, 13) {
		out["group_id"] = nil
	}
	if atLeast(r, 21) {
		out["provider_id"] = nil
	}
	if atLeast(r, 48) {
		out["shared_targets"] = false
		out["service_uuid"] = nil
	}
	return out
}

// pageQuery reads limit, marker, offset and the sort options.
func pageQuery(q url.Values, valid map[string]string) (limit, offset int, marker string, sorts []SortKey, err error) {
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return 0, 0, "", nil, apiutil.BadRequest("Invalid input received: limit must be a non-negative integer.")
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, "", nil, apiutil.BadRequest("Invalid input received: offset must be a non-negative integer.")
		}
	}
	marker = q.Get("marker")
	var keys, dirs []string
	if v := q.Get("sort"); v != "" {
		for _, part := range strings.Split(v, ",") {
			k, d, _ := strings.Cut(strings.TrimSpace(part), ":")
			keys, dirs = append(keys, k), append(dirs, d)
		}
	} else if v := q.Get("sort_key"); v != "" {
		keys = strings.Split(v, ",")
		if d := q.Get("sort_dir"); d != "" {
			dirs = strings.Split(d, ",")
		}
	} else if d := q.Get("sort_dir"); d != "" {
		keys, dirs = []string{"created_at"}, []string{d}
	}
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "display_name" {
			k = "name"
		}
		if _, ok := valid[k]; !ok {
			return 0, 0, "", nil, apiutil.BadRequest("Invalid input received: Invalid sort key %s.", k)
		}
		d := "desc"
		if i < len(dirs) && dirs[i] != "" {
			d = strings.ToLower(strings.TrimSpace(dirs[i]))
		}
		if d != "asc" && d != "desc" {
			return 0, 0, "", nil, apiutil.BadRequest("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'.")
		}
		sorts = append(sorts, SortKey{Key: k, Desc: d == "desc"})
	}
	if len(sorts) == 0 {
		sorts = []SortKey{{Key: "created_at", Desc: true}}
	}
	return limit, offset, marker, sorts, nil
}

func boolParam(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "t", "on", "y":
		return true, nil
	case "false", "0", "no", "f", "off", "n":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", v)
}

// parseMetaFilter reads Cinder's metadata filter, a dict literal such
// as {"k":"v"} or {'k':'v'}.
func parseMetaFilter(v string) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(v), &m); err == nil {
		return m, nil
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(v, "'", `"`)), &m); err != nil {
		return nil, apiutil.BadRequest("Invalid input received: metadata filter %q is not a dictionary.", v)
	}
	return m, nil
}

func (s *Service) listVolumes(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		q := r.URL.Query()
		limit, offset, marker, sorts, err := pageQuery(q, volumeSort)
		if err != nil {
			return nil, err
		}
		vq := VolumeQuery{Sort: sorts, Limit: limit, Offset: offset}
		if v := q.Get("all_tenants"); v != "" {
			vq.AllProjects, _ = boolParam(v)
			if v == "" {
				vq.AllProjects = true
			}
		}
		if q.Has("all_tenants") && q.Get("all_tenants") == "" {
			vq.AllProjects = true
		}
		if v := q.Get("project_id"); v != "" && vq.AllProjects {
			vq.Project = v
		}
		str := func(k string) *string {
			if q.Has(k) {
				v := q.Get(k)
				return &v
			}
			return nil
		}
		vq.Name = str("name")
		if vq.Name == nil {
			vq.Name = str("display_name")
		}
		vq.Status, vq.Zone = str("status"), str("availability_zone")
		if v := q.Get("bootable"); v != "" {
			b, err := boolParam(v)
			if err != nil {
				return nil, apiutil.BadRequest("Invalid input received: bootable must be a boolean.")
			}
			vq.Bootable = &b
		}
		if v := q.Get("volume_type"); v != "" {
			t, err := s.GetType(r.Context(), v)
			if err != nil {
				return apiutil.JSON(200, map[string]any{"volumes": []any{}}), nil
			}
			vq.TypeID = &t.ID
		}
		if v := q.Get("metadata"); v != "" {
			if vq.Metadata, err = parseMetaFilter(v); err != nil {
				return nil, err
			}
		}
		vs, more, err := s.List(r.Context(), vq, marker)
		if err != nil {
			return nil, err
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = s.volumeView(r, v, detail)
		}
		body := map[string]any{"volumes": list}
		if more && len(vs) > 0 {
			body["volumes_links"] = []apiutil.Link{nextLink(r, vs[len(vs)-1].ID)}
		}
		if atLeast(r, 45) && q.Has("with_count") {
			if wc, _ := boolParam(q.Get("with_count")); wc {
				vq.Limit, vq.Offset = 0, 0
				all, _, err := s.List(r.Context(), vq, "")
				if err != nil {
					return nil, err
				}
				body["count"] = len(all)
			}
		}
		return apiutil.JSON(200, body), nil
	}
}

func nextLink(r *http.Request, marker string) apiutil.Link {
	q := r.URL.Query()
	q.Set("marker", marker)
	project, _ := r.Context().Value(projectKey{}).(string)
	p := Prefix + "/v3"
	if project != "" {
		p += "/" + project
	}
	return apiutil.Link{Rel: "next", Href: apiutil.PublicURL(r) + p + r.URL.Path + "?" + q.Encode()}
}

// flexInt reads an int given as a number or a numeric string.
func flexInt(raw json.RawMessage, field string) (int, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, true, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. It must be an integer.", field, raw)
		}
		n = json.Number(strings.TrimSpace(s))
	}
	i, err := strconv.Atoi(string(n))
	if err != nil {
		return 0, true, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. It must be an integer.", field, raw)
	}
	return i, true, nil
}

func checkMeta(md map[string]string) error {
	for k, v := range md {
		if k == "" || len(k) > 255 {
			return apiutil.BadRequest("Invalid input for field/attribute metadata. Metadata property key must be 1-255 characters.")
		}
		if len(v) > 255 {
			return apiutil.BadRequest("Invalid input for field/attribute metadata. Metadata property value must be at most 255 characters.")
		}
	}
	return nil
}

func (s *Service) createVolume(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Volume *struct {
			Size             json.RawMessage   `json:"size"`
			Name             *string           `json:"name"`
			DisplayName      *string           `json:"display_name"`
			Description      *string           `json:"description"`
			DisplayDesc      *string           `json:"display_description"`
			VolumeType       *string           `json:"volume_type"`
			AvailabilityZone *string           `json:"availability_zone"`
			SnapshotID       *string           `json:"snapshot_id"`
			SourceVolID      *string           `json:"source_volid"`
			ImageRef         *string           `json:"imageRef"`
			ImageID          *string           `json:"image_id"`
			BackupID         *string           `json:"backup_id"`
			Metadata         map[string]string `json:"metadata"`
			Multiattach      *bool             `json:"multiattach"`
			GroupID          *string           `json:"group_id"`
		} `json:"volume"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	v := body.Volume
	if v == nil {
		return nil, apiutil.BadRequest("Missing required element 'volume' in request body.")
	}
	size, has, err := flexInt(v.Size, "size")
	if err != nil {
		return nil, err
	}
	if has && size <= 0 {
		return nil, apiutil.BadRequest("Invalid input received: Volume size '%s' must be an integer and greater than 0.", v.Size)
	}
	if v.BackupID != nil && *v.BackupID != "" {
		return nil, apiutil.BadRequest("Invalid input received: Backups are not supported by this deployment.")
	}
	if err := checkMeta(v.Metadata); err != nil {
		return nil, err
	}
	req := CreateRequest{Size: size, Name: v.Name, Description: v.Description, Metadata: v.Metadata,
		Type: deref(v.VolumeType), Zone: deref(v.AvailabilityZone), SnapshotID: deref(v.SnapshotID),
		SourceVolID: deref(v.SourceVolID), ImageID: deref(v.ImageRef)}
	if req.Name == nil {
		req.Name = v.DisplayName
	}
	if req.Description == nil {
		req.Description = v.DisplayDesc
	}
	if req.ImageID == "" {
		req.ImageID = deref(v.ImageID)
	}
	if v.Multiattach != nil {
		req.Multiattach = *v.Multiattach
	}
	if req.Name != nil && len(*req.Name) > 255 {
		return nil, apiutil.BadRequest("Invalid input for field/attribute name. Name has more than 255 characters.")
	}
	if !has && req.SnapshotID == "" && req.SourceVolID == "" {
		return nil, apiutil.BadRequest("Invalid input received: Volume size '%s' must be an integer and greater than 0.", "None")
	}
	vol, err := s.Create(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusAccepted, map[string]any{"volume": s.volumeView(r, vol, true)}), nil
}

func (s *Service) showVolume(r *http.Request) (*apiutil.Response, error) {
	v, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"volume": s.volumeView(r, v, true)}), nil
}

func (s *Service) updateVolume(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Volume map[string]json.RawMessage `json:"volume"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if body.Volume == nil {
		return nil, apiutil.BadRequest("Missing required element 'volume' in request body.")
	}
	var req UpdateRequest
	for k, raw := range body.Volume {
		switch k {
		case "name", "display_name", "description", "display_description":
			var p *string
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, apiutil.BadRequest("Invalid input for field/attribute %s.", k)
			}
			if k == "name" || k == "display_name" {
				req.Name, req.SetName = p, true
			} else {
				req.Description, req.SetDesc = p, true
			}
		case "metadata":
			if err := json.Unmarshal(raw, &req.Metadata); err != nil || req.Metadata == nil {
				return nil, apiutil.BadRequest("Invalid input for field/attribute metadata.")
			}
			if err := checkMeta(req.Metadata); err != nil {
				return nil, err
			}
		default:
			return nil, apiutil.BadRequest("Invalid input for field/attribute volume. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	v, err := s.Update(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"volume": s.volumeView(r, v, true)}), nil
}

func (s *Service) deleteVolume(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	cascade, _ := boolParam(q.Get("cascade"))
	force, _ := boolParam(q.Get("force"))
	if err := s.Delete(r.Context(), r.PathValue("id"), cascade, force); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: http.StatusAccepted}, nil
}

func (s *Service) volumeAction(r *http.Request) (*apiutil.Response, error) {
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if len(body) != 1 {
		return nil, apiutil.BadRequest("There is either no action or more than one action in the request body.")
	}
	ctx, id := r.Context(), r.PathValue("id")
	for action, raw := range body {
		arg := func(v any) error {
			if err := json.Unmarshal(raw, v); err != nil {
				return apiutil.BadRequest("Invalid input for %s: %v", action, strings.TrimPrefix(err.Error(), "json: "))
			}
			return nil
		}
		switch action {
		case "os-extend":
			var a struct {
				NewSize json.RawMessage `json:"new_size"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			n, has, err := flexInt(a.NewSize, "new_size")
			if err != nil {
				return nil, err
			}
			if !has || n <= 0 {
				return nil, apiutil.BadRequest("Invalid input for field/attribute new_size. It must be an integer greater than 0.")
			}
			return &apiutil.Response{Status: 202}, s.Extend(ctx, id, n)
		case "os-set_image_metadata":
			var a struct {
				Metadata map[string]string `json:"metadata"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			if a.Metadata == nil {
				return nil, apiutil.BadRequest("Malformed request body: metadata is required.")
			}
			md, err := s.SetImageMetadata(ctx, id, a.Metadata)
			if err != nil {
				return nil, err
			}
			return apiutil.JSON(200, map[string]any{"metadata": md}), nil
		case "os-unset_image_metadata":
			var a struct {
				Key string `json:"key"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			return &apiutil.Response{Status: 200}, s.UnsetImageMetadata(ctx, id, a.Key)
		case "os-show_image_metadata":
			v, err := s.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			return apiutil.JSON(200, map[string]any{"metadata": v.ImageMeta}), nil
		case "os-set_bootable":
			var a struct {
				Bootable any `json:"bootable"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			b, ok := a.Bootable.(bool)
			if s, isStr := a.Bootable.(string); isStr {
				var err error
				b, err = boolParam(s)
				ok = err == nil
			}
			if !ok {
				return nil, apiutil.BadRequest("Invalid input for field/attribute bootable. Value: %v. It must be a boolean.", a.Bootable)
			}
			return &apiutil.Response{Status: 200}, s.SetBootable(ctx, id, b)
		case "os-update_readonly_flag":
			var a struct {
				Readonly *bool `json:"readonly"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			if a.Readonly == nil {
				return nil, apiutil.BadRequest("Invalid input for field/attribute readonly. It must be a boolean.")
			}
			return &apiutil.Response{Status: 202}, s.SetReadonly(ctx, id, *a.Readonly)
		case "os-reset_status":
			var a struct {
				Status       string `json:"status"`
				AttachStatus string `json:"attach_status"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			if a.Status == "" && a.AttachStatus == "" {
				return nil, apiutil.BadRequest("Invalid input received: Must specify 'status', 'attach_status' or 'migration_status' for update.")
			}
			return &apiutil.Response{Status: 202}, s.ResetStatus(ctx, id, a.Status, a.AttachStatus)
		case "os-force_delete":
			return &apiutil.Response{Status: 202}, s.Delete(ctx, id, false, true)
		case "os-attach":
			// The legacy attach flow (before attachments, 3.27): reserve and
			// complete in one call, for an instance or a host.
			var a struct {
				InstanceUUID string `json:"instance_uuid"`
				HostName     string `json:"host_name"`
				Mountpoint   string `json:"mountpoint"`
				Mode         string `json:"mode"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			if a.Mountpoint == "" {
				return nil, apiutil.BadRequest("Invalid input for field/attribute mountpoint. Value: None. None is not of type 'string'")
			}
			if (a.InstanceUUID == "") == (a.HostName == "") {
				return nil, apiutil.BadRequest("Invalid request to attach volume to an invalid target")
			}
			req := AttachRequest{VolumeID: id, InstanceUUID: a.InstanceUUID, Mode: a.Mode, Mountpoint: &a.Mountpoint}
			if a.HostName != "" {
				req.Connector = map[string]any{"host": a.HostName, "mountpoint": a.Mountpoint}
			}
			att, _, _, err := s.CreateAttachment(ctx, req)
			if err != nil {
				return nil, err
			}
			if err := s.CompleteAttachment(ctx, att.ID, a.Mountpoint); err != nil {
				_, _ = s.DeleteAttachment(ctx, att.ID)
				return nil, err
			}
			return &apiutil.Response{Status: 202}, nil
		case "os-detach":
			var a struct {
				AttachmentID string `json:"attachment_id"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			v, err := s.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			if a.AttachmentID == "" {
				if len(v.Attachments) != 1 {
					return nil, apiutil.BadRequest("Invalid volume: Volume %s has %d attachments: attachment_id is needed.", id, len(v.Attachments))
				}
				a.AttachmentID = v.Attachments[0].ID
			} else if !slices.ContainsFunc(v.Attachments, func(x *Attachment) bool { return x.ID == a.AttachmentID }) {
				return nil, attachmentNotFound(a.AttachmentID)
			}
			_, err = s.DeleteAttachment(ctx, a.AttachmentID)
			return &apiutil.Response{Status: 202}, err
		case "os-reserve", "os-unreserve":
			return &apiutil.Response{Status: 202}, s.Reserve(ctx, id, action == "os-reserve")
		case "os-retype":
			var a struct {
				NewType string `json:"new_type"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			if a.NewType == "" {
				return nil, apiutil.BadRequest("Invalid input for field/attribute new_type.")
			}
			return &apiutil.Response{Status: 202}, s.Retype(ctx, id, a.NewType)
		case "os-volume_upload_image":
			var a struct {
				ImageName       string `json:"image_name"`
				Force           any    `json:"force"`
				DiskFormat      string `json:"disk_format"`
				ContainerFormat string `json:"container_format"`
				Visibility      string `json:"visibility"`
				Protected       bool   `json:"protected"`
			}
			if err := arg(&a); err != nil {
				return nil, err
			}
			if a.ImageName == "" {
				return nil, apiutil.BadRequest("Invalid input for field/attribute image_name.")
			}
			force := false
			switch f := a.Force.(type) {
			case bool:
				force = f
			case string:
				force, _ = boolParam(f)
			}
			v, imgID, err := s.UploadImage(ctx, id, UploadRequest{ImageName: a.ImageName, DiskFormat: a.DiskFormat,
				ContainerFormat: a.ContainerFormat, Visibility: a.Visibility, Protected: a.Protected, Force: force})
			if err != nil {
				return nil, err
			}
			t, _ := s.store.GetType(ctx, nil, v.TypeID, false)
			var tv any
			if t != nil {
				tv = s.typeView(r, t)
			}
			df, cf := a.DiskFormat, a.ContainerFormat
			if df == "" {
				df = "raw"
			}
			if cf == "" {
				cf = "bare"
			}
			return apiutil.JSON(202, map[string]any{"os-volume_upload_image": map[string]any{
				"id": v.ID, "updated_at": wt(v.UpdatedAt), "status": v.Status, "display_description": np(v.Description),
				"size": v.Size, "volume_type": tv, "image_id": imgID, "container_format": cf, "disk_format": df,
				"image_name": a.ImageName, "visibility": a.Visibility, "protected": a.Protected,
			}}), nil
		}
		return nil, apiutil.BadRequest("There is no such action: %s", action)
	}
	return nil, nil
}

func (s *Service) getVolumeMetadata(r *http.Request) (*apiutil.Response, error) {
	v, err := s.load(r.Context(), callerOf(r.Context()), r.PathValue("id"), ruleGetMetadata)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"metadata": v.Metadata}), nil
}

func (s *Service) setVolumeMetadata(replace bool) apiutil.Handler {
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
		md, err := s.SetMetadata(r.Context(), r.PathValue("id"), body.Metadata, replace)
		if err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"metadata": md}), nil
	}
}

func (s *Service) getVolumeMetadataKey(r *http.Request) (*apiutil.Response, error) {
	v, err := s.load(r.Context(), callerOf(r.Context()), r.PathValue("id"), ruleGetMetadata)
	if err != nil {
		return nil, err
	}
	val, ok := v.Metadata[r.PathValue("key")]
	if !ok {
		return nil, apiutil.NotFound("Metadata item was not found")
	}
	return apiutil.JSON(200, map[string]any{"meta": map[string]string{r.PathValue("key"): val}}), nil
}

func (s *Service) putVolumeMetadataKey(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	key := r.PathValue("key")
	if len(body.Meta) != 1 {
		return nil, apiutil.BadRequest("Request body contains too many items.")
	}
	if _, ok := body.Meta[key]; !ok {
		return nil, apiutil.BadRequest("Request body and URI mismatch")
	}
	if err := checkMeta(body.Meta); err != nil {
		return nil, err
	}
	if _, err := s.SetMetadata(r.Context(), r.PathValue("id"), body.Meta, false); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"meta": body.Meta}), nil
}

func (s *Service) deleteVolumeMetadataKey(r *http.Request) (*apiutil.Response, error) {
	if err := s.DeleteMetadata(r.Context(), r.PathValue("id"), r.PathValue("key")); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 200}, nil
}
