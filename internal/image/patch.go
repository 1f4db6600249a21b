package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Media types of PATCH /v2/images/{id}.
const (
	patchMediaV21 = "application/openstack-images-v2.1-json-patch"
	patchMediaV20 = "application/openstack-images-v2.0-json-patch"
)

// readOnlyAttrs may never be set by a client; reservedAttrs are names
// Glance keeps for itself. Both are refused with 403.
var (
	readOnlyAttrs = []string{"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
		"created_at", "updated_at", "direct_url", "self", "file", "schema", "stores"}
	reservedAttrs = []string{"deleted", "deleted_at", "location"}
	baseAttrs     = []string{"name", "visibility", "protected", "os_hidden", "min_disk", "min_ram",
		"disk_format", "container_format", "tags", "owner", "locations"}
)

func isReserved(k string) bool {
	return slices.Contains(reservedAttrs, k) || strings.HasPrefix(k, "os_glance")
}

// schemaError is Glance's answer to a body that fails the image schema.
func schemaError(format string, args ...any) error {
	return apiutil.BadRequest("Provided object does not match schema 'image': %s", fmt.Sprintf(format, args...))
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func asString(k string, v any, nullable bool) (*string, error) {
	if v == nil && nullable {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, schemaError("%s is not of type 'string' (%s)", jsonText(v), k)
	}
	return &s, nil
}

func asEnum(k string, v any, allowed []string, nullable bool) (*string, error) {
	s, err := asString(k, v, nullable)
	if err != nil || s == nil {
		return s, err
	}
	if !slices.Contains(allowed, *s) {
		return nil, schemaError("'%s' is not one of %s (%s)", *s, pyList(allowed), k)
	}
	return s, nil
}

func pyList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func asInt(k string, v any) (int64, error) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, schemaError("%s is not of type 'integer' (%s)", n, k)
		}
		if i < 0 {
			return 0, schemaError("%d is less than the minimum of 0 (%s)", i, k)
		}
		return i, nil
	case float64:
		f = n
	default:
		return 0, schemaError("%s is not of type 'integer' (%s)", jsonText(v), k)
	}
	if f != math.Trunc(f) || f > math.MaxInt64 {
		return 0, schemaError("%s is not of type 'integer' (%s)", jsonText(v), k)
	}
	if f < 0 {
		return 0, schemaError("%v is less than the minimum of 0 (%s)", f, k)
	}
	return int64(f), nil
}

// setAttr sets attribute k of img to v as a create body or a patch add or
// replace would, validating v against the image schema.
func setAttr(img *Image, k string, v any, creating bool) error {
	if slices.Contains(readOnlyAttrs, k) {
		return apiutil.Forbidden("Attribute '%s' is read-only.", k)
	}
	if isReserved(k) {
		return apiutil.Forbidden("Attribute '%s' is reserved.", k)
	}
	var err error
	switch k {
	case "name":
		var s *string
		if s, err = asString(k, v, true); err == nil {
			if s != nil && len(*s) > 255 {
				return schemaError("name is too long")
			}
			img.Name = s
		}
	case "visibility":
		var s *string
		if s, err = asEnum(k, v, []string{VisCommunity, VisPublic, VisPrivate, VisShared}, false); err == nil {
			img.Visibility = *s
		}
	case "protected", "os_hidden":
		b, ok := v.(bool)
		if !ok {
			return schemaError("%s is not of type 'boolean' (%s)", jsonText(v), k)
		}
		if k == "protected" {
			img.Protected = b
		} else {
			img.Hidden = b
		}
	case "min_disk", "min_ram":
		var n int64
		if n, err = asInt(k, v); err == nil {
			if k == "min_disk" {
				img.MinDisk = n
			} else {
				img.MinRAM = n
			}
		}
	case "disk_format", "container_format":
		allowed := diskFormats
		if k == "container_format" {
			allowed = containerFormats
		}
		var s *string
		if s, err = asEnum(k, v, allowed, true); err != nil {
			return err
		}
		cur := img.DiskFormat
		if k == "container_format" {
			cur = img.ContainerFormat
		}
		if !creating && str(cur) != str(s) && img.Status != StatusQueued && img.Status != StatusUploading {
			return apiutil.Forbidden("Attribute %s can be only replaced for a queued image.", k)
		}
		if k == "disk_format" {
			img.DiskFormat = s
		} else {
			img.ContainerFormat = s
		}
	case "tags":
		arr, ok := v.([]any)
		if !ok {
			return schemaError("%s is not of type 'array' (tags)", jsonText(v))
		}
		tags := make([]string, 0, len(arr))
		for _, t := range arr {
			s, ok := t.(string)
			if !ok {
				return schemaError("%s is not of type 'string' (tags)", jsonText(t))
			}
			if len(s) > 255 {
				return schemaError("tag %q is too long", s)
			}
			if !slices.Contains(tags, s) {
				tags = append(tags, s)
			}
		}
		img.Tags = tags
	case "owner":
		var s *string
		if s, err = asString(k, v, false); err == nil {
			if len(*s) > 255 {
				return schemaError("owner is too long")
			}
			img.Owner = *s
		}
	case "locations":
		return apiutil.Forbidden("It's not allowed to add locations if locations are invisible.")
	default:
		if k == "" || len(k) > 255 {
			return schemaError("property name %q must be 1 to 255 characters", k)
		}
		s, ok := v.(string)
		if !ok {
			return schemaError("%s is not of type 'string' (%s)", jsonText(v), k)
		}
		if len(s) > 65535 {
			return schemaError("value of property %s is too long", k)
		}
		img.Properties[k] = s
	}
	return err
}

// patchOp is one JSON-patch operation.
type patchOp struct {
	Op       string
	Path     string // the attribute, unescaped
	RawPath  string
	Value    any
	HasValue bool
	Draft4   bool // application/openstack-images-v2.0-json-patch
}

// parsePatch decodes a patch body of the given media type.
func parsePatch(body []byte, mediaType string) ([]patchOp, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, apiutil.BadRequest("Malformed JSON in request body.")
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, apiutil.BadRequest("Request body must be a JSON array of operation objects.")
	}
	ops := make([]patchOp, 0, len(list))
	for _, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, apiutil.BadRequest("Operations must be JSON objects.")
		}
		var op patchOp
		if mediaType == patchMediaV20 {
			op.Draft4 = true
			n := 0
			for _, name := range []string{"add", "remove", "replace"} {
				if p, ok := obj[name]; ok {
					n++
					op.Op = name
					s, ok := p.(string)
					if !ok {
						return nil, apiutil.BadRequest("Unable to find '%s' in JSON Schema change", name)
					}
					op.RawPath = s
				}
			}
			if n != 1 {
				return nil, apiutil.BadRequest("Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
			}
		} else {
			o, ok := obj["op"].(string)
			if !ok {
				return nil, apiutil.BadRequest("Unable to find 'op' in JSON Schema change")
			}
			if o != "add" && o != "remove" && o != "replace" {
				return nil, apiutil.BadRequest("Invalid operation: `%s`: Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".", o)
			}
			op.Op = o
			p, ok := obj["path"].(string)
			if !ok {
				return nil, apiutil.BadRequest("Unable to find 'path' in JSON Schema change")
			}
			op.RawPath = p
		}
		op.Value, op.HasValue = obj["value"]
		if op.Op != "remove" && !op.HasValue {
			return nil, apiutil.BadRequest("Unable to find 'value' in JSON Schema change")
		}
		attr, err := parsePointer(op.RawPath)
		if err != nil {
			return nil, err
		}
		op.Path = attr
		ops = append(ops, op)
	}
	return ops, nil
}

// parsePointer reads a JSON pointer naming one top-level attribute.
func parsePointer(p string) (string, error) {
	bad := apiutil.BadRequest("Invalid JSON pointer for this resource: '%s'", p)
	if !strings.HasPrefix(p, "/") || p == "/" {
		return "", bad
	}
	parts := strings.Split(p[1:], "/")
	for _, part := range parts {
		// "~" must be followed by 0 or 1.
		for i := 0; i < len(part); i++ {
			if part[i] == '~' && (i+1 == len(part) || (part[i+1] != '0' && part[i+1] != '1')) {
				return "", apiutil.BadRequest("Invalid JSON pointer for this resource: '%s'", p)
			}
		}
	}
	unescape := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	if len(parts) == 1 {
		if parts[0] == "" {
			return "", bad
		}
		return unescape(parts[0]), nil
	}
	if parts[0] == "locations" && len(parts) == 2 {
		return "locations", nil
	}
	return "", bad
}

// applyPatch applies ops to img in order; the whole patch fails on the
// first bad operation (the caller discards img then).
func applyPatch(img *Image, ops []patchOp) error {
	for _, op := range ops {
		k := op.Path
		switch op.Op {
		case "add", "replace":
			if slices.Contains(readOnlyAttrs, k) {
				return apiutil.Forbidden("Attribute '%s' is read-only.", k)
			}
			if isReserved(k) {
				return apiutil.Forbidden("Attribute '%s' is reserved.", k)
			}
			isBase := slices.Contains(baseAttrs, k)
			_, isProp := img.Properties[k]
			if op.Op == "replace" && !isBase && !isProp {
				return apiutil.Conflict("Property %s does not exist.", k)
			}
			if op.Op == "add" && op.Draft4 && isProp {
				return apiutil.Conflict("Property %s already present.", k)
			}
			if err := setAttr(img, k, op.Value, false); err != nil {
				return err
			}
		case "remove":
			if slices.Contains(readOnlyAttrs, k) {
				return apiutil.Forbidden("Attribute '%s' is read-only.", k)
			}
			if isReserved(k) {
				return apiutil.Forbidden("Attribute '%s' is reserved.", k)
			}
			if slices.Contains(baseAttrs, k) {
				return apiutil.Forbidden("Property %s may not be removed.", k)
			}
			if _, ok := img.Properties[k]; !ok {
				return apiutil.Conflict("Property %s does not exist.", k)
			}
			delete(img.Properties, k)
		}
	}
	return nil
}

// parseRange reads a single-range "bytes=a-b" header against size.
func parseRange(h string, size int64) (off, n int64, err error) {
	unsat := &apiutil.Error{Status: 416, Message: "Requested range not satisfiable"}
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, unsat
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, unsat
	}
	switch {
	case a == "": // suffix: last b bytes
		k, err := strconv.ParseInt(b, 10, 64)
		if err != nil || k <= 0 || size == 0 {
			return 0, 0, unsat
		}
		k = min(k, size)
		return size - k, k, nil
	default:
		start, err := strconv.ParseInt(a, 10, 64)
		if err != nil || start < 0 || start >= size {
			return 0, 0, unsat
		}
		end := size - 1
		if b != "" {
			e, err := strconv.ParseInt(b, 10, 64)
			if err != nil || e < start {
				return 0, 0, unsat
			}
			end = min(e, size-1)
		}
		return start, end - start + 1, nil
	}
}
