package network

import (
	"reflect"
	"testing"
)

// The list renders groups as typed views, show and fields= as maps: both
// must give the same JSON for the same group.
func TestSecurityGroupListMatchesShow(t *testing.T) {
	a := newTestAPI(t, Config{})
	g := a.create("alice", "security-groups", "security_group", map[string]any{"name": "web", "description": "d"})
	a.create("alice", "security-group-rules", "security_group_rule", map[string]any{
		"security_group_id": g["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 81,
		"remote_ip_prefix": "10.1.2.3/8"})
	a.create("alice", "security-group-rules", "security_group_rule", map[string]any{
		"security_group_id": g["id"], "direction": "ingress", "protocol": "icmp", "remote_group_id": g["id"]})
	a.must(a.do("alice", "PUT", "/security-groups/"+g["id"].(string)+"/tags/blue", nil), 201)

	show := a.must(a.do("alice", "GET", "/security-groups/"+g["id"].(string), nil), 200).json(t)["security_group"].(map[string]any)
	list := a.must(a.do("alice", "GET", "/security-groups?name=web", nil), 200).json(t)["security_groups"].([]any)
	if len(list) != 1 {
		t.Fatalf("list has %d groups", len(list))
	}
	if !reflect.DeepEqual(list[0], show) {
		t.Errorf("list item differs from show:\nlist %v\nshow %v", list[0], show)
	}
	rules := show["security_group_rules"].([]any)
	if len(rules) != 4 {
		t.Fatalf("%d rules, want 2 default egress + 2", len(rules))
	}
	var sawNorm, sawNull bool
	for _, r := range rules {
		r := r.(map[string]any)
		if r["normalized_cidr"] == "10.0.0.0/8" && r["port_range_min"] == float64(80) {
			sawNorm = true
		}
		if r["protocol"] == "icmp" && r["port_range_min"] == nil && r["remote_ip_prefix"] == nil && r["remote_group_id"] == g["id"] {
			sawNull = true
		}
		if _, ok := r["remote_address_group_id"]; !ok {
			t.Errorf("rule without remote_address_group_id: %v", r)
		}
	}
	if !sawNorm || !sawNull {
		t.Errorf("rules rendered wrong: %v", rules)
	}
	if tags := show["tags"].([]any); len(tags) != 1 || tags[0] != "blue" {
		t.Errorf("tags %v", show["tags"])
	}
	// fields= still selects from the same view.
	f := a.must(a.do("alice", "GET", "/security-groups?name=web&fields=id&fields=stateful", nil), 200).json(t)["security_groups"].([]any)[0].(map[string]any)
	if len(f) != 2 || f["stateful"] != true {
		t.Errorf("fields: %v", f)
	}
}
