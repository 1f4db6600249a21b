package volume

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
)

// Microversions is the Block Storage microversion range. The history of
// what each version changed, as far as Kumo renders it:
//
//	3.0   base
//	3.13  group_id on volumes
//	3.14  group_snapshot_id on snapshots
//	3.21  provider_id on volumes
//	3.27  the attachments API
//	3.41  user_id on snapshots
//	3.44  os-complete on attachments
//	3.45  with_count on lists
//	3.48  shared_targets and service_uuid on volumes
//	3.54  attachment mode on create
//	3.60  created_at / updated_at filters (accepted)
var Microversions = apiutil.Microversions{
	Service: "volume", Min: apiutil.Version{Major: 3, Minor: 0}, Max: apiutil.Version{Major: 3, Minor: 60},
}

// Prefix is where the API is mounted.
const Prefix = "/volume"

// topLevel are the first path segments of project-less URLs; anything
// else in that position is a project id (/v3/{project_id}/volumes).
var topLevel = map[string]bool{
	"volumes": true, "snapshots": true, "types": true, "attachments": true, "os-quota-sets": true,
	"limits": true, "os-availability-zone": true, "os-services": true, "extensions": true, "scheduler-stats": true, "backups": true,
	"qos-specs": true,
}

type projectKey struct{}

// Routes implements service.API.
func (s *Service) Routes() *apiutil.Service {
	inner := http.NewServeMux()
	type route struct {
		method, path string
		h            apiutil.Handler
	}
	table := []route{
		{"GET", "/volumes", s.listVolumes(false)},
		{"GET", "/volumes/detail", s.listVolumes(true)},
		{"POST", "/volumes", s.createVolume},
		{"GET", "/volumes/{id}", s.showVolume},
		{"PUT", "/volumes/{id}", s.updateVolume},
		{"DELETE", "/volumes/{id}", s.deleteVolume},
		{"POST", "/volumes/{id}/action", s.volumeAction},
		{"GET", "/volumes/{id}/metadata", s.getVolumeMetadata},
		{"POST", "/volumes/{id}/metadata", s.setVolumeMetadata(false)},
		{"PUT", "/volumes/{id}/metadata", s.setVolumeMetadata(true)},
		{"GET", "/volumes/{id}/metadata/{key}", s.getVolumeMetadataKey},
		{"PUT", "/volumes/{id}/metadata/{key}", s.putVolumeMetadataKey},
		{"DELETE", "/volumes/{id}/metadata/{key}", s.deleteVolumeMetadataKey},
		{"GET", "/snapshots", s.listSnapshots(false)},
		{"GET", "/snapshots/detail", s.listSnapshots(true)},
		{"POST", "/snapshots", s.createSnapshot},
		{"GET", "/snapshots/{id}", s.showSnapshot},
		{"PUT", "/snapshots/{id}", s.updateSnapshot},
		{"DELETE", "/snapshots/{id}", s.deleteSnapshot},
		{"POST", "/snapshots/{id}/action", s.snapshotAction},
		{"GET", "/snapshots/{id}/metadata", s.getSnapshotMetadata},
		{"POST", "/snapshots/{id}/metadata", s.setSnapshotMetadata(false)},
		{"PUT", "/snapshots/{id}/metadata", s.setSnapshotMetadata(true)},
		{"GET", "/snapshots/{id}/metadata/{key}", s.getSnapshotMetadataKey},
		{"PUT", "/snapshots/{id}/metadata/{key}", s.putSnapshotMetadataKey},
		{"DELETE", "/snapshots/{id}/metadata/{key}", s.deleteSnapshotMetadataKey},
		{"GET", "/types", s.listTypes},
		{"POST", "/types", s.createType},
		{"GET", "/types/{id}", s.showType},
		{"PUT", "/types/{id}", s.updateType},
		{"DELETE", "/types/{id}", s.deleteType},
		{"POST", "/types/{id}/action", s.typeAction},
		{"GET", "/types/{id}/os-volume-type-access", s.listTypeAccess},
		{"GET", "/types/{id}/extra_specs", s.listExtraSpecs},
		{"POST", "/types/{id}/extra_specs", s.createExtraSpecs},
		{"GET", "/types/{id}/extra_specs/{key}", s.showExtraSpec},
		{"PUT", "/types/{id}/extra_specs/{key}", s.updateExtraSpec},
		{"DELETE", "/types/{id}/extra_specs/{key}", s.deleteExtraSpec},
		{"GET", "/attachments", s.listAttachments(false)},
		{"GET", "/attachments/detail", s.listAttachments(true)},
		{"POST", "/attachments", s.createAttachment},
		{"GET", "/attachments/{id}", s.showAttachment},
		{"PUT", "/attachments/{id}", s.updateAttachment},
		{"DELETE", "/attachments/{id}", s.deleteAttachment},
		{"POST", "/attachments/{id}/action", s.attachmentAction},
		{"GET", "/os-quota-sets/{project}", s.showQuotas},
		{"GET", "/os-quota-sets/{project}/defaults", s.quotaDefaults},
		{"PUT", "/os-quota-sets/{project}", s.updateQuotas},
		{"DELETE", "/os-quota-sets/{project}", s.deleteQuotas},
		{"GET", "/limits", s.limits},
		{"GET", "/os-availability-zone", s.zones},
		{"GET", "/os-services", s.listServices},
		{"PUT", "/os-services/{action}", s.updateService},
		{"GET", "/extensions", s.extensions},
		{"GET", "/backups", s.listBackups(false)},
		{"GET", "/backups/detail", s.listBackups(true)},
		{"POST", "/backups", s.createBackup},
		{"GET", "/backups/{id}", s.showBackup},
		{"PUT", "/backups/{id}", s.updateBackup},
		{"DELETE", "/backups/{id}", s.deleteBackup},
		{"POST", "/backups/{id}/restore", s.restoreBackup},
		{"POST", "/backups/{id}/action", s.backupAction},
		{"GET", "/scheduler-stats/get_pools", s.pools},
		{"GET", "/qos-specs", s.listQoS},
		{"POST", "/qos-specs", s.createQoS},
		{"GET", "/qos-specs/{id}", s.showQoS},
		{"PUT", "/qos-specs/{id}", s.setQoSKeys},
		{"DELETE", "/qos-specs/{id}", s.deleteQoS},
		{"PUT", "/qos-specs/{id}/delete_keys", s.deleteQoSKeys},
		{"GET", "/qos-specs/{id}/associations", s.qosAssociations},
		{"GET", "/qos-specs/{id}/associate", s.associateQoS(true)},
		{"GET", "/qos-specs/{id}/disassociate", s.associateQoS(false)},
		{"GET", "/qos-specs/{id}/disassociate_all", s.disassociateAllQoS},
	}
	for _, rt := range table {
		h := rt.h
		inner.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			res := r.Context().Value(resultKey{}).(*result)
			res.resp, res.err = h(r)
			res.hit = true
		})
	}
	dispatch := func(r *http.Request) (*apiutil.Response, error) {
		rest := strings.Trim(r.PathValue("rest"), "/")
		first, tail, _ := strings.Cut(rest, "/")
		project := ""
		if !topLevel[first] {
			project, rest = first, tail
			if rest == "" {
				return nil, apiutil.NotFound("The resource could not be found.")
			}
			if c := auth.From(r.Context()); c != nil && c.ProjectID != "" && project != c.ProjectID && !c.IsAdmin() {
				return nil, apiutil.BadRequest("Malformed request url")
			}
		}
		res := &result{}
		ctx := context.WithValue(r.Context(), resultKey{}, res)
		ctx = context.WithValue(ctx, projectKey{}, project)
		r2 := r.Clone(ctx)
		r2.URL.Path = "/" + rest
		r2.URL.RawPath = ""
		inner.ServeHTTP(discard{}, r2)
		if !res.hit && methodMismatch(inner, r2) {
			return nil, &apiutil.Error{Status: 405, Message: "The method is not allowed for the requested URL.", Err: apiutil.ErrNotAllowed}
		}
		if !res.hit {
			return nil, apiutil.NotFound("The resource could not be found.")
		}
		return res.resp, res.err
	}
	return &apiutil.Service{
		Name:   "volume",
		Prefix: Prefix + "/",
		Fault:  apiutil.NovaFault,
		Auth:   s.deps.Auth,
		Log:    s.log,
		Routes: []apiutil.Route{
			{Method: "GET", Path: Prefix, Handler: s.versions, Public: true},
			{Method: "GET", Path: Prefix + "/{$}", Handler: s.versions, Public: true},
			{Method: "GET", Path: Prefix + "/v3", Handler: s.version, Public: true},
			{Method: "GET", Path: Prefix + "/v3/{$}", Handler: s.version, Public: true},
			{Path: Prefix + "/v3/{rest...}", Handler: dispatch},
		},
		Before:   Microversions.Before,
		Decorate: Microversions.Decorate,
	}
}

type result struct {
	resp *apiutil.Response
	err  error
	hit  bool
}

type resultKey struct{}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func (s *Service) v3Entry(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.0", "status": "CURRENT", "updated": "2023-08-31T00:00:00Z",
		"min_version": Microversions.Min.String(), "version": Microversions.Max.String(),
		"links": []map[string]any{
			{"href": "https://docs.openstack.org/", "rel": "describedby", "type": "text/html"},
			{"href": apiutil.PublicURL(r) + Prefix + "/v3/", "rel": "self"},
		},
		"media-types": []map[string]any{{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}
}

func (s *Service) versions(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(http.StatusMultipleChoices, map[string]any{"versions": []any{s.v3Entry(r)}}), nil
}

func (s *Service) version(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(http.StatusOK, map[string]any{"versions": []any{s.v3Entry(r)}}), nil
}

func (s *Service) extensions(r *http.Request) (*apiutil.Response, error) {
	ext := func(alias, name, desc string) map[string]any {
		return map[string]any{"alias": alias, "name": name, "description": desc, "links": []any{},
			"updated": "2023-01-01T00:00:00+00:00", "namespace": ""}
	}
	return apiutil.JSON(200, map[string]any{"extensions": []any{
		ext("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
		ext("os-quota-sets", "Quotas", "Quota management support."),
		ext("os-services", "Services", "Services support."),
		ext("os-types-manage", "TypesManage", "Types manage support."),
		ext("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
		ext("os-volume-actions", "VolumeActions", "Enable volume actions."),
		ext("os-admin-actions", "AdminActions", "Enable admin actions."),
		ext("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
		ext("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
		ext("os-vol-image-meta", "VolumeImageMetadata", "Show image metadata associated with the volume."),
		ext("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
		ext("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "Extended SnapshotAttributes support."),
		ext("qos-specs", "Qos_specs_manage", "QoS specs support."),
	}}), nil
}

// decode reads a JSON body into v (400 on anything malformed).
func decode(r *http.Request, v any) error {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return apiutil.BadRequest("Missing required element in request body.")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return apiutil.BadRequest("Malformed request body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// base is the URL prefix of links for project.
func base(r *http.Request, project string) string {
	return apiutil.PublicURL(r) + Prefix + "/v3/" + project
}

func version(r *http.Request) apiutil.Version { return apiutil.VersionOf(r.Context()) }

func atLeast(r *http.Request, minor int) bool {
	return version(r).AtLeast(apiutil.Version{Major: 3, Minor: minor})
}

// methodMismatch reports whether another method would match r's path.
func methodMismatch(mux *http.ServeMux, r *http.Request) bool {
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := mux.Handler(r2); pat != "" {
			return true
		}
	}
	return false
}
