package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
)

// Policy rule names of quotas and limits.
const (
	ruleQuotaShow         = "os_compute_api:os-quota-sets:show"
	ruleQuotaDetail       = "os_compute_api:os-quota-sets:detail"
	ruleQuotaDefaults     = "os_compute_api:os-quota-sets:defaults"
	ruleQuotaUpdate       = "os_compute_api:os-quota-sets:update"
	ruleQuotaDelete       = "os_compute_api:os-quota-sets:delete"
	ruleQuotaClassShow    = "os_compute_api:os-quota-class-sets:show"
	ruleQuotaClassUpdate  = "os_compute_api:os-quota-class-sets:update"
	ruleLimits            = "os_compute_api:limits"
	ruleLimitsOtherProjec = "os_compute_api:limits:other_project"
)

var (
	networkQuotas  = []string{quota.FixedIPs, quota.FloatingIPs, quota.SecurityGroups, quota.SecurityGroupRules}
	injectedQuotas = []string{quota.InjectedFiles, quota.InjectedFileContentBytes, quota.InjectedFilePathBytes}
	groupQuotas    = []string{quota.ServerGroups, quota.ServerGroupMembers}
)

// quotaSetResources are the resources os-quota-sets shows and accepts at
// the request's version.
func quotaSetResources(r *http.Request) []string {
	var drop []string
	if atLeast(r, V2_36) {
		drop = append(drop, networkQuotas...)
	}
	if atLeast(r, V2_57) {
		drop = append(drop, injectedQuotas...)
	}
	return without(quota.Resources(), drop)
}

// quotaClassResources are those of os-quota-class-sets.
func quotaClassResources(r *http.Request) []string {
	drop := groupQuotas
	if atLeast(r, V2_50) {
		drop = networkQuotas
	}
	if atLeast(r, V2_57) {
		drop = append(slices.Clone(drop), injectedQuotas...)
	}
	return without(quota.Resources(), drop)
}

func without(all, drop []string) []string {
	return slices.DeleteFunc(all, func(s string) bool { return slices.Contains(drop, s) })
}

func quotaBody(id string, resources []string, values map[string]int64) map[string]any {
	out := map[string]any{}
	if id != "" {
		out["id"] = id
	}
	for _, r := range resources {
		out[r] = values[r]
	}
	return out
}

func quotaQuery(r *http.Request) error {
	if atLeast(r, V2_75) {
		return strictQuery(r, "user_id")
	}
	return nil
}

func (a *API) showQuotas(detail bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		if err := quotaQuery(r); err != nil {
			return nil, err
		}
		project := r.PathValue("project_id")
		user, _ := queryLast(r.URL.Query(), "user_id")
		rule := ruleQuotaShow
		if detail {
			rule = ruleQuotaDetail
		}
		if err := a.authorize(r, rule, map[string]string{"project_id": project, "user_id": user}); err != nil {
			return nil, err
		}
		q := a.st.DB().Reader()
		limits, err := a.quota.Limits(ctx(r), q, project, user)
		if err != nil {
			return nil, internal(err)
		}
		res := quotaSetResources(r)
		if !detail {
			return apiutil.JSON(200, map[string]any{"quota_set": quotaBody(project, res, limits)}), nil
		}
		used, err := a.quota.Usage(ctx(r), q, project, user)
		if err != nil {
			return nil, internal(err)
		}
		out := map[string]any{"id": project}
		for _, name := range res {
			out[name] = map[string]any{"in_use": used[name], "limit": limits[name], "reserved": 0}
		}
		return apiutil.JSON(200, map[string]any{"quota_set": out}), nil
	}
}

func (a *API) quotaDefaults(r *http.Request) (*apiutil.Response, error) {
	project := r.PathValue("project_id")
	if err := a.authorize(r, ruleQuotaDefaults, map[string]string{"project_id": project}); err != nil {
		return nil, err
	}
	limits, err := a.quota.ClassLimits(ctx(r), a.st.DB().Reader(), quota.DefaultClass)
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"quota_set": quotaBody(project, quotaSetResources(r), limits)}), nil
}

// quotaSchema builds the update schema of a quota set or class body.
func quotaSchema(name, key string, resources []string, force bool) *apiutil.Schema {
	common := `{"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}`
	props := make([]string, 0, len(resources)+1)
	for _, r := range resources {
		props = append(props, `"`+r+`": `+common)
	}
	if force {
		props = append(props, `"force": `+booleanSchema)
	}
	return apiutil.MustSchema(name, `{"type": "object", "properties": {"`+key+`": {"type": "object",
		"properties": {`+strings.Join(props, ", ")+`}, "additionalProperties": false}},
		"required": ["`+key+`"], "additionalProperties": false}`)
}

// Update schemas by the version they start at.
var quotaSetSchemas, quotaClassSchemas = map[string]*apiutil.Schema{}, map[string]*apiutil.Schema{}

func schemaFor(cache map[string]*apiutil.Schema, name, key string, resources []string, force bool) *apiutil.Schema {
	id := name + ":" + strings.Join(resources, ",")
	if s, ok := cache[id]; ok {
		return s
	}
	s := quotaSchema(name, key, resources, force)
	cache[id] = s
	return s
}

func init() {
	// Compile every variant up front so requests only read the caches.
	for _, v := range []string{"2.1", "2.36", "2.50", "2.57"} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("OpenStack-API-Version", "compute "+v)
		r, _ = Microversions.Before(r)
		schemaFor(quotaSetSchemas, "compute-quota-set", "quota_set", quotaSetResources(r), true)
		schemaFor(quotaClassSchemas, "compute-quota-class-set", "quota_class_set", quotaClassResources(r), false)
	}
}

// quotaValues decodes and range-checks the limits of an update body.
func quotaValues(r *http.Request, cache map[string]*apiutil.Schema, name, key string, resources []string, force bool) (map[string]int64, bool, error) {
	doc, err := decode(r, schemaFor(cache, name, key, resources, force))
	if err != nil {
		return nil, false, err
	}
	m, err := members(doc[key])
	if err != nil {
		return nil, false, err
	}
	out := map[string]int64{}
	forced := false
	for k, raw := range m {
		if k == "force" {
			forced = boolValue(raw)
			continue
		}
		v, err := intValue(k, raw, -1, maxInt)
		if err != nil {
			return nil, false, err
		}
		out[k] = v
	}
	return out, forced, nil
}

func (a *API) updateQuotas(r *http.Request) (*apiutil.Response, error) {
	if err := quotaQuery(r); err != nil {
		return nil, err
	}
	project := r.PathValue("project_id")
	user, _ := queryLast(r.URL.Query(), "user_id")
	if err := a.authorize(r, ruleQuotaUpdate, map[string]string{"project_id": project, "user_id": user}); err != nil {
		return nil, err
	}
	res := quotaSetResources(r)
	values, force, err := quotaValues(r, quotaSetSchemas, "compute-quota-set", "quota_set", res, true)
	if err != nil {
		return nil, err
	}
	if err := a.quota.Update(ctx(r), project, user, values, force); err != nil {
		if le, ok := err.(*quota.LimitError); ok {
			return nil, apiutil.BadRequest("%s", le.Error())
		}
		return nil, internal(err)
	}
	limits, err := a.quota.Limits(ctx(r), a.st.DB().Reader(), project, user)
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"quota_set": quotaBody("", res, limits)}), nil
}

func (a *API) deleteQuotas(r *http.Request) (*apiutil.Response, error) {
	if err := quotaQuery(r); err != nil {
		return nil, err
	}
	project := r.PathValue("project_id")
	user, _ := queryLast(r.URL.Query(), "user_id")
	if err := a.authorize(r, ruleQuotaDelete, map[string]string{"project_id": project, "user_id": user}); err != nil {
		return nil, err
	}
	if err := a.quota.Reset(ctx(r), project, user); err != nil {
		return nil, internal(err)
	}
	return &apiutil.Response{Status: http.StatusAccepted}, nil
}

func (a *API) showQuotaClass(r *http.Request) (*apiutil.Response, error) {
	class := r.PathValue("id")
	if err := a.authorize(r, ruleQuotaClassShow, map[string]string{"quota_class": class}); err != nil {
		return nil, err
	}
	limits, err := a.quota.ClassLimits(ctx(r), a.st.DB().Reader(), class)
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"quota_class_set": quotaBody(class, quotaClassResources(r), limits)}), nil
}

func (a *API) updateQuotaClass(r *http.Request) (*apiutil.Response, error) {
	class := r.PathValue("id")
	if err := a.authorize(r, ruleQuotaClassUpdate, map[string]string{"quota_class": class}); err != nil {
		return nil, err
	}
	if len(class) > 255 {
		return nil, apiutil.BadRequest("quota_class_name must be at most 255 characters")
	}
	res := quotaClassResources(r)
	values, _, err := quotaValues(r, quotaClassSchemas, "compute-quota-class-set", "quota_class_set", res, false)
	if err != nil {
		return nil, err
	}
	if err := a.quota.UpdateClass(ctx(r), class, values); err != nil {
		return nil, internal(err)
	}
	limits, err := a.quota.ClassLimits(ctx(r), a.st.DB().Reader(), class)
	if err != nil {
		return nil, internal(err)
	}
	return apiutil.JSON(200, map[string]any{"quota_class_set": quotaBody("", res, limits)}), nil
}

// ---- limits ----

// absoluteLimits maps /limits names to quota resources, with the version
// that removed each (zero: still present).
var absoluteLimits = []struct {
	name, resource string
	used           bool
	gone           *[2]int
}{
	{"maxTotalInstances", quota.Instances, false, nil},
	{"maxTotalCores", quota.Cores, false, nil},
	{"maxTotalRAMSize", quota.RAM, false, nil},
	{"maxServerMeta", quota.MetadataItems, false, nil},
	{"maxTotalKeypairs", quota.KeyPairs, false, nil},
	{"maxServerGroups", quota.ServerGroups, false, nil},
	{"maxServerGroupMembers", quota.ServerGroupMembers, false, nil},
	{"maxImageMeta", quota.MetadataItems, false, &[2]int{2, 39}},
	{"maxPersonality", quota.InjectedFiles, false, &[2]int{2, 57}},
	{"maxPersonalitySize", quota.InjectedFileContentBytes, false, &[2]int{2, 57}},
	{"maxSecurityGroups", quota.SecurityGroups, false, &[2]int{2, 36}},
	{"maxSecurityGroupRules", quota.SecurityGroupRules, false, &[2]int{2, 36}},
	{"maxTotalFloatingIps", quota.FloatingIPs, false, &[2]int{2, 36}},
	{"totalInstancesUsed", quota.Instances, true, nil},
	{"totalCoresUsed", quota.Cores, true, nil},
	{"totalRAMUsed", quota.RAM, true, nil},
	{"totalServerGroupsUsed", quota.ServerGroups, true, nil},
	{"totalSecurityGroupsUsed", quota.SecurityGroups, true, &[2]int{2, 36}},
	{"totalFloatingIpsUsed", quota.FloatingIPs, true, &[2]int{2, 36}},
}

func (a *API) limits(r *http.Request) (*apiutil.Response, error) {
	if atLeast(r, V2_75) {
		if err := strictQuery(r, "tenant_id"); err != nil {
			return nil, err
		}
	}
	c := caller(r)
	project := c.ProjectID
	if err := a.authorize(r, ruleLimits, own(r)); err != nil {
		return nil, err
	}
	if t, ok := queryLast(r.URL.Query(), "tenant_id"); ok && t != "" && t != project {
		// Nova ignores tenant_id for callers not allowed to see other
		// projects' limits instead of failing.
		if a.allowed(r, ruleLimitsOtherProjec, map[string]string{"project_id": t}) {
			project = t
		}
	}
	q := a.st.DB().Reader()
	lim, err := a.quota.Limits(ctx(r), q, project, "")
	if err != nil {
		return nil, internal(err)
	}
	used, err := a.quota.Usage(ctx(r), q, project, "")
	if err != nil {
		return nil, internal(err)
	}
	abs := map[string]any{}
	v := apiutil.VersionOf(r.Context())
	for _, l := range absoluteLimits {
		if l.gone != nil && v.AtLeast(apiutil.Version{Major: l.gone[0], Minor: l.gone[1]}) {
			continue
		}
		if l.used {
			abs[l.name] = used[l.resource]
		} else {
			abs[l.name] = lim[l.resource]
		}
	}
	return apiutil.JSON(200, map[string]any{"limits": map[string]any{"absolute": abs, "rate": []any{}}}), nil
}
