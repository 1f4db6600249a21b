package volume_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/volume"
	"github.com/kumo-cloud/kumo/internal/volume/backend"
)

// TestRecoverAfterRestart leaves volumes in every transitional status, as
// a process killed mid-step would, and checks that a new service on the
// same database finishes or fails each step: nothing stays transitional.
func TestRecoverAfterRestart(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		ctx := context.Background()
		mk := func(body string) string {
			return e.createVolume("alice", body)["id"].(string)
		}
		creating := mk(`{"volume": {"size": 1, "name": "creating"}}`)
		deleting := mk(`{"volume": {"size": 1, "name": "deleting"}}`)
		extending := mk(`{"volume": {"size": 1, "name": "extending"}}`)
		attaching := mk(`{"volume": {"size": 1, "name": "attaching"}}`)
		r := e.do("alice", "POST", v3+"/attachments", "3.27", `{"attachment": {"volume_uuid": "`+attaching+`", "instance_uuid": "8a3e1b2c-1111-4222-8333-444455556666", "connector": {"host": "h"}}}`).Expect(t, 200, "")
		_ = r
		st := e.svc.Store()
		set := func(id string, fn func(v *volume.Volume)) {
			if _, err := st.UpdateVolume(ctx, id, func(_ *sql.Tx, v *volume.Volume) error { fn(v); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		// The creating volume lost its backing data and host, as if the
		// process died before the backend ran.
		set(creating, func(v *volume.Volume) {
			v.Status, v.Task, v.Host, v.Location = volume.StatusCreating, &volume.Task{Op: "create"}, nil, nil
		})
		set(deleting, func(v *volume.Volume) { v.Status, v.Task = volume.StatusDeleting, &volume.Task{Op: "delete"} })
		set(extending, func(v *volume.Volume) {
			v.Status, v.Task = volume.StatusExtending, &volume.Task{Op: "extend", NewSize: 2}
		})
		e.svc.Close()

		e2 := newEnv(t, d, func(c *volume.Config) {
			fb, err := backend.NewFile("file", e.dir, "raw")
			if err != nil {
				t.Fatal(err)
			}
			c.Backends = []backend.Backend{fb}
		})
		if err := e2.svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		e2.svc.WaitTasks()
		for id, want := range map[string]string{creating: "available", extending: "available", attaching: "available"} {
			v := e2.wait("alice", "volumes", id, "")
			if v["status"] != want {
				t.Errorf("%s: status %v, want %s", v["name"], v["status"], want)
			}
			if v["name"] == "extending" && v["size"] != float64(2) {
				t.Errorf("extended size = %v", v["size"])
			}
		}
		e2.do("alice", "GET", v3+"/volumes/"+deleting, "", "").Expect(t, 404, "itemNotFound")
		r = e2.do("alice", "GET", v3+"/attachments", "3.27", "").Expect(t, 200, "")
		if n := len(list(t, r.Body, "attachments")); n != 0 {
			t.Errorf("%d half-made attachments left", n)
		}
	})
}
