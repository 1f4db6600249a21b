package volume_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/volume"
)

func TestVersions(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := e.do("", "GET", "/volume", "", "").Expect(t, 300, "")
	v := list(t, r.Body, "versions")[0].(map[string]any)
	if v["id"] != "v3.0" || v["version"] != "3.60" || v["min_version"] != "3.0" {
		t.Errorf("versions = %v", v)
	}
	e.do("", "GET", v3+"/", "", "").Expect(t, 200, "")
	r = e.do("alice", "GET", v3+"/volumes", "3.59", "").Expect(t, 200, "")
	if got := r.Header.Get("OpenStack-API-Version"); got != "volume 3.59" {
		t.Errorf("OpenStack-API-Version = %q", got)
	}
	e.do("alice", "GET", v3+"/volumes", "3.99", "").Expect(t, 406, "")
	e.do("alice", "GET", v3+"/volumes", "latest", "").Expect(t, 200, "")
	e.do("", "GET", v3+"/volumes", "", "").Expect(t, 401, "unauthorized")
	e.do("alice", "GET", v3+"/nothing-here", "", "").Expect(t, 404, "itemNotFound")
	e.do("alice", "PATCH", v3+"/volumes", "", "{}").Expect(t, 405, "badMethod")
}

func TestVolumeLifecycle(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		v := e.createVolume("alice", `{"volume": {"size": 1, "name": "data", "metadata": {"tier": "gold"}}}`)
		id := v["id"].(string)
		if v["status"] != "available" || v["bootable"] != "false" || v["volume_type"] != "__DEFAULT__" ||
			v["os-vol-tenant-attr:tenant_id"] != "p1" || v["availability_zone"] != "nova" || v["multiattach"] != false {
			t.Fatalf("volume = %v", v)
		}
		if _, ok := v["os-vol-host-attr:host"]; ok {
			t.Error("a member sees the host attribute")
		}
		path, err := filepath.Glob(filepath.Join(e.dir, "volume-"+id+".raw"))
		if err != nil || len(path) != 1 {
			t.Fatalf("no backing file for %s", id)
		}
		if st, _ := os.Stat(path[0]); st.Size() != 1<<30 {
			t.Errorf("backing file size %d", st.Size())
		}
		// The same through the project-scoped URL, and as admin.
		e.do("alice", "GET", v3+"/p1/volumes/"+id, "", "").Expect(t, 200, "")
		r := e.do("admin", "GET", v3+"/volumes/"+id, "", "").Expect(t, 200, "")
		if obj(t, r.Body, "volume")["os-vol-host-attr:host"] != "kumo@file#file" {
			t.Errorf("admin view = %v", r.Raw)
		}
		// Other projects do not see it.
		e.do("bob", "GET", v3+"/volumes/"+id, "", "").Expect(t, 404, "itemNotFound")
		e.do("bob", "DELETE", v3+"/volumes/"+id, "", "").Expect(t, 404, "itemNotFound")
		e.do("bob", "GET", v3+"/p1/volumes/"+id, "", "").Expect(t, 400, "badRequest")
		// Readers read, do not write.
		e.do("rob", "GET", v3+"/volumes/"+id, "", "").Expect(t, 200, "")
		e.do("rob", "PUT", v3+"/volumes/"+id, "", `{"volume": {"name": "x"}}`).Expect(t, 403, "forbidden")

		r = e.do("alice", "PUT", v3+"/volumes/"+id, "", `{"volume": {"name": "data2", "description": "d"}}`).Expect(t, 200, "")
		if o := obj(t, r.Body, "volume"); o["name"] != "data2" || o["description"] != "d" {
			t.Errorf("update = %v", o)
		}
		e.do("alice", "POST", v3+"/volumes/"+id+"/metadata", "", `{"metadata": {"a": "1"}}`).Expect(t, 200, "")
		r = e.do("alice", "GET", v3+"/volumes/"+id+"/metadata", "", "").Expect(t, 200, "")
		if md := obj(t, r.Body, "metadata"); md["a"] != "1" || md["tier"] != "gold" {
			t.Errorf("metadata = %v", md)
		}
		e.do("alice", "PUT", v3+"/volumes/"+id+"/metadata/a", "", `{"meta": {"a": "2"}}`).Expect(t, 200, "")
		e.do("alice", "GET", v3+"/volumes/"+id+"/metadata/a", "", "").Expect(t, 200, "")
		e.do("alice", "DELETE", v3+"/volumes/"+id+"/metadata/a", "", "").Expect(t, 200, "")
		e.do("alice", "DELETE", v3+"/volumes/"+id+"/metadata/a", "", "").Expect(t, 404, "itemNotFound")
		e.do("alice", "PUT", v3+"/volumes/"+id+"/metadata/a", "", `{"meta": {"b": "2"}}`).Expect(t, 400, "badRequest")

		// Flags and image metadata.
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-set_bootable": {"bootable": true}}`).Expect(t, 200, "")
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-set_image_metadata": {"metadata": {"hw_disk_bus": "scsi"}}}`).Expect(t, 200, "")
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-update_readonly_flag": {"readonly": true}}`).Expect(t, 202, "")
		r = e.do("alice", "GET", v3+"/volumes/"+id, "", "").Expect(t, 200, "")
		o := obj(t, r.Body, "volume")
		if o["bootable"] != "true" || obj(t, o, "volume_image_metadata")["hw_disk_bus"] != "scsi" || obj(t, o, "metadata")["readonly"] != "True" {
			t.Errorf("flags = %v", r.Raw)
		}
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-unset_image_metadata": {"key": "nope"}}`).Expect(t, 404, "itemNotFound")

		// Extend, and the refusals.
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-extend": {"new_size": 1}}`).Expect(t, 400, "badRequest")
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-extend": {"new_size": "abc"}}`).Expect(t, 400, "badRequest")
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-extend": {"new_size": 3}}`).Expect(t, 202, "")
		o = e.wait("alice", "volumes", id, "extending")
		if o["size"] != float64(3) || o["status"] != "available" {
			t.Errorf("after extend = %v", o)
		}
		if st, _ := os.Stat(path[0]); st.Size() != 3<<30 {
			t.Errorf("backing file size after extend %d", st.Size())
		}
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-nothing": {}}`).Expect(t, 400, "badRequest")
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-reset_status": {"status": "error"}}`).Expect(t, 403, "forbidden")
		e.do("admin", "POST", v3+"/volumes/"+id+"/action", "", `{"os-reset_status": {"status": "bogus"}}`).Expect(t, 400, "badRequest")
		e.do("admin", "POST", v3+"/volumes/"+id+"/action", "", `{"os-reset_status": {"status": "error"}}`).Expect(t, 202, "")

		e.do("alice", "DELETE", v3+"/volumes/"+id, "", "").Expect(t, 202, "")
		if got := e.wait("alice", "volumes", id, "deleting"); got != nil {
			t.Fatalf("volume after delete = %v", got)
		}
		if _, err := os.Stat(path[0]); !os.IsNotExist(err) {
			t.Errorf("backing file left: %v", err)
		}
	})
}

func TestCreateBadInput(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, c := range []struct {
		body   string
		status int
		fault  string
	}{
		{`{"volume": {"size": 0}}`, 400, "badRequest"},
		{`{"volume": {"size": -1}}`, 400, "badRequest"},
		{`{"volume": {"size": "abc"}}`, 400, "badRequest"},
		{`{"volume": {}}`, 400, "badRequest"},
		{`{"nothing": {}}`, 400, "badRequest"},
		{`{"volume": {"size": 1`, 400, "badRequest"},
		{`{"volume": {"size": 1, "volume_type": "nope"}}`, 404, "itemNotFound"},
		{`{"volume": {"size": 1, "availability_zone": "elsewhere"}}`, 400, "badRequest"},
		{`{"volume": {"size": 1, "snapshot_id": "00000000-0000-4000-8000-000000000000"}}`, 404, "itemNotFound"},
		{`{"volume": {"size": 1, "source_volid": "00000000-0000-4000-8000-000000000000"}}`, 404, "itemNotFound"},
		{`{"volume": {"size": 1, "imageRef": "00000000-0000-4000-8000-000000000000"}}`, 400, "badRequest"},
		{`{"volume": {"size": 1, "multiattach": true}}`, 400, "badRequest"},
		{`{"volume": {"size": 1, "metadata": {"k": 1}}}`, 400, "badRequest"},
	} {
		e.do("alice", "POST", v3+"/volumes", "", c.body).Expect(t, c.status, c.fault)
	}
	r := e.do("alice", "GET", v3+"/volumes", "", "").Expect(t, 200, "")
	if n := len(list(t, r.Body, "volumes")); n != 0 {
		t.Errorf("%d volumes left by refused creates", n)
	}
	// String sizes are numbers to Cinder.
	e.createVolume("alice", `{"volume": {"size": "1"}}`)
}

func TestListFiltersSortPagination(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		ids := map[string]string{}
		for i := 1; i <= 5; i++ {
			v := e.createVolume("alice", fmt.Sprintf(`{"volume": {"size": %d, "name": "v%d", "metadata": {"n": "%d", "even": "%t"}}}`, i, i, i, i%2 == 0))
			ids[v["name"].(string)] = v["id"].(string)
		}
		e.createVolume("bob", `{"volume": {"size": 1, "name": "bobs"}}`)

		r := e.do("alice", "GET", v3+"/volumes/detail?sort=size:asc&limit=2", "", "").Expect(t, 200, "")
		vs := list(t, r.Body, "volumes")
		if len(vs) != 2 || vs[0].(map[string]any)["name"] != "v1" || vs[1].(map[string]any)["name"] != "v2" {
			t.Fatalf("page 1 = %v", r.Raw)
		}
		var names []string
		next := list(t, r.Body, "volumes_links")[0].(map[string]any)["href"].(string)
		for next != "" {
			r = e.do("alice", "GET", strings.TrimPrefix(next, publicURL), "", "").Expect(t, 200, "")
			for _, v := range list(t, r.Body, "volumes") {
				names = append(names, v.(map[string]any)["name"].(string))
			}
			next = ""
			if l, ok := r.Body["volumes_links"].([]any); ok {
				next = l[0].(map[string]any)["href"].(string)
			}
		}
		if strings.Join(names, ",") != "v3,v4,v5" {
			t.Errorf("following pages = %v", names)
		}
		r = e.do("alice", "GET", v3+"/volumes?sort_key=name&sort_dir=desc", "", "").Expect(t, 200, "")
		if vs := list(t, r.Body, "volumes"); len(vs) != 5 || vs[0].(map[string]any)["name"] != "v5" {
			t.Errorf("sorted desc = %v", r.Raw)
		}
		r = e.do("alice", "GET", v3+"/volumes?name=v3", "", "").Expect(t, 200, "")
		if vs := list(t, r.Body, "volumes"); len(vs) != 1 || vs[0].(map[string]any)["id"] != ids["v3"] {
			t.Errorf("name filter = %v", r.Raw)
		}
		r = e.do("alice", "GET", v3+`/volumes/detail?metadata={"even":"true"}`, "", "").Expect(t, 200, "")
		if vs := list(t, r.Body, "volumes"); len(vs) != 2 {
			t.Errorf("metadata filter = %v", r.Raw)
		}
		r = e.do("alice", "GET", v3+"/volumes?with_count=true", "3.45", "").Expect(t, 200, "")
		if r.Body["count"] != float64(5) {
			t.Errorf("count = %v", r.Body["count"])
		}
		r = e.do("admin", "GET", v3+"/volumes?all_tenants=1", "", "").Expect(t, 200, "")
		if vs := list(t, r.Body, "volumes"); len(vs) != 6 {
			t.Errorf("all_tenants = %d volumes", len(vs))
		}
		e.do("alice", "GET", v3+"/volumes?sort=bogus:asc", "", "").Expect(t, 400, "badRequest")
		e.do("alice", "GET", v3+"/volumes?sort=name:sideways", "", "").Expect(t, 400, "badRequest")
		e.do("alice", "GET", v3+"/volumes?limit=-1", "", "").Expect(t, 400, "badRequest")
		e.do("alice", "GET", v3+"/volumes?marker="+ids["bobs"]+"x", "", "").Expect(t, 404, "itemNotFound")
	})
}

func TestSnapshotsAndClones(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		v := e.createVolume("alice", `{"volume": {"size": 1, "name": "src"}}`)
		id := v["id"].(string)
		// Write data into the source so copies can be checked.
		loc := filepath.Join(e.dir, "volume-"+id+".raw")
		f, err := os.OpenFile(loc, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("kumo-data"), 4096); err != nil {
			t.Fatal(err)
		}
		f.Close()

		e.do("alice", "POST", v3+"/snapshots", "", `{"snapshot": {"name": "s"}}`).Expect(t, 400, "badRequest")
		e.do("bob", "POST", v3+"/snapshots", "", `{"snapshot": {"volume_id": "`+id+`"}}`).Expect(t, 404, "itemNotFound")
		r := e.do("alice", "POST", v3+"/snapshots", "", `{"snapshot": {"volume_id": "`+id+`", "name": "s1", "metadata": {"k": "v"}}}`).Expect(t, 202, "")
		sid := obj(t, r.Body, "snapshot")["id"].(string)
		sn := e.wait("alice", "snapshots", sid, "creating")
		if sn["status"] != "available" || sn["size"] != float64(1) || sn["os-extended-snapshot-attributes:progress"] != "100%" {
			t.Fatalf("snapshot = %v", sn)
		}
		r = e.do("alice", "GET", v3+"/snapshots/detail", "", "").Expect(t, 200, "")
		if len(list(t, r.Body, "snapshots")) != 1 {
			t.Errorf("snapshot list = %v", r.Raw)
		}
		e.do("alice", "PUT", v3+"/snapshots/"+sid, "", `{"snapshot": {"name": "s2"}}`).Expect(t, 200, "")
		e.do("alice", "POST", v3+"/snapshots/"+sid+"/metadata", "", `{"metadata": {"a": "b"}}`).Expect(t, 200, "")
		r = e.do("alice", "GET", v3+"/snapshots/"+sid+"/metadata", "", "").Expect(t, 200, "")
		if md := obj(t, r.Body, "metadata"); md["a"] != "b" || md["k"] != "v" {
			t.Errorf("snapshot metadata = %v", md)
		}

		// A volume with snapshots cannot be deleted without cascade.
		e.do("alice", "DELETE", v3+"/volumes/"+id, "", "").Expect(t, 400, "badRequest")

		e.do("alice", "POST", v3+"/volumes", "", `{"volume": {"size": 0, "snapshot_id": "`+sid+`"}}`).Expect(t, 400, "badRequest")
		fromSnap := e.createVolume("alice", `{"volume": {"snapshot_id": "`+sid+`", "size": 2}}`)
		clone := e.createVolume("alice", `{"volume": {"source_volid": "`+id+`"}}`)
		for _, c := range []map[string]any{fromSnap, clone} {
			if c["status"] != "available" {
				t.Fatalf("copy = %v", c)
			}
			b, err := readHead(filepath.Join(e.dir, "volume-"+c["id"].(string)+".raw"), 8192)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[4096:4105], []byte("kumo-data")) {
				t.Errorf("copy %s lacks the source's data", c["id"])
			}
		}
		if fromSnap["size"] != float64(2) || fromSnap["snapshot_id"] != sid || clone["source_volid"] != id {
			t.Errorf("copies = %v / %v", fromSnap, clone)
		}
		e.do("alice", "DELETE", v3+"/volumes/"+id+"?cascade=true", "", "").Expect(t, 202, "")
		e.wait("alice", "volumes", id, "deleting")
		e.do("alice", "GET", v3+"/snapshots/"+sid, "", "").Expect(t, 404, "itemNotFound")
	})
}

func TestQuotasAndLimits(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := e.do("alice", "GET", v3+"/os-quota-sets/p1", "", "").Expect(t, 200, "")
	if qs := obj(t, r.Body, "quota_set"); qs["volumes"] != float64(10) || qs["gigabytes"] != float64(1000) {
		t.Errorf("quota set = %v", qs)
	}
	e.do("alice", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"volumes": 2}}`).Expect(t, 403, "forbidden")
	e.do("admin", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"volumes": 2, "gigabytes": 5}}`).Expect(t, 200, "")
	e.do("admin", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"bogus": 2}}`).Expect(t, 400, "badRequest")
	e.createVolume("alice", `{"volume": {"size": 3}}`)
	e.do("alice", "POST", v3+"/volumes", "", `{"volume": {"size": 3}}`).Expect(t, 413, "overLimit")
	v := e.createVolume("alice", `{"volume": {"size": 2}}`)
	e.do("alice", "POST", v3+"/volumes", "", `{"volume": {"size": 1}}`).Expect(t, 413, "overLimit")
	e.do("alice", "POST", v3+"/volumes/"+v["id"].(string)+"/action", "", `{"os-extend": {"new_size": 4}}`).Expect(t, 413, "overLimit")
	e.do("alice", "POST", v3+"/snapshots", "", `{"snapshot": {"volume_id": "`+v["id"].(string)+`"}}`).Expect(t, 413, "overLimit")
	e.do("admin", "PUT", v3+"/os-quota-sets/p1", "", `{"quota_set": {"volumes": 1}}`).Expect(t, 400, "badRequest")
	r = e.do("alice", "GET", v3+"/os-quota-sets/p1?usage=True", "", "").Expect(t, 200, "")
	if g := obj(t, obj(t, r.Body, "quota_set"), "gigabytes"); g["in_use"] != float64(5) || g["limit"] != float64(5) {
		t.Errorf("usage = %v", g)
	}
	r = e.do("alice", "GET", v3+"/limits", "", "").Expect(t, 200, "")
	abs := obj(t, obj(t, r.Body, "limits"), "absolute")
	if abs["maxTotalVolumes"] != float64(2) || abs["totalVolumesUsed"] != float64(2) || abs["totalGigabytesUsed"] != float64(5) {
		t.Errorf("limits = %v", abs)
	}
	e.do("admin", "DELETE", v3+"/os-quota-sets/p1", "", "").Expect(t, 200, "")
	e.do("admin", "GET", v3+"/os-quota-sets/p1/defaults", "", "").Expect(t, 200, "")
	r = e.do("alice", "GET", v3+"/os-availability-zone", "", "").Expect(t, 200, "")
	if z := list(t, r.Body, "availabilityZoneInfo"); len(z) != 1 || z[0].(map[string]any)["zoneName"] != "nova" {
		t.Errorf("zones = %v", r.Raw)
	}
}

func TestTypesAccessAndScheduling(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		e.do("alice", "POST", v3+"/types", "", `{"volume_type": {"name": "x"}}`).Expect(t, 403, "forbidden")
		r := e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "fast", "extra_specs": {"volume_backend_name": "file"}}}`).Expect(t, 200, "")
		fast := obj(t, r.Body, "volume_type")["id"].(string)
		e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "fast"}}`).Expect(t, 409, "conflictingRequest")
		r = e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "nowhere", "extra_specs": {"volume_backend_name": "lvm"}}}`).Expect(t, 200, "")
		r = e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "private", "os-volume-type-access:is_public": false}}`).Expect(t, 200, "")
		priv := obj(t, r.Body, "volume_type")["id"].(string)
		r = e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "shared", "extra_specs": {"multiattach": "<is> True"}}}`).Expect(t, 200, "")

		r = e.do("alice", "GET", v3+"/types", "", "").Expect(t, 200, "")
		if n := len(list(t, r.Body, "volume_types")); n != 4 {
			t.Errorf("alice sees %d types: %s", n, r.Raw)
		}
		r = e.do("alice", "GET", v3+"/types/"+fast, "", "").Expect(t, 200, "")
		if specs := obj(t, obj(t, r.Body, "volume_type"), "extra_specs"); len(specs) != 0 {
			t.Errorf("a member sees extra specs %v", specs)
		}
		e.do("alice", "GET", v3+"/types/"+fast+"/extra_specs", "", "").Expect(t, 403, "forbidden")
		e.do("admin", "POST", v3+"/types/"+fast+"/extra_specs", "", `{"extra_specs": {"k": "v"}}`).Expect(t, 200, "")
		e.do("admin", "GET", v3+"/types/"+fast+"/extra_specs/k", "", "").Expect(t, 200, "")
		e.do("admin", "PUT", v3+"/types/"+fast+"/extra_specs/k", "", `{"k": "w"}`).Expect(t, 200, "")
		e.do("admin", "DELETE", v3+"/types/"+fast+"/extra_specs/k", "", "").Expect(t, 202, "")
		e.do("admin", "DELETE", v3+"/types/"+fast+"/extra_specs/k", "", "").Expect(t, 404, "itemNotFound")

		// Scheduling by volume_backend_name.
		v := e.createVolume("alice", `{"volume": {"size": 1, "volume_type": "fast"}}`)
		if v["status"] != "available" || v["volume_type"] != "fast" {
			t.Errorf("fast volume = %v", v)
		}
		v = e.createVolume("alice", `{"volume": {"size": 1, "volume_type": "nowhere"}}`)
		if v["status"] != "error" {
			t.Errorf("unplaceable volume = %v", v)
		}
		e.do("alice", "DELETE", v3+"/volumes/"+v["id"].(string), "", "").Expect(t, 202, "")
		e.do("admin", "DELETE", v3+"/types/"+fast, "", "").Expect(t, 400, "badRequest")

		// Private types need access.
		e.do("alice", "POST", v3+"/volumes", "", `{"volume": {"size": 1, "volume_type": "private"}}`).Expect(t, 404, "itemNotFound")
		e.do("admin", "POST", v3+"/types/"+priv+"/action", "", `{"addProjectAccess": {"project": "p1"}}`).Expect(t, 202, "")
		e.do("admin", "POST", v3+"/types/"+priv+"/action", "", `{"addProjectAccess": {"project": "p1"}}`).Expect(t, 409, "conflictingRequest")
		r = e.do("admin", "GET", v3+"/types/"+priv+"/os-volume-type-access", "", "").Expect(t, 200, "")
		if a := list(t, r.Body, "volume_type_access"); len(a) != 1 {
			t.Errorf("access = %v", r.Raw)
		}
		e.createVolume("alice", `{"volume": {"size": 1, "volume_type": "private"}}`)
		e.do("bob", "POST", v3+"/volumes", "", `{"volume": {"size": 1, "volume_type": "private"}}`).Expect(t, 404, "itemNotFound")
		e.do("admin", "POST", v3+"/types/"+fast+"/action", "", `{"addProjectAccess": {"project": "p1"}}`).Expect(t, 400, "badRequest")
		e.do("admin", "PUT", v3+"/types/"+priv, "", `{"volume_type": {"description": "mine"}}`).Expect(t, 200, "")
		e.do("admin", "DELETE", v3+"/types/"+volume.DefaultTypeID, "", "").Expect(t, 400, "badRequest")

		// os-services
		e.do("alice", "GET", v3+"/os-services", "", "").Expect(t, 403, "forbidden")
		r = e.do("admin", "GET", v3+"/os-services", "", "").Expect(t, 200, "")
		if s := list(t, r.Body, "services"); len(s) != 2 {
			t.Errorf("services = %v", r.Raw)
		}
		e.do("admin", "PUT", v3+"/os-services/disable", "", `{"host": "kumo@file", "binary": "cinder-volume"}`).Expect(t, 200, "")
		v = e.createVolume("alice", `{"volume": {"size": 1}}`)
		if v["status"] != "error" {
			t.Errorf("volume on a disabled backend = %v", v)
		}
		e.do("admin", "PUT", v3+"/os-services/enable", "", `{"host": "kumo@file", "binary": "cinder-volume"}`).Expect(t, 200, "")
		e.do("admin", "PUT", v3+"/os-services/enable", "", `{"host": "nohost", "binary": "cinder-volume"}`).Expect(t, 404, "itemNotFound")
	})
}

func TestAttachmentsAPI(t *testing.T) {
	dbtest.Each(t, []db.Set{volume.Migrations()}, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, nil)
		v := e.createVolume("alice", `{"volume": {"size": 1}}`)
		id := v["id"].(string)
		const inst = "8a3e1b2c-1111-4222-8333-444455556666"
		body := `{"attachment": {"volume_uuid": "` + id + `", "instance_uuid": "` + inst + `"}}`
		e.do("alice", "POST", v3+"/attachments", "3.26", body).Expect(t, 404, "itemNotFound")
		e.do("bob", "POST", v3+"/attachments", "3.27", body).Expect(t, 404, "itemNotFound")
		r := e.do("alice", "POST", v3+"/attachments", "3.27", body).Expect(t, 200, "")
		att := obj(t, r.Body, "attachment")
		aid := att["id"].(string)
		if att["status"] != "reserved" || att["instance"] != inst {
			t.Errorf("attachment = %v", att)
		}
		if got := e.wait("alice", "volumes", id, ""); got["status"] != "reserved" {
			t.Errorf("volume = %v", got["status"])
		}
		// A second instance cannot reserve a volume without multiattach.
		other := `{"attachment": {"volume_uuid": "` + id + `", "instance_uuid": "9a3e1b2c-1111-4222-8333-444455556666"}}`
		e.do("alice", "POST", v3+"/attachments", "3.27", other).Expect(t, 400, "badRequest")
		r = e.do("alice", "PUT", v3+"/attachments/"+aid, "3.27", `{"attachment": {"connector": {"host": "compute", "mountpoint": "/dev/vdb"}}}`).Expect(t, 200, "")
		info := obj(t, obj(t, r.Body, "attachment"), "connection_info")
		data := obj(t, info, "data")
		if info["driver_volume_type"] != "local" || data["format"] != "raw" {
			t.Errorf("connection_info = %v", info)
		}
		if _, err := os.Stat(data["device_path"].(string)); err != nil {
			t.Errorf("device_path: %v", err)
		}
		e.do("alice", "POST", v3+"/attachments/"+aid+"/action", "3.43", `{"os-complete": null}`).Expect(t, 404, "itemNotFound")
		e.do("alice", "POST", v3+"/attachments/"+aid+"/action", "3.44", `{"os-complete": null}`).Expect(t, 204, "")
		got := e.wait("alice", "volumes", id, "")
		if got["status"] != "in-use" || len(got["attachments"].([]any)) != 1 {
			t.Fatalf("attached volume = %v", got)
		}
		// An attached volume refuses delete, extend and plain snapshots.
		e.do("alice", "DELETE", v3+"/volumes/"+id, "", "").Expect(t, 400, "badRequest")
		e.do("alice", "POST", v3+"/volumes/"+id+"/action", "", `{"os-extend": {"new_size": 2}}`).Expect(t, 400, "badRequest")
		e.do("alice", "POST", v3+"/snapshots", "", `{"snapshot": {"volume_id": "`+id+`"}}`).Expect(t, 400, "badRequest")
		r = e.do("alice", "POST", v3+"/snapshots", "", `{"snapshot": {"volume_id": "`+id+`", "force": true}}`).Expect(t, 202, "")
		e.wait("alice", "snapshots", obj(t, r.Body, "snapshot")["id"].(string), "creating")

		// The batch lookup of server lists finds it (and nothing for
		// another instance).
		byInst, err := e.svc.InstancesAttachments(t.Context(), []string{inst, "9a3e1b2c-1111-4222-8333-444455556666"})
		if err != nil || len(byInst) != 1 || len(byInst[inst]) != 1 || byInst[inst][0].VolumeID != id {
			t.Errorf("InstancesAttachments = %v, %v", byInst, err)
		}
		r = e.do("alice", "GET", v3+"/attachments?volume_id="+id, "3.27", "").Expect(t, 200, "")
		if l := list(t, r.Body, "attachments"); len(l) != 1 {
			t.Errorf("attachments = %v", r.Raw)
		}
		e.do("bob", "GET", v3+"/attachments/"+aid, "3.27", "").Expect(t, 404, "itemNotFound")
		e.do("alice", "GET", v3+"/attachments/"+aid, "3.27", "").Expect(t, 200, "")
		e.do("alice", "DELETE", v3+"/attachments/"+aid, "3.27", "").Expect(t, 200, "")
		if got := e.wait("alice", "volumes", id, ""); got["status"] != "available" || len(got["attachments"].([]any)) != 0 {
			t.Errorf("detached volume = %v", got)
		}

		// Multiattach types allow two.
		e.do("admin", "POST", v3+"/types", "", `{"volume_type": {"name": "multi", "extra_specs": {"multiattach": "<is> True"}}}`).Expect(t, 200, "")
		m := e.createVolume("alice", `{"volume": {"size": 1, "volume_type": "multi"}}`)
		if m["multiattach"] != true {
			t.Fatalf("multiattach volume = %v", m)
		}
		for _, in := range []string{inst, "9a3e1b2c-1111-4222-8333-444455556666"} {
			b := `{"attachment": {"volume_uuid": "` + m["id"].(string) + `", "instance_uuid": "` + in + `", "connector": {"host": "h"}}}`
			r := e.do("alice", "POST", v3+"/attachments", "3.44", b).Expect(t, 200, "")
			e.do("alice", "POST", v3+"/attachments/"+obj(t, r.Body, "attachment")["id"].(string)+"/action", "3.44", `{"os-complete": null}`).Expect(t, 204, "")
		}
		if got := e.wait("alice", "volumes", m["id"].(string), ""); len(got["attachments"].([]any)) != 2 {
			t.Errorf("multiattach = %v", got["attachments"])
		}
	})
}

func TestVolumeFromImageAndUpload(t *testing.T) {
	e := newEnv(t, nil, nil)
	data := bytes.Repeat([]byte("kumo"), 256<<10) // 1 MiB raw image
	const img = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	e.images.add(img, "raw", data)
	v := e.createVolume("alice", `{"volume": {"size": 1, "imageRef": "`+img+`"}}`)
	if v["status"] != "available" || v["bootable"] != "true" || obj(t, v, "volume_image_metadata")["image_id"] != img {
		t.Fatalf("volume from image = %v", v)
	}
	b, err := readHead(filepath.Join(e.dir, "volume-"+v["id"].(string)+".raw"), int64(len(data)))
	if err != nil || !bytes.Equal(b[:len(data)], data) {
		t.Fatalf("volume does not hold the image: %v", err)
	}
	r := e.do("alice", "POST", v3+"/volumes/"+v["id"].(string)+"/action", "", `{"os-volume_upload_image": {"image_name": "back", "disk_format": "qcow2"}}`).Expect(t, 202, "")
	up := obj(t, r.Body, "os-volume_upload_image")
	newImg := up["image_id"].(string)
	if up["status"] != "uploading" {
		t.Errorf("upload = %v", up)
	}
	if got := e.wait("alice", "volumes", v["id"].(string), "uploading"); got["status"] != "available" {
		t.Errorf("after upload = %v", got)
	}
	info, err := e.images.Get(context.Background(), newImg)
	if err != nil || info.Status != "active" || info.DiskFormat != "qcow2" || info.Size == 0 || info.Size > 8<<20 {
		t.Errorf("uploaded image = %+v, %v", info, err)
	}
	e.do("alice", "POST", v3+"/volumes/"+v["id"].(string)+"/action", "", `{"os-volume_upload_image": {"image_name": "x", "disk_format": "vhd"}}`).Expect(t, 400, "badRequest")
	e.do("alice", "POST", v3+"/volumes", "", `{"volume": {"size": 1, "imageRef": "`+img+`x"}}`).Expect(t, 400, "badRequest")
}

// readHead reads the first n bytes of a (large, sparse) file.
func readHead(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = io.ReadFull(f, b)
	return b, err
}
