package compute_test

import (
	"sort"
	"strings"
	"testing"
)

func TestSecGroupProxyRemovedAt236(t *testing.T) {
	e := newNetEnv(t, nil)
	g := obj(t, e.net("alice", "POST", "/security-groups", `{"security_group": {"name": "web"}}`, 201), "security_group")["id"].(string)
	cases := []struct{ method, path, body string }{
		{"GET", "/os-security-groups", ""},
		{"POST", "/os-security-groups", `{"security_group": {"name": "x", "description": "y"}}`},
		{"GET", "/os-security-groups/" + g, ""},
		{"PUT", "/os-security-groups/" + g, `{"security_group": {"name": "x", "description": "y"}}`},
		{"DELETE", "/os-security-groups/" + g, ""},
		{"POST", "/os-security-group-rules", `{"security_group_rule": {"parent_group_id": "` + g + `", "ip_protocol": "tcp", "from_port": 1, "to_port": 2}}`},
		{"DELETE", "/os-security-group-rules/" + g, ""},
	}
	for _, c := range cases {
		t.Run(c.method+c.path, func(t *testing.T) {
			e.do("alice", c.method, v21+c.path, "2.36", c.body).Expect(t, 404, "itemNotFound")
			e.do("alice", c.method, v21+c.path, "2.96", c.body).Expect(t, 404, "itemNotFound")
		})
	}
	// Nothing changed.
	if n := obj(t, e.net("alice", "GET", "/security-groups/"+g, "", 200), "security_group")["name"]; n != "web" {
		t.Fatalf("group renamed through a removed API: %v", n)
	}
}

func TestSecGroupProxy(t *testing.T) {
	e := newNetEnv(t, nil)
	const v = "2.35"
	r := e.do("alice", "POST", v21+"/os-security-groups", v, `{"security_group": {"name": "web", "description": "web servers"}}`).Expect(t, 200, "")
	g := obj(t, r.Body, "security_group")
	id := g["id"].(string)
	if g["name"] != "web" || g["description"] != "web servers" || g["tenant_id"] != "p1" || len(g["rules"].([]any)) != 0 {
		t.Fatalf("created group (egress rules must not show): %v", g)
	}
	missing := "9b7d0a4e-0000-4000-8000-000000000001"

	t.Run("create errors", func(t *testing.T) {
		for _, c := range []struct {
			name, body string
			status     int
			fault, msg string
		}{
			{"no body", ``, 400, "badRequest", "The request body can't be empty"},
			{"no group", `{"x": {}}`, 400, "badRequest", "Missing parameter security_group"},
			{"name missing", `{"security_group": {"description": "d"}}`, 400, "badRequest", "name has to be a string"},
			{"name not a string", `{"security_group": {"name": 1, "description": "d"}}`, 400, "badRequest", "name has to be a string"},
			{"long description", `{"security_group": {"name": "n", "description": "` + strings.Repeat("d", 256) + `"}}`, 400, "badRequest", "description has a maximum length"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do("alice", "POST", v21+"/os-security-groups", v, c.body).Expect(t, c.status, c.fault)
				if !strings.Contains(r.Raw, c.msg) {
					t.Fatalf("message %s, want %q", r.Raw, c.msg)
				}
			})
		}
		// A reader cannot create (the networking service says so).
		e.do("rob", "POST", v21+"/os-security-groups", v, `{"security_group": {"name": "n", "description": "d"}}`).Expect(t, 403, "forbidden")
	})

	t.Run("list and show", func(t *testing.T) {
		names := func(token, query string) string {
			var out []string
			for _, x := range list(t, e.do(token, "GET", v21+"/os-security-groups"+query, v, "").Expect(t, 200, "").Body, "security_groups") {
				out = append(out, x.(map[string]any)["name"].(string))
			}
			return strings.Join(out, ",")
		}
		if got := names("alice", ""); !strings.Contains(got, "web") {
			t.Fatalf("alice's groups: %s", got)
		}
		if got := names("bob", ""); strings.Contains(got, "web") {
			t.Fatalf("bob sees alice's group: %s", got)
		}
		if got := names("admin", "?all_tenants=1"); !strings.Contains(got, "web") {
			t.Fatalf("admin with all_tenants: %s", got)
		}
		if got := names("admin", ""); strings.Contains(got, "web") {
			t.Fatalf("admin without all_tenants sees other projects: %s", got)
		}
		if got := names("alice", "?limit=1"); strings.Count(got, ",") != 0 || got == "" {
			t.Fatalf("limit=1: %s", got)
		}
		if got := names("alice", "?offset=1"); strings.Count(got, ",") != 0 || got == "" {
			t.Fatalf("offset=1 of 2: %s", got)
		}
		for _, bad := range []string{"limit=x", "limit=-1", "offset=y", "offset=-2"} {
			e.do("alice", "GET", v21+"/os-security-groups?"+bad, v, "").Expect(t, 400, "badRequest")
		}
		e.do("alice", "GET", v21+"/os-security-groups/"+id, v, "").Expect(t, 200, "")
		e.do("alice", "GET", v21+"/os-security-groups/nope", v, "").Expect(t, 400, "badRequest")
		e.do("alice", "GET", v21+"/os-security-groups/"+missing, v, "").Expect(t, 404, "itemNotFound")
		e.do("bob", "GET", v21+"/os-security-groups/"+id, v, "").Expect(t, 404, "itemNotFound")
		// The default group's rules refer to itself.
		for _, x := range list(t, e.do("alice", "GET", v21+"/os-security-groups", v, "").Body, "security_groups") {
			grp := x.(map[string]any)
			if grp["name"] != "default" {
				continue
			}
			rules := grp["rules"].([]any)
			if len(rules) == 0 {
				t.Fatalf("default group without ingress rules: %v", grp)
			}
			ru := rules[0].(map[string]any)
			if gr := ru["group"].(map[string]any); gr["name"] != "default" || gr["tenant_id"] != "p1" || len(ru["ip_range"].(map[string]any)) != 0 {
				t.Fatalf("default group rule: %v", ru)
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		r := e.do("alice", "PUT", v21+"/os-security-groups/"+id, v, `{"security_group": {"name": "www", "description": "renamed"}}`).Expect(t, 200, "")
		if g := obj(t, r.Body, "security_group"); g["name"] != "www" || g["description"] != "renamed" {
			t.Fatalf("updated: %v", g)
		}
		e.do("alice", "PUT", v21+"/os-security-groups/"+missing, v, `{"security_group": {"name": "a", "description": "b"}}`).Expect(t, 404, "itemNotFound")
		e.do("bob", "PUT", v21+"/os-security-groups/"+id, v, `{"security_group": {"name": "a", "description": "b"}}`).Expect(t, 404, "itemNotFound")
		e.do("alice", "PUT", v21+"/os-security-groups/"+id, v, `{"security_group": {"name": "a"}}`).Expect(t, 400, "badRequest")
	})

	var ruleIDs []string
	t.Run("rules", func(t *testing.T) {
		other := obj(t, e.do("alice", "POST", v21+"/os-security-groups", v, `{"security_group": {"name": "db", "description": ""}}`).Expect(t, 200, "").Body, "security_group")["id"].(string)
		rule := func(fields string) string {
			return `{"security_group_rule": {"parent_group_id": "` + id + `"` + fields + `}}`
		}
		for _, c := range []struct {
			name, body string
			status     int
			check      func(map[string]any) bool
			msg        string
		}{
			{"tcp cidr", rule(`, "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/24"`), 200, func(r map[string]any) bool {
				return r["ip_protocol"] == "tcp" && r["from_port"] == 22.0 && r["to_port"] == 22.0 && r["parent_group_id"] == id &&
					r["ip_range"].(map[string]any)["cidr"] == "10.0.0.0/24" && len(r["group"].(map[string]any)) == 0
			}, ""},
			{"udp no cidr", rule(`, "ip_protocol": "udp", "from_port": "53", "to_port": "53"`), 200, func(r map[string]any) bool {
				return r["ip_range"].(map[string]any)["cidr"] == "0.0.0.0/0" && r["from_port"] == 53.0
			}, ""},
			{"icmp any", rule(`, "ip_protocol": "icmp", "from_port": -1, "to_port": -1, "cidr": "::/0"`), 200, func(r map[string]any) bool {
				return r["from_port"] == -1.0 && r["to_port"] == -1.0 && r["ip_range"].(map[string]any)["cidr"] == "::/0"
			}, ""},
			{"group rule opens all tcp", rule(`, "ip_protocol": "tcp", "group_id": "` + other + `"`), 200, func(r map[string]any) bool {
				g := r["group"].(map[string]any)
				return g["name"] == "db" && g["tenant_id"] == "p1" && r["from_port"] == 1.0 && r["to_port"] == 65535.0 && len(r["ip_range"].(map[string]any)) == 0
			}, ""},
			{"duplicate", rule(`, "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/24"`), 403, nil, ""},
			{"ports reversed", rule(`, "ip_protocol": "tcp", "from_port": 80, "to_port": 22`), 400, nil, "Former value cannot be greater than the later"},
			{"port zero", rule(`, "ip_protocol": "tcp", "from_port": 0, "to_port": 22`), 400, nil, "Valid TCP ports should be between 1-65535"},
			{"icmp type", rule(`, "ip_protocol": "icmp", "from_port": 300, "to_port": 0`), 400, nil, "For ICMP, the type:code must be valid"},
			{"protocol", rule(`, "ip_protocol": "gre", "from_port": 1, "to_port": 2`), 400, nil, "Invalid IP protocol gre."},
			{"ports not integers", rule(`, "ip_protocol": "tcp", "from_port": "a", "to_port": 2`), 400, nil, "To and From ports must be integers"},
			{"bad cidr", rule(`, "ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.300/24"`), 400, nil, "Invalid cidr"},
			{"zero prefix", rule(`, "ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/0"`), 400, nil, "Bad prefix for network in cidr"},
			{"no protocol", rule(`, "cidr": "10.0.0.0/8"`), 400, nil, "Not enough parameters to build a valid rule."},
			{"bad parent", `{"security_group_rule": {"parent_group_id": "x", "ip_protocol": "tcp", "from_port": 1, "to_port": 2}}`, 400, nil, "Security group id should be uuid"},
			{"unknown parent", `{"security_group_rule": {"parent_group_id": "` + missing + `", "ip_protocol": "tcp", "from_port": 1, "to_port": 2}}`, 404, nil, ""},
			{"unknown remote group", rule(`, "ip_protocol": "tcp", "group_id": "` + missing + `"`), 404, nil, ""},
			{"no rule", `{"rule": {}}`, 400, nil, "Missing parameter security_group_rule"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do("alice", "POST", v21+"/os-security-group-rules", v, c.body).Expect(t, c.status, "")
				if c.check != nil {
					ru := obj(t, r.Body, "security_group_rule")
					if !c.check(ru) {
						t.Fatalf("rule: %v", ru)
					}
					ruleIDs = append(ruleIDs, ru["id"].(string))
				}
				if !strings.Contains(r.Raw, c.msg) {
					t.Fatalf("message %s, want %q", r.Raw, c.msg)
				}
			})
		}
		// Bob cannot add rules to alice's group.
		e.do("bob", "POST", v21+"/os-security-group-rules", v, rule(`, "ip_protocol": "tcp", "from_port": 1, "to_port": 2`)).Expect(t, 404, "itemNotFound")
		g := obj(t, e.do("alice", "GET", v21+"/os-security-groups/"+id, v, "").Body, "security_group")
		if n := len(g["rules"].([]any)); n != len(ruleIDs) {
			t.Fatalf("group shows %d rules, want %d: %v", n, len(ruleIDs), g)
		}
	})

	t.Run("delete rule", func(t *testing.T) {
		e.do("bob", "DELETE", v21+"/os-security-group-rules/"+ruleIDs[0], v, "").Expect(t, 404, "itemNotFound")
		e.do("alice", "DELETE", v21+"/os-security-group-rules/"+ruleIDs[0], v, "").Expect(t, 202, "")
		e.do("alice", "DELETE", v21+"/os-security-group-rules/"+ruleIDs[0], v, "").Expect(t, 404, "itemNotFound")
		e.do("alice", "DELETE", v21+"/os-security-group-rules/x", v, "").Expect(t, 400, "badRequest")
	})

	t.Run("delete group", func(t *testing.T) {
		e.do("bob", "DELETE", v21+"/os-security-groups/"+id, v, "").Expect(t, 404, "itemNotFound")
		e.do("alice", "DELETE", v21+"/os-security-groups/"+id, v, "").Expect(t, 202, "")
		e.do("alice", "GET", v21+"/os-security-groups/"+id, v, "").Expect(t, 404, "itemNotFound")
		e.do("alice", "DELETE", v21+"/os-security-groups/x", v, "").Expect(t, 400, "badRequest")
	})
}

func TestServerSecurityGroups(t *testing.T) {
	e := newNetEnv(t, nil)
	netID, _ := e.network("alice", "net1", "10.7.0.0/24")
	id := e.boot("alice", bootOn("vm", `[{"uuid": "`+netID+`"}]`))
	e.waitStatus(id, "ACTIVE")
	web := obj(t, e.net("alice", "POST", "/security-groups", `{"security_group": {"name": "web"}}`, 201), "security_group")["id"].(string)
	e.net("alice", "POST", "/security-groups", `{"security_group": {"name": "spare"}}`, 201)
	e.net("alice", "POST", "/security-groups", `{"security_group": {"name": "twin"}}`, 201)
	e.net("alice", "POST", "/security-groups", `{"security_group": {"name": "twin"}}`, 201)
	bobGroup := obj(t, e.net("bob", "POST", "/security-groups", `{"security_group": {"name": "bobs"}}`, 201), "security_group")["id"].(string)

	groups := func(version string) string {
		var out []string
		for _, x := range list(t, e.do("alice", "GET", v21+"/servers/"+id+"/os-security-groups", version, "").Expect(t, 200, "").Body, "security_groups") {
			out = append(out, x.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	// The server API stays at every version.
	for _, ver := range []string{"2.1", "2.36", "2.96"} {
		if got := groups(ver); got != "default" {
			t.Fatalf("groups at %s: %q", ver, got)
		}
	}
	add := func(name string) string { return `{"addSecurityGroup": {"name": "` + name + `"}}` }
	remove := func(name string) string { return `{"removeSecurityGroup": {"name": "` + name + `"}}` }
	missing := "9b7d0a4e-0000-4000-8000-000000000001"

	for _, c := range []struct {
		name, token, body string
		status            int
		fault             string
	}{
		{"add", "alice", add("web"), 202, ""},
		{"add again", "alice", add("web"), 202, ""},
		{"add by id", "alice", add(web), 202, ""},
		{"add unknown", "alice", add("nope"), 404, "itemNotFound"},
		{"add other project's group", "alice", add(bobGroup), 404, "itemNotFound"},
		{"add ambiguous name", "alice", add("twin"), 409, "conflictingRequest"},
		{"add empty name", "alice", `{"addSecurityGroup": {"name": ""}}`, 400, "badRequest"},
		{"add without name", "alice", `{"addSecurityGroup": {}}`, 400, "badRequest"},
		{"add extra member", "alice", `{"addSecurityGroup": {"name": "web", "x": 1}}`, 400, "badRequest"},
		{"reader", "rob", add("spare"), 403, "forbidden"},
		{"other project", "bob", add("bobs"), 404, "itemNotFound"},
		{"remove not associated", "alice", remove("spare"), 404, "itemNotFound"},
		{"remove unknown", "alice", remove("nope"), 404, "itemNotFound"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.do(c.token, "POST", v21+"/servers/"+id+"/action", "2.96", c.body).Expect(t, c.status, c.fault)
		})
	}
	if got := groups("2.96"); got != "default,web" && got != "web,default" {
		t.Fatalf("groups after add: %q", got)
	}
	viewGroups := func() string {
		var out []string
		s := obj(t, e.do("alice", "GET", v21+"/servers/"+id, "2.96", "").Expect(t, 200, "").Body, "server")
		for _, g := range s["security_groups"].([]any) {
			out = append(out, g.(map[string]any)["name"].(string))
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	if got := viewGroups(); got != "default,web" {
		t.Fatalf("server view groups after add: %q", got)
	}
	// The detailed list shows them too, as Nova's does.
	for _, x := range list(t, e.do("alice", "GET", v21+"/servers/detail", "2.96", "").Expect(t, 200, "").Body, "servers") {
		if s := x.(map[string]any); s["id"] == id {
			var names []string
			for _, g := range s["security_groups"].([]any) {
				names = append(names, g.(map[string]any)["name"].(string))
			}
			if sort.Strings(names); strings.Join(names, ",") != "default,web" {
				t.Errorf("server list groups: %v", names)
			}
		}
	}
	p := e.ports("admin", "device_id="+id)[0].(map[string]any)
	if sgs := p["security_groups"].([]any); len(sgs) != 2 {
		t.Fatalf("port groups after add (adding twice must not duplicate): %v", sgs)
	}
	e.action("alice", id, remove("web"), 202)
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", remove("web")).Expect(t, 404, "itemNotFound")
	if got := groups("2.96"); got != "default" {
		t.Fatalf("groups after remove: %q", got)
	}
	if got := viewGroups(); got != "default" {
		t.Fatalf("server view groups after remove: %q", got)
	}
	// Admins act on any server; the group is looked up in their project.
	e.do("admin", "POST", v21+"/servers/"+id+"/action", "2.96", add(web)).Expect(t, 202, "")
	e.do("bob", "GET", v21+"/servers/"+id+"/os-security-groups", "2.96", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "GET", v21+"/servers/"+missing+"/os-security-groups", "2.96", "").Expect(t, 404, "itemNotFound")

	// A server without ports cannot take a group.
	bare := e.boot("alice", bootOn("bare", `"none"`))
	e.waitStatus(bare, "ACTIVE")
	r := e.do("alice", "POST", v21+"/servers/"+bare+"/action", "2.96", add("web")).Expect(t, 404, "itemNotFound")
	if !strings.Contains(r.Raw, "could not be found as device id on any ports") {
		t.Fatalf("no ports: %s", r.Raw)
	}
	if got := list(t, e.do("alice", "GET", v21+"/servers/"+bare+"/os-security-groups", "2.96", "").Expect(t, 200, "").Body, "security_groups"); len(got) != 0 {
		t.Fatalf("groups of a server without ports: %v", got)
	}

	// A port without port security cannot take a group.
	pid := p["id"].(string)
	e.net("alice", "PUT", "/ports/"+pid, `{"port": {"security_groups": [], "port_security_enabled": false}}`, 200)
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.96", add("spare")).Expect(t, 400, "badRequest")
}
