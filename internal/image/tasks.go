package image

// Tasks: Glance's /v2/tasks, whose one type, "import", makes an image
// from an http(s) URL, and the task records of the interoperable import
// flow ("api_image_import", one per POST /v2/images/{id}/import), listed
// by GET /v2/images/{id}/tasks.
//
// An import task's life:
//
//	POST /v2/tasks ──▶ pending ──▶ processing ──ok──▶ success   result {"image_id": …}
//	                                   │
//	                                   └──fail──▶ failure   message says why; the image
//	                                                         the task created is deleted
//
// processing creates a queued image (the task's image_id is chosen and
// recorded first, so a crash never leaves an image nobody knows about),
// GETs import_from (which must pass the import filter, importfilter.go,
// at creation and on every redirect) and streams the body through Upload: the same ingest
// as PUT /file, with its checksums, size cap and quota, format inspection
// and atomic commit. An unreachable URL, an HTTP error, a body that stalls
// or ends early, a format mismatch or the quota end the task in failure
// and delete the image, so nothing half-stored remains. Both final states
// set expires_at (TaskTTL later); expired tasks are purged at startup and
// whenever a task is created.
//
// Restart: a task left pending or processing by a process that stopped
// is not resumed — the run acts with the requester's credentials, which
// are never persisted — but settled at startup: success when its image
// became active before the stop, otherwise failure, its half-made image
// deleted (import) or returned by Recover to a status the client can
// retry from (api_image_import). The client re-creates the task.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Task types and statuses.
const (
	TaskTypeImport    = "import"
	TaskTypeAPIImport = "api_image_import"

	TaskPending    = "pending"
	TaskProcessing = "processing"
	TaskSuccess    = "success"
	TaskFailure    = "failure"
)

var (
	taskTypes    = []string{TaskTypeImport, TaskTypeAPIImport}
	taskStatuses = []string{TaskPending, TaskProcessing, TaskSuccess, TaskFailure}
)

// TaskTTL is how long a finished task is kept (Glance's task_time_to_live).
const TaskTTL = 48 * time.Hour

// importStall is how long an import may receive no data before it fails.
const importStall = 5 * time.Minute

// Policy rules of the tasks API (Glance's names). tasks_api_access gates
// the whole /v2/tasks API and is admin-only by default, as in Glance since
// Mitaka; the others scope what a caller who passes it may do. The
// service adds owner scoping: a non-admin only sees its project's tasks.
const (
	ruleTasksAPIAccess = "image:tasks_api_access"
	ruleGetTask        = "image:get_task"
	ruleGetTasks       = "image:get_tasks"
	ruleAddTask        = "image:add_task"
)

func taskPolicyDefaults() []policy.Rule {
	return []policy.Rule{
		{Name: ruleTasksAPIAccess, Check: "role:admin", Description: "Use the /v2/tasks API at all."},
		{Name: ruleGetTask, Check: "role:admin or role:reader", Description: "Show a task of the caller's project."},
		{Name: ruleGetTasks, Check: "role:admin or role:reader", Description: "List the tasks of the caller's project."},
		{Name: ruleAddTask, Check: "role:admin or role:member", Description: "Create an import task for the caller's project."},
	}
}

func (s *Service) taskStore() taskStore { return taskStore{db: s.deps.DB} }

func (s *Service) authorizeTasks(c caller, rule string) error {
	t := map[string]string{"project_id": c.project, "owner": c.project}
	if err := s.authorize(c, ruleTasksAPIAccess, t); err != nil {
		return err
	}
	return s.authorize(c, rule, t)
}

func taskNotFound(id string) error {
	return apiutil.NotFound("Task with the given id %s was not found", id)
}

func taskSchemaError(format string, args ...any) error {
	return apiutil.BadRequest("Provided object does not match schema 'task': %s", fmt.Sprintf(format, args...))
}

// pyRepr renders a JSON value the way Glance's schema errors quote it.
func pyRepr(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	return jsonText(v)
}

// importInput is the validated input of an import task.
type importInput struct {
	uri   string
	props map[string]any // the create body of the image
}

// parseImportInput checks an import task's input as Glance's import
// script would, but before the task exists, so that a bad request gets a
// 400 instead of a task that fails at once.
func (s *Service) parseImportInput(in map[string]any) (importInput, error) {
	for _, k := range []string{"import_from", "import_from_format", "image_properties"} {
		if _, ok := in[k]; !ok {
			return importInput{}, apiutil.BadRequest("Input does not contain '%s' field", k)
		}
	}
	uri, ok := in["import_from"].(string)
	if !ok || uri == "" {
		v := in["import_from"]
		if v == nil {
			v = "None"
		}
		return importInput{}, apiutil.BadRequest("Invalid location: %v", v)
	}
	u, err := url.Parse(uri)
	switch {
	case err == nil && strings.EqualFold(u.Scheme, "file"):
		return importInput{}, apiutil.BadRequest("File based imports are not allowed. Please use a non-local source of image data.")
	case err != nil || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) || u.Host == "":
		return importInput{}, apiutil.BadRequest("The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http', 'https']")
	}
	if err := s.cfg.ImportFilter.check(u); err != nil {
		s.log.Info("import task URI refused", "uri", u.Redacted(), "reason", err)
		return importInput{}, apiutil.BadRequest("URI for import does not pass filtering: %s", uri)
	}
	format, ok := in["import_from_format"].(string)
	if !ok || !slices.Contains(diskFormats, format) {
		return importInput{}, apiutil.BadRequest("Invalid import_from_format %s: must be one of %s", pyRepr(in["import_from_format"]),
			strings.Join(diskFormats, ", "))
	}
	props, ok := in["image_properties"].(map[string]any)
	if !ok {
		return importInput{}, taskSchemaError("%s is not of type 'object' (image_properties)", pyRepr(in["image_properties"]))
	}
	// Validate the image attributes now, as the image create will.
	scratch := &Image{Tags: []string{}, Properties: map[string]string{}}
	body := make(map[string]any, len(props)+2)
	for k, v := range props {
		body[k] = v
		if k == "id" || k == "owner" {
			continue
		}
		if err := setAttr(scratch, k, v, true); err != nil {
			return importInput{}, err
		}
	}
	if id, ok := props["id"]; ok {
		if sid, _ := id.(string); !isUUID(sid) {
			return importInput{}, schemaError("%s is not a valid image id", jsonText(id))
		}
	}
	if err := s.checkLimits(scratch); err != nil {
		return importInput{}, err
	}
	switch {
	case scratch.DiskFormat == nil:
		body["disk_format"] = format
	case *scratch.DiskFormat != format:
		return importInput{}, apiutil.BadRequest("Image conversion is not supported: import_from_format %s differs from disk_format %s",
			format, *scratch.DiskFormat)
	}
	if scratch.ContainerFormat == nil {
		body["container_format"] = "bare"
	}
	return importInput{uri: uri, props: body}, nil
}

// CreateTask creates a task from a POST /v2/tasks body and starts it.
func (s *Service) CreateTask(ctx context.Context, body map[string]any) (*Task, error) {
	c := callerOf(ctx)
	if err := s.authorizeTasks(c, ruleAddTask); err != nil {
		return nil, err
	}
	for _, k := range []string{"type", "input"} {
		if _, ok := body[k]; !ok {
			return nil, apiutil.BadRequest("Task '%s' is required", k)
		}
	}
	if typ, ok := body["type"].(string); !ok || typ != TaskTypeImport {
		return nil, taskSchemaError("%s is not one of ['%s']", pyRepr(body["type"]), TaskTypeImport)
	}
	input, ok := body["input"].(map[string]any)
	if !ok {
		return nil, taskSchemaError("%s is not of type 'object'", pyRepr(body["input"]))
	}
	imp, err := s.parseImportInput(input)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("encode task input: %w", err)
	}
	now := s.now().UTC()
	t := &Task{ID: newUUID(), Type: TaskTypeImport, Status: TaskPending, Owner: c.project, UserID: c.creds.UserID,
		RequestID: apiutil.RequestID(ctx), Input: raw, CreatedAt: now, UpdatedAt: now}
	if err := s.taskStore().create(ctx, t); err != nil {
		return nil, err
	}
	if _, err := s.taskStore().purgeExpired(ctx, now); err != nil {
		s.log.Warn("purge expired tasks", "err", err)
	}
	s.log.Info("created task", "task", t.ID, "type", t.Type, "owner", t.Owner)
	s.startTask(ctx, t.ID, func(ctx context.Context) { s.runImportTask(ctx, t.ID, imp) })
	return t, nil
}

// liveTasks are the tasks this process is driving (keyed by *Service), so
// that recovery never settles a task that is still running here.
var liveTasks sync.Map

type liveKey struct {
	s  *Service
	id string
}

// startTask runs fn in the background with the requester's credentials,
// detached from the request but cancelled when the service stops.
func (s *Service) startTask(reqCtx context.Context, id string, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(reqCtx))
	stop := context.AfterFunc(s.baseCtx, func() { cancel(errShutdown) })
	key := liveKey{s, id}
	liveTasks.Store(key, struct{}{})
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		defer liveTasks.Delete(key)
		defer cancel(nil)
		defer stop()
		fn(ctx)
	}()
}

var errShutdown = errors.New("the image service is stopping")

// runImportTask does an import task: create the image, fetch the data
// into it, record the outcome.
func (s *Service) runImportTask(ctx context.Context, id string, imp importInput) {
	log := s.log.With("task", id)
	imageID, _ := imp.props["id"].(string)
	if imageID == "" {
		imageID = newUUID()
	}
	_, err := s.taskStore().update(ctx, id, func(t *Task) error {
		if t.Status != TaskPending {
			return fmt.Errorf("task %s is %s, not pending", id, t.Status)
		}
		t.Status, t.ImageID, t.UpdatedAt = TaskProcessing, imageID, s.now().UTC()
		return nil
	})
	if err != nil {
		s.endTask(id, "", err)
		return
	}
	props := make(map[string]any, len(imp.props)+1)
	for k, v := range imp.props {
		props[k] = v
	}
	props["id"] = imageID
	if _, err := s.Create(ctx, props); err != nil {
		// The id may name someone else's image (a duplicate): unlink it.
		s.endTask(id, "", err, func(t *Task) { t.ImageID = "" })
		return
	}
	err = s.fetch(ctx, imp.uri, func(ctx context.Context, body io.Reader, length int64) error {
		return s.Upload(ctx, imageID, body, length)
	})
	if err != nil {
		log.Info("import task failed", "image", imageID, "err", err)
		s.discardImage(imageID)
		s.endTask(id, "", err)
		return
	}
	log.Info("import task done", "image", imageID)
	s.endTask(id, imageID, nil)
}

// discardImage deletes an image a failed task created, with its data.
func (s *Service) discardImage(id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.baseCtx), 30*time.Second)
	defer cancel()
	if _, err := s.store.DeleteImage(ctx, id, nil); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Error("delete image of failed task", "image", id, "err", err)
		return
	}
	for _, p := range []string{s.blobs.path(id), s.blobs.stagingPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove image data", "image", id, "err", err)
		}
	}
}

// taskMessage is what a failed task tells its owner.
func (s *Service) taskMessage(err error) string {
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.msg
	}
	if errors.Is(err, errShutdown) || errors.Is(err, context.Canceled) {
		return "Task was interrupted: " + errShutdown.Error() + "."
	}
	var ae *apiutil.Error
	if errors.As(err, &ae) && ae.Status < 500 {
		return ae.Message
	}
	return "Task failed due to Internal Error"
}

// endTask records a task's outcome: success with the image in result
// when err is nil, else failure with a message. edits change the task
// further in the same transaction.
func (s *Service) endTask(id, imageID string, err error, edits ...func(*Task)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.baseCtx), 30*time.Second)
	defer cancel()
	if err != nil && s.taskMessage(err) == "Task failed due to Internal Error" {
		s.log.Error("task failed", "task", id, "err", err)
	}
	_, uerr := s.taskStore().update(ctx, id, func(t *Task) error {
		now := s.now().UTC()
		t.UpdatedAt, t.ExpiresAt = now, now.Add(TaskTTL)
		for _, e := range edits {
			e(t)
		}
		if err != nil {
			t.Status, t.Message, t.Result = TaskFailure, s.taskMessage(err), nil
			return nil
		}
		t.Status, t.Message = TaskSuccess, ""
		t.Result, _ = json.Marshal(map[string]string{"image_id": imageID})
		return nil
	})
	if uerr != nil {
		s.log.Error("record task outcome", "task", id, "err", uerr)
	}
}

// GetTask shows a task of the caller's project (any, for an admin).
func (s *Service) GetTask(ctx context.Context, id string) (*Task, error) {
	c := callerOf(ctx)
	if err := s.authorizeTasks(c, ruleGetTask); err != nil {
		return nil, err
	}
	if !isUUID(id) {
		return nil, taskNotFound(id)
	}
	t, err := s.taskStore().get(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !c.admin && t.Owner != c.project) {
		return nil, taskNotFound(id)
	}
	return t, err
}

// TaskListQuery is a parsed GET /v2/tasks.
type TaskListQuery struct {
	Type, Status     string
	SortKey, SortDir string
	Limit            int
	Marker           string
}

// parseTaskQuery validates the query of GET /v2/tasks with Glance's
// messages.
func parseTaskQuery(q url.Values, def, maxLimit int) (TaskListQuery, error) {
	lq := TaskListQuery{Type: q.Get("type"), Status: q.Get("status"), SortKey: "created_at", SortDir: "desc", Limit: def}
	if v := q.Get("sort_dir"); q.Has("sort_dir") {
		if v != "asc" && v != "desc" {
			return lq, apiutil.BadRequest("Invalid sort direction: %s", v)
		}
		lq.SortDir = v
	}
	if v := q.Get("sort_key"); q.Has("sort_key") {
		if _, ok := taskSortColumns[v]; !ok {
			return lq, apiutil.BadRequest("Sort key supplied is invalid: %s", v)
		}
		lq.SortKey = v
	}
	if lq.Status != "" && !slices.Contains(taskStatuses, lq.Status) {
		return lq, apiutil.BadRequest("Invalid status value: %s", lq.Status)
	}
	if lq.Type != "" && !slices.Contains(taskTypes, lq.Type) {
		return lq, apiutil.BadRequest("Invalid type value: %s", lq.Type)
	}
	if q.Has("marker") {
		lq.Marker = q.Get("marker")
		if !isUUID(lq.Marker) {
			return lq, apiutil.BadRequest("Invalid marker format")
		}
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(strings.TrimSpace(q.Get("limit")))
		if err != nil {
			return lq, apiutil.BadRequest("limit param must be an integer")
		}
		if n < 0 {
			return lq, apiutil.BadRequest("limit param must be positive")
		}
		lq.Limit = n
	}
	lq.Limit = min(lq.Limit, maxLimit)
	return lq, nil
}

// ListTasks returns a page of the caller's tasks (everyone's for an
// admin), and whether more follow.
func (s *Service) ListTasks(ctx context.Context, lq TaskListQuery) ([]*Task, bool, error) {
	c := callerOf(ctx)
	if err := s.authorizeTasks(c, ruleGetTasks); err != nil {
		return nil, false, err
	}
	q := taskQuery{Type: lq.Type, Status: lq.Status, SortKey: lq.SortKey, SortDesc: lq.SortDir == "desc", Limit: lq.Limit + 1}
	if !c.admin {
		q.Owner = c.project
	}
	if lq.Marker != "" {
		m, err := s.taskStore().get(ctx, lq.Marker)
		if errors.Is(err, ErrNotFound) || (err == nil && !c.admin && m.Owner != c.project) {
			return nil, false, apiutil.BadRequest("Task with the given id %s was not found", lq.Marker)
		}
		if err != nil {
			return nil, false, err
		}
		q.Marker = m
	}
	ts, err := s.taskStore().list(ctx, q)
	if err != nil {
		return nil, false, err
	}
	more := len(ts) > lq.Limit
	if more {
		ts = ts[:lq.Limit]
	}
	return ts, more, nil
}

// ImageTasks lists the tasks of an image the caller can see: GET
// /v2/images/{id}/tasks. A non-admin sees its own project's tasks only
// (task input may hold URLs the image's other viewers should not learn).
func (s *Service) ImageTasks(ctx context.Context, imageID string) ([]*Task, error) {
	c := callerOf(ctx)
	if _, err := s.Get(ctx, imageID); err != nil {
		return nil, err
	}
	owner := c.project
	if c.admin {
		owner = ""
	}
	return s.taskStore().ofImage(ctx, imageID, owner)
}

// startImageTask records the api_image_import task of an import that
// has just moved image img to importing. A failure to record it is
// logged: the import itself goes on.
func (s *Service) startImageTask(ctx context.Context, img *Image, req ImportRequest) string {
	c := callerOf(ctx)
	input, err := json.Marshal(map[string]any{"image_id": img.ID, "import_req": req, "backend": []string{storeID}})
	if err != nil {
		s.log.Warn("record import task", "image", img.ID, "err", err)
		return ""
	}
	now := s.now().UTC()
	t := &Task{ID: newUUID(), Type: TaskTypeAPIImport, Status: TaskProcessing, Owner: c.project, ImageID: img.ID,
		UserID: c.creds.UserID, RequestID: apiutil.RequestID(ctx), Input: input, CreatedAt: now, UpdatedAt: now}
	if err := s.taskStore().create(context.WithoutCancel(ctx), t); err != nil {
		s.log.Warn("record import task", "image", img.ID, "err", err)
		return ""
	}
	return t.ID
}

// finishImageTask records the outcome of an import started with
// startImageTask.
func (s *Service) finishImageTask(taskID, imageID string, err error) {
	if taskID == "" {
		return
	}
	s.endTask(taskID, imageID, err)
}

// recoverTasks settles the tasks a stopped process left pending or
// processing (see the top of this file) and purges expired ones. It runs
// after Recover has put interrupted images back to a retryable status.
func (s *Service) recoverTasks(ctx context.Context) error {
	if _, err := s.taskStore().purgeExpired(ctx, s.now().UTC()); err != nil {
		return err
	}
	ts, err := s.taskStore().inStatus(ctx, TaskPending, TaskProcessing)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if _, live := liveTasks.Load(liveKey{s, t.ID}); live {
			continue
		}
		var img *Image
		if t.ImageID != "" {
			img, err = s.store.GetImage(ctx, t.ImageID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if img != nil && img.Status == StatusActive {
			s.endTask(t.ID, img.ID, nil)
			s.log.Info("recovered finished task", "task", t.ID, "image", img.ID)
			continue
		}
		msg := "Task was interrupted by a restart of the image service"
		switch {
		case t.Type == TaskTypeImport && img != nil:
			s.discardImage(img.ID)
			msg += "; the partially imported image was deleted"
		case t.Type == TaskTypeAPIImport && img != nil:
			msg += fmt.Sprintf("; the image is back in status %s", img.Status)
		}
		s.endTask(t.ID, "", &apiutil.Error{Status: http.StatusConflict, Message: msg + "."})
		s.log.Info("recovered interrupted task", "task", t.ID, "type", t.Type)
	}
	return nil
}
