package compute_test

import (
	"strings"
	"testing"
)

// TestRemoteConsolesRefusals covers the console API's answers that need
// no console: the fake driver has none (Nova's "Unavailable console
// type" 400), bad bodies, old microversions, servers not running, and the
// proxy refusing unknown tokens. The consoles themselves are tested on a
// real guest (test/e2e TestQEMUServerLifecycle).
func TestRemoteConsolesRefusals(t *testing.T) {
	t.Parallel()
	e := newServerEnv(t, nil, 1, nil)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	path := v21 + "/servers/" + id + "/remote-consoles"
	for _, tc := range []struct {
		name, version, body string
		status              int
		fault, msg          string
	}{
		{"fake driver has no serial console", "2.6", `{"remote_console": {"protocol": "serial", "type": "serial"}}`, 400, "badRequest", "Unavailable console type serial."},
		{"fake driver has no vnc console", "2.96", `{"remote_console": {"protocol": "vnc", "type": "novnc"}}`, 400, "badRequest", "Unavailable console type novnc."},
		{"type of another protocol", "2.6", `{"remote_console": {"protocol": "vnc", "type": "serial"}}`, 400, "badRequest", "Unavailable console type serial."},
		{"unknown protocol", "2.6", `{"remote_console": {"protocol": "telnet", "type": "serial"}}`, 400, "badRequest", "is not one of"},
		{"no body", "2.6", `{}`, 400, "badRequest", "'remote_console' is a required property"},
		{"before 2.6", "2.5", `{"remote_console": {"protocol": "serial", "type": "serial"}}`, 404, "itemNotFound", ""},
	} {
		r := e.do("alice", "POST", path, tc.version, tc.body).Expect(t, tc.status, tc.fault)
		if !strings.Contains(r.Raw, tc.msg) {
			t.Errorf("%s: %s lacks %q", tc.name, r.Raw, tc.msg)
		}
	}
	e.do("bob", "POST", path, "2.6", `{"remote_console": {"protocol": "serial", "type": "serial"}}`).Expect(t, 404, "itemNotFound")
	r := e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.1", `{"os-getVNCConsole": {"type": "novnc"}}`).Expect(t, 400, "badRequest")
	if !strings.Contains(r.Raw, "Unavailable console type novnc.") {
		t.Errorf("os-getVNCConsole on fake: %s", r.Raw)
	}
	e.do("alice", "POST", v21+"/servers/"+id+"/action", "2.1", `{"os-getSerialConsole": {}}`).Expect(t, 400, "badRequest")

	e.do("alice", "POST", v21+"/servers/"+id+"/action", "", `{"os-stop": null}`).Expect(t, 202, "")
	e.waitStatus(id, "SHUTOFF")
	e.do("alice", "POST", path, "2.6", `{"remote_console": {"protocol": "serial", "type": "serial"}}`).Expect(t, 409, "conflictingRequest")

	// The proxy needs a valid token; it is not a Keystone route.
	for _, p := range []string{"/compute/console/serial?token=nope", "/compute/console/websockify", "/compute/console/serial"} {
		e.do("", "GET", p, "", "").Expect(t, 401, "")
	}
}
