package identity

import (
	"net/http"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// listFilter holds Keystone's list filters that SQL equality does not
// cover: the name operators (name__contains, name__icontains,
// name__startswith, name__istartswith, name__endswith, name__iendswith)
// and, for projects, the tag filters (tags, tags-any, not-tags,
// not-tags-any; comma-separated).
type listFilter struct {
	name    []func(string) bool
	tags    []string
	tagsAny []string
	notTags []string
	notAny  []string
}

func parseListFilter(r *http.Request) listFilter {
	q := r.URL.Query()
	var f listFilter
	ops := map[string]func(v, p string) bool{
		"contains":    strings.Contains,
		"startswith":  strings.HasPrefix,
		"endswith":    strings.HasSuffix,
		"icontains":   func(v, p string) bool { return strings.Contains(strings.ToLower(v), strings.ToLower(p)) },
		"istartswith": func(v, p string) bool { return strings.HasPrefix(strings.ToLower(v), strings.ToLower(p)) },
		"iendswith":   func(v, p string) bool { return strings.HasSuffix(strings.ToLower(v), strings.ToLower(p)) },
	}
	for op, fn := range ops {
		for _, p := range q["name__"+op] {
			f.name = append(f.name, func(v string) bool { return fn(v, p) })
		}
	}
	split := func(k string) []string {
		if s := q.Get(k); s != "" {
			return strings.Split(s, ",")
		}
		return nil
	}
	f.tags, f.tagsAny, f.notTags, f.notAny = split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any")
	return f
}

func (f listFilter) matchName(name string) bool {
	for _, m := range f.name {
		if !m(name) {
			return false
		}
	}
	return true
}

func (f listFilter) matchTags(tags []string) bool {
	has := func(t string) bool { return slices.Contains(tags, t) }
	for _, t := range f.tags {
		if !has(t) {
			return false
		}
	}
	if len(f.tagsAny) > 0 && !slices.ContainsFunc(f.tagsAny, has) {
		return false
	}
	if len(f.notTags) > 0 && !slices.ContainsFunc(f.notTags, func(t string) bool { return !has(t) }) {
		return false // not-tags: excluded when it has all of them
	}
	if slices.ContainsFunc(f.notAny, has) {
		return false
	}
	return true
}

// ---- project tags ----

func (a *API) projectTags(r *http.Request) (*apiutil.Response, error) {
	p, err := a.loadProject(r, "identity:get_project")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"tags": p.Tags, "links": listLinks(r)}), nil
}

var tagsSchema = apiutil.MustSchema("project-tags", `{"type": "object", "required": ["tags"],
	"properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 80}}}`)

// setProjectTags replaces (PUT) or clears (DELETE) a project's tags.
func (a *API) setProjectTags(r *http.Request) (*apiutil.Response, error) {
	p, err := a.loadProject(r, "identity:update_project")
	if err != nil {
		return nil, err
	}
	p.Tags = []string{}
	if r.Method == http.MethodPut {
		var body struct {
			Tags []string `json:"tags"`
		}
		if err := decodeJSON(r, tagsSchema, &body); err != nil {
			return nil, err
		}
		for _, t := range body.Tags {
			if !slices.Contains(p.Tags, t) {
				p.Tags = append(p.Tags, t)
			}
		}
	}
	if err := a.svc.UpdateProject(r.Context(), p); err != nil {
		return nil, err
	}
	if r.Method == http.MethodDelete {
		return apiutil.NoContent(), nil
	}
	return apiutil.JSON(200, map[string]any{"tags": p.Tags, "links": listLinks(r)}), nil
}

// projectTag checks (GET/HEAD), adds (PUT) or removes (DELETE) one tag.
func (a *API) projectTag(r *http.Request) (*apiutil.Response, error) {
	rule := "identity:update_project"
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		rule = "identity:get_project"
	}
	p, err := a.loadProject(r, rule)
	if err != nil {
		return nil, err
	}
	tag := r.PathValue("tag")
	has := slices.Contains(p.Tags, tag)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !has {
			return nil, apiutil.NotFound("Tag %s not found for project %s.", tag, p.ID)
		}
		return apiutil.NoContent(), nil
	case http.MethodPut:
		if !has {
			p.Tags = append(p.Tags, tag)
			if err := a.svc.UpdateProject(r.Context(), p); err != nil {
				return nil, err
			}
		}
		return (&apiutil.Response{Status: 201}).SetHeader("Location", base(r)+"/projects/"+p.ID+"/tags/"+tag), nil
	default:
		if !has {
			return nil, apiutil.NotFound("Tag %s not found for project %s.", tag, p.ID)
		}
		p.Tags = slices.DeleteFunc(p.Tags, func(t string) bool { return t == tag })
		if err := a.svc.UpdateProject(r.Context(), p); err != nil {
			return nil, err
		}
		return apiutil.NoContent(), nil
	}
}
