package apiutil

import (
	"net/http"
	"strings"
)

// accessServiceTypes are the catalog types under which a service's access
// rules are written (an application credential's rule names a service
// type, as in Keystone).
var accessServiceTypes = map[string][]string{
	"identity":  {"identity"},
	"compute":   {"compute"},
	"network":   {"network"},
	"image":     {"image"},
	"volume":    {"block-storage", "volumev3"},
	"placement": {"placement"},
}

// accessTarget returns the service types and the path an access rule is
// matched against: the request path below the service's mount point
// (/v2.1/servers for /compute/v2.1/servers, /v2/images for
// /image/v2/images), as the service's own application sees it behind
// Keystone's middleware. Identity is mounted at the root.
func (s *Service) accessTarget(r *http.Request) ([]string, string) {
	types := accessServiceTypes[s.Name]
	if types == nil {
		types = []string{s.Name}
	}
	if s.Name == "identity" {
		return types, r.URL.Path
	}
	return types, strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(s.Prefix, "/"))
}
