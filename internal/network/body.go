package network

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

type sqlTx = sql.Tx

// txn is a write transaction with the service at hand.
type txn struct {
	*sql.Tx
	s *Service
}

// attrs is one resource object of a request body.
type attrs map[string]any

// readBody decodes {"<singular>": {...}} or, when bulk is allowed,
// {"<plural>": [{...}, ...]}, returning the objects and whether the
// request was a bulk one.
func readBody(r *http.Request, singular, plural string, bulk bool) ([]attrs, bool, error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, false, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, false, badInput("Resource body required")
	}
	top, err := decodeObject(b)
	if err != nil {
		return nil, false, err
	}
	if v, ok := top[singular]; ok && len(top) == 1 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false, badInput("Invalid format: %s", string(b))
		}
		return []attrs{m}, false, nil
	}
	if v, ok := top[plural]; ok && bulk && len(top) == 1 {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, false, badInput("Resources required")
		}
		out := make([]attrs, 0, len(list))
		for _, x := range list {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, false, badInput("Invalid format: %s", string(b))
			}
			out = append(out, m)
		}
		return out, true, nil
	}
	return nil, false, badInput("Unable to find '%s' in request body", singular)
}

// decodeObject decodes a request body holding one JSON object (numbers
// kept as json.Number); anything else is a malformed body.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil || dec.More() {
		return nil, badInput("Malformed request body")
	}
	return top, nil
}

// checkKeys rejects attributes outside allowed: unknown ones and those
// that cannot be set with this method.
func (a attrs) checkKeys(method string, allowed []string, known []string) error {
	var unknown []string
	for k := range a {
		if slices.Contains(allowed, k) {
			continue
		}
		if slices.Contains(known, k) {
			return badInput("Attribute '%s' not allowed in %s", k, method)
		}
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badInput("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	return nil
}

func (a attrs) has(k string) bool { _, ok := a[k]; return ok }

func invalidAttr(name, reason string, args ...any) error {
	return badInput("Invalid input for %s. Reason: %s.", name, fmt.Sprintf(reason, args...))
}

// str reads a string attribute of at most max characters (0: no limit).
func (a attrs) str(name string, max int) (string, bool, error) {
	v, ok := a[name]
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, invalidAttr(name, "'%v' is not a valid string", render(v))
	}
	if max > 0 && len(s) > max {
		return "", true, invalidAttr(name, "'%s' exceeds maximum length of %d", s, max)
	}
	return s, true, nil
}

// setStr stores the string attribute name (at most max bytes; 0 for no
// limit) in dst when the request has it.
func (a attrs) setStr(name string, max int, dst *string) error {
	v, ok, err := a.str(name, max)
	if ok && err == nil {
		*dst = v
	}
	return err
}

// setBool stores the boolean attribute name in dst when the request has it.
func (a attrs) setBool(name string, dst *bool) error {
	v, ok, err := a.boolean(name)
	if ok && err == nil {
		*dst = v
	}
	return err
}

// nullableStr reads a string that may be null; null gives ok with valid false.
func (a attrs) nullableStr(name string) (s string, valid, present bool, err error) {
	v, ok := a[name]
	if !ok {
		return "", false, false, nil
	}
	if v == nil {
		return "", false, true, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, true, invalidAttr(name, "'%v' is not a valid string", render(v))
	}
	return s, true, true, nil
}

func (a attrs) boolean(name string) (bool, bool, error) {
	v, ok := a[name]
	if !ok {
		return false, false, nil
	}
	switch x := v.(type) {
	case bool:
		return x, true, nil
	case string:
		if b, ok := parseBool(x); ok {
			return b, true, nil
		}
	case json.Number:
		if x.String() == "0" || x.String() == "1" {
			return x.String() == "1", true, nil
		}
	}
	return false, true, invalidAttr(name, "'%v' is not a valid boolean value", render(v))
}

// integer reads an integer attribute within [min, max]; null gives
// present with valid false when nullable.
func (a attrs) integer(name string, min, max int64, nullable bool) (n int64, valid, present bool, err error) {
	v, ok := a[name]
	if !ok {
		return 0, false, false, nil
	}
	if v == nil {
		if nullable {
			return 0, false, true, nil
		}
		return 0, false, true, invalidAttr(name, "'None' is not an integer")
	}
	var f float64
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, false, true, invalidAttr(name, "'%s' is not an integer", x)
		}
		f = float64(i)
		n = i
	case string:
		var i int64
		if _, err := fmt.Sscan(x, &i); err != nil || fmt.Sprint(i) != strings.TrimSpace(x) {
			return 0, false, true, invalidAttr(name, "'%s' is not an integer", x)
		}
		n, f = i, float64(i)
	default:
		return 0, false, true, invalidAttr(name, "'%v' is not an integer", render(v))
	}
	if f != math.Trunc(f) {
		return 0, false, true, invalidAttr(name, "'%v' is not an integer", render(v))
	}
	if n < min {
		return 0, false, true, invalidAttr(name, "'%d' is too small - must be at least '%d'", n, min)
	}
	if n > max {
		return 0, false, true, invalidAttr(name, "'%d' is too large - must be no larger than '%d'", n, max)
	}
	return n, true, true, nil
}

// strList reads a list of strings.
func (a attrs) strList(name string) ([]string, bool, error) {
	v, ok := a[name]
	if !ok {
		return nil, false, nil
	}
	if v == nil {
		return []string{}, true, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, true, invalidAttr(name, "'%v' is not a list", render(v))
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, isStr := x.(string)
		if !isStr {
			return nil, true, invalidAttr(name, "'%v' is not a valid string", render(x))
		}
		out = append(out, s)
	}
	return out, true, nil
}

// objList reads a list of objects.
func (a attrs) objList(name string) ([]attrs, bool, error) {
	v, ok := a[name]
	if !ok {
		return nil, false, nil
	}
	if v == nil {
		return []attrs{}, true, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, true, invalidAttr(name, "'%v' is not a list", render(v))
	}
	out := make([]attrs, 0, len(list))
	for _, x := range list {
		m, isMap := x.(map[string]any)
		if !isMap {
			return nil, true, invalidAttr(name, "'%v' is not a dictionary", render(x))
		}
		out = append(out, m)
	}
	return out, true, nil
}

// uuid reads a UUID attribute.
func (a attrs) uuid(name string) (string, bool, error) {
	s, ok, err := a.str(name, 0)
	if err != nil || !ok {
		return s, ok, err
	}
	if !isUUID(s) {
		return "", true, invalidAttr(name, "'%s' is not a valid UUID", s)
	}
	return s, true, nil
}

// project reads project_id / tenant_id, which must agree.
func (a attrs) project(def string) (string, error) {
	p, okP, err := a.str("project_id", 255)
	if err != nil {
		return "", err
	}
	t, okT, err := a.str("tenant_id", 255)
	if err != nil {
		return "", err
	}
	switch {
	case okP && okT && p != t:
		return "", badInput("'project_id' and 'tenant_id' do not match")
	case okP:
		return p, nil
	case okT:
		return t, nil
	}
	return def, nil
}

func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	return strings.Trim(s, `"`)
}

// parseIP parses an address, Neutron-style messages on failure.
func parseIP(name, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, invalidAttr(name, "'%s' is not a valid IP address", s)
	}
	return a.Unmap(), nil
}

// jsonText encodes a value for a TEXT column.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func nullStr(s string, valid bool) sql.NullString { return sql.NullString{String: s, Valid: valid} }

func nullOf(ns sql.NullString) any {
	if !ns.Valid {
		return nil
	}
	return ns.String
}

func nullIntOf(n sql.NullInt64) any {
	if !n.Valid {
		return nil
	}
	return n.Int64
}

var _ = db.FormatTime
