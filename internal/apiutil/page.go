package apiutil

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Page is the limit/marker pagination of a list request.
type Page struct {
	Limit  int // 0 means the service default
	Marker string
}

// ParsePage reads limit and marker from the query. limit must be a
// non-negative integer; it is capped at max (when max > 0).
func ParsePage(r *http.Request, def, max int) (Page, error) {
	q := r.URL.Query()
	p := Page{Limit: def, Marker: q.Get("marker")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, BadRequest("Invalid limit %q: limit must be a non-negative integer.", s)
		}
		p.Limit = n
	}
	if max > 0 && (p.Limit == 0 || p.Limit > max) {
		p.Limit = max
	}
	return p, nil
}

// Link is a pagination or self link.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// NextLink builds the link to the page after marker: the same path and
// query under base (the service's public URL), with marker replaced.
func NextLink(r *http.Request, base, marker string) Link {
	q := r.URL.Query()
	q.Set("marker", marker)
	return Link{Rel: "next", Href: strings.TrimRight(base, "/") + r.URL.Path + "?" + q.Encode()}
}

// URLWithQuery joins base, path and an encoded query.
func URLWithQuery(base, path string, q url.Values) string {
	u := strings.TrimRight(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}
