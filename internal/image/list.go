package image

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// sortKeys are the keys Glance accepts in sort, sort_key.
var sortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// listParams are the query parameters that are not property filters.
var listParams = []string{"limit", "marker", "sort", "sort_key", "sort_dir", "name", "status", "visibility",
	"owner", "tag", "disk_format", "container_format", "id", "member_status", "size_min", "size_max",
	"created_at", "updated_at", "protected", "os_hidden", "checksum", "os_hash_value"}

// parseListQuery validates the filters, sorting and limit of GET
// /v2/images. The marker is returned separately; the service resolves it.
func parseListQuery(q url.Values, defLimit, maxLimit int) (ListQuery, string, error) {
	var lq ListQuery
	lq.Limit = defLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return lq, "", apiutil.BadRequest("limit param must be an integer")
		}
		if n < 0 {
			return lq, "", apiutil.BadRequest("limit param must be positive")
		}
		lq.Limit = n
	}
	if lq.Limit > maxLimit {
		lq.Limit = maxLimit
	}
	var err error
	if lq.Sort, err = parseSort(q); err != nil {
		return lq, "", err
	}
	if v := q.Get("visibility"); v != "" {
		if !slices.Contains([]string{VisPublic, VisPrivate, VisShared, VisCommunity, "all"}, v) {
			return lq, "", apiutil.BadRequest("Invalid visibility value: %s", v)
		}
		lq.Visibility = v
	}
	if v := q.Get("member_status"); v != "" {
		if !slices.Contains([]string{MemberAccepted, MemberPending, MemberRejected, "all"}, v) {
			return lq, "", apiutil.BadRequest("Invalid status value: %s", v)
		}
		lq.MemberStatus = v
	}
	lists := []struct {
		key     string
		dst     *[]string
		allowed []string
	}{
		{"id", &lq.IDs, nil}, {"name", &lq.Names, nil}, {"status", &lq.Statuses, allStatuses},
		{"disk_format", &lq.DiskFormats, nil}, {"container_format", &lq.ContainerFormats, nil},
	}
	for _, l := range lists {
		v, ok := q[l.key]
		if !ok || len(v) == 0 {
			continue
		}
		vals, err := parseIn(v[0])
		if err != nil {
			return lq, "", err
		}
		for _, x := range vals {
			if l.allowed != nil && !slices.Contains(l.allowed, x) {
				return lq, "", apiutil.BadRequest("Invalid status value: %s", x)
			}
		}
		*l.dst = vals
	}
	if v, ok := q["owner"]; ok {
		lq.Owner = &v[0]
	}
	lq.Tags = q["tag"]
	for _, k := range []string{"size_min", "size_max"} {
		s := q.Get(k)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return lq, "", apiutil.BadRequest("Invalid value for %s: %s. It must be a non-negative integer.", k, s)
		}
		if k == "size_min" {
			lq.SizeMin = &n
		} else {
			lq.SizeMax = &n
		}
	}
	for _, k := range []string{"protected", "os_hidden"} {
		s := q.Get(k)
		if s == "" {
			continue
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return lq, "", apiutil.BadRequest("Invalid value '%s' for parameter '%s': Expected boolean", s, k)
		}
		if k == "protected" {
			lq.Protected = &b
		} else {
			lq.Hidden = &b
		}
	}
	for _, k := range []string{"created_at", "updated_at"} {
		for _, s := range q[k] {
			tf, err := parseTimeFilter(k, s)
			if err != nil {
				return lq, "", err
			}
			lq.Times = append(lq.Times, tf)
		}
	}
	for k, v := range q {
		if slices.Contains(listParams, k) || len(v) == 0 {
			continue
		}
		if lq.Props == nil {
			lq.Props = map[string]string{}
		}
		lq.Props[k] = v[0]
	}
	for _, k := range []string{"checksum", "os_hash_value"} {
		if v := q.Get(k); v != "" {
			if lq.Columns == nil {
				lq.Columns = map[string]string{}
			}
			lq.Columns[k] = v
		}
	}
	return lq, q.Get("marker"), nil
}

// parseIn reads a filter value, expanding the "in:" operator:
// in:a,"b, c",d.
func parseIn(v string) ([]string, error) {
	rest, ok := strings.CutPrefix(v, "in:")
	if !ok {
		return []string{v}, nil
	}
	var (
		out   []string
		cur   strings.Builder
		quote bool
	)
	for i := 0; i < len(rest); i++ {
		ch := rest[i]
		switch {
		case ch == '"':
			quote = !quote
		case ch == ',' && !quote:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	if quote {
		return nil, apiutil.BadRequest("Invalid filter value %s. The quote is not closed.", v)
	}
	out = append(out, cur.String())
	return out, nil
}

var timeOps = []string{"gt", "gte", "eq", "neq", "lt", "lte"}

func parseTimeFilter(col, s string) (TimeFilter, error) {
	op, val := "eq", s
	if o, rest, ok := strings.Cut(s, ":"); ok && slices.Contains(timeOps, o) {
		op, val = o, rest
	} else if ok && !strings.Contains(o, "-") && !strings.Contains(o, "T") {
		return TimeFilter{}, apiutil.BadRequest("Unable to filter on a unknown operator.")
	}
	t, err := parseISOTime(val)
	if err != nil {
		return TimeFilter{}, apiutil.BadRequest("Unable to filter by %s: invalid time format %q.", col, val)
	}
	return TimeFilter{Column: col, Op: op, Time: t}, nil
}

func parseISOTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05",
		"2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

func parseSort(q url.Values) ([]SortKey, error) {
	_, hasSort := q["sort"]
	_, hasKey := q["sort_key"]
	_, hasDir := q["sort_dir"]
	if hasSort && (hasKey || hasDir) {
		return nil, apiutil.BadRequest("Old and new sorting syntax cannot be combined")
	}
	var keys []SortKey
	add := func(k, dir string) error {
		if !slices.Contains(sortKeys, k) {
			return apiutil.BadRequest("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(sortKeys, ", "))
		}
		if dir != "asc" && dir != "desc" {
			return apiutil.BadRequest("Invalid sort direction: %s", dir)
		}
		if slices.ContainsFunc(keys, func(s SortKey) bool { return s.Key == k }) {
			return apiutil.BadRequest("Sort key %s is given more than once.", k)
		}
		keys = append(keys, SortKey{Key: k, Desc: dir == "desc"})
		return nil
	}
	if hasSort {
		for _, part := range strings.Split(q.Get("sort"), ",") {
			k, dir, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				dir = "desc"
			}
			if err := add(strings.TrimSpace(k), strings.TrimSpace(dir)); err != nil {
				return nil, err
			}
		}
		return keys, nil
	}
	sk, sd := q["sort_key"], q["sort_dir"]
	if len(sk) == 0 {
		sk = []string{"created_at"}
	}
	if len(sd) > 1 && len(sd) != len(sk) {
		return nil, apiutil.BadRequest("Number of sort dirs does not match the number of sort keys")
	}
	for i, k := range sk {
		dir := "desc"
		switch {
		case len(sd) == 1:
			dir = sd[0]
		case len(sd) > 1:
			dir = sd[i]
		}
		if err := add(k, dir); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
