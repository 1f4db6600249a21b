package api

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

func parseTime(field, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, apiutil.BadRequest("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", field, v, v)
}

func splitTags(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (a *API) listServers(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		rule, allRule := ruleServersIndex, ruleServersIndexAll
		if detail {
			rule, allRule = ruleServersDetail, ruleServersDetailAll
		}
		if err := a.authorize(r, rule, own(r)); err != nil {
			return nil, err
		}
		if a.servers == nil {
			return apiutil.JSON(200, map[string]any{"servers": []any{}}), nil
		}
		c := caller(r)
		q := r.URL.Query()
		admin := a.allowed(r, ruleServersAllFilters, own(r))
		f := store.InstanceFilter{ProjectID: c.ProjectID}
		if v, ok := queryLast(q, "all_tenants"); ok && v != "0" && !strings.EqualFold(v, "false") {
			if err := a.authorize(r, allRule, own(r)); err != nil {
				return nil, err
			}
			f.ProjectID = ""
		}
		if v, ok := queryLast(q, "project_id"); ok && admin && f.ProjectID == "" || ok && v == c.ProjectID {
			f.ProjectID = v
		}
		if v, ok := queryLast(q, "tenant_id"); ok && admin && f.ProjectID == "" {
			f.ProjectID = v
		}
		if v, ok := queryLast(q, "name"); ok {
			if _, err := regexp.Compile(v); err != nil {
				return nil, apiutil.BadRequest("Invalid regex for name filter: %s", v)
			}
			f.NameRegex = v
		}
		if vs, ok := q["status"]; ok {
			for _, st := range vs {
				vm, ts, ok := states.ForStatus(strings.ToUpper(st))
				if !ok {
					if atLeast(r, V2_38) {
						return nil, apiutil.BadRequest("Invalid status value")
					}
					return apiutil.JSON(200, map[string]any{"servers": []any{}}), nil
				}
				f.VMStates = append(f.VMStates, vm...)
				if ts != nil && len(vs) == 1 {
					f.TaskStates = ts
				}
			}
		}
		if v, ok := queryLast(q, "flavor"); ok {
			f.FlavorID = idFromRef(v)
		}
		if v, ok := queryLast(q, "image"); ok {
			f.ImageRef = idFromRef(v)
		}
		if v, ok := queryLast(q, "reservation_id"); ok {
			f.ReservationID = v
		}
		if v, ok := queryLast(q, "changes-since"); ok {
			t, err := parseTime("changes-since", v)
			if err != nil {
				return nil, err
			}
			f.ChangesSince = t
		}
		if v, ok := queryLast(q, "changes-before"); ok && atLeast(r, V2_66) {
			t, err := parseTime("changes-before", v)
			if err != nil {
				return nil, err
			}
			f.ChangesBefore = t
			if !f.ChangesSince.IsZero() && f.ChangesSince.After(t) {
				return nil, apiutil.BadRequest("The value of changes-since must be less than or equal to changes-before.")
			}
		}
		if atLeast(r, V2_26) {
			if v, ok := queryLast(q, "tags"); ok {
				f.Tags = splitTags(v)
			}
			if v, ok := queryLast(q, "tags-any"); ok {
				f.TagsAny = splitTags(v)
			}
			if v, ok := queryLast(q, "not-tags"); ok {
				f.NotTags = splitTags(v)
			}
			if v, ok := queryLast(q, "not-tags-any"); ok {
				f.NotTagsAny = splitTags(v)
			}
		}
		if v, ok := queryLast(q, "locked"); ok && atLeast(r, V2_73) {
			b, valid := parseBool(v)
			if !valid {
				return nil, apiutil.BadRequest("Unrecognized value '%s', acceptable values are 'True', 'False'", v)
			}
			f.Locked = &b
		}
		if admin {
			if v, ok := queryLast(q, "host"); ok {
				f.Host = v
			}
			if v, ok := queryLast(q, "availability_zone"); ok {
				f.AZ = v
			}
			if v, ok := queryLast(q, "deleted"); ok {
				b, _ := parseBool(v)
				f.Deleted = &b
			}
			if v, ok := queryLast(q, "user_id"); ok {
				f.UserID = v
			}
		}
		keys, dirs := q["sort_key"], q["sort_dir"]
		for n, k := range keys {
			if _, ok := store.InstanceSortKeys[k]; !ok {
				return nil, apiutil.BadRequest("Invalid input for query parameters sort_key. Value: %s.", k)
			}
			desc := true
			if n < len(dirs) {
				switch dirs[n] {
				case "asc":
					desc = false
				case "desc":
				default:
					return nil, apiutil.BadRequest("Invalid input for query parameters sort_dir. Value: %s.", dirs[n])
				}
			}
			f.Sort = append(f.Sort, store.SortSpec{Key: k, Desc: desc})
		}
		limit := MaxLimit
		if v, ok := queryLast(q, "limit"); ok {
			n, err := intValue("limit", []byte(v), 0, 1<<31)
			if err != nil {
				return nil, err
			}
			limit = min(int(n), MaxLimit)
		}
		f.Limit = limit
		f.ViewOnly = true
		f.Marker, _ = queryLast(q, "marker")
		insts, err := a.st.ListInstances(ctx(r), f)
		if errors.Is(err, store.ErrMarker) {
			return nil, apiutil.BadRequest("marker [%s] not found", f.Marker)
		}
		if err != nil {
			return nil, internal(err)
		}
		if f.NameRegex != "" {
			re := regexp.MustCompile(f.NameRegex)
			var kept []*store.Instance
			started := f.Marker == ""
			for _, i := range insts {
				if !started {
					started = i.UUID == f.Marker
					continue
				}
				if re.MatchString(i.Name) {
					kept = append(kept, i)
				}
			}
			if !started {
				return nil, apiutil.BadRequest("marker [%s] not found", f.Marker)
			}
			if len(kept) > limit {
				kept = kept[:limit]
			}
			insts = kept
		}
		body := &serverList{}
		if detail {
			sv := a.newServerViews(r, insts, true)
			body.detail = make([]serverBody, len(insts))
			for n, i := range insts {
				body.detail[n] = sv.server(i)
			}
			a.listExtras(r, insts, body.detail)
		} else {
			sv := a.newServerViews(r, nil, false)
			body.brief = make([]serverRef, len(insts))
			for n, i := range insts {
				body.brief[n] = serverRef{ID: i.UUID, Name: i.Name, URLs: sv.urls}
			}
		}
		if len(insts) == limit && limit > 0 {
			body.next = nextHref(r, insts[len(insts)-1].UUID)
		}
		return apiutil.JSON(200, body), nil
	}
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on", "t", "y":
		return true, true
	case "false", "0", "no", "off", "f", "n":
		return false, true
	}
	return false, false
}

var serverUpdateSchema = apiutil.MustSchema("compute-server-update", `{"type": "object",
	"properties": {"server": {"type": "object", "properties": {
		"name": {"type": "string", "minLength": 1, "maxLength": 255},
		"description": {"type": ["string", "null"], "maxLength": 255},
		"hostname": {"type": "string", "minLength": 1, "maxLength": 255},
		"accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"},
		"OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}},
		"additionalProperties": false}},
	"required": ["server"], "additionalProperties": false}`)

func (a *API) updateServer(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServersUpdate)
	if err != nil {
		return nil, err
	}
	var body struct {
		Server map[string]*string `json:"server"`
	}
	if err := apiutil.DecodeJSON(r, serverUpdateSchema, &body); err != nil {
		return nil, err
	}
	set := store.Set{}
	for k, v := range body.Server {
		switch k {
		case "name":
			if err := checkName("name", *v); err != nil {
				return nil, err
			}
			set["name"] = *v
			i.Name = *v
		case "description":
			if !atLeast(r, V2_19) {
				return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
			}
			set["description"] = orNil(v)
			i.Description = v
		case "hostname":
			if !atLeast(r, V2_90) {
				return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('hostname' was unexpected)")
			}
			set["hostname"] = *v
			i.Hostname = *v
		case "accessIPv4":
			set["access_ip_v4"] = *v
			i.AccessIPv4 = *v
		case "accessIPv6":
			set["access_ip_v6"] = *v
			i.AccessIPv6 = *v
		}
	}
	if len(set) > 0 {
		if err := a.st.UpdateInstance(ctx(r), nil, i.UUID, store.Cond{NotDeleted: true}, set); err != nil {
			if errors.Is(err, store.ErrPreempted) {
				return nil, serverNotFound(i.UUID)
			}
			return nil, internal(err)
		}
		i.UpdatedAt = time.Now()
	}
	return apiutil.JSON(200, serverDoc{a.fullServerView(r, i)}), nil
}

// checkLock refuses a locked server to callers other than admins.
func (a *API) checkLock(r *http.Request, i *store.Instance) error {
	if i.Locked && !caller(r).IsAdmin() {
		return apiutil.Conflict("Instance %s is locked", i.UUID)
	}
	return nil
}

func (a *API) deleteServer(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServerWith(r, r.PathValue("server_id"), ruleServersDelete, a.st.GetInstanceRow)
	if err != nil {
		return nil, err
	}
	if err := a.checkLock(r, i); err != nil {
		return nil, err
	}
	if a.softDeletes(i) {
		return apiutil.NoContent(), a.startTask(r, i, actSoftDelete, &store.Task{}, nil)
	}
	if err := a.startDelete(r, i); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// startDelete gives the server a delete task, replacing whatever task it
// has (a delete pre-empts a build or any action); a server already being
// deleted is left to that delete.
func (a *API) startDelete(r *http.Request, i *store.Instance) error {
	if i.Task != nil && i.Task.Kind == conductor.Delete {
		return nil
	}
	t := &store.Task{ID: conductor.NewTaskID(), Kind: conductor.Delete, PrevVMState: i.VMState}
	ts := states.Deleting
	err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.startAction(r, tx, i.UUID, "delete", t); err != nil {
			return err
		}
		return a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{NotDeleted: true}, store.TaskSet(t, &ts))
	})
	if errors.Is(err, store.ErrPreempted) {
		return serverNotFound(i.UUID)
	}
	if err != nil {
		return internal(err)
	}
	a.servers.Kick(ctx(r), i.UUID)
	return nil
}

// volumeLister is the batch attachment lookup a VolumeService may offer
// for server lists.
type volumeLister interface {
	ListMany(ctx context.Context, serverIDs []string) (map[string][]VolumeAttachment, error)
}

// listExtras fills what a detailed list shows from the other services, a
// page at a time: the attached volumes (one lookup) and the security
// groups of servers with ports (two networking requests), as Nova's list
// view has them.
func (a *API) listExtras(r *http.Request, insts []*store.Instance, views []serverBody) {
	ids := make([]string, 0, len(insts))
	withPorts := make([]string, 0, len(insts))
	for n, i := range insts {
		ids = append(ids, i.UUID)
		if len(views[n].Addresses) > 0 {
			withPorts = append(withPorts, i.UUID)
		}
	}
	if vl, ok := a.volumes.(volumeLister); ok && len(ids) > 0 {
		vas, err := vl.ListMany(ctx(r), ids)
		if err != nil {
			a.log.Warn("volumes of server list", "err", err)
		}
		for n, i := range insts {
			views[n].Volumes = attachedVolumes(r, vas[i.UUID])
		}
	}
	if len(withPorts) > 0 {
		names, err := a.serverGroupNames(r, withPorts)
		if err != nil {
			a.log.Warn("security groups of server list", "err", err)
		}
		for n, i := range insts {
			views[n].SecurityGroups = names[i.UUID]
		}
	}
}
