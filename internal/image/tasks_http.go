package image

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// taskRoutes are the routes of the tasks API and of the image tasks
// sub-resource (Glance API 2.12).
func (s *Service) taskRoutes() []apiutil.Route {
	const v2 = "/image/v2"
	return []apiutil.Route{
		{Method: "POST", Path: v2 + "/tasks", Handler: s.createTask},
		{Method: "GET", Path: v2 + "/tasks", Handler: s.listTasks},
		{Method: "GET", Path: v2 + "/tasks/{task_id}", Handler: s.showTask},
		{Method: "DELETE", Path: v2 + "/tasks/{task_id}", Handler: deleteTask},
		{Method: "GET", Path: v2 + "/images/{image_id}/tasks", Handler: s.imageTasks},
		{Method: "GET", Path: v2 + "/schemas/task", Handler: s.schema(taskSchema)},
		{Method: "GET", Path: v2 + "/schemas/tasks", Handler: s.schema(tasksSchema)},
	}
}

// taskView is a task as Glance shows it; full adds input, result and
// message (show and create; the list leaves them out).
func taskView(t *Task, full bool) map[string]any {
	v := map[string]any{
		"id": t.ID, "type": t.Type, "status": t.Status, "owner": t.Owner,
		"created_at": t.CreatedAt.UTC().Format(timeLayout), "updated_at": t.UpdatedAt.UTC().Format(timeLayout),
		"self": "/v2/tasks/" + t.ID, "schema": "/v2/schemas/task",
	}
	if !t.ExpiresAt.IsZero() {
		v["expires_at"] = t.ExpiresAt.UTC().Format(timeLayout)
	}
	if full {
		v["input"] = rawOrNull(t.Input)
		v["result"] = rawOrNull(t.Result)
		v["message"] = t.Message
	}
	return v
}

func rawOrNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// imageTaskTime is how GET /v2/images/{id}/tasks writes times (Glance
// renders its database rows there, microseconds and no zone).
const imageTaskTime = "2006-01-02T15:04:05.000000"

// imageTaskView is a task as GET /v2/images/{id}/tasks shows it.
func imageTaskView(t *Task) map[string]any {
	var expires any
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.UTC().Format(imageTaskTime)
	}
	return map[string]any{
		"id": t.ID, "image_id": t.ImageID, "request-id": t.RequestID, "user": t.UserID,
		"type": t.Type, "status": t.Status, "owner": t.Owner, "expires_at": expires,
		"created_at": t.CreatedAt.UTC().Format(imageTaskTime), "updated_at": t.UpdatedAt.UTC().Format(imageTaskTime),
		"deleted_at": nil, "deleted": false,
		"input": rawOrNull(t.Input), "result": rawOrNull(t.Result), "message": t.Message,
	}
}

func (s *Service) createTask(r *http.Request) (*apiutil.Response, error) {
	body, err := decodeObject(r)
	if err != nil {
		return nil, err
	}
	t, err := s.CreateTask(r.Context(), body)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusCreated, taskView(t, true)).
		SetHeader("Location", strings.TrimRight(s.deps.PublicURL, "/")+"/image/v2/tasks/"+t.ID), nil
}

func (s *Service) showTask(r *http.Request) (*apiutil.Response, error) {
	t, err := s.GetTask(r.Context(), r.PathValue("task_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, taskView(t, true)), nil
}

// deleteTask answers as Glance does: tasks go when they expire.
func deleteTask(r *http.Request) (*apiutil.Response, error) {
	return nil, &apiutil.Error{Status: http.StatusMethodNotAllowed, Header: http.Header{"Allow": {"GET"}},
		Message: "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property."}
}

func (s *Service) listTasks(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	lq, err := parseTaskQuery(q, s.cfg.DefaultLimit, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	ts, more, err := s.ListTasks(r.Context(), lq)
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(ts))
	for i, t := range ts {
		views[i] = taskView(t, false)
	}
	params := url.Values{}
	maps.Copy(params, q)
	params.Del("marker")
	body := map[string]any{"tasks": views, "schema": "/v2/schemas/tasks", "first": "/v2/tasks"}
	if len(params) > 0 {
		body["first"] = "/v2/tasks?" + params.Encode()
	}
	if more && len(ts) > 0 {
		params.Set("marker", ts[len(ts)-1].ID)
		body["next"] = "/v2/tasks?" + params.Encode()
	}
	return apiutil.JSON(http.StatusOK, body), nil
}

func (s *Service) imageTasks(r *http.Request) (*apiutil.Response, error) {
	ts, err := s.ImageTasks(r.Context(), r.PathValue("image_id"))
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(ts))
	for i, t := range ts {
		views[i] = imageTaskView(t)
	}
	return apiutil.JSON(http.StatusOK, map[string]any{"tasks": views}), nil
}

// taskProperties is the task schema's properties; partial leaves out
// input, result and message, as the list's items do.
func taskProperties(partial bool) map[string]any {
	desc := func(d string, typ any, extra ...any) map[string]any {
		m := map[string]any{"description": d, "type": typ}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	p := map[string]any{
		"id":         desc("An identifier for the task", "string", "pattern", uuidPattern),
		"type":       desc("The type of task represented by this content", "string", "enum", enumOf(taskTypes, false)),
		"status":     desc("The current status of this task", "string", "enum", enumOf(taskStatuses, false)),
		"owner":      desc("An identifier for the owner of this task", "string"),
		"expires_at": desc("Datetime when this resource would be subject to removal", nullable("string")),
		"created_at": desc("Datetime when this resource was created", "string"),
		"updated_at": desc("Datetime when this resource was updated", "string"),
		"self":       map[string]any{"readOnly": true, "type": "string"},
		"schema":     map[string]any{"readOnly": true, "type": "string"},
	}
	if !partial {
		p["input"] = desc("The parameters required by task, JSON blob", nullable("object"))
		p["result"] = desc("The result of current task, JSON blob", nullable("object"))
		p["message"] = desc("Human-readable informative message only included when appropriate (usually on failure)", "string")
	}
	return p
}

func taskSchema() map[string]any {
	return map[string]any{"name": "task", "properties": taskProperties(false)}
}

func tasksSchema() map[string]any {
	return map[string]any{
		"name":  "tasks",
		"links": []any{map[string]any{"href": "{schema}", "rel": "describedby"}},
		"properties": map[string]any{
			"schema": map[string]any{"type": "string"},
			"tasks": map[string]any{
				"type":  "array",
				"items": map[string]any{"name": "task", "properties": taskProperties(true)},
			},
		},
	}
}
