package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// ruleForcedHost lets admins force a host with availability_zone
// "zone:host[:node]".
const ruleForcedHost = "os_compute_api:servers:create:forced_host"

// createHints are the scheduler hints of a server create.
type createHints struct {
	group         *store.ServerGroup
	sameHost      []string
	differentHost []string
}

// apply writes the hints into the build task's arguments.
func (h createHints) apply(args map[string]string, forcedHost, forcedNode, imageProps string) {
	if len(h.sameHost) > 0 {
		args["same_host"] = strings.Join(h.sameHost, ",")
	}
	if len(h.differentHost) > 0 {
		args["different_host"] = strings.Join(h.differentHost, ",")
	}
	if forcedHost != "" {
		args["host"] = forcedHost
	}
	if forcedNode != "" {
		args["node"] = forcedNode
	}
	if imageProps != "" {
		args["image_props"] = imageProps
	}
}

// parseHints reads os:scheduler_hints: group (a server group uuid the
// caller can see), same_host and different_host (a server uuid or a list
// of them). Other hints are accepted and ignored, as Nova does for hints
// of filters it does not run.
func (a *API) parseHints(r *http.Request, raw map[string]json.RawMessage) (createHints, error) {
	var h createHints
	uuids := func(key string) ([]string, error) {
		v, ok := raw[key]
		if !ok {
			return nil, nil
		}
		var list []string
		var one string
		if json.Unmarshal(v, &one) == nil {
			list = []string{one}
		} else if err := json.Unmarshal(v, &list); err != nil {
			return nil, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'string', 'array'", key, v, v)
		}
		for _, u := range list {
			if !isUUID(u) {
				return nil, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. '%s' is not a 'uuid'", key, u, u)
			}
		}
		return list, nil
	}
	var err error
	if h.sameHost, err = uuids("same_host"); err != nil {
		return h, err
	}
	if h.differentHost, err = uuids("different_host"); err != nil {
		return h, err
	}
	if v, ok := raw["group"]; ok {
		var id string
		if json.Unmarshal(v, &id) != nil || !isUUID(id) {
			return h, apiutil.BadRequest("Invalid input for field/attribute group. Value: %s. %s is not a 'uuid'", v, v)
		}
		g, err := a.st.GetServerGroup(ctx(r), nil, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && g.ProjectID != caller(r).ProjectID && !caller(r).IsAdmin() {
			return h, apiutil.BadRequest("Instance group %s could not be found.", id)
		}
		if err != nil {
			return h, internal(err)
		}
		h.group = g
	}
	return h, nil
}

// schedulingImageProps keeps the image properties the scheduler's image
// filter reads, as JSON ("" when none).
func schedulingImageProps(props map[string]string) string {
	keep := map[string]string{}
	for _, k := range []string{"hw_architecture", "architecture", "img_hv_type", "hypervisor_type", "hw_vm_mode"} {
		if v := props[k]; v != "" {
			keep[k] = v
		}
	}
	if len(keep) == 0 {
		return ""
	}
	b, _ := json.Marshal(keep)
	return string(b)
}

// serverGroupsOf lists the group of a server (2.71 views).
func (a *API) serverGroupsOf(r *http.Request, i *store.Instance) []any {
	g, err := a.st.InstanceGroup(ctx(r), i.UUID)
	if err != nil || g == nil {
		return []any{}
	}
	return []any{g.UUID}
}
