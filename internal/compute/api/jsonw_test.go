package api

import (
	"encoding/json"
	"testing"
)

// The appending encoder writes strings and string maps byte for byte as
// encoding/json does.
func TestAppendStrMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "héllo wörld ☃ 😀", "bad \xff utf-8 \xc3", "line\u2028sep\u2029par", "ends in \\"} {
		want, _ := json.Marshal(s)
		if got := appendStr(nil, s); string(got) != string(want) {
			t.Errorf("appendStr(%q) = %s, want %s", s, got, want)
		}
	}
	for _, m := range []map[string]string{nil, {}, {"b": "2", "a": "1", "<k>": "v&"},
		{"k1": "", "k2": "", "k3": "", "k4": "", "k5": "", "k6": "", "k7": "", "k8": "", "k9": "", "k0": ""}} {
		want, _ := json.Marshal(m)
		if got := appendStrMap(nil, m); string(got) != string(want) {
			t.Errorf("appendStrMap(%v) = %s, want %s", m, got, want)
		}
	}
	for _, l := range [][]string{nil, {}, {"a", "<b>"}} {
		want, _ := json.Marshal(l)
		if got := appendStrList(nil, l); string(got) != string(want) {
			t.Errorf("appendStrList(%v) = %s, want %s", l, got, want)
		}
	}
}
