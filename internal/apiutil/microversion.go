package apiutil

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Version is an API microversion, "2.90".
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || v.Major == o.Major && v.Minor < o.Minor
}

// AtLeast reports whether v >= o.
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

// ParseVersion parses "X.Y".
func ParseVersion(s string) (Version, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return Version{}, fmt.Errorf("invalid version %q", s)
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return Version{}, fmt.Errorf("invalid version %q", s)
	}
	return Version{a, b}, nil
}

// Microversions describes one service's microversion range and headers.
type Microversions struct {
	Service string // token in OpenStack-API-Version, e.g. "compute"
	Legacy  string // legacy header, e.g. "X-OpenStack-Nova-API-Version"; may be empty
	Min     Version
	Max     Version
}

type versionKey struct{}

// Negotiate reads the requested microversion from the headers. No header
// means Min; "latest" means Max; a malformed value is a 400 and a value
// outside [Min, Max] a 406.
func (m Microversions) Negotiate(h http.Header) (Version, error) {
	req := ""
	for _, v := range h.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(v, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, m.Service) {
				req = strings.TrimSpace(ver)
			}
		}
	}
	if req == "" && m.Legacy != "" {
		req = strings.TrimSpace(h.Get(m.Legacy))
	}
	switch {
	case req == "":
		return m.Min, nil
	case strings.EqualFold(req, "latest"):
		return m.Max, nil
	}
	v, err := ParseVersion(req)
	if err != nil {
		return Version{}, BadRequest("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", req)
	}
	if v.Less(m.Min) || m.Max.Less(v) {
		return Version{}, &Error{Status: 406, Message: fmt.Sprintf(
			"Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, m.Min, m.Max)}
	}
	return v, nil
}

// Headers writes the response headers that announce version v.
func (m Microversions) Headers(h http.Header, v Version) {
	h.Set("OpenStack-API-Version", m.Service+" "+v.String())
	vary := "OpenStack-API-Version"
	if m.Legacy != "" {
		h.Set(m.Legacy, v.String())
		vary += ", " + m.Legacy
	}
	h.Set("Vary", vary)
}

// Before is a Service.Before hook that negotiates the version and stores
// it in the request context.
func (m Microversions) Before(r *http.Request) (*http.Request, error) {
	v, err := m.Negotiate(r.Header)
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), versionKey{}, v)), nil
}

// Decorate is a Service.Decorate hook that announces the negotiated version.
func (m Microversions) Decorate(r *http.Request, h http.Header) {
	v, ok := r.Context().Value(versionKey{}).(Version)
	if !ok {
		v = m.Min
	}
	m.Headers(h, v)
}

// VersionOf returns the microversion negotiated for the request.
func VersionOf(ctx context.Context) Version {
	v, _ := ctx.Value(versionKey{}).(Version)
	return v
}
