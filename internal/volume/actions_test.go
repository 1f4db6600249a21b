package volume_test

import "testing"

func TestMoreActions(t *testing.T) {
	e := newEnv(t, nil, nil)
	v := e.createVolume("alice", `{"volume": {"size": 1}}`)
	id := v["id"].(string)
	act := func(token, body string, status int, fault string) {
		t.Helper()
		e.do(token, "POST", v3+"/volumes/"+id+"/action", "", body).Expect(t, status, fault)
	}
	// Retype within the backend; a type bound to another backend needs a
	// migration, which is refused.
	e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "gold"}}`).Expect(t, 200, "")
	e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "far", "extra_specs": {"volume_backend_name": "lvm"}}}`).Expect(t, 200, "")
	act("alice", `{"os-retype": {"new_type": "gold"}}`, 202, "")
	if got := e.wait("alice", "volumes", id, ""); got["volume_type"] != "gold" {
		t.Errorf("after retype = %v", got["volume_type"])
	}
	act("alice", `{"os-retype": {"new_type": "far"}}`, 400, "badRequest")
	act("alice", `{"os-retype": {"new_type": "nope"}}`, 404, "itemNotFound")
	// Reserve / unreserve.
	act("alice", `{"os-reserve": null}`, 202, "")
	act("alice", `{"os-reserve": null}`, 400, "badRequest")
	act("alice", `{"os-unreserve": null}`, 202, "")
	if got := e.wait("alice", "volumes", id, ""); got["status"] != "available" {
		t.Errorf("after unreserve = %v", got["status"])
	}
	// The legacy attach flow: os-attach (instance or host, a mountpoint
	// required), os-detach (the only attachment, or the one named).
	const inst = "8a3e1b2c-1111-4222-8333-444455556666"
	for _, c := range []struct{ body, fault string }{
		{`{"os-attach": {"instance_uuid": "` + inst + `"}}`, "badRequest"},
		{`{"os-attach": {"mountpoint": "/mnt"}}`, "badRequest"},
		{`{"os-attach": {"instance_uuid": "` + inst + `", "host_name": "h", "mountpoint": "/mnt"}}`, "badRequest"},
		{`{"os-attach": {"instance_uuid": "` + inst + `", "mountpoint": "/mnt", "mode": "wx"}}`, "badRequest"},
	} {
		act("alice", c.body, 400, c.fault)
	}
	act("bob", `{"os-attach": {"instance_uuid": "`+inst+`", "mountpoint": "/mnt"}}`, 404, "itemNotFound")
	act("alice", `{"os-attach": {"instance_uuid": "`+inst+`", "mountpoint": "/mnt", "mode": "rw"}}`, 202, "")
	got := e.wait("alice", "volumes", id, "")
	if got["status"] != "in-use" || len(got["attachments"].([]any)) != 1 {
		t.Fatalf("after os-attach = %v", got)
	}
	if a := got["attachments"].([]any)[0].(map[string]any); a["server_id"] != inst || a["device"] != "/mnt" {
		t.Errorf("attachment = %v", a)
	}
	act("alice", `{"os-detach": {"attachment_id": "00000000-0000-4000-8000-000000000000"}}`, 404, "itemNotFound")
	act("alice", `{"os-detach": {}}`, 202, "")
	if got := e.wait("alice", "volumes", id, ""); got["status"] != "available" || len(got["attachments"].([]any)) != 0 {
		t.Errorf("after os-detach = %v", got)
	}
	// Snapshot status updates and force delete.
	r := e.do("alice", "POST", v3+"/snapshots", "", `{"snapshot": {"volume_id": "`+id+`"}}`).Expect(t, 202, "")
	sid := obj(t, r.Body, "snapshot")["id"].(string)
	e.wait("alice", "snapshots", sid, "creating")
	e.do("admin", "POST", v3+"/snapshots/"+sid+"/action", "", `{"os-reset_status": {"status": "creating"}}`).Expect(t, 202, "")
	e.do("alice", "POST", v3+"/snapshots/"+sid+"/action", "", `{"os-update_snapshot_status": {"status": "deleting"}}`).Expect(t, 400, "badRequest")
	e.do("alice", "POST", v3+"/snapshots/"+sid+"/action", "", `{"os-update_snapshot_status": {"status": "available", "progress": "100%"}}`).Expect(t, 202, "")
	e.do("alice", "POST", v3+"/snapshots/"+sid+"/action", "", `{"os-force_delete": {}}`).Expect(t, 403, "forbidden")
	e.do("admin", "POST", v3+"/snapshots/"+sid+"/action", "", `{"os-force_delete": {}}`).Expect(t, 202, "")
	if got := e.wait("alice", "snapshots", sid, "deleting"); got != nil {
		t.Errorf("snapshot after force delete = %v", got)
	}
	// Pools.
	e.do("alice", "GET", v3+"/scheduler-stats/get_pools", "", "").Expect(t, 403, "forbidden")
	r = e.do("admin", "GET", v3+"/scheduler-stats/get_pools?detail=true", "", "").Expect(t, 200, "")
	p := list(t, r.Body, "pools")[0].(map[string]any)
	if p["name"] != "kumo@file#file" || obj(t, p, "capabilities")["volume_backend_name"] != "file" {
		t.Errorf("pools = %v", r.Raw)
	}
}

func TestPerTypeQuota(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "ssd"}}`).Expect(t, 200, "")
	r := e.do("alice", "GET", v3+"/os-quota-sets/p1", "", "").Expect(t, 200, "")
	if q := obj(t, r.Body, "quota_set"); q["volumes_ssd"] != float64(-1) || q["gigabytes___DEFAULT__"] != float64(-1) {
		t.Errorf("quota set lacks per-type keys: %v", q)
	}
	e.do("admin", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"volumes_ssd": 1}}`).Expect(t, 200, "")
	e.do("admin", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"volumes_nope": 1}}`).Expect(t, 400, "badRequest")
	e.createVolume("alice", `{"volume": {"size": 1, "volume_type": "ssd"}}`)
	e.do("alice", "POST", v3+"/volumes", "", `{"volume": {"size": 1, "volume_type": "ssd"}}`).Expect(t, 413, "overLimit")
	e.createVolume("alice", `{"volume": {"size": 1}}`)
}
