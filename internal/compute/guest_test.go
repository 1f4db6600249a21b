package compute_test

import (
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/virt"
)

func TestChangePasswordAndCrashDump(t *testing.T) {
	e := newServerEnv(t, nil, 1, nil)
	id := e.boot("alice", "")
	e.waitStatus(id, "ACTIVE")
	d := e.driver(0)
	do := func(token, version, body string, status int, fault string) resp {
		t.Helper()
		return e.do(token, "POST", v21+"/servers/"+id+"/action", version, body).Expect(t, status, fault)
	}

	do("alice", "2.1", `{"changePassword": {"adminPass": "n3w"}}`, 202, "")
	if got := d.AdminPassword(id); got != "n3w" {
		t.Fatalf("driver password %q", got)
	}
	do("alice", "2.1", `{"changePassword": {"adminPass": 5}}`, 400, "badRequest")
	do("alice", "2.1", `{"changePassword": {"adminPass": "x", "extra": 1}}`, 400, "badRequest")
	do("rob", "2.1", `{"changePassword": {"adminPass": "x"}}`, 403, "forbidden")
	do("bob", "2.1", `{"changePassword": {"adminPass": "x"}}`, 404, "itemNotFound")
	// A driver without a guest agent (QEMU) or without the operation.
	d.FailNext("set_password", virt.ErrNoGuestAgent)
	r := do("alice", "2.1", `{"changePassword": {"adminPass": "x"}}`, 409, "conflictingRequest")
	if m := r.Body["conflictingRequest"].(map[string]any)["message"].(string); !strings.Contains(m, "guest agent is not enabled") {
		t.Errorf("message %q", m)
	}
	d.FailNext("set_password", virt.ErrUnsupported)
	do("alice", "2.1", `{"changePassword": {"adminPass": "x"}}`, 501, "notImplemented")
	if got := d.AdminPassword(id); got != "n3w" {
		t.Fatalf("failed changes changed the password to %q", got)
	}

	do("alice", "2.16", `{"trigger_crash_dump": null}`, 400, "badRequest")
	do("alice", "2.17", `{"trigger_crash_dump": {}}`, 400, "badRequest")
	do("alice", "2.17", `{"trigger_crash_dump": null}`, 202, "")
	if n := d.NMIs(id); n != 1 {
		t.Fatalf("%d NMIs", n)
	}
	d.FailNext("inject_nmi", virt.ErrUnsupported)
	do("alice", "2.17", `{"trigger_crash_dump": null}`, 400, "badRequest")
	e.action("alice", id, `{"pause": null}`, 202)
	e.waitStatus(id, "PAUSED")
	do("alice", "2.17", `{"trigger_crash_dump": null}`, 202, "")
	do("alice", "2.1", `{"changePassword": {"adminPass": "x"}}`, 409, "conflictingRequest")
	e.action("alice", id, `{"unpause": null}`, 202)
	e.waitStatus(id, "ACTIVE")

	// Locked: only admins may.
	e.action("alice", id, `{"lock": null}`, 202)
	do("alice", "2.17", `{"trigger_crash_dump": null}`, 409, "conflictingRequest")
	do("alice", "2.1", `{"changePassword": {"adminPass": "x"}}`, 409, "conflictingRequest")
	do("admin", "2.17", `{"trigger_crash_dump": null}`, 202, "")
	e.action("alice", id, `{"unlock": null}`, 202)

	e.action("alice", id, `{"os-stop": null}`, 202)
	e.waitStatus(id, "SHUTOFF")
	do("alice", "2.17", `{"trigger_crash_dump": null}`, 409, "conflictingRequest")
	do("alice", "2.1", `{"changePassword": {"adminPass": "x"}}`, 409, "conflictingRequest")
	if n := d.NMIs(id); n != 3 {
		t.Fatalf("%d NMIs", n)
	}

	got := actionNames(t, e, id)
	if c := strings.Count(got, "changePassword"); c != 3 {
		t.Errorf("%d changePassword actions in %s", c, got)
	}
	if c := strings.Count(got, "trigger_crash_dump"); c != 4 {
		t.Errorf("%d trigger_crash_dump actions in %s", c, got)
	}
}
