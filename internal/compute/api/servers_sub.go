package api

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// ---- metadata ----

func (a *API) listMetadata(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServerMetaIndex)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"metadata": i.Metadata}), nil
}

func (a *API) showMetadata(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServerMetaShow)
	if err != nil {
		return nil, err
	}
	k := r.PathValue("key")
	v, ok := i.Metadata[k]
	if !ok {
		return nil, apiutil.NotFound("Metadata item was not found")
	}
	return apiutil.JSON(200, map[string]any{"meta": map[string]string{k: v}}), nil
}

var metadataSchema = apiutil.MustSchema("compute-server-metadata", `{"type": "object",
	"properties": {"metadata": {"type": "object", "patternProperties": {"^.{1,255}$": {"type": "string", "maxLength": 255}},
		"additionalProperties": false}}, "required": ["metadata"], "additionalProperties": false}`)

var metaItemSchema = apiutil.MustSchema("compute-server-meta", `{"type": "object",
	"properties": {"meta": {"type": "object", "patternProperties": {"^.{1,255}$": {"type": "string", "maxLength": 255}},
		"additionalProperties": false, "minProperties": 1, "maxProperties": 1}}, "required": ["meta"], "additionalProperties": false}`)

// writeMetadata sets metadata (replace or merge) after the metadata
// items quota check; servers being built or deleted refuse it as Nova does.
func (a *API) writeMetadata(r *http.Request, rule string, replace bool, md map[string]string) (map[string]string, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), rule)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if i.Task != nil && i.Task.Kind == conductor.Delete {
		return nil, conflictState("update metadata", i)
	}
	merged := md
	if !replace {
		merged = map[string]string{}
		for k, v := range i.Metadata {
			merged[k] = v
		}
		for k, v := range md {
			merged[k] = v
		}
	}
	err = a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		limits, err := a.quota.Limits(ctx(r), tx, i.ProjectID, "")
		if err != nil {
			return err
		}
		if l := limits[quota.MetadataItems]; l >= 0 && int64(len(merged)) > l {
			return apiutil.Forbidden("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(merged), l)
		}
		if err := a.st.SetMetadata(ctx(r), tx, i.UUID, md, replace); err != nil {
			return err
		}
		return a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{NotDeleted: true}, store.Set{})
	})
	if err != nil {
		return nil, quotaError(err)
	}
	return merged, nil
}

func (a *API) createMetadata(r *http.Request) (*apiutil.Response, error) {
	return a.putMetadata(r, ruleServerMetaCreate, false)
}

func (a *API) replaceMetadata(r *http.Request) (*apiutil.Response, error) {
	return a.putMetadata(r, ruleServerMetaUpdateAll, true)
}

func (a *API) putMetadata(r *http.Request, rule string, replace bool) (*apiutil.Response, error) {
	var body struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := apiutil.DecodeJSON(r, metadataSchema, &body); err != nil {
		return nil, err
	}
	md, err := a.writeMetadata(r, rule, replace, body.Metadata)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"metadata": md}), nil
}

func (a *API) updateMetadataItem(r *http.Request) (*apiutil.Response, error) {
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if err := apiutil.DecodeJSON(r, metaItemSchema, &body); err != nil {
		return nil, err
	}
	k := r.PathValue("key")
	if _, ok := body.Meta[k]; !ok {
		return nil, apiutil.BadRequest("Request body and URI mismatch")
	}
	if _, err := a.writeMetadata(r, ruleServerMetaUpdate, false, body.Meta); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"meta": body.Meta}), nil
}

func (a *API) deleteMetadataItem(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServerMetaDelete)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	err = a.st.WithTx(ctx(r), func(tx *sql.Tx) error { return a.st.DeleteMetadata(ctx(r), tx, i.UUID, r.PathValue("key")) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Metadata item was not found")
	}
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.NoContent(), nil
}

// ---- tags (2.26) ----

const maxTags = 50

func (a *API) tagServer(r *http.Request, rule string) (*store.Instance, error) {
	if !atLeast(r, V2_26) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	return a.loadServer(r, r.PathValue("server_id"), rule)
}

func checkTag(t string) error {
	if t == "" || len(t) > 60 {
		return apiutil.BadRequest("Invalid input for field/attribute tag. Value: %s.", t)
	}
	for _, c := range t {
		if c == '/' || c == ',' {
			return apiutil.BadRequest("Invalid input for field/attribute tag. Value: %s. Tags cannot contain '/' or ','", t)
		}
	}
	return nil
}

func (a *API) listTags(r *http.Request) (*apiutil.Response, error) {
	i, err := a.tagServer(r, ruleTagsIndex)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"tags": i.Tags}), nil
}

func (a *API) checkTag(r *http.Request) (*apiutil.Response, error) {
	i, err := a.tagServer(r, ruleTagsShow)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(i.Tags, r.PathValue("tag")) {
		return nil, apiutil.NotFound("Tag %s could not be found for instance %s.", r.PathValue("tag"), i.UUID)
	}
	return apiutil.NoContent(), nil
}

func (a *API) tagsWritable(r *http.Request, i *store.Instance) error {
	if i.Task != nil && i.Task.Kind == conductor.Delete {
		return conflictState("update tags", i)
	}
	return nil
}

func (a *API) replaceTags(r *http.Request) (*apiutil.Response, error) {
	i, err := a.tagServer(r, ruleTagsUpdateAll)
	if err != nil {
		return nil, err
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := apiutil.DecodeJSON(r, nil, &body); err != nil {
		return nil, err
	}
	if body.Tags == nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute tags. 'tags' is a required property")
	}
	if len(body.Tags) > maxTags {
		return nil, apiutil.BadRequest("The number of tags exceeded the per-server limit %d", maxTags)
	}
	for _, t := range body.Tags {
		if err := checkTag(t); err != nil {
			return nil, err
		}
	}
	if err := a.tagsWritable(r, i); err != nil {
		return nil, err
	}
	tags := slices.Compact(slices.Sorted(slices.Values(body.Tags)))
	if err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.st.SetTags(ctx(r), tx, i.UUID, tags); err != nil {
			return err
		}
		return a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{}, store.Set{})
	}); err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"tags": tags}), nil
}

func (a *API) addTag(r *http.Request) (*apiutil.Response, error) {
	i, err := a.tagServer(r, ruleTagsUpdate)
	if err != nil {
		return nil, err
	}
	t := r.PathValue("tag")
	if err := checkTag(t); err != nil {
		return nil, err
	}
	if err := a.tagsWritable(r, i); err != nil {
		return nil, err
	}
	if slices.Contains(i.Tags, t) {
		return apiutil.NoContent(), nil
	}
	if len(i.Tags) >= maxTags {
		return nil, apiutil.BadRequest("The number of tags exceeded the per-server limit %d", maxTags)
	}
	if err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.st.AddTag(ctx(r), tx, i.UUID, t); err != nil {
			return err
		}
		return a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{}, store.Set{})
	}); err != nil {
		return nil, internal(err)
	}
	loc := links(r, "servers", i.UUID)[0].(map[string]any)["href"].(string) + "/tags/" + t
	return (&apiutil.Response{Status: 201}).SetHeader("Location", loc), nil
}

func (a *API) deleteTag(r *http.Request) (*apiutil.Response, error) {
	i, err := a.tagServer(r, ruleTagsDelete)
	if err != nil {
		return nil, err
	}
	if err := a.tagsWritable(r, i); err != nil {
		return nil, err
	}
	t := r.PathValue("tag")
	err = a.st.WithTx(ctx(r), func(tx *sql.Tx) error { return a.st.DeleteTag(ctx(r), tx, i.UUID, t) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Tag %s could not be found for instance %s.", t, i.UUID)
	}
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.NoContent(), nil
}

func (a *API) deleteTags(r *http.Request) (*apiutil.Response, error) {
	i, err := a.tagServer(r, ruleTagsDeleteAll)
	if err != nil {
		return nil, err
	}
	if err := a.tagsWritable(r, i); err != nil {
		return nil, err
	}
	if err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error { return a.st.SetTags(ctx(r), tx, i.UUID, nil) }); err != nil {
		return nil, internal(err)
	}
	return apiutil.NoContent(), nil
}

// ---- addresses ----

// ---- instance actions ----

func (a *API) actionView(r *http.Request, act *store.Action) map[string]any {
	v := map[string]any{"action": act.Action, "instance_uuid": act.InstanceUUID, "message": orNil(act.Message),
		"project_id": act.ProjectID, "request_id": act.RequestID, "start_time": microTime(act.StartTime), "user_id": act.UserID}
	if atLeast(r, V2_58) {
		v["updated_at"] = microTime(act.UpdatedAt)
	}
	return v
}

// actionServer loads the server of an instance-actions request; deleted
// servers are listed too (from 2.21), as Nova does.
func (a *API) actionServer(r *http.Request, rule string) (*store.Instance, error) {
	id := r.PathValue("server_id")
	i, err := a.st.GetInstance(ctx(r), nil, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && i.Deleted && !atLeast(r, V2_21) {
		return nil, serverNotFound(id)
	}
	if err != nil {
		return nil, internal(err)
	}
	target := map[string]string{"project_id": i.ProjectID}
	if i.ProjectID != caller(r).ProjectID && !a.allowed(r, rule, target) {
		return nil, serverNotFound(id)
	}
	return i, a.authorize(r, rule, target)
}

func (a *API) listActions(r *http.Request) (*apiutil.Response, error) {
	i, err := a.actionServer(r, ruleActionsList)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	var since, before time.Time
	limit := 0
	marker := ""
	if atLeast(r, V2_58) {
		if v, ok := queryLast(q, "changes-since"); ok {
			if since, err = parseTime("changes-since", v); err != nil {
				return nil, err
			}
		}
		if v, ok := queryLast(q, "limit"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, apiutil.BadRequest("Invalid input for query parameters limit. Value: %s.", v)
			}
			limit = min(n, MaxLimit)
		}
		marker, _ = queryLast(q, "marker")
	}
	if v, ok := queryLast(q, "changes-before"); ok && atLeast(r, V2_66) {
		if before, err = parseTime("changes-before", v); err != nil {
			return nil, err
		}
	}
	acts, err := a.st.ListActions(ctx(r), i.UUID, since, before, limit, marker)
	if errors.Is(err, store.ErrMarker) {
		return nil, apiutil.BadRequest("Marker %s could not be found.", marker)
	}
	if err != nil {
		return nil, internal(err)
	}
	out := make([]any, 0, len(acts))
	for _, act := range acts {
		out = append(out, a.actionView(r, act))
	}
	body := map[string]any{"instanceActions": out}
	if limit > 0 && len(acts) == limit {
		body["links"] = nextLink(r, acts[len(acts)-1].RequestID)
	}
	return apiutil.JSON(200, body), nil
}

func (a *API) showAction(r *http.Request) (*apiutil.Response, error) {
	i, err := a.actionServer(r, ruleActionsShow)
	if err != nil {
		return nil, err
	}
	reqID := r.PathValue("request_id")
	act, err := a.st.GetAction(ctx(r), i.UUID, reqID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiutil.NotFound("Action %s not found", reqID)
	}
	if err != nil {
		return nil, internal(err)
	}
	v := a.actionView(r, act)
	target := map[string]string{"project_id": i.ProjectID}
	admin := a.allowed(r, ruleActionsEvents, target)
	if admin || atLeast(r, V2_51) {
		evs := make([]any, 0, len(act.Events))
		for _, e := range act.Events {
			ev := map[string]any{"event": e.Event, "start_time": microTime(e.StartTime), "finish_time": microTime(e.FinishTime), "result": orNil(e.Result)}
			if admin {
				ev["traceback"] = orNil(e.Traceback)
			}
			if atLeast(r, V2_62) {
				if admin {
					ev["host"] = strOrEmpty(e.Host)
				}
				ev["hostId"] = hostID(i.ProjectID, strOrEmpty(e.Host))
			}
			if atLeast(r, V2_84) && a.allowed(r, ruleActionsDetails, target) {
				ev["details"] = orNil(e.Details)
			}
			evs = append(evs, ev)
		}
		v["events"] = evs
	}
	return apiutil.JSON(200, map[string]any{"instanceAction": v}), nil
}

var _ = json.Marshal
