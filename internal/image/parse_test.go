package image

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseIn(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"in:a,b":                   "a|b",
		`in:"glass, darkly",share`: "glass, darkly|share",
		"in:":                      "",
	} {
		got, err := parseIn(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("parseIn(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseSort(t *testing.T) {
	for q, want := range map[string]string{
		"":                     "created_at:desc",
		"sort=name:asc,status": "name:asc,status:desc",
		"sort_key=name":        "name:desc",
		"sort_key=name&sort_key=size&sort_dir=asc":               "name:asc,size:asc",
		"sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc": "name:asc,size:desc",
	} {
		v, _ := url.ParseQuery(q)
		keys, err := parseSort(v)
		var parts []string
		for _, k := range keys {
			d := "asc"
			if k.Desc {
				d = "desc"
			}
			parts = append(parts, k.Key+":"+d)
		}
		if err != nil || strings.Join(parts, ",") != want {
			t.Errorf("parseSort(%q) = %v, %v; want %s", q, parts, err, want)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		h       string
		off, n  int64
		wantErr bool
	}{
		{"bytes=0-9", 0, 10, false},
		{"bytes=5-", 5, 95, false},
		{"bytes=-10", 90, 10, false},
		{"bytes=90-200", 90, 10, false},
		{"bytes=100-", 0, 0, true},
		{"bytes=5-1", 0, 0, true},
		{"bytes=0-1,3-4", 0, 0, true},
		{"items=0-1", 0, 0, true},
	}
	for _, tc := range tests {
		off, n, err := parseRange(tc.h, 100)
		if (err != nil) != tc.wantErr || !tc.wantErr && (off != tc.off || n != tc.n) {
			t.Errorf("parseRange(%q) = %d, %d, %v", tc.h, off, n, err)
		}
	}
}

func TestParsePointer(t *testing.T) {
	for p, want := range map[string]string{"/name": "name", "/a~1b": "a/b", "/a~0b": "a~b", "/locations/0": "locations"} {
		if got, err := parsePointer(p); err != nil || got != want {
			t.Errorf("parsePointer(%q) = %q, %v", p, got, err)
		}
	}
	for _, p := range []string{"", "/", "name", "/a/b", "/a~", "/a~2"} {
		if _, err := parsePointer(p); err == nil {
			t.Errorf("parsePointer(%q) accepted", p)
		}
	}
}
