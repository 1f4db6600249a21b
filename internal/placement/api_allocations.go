package placement

import (
	"encoding/json"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

const resourcesSchema = `{"type": "object", "minProperties": 1,
	"patternProperties": {"^[0-9A-Z_]+$": {"type": "integer", "minimum": 1}}, "additionalProperties": false}`

// allocDictSchema is the dict format (1.12+) of one consumer's allocations.
func allocDictSchema(allowEmpty bool) string {
	min := `"minProperties": 1,`
	if allowEmpty {
		min = ""
	}
	return `{"type": "object", ` + min + ` "patternProperties": {"^[0-9a-fA-F-]{32,36}$": {"type": "object", "properties": {
		"generation": {"type": "integer"}, "resources": ` + resourcesSchema + `},
		"required": ["resources"], "additionalProperties": false}}, "additionalProperties": false}`
}

// consumerProps are the fields besides allocations in PUT and POST bodies.
func consumerProps(ver apiutil.Version) (props string, required string) {
	props = `"project_id": {"type": "string", "minLength": 1, "maxLength": 255},
		"user_id": {"type": "string", "minLength": 1, "maxLength": 255}`
	required = `"allocations"`
	if ver.AtLeast(v(8)) {
		required += `, "project_id", "user_id"`
	}
	if ver.AtLeast(v(28)) {
		props += `, "consumer_generation": {"type": ["integer", "null"]}`
		required += `, "consumer_generation"`
	}
	if ver.AtLeast(v(34)) {
		props += `, "mappings": {"type": "object", "patternProperties": {"^[a-zA-Z0-9_-]{0,64}$": {"type": "array", "items": {"type": "string"}}}}`
	}
	return props, required
}

func putAllocationsSchema(ver apiutil.Version) *apiutil.Schema {
	props, required := consumerProps(ver)
	var allocs string
	if ver.AtLeast(v(12)) {
		allocs = allocDictSchema(ver.AtLeast(v(28)))
	} else {
		allocs = `{"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
			"resource_provider": {"type": "object", "properties": {"uuid": {"type": "string"}}, "required": ["uuid"], "additionalProperties": false},
			"resources": ` + resourcesSchema + `}, "required": ["resource_provider", "resources"], "additionalProperties": false}}`
	}
	return schema(`{"type": "object", "properties": {"allocations": ` + allocs + `, ` + props + `},
		"required": [` + required + `], "additionalProperties": false}`)
}

func postAllocationsSchema(ver apiutil.Version) *apiutil.Schema {
	props, required := consumerProps(ver)
	return schema(`{"type": "object", "minProperties": 1, "patternProperties": {"^[0-9a-fA-F-]{32,36}$": {"type": "object",
		"properties": {"allocations": ` + allocDictSchema(true) + `, ` + props + `},
		"required": [` + required + `], "additionalProperties": false}}, "additionalProperties": false}`)
}

type consumerBody struct {
	Allocations json.RawMessage `json:"allocations"`
	ProjectID   string          `json:"project_id"`
	UserID      string          `json:"user_id"`
	// ConsumerGeneration is present-and-null for a new consumer.
	ConsumerGeneration json.RawMessage `json:"consumer_generation"`
}

func (b *consumerBody) toSet(consumer string, ver apiutil.Version) (ConsumerAllocations, error) {
	set := ConsumerAllocations{Consumer: consumer, ProjectID: b.ProjectID, UserID: b.UserID, Allocations: map[string]map[string]int64{}}
	if set.ProjectID == "" {
		set.ProjectID = incompleteConsumer
	}
	if set.UserID == "" {
		set.UserID = incompleteConsumer
	}
	if ver.AtLeast(v(12)) {
		var dict map[string]struct {
			Resources map[string]int64 `json:"resources"`
		}
		if err := json.Unmarshal(b.Allocations, &dict); err != nil {
			return set, badRequest("Malformed JSON: %v", err)
		}
		for p, a := range dict {
			if !isUUID(p) {
				return set, badRequest("JSON does not validate: '%s' is not a 'uuid'", p)
			}
			set.Allocations[normUUID(p)] = a.Resources
		}
	} else {
		var list []struct {
			Provider struct {
				UUID string `json:"uuid"`
			} `json:"resource_provider"`
			Resources map[string]int64 `json:"resources"`
		}
		if err := json.Unmarshal(b.Allocations, &list); err != nil {
			return set, badRequest("Malformed JSON: %v", err)
		}
		for _, a := range list {
			if !isUUID(a.Provider.UUID) {
				return set, badRequest("JSON does not validate: '%s' is not a 'uuid'", a.Provider.UUID)
			}
			p := normUUID(a.Provider.UUID)
			if set.Allocations[p] == nil {
				set.Allocations[p] = map[string]int64{}
			}
			for rc, n := range a.Resources {
				set.Allocations[p][rc] += n
			}
		}
	}
	if ver.AtLeast(v(28)) {
		set.CheckGeneration = true
		var g *int64
		if err := json.Unmarshal(b.ConsumerGeneration, &g); err != nil {
			return set, badRequest("JSON does not validate: consumer_generation: %v", err)
		}
		set.Generation = g
	}
	return set, nil
}

func (s *Service) getAllocations(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	c, allocs, gens, err := s.store.consumerAllocations(r.Context(), r.PathValue("consumer"))
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for p, res := range allocs {
		out[p] = map[string]any{"generation": gens[p], "resources": res}
	}
	body := map[string]any{"allocations": out}
	if c != nil && ver.AtLeast(v(12)) {
		body["project_id"] = c.ProjectID
		body["user_id"] = c.UserID
	}
	if c != nil && ver.AtLeast(v(28)) {
		body["consumer_generation"] = c.Generation
	}
	return apiutil.JSON(200, body), nil
}

func (s *Service) putAllocations(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	consumer := r.PathValue("consumer")
	if !isUUID(consumer) {
		return nil, badRequest("Malformed consumer_uuid: %s", consumer)
	}
	var b consumerBody
	if err := decode(r, putAllocationsSchema(ver), &b); err != nil {
		return nil, err
	}
	set, err := b.toSet(normUUID(consumer), ver)
	if err != nil {
		return nil, err
	}
	if err := s.store.replaceAllocations(r.Context(), []ConsumerAllocations{set}, nil); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (s *Service) postAllocations(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	var b map[string]consumerBody
	if err := decode(r, postAllocationsSchema(ver), &b); err != nil {
		return nil, err
	}
	var sets []ConsumerAllocations
	for consumer, cb := range b {
		if !isUUID(consumer) {
			return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", consumer)
		}
		set, err := cb.toSet(normUUID(consumer), ver)
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	if err := s.store.replaceAllocations(r.Context(), sets, nil); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (s *Service) deleteAllocations(r *http.Request) (*apiutil.Response, error) {
	if err := s.DeleteAllocations(r.Context(), r.PathValue("consumer")); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

func (s *Service) providerAllocations(r *http.Request) (*apiutil.Response, error) {
	uuid := r.PathValue("uuid")
	p, err := s.store.provider(r.Context(), s.store.db.Reader(), uuid)
	if err != nil {
		return nil, err
	}
	allocs, err := s.store.providerAllocations(r.Context(), uuid)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for c, res := range allocs {
		out[c] = map[string]any{"resources": res}
	}
	return apiutil.JSON(200, map[string]any{"allocations": out, "resource_provider_generation": p.Generation}), nil
}

func (s *Service) providerUsages(r *http.Request) (*apiutil.Response, error) {
	uuid := r.PathValue("uuid")
	q := s.store.db.Reader()
	p, err := s.store.provider(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	invs, err := s.store.inventories(r.Context(), q, uuid)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for rc, i := range invs {
		out[rc] = i.Used
	}
	return apiutil.JSON(200, map[string]any{"usages": out, "resource_provider_generation": p.Generation}), nil
}

func (s *Service) usages(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	var bad []string
	for k := range q {
		if k != "project_id" && k != "user_id" {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return nil, unexpected(bad)
	}
	project := q.Get("project_id")
	if project == "" {
		return nil, badRequest("Invalid query string parameters: 'project_id' is a required property")
	}
	u, err := s.store.projectUsages(r.Context(), project, q.Get("user_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"usages": u}), nil
}

func (s *Service) allocationCandidates(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	req, err := ParseCandidateRequest(r.URL.Query(), ver)
	if err != nil {
		return nil, err
	}
	res, err := s.AllocationCandidates(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, candidatesView(req, res, ver)), nil
}

type arResources struct {
	Resources map[string]int64 `json:"resources"`
}

type arView struct {
	Allocations map[string]arResources `json:"allocations"`
	Mappings    map[string][]string    `json:"mappings,omitempty"`
}

type summaryView struct {
	Resources map[string]ResourceSummary `json:"resources"`
	Traits    *[]string                  `json:"traits,omitempty"`
	Parent    json.RawMessage            `json:"parent_provider_uuid,omitempty"`
	Root      string                     `json:"root_provider_uuid,omitempty"`
}

// candidatesView renders candidates in the format of microversion ver.
func candidatesView(req *CandidateRequest, res *Candidates, ver apiutil.Version) map[string]any {
	requested := map[string]bool{}
	for _, g := range req.Groups {
		for rc := range g.Resources {
			requested[rc] = true
		}
	}
	reqs := make([]any, 0, len(res.Requests))
	inRequests := map[string]bool{}
	for _, ar := range res.Requests {
		for p := range ar.Allocations {
			inRequests[p] = true
		}
		if ver.AtLeast(v(12)) {
			item := arView{Allocations: make(map[string]arResources, len(ar.Allocations))}
			for p, rs := range ar.Allocations {
				item.Allocations[p] = arResources{rs}
			}
			if ver.AtLeast(v(34)) {
				item.Mappings = ar.Mappings
			}
			reqs = append(reqs, item)
			continue
		}
		list := make([]any, 0, len(ar.Allocations))
		for _, p := range sortedKeys(ar.Allocations) {
			list = append(list, map[string]any{"resource_provider": map[string]any{"uuid": p}, "resources": ar.Allocations[p]})
		}
		reqs = append(reqs, map[string]any{"allocations": list})
	}
	sums := make(map[string]summaryView, len(res.Summaries))
	for uuid, ps := range res.Summaries {
		if !ver.AtLeast(v(29)) && !inRequests[uuid] {
			continue
		}
		item := summaryView{Resources: ps.Resources}
		if !ver.AtLeast(v(27)) {
			item.Resources = map[string]ResourceSummary{}
			for rc, rs := range ps.Resources {
				if requested[rc] {
					item.Resources[rc] = rs
				}
			}
		}
		if ver.AtLeast(v(17)) {
			item.Traits = &ps.Traits
		}
		if ver.AtLeast(v(29)) {
			item.Parent = json.RawMessage("null")
			if ps.ParentUUID != "" {
				item.Parent, _ = json.Marshal(ps.ParentUUID)
			}
			item.Root = ps.RootUUID
		}
		sums[uuid] = item
	}
	return map[string]any{"allocation_requests": reqs, "provider_summaries": sums}
}

func reshaperSchema(ver apiutil.Version) *apiutil.Schema {
	props, required := consumerProps(ver)
	return schema(`{"type": "object", "properties": {
		"inventories": {"type": "object", "patternProperties": {"^[0-9a-fA-F-]{32,36}$": {"type": "object", "properties": {
			"resource_provider_generation": {"type": "integer"},
			"inventories": {"type": "object", "patternProperties": {"^[A-Z0-9_]+$": {"type": "object", "properties": {` + invProps + `},
				"required": ["total"], "additionalProperties": false}}, "additionalProperties": false}},
			"required": ["resource_provider_generation", "inventories"], "additionalProperties": false}}, "additionalProperties": false},
		"allocations": {"type": "object", "patternProperties": {"^[0-9a-fA-F-]{32,36}$": {"type": "object",
			"properties": {"allocations": ` + allocDictSchema(true) + `, ` + props + `},
			"required": [` + required + `], "additionalProperties": false}}, "additionalProperties": false}},
		"required": ["inventories", "allocations"], "additionalProperties": false}`)
}

func (s *Service) reshaper(r *http.Request) (*apiutil.Response, error) {
	ver := apiutil.VersionOf(r.Context())
	var b struct {
		Inventories map[string]struct {
			Generation  int64                      `json:"resource_provider_generation"`
			Inventories map[string]json.RawMessage `json:"inventories"`
		} `json:"inventories"`
		Allocations map[string]consumerBody `json:"allocations"`
	}
	if err := decode(r, reshaperSchema(ver), &b); err != nil {
		return nil, err
	}
	invs := map[string]ProviderInventories{}
	for p, pi := range b.Inventories {
		if !isUUID(p) {
			return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", p)
		}
		out := ProviderInventories{Generation: pi.Generation}
		for _, rc := range sortedKeys(pi.Inventories) {
			var ib invBody
			if err := json.Unmarshal(pi.Inventories[rc], &ib); err != nil {
				return nil, badRequest("Malformed JSON: %v", err)
			}
			inv, err := ib.inventory(rc, ver)
			if err != nil {
				return nil, err
			}
			out.Inventories = append(out.Inventories, inv)
		}
		invs[normUUID(p)] = out
	}
	var sets []ConsumerAllocations
	for consumer, cb := range b.Allocations {
		if !isUUID(consumer) {
			return nil, badRequest("JSON does not validate: '%s' is not a 'uuid'", consumer)
		}
		set, err := cb.toSet(normUUID(consumer), ver)
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	if err := s.store.reshape(r.Context(), invs, sets); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
