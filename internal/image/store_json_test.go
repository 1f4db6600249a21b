package image

import (
	"maps"
	"slices"
	"testing"
)

func TestReadAggregates(t *testing.T) {
	lists := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: `[]`, want: nil},
		{in: ` [ ] `, want: nil},
		{in: `["a","b"]`, want: []string{"a", "b"}},
		{in: `["bench", "t0"]`, want: []string{"bench", "t0"}}, // PostgreSQL's json_agg
		{in: `["q\"uote","back\\slash","\u00e9\ud83d\ude00","tab\tnl\n","\u0001"]`, want: []string{`q"uote`, `back\slash`, "é😀", "tab\tnl\n", "\x01"}},
		{in: `["ünï", "<x> & y"]`, want: []string{"ünï", "<x> & y"}},
		{in: `["a",]`, bad: true},
		{in: `["a" "b"]`, bad: true},
		{in: `["a"`, bad: true},
		{in: `["a`, bad: true},
		{in: `["a\"]`, bad: true},
		{in: `[1]`, bad: true},
		{in: `["a"] x`, bad: true},
		{in: `{}`, bad: true},
		{in: ``, bad: true},
	}
	for _, tc := range lists {
		got, err := readStrings(tc.in, nil)
		if (err != nil) != tc.bad || !tc.bad && !slices.Equal(got, tc.want) {
			t.Errorf("readStrings(%s) = %q, %v; want %q, bad %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
	objects := []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{in: `{}`, want: map[string]string{}},
		{in: `{"os_distro":"debian","hw_disk_bus":"virtio"}`, want: map[string]string{"os_distro": "debian", "hw_disk_bus": "virtio"}},
		{in: `{ "os_distro" : "debian", "k\"" : "v\\" }`, want: map[string]string{"os_distro": "debian", `k"`: `v\`}}, // json_object_agg
		{in: `{"a":""}`, want: map[string]string{"a": ""}},
		{in: `{"a":"1",}`, bad: true},
		{in: `{"a" "1"}`, bad: true},
		{in: `{"a":1}`, bad: true},
		{in: `{"a":"1"`, bad: true},
		{in: `[]`, bad: true},
	}
	for _, tc := range objects {
		got := map[string]string{}
		err := readStringMap(tc.in, got)
		if (err != nil) != tc.bad || !tc.bad && !maps.Equal(got, tc.want) {
			t.Errorf("readStringMap(%s) = %q, %v; want %q, bad %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
