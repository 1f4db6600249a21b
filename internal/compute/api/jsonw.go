package api

import (
	"slices"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Appending JSON encoders for the server views. They write what
// encoding/json would for the same values (strings escaped the same way,
// HTML characters included), without reflection or map key sorting.

// opt is a member that is present only when Set (a microversion or a
// policy decides); when present, V is encoded (a nil pointer as null).
type opt[T any] struct {
	V   T
	Set bool
}

func some[T any](v T) opt[T] { return opt[T]{V: v, Set: true} }

// appendStr appends s as a JSON string, escaped as encoding/json does.
func appendStr(b []byte, s string) []byte { return apiutil.AppendJSONString(b, s) }

// appendEscaped appends the inside of the JSON string of s.
func appendEscaped(b []byte, s string) []byte { return apiutil.AppendJSONEscaped(b, s) }

// obj writes the members of one JSON object.
type obj struct {
	b     []byte
	count int
}

func beginObj(b []byte) obj { return obj{b: append(b, '{')} }

func (o *obj) end() []byte { return append(o.b, '}') }

// key starts a member; k is a constant needing no escaping.
func (o *obj) key(k string) {
	if o.count > 0 {
		o.b = append(o.b, ',')
	}
	o.count++
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

// escapedKey starts a member whose name comes from data.
func (o *obj) escapedKey(k string) {
	if o.count > 0 {
		o.b = append(o.b, ',')
	}
	o.count++
	o.b = appendStr(o.b, k)
	o.b = append(o.b, ':')
}

func (o *obj) str(k, v string) {
	o.key(k)
	o.b = appendStr(o.b, v)
}

// strp writes v, or null when v is nil.
func (o *obj) strp(k string, v *string) {
	o.key(k)
	if v == nil {
		o.b = append(o.b, "null"...)
		return
	}
	o.b = appendStr(o.b, *v)
}

func (o *obj) null(k string) {
	o.key(k)
	o.b = append(o.b, "null"...)
}

func (o *obj) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *obj) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *obj) raw(k, v string) {
	o.key(k)
	o.b = append(o.b, v...)
}

// time writes t in layout, or null when t is zero (novaTime, microTime).
func (o *obj) time(k string, t time.Time, layout string) {
	o.key(k)
	if t.IsZero() {
		o.b = append(o.b, "null"...)
		return
	}
	o.b = append(o.b, '"')
	o.b = t.UTC().AppendFormat(o.b, layout)
	o.b = append(o.b, '"')
}

func (o *obj) strMap(k string, m map[string]string) {
	o.key(k)
	o.b = appendStrMap(o.b, m)
}

func (o *obj) strList(k string, l []string) {
	o.key(k)
	o.b = appendStrList(o.b, l)
}

// appendStrMap appends m as an object with sorted keys (as
// encoding/json does), or null when nil.
func appendStrMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for n, k := range keys {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, k)
		b = append(b, ':')
		b = appendStr(b, m[k])
	}
	return append(b, '}')
}

// appendStrList appends l as an array, or null when nil.
func appendStrList(b []byte, l []string) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for n, s := range l {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, s)
	}
	return append(b, ']')
}

// endPage closes the array of a page's items and the body object, with
// the "next" link under linksKey ("servers_links") when next is set.
func endPage(b []byte, linksKey, next string) []byte {
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"`...)
		b = append(b, linksKey...)
		b = append(b, `":[`...)
		b = appendLink(b, next, "next")
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendLink appends {"href": href, "rel": rel}.
func appendLink(b []byte, href, rel string) []byte {
	o := beginObj(b)
	o.str("href", href)
	o.str("rel", rel)
	return o.end()
}

const (
	novaTimeLayout  = "2006-01-02T15:04:05Z"
	microTimeLayout = "2006-01-02T15:04:05.000000"
)
