package placement

import (
	"net/url"
	"reflect"
	"testing"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

func TestParseCandidateRequest(t *testing.T) {
	const agg1, agg2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	cases := []struct {
		name   string
		query  string
		ver    int
		want   []RequestGroup
		policy string
		limit  int
		err    bool
		code   string
	}{
		{name: "simple", query: "resources=VCPU:1,MEMORY_MB:512", ver: 10,
			want: []RequestGroup{{Resources: map[string]int64{"VCPU": 1, "MEMORY_MB": 512}}}},
		{name: "required and forbidden", query: "resources=VCPU:1&required=HW_CPU_X86_AVX,!CUSTOM_X", ver: 22,
			want: []RequestGroup{{Resources: map[string]int64{"VCPU": 1}, Required: []string{"HW_CPU_X86_AVX"}, Forbidden: []string{"CUSTOM_X"}}}},
		{name: "forbidden before 1.22", query: "resources=VCPU:1&required=!CUSTOM_X", ver: 21, err: true},
		{name: "required before 1.17", query: "resources=VCPU:1&required=CUSTOM_X", ver: 16, err: true},
		{name: "member_of in and not", query: "resources=VCPU:1&member_of=in:" + agg1 + "," + agg2 + "&member_of=!" + agg2, ver: 32,
			want: []RequestGroup{{Resources: map[string]int64{"VCPU": 1}, MemberOf: [][]string{{agg1, agg2}}, NotMemberOf: []string{agg2}}}},
		{name: "member_of repeated before 1.24", query: "resources=VCPU:1&member_of=" + agg1 + "&member_of=" + agg2, ver: 23, err: true, code: codeQueryDuplicateKey},
		{name: "member_of bad uuid", query: "resources=VCPU:1&member_of=nope", ver: 21, err: true},
		{name: "granular", query: "resources=VCPU:1&resources1=SRIOV_NET_VF:1&required1=CUSTOM_PHYS&resources2=SRIOV_NET_VF:1&group_policy=isolate&limit=5", ver: 25,
			want: []RequestGroup{
				{Resources: map[string]int64{"VCPU": 1}},
				{Suffix: "1", Resources: map[string]int64{"SRIOV_NET_VF": 1}, Required: []string{"CUSTOM_PHYS"}},
				{Suffix: "2", Resources: map[string]int64{"SRIOV_NET_VF": 1}},
			}, policy: "isolate", limit: 5},
		{name: "granular needs group_policy", query: "resources1=VCPU:1&resources2=VCPU:1", ver: 25, err: true},
		{name: "string suffix before 1.33", query: "resources_NET=VCPU:1", ver: 32, err: true},
		{name: "string suffix", query: "resources_NET=VCPU:1", ver: 33,
			want: []RequestGroup{{Suffix: "_NET", Resources: map[string]int64{"VCPU": 1}}}},
		{name: "required without resources", query: "resources=VCPU:1&required1=CUSTOM_X", ver: 33, err: true},
		{name: "resourceless group 1.36", query: "resources=VCPU:1&required1=CUSTOM_X&same_subtree=1", ver: 36,
			want: []RequestGroup{{Resources: map[string]int64{"VCPU": 1}}, {Suffix: "1", Required: []string{"CUSTOM_X"}}}},
		{name: "same_subtree unknown suffix", query: "resources=VCPU:1&same_subtree=_X", ver: 36, err: true},
		{name: "no resources", query: "required=CUSTOM_X", ver: 25, err: true},
		{name: "bad amount", query: "resources=VCPU:0", ver: 10, err: true},
		{name: "bad format", query: "resources=VCPU", ver: 10, err: true},
		{name: "duplicate resources", query: "resources=VCPU:1&resources=VCPU:2", ver: 10, err: true, code: codeQueryDuplicateKey},
		{name: "unknown param", query: "resources=VCPU:1&foo=bar", ver: 10, err: true},
		{name: "limit zero", query: "resources=VCPU:1&limit=0", ver: 16, err: true},
		{name: "limit before 1.16", query: "resources=VCPU:1&limit=3", ver: 15, err: true},
		{name: "bad group_policy", query: "resources=VCPU:1&group_policy=maybe", ver: 25, err: true},
		{name: "conflicting traits", query: "resources=VCPU:1&required=CUSTOM_A,!CUSTOM_A", ver: 22, err: true},
		{name: "in_tree", query: "resources=VCPU:1&in_tree=" + agg1, ver: 31,
			want: []RequestGroup{{Resources: map[string]int64{"VCPU": 1}, InTree: agg1}}},
		{name: "in_tree bad", query: "resources=VCPU:1&in_tree=x", ver: 31, err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCandidateRequest(q, v(c.ver))
			if c.err {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				e := apiutil.AsError(err)
				if e.Status != 400 || c.code != "" && e.Code != c.code {
					t.Fatalf("got %d %q, want 400 %q", e.Status, e.Code, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Groups, c.want) {
				t.Fatalf("groups:\n got %v\nwant %v", got.Groups, c.want)
			}
			if got.GroupPolicy != c.policy || got.Limit != c.limit {
				t.Fatalf("policy/limit %q %d", got.GroupPolicy, got.Limit)
			}
		})
	}
}

func TestParseProviderFilter(t *testing.T) {
	for _, c := range []struct {
		query string
		ver   int
		ok    bool
	}{
		{"name=a", 0, true},
		{"member_of=11111111-1111-1111-1111-111111111111", 3, true},
		{"member_of=11111111-1111-1111-1111-111111111111", 2, false},
		{"resources=VCPU:1", 4, true},
		{"resources=VCPU:1", 3, false},
		{"in_tree=11111111-1111-1111-1111-111111111111", 14, true},
		{"required=CUSTOM_A,!CUSTOM_B", 22, true},
		{"required=CUSTOM_A", 17, false},
		{"uuid=nope", 0, false},
		{"bogus=1", 36, false},
	} {
		q, _ := url.ParseQuery(c.query)
		_, err := ParseProviderFilter(q, v(c.ver))
		if (err == nil) != c.ok {
			t.Errorf("%s @1.%d: %v", c.query, c.ver, err)
		}
	}
}

func TestInventoryCapacity(t *testing.T) {
	inv := Inventory{Total: 8, Reserved: 2, MinUnit: 1, MaxUnit: 8, StepSize: 2, AllocationRatio: 1.5}
	if inv.Capacity() != 9 {
		t.Fatalf("capacity %d", inv.Capacity())
	}
	for _, c := range []struct {
		used, amount int64
		ok           bool
	}{
		{0, 2, true}, {0, 8, true}, {0, 10, false}, {0, 3, false}, {0, 0, false},
		{6, 2, true}, {8, 2, false}, {7, 2, true},
	} {
		inv.Used = c.used
		if err := inv.Check(c.amount); (err == nil) != c.ok {
			t.Errorf("used %d amount %d: %v", c.used, c.amount, err)
		}
	}
	frac := Inventory{Total: 3, AllocationRatio: 0.5, MinUnit: 1, MaxUnit: 10, StepSize: 1}
	if frac.Capacity() != 1 {
		t.Fatalf("truncation: %d", frac.Capacity())
	}
}

func TestNormUUID(t *testing.T) {
	if got := normUUID("ABCDEF0123456789ABCDEF0123456789"); got != "abcdef01-2345-6789-abcd-ef0123456789" {
		t.Fatal(got)
	}
	if !isUUID("abcdef01-2345-6789-abcd-ef0123456789") || isUUID("nope") {
		t.Fatal("isUUID")
	}
}
