package placement

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return normUUID(hex.EncodeToString(b[:]))
}

// ---- resource classes ----

func classView(name string) map[string]any {
	return map[string]any{"name": name, "links": []any{link("self", prefix+"/resource_classes/"+name)}}
}

func (s *Service) listClasses(r *http.Request) (*apiutil.Response, error) {
	custom, err := s.store.customClasses(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(standardClasses)+len(custom))
	for _, c := range standardClasses {
		out = append(out, classView(c))
	}
	for _, c := range custom {
		out = append(out, classView(c))
	}
	return apiutil.JSON(200, map[string]any{"resource_classes": out}), nil
}

var classSchema = schema(`{"type": "object", "properties": {"name": {"type": "string", "pattern": "^CUSTOM_[A-Z0-9_]+$", "maxLength": 255}},
	"required": ["name"], "additionalProperties": false}`)

func (s *Service) createClass(r *http.Request) (*apiutil.Response, error) {
	var b struct {
		Name string `json:"name"`
	}
	if err := decode(r, classSchema, &b); err != nil {
		return nil, err
	}
	created, err := s.store.createClass(r.Context(), b.Name)
	if err != nil {
		return nil, err
	}
	if !created {
		return nil, conflict(codeDuplicateName, ErrDuplicate, "Conflicting resource class already exists: %s", b.Name)
	}
	return (&apiutil.Response{Status: 201}).SetHeader("Location", prefix+"/resource_classes/"+b.Name), nil
}

func (s *Service) getClass(r *http.Request) (*apiutil.Response, error) {
	name := r.PathValue("name")
	ok, err := s.store.classExists(r.Context(), s.store.db.Reader(), name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("No such resource class %s.", name)
	}
	return apiutil.JSON(200, classView(name)), nil
}

func (s *Service) putClass(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	name := r.PathValue("name")
	if !ver.AtLeast(v(7)) {
		// 1.2 - 1.6: rename a custom class.
		var b struct {
			Name string `json:"name"`
		}
		if err := decode(r, classSchema, &b); err != nil {
			return nil, err
		}
		if standardClassSet[name] {
			return nil, badRequest("Cannot update standard resource class %s", name)
		}
		if err := s.store.renameClass(r.Context(), name, b.Name); err != nil {
			return nil, err
		}
		return apiutil.JSON(200, classView(b.Name)), nil
	}
	if !isCustom(name) {
		return nil, badRequest("JSON does not validate: '%s' does not match '^CUSTOM_[A-Z0-9_]+$'", name)
	}
	created, err := s.store.createClass(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if !created {
		return (&apiutil.Response{Status: 204}), nil
	}
	return (&apiutil.Response{Status: 201}).SetHeader("Location", prefix+"/resource_classes/"+name), nil
}

func (s *Service) deleteClass(r *http.Request) (*apiutil.Response, error) {
	name := r.PathValue("name")
	if standardClassSet[name] {
		return nil, badRequest("Cannot delete standard resource class %s", name)
	}
	if err := s.store.deleteClass(r.Context(), name); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- traits ----

func (s *Service) listTraits(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	var bad []string
	for k := range q {
		if k != "name" && k != "associated" {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return nil, unexpected(bad)
	}
	custom, err := s.store.customTraits(r.Context())
	if err != nil {
		return nil, err
	}
	all := append(append([]string{}, standardTraits...), custom...)
	keep := func(string) bool { return true }
	if name, ok := q["name"]; ok {
		val := name[0]
		switch {
		case strings.HasPrefix(val, "startswith:"):
			p := strings.TrimPrefix(val, "startswith:")
			keep = func(t string) bool { return strings.HasPrefix(t, p) }
		case strings.HasPrefix(val, "in:"):
			set := toSet(strings.Split(strings.TrimPrefix(val, "in:"), ","))
			keep = func(t string) bool { return set[t] }
		default:
			return nil, badRequest("Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"%s\"", val)
		}
	}
	if a, ok := q["associated"]; ok {
		var want bool
		switch strings.ToLower(a[0]) {
		case "true":
			want = true
		case "false":
		default:
			return nil, badRequest("The query parameter \"associated\" only accepts \"true\" or \"false\"")
		}
		assoc, err := s.store.associatedTraits(r.Context())
		if err != nil {
			return nil, err
		}
		prev := keep
		keep = func(t string) bool { return prev(t) && assoc[t] == want }
	}
	out := []string{}
	for _, t := range all {
		if keep(t) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return apiutil.JSON(200, map[string]any{"traits": out}), nil
}

func (s *Service) getTrait(r *http.Request) (*apiutil.Response, error) {
	name := r.PathValue("name")
	ok, err := s.store.traitExists(r.Context(), s.store.db.Reader(), name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("No such trait(s): %s", name)
	}
	return apiutil.NoContent(), nil
}

func (s *Service) putTrait(r *http.Request) (*apiutil.Response, error) {
	name := r.PathValue("name")
	if standardTraitSet[name] {
		return apiutil.NoContent(), nil
	}
	if !isCustom(name) {
		return nil, badRequest("The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"")
	}
	created, err := s.store.createTrait(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if !created {
		return apiutil.NoContent(), nil
	}
	return (&apiutil.Response{Status: 201}).SetHeader("Location", prefix+"/traits/"+name), nil
}

func (s *Service) deleteTrait(r *http.Request) (*apiutil.Response, error) {
	name := r.PathValue("name")
	if standardTraitSet[name] {
		return nil, badRequest("Cannot delete standard trait %s.", name)
	}
	if err := s.store.deleteTrait(r.Context(), name); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (s *Service) providerTraitsResponse(r *http.Request, uuid string) (*apiutil.Response, error) {
	q := s.store.db.Reader()
	p, err := s.store.provider(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	traits, err := s.store.providerTraits(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	return lastModified(apiutil.JSON(200, map[string]any{"traits": traits, "resource_provider_generation": p.Generation}), p), nil
}

func (s *Service) getProviderTraits(r *http.Request) (*apiutil.Response, error) {
	return s.providerTraitsResponse(r, r.PathValue("uuid"))
}

var providerTraitsSchema = schema(`{"type": "object", "properties": {
	"traits": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z0-9_]+$"}},
	"resource_provider_generation": {"type": "integer"}},
	"required": ["traits", "resource_provider_generation"], "additionalProperties": false}`)

func (s *Service) putProviderTraits(r *http.Request) (*apiutil.Response, error) {
	uuid := r.PathValue("uuid")
	if _, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid); err != nil {
		return nil, err
	}
	var b struct {
		Traits     []string `json:"traits"`
		Generation int64    `json:"resource_provider_generation"`
	}
	if err := decode(r, providerTraitsSchema, &b); err != nil {
		return nil, err
	}
	if _, err := s.store.setProviderTraits(r.Context(), uuid, b.Generation, b.Traits); err != nil {
		return nil, err
	}
	return s.providerTraitsResponse(r, uuid)
}

func (s *Service) deleteProviderTraits(r *http.Request) (*apiutil.Response, error) {
	if _, err := s.store.setProviderTraits(r.Context(), r.PathValue("uuid"), -1, nil); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- aggregates ----

func (s *Service) aggregatesResponse(r *http.Request, uuid string) (*apiutil.Response, error) {
	q := s.store.db.Reader()
	p, err := s.store.provider(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	aggs, err := s.store.providerAggregates(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"aggregates": aggs}
	if apiutil.VersionOf(r.Context()).AtLeast(v(19)) {
		body["resource_provider_generation"] = p.Generation
	}
	return lastModified(apiutil.JSON(200, body), p), nil
}

func (s *Service) getAggregates(r *http.Request) (*apiutil.Response, error) {
	return s.aggregatesResponse(r, r.PathValue("uuid"))
}

var (
	aggListSchema   = schema(`{"type": "array", "items": {"type": "string"}, "uniqueItems": true}`)
	aggObjectSchema = schema(`{"type": "object", "properties": {
		"aggregates": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
		"resource_provider_generation": {"type": "integer"}},
		"required": ["aggregates", "resource_provider_generation"], "additionalProperties": false}`)
)

func (s *Service) putAggregates(r *http.Request) (*apiutil.Response, error) {
	uuid := r.PathValue("uuid")
	if _, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid); err != nil {
		return nil, err
	}
	var aggs []string
	gen := int64(-1)
	if apiutil.VersionOf(r.Context()).AtLeast(v(19)) {
		var b struct {
			Aggregates []string `json:"aggregates"`
			Generation int64    `json:"resource_provider_generation"`
		}
		if err := decode(r, aggObjectSchema, &b); err != nil {
			return nil, err
		}
		aggs, gen = b.Aggregates, b.Generation
	} else if err := decode(r, aggListSchema, &aggs); err != nil {
		return nil, err
	}
	for i, a := range aggs {
		if !isUUID(a) {
			return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", a)
		}
		aggs[i] = normUUID(a)
	}
	if _, err := s.store.setProviderAggregates(r.Context(), uuid, gen, aggs); err != nil {
		return nil, err
	}
	return s.aggregatesResponse(r, uuid)
}
