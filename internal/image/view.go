package image

import (
	"slices"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// The image view, as Glance shows it: the base attributes always (null
// when unset), the custom properties flattened in beside them. The JSON
// is appended directly, keys in the order encoding/json gives a map
// (byte order), so the bodies are byte for byte those of the map-based
// view this replaced (testdata/image_views.json pins them).

const timeLayout = "2006-01-02T15:04:05Z"

// viewAttr is one attribute of the view; add appends its value. Sorted
// by name.
type viewAttr struct {
	name string
	// shown reports whether the attribute is in the view of img (nil:
	// always).
	shown func(img *Image) bool
	add   func(b []byte, img *Image) []byte
}

func appendStrPtr(b []byte, p *string) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return apiutil.AppendJSONString(b, *p)
}

func appendIntPtr(b []byte, p *int64) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *p, 10)
}

func appendTags(b []byte, tags []string) []byte {
	b = append(b, '[')
	for n, t := range tags {
		if n > 0 {
			b = append(b, ',')
		}
		b = apiutil.AppendJSONString(b, t)
	}
	return append(b, ']')
}

// appendID appends prefix + id + suffix as a JSON string; prefix and
// suffix need no escaping.
func appendID(b []byte, prefix, id, suffix string) []byte {
	b = append(b, '"')
	b = append(b, prefix...)
	b = apiutil.AppendJSONEscaped(b, id)
	b = append(b, suffix...)
	return append(b, '"')
}

var viewAttrs = []viewAttr{
	{name: "checksum", add: func(b []byte, img *Image) []byte { return appendStrPtr(b, img.Checksum) }},
	{name: "container_format", add: func(b []byte, img *Image) []byte { return appendStrPtr(b, img.ContainerFormat) }},
	{name: "created_at", add: func(b []byte, img *Image) []byte {
		b = append(b, '"')
		b = img.CreatedAt.UTC().AppendFormat(b, timeLayout)
		return append(b, '"')
	}},
	{name: "disk_format", add: func(b []byte, img *Image) []byte { return appendStrPtr(b, img.DiskFormat) }},
	{name: "file", add: func(b []byte, img *Image) []byte { return appendID(b, "/v2/images/", img.ID, "/file") }},
	{name: "id", add: func(b []byte, img *Image) []byte { return apiutil.AppendJSONString(b, img.ID) }},
	{name: "min_disk", add: func(b []byte, img *Image) []byte { return strconv.AppendInt(b, img.MinDisk, 10) }},
	{name: "min_ram", add: func(b []byte, img *Image) []byte { return strconv.AppendInt(b, img.MinRAM, 10) }},
	{name: "name", add: func(b []byte, img *Image) []byte { return appendStrPtr(b, img.Name) }},
	{name: "os_hash_algo", add: func(b []byte, img *Image) []byte { return appendStrPtr(b, img.HashAlgo) }},
	{name: "os_hash_value", add: func(b []byte, img *Image) []byte { return appendStrPtr(b, img.HashValue) }},
	{name: "os_hidden", add: func(b []byte, img *Image) []byte { return strconv.AppendBool(b, img.Hidden) }},
	{name: "owner", add: func(b []byte, img *Image) []byte { return apiutil.AppendJSONString(b, img.Owner) }},
	{name: "protected", add: func(b []byte, img *Image) []byte { return strconv.AppendBool(b, img.Protected) }},
	{name: "schema", add: func(b []byte, img *Image) []byte { return append(b, `"/v2/schemas/image"`...) }},
	{name: "self", add: func(b []byte, img *Image) []byte { return appendID(b, "/v2/images/", img.ID, "") }},
	{name: "size", add: func(b []byte, img *Image) []byte { return appendIntPtr(b, img.Size) }},
	{name: "status", add: func(b []byte, img *Image) []byte { return apiutil.AppendJSONString(b, img.Status) }},
	{name: "stores", shown: hasData, add: func(b []byte, img *Image) []byte { return append(b, `"`+storeID+`"`...) }},
	{name: "tags", add: func(b []byte, img *Image) []byte { return appendTags(b, img.Tags) }},
	{name: "updated_at", add: func(b []byte, img *Image) []byte {
		b = append(b, '"')
		b = img.UpdatedAt.UTC().AppendFormat(b, timeLayout)
		return append(b, '"')
	}},
	{name: "virtual_size", add: func(b []byte, img *Image) []byte { return appendIntPtr(b, img.VirtualSize) }},
	{name: "visibility", add: func(b []byte, img *Image) []byte { return apiutil.AppendJSONString(b, img.Visibility) }},
}

// hasData reports whether the image's data is in the store.
func hasData(img *Image) bool { return img.Status == StatusActive || img.Status == StatusDeactivated }

// isViewAttr reports whether k is an attribute shown on img; a custom
// property of that name is hidden behind it.
func isViewAttr(img *Image, k string) bool {
	i, ok := slices.BinarySearchFunc(viewAttrs, k, func(a viewAttr, k string) int { return strings.Compare(a.name, k) })
	return ok && (viewAttrs[i].shown == nil || viewAttrs[i].shown(img))
}

// appendImage appends the view of img. keys is scratch space for the
// property names, returned for reuse.
func appendImage(b []byte, img *Image, keys []string) ([]byte, []string) {
	keys = keys[:0]
	for k := range img.Properties {
		if !isViewAttr(img, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	p := 0
	for i := range viewAttrs {
		a := &viewAttrs[i]
		if a.shown != nil && !a.shown(img) {
			continue
		}
		for ; p < len(keys) && keys[p] < a.name; p++ {
			b = appendProp(b, keys[p], img.Properties[keys[p]])
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, a.name...)
		b = append(b, '"', ':')
		b = a.add(b, img)
		b = append(b, ',')
	}
	for ; p < len(keys); p++ {
		b = appendProp(b, keys[p], img.Properties[keys[p]])
		b = append(b, ',')
	}
	b[len(b)-1] = '}' // the view is never empty: the last comma closes it
	return b, keys
}

func appendProp(b []byte, k, v string) []byte {
	b = apiutil.AppendJSONString(b, k)
	b = append(b, ':')
	return apiutil.AppendJSONString(b, v)
}

// imageDoc is the body of show, create and update: one image.
type imageDoc struct{ img *Image }

// AppendJSON implements apiutil.JSONAppender.
func (d imageDoc) AppendJSON(b []byte) []byte {
	b, _ = appendImage(b, d.img, nil)
	return b
}

// imageList is the body of GET /v2/images.
type imageList struct {
	imgs        []*Image
	first, next string // next is "" on the last page
}

// AppendJSON implements apiutil.JSONAppender.
func (l *imageList) AppendJSON(b []byte) []byte {
	b = append(b, `{"first":`...)
	b = apiutil.AppendJSONString(b, l.first)
	b = append(b, `,"images":[`...)
	var keys []string
	for n, img := range l.imgs {
		if n > 0 {
			b = append(b, ',')
		}
		b, keys = appendImage(b, img, keys)
	}
	b = append(b, ']')
	if l.next != "" {
		b = append(b, `,"next":`...)
		b = apiutil.AppendJSONString(b, l.next)
	}
	return append(b, `,"schema":"/v2/schemas/images"}`...)
}
