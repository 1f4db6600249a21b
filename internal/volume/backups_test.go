package volume_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/volume"
)

func TestBackups(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		v := e.createVolume("alice", `{"volume": {"size": 1, "name": "src"}}`)
		id := v["id"].(string)
		f, err := os.OpenFile(filepath.Join(e.dir, "volume-"+id+".raw"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.WriteAt([]byte("backed-up-data"), 8192)
		f.Close()

		e.do("bob", "POST", v3+"/backups", "", `{"backup": {"volume_id": "`+id+`"}}`).Expect(t, 404, "itemNotFound")
		e.do("alice", "POST", v3+"/backups", "", `{"backup": {"volume_id": "`+id+`", "incremental": true}}`).Expect(t, 400, "badRequest")
		r := e.do("alice", "POST", v3+"/backups", "", `{"backup": {"volume_id": "`+id+`", "name": "b1"}}`).Expect(t, 202, "")
		bid := obj(t, r.Body, "backup")["id"].(string)
		b := e.wait("alice", "backups", bid, "creating")
		if b["status"] != "available" || b["size"] != float64(1) || b["volume_id"] != id {
			t.Fatalf("backup = %v", b)
		}
		if got := e.wait("alice", "volumes", id, ""); got["status"] != "available" {
			t.Errorf("volume after backup = %v", got["status"])
		}
		r = e.do("alice", "GET", v3+"/backups/detail", "", "").Expect(t, 200, "")
		if l := list(t, r.Body, "backups"); len(l) != 1 {
			t.Errorf("backups = %v", r.Raw)
		}
		e.do("alice", "PUT", v3+"/backups/"+bid, "3.9", `{"backup": {"name": "b2"}}`).Expect(t, 200, "")

		// Restore into a new volume, then into the (overwritten) source.
		r = e.do("alice", "POST", v3+"/backups/"+bid+"/restore", "", `{"restore": {"name": "restored"}}`).Expect(t, 202, "")
		nid := obj(t, r.Body, "restore")["volume_id"].(string)
		e.wait("alice", "backups", bid, "restoring")
		nv := e.wait("alice", "volumes", nid, "restoring-backup")
		if nv["status"] != "available" || nv["name"] != "restored" {
			t.Fatalf("restored volume = %v", nv)
		}
		got, err := readHead(filepath.Join(e.dir, "volume-"+nid+".raw"), 8192+14)
		if err != nil || !bytes.Equal(got[8192:], []byte("backed-up-data")) {
			t.Errorf("restored data: %q %v", got[8192:], err)
		}
		small := e.createVolume("alice", `{"volume": {"size": 1}}`)
		e.do("alice", "POST", v3+"/backups/"+bid+"/restore", "", `{"restore": {"volume_id": "`+small["id"].(string)+`"}}`).Expect(t, 202, "")
		e.wait("alice", "backups", bid, "restoring")
		if got := e.wait("alice", "volumes", small["id"].(string), "restoring-backup"); got["status"] != "available" {
			t.Errorf("restore into existing = %v", got["status"])
		}
		// Quota on backups.
		e.do("admin", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"backups": 1}}`).Expect(t, 200, "")
		e.do("alice", "POST", v3+"/backups", "", `{"backup": {"volume_id": "`+id+`"}}`).Expect(t, 413, "overLimit")

		e.do("alice", "POST", v3+"/backups/"+bid+"/action", "", `{"os-reset_status": {"status": "error"}}`).Expect(t, 403, "forbidden")
		e.do("admin", "POST", v3+"/backups/"+bid+"/action", "", `{"os-reset_status": {"status": "error"}}`).Expect(t, 202, "")
		e.do("alice", "DELETE", v3+"/backups/"+bid, "", "").Expect(t, 202, "")
		if got := e.wait("alice", "backups", bid, "deleting"); got != nil {
			t.Errorf("backup after delete = %v", got)
		}
		e.do("alice", "GET", v3+"/backups/"+bid, "", "").Expect(t, 404, "itemNotFound")
	})
}
