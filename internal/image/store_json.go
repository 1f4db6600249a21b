package image

import (
	"encoding/json"
	"errors"
	"strings"
)

// SQLite's list query aggregates each image's tags into a JSON array of
// strings and its properties into a JSON object of strings
// (json_group_array, json_group_object; the reader also takes the spaces
// PostgreSQL's json_agg puts between tokens). Decoding them with
// encoding/json cost a thousand-image page 2.7 ms of CPU; this reader
// knows the two shapes, slices strings without escapes out of the column
// text and leaves only escaped strings to encoding/json.

var errAggregate = errors.New("malformed aggregate")

type aggReader struct {
	s string
	i int
}

func (r *aggReader) space() {
	for r.i < len(r.s) && (r.s[r.i] == ' ' || r.s[r.i] == '\t' || r.s[r.i] == '\n' || r.s[r.i] == '\r') {
		r.i++
	}
}

// next skips white space and consumes c when it comes next.
func (r *aggReader) next(c byte) bool {
	r.space()
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// str reads a JSON string.
func (r *aggReader) str() (string, error) {
	if !r.next('"') {
		return "", errAggregate
	}
	start := r.i
	escaped := false
	for ; r.i < len(r.s); r.i++ {
		switch r.s[r.i] {
		case '\\':
			escaped = true
			r.i++
		case '"':
			r.i++
			if !escaped {
				return r.s[start : r.i-1], nil
			}
			var v string
			if err := json.Unmarshal([]byte(r.s[start-1:r.i]), &v); err != nil {
				return "", errAggregate
			}
			return v, nil
		}
	}
	return "", errAggregate
}

// end reports whether only white space is left.
func (r *aggReader) end() bool {
	r.space()
	return r.i == len(r.s)
}

// readStrings appends the elements of the JSON array of strings s to dst.
func readStrings(s string, dst []string) ([]string, error) {
	r := aggReader{s: s}
	if !r.next('[') {
		return dst, errAggregate
	}
	if !r.next(']') {
		for {
			v, err := r.str()
			if err != nil {
				return dst, err
			}
			dst = append(dst, v)
			if r.next(']') {
				break
			}
			if !r.next(',') {
				return dst, errAggregate
			}
		}
	}
	if !r.end() {
		return dst, errAggregate
	}
	return dst, nil
}

// readStringMap adds the members of the JSON object of strings s to m.
func readStringMap(s string, m map[string]string) error {
	r := aggReader{s: s}
	if !r.next('{') {
		return errAggregate
	}
	if !r.next('}') {
		for {
			k, err := r.str()
			if err != nil {
				return err
			}
			if !r.next(':') {
				return errAggregate
			}
			v, err := r.str()
			if err != nil {
				return err
			}
			m[k] = v
			if r.next('}') {
				break
			}
			if !r.next(',') {
				return errAggregate
			}
		}
	}
	if !r.end() {
		return errAggregate
	}
	return nil
}

// countMembers estimates the members of an aggregate (for sizing).
func countMembers(s string) int { return strings.Count(s, `",`) + 1 }
