package compute_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

func TestServerDiagnostics(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	flavor := obj(t, e.do("admin", "GET", v21+"/flavors/42", "2.1", "").Expect(t, 200, "").Body, "flavor")
	vcpus, ram := int(flavor["vcpus"].(float64)), flavor["ram"].(float64)
	missing := "9b7d0a4e-0000-4000-8000-000000000001"

	t.Run("access", func(t *testing.T) {
		for _, c := range []struct {
			token, id string
			status    int
			fault     string
		}{
			{"admin", id, 200, ""},
			{"alice", id, 403, "forbidden"}, // admin only, even for the owner
			{"rob", id, 403, "forbidden"},
			{"bob", id, 404, "itemNotFound"}, // another project's server is hidden
			{"admin", missing, 404, "itemNotFound"},
			{"", id, 401, ""},
		} {
			t.Run(c.token+"/"+c.id, func(t *testing.T) {
				e.do(c.token, "GET", v21+"/servers/"+c.id+"/diagnostics", "2.48", "").Expect(t, c.status, c.fault)
			})
		}
	})

	t.Run("2.48", func(t *testing.T) {
		d := e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 200, "").Body
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := "config_drive,cpu_details,disk_details,driver,hypervisor,hypervisor_os,memory_details,nic_details,num_cpus,num_disks,num_nics,state,uptime"
		if strings.Join(keys, ",") != want {
			t.Fatalf("keys %v, want %s", keys, want)
		}
		mem := d["memory_details"].(map[string]any)
		if d["state"] != "running" || d["driver"] != "fake" || d["num_cpus"] != float64(vcpus) || mem["maximum"] != ram ||
			mem["used"] != ram || d["num_nics"] != 0.0 || d["config_drive"] != false || d["num_disks"] != float64(len(d["disk_details"].([]any))) {
			t.Fatalf("diagnostics: %v", d)
		}
		cpu := d["cpu_details"].([]any)[0].(map[string]any)
		if len(d["cpu_details"].([]any)) != vcpus || cpu["id"] != 0.0 || cpu["utilisation"] != 100.0 || cpu["time"].(float64) <= 0 {
			t.Fatalf("cpu details: %v", d["cpu_details"])
		}
		disk := d["disk_details"].([]any)[0].(map[string]any)
		if disk["read_bytes"] != 0.0 || disk["errors_count"] != 0.0 || len(disk) != 5 {
			t.Fatalf("disk details: %v", disk)
		}
	})

	t.Run("legacy before 2.48", func(t *testing.T) {
		d := e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.47", "").Expect(t, 200, "").Body
		if d["memory"] != ram*1024 || d["vda_read"] != 0.0 || d["state"] != nil {
			t.Fatalf("legacy diagnostics: %v", d)
		}
		for n := range vcpus {
			if _, ok := d[fmt.Sprintf("cpu%d_time", n)]; !ok {
				t.Fatalf("no cpu%d_time: %v", n, d)
			}
		}
	})

	t.Run("stopped", func(t *testing.T) {
		e.action("alice", id, `{"os-stop": null}`, 202)
		e.waitStatus(id, "SHUTOFF")
		d := e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 200, "").Body
		if d["state"] != "shutdown" || d["uptime"] != nil || d["memory_details"].(map[string]any)["used"] != 0.0 ||
			d["cpu_details"].([]any)[0].(map[string]any)["utilisation"] != 0.0 {
			t.Fatalf("stopped diagnostics: %v", d)
		}
	})

	t.Run("driver without diagnostics", func(t *testing.T) {
		e.driver(0).FailNext("diagnostics", fmt.Errorf("fake: %w", virt.ErrUnsupported))
		e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 501, "")
		e.driver(0).FailNext("diagnostics", fmt.Errorf("fake: %w", virt.ErrNotFound))
		e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 409, "conflictingRequest")
	})
}

func TestHypervisorUptime(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	hyp := list(t, e.do("admin", "GET", v21+"/os-hypervisors", "2.53", "").Body, "hypervisors")[0].(map[string]any)
	uuid := hyp["id"].(string)
	legacyID := fmt.Sprint(list(t, e.do("admin", "GET", v21+"/os-hypervisors", "2.1", "").Body, "hypervisors")[0].(map[string]any)["id"])
	for _, c := range []struct {
		name, token, version, id string
		status                   int
		fault                    string
	}{
		{"2.1 by number", "admin", "2.1", legacyID, 200, ""},
		{"2.53 by uuid", "admin", "2.53", uuid, 200, ""},
		{"2.87", "admin", "2.87", uuid, 200, ""},
		{"2.88 is gone", "admin", "2.88", uuid, 404, "itemNotFound"},
		{"2.53 by number", "admin", "2.53", legacyID, 400, "badRequest"},
		{"unknown", "admin", "2.53", "9b7d0a4e-0000-4000-8000-000000000001", 404, "itemNotFound"},
		{"non-admin", "alice", "2.53", uuid, 403, "forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.token, "GET", v21+"/os-hypervisors/"+c.id+"/uptime", c.version, "").Expect(t, c.status, c.fault)
			if c.status != 200 {
				return
			}
			h := obj(t, r.Body, "hypervisor")
			up, _ := h["uptime"].(string)
			if !strings.Contains(up, " up ") || !strings.Contains(up, "load average: ") || h["hypervisor_hostname"] != hyp["hypervisor_hostname"] ||
				h["state"] != "up" || h["status"] != "enabled" || fmt.Sprint(h["id"]) != c.id {
				t.Fatalf("uptime view: %v", h)
			}
		})
	}
	// From 2.88 the hypervisor view carries it.
	h := obj(t, e.do("admin", "GET", v21+"/os-hypervisors/"+uuid, "2.88", "").Expect(t, 200, "").Body, "hypervisor")
	if up, _ := h["uptime"].(string); !strings.Contains(up, "load average") {
		t.Fatalf("2.88 view uptime: %v", h["uptime"])
	}
	// A host whose service is down cannot tell.
	svcID := obj(t, e.do("admin", "GET", v21+"/os-hypervisors/"+uuid, "2.53", "").Body, "hypervisor")["service"].(map[string]any)["id"].(string)
	e.do("admin", "PUT", v21+"/os-services/"+svcID, "2.53", `{"forced_down": true}`).Expect(t, 200, "")
	r := e.do("admin", "GET", v21+"/os-hypervisors/"+uuid+"/uptime", "2.53", "").Expect(t, 400, "badRequest")
	if !strings.Contains(r.Raw, "is unavailable at this time") {
		t.Fatalf("down host: %s", r.Raw)
	}
	h = obj(t, e.do("admin", "GET", v21+"/os-hypervisors/"+uuid, "2.88", "").Expect(t, 200, "").Body, "hypervisor")
	if h["uptime"] != nil {
		t.Fatalf("uptime of a down host: %v", h["uptime"])
	}
}

func TestExtensions(t *testing.T) {
	e := newServerEnv(t, nil, 0, nil)
	r := e.do("alice", "GET", v21+"/extensions", "2.1", "").Expect(t, 200, "")
	exts := list(t, r.Body, "extensions")
	var aliases []string
	for _, x := range exts {
		m := x.(map[string]any)
		if m["namespace"] != "http://docs.openstack.org/compute/ext/fake_xml" || m["updated"] != "2014-12-03T00:00:00Z" ||
			m["name"] == "" || m["description"] == "" || len(m["links"].([]any)) != 0 || len(m) != 6 {
			t.Fatalf("extension: %v", m)
		}
		aliases = append(aliases, m["alias"].(string))
	}
	if !sort.StringsAreSorted(aliases) {
		t.Fatalf("not sorted by alias: %v", aliases)
	}
	for _, c := range []struct {
		alias, name string
		status      int
	}{
		{"os-security-groups", "SecurityGroups", 200},
		{"os-server-diagnostics", "ServerDiagnostics", 200},
		{"os-hypervisors", "Hypervisors", 200},
		{"os-cells", "", 404}, // Nova's, not served by Kumo
		{"os-fping", "", 404}, // idem
		{"no-such-thing", "", 404},
	} {
		t.Run(c.alias, func(t *testing.T) {
			r := e.do("alice", "GET", v21+"/extensions/"+c.alias, "2.96", "")
			if c.status != 200 {
				r.Expect(t, c.status, "itemNotFound")
				return
			}
			if ext := obj(t, r.Expect(t, 200, "").Body, "extension"); ext["alias"] != c.alias || ext["name"] != c.name {
				t.Fatalf("extension: %v", ext)
			}
		})
	}
	e.do("", "GET", v21+"/extensions", "2.1", "").Expect(t, 401, "")
}

// During a rolling upgrade capped below compute.instance.op 1.6, the
// API does not ask agents what they cannot know.
func TestDiagnosticsCappedBus(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	hyp := list(t, e.do("admin", "GET", v21+"/os-hypervisors", "2.53", "").Body, "hypervisors")[0].(map[string]any)["id"].(string)
	e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 200, "")
	e.bus.SetVersionCap(rpc.MsgOp, bus.V(1, 5))
	e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 501, "")
	e.do("admin", "GET", v21+"/os-hypervisors/"+hyp+"/uptime", "2.53", "").Expect(t, 501, "")
	h := obj(t, e.do("admin", "GET", v21+"/os-hypervisors/"+hyp, "2.88", "").Expect(t, 200, "").Body, "hypervisor")
	if h["uptime"] != nil {
		t.Fatalf("uptime while capped: %v", h["uptime"])
	}
	e.bus.ClearVersionCap(rpc.MsgOp)
	e.do("admin", "GET", v21+"/servers/"+id+"/diagnostics", "2.48", "").Expect(t, 200, "")
}
