package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Policy rule of os-migrations.
const ruleMigrationsIndex = "os_compute_api:os-migrations:index"

var (
	// V2_23: migrations show migration_type and links; filter on it.
	V2_23 = apiutil.Version{Major: 2, Minor: 23}
	// V2_59: migrations show uuid; page with limit and marker; filter on
	// changes-since.
	V2_59 = apiutil.Version{Major: 2, Minor: 59}
	// V2_80: migrations show user_id and project_id; filter on them.
	V2_80 = apiutil.Version{Major: 2, Minor: 80}
)

func flavorIDValue(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	if id == "" {
		return nil
	}
	return id
}

func (a *API) migrationView(r *http.Request, m *store.MigrationRecord) map[string]any {
	v := map[string]any{"id": m.ID, "instance_uuid": m.InstanceUUID, "status": m.Status,
		"source_compute": orNil(strPtr(m.SourceCompute)), "source_node": orNil(strPtr(m.SourceNode)),
		"dest_compute": orNil(strPtr(m.DestCompute)), "dest_node": orNil(strPtr(m.DestNode)), "dest_host": orNil(strPtr(m.DestHost)),
		"old_instance_type_id": flavorIDValue(m.OldFlavorID), "new_instance_type_id": flavorIDValue(m.NewFlavorID),
		"created_at": aggTime(m.CreatedAt), "updated_at": aggTime(m.UpdatedAt)}
	if atLeast(r, V2_23) {
		v["migration_type"] = m.Type
		if m.Type == "live-migration" && (m.Status == "preparing" || m.Status == "running" || m.Status == "queued") {
			v["links"] = links(r, "servers/"+m.InstanceUUID+"/migrations", strconv.FormatInt(m.ID, 10))
		}
	}
	if atLeast(r, V2_59) {
		v["uuid"] = m.UUID
	}
	if atLeast(r, V2_80) {
		v["user_id"], v["project_id"] = m.UserID, m.ProjectID
	}
	return v
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *API) listMigrations(r *http.Request) (*apiutil.Response, error) {
	if err := a.authorize(r, ruleMigrationsIndex, own(r)); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	allowed := []string{"hidden", "host", "instance_uuid", "source_compute", "status", "migration_type", "cell_name"}
	if atLeast(r, V2_59) {
		allowed = append(allowed, "limit", "marker", "changes-since")
	}
	if atLeast(r, V2_66) {
		allowed = append(allowed, "changes-before")
	}
	if atLeast(r, V2_80) {
		allowed = append(allowed, "user_id", "project_id")
	}
	if atLeast(r, V2_59) {
		if err := strictQuery(r, allowed...); err != nil {
			return nil, err
		}
	}
	// host matches either end, source_compute the source only (Nova's
	// filters; both may be given).
	f := store.MigrationFilter{Instance: q.Get("instance_uuid"), Host: q.Get("host"), SourceHost: q.Get("source_compute"),
		Status: q.Get("status")}
	if atLeast(r, V2_23) {
		f.Type = q.Get("migration_type")
	}
	if atLeast(r, V2_80) {
		f.UserID, f.ProjectID = q.Get("user_id"), q.Get("project_id")
	}
	parseTime := func(key string) (time.Time, error) {
		s := q.Get(key)
		if s == "" {
			return time.Time{}, nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, nil
			}
		}
		return time.Time{}, apiutil.BadRequest("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", key, s, s)
	}
	var err error
	if atLeast(r, V2_59) {
		if f.ChangesSince, err = parseTime("changes-since"); err != nil {
			return nil, err
		}
	}
	if atLeast(r, V2_66) {
		if f.ChangesBefore, err = parseTime("changes-before"); err != nil {
			return nil, err
		}
		if !f.ChangesSince.IsZero() && !f.ChangesBefore.IsZero() && f.ChangesBefore.Before(f.ChangesSince) {
			return nil, apiutil.BadRequest("The value of changes-since must be less than or equal to changes-before.")
		}
	}
	limit := 0
	if atLeast(r, V2_59) {
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return nil, apiutil.BadRequest("Invalid input for query parameters limit. Value: %s.", s)
			}
			limit = n
		}
		if m := q.Get("marker"); m != "" {
			rec, err := a.st.GetMigration(ctx(r), m)
			if errors.Is(err, store.ErrNotFound) {
				return nil, apiutil.BadRequest("Marker %s could not be found.", m)
			}
			if err != nil {
				return nil, internal(err)
			}
			f.Marker = rec.ID
		}
	}
	if limit == 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	f.Limit = limit
	list, err := a.st.ListMigrations(ctx(r), f)
	if err != nil {
		return nil, internal(err)
	}
	out := make([]any, 0, len(list))
	for _, m := range list {
		out = append(out, a.migrationView(r, m))
	}
	body := map[string]any{"migrations": out}
	if atLeast(r, V2_59) && len(list) == limit && len(list) > 0 {
		body["migrations_links"] = nextLink(r, list[len(list)-1].UUID)
	}
	return apiutil.JSON(200, body), nil
}

// Policy rules of a server's in-progress live migrations.
const (
	ruleServerMigrationsIndex = "os_compute_api:servers:migrations:index"
	ruleServerMigrationsShow  = "os_compute_api:servers:migrations:show"
)

// inProgressLive reports whether m is a live migration still running.
func inProgressLive(m *store.MigrationRecord) bool {
	return m.Type == "live-migration" && (m.Status == "queued" || m.Status == "preparing" || m.Status == "running")
}

func (a *API) serverMigrationView(r *http.Request, m *store.MigrationRecord) map[string]any {
	v := map[string]any{"id": m.ID, "server_uuid": m.InstanceUUID, "status": m.Status,
		"source_compute": orNil(strPtr(m.SourceCompute)), "source_node": orNil(strPtr(m.SourceNode)),
		"dest_compute": orNil(strPtr(m.DestCompute)), "dest_node": orNil(strPtr(m.DestNode)), "dest_host": orNil(strPtr(m.DestHost)),
		"created_at": aggTime(m.CreatedAt), "updated_at": aggTime(m.UpdatedAt),
		"memory_total_bytes": nil, "memory_processed_bytes": nil, "memory_remaining_bytes": nil,
		"disk_total_bytes": nil, "disk_processed_bytes": nil, "disk_remaining_bytes": nil}
	if atLeast(r, V2_59) {
		v["uuid"] = m.UUID
	}
	if atLeast(r, V2_80) {
		v["user_id"], v["project_id"] = m.UserID, m.ProjectID
	}
	return v
}

// listServerMigrations serves GET /servers/{id}/migrations: the
// server's live migrations in progress.
func (a *API) listServerMigrations(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServerMigrationsIndex)
	if err != nil {
		return nil, err
	}
	list, err := a.st.ListMigrations(ctx(r), store.MigrationFilter{Instance: i.UUID, Type: "live-migration"})
	if err != nil {
		return nil, internal(err)
	}
	out := []any{}
	for _, m := range list {
		if inProgressLive(m) {
			out = append(out, a.serverMigrationView(r, m))
		}
	}
	return apiutil.JSON(200, map[string]any{"migrations": out}), nil
}

// showServerMigration serves GET /servers/{id}/migrations/{migration_id}.
func (a *API) showServerMigration(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServerMigrationsShow)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("migration_id")
	list, err := a.st.ListMigrations(ctx(r), store.MigrationFilter{Instance: i.UUID})
	if err != nil {
		return nil, internal(err)
	}
	for _, m := range list {
		if strconv.FormatInt(m.ID, 10) != id {
			continue
		}
		if !inProgressLive(m) {
			return nil, apiutil.NotFound("In-progress live migration %s is not found for server %s.", id, i.UUID)
		}
		return apiutil.JSON(200, map[string]any{"migration": a.serverMigrationView(r, m)}), nil
	}
	return nil, apiutil.NotFound("Migration %s could not be found for instance %s.", id, i.UUID)
}
