package network

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// kind is how a query string value converts to a column value.
type kind int

const (
	kString kind = iota
	kBool
	kInt
)

// column is an attribute backed by one SQL expression: it can be filtered
// on and sorted by.
type column struct {
	expr     string
	kind     kind
	nullable bool
}

// sortExpr is the expression used for ordering and keyset comparison;
// NULLs are folded into a value that sorts first on both engines.
func (c column) sortExpr() string {
	if !c.nullable {
		return c.expr
	}
	if c.kind == kString {
		return "COALESCE(" + c.expr + ", '')"
	}
	return "COALESCE(" + c.expr + ", -1)"
}

// listDef describes how a collection is queried: its table, the
// attributes backed by columns, the attributes that need a custom filter
// (lists such as fixed_ips) and every attribute name the resource has.
type listDef struct {
	resource   string // "network": tag resource type and error names
	collection string // "networks"
	notFound   string // Neutron error type for a missing marker, "NetworkNotFound"
	table      string // "net_networks"
	alias      string // "n"
	cols       map[string]column
	special    map[string]func(b *qb, vals []string) error
	attrs      []string // every attribute the resource renders
}

// qb accumulates WHERE conditions and their arguments.
type qb struct {
	where []string
	args  []any
}

func (b *qb) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *qb) in(vals []any) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = b.arg(v)
	}
	return strings.Join(ph, ", ")
}

func (b *qb) add(cond string) { b.where = append(b.where, cond) }

func (b *qb) clause() string {
	if len(b.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(b.where, " AND ")
}

// listQuery is a parsed list request.
type listQuery struct {
	b        qb
	sortKeys []string
	sortDirs []bool // true = descending
	limit    int
	marker   string
	reverse  bool
	fields   []string
}

// reserved query parameters that are not attribute filters.
var reservedParams = map[string]bool{
	"fields": true, "limit": true, "marker": true, "sort_key": true, "sort_dir": true,
	"page_reverse": true, "tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true,
	"verbose": true,
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "t", "yes", "y", "on":
		return true, true
	case "false", "0", "f", "no", "n", "off":
		return false, true
	}
	return false, false
}

func convertFilter(name string, c column, v string) (any, error) {
	switch c.kind {
	case kBool:
		b, ok := parseBool(v)
		if !ok {
			return nil, badInput("Invalid input for %s. Reason: '%s' is not a valid boolean value.", name, v)
		}
		return b, nil
	case kInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, badInput("Invalid input for %s. Reason: '%s' is not an integer.", name, v)
		}
		return n, nil
	}
	return v, nil
}

// parseList reads filters, sorting, pagination and field selection.
func (d *listDef) parseList(r *http.Request, maxLimit int) (*listQuery, error) {
	q := r.URL.Query()
	lq := &listQuery{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := q[k]
		if reservedParams[k] {
			continue
		}
		if c, ok := d.cols[k]; ok {
			conv := make([]any, 0, len(vals))
			nullMatch := false
			for _, v := range vals {
				if c.nullable && (v == "" || strings.EqualFold(v, "null") || strings.EqualFold(v, "none")) && c.kind != kString {
					nullMatch = true
					continue
				}
				x, err := convertFilter(k, c, v)
				if err != nil {
					return nil, err
				}
				conv = append(conv, x)
			}
			var parts []string
			if len(conv) == 1 {
				parts = append(parts, c.expr+" = "+lq.b.arg(conv[0]))
			} else if len(conv) > 1 {
				parts = append(parts, c.expr+" IN ("+lq.b.in(conv)+")")
			}
			if c.nullable && c.kind == kString && slices.Contains(vals, "") {
				parts = append(parts, c.expr+" IS NULL")
			}
			if nullMatch {
				parts = append(parts, c.expr+" IS NULL")
			}
			lq.b.add("(" + strings.Join(parts, " OR ") + ")")
			continue
		}
		if f, ok := d.special[k]; ok {
			if err := f(&lq.b, vals); err != nil {
				return nil, err
			}
			continue
		}
		if slices.Contains(d.attrs, k) {
			// A known attribute that cannot be filtered on: Neutron ignores it.
			continue
		}
		return nil, badInput("['%s'] is invalid attribute for filtering", k)
	}
	for _, p := range []struct {
		key    string
		not    bool
		every  bool
		single bool
	}{{"tags", false, true, false}, {"tags-any", false, false, false}, {"not-tags", true, true, false}, {"not-tags-any", true, false, false}} {
		vals := q[p.key]
		if len(vals) == 0 {
			continue
		}
		var tags []any
		for _, v := range vals {
			for _, t := range strings.Split(v, ",") {
				if t != "" && !slices.Contains(tags, any(t)) {
					tags = append(tags, t)
				}
			}
		}
		if len(tags) == 0 {
			continue
		}
		sub := "SELECT resource_id FROM net_tags WHERE resource_type = " + lq.b.arg(d.resource) + " AND tag IN (" + lq.b.in(tags) + ")"
		if p.every {
			sub += " GROUP BY resource_id HAVING COUNT(*) = " + lq.b.arg(len(tags))
		}
		op := " IN "
		if p.not {
			op = " NOT IN "
		}
		lq.b.add(d.alias + ".id" + op + "(" + sub + ")")
	}

	// Sorting: sort_key and sort_dir pair up; a missing direction is asc.
	sk, sd := q["sort_key"], q["sort_dir"]
	if len(sd) > len(sk) {
		return nil, badInput("The number of sort_keys and sort_dirs must be same")
	}
	for i, k := range sk {
		if _, ok := d.cols[k]; !ok {
			if k == "tenant_id" {
				k = "project_id"
			} else {
				return nil, badInput("%s is an invalid attribute for sort_key", k)
			}
		}
		desc := false
		if i < len(sd) {
			switch strings.ToLower(sd[i]) {
			case "asc":
			case "desc":
				desc = true
			default:
				return nil, badInput("%s is an invalid value for sort_dir, valid value is 'asc' or 'desc'", sd[i])
			}
		}
		if slices.Contains(lq.sortKeys, k) {
			continue
		}
		lq.sortKeys = append(lq.sortKeys, k)
		lq.sortDirs = append(lq.sortDirs, desc)
	}
	if !slices.Contains(lq.sortKeys, "id") {
		lq.sortKeys = append(lq.sortKeys, "id")
		lq.sortDirs = append(lq.sortDirs, false)
	}

	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, badInput("Bad limit request: Limit must be an integer.")
		}
		if n < 0 {
			return nil, badInput("Bad limit request: Limit must be an integer 0 or greater and not '%d'.", n)
		}
		lq.limit = n
	}
	if maxLimit > 0 && lq.limit > maxLimit {
		lq.limit = maxLimit
	}
	lq.marker = q.Get("marker")
	if s := q.Get("page_reverse"); s != "" {
		b, ok := parseBool(s)
		if !ok {
			return nil, badInput("Invalid input for page_reverse. Reason: '%s' is not a valid boolean value.", s)
		}
		lq.reverse = b
	}
	for _, f := range q["fields"] {
		for _, x := range strings.Split(f, ",") {
			if x = strings.TrimSpace(x); x != "" {
				lq.fields = append(lq.fields, x)
			}
		}
	}
	return lq, nil
}

// listRows executes the list query (the caller has added its visibility
// condition to lq.b) selecting sel, and returns the page in the requested
// order and whether more rows follow it.
func listRows[T any](ctx context.Context, q db.Querier, d *listDef, lq *listQuery, sel string, scan func(*sql.Rows) (T, error)) ([]T, bool, error) {
	b := lq.b
	b.where = slices.Clone(b.where)
	b.args = slices.Clone(b.args)
	exprs := make([]string, len(lq.sortKeys))
	for i, k := range lq.sortKeys {
		if k == "id" {
			exprs[i] = d.alias + ".id"
		} else {
			exprs[i] = d.cols[k].sortExpr()
		}
	}
	desc := slices.Clone(lq.sortDirs)
	if lq.reverse {
		for i := range desc {
			desc[i] = !desc[i]
		}
	}
	if lq.marker != "" {
		vals := make([]any, len(exprs))
		ptrs := make([]any, len(exprs))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := q.QueryRowContext(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+d.table+" "+d.alias+" WHERE "+d.alias+".id = $1", lq.marker).Scan(ptrs...)
		if err == sql.ErrNoRows {
			return nil, false, notFound(d.notFound, "%s %s could not be found.", titleResource(d.resource), lq.marker)
		}
		if err != nil {
			return nil, false, err
		}
		var ors []string
		for i := range exprs {
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, exprs[j]+" = "+b.arg(d.markerValue(lq.sortKeys[j], vals[j])))
			}
			op := " > "
			if desc[i] {
				op = " < "
			}
			ands = append(ands, exprs[i]+op+b.arg(d.markerValue(lq.sortKeys[i], vals[i])))
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		b.add("(" + strings.Join(ors, " OR ") + ")")
	}
	order := make([]string, len(exprs))
	for i, e := range exprs {
		if desc[i] {
			order[i] = e + " DESC"
		} else {
			order[i] = e + " ASC"
		}
	}
	query := "SELECT " + sel + " FROM " + d.table + " " + d.alias + b.clause() + " ORDER BY " + strings.Join(order, ", ")
	if lq.limit > 0 {
		query += " LIMIT " + strconv.Itoa(lq.limit+1)
	}
	rows, err := q.QueryContext(ctx, query, b.args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := false
	if lq.limit > 0 && len(out) > lq.limit {
		more = true
		out = out[:lq.limit]
	}
	if lq.reverse {
		slices.Reverse(out)
	}
	return out, more, nil
}

// markerValue turns a scanned marker value into a query argument that
// compares on both engines (SQLite hands booleans back as integers).
func (d *listDef) markerValue(key string, v any) any {
	if x, ok := v.([]byte); ok {
		v = string(x)
	}
	if c, ok := d.cols[key]; ok && c.kind == kBool {
		if n, ok := v.(int64); ok {
			return n != 0
		}
	}
	return v
}

// pageLinks builds the <collection>_links of a paged list: next when rows
// follow in the paging direction, previous when a marker was given.
func pageLinks(r *http.Request, base string, lq *listQuery, firstID, lastID string, more bool) []apiutil.Link {
	if lq.limit == 0 || firstID == "" {
		return nil
	}
	var links []apiutil.Link
	mk := func(rel, marker string, reverse bool) apiutil.Link {
		q := r.URL.Query()
		q.Set("marker", marker)
		q.Set("limit", strconv.Itoa(lq.limit))
		if reverse {
			q.Set("page_reverse", "True")
		} else {
			q.Del("page_reverse")
		}
		return apiutil.Link{Rel: rel, Href: apiutil.URLWithQuery(base, r.URL.Path, url.Values(q))}
	}
	forwardMore, backMore := more, lq.marker != ""
	if lq.reverse {
		forwardMore, backMore = lq.marker != "", more
	}
	if forwardMore {
		links = append(links, mk("next", lastID, false))
	}
	if backMore {
		links = append(links, mk("previous", firstID, true))
	}
	return links
}

// selectFields keeps only the requested fields of a rendered resource.
func selectFields(m map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return m
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return out
}

func titleResource(s string) string {
	switch s {
	case "network":
		return "Network"
	case "subnet":
		return "Subnet"
	case "port":
		return "Port"
	case "security_group":
		return "Security group"
	case "security_group_rule":
		return "Security group rule"
	case "router":
		return "Router"
	case "floatingip":
		return "Floating IP"
	case "subnetpool":
		return "Subnet pool"
	}
	return fmt.Sprint(s)
}
