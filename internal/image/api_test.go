package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/auth/authtest"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/service"
)

type testAPI struct {
	t   testing.TB
	srv *httptest.Server
	svc *Service
	dir string
}

const publicURL = "http://kumo.test:5000"

func newTestAPI(t testing.TB, cfg Config) *testAPI {
	t.Helper()
	return newTestAPIOn(t, dbtest.OpenSQLite(t, Migrations()), cfg)
}

// newTestAPIOn serves the image API on d behind the process middleware.
func newTestAPIOn(t testing.TB, d *db.DB, cfg Config) *testAPI {
	t.Helper()
	v := authtest.New()
	v.Add("admin", "u-admin", "p-admin", "admin", "member", "reader")
	v.Add("alice", "u-alice", "p-alice", "member", "reader")
	v.Add("bob", "u-bob", "p-bob", "member", "reader")
	v.Add("carol", "u-carol", "p-carol", "member", "reader")
	v.Add("aliceread", "u-alice2", "p-alice", "reader")
	dir := t.TempDir()
	svc, err := New(service.Deps{DB: d, Auth: v, DataDir: dir, PublicURL: publicURL}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	mux := http.NewServeMux()
	svc.Routes().Register(mux)
	// The process's middleware, as in kumo serve: it wraps the
	// ResponseWriter, which must not cost the download its sendfile path.
	srv := httptest.NewServer(apiutil.Middleware(mux, publicURL, nil, nil))
	t.Cleanup(srv.Close)
	return &testAPI{t: t, srv: srv, svc: svc, dir: dir}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

// do sends a request; body may be a string, []byte, io.Reader or a value
// to encode as JSON. headers are key, value pairs.
func (a *testAPI) do(token, method, path string, body any, headers ...string) resp {
	a.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/octet-stream"
	case io.Reader:
		rd, ct = b, "application/octet-stream"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (a *testAPI) mustStatus(r resp, want int) resp {
	a.t.Helper()
	if r.status != want {
		a.t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

func (a *testAPI) create(token string, body map[string]any) string {
	a.t.Helper()
	r := a.mustStatus(a.do(token, "POST", "/image/v2/images", body), 201)
	return r.json(a.t)["id"].(string)
}

func (a *testAPI) get(token, id string) map[string]any {
	a.t.Helper()
	return a.mustStatus(a.do(token, "GET", "/image/v2/images/"+id, nil), 200).json(a.t)
}

func patch(ops string) (string, string, string) {
	return ops, "Content-Type", patchMediaV21
}

func (a *testAPI) patch(token, id, ops string) resp {
	a.t.Helper()
	return a.do(token, "PATCH", "/image/v2/images/"+id, ops, "Content-Type", patchMediaV21)
}

// storeFiles lists every file under the store (committed, staged, temporary).
func (a *testAPI) storeFiles() []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(a.dir, "images"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, a.dir))
		}
		return nil
	})
	return out
}

func qcow2Image(virtual uint64) []byte {
	b := make([]byte, 1<<16)
	copy(b, "QFI\xfb\x00\x00\x00\x03")
	b[23] = 16 // cluster bits
	for i := 0; i < 8; i++ {
		b[24+i] = byte(virtual >> (56 - 8*i))
	}
	b[103] = 104 // header length
	b[99] = 4
	return b
}

func TestVersions(t *testing.T) {
	a := newTestAPI(t, Config{})
	for _, p := range []string{"/image", "/image/"} {
		r := a.mustStatus(a.do("", "GET", p, nil), 300)
		vs := r.json(t)["versions"].([]any)
		first := vs[0].(map[string]any)
		if first["status"] != "CURRENT" || first["links"].([]any)[0].(map[string]any)["href"] != publicURL+"/image/v2/" {
			t.Fatalf("versions %s", r.body)
		}
		// What Kumo implements (versions.go): 2.12 (image tasks) is
		// CURRENT; 2.10 (delete from one store) and 2.11 are not claimed.
		var ids []string
		for i, v := range vs {
			m := v.(map[string]any)
			if want := map[bool]string{true: "CURRENT", false: "SUPPORTED"}[i == 0]; m["status"] != want {
				t.Fatalf("%v: status %v, want %s", m["id"], m["status"], want)
			}
			ids = append(ids, m["id"].(string))
		}
		if got := strings.Join(ids, " "); got != "v2.12 v2.9 v2.8 v2.7 v2.6 v2.5 v2.4 v2.3 v2.2 v2.1 v2.0" {
			t.Fatalf("versions %s", got)
		}
	}
	a.mustStatus(a.do("", "GET", "/image/v2/images", nil), 401)
	a.mustStatus(a.do("alice", "GET", "/image/v3/nothing", nil), 404)
	a.mustStatus(a.do("alice", "POST", "/image/v2/schemas/image", "{}"), 405)
}

func TestImageLifecycle(t *testing.T) {
	a := newTestAPI(t, Config{})
	r := a.mustStatus(a.do("alice", "POST", "/image/v2/images", map[string]any{
		"name": "cirros", "disk_format": "raw", "container_format": "bare", "tags": []string{"a", "b", "a"},
		"min_ram": 64, "os_distro": "cirros",
	}), 201)
	img := r.json(t)
	id := img["id"].(string)
	if r.header.Get("Location") != publicURL+"/image/v2/images/"+id || r.header.Get("OpenStack-image-import-methods") != "glance-direct,web-download" {
		t.Fatalf("headers %v", r.header)
	}
	for k, want := range map[string]any{"status": "queued", "visibility": "shared", "owner": "p-alice", "size": nil,
		"checksum": nil, "os_hash_algo": nil, "virtual_size": nil, "min_ram": 64.0, "min_disk": 0.0, "protected": false,
		"os_hidden": false, "os_distro": "cirros", "self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file",
		"schema": "/v2/schemas/image"} {
		if img[k] != want {
			t.Errorf("%s = %#v, want %#v", k, img[k], want)
		}
	}
	if tags := img["tags"].([]any); len(tags) != 2 {
		t.Errorf("tags %v", tags)
	}
	if _, err := time.Parse(time.RFC3339, img["created_at"].(string)); err != nil {
		t.Errorf("created_at %v", img["created_at"])
	}

	// Download before upload: no content.
	a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil), 204)

	data := bytes.Repeat([]byte("kumo"), 300000)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", data), 204)
	img = a.get("alice", id)
	sum := md5.Sum(data)
	sha := sha512.Sum512(data)
	if img["status"] != "active" || img["size"] != float64(len(data)) || img["virtual_size"] != float64(len(data)) ||
		img["checksum"] != hex.EncodeToString(sum[:]) || img["os_hash_algo"] != "sha512" ||
		img["os_hash_value"] != hex.EncodeToString(sha[:]) {
		t.Fatalf("after upload %v", img)
	}
	// A second upload conflicts.
	r = a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", []byte("x")), 409)
	if !strings.Contains(string(r.body), "active to saving is not allowed") {
		t.Fatalf("body %s", r.body)
	}
	r = a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil), 200)
	if !bytes.Equal(r.body, data) || r.header.Get("Content-MD5") != hex.EncodeToString(sum[:]) ||
		r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download mismatch: %d bytes, headers %v", len(r.body), r.header)
	}
	r = a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil, "Range", "bytes=4-7"), 206)
	if string(r.body) != "kumo" || r.header.Get("Content-Range") != "bytes 4-7/1200000" {
		t.Fatalf("range: %q %v", r.body, r.header)
	}
	a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil, "Range", "bytes=9999999-"), 416)

	// Deactivate (admin only), download forbidden for users, reactivate.
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/actions/deactivate", nil), 403)
	a.mustStatus(a.do("admin", "POST", "/image/v2/images/"+id+"/actions/deactivate", nil), 204)
	a.mustStatus(a.do("admin", "POST", "/image/v2/images/"+id+"/actions/deactivate", nil), 204)
	if a.get("alice", id)["status"] != "deactivated" {
		t.Fatal("not deactivated")
	}
	a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil), 403)
	a.mustStatus(a.do("admin", "GET", "/image/v2/images/"+id+"/file", nil), 200)
	a.mustStatus(a.do("admin", "POST", "/image/v2/images/"+id+"/actions/reactivate", nil), 204)
	if a.get("alice", id)["status"] != "active" {
		t.Fatal("not reactivated")
	}

	// Tags.
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/tags/new", nil), 204)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/tags/new", nil), 204)
	a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+id+"/tags/a", nil), 204)
	a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+id+"/tags/a", nil), 404)
	if tags := a.get("alice", id)["tags"].([]any); len(tags) != 2 || tags[0] != "b" || tags[1] != "new" {
		t.Fatalf("tags %v", tags)
	}

	// Protected images cannot be deleted.
	a.mustStatus(a.patch("alice", id, `[{"op":"replace","path":"/protected","value":true}]`), 200)
	r = a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+id, nil), 403)
	if !strings.Contains(string(r.body), "is protected") {
		t.Fatalf("body %s", r.body)
	}
	a.mustStatus(a.patch("alice", id, `[{"op":"replace","path":"/protected","value":false}]`), 200)
	a.mustStatus(a.do("bob", "DELETE", "/image/v2/images/"+id, nil), 404)
	a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+id, nil), 204)
	a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id, nil), 404)
	if f := a.storeFiles(); len(f) != 0 {
		t.Fatalf("files left: %v", f)
	}
}

// TestDownloadRanges checks the bytes of full and partial downloads,
// which leave through sendfile from the file's offset, on data where a
// shifted offset cannot go unnoticed.
func TestDownloadRanges(t *testing.T) {
	a := newTestAPI(t, Config{})
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", data), 204)
	size := len(data)
	tests := []struct {
		rng    string
		status int
		off, n int
	}{
		{"", 200, 0, size},
		{"bytes=1001-2100000", 206, 1001, 2099000},
		{"bytes=3000000-", 206, 3000000, size - 3000000},
		{"bytes=-70000", 206, size - 70000, 70000},
		{"bytes=777-777", 206, 777, 1},
	}
	for _, tc := range tests {
		t.Run(tc.rng, func(t *testing.T) {
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			r := a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil, hdr...), tc.status)
			if !bytes.Equal(r.body, data[tc.off:tc.off+tc.n]) {
				t.Fatalf("got %d bytes, want %d from offset %d", len(r.body), tc.n, tc.off)
			}
			if cl := r.header.Get("Content-Length"); cl != fmt.Sprint(tc.n) {
				t.Fatalf("Content-Length %s, want %d", cl, tc.n)
			}
			if tc.status == 206 && r.header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", tc.off, tc.off+tc.n-1, size) {
				t.Fatalf("Content-Range %s", r.header.Get("Content-Range"))
			}
		})
	}
}

func TestFaultFormats(t *testing.T) {
	a := newTestAPI(t, Config{})
	const missing = "/image/v2/images/0d8e1bbd-7a8c-4f36-8b8a-2b3c0b0a0c55"
	r := a.mustStatus(a.do("alice", "GET", missing, nil), 404)
	m := r.json(t)
	if m["code"] != "404 Not Found" || m["title"] != "Not Found" ||
		m["message"] != "No image found with ID 0d8e1bbd-7a8c-4f36-8b8a-2b3c0b0a0c55<br /><br />\n\n\n" {
		t.Fatalf("json fault %s", r.body)
	}
	r = a.mustStatus(a.do("alice", "GET", missing, nil, "Accept", "*/*"), 404)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<h1>404 Not Found</h1>") {
		t.Fatalf("html fault %v %s", r.header, r.body)
	}
	r = a.mustStatus(a.do("alice", "GET", missing, nil, "Accept", "text/plain"), 404)
	if string(r.body) != "404 Not Found\n\nNo image found with ID 0d8e1bbd-7a8c-4f36-8b8a-2b3c0b0a0c55\n\n   " {
		t.Fatalf("plain fault %q", r.body)
	}
}

func TestCreateBadInput(t *testing.T) {
	a := newTestAPI(t, Config{MaxTags: 3})
	existing := a.create("alice", map[string]any{"name": "x"})
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		msg    string
	}{
		{"malformed json", "alice", `{"name": `, 400, "Malformed JSON"},
		{"not an object", "alice", `["a"]`, 400, "Malformed JSON"},
		{"empty body", "alice", ``, 400, "Body expected"},
		{"bad id", "alice", map[string]any{"id": "not-a-uuid"}, 400, "valid image id"},
		{"duplicate id", "alice", map[string]any{"id": existing}, 409, "already exists"},
		{"read-only status", "alice", map[string]any{"status": "active"}, 403, "Attribute 'status' is read-only."},
		{"read-only checksum", "alice", map[string]any{"checksum": "x"}, 403, "read-only"},
		{"read-only size", "alice", map[string]any{"size": 4}, 403, "read-only"},
		{"read-only self", "alice", map[string]any{"self": "x"}, 403, "read-only"},
		{"reserved os_glance", "alice", map[string]any{"os_glance_import_task": "x"}, 403, "Attribute 'os_glance_import_task' is reserved."},
		{"reserved deleted", "alice", map[string]any{"deleted": "x"}, 403, "reserved"},
		{"bad disk format", "alice", map[string]any{"disk_format": "floppy"}, 400, "'floppy' is not one of"},
		{"bad container format", "alice", map[string]any{"container_format": "zip"}, 400, "is not one of"},
		{"bad visibility", "alice", map[string]any{"visibility": "everyone"}, 400, "is not one of"},
		{"negative min_ram", "alice", map[string]any{"min_ram": -1}, 400, "less than the minimum"},
		{"fractional min_disk", "alice", map[string]any{"min_disk": 1.5}, 400, "integer"},
		{"string min_disk", "alice", map[string]any{"min_disk": "1"}, 400, "integer"},
		{"protected not bool", "alice", map[string]any{"protected": "yes"}, 400, "boolean"},
		{"name too long", "alice", map[string]any{"name": strings.Repeat("n", 256)}, 400, "too long"},
		{"property not string", "alice", map[string]any{"hw_disk_bus": 3}, 400, "not of type 'string'"},
		{"tags not array", "alice", map[string]any{"tags": "a"}, 400, "array"},
		{"too many tags", "alice", map[string]any{"tags": []string{"a", "b", "c", "d"}}, 413, "Maximum number of tags"},
		{"publicize as member", "alice", map[string]any{"visibility": "public"}, 403, "publicize_image"},
		{"other owner", "alice", map[string]any{"owner": "p-bob"}, 403, "not permitted to create images owned by"},
		{"reader cannot create", "aliceread", map[string]any{"name": "r"}, 403, "add_image"},
		{"locations", "alice", map[string]any{"locations": []any{}}, 403, "locations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(tc.token, "POST", "/image/v2/images", tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.msg) {
				t.Fatalf("got %d %s, want %d containing %q", r.status, r.body, tc.status, tc.msg)
			}
		})
	}
	// Admin may publicize and create for others.
	r := a.mustStatus(a.do("admin", "POST", "/image/v2/images", map[string]any{"visibility": "public", "owner": "p-bob"}), 201)
	if m := r.json(t); m["visibility"] != "public" || m["owner"] != "p-bob" {
		t.Fatalf("admin create %s", r.body)
	}
}

func TestPatch(t *testing.T) {
	a := newTestAPI(t, Config{})
	id := a.create("alice", map[string]any{"name": "p", "os_distro": "ubuntu"})
	r := a.mustStatus(a.patch("alice", id, `[
		{"op":"replace","path":"/name","value":"renamed"},
		{"op":"add","path":"/hw_qemu_guest_agent","value":"yes"},
		{"op":"add","path":"/os_distro","value":"debian"},
		{"op":"remove","path":"/os_distro"},
		{"op":"add","path":"/a~1b","value":"slash"},
		{"op":"replace","path":"/tags","value":["x","y"]},
		{"op":"replace","path":"/disk_format","value":"qcow2"},
		{"op":"replace","path":"/min_disk","value":10},
		{"op":"replace","path":"/visibility","value":"community"}
	]`), 200)
	m := r.json(t)
	if m["name"] != "renamed" || m["hw_qemu_guest_agent"] != "yes" || m["os_distro"] != nil || m["a/b"] != "slash" ||
		m["disk_format"] != "qcow2" || m["min_disk"] != 10.0 || m["visibility"] != "community" || len(m["tags"].([]any)) != 2 {
		t.Fatalf("patched %s", r.body)
	}
	tests := []struct {
		name, token, ops string
		ct               string
		status           int
		msg              string
	}{
		{"wrong media type", "alice", `[]`, "application/json", 415, "Unsupported Content-Type"},
		{"malformed", "alice", `[{`, "", 400, "Malformed JSON"},
		{"not array", "alice", `{"op":"add"}`, "", 400, "JSON array"},
		{"bad op", "alice", `[{"op":"move","path":"/name","value":"x"}]`, "", 400, "Invalid operation"},
		{"missing op", "alice", `[{"path":"/name","value":"x"}]`, "", 400, "'op'"},
		{"missing path", "alice", `[{"op":"add","value":"x"}]`, "", 400, "'path'"},
		{"missing value", "alice", `[{"op":"add","path":"/name"}]`, "", 400, "'value'"},
		{"nested path", "alice", `[{"op":"add","path":"/foo/bar","value":"x"}]`, "", 400, "Invalid JSON pointer"},
		{"no slash", "alice", `[{"op":"add","path":"name","value":"x"}]`, "", 400, "Invalid JSON pointer"},
		{"bad escape", "alice", `[{"op":"add","path":"/a~2","value":"x"}]`, "", 400, "Invalid JSON pointer"},
		{"read-only status", "alice", `[{"op":"replace","path":"/status","value":"active"}]`, "", 403, "Attribute 'status' is read-only."},
		{"read-only id", "alice", `[{"op":"replace","path":"/id","value":"x"}]`, "", 403, "read-only"},
		{"read-only checksum remove", "alice", `[{"op":"remove","path":"/checksum"}]`, "", 403, "read-only"},
		{"reserved", "alice", `[{"op":"add","path":"/os_glance_x","value":"x"}]`, "", 403, "reserved"},
		{"remove base", "alice", `[{"op":"remove","path":"/name"}]`, "", 403, "may not be removed"},
		{"remove missing property", "alice", `[{"op":"remove","path":"/nope"}]`, "", 409, "Property nope does not exist."},
		{"replace missing property", "alice", `[{"op":"replace","path":"/nope","value":"x"}]`, "", 409, "does not exist"},
		{"bad value type", "alice", `[{"op":"replace","path":"/min_ram","value":"big"}]`, "", 400, "integer"},
		{"property not string", "alice", `[{"op":"add","path":"/x","value":1}]`, "", 400, "string"},
		{"publicize", "alice", `[{"op":"replace","path":"/visibility","value":"public"}]`, "", 403, "publicize_image"},
		{"change owner", "alice", `[{"op":"replace","path":"/owner","value":"p-bob"}]`, "", 403, "Owner can't be updated"},
		{"other project", "bob", `[{"op":"replace","path":"/name","value":"x"}]`, "", 403, "modify_image"},
		{"reader", "aliceread", `[{"op":"replace","path":"/name","value":"x"}]`, "", 403, "modify_image"},
		{"draft4 add existing", "alice", `[{"add":"/hw_qemu_guest_agent","value":"no"}]`, patchMediaV20, 409, "already present"},
		{"draft4 two ops", "alice", `[{"add":"/a","remove":"/b","value":"no"}]`, patchMediaV20, 400, "exactly one member"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" {
				ct = patchMediaV21
			}
			r := a.do(tc.token, "PATCH", "/image/v2/images/"+id, tc.ops, "Content-Type", ct)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.msg) {
				t.Fatalf("got %d %s, want %d containing %q", r.status, r.body, tc.status, tc.msg)
			}
		})
	}
	// A failed patch changes nothing (atomic).
	a.mustStatus(a.patch("alice", id, `[{"op":"replace","path":"/name","value":"half"},{"op":"remove","path":"/nope"}]`), 409)
	if a.get("alice", id)["name"] != "renamed" {
		t.Fatal("failed patch was partly applied")
	}
	// draft 4 media type works.
	a.mustStatus(a.do("alice", "PATCH", "/image/v2/images/"+id, `[{"replace":"/name","value":"d4"}]`, "Content-Type", patchMediaV20), 200)
	// Formats are frozen once the image has data.
	id2 := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id2+"/file", []byte("data")), 204)
	r = a.mustStatus(a.patch("alice", id2, `[{"op":"replace","path":"/disk_format","value":"qcow2"}]`), 403)
	if !strings.Contains(string(r.body), "can be only replaced for a queued image") {
		t.Fatalf("body %s", r.body)
	}
}

func TestUploadBadInput(t *testing.T) {
	a := newTestAPI(t, Config{ProjectQuotaBytes: 1 << 20})
	newImg := func(df string) string {
		return a.create("alice", map[string]any{"disk_format": df, "container_format": "bare"})
	}
	bigBody := bytes.Repeat([]byte{1}, 1<<20+1)
	backing := qcow2Image(1 << 30)
	backing[15], backing[19] = 0x80, 5 // backing file offset and size
	dataFile := qcow2Image(1 << 30)
	dataFile[79] = 4 // incompatible feature: external data file
	tests := []struct {
		name    string
		token   string
		id      func() string
		body    io.Reader
		headers []string
		status  int
		msg     string
	}{
		{"bad uuid", "alice", func() string { return "xyz" }, bytes.NewReader([]byte("x")), nil, 404, "No image found"},
		{"unknown image", "alice", func() string { return newUUID() }, bytes.NewReader([]byte("x")), nil, 404, "No image found"},
		{"other project", "bob", func() string { return newImg("raw") }, bytes.NewReader([]byte("x")), nil, 404, "No image found"},
		{"reader", "aliceread", func() string { return newImg("raw") }, bytes.NewReader([]byte("x")), nil, 403, "upload_image"},
		{"wrong content type", "alice", func() string { return newImg("raw") }, bytes.NewReader([]byte("x")), []string{"Content-Type", "text/plain"}, 415, "Invalid content type"},
		{"no formats", "alice", func() string { return a.create("alice", map[string]any{"name": "n"}) }, bytes.NewReader([]byte("x")), nil, 400, "must be set prior to saving data"},
		{"over quota by length", "alice", func() string { return newImg("raw") }, bytes.NewReader(bigBody), nil, 413, "exceeds the quota"},
		{"over quota chunked", "alice", func() string { return newImg("raw") }, io.MultiReader(bytes.NewReader(bigBody)), nil, 413, "exceeds the quota"},
		{"raw declared qcow2", "alice", func() string { return newImg("qcow2") }, bytes.NewReader([]byte("plain bytes")), nil, 400, "Image format verification failed"},
		{"qcow2 declared raw", "alice", func() string { return newImg("raw") }, bytes.NewReader(qcow2Image(1 << 30)), nil, 400, "not the declared raw"},
		{"qcow2 backing file", "alice", func() string { return newImg("qcow2") }, bytes.NewReader(backing), nil, 400, "backing file"},
		{"qcow2 data file", "alice", func() string { return newImg("qcow2") }, bytes.NewReader(dataFile), nil, 400, "external data file"},
		{"iso declared vhd", "alice", func() string { return newImg("vhd") }, bytes.NewReader(make([]byte, 4096)), nil, 400, "not the declared vhd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id()
			r := a.do(tc.token, "PUT", "/image/v2/images/"+id+"/file", tc.body, tc.headers...)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.msg) {
				t.Fatalf("got %d %s, want %d containing %q", r.status, r.body, tc.status, tc.msg)
			}
			if isUUID(id) {
				if img, err := a.svc.store.GetImage(t.Context(), id); err == nil && img.Status != StatusQueued {
					t.Fatalf("image left in %s", img.Status)
				}
			}
			if f := a.storeFiles(); len(f) != 0 {
				t.Fatalf("files left: %v", f)
			}
		})
	}
	// A good qcow2 upload reads the virtual size from the header.
	id := newImg("qcow2")
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", qcow2Image(5<<30)), 204)
	if m := a.get("alice", id); m["virtual_size"] != float64(5<<30) || m["size"] != float64(1<<16) {
		t.Fatalf("qcow2 sizes %v %v", m["virtual_size"], m["size"])
	}
	// Quota counts the stored image: a second image that would exceed it is refused.
	id2 := newImg("raw")
	r := a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id2+"/file", bytes.NewReader(bytes.Repeat([]byte{1}, 1<<20-1<<16+1))), 413)
	if !strings.Contains(string(r.body), "bytes remaining") {
		t.Fatalf("body %s", r.body)
	}
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id2+"/file", bytes.NewReader(bytes.Repeat([]byte{1}, 1<<20-1<<16))), 204)
	// Other projects have their own quota.
	idb := a.create("bob", map[string]any{"disk_format": "raw", "container_format": "bare"})
	a.mustStatus(a.do("bob", "PUT", "/image/v2/images/"+idb+"/file", bytes.NewReader(make([]byte, 1000))), 204)
}

// truncatedBody claims more bytes than it sends, then fails like a dropped
// connection.
type truncatedBody struct{ n int }

func (b *truncatedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), b.n)
	b.n -= n
	return n, nil
}

func TestTruncatedUpload(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(ioName(direct), func(t *testing.T) { testTruncatedUpload(t, direct) })
	}
}

func testTruncatedUpload(t *testing.T, direct bool) {
	a := newTestAPI(t, Config{DirectIO: direct})
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	// Through the service directly: the body fails mid-way.
	ctx := authCtx(t, a, "alice")
	err := a.svc.Upload(ctx, id, &truncatedBody{n: 3 << 20}, 10<<20)
	if err == nil || !strings.Contains(err.Error(), "Client disconnected") {
		t.Fatalf("err %v", err)
	}
	if m := a.get("alice", id); m["status"] != "queued" || m["size"] != nil {
		t.Fatalf("after truncated upload %v", m)
	}
	if f := a.storeFiles(); len(f) != 0 {
		t.Fatalf("files left: %v", f)
	}
	// Over HTTP: a Content-Length longer than the body, connection closed.
	req, _ := http.NewRequest("PUT", a.srv.URL+"/image/v2/images/"+id+"/file", io.LimitReader(&truncatedBody{n: 1 << 20}, 1<<20))
	req.ContentLength = 2 << 20
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", "alice")
	if res, err := a.srv.Client().Do(req); err == nil {
		res.Body.Close()
	}
	// The server notices the truncation asynchronously; once it has put
	// the image back to queued a retry succeeds.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := a.do("alice", "PUT", "/image/v2/images/"+id+"/file", []byte("ok"))
		if r.status == 204 {
			break
		}
		if r.status != 409 || time.Now().After(deadline) {
			t.Fatalf("retry: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := a.get("alice", id); m["status"] != "active" || m["size"] != 2.0 {
		t.Fatalf("after retry %v", m)
	}
	if f := a.storeFiles(); len(f) != 1 || f[0] != "/images/images/"+id {
		t.Fatalf("files: %v", f)
	}
}

func TestRecover(t *testing.T) {
	a := newTestAPI(t, Config{})
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	if _, err := a.svc.transition(t.Context(), id, []string{StatusQueued}, StatusSaving, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(a.dir, "images", "tmp", "upload-123"), []byte("partial"), 0o600)
	if err := a.svc.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a.get("alice", id)["status"] != "queued" || len(a.storeFiles()) != 0 {
		t.Fatalf("not recovered: %v", a.storeFiles())
	}
}

func TestImport(t *testing.T) {
	a := newTestAPI(t, Config{})
	r := a.mustStatus(a.do("alice", "GET", "/image/v2/info/import", nil), 200)
	if !strings.Contains(string(r.body), `"value":["glance-direct","web-download"]`) {
		t.Fatalf("info %s", r.body)
	}
	r = a.mustStatus(a.do("alice", "GET", "/image/v2/info/stores", nil), 200)
	if !strings.Contains(string(r.body), `"default":true`) {
		t.Fatalf("stores %s", r.body)
	}
	id := a.create("alice", map[string]any{"name": "imp"})
	imp := map[string]any{"method": map[string]any{"name": "glance-direct"}}
	r = a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", imp), 409)
	if !strings.Contains(string(r.body), "needs to be staged") {
		t.Fatalf("body %s", r.body)
	}
	data := qcow2Image(1 << 30)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/stage", data), 204)
	if a.get("alice", id)["status"] != "uploading" {
		t.Fatal("not uploading")
	}
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/stage", data), 409)
	r = a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", imp), 409)
	if !strings.Contains(string(r.body), "'disk_format' needs to be set before import") {
		t.Fatalf("body %s", r.body)
	}
	a.mustStatus(a.patch("alice", id, `[{"op":"add","path":"/disk_format","value":"qcow2"},{"op":"add","path":"/container_format","value":"bare"}]`), 200)
	for _, bad := range []struct {
		body   any
		status int
	}{
		{`{}`, 400},
		{`{"method": {"name": "web-download", "uri": "http://x"}}`, 409}, // not queued
		{`{"method": {"name": "copy-image"}}`, 400},
		{`{"method": {"name": "glance-direct"}, "stores": ["ceph"]}`, 409},
		{`{"method": `, 400},
	} {
		a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", bad.body), bad.status)
	}
	a.mustStatus(a.do("bob", "POST", "/image/v2/images/"+id+"/import", imp), 404)
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", imp), 202)
	a.svc.WaitTasks()
	m := a.get("alice", id)
	sum := md5.Sum(data)
	if m["status"] != "active" || m["checksum"] != hex.EncodeToString(sum[:]) || m["virtual_size"] != float64(1<<30) {
		t.Fatalf("imported %v", m)
	}
	r = a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil), 200)
	if !bytes.Equal(r.body, data) {
		t.Fatal("imported data differs")
	}

	// An import of unsafe data fails and returns the image to queued.
	id = a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/stage", qcow2Image(1<<20)), 204)
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", imp), 202)
	a.svc.WaitTasks()
	if a.get("alice", id)["status"] != "queued" {
		t.Fatal("failed import not queued")
	}
	for _, f := range a.storeFiles() {
		if strings.Contains(f, id) {
			t.Fatalf("file left: %s", f)
		}
	}
}

func TestSharingAndVisibility(t *testing.T) {
	a := newTestAPI(t, Config{})
	shared := a.create("alice", map[string]any{"name": "shared"})
	private := a.create("alice", map[string]any{"name": "private", "visibility": "private"})
	community := a.create("alice", map[string]any{"name": "community", "visibility": "community"})
	public := a.create("admin", map[string]any{"name": "public", "visibility": "public"})
	hidden := a.create("alice", map[string]any{"name": "hidden", "os_hidden": true})

	names := func(token, query string) string {
		r := a.mustStatus(a.do(token, "GET", "/image/v2/images"+query, nil), 200)
		var out []string
		for _, i := range r.json(t)["images"].([]any) {
			out = append(out, i.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	sorted := "?sort=name:asc"
	if got := names("alice", sorted); got != "community,private,public,shared" {
		t.Fatalf("alice sees %s", got)
	}
	if got := names("bob", sorted); got != "public" {
		t.Fatalf("bob sees %s", got)
	}
	if got := names("bob", sorted+"&visibility=community"); got != "community" {
		t.Fatalf("bob community %s", got)
	}
	if got := names("alice", sorted+"&os_hidden=true"); got != "hidden" {
		t.Fatalf("hidden %s", got)
	}
	a.get("bob", community)
	a.get("bob", public)
	a.mustStatus(a.do("bob", "GET", "/image/v2/images/"+private, nil), 404)
	a.mustStatus(a.do("bob", "GET", "/image/v2/images/"+shared, nil), 404)
	_ = hidden

	// Members.
	base := "/image/v2/images/" + shared + "/members"
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+private+"/members", map[string]any{"member": "p-bob"}), 403)
	a.mustStatus(a.do("alice", "POST", base, map[string]any{}), 400)
	a.mustStatus(a.do("alice", "POST", base, `{"member": `), 400)
	r := a.mustStatus(a.do("alice", "POST", base, map[string]any{"member": "p-bob"}), 200)
	if m := r.json(t); m["status"] != "pending" || m["member_id"] != "p-bob" || m["image_id"] != shared || m["schema"] != "/v2/schemas/member" {
		t.Fatalf("member %s", r.body)
	}
	a.mustStatus(a.do("alice", "POST", base, map[string]any{"member": "p-bob"}), 409)
	a.mustStatus(a.do("alice", "POST", base, map[string]any{"member": "p-carol"}), 200)
	a.mustStatus(a.do("bob", "POST", base, map[string]any{"member": "p-x"}), 403)

	// Bob sees it by id but not in his default list until he accepts.
	a.get("bob", shared)
	if got := names("bob", sorted); got != "public" {
		t.Fatalf("bob pending sees %s", got)
	}
	if got := names("bob", sorted+"&member_status=pending"); got != "public,shared" {
		t.Fatalf("bob pending list %s", got)
	}
	if got := names("bob", sorted+"&member_status=all&visibility=shared"); got != "shared" {
		t.Fatalf("bob all %s", got)
	}
	r = a.mustStatus(a.do("bob", "GET", base, nil), 200)
	if ms := r.json(t)["members"].([]any); len(ms) != 1 {
		t.Fatalf("bob sees members %s", r.body)
	}
	r = a.mustStatus(a.do("alice", "GET", base, nil), 200)
	if m := r.json(t); len(m["members"].([]any)) != 2 || m["schema"] != "/v2/schemas/members" {
		t.Fatalf("alice sees members %s", r.body)
	}
	a.mustStatus(a.do("bob", "GET", base+"/p-carol", nil), 404)
	a.mustStatus(a.do("bob", "GET", base+"/p-bob", nil), 200)
	a.mustStatus(a.do("alice", "GET", base+"/p-nobody", nil), 404)
	a.mustStatus(a.do("alice", "PUT", base+"/p-bob", map[string]any{"status": "accepted"}), 403)
	a.mustStatus(a.do("bob", "PUT", base+"/p-bob", map[string]any{"status": "maybe"}), 400)
	a.mustStatus(a.do("bob", "PUT", base+"/p-bob", map[string]any{}), 400)
	a.mustStatus(a.do("bob", "PUT", base+"/p-carol", map[string]any{"status": "accepted"}), 403)
	r = a.mustStatus(a.do("bob", "PUT", base+"/p-bob", map[string]any{"status": "accepted"}), 200)
	if r.json(t)["status"] != "accepted" {
		t.Fatalf("accept %s", r.body)
	}
	if got := names("bob", sorted); got != "public,shared" {
		t.Fatalf("bob accepted sees %s", got)
	}
	a.mustStatus(a.do("bob", "PUT", base+"/p-bob", map[string]any{"status": "rejected"}), 200)
	if got := names("bob", sorted); got != "public" {
		t.Fatalf("bob rejected sees %s", got)
	}
	// A member cannot modify or delete the image or remove members.
	a.mustStatus(a.patch("bob", shared, `[{"op":"replace","path":"/name","value":"x"}]`), 403)
	a.mustStatus(a.do("bob", "DELETE", "/image/v2/images/"+shared, nil), 403)
	a.mustStatus(a.do("bob", "DELETE", base+"/p-carol", nil), 403)
	a.mustStatus(a.do("alice", "DELETE", base+"/p-carol", nil), 204)
	a.mustStatus(a.do("alice", "DELETE", base+"/p-carol", nil), 404)
	a.mustStatus(a.do("carol", "GET", "/image/v2/images/"+shared, nil), 404)
	// Making the image private hides it from members.
	a.mustStatus(a.patch("alice", shared, `[{"op":"replace","path":"/visibility","value":"private"}]`), 200)
	a.mustStatus(a.do("bob", "GET", "/image/v2/images/"+shared, nil), 404)
	a.mustStatus(a.do("alice", "GET", base, nil), 403)
}

func TestListFiltersSortingPagination(t *testing.T) {
	a := newTestAPI(t, Config{})
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := 0
	a.svc.now = func() time.Time { n++; return base.Add(time.Duration(n) * time.Second) }
	var ids []string
	for i, spec := range []map[string]any{
		{"name": "alpha", "disk_format": "raw", "container_format": "bare", "tags": []string{"x"}, "os_distro": "ubuntu"},
		{"name": "beta", "disk_format": "qcow2", "container_format": "bare", "tags": []string{"x", "y"}},
		{"name": "gamma", "disk_format": "raw", "container_format": "ova", "protected": true},
		{"name": "glass, darkly", "disk_format": "iso", "container_format": "bare"},
		{"name": "delta"},
	} {
		id := a.create("alice", spec)
		ids = append(ids, id)
		if i == 0 || i == 2 {
			a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", bytes.Repeat([]byte{1}, 100*(i/2+1))), 204)
		}
	}
	list := func(query string) (string, map[string]any) {
		r := a.mustStatus(a.do("alice", "GET", "/image/v2/images"+query, nil), 200)
		m := r.json(t)
		var out []string
		for _, i := range m["images"].([]any) {
			out = append(out, i.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ","), m
	}
	tests := []struct{ query, want string }{
		{"", "delta,glass, darkly,gamma,beta,alpha"}, // created_at desc
		{"?sort=name:asc", "alpha,beta,delta,gamma,glass, darkly"},
		{"?sort=name", "glass, darkly,gamma,delta,beta,alpha"},
		{"?sort=disk_format:asc,name:desc", "delta,glass, darkly,beta,gamma,alpha"},
		{"?sort_key=disk_format&sort_dir=asc&sort_key=name&sort_dir=desc", "delta,glass, darkly,beta,gamma,alpha"},
		{"?sort_key=name&sort_dir=asc", "alpha,beta,delta,gamma,glass, darkly"},
		{"?name=beta", "beta"},
		{"?name=in:alpha,%22glass,%20darkly%22&sort=name:asc", "alpha,glass, darkly"},
		{"?status=active&sort=name:asc", "alpha,gamma"},
		{"?status=in:queued,active&sort=name:asc", "alpha,beta,delta,gamma,glass, darkly"},
		{"?disk_format=raw&sort=name:asc", "alpha,gamma"},
		{"?container_format=ova", "gamma"},
		{"?tag=x&sort=name:asc", "alpha,beta"},
		{"?tag=x&tag=y", "beta"},
		{"?size_min=150", "gamma"},
		{"?size_max=150", "alpha"},
		{"?protected=true", "gamma"},
		{"?os_distro=ubuntu", "alpha"},
		{"?owner=p-alice&visibility=shared&sort=name:asc", "alpha,beta,delta,gamma,glass, darkly"},
		{"?owner=p-bob", ""},
		{"?created_at=gte:2026-01-02T03:04:13Z&sort=name:asc", "delta,glass, darkly"},
		{"?created_at=lt:2026-01-02T03:04:07Z", "alpha"},
		{"?created_at=eq:2026-01-02T03:04:06Z", "alpha"},
		{"?created_at=neq:2026-01-02T03:04:06Z&sort=name:asc", "beta,delta,gamma,glass, darkly"},
		{"?created_at=gt:2026-01-02T03:04:13Z", "delta"},
		{"?created_at=lte:2026-01-02T03:04:06Z", "alpha"},
		{"?id=" + ids[2], "gamma"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			if got, _ := list(tc.query); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Pagination follows next links and keeps the query.
	got, m := list("?limit=2&sort=name:asc&os_hidden=false")
	pages := []string{got}
	if m["first"] != "/v2/images?limit=2&os_hidden=false&sort=name%3Aasc" || m["schema"] != "/v2/schemas/images" {
		t.Fatalf("first %v", m["first"])
	}
	for m["next"] != nil {
		next := m["next"].(string)
		if !strings.HasPrefix(next, "/v2/images?") || !strings.Contains(next, "sort=name%3Aasc") {
			t.Fatalf("next %s", next)
		}
		got, m = list(strings.TrimPrefix(next, "/v2/images"))
		pages = append(pages, got)
	}
	if strings.Join(pages, "|") != "alpha,beta|delta,gamma|glass, darkly" {
		t.Fatalf("pages %v", pages)
	}
	if _, m := list("?limit=5"); m["next"] != nil {
		t.Fatal("next link on the last page")
	}

	bad := []struct{ query, msg string }{
		{"?limit=x", "limit param must be an integer"},
		{"?limit=-1", "limit param must be positive"},
		{"?marker=" + newUUID(), "Invalid marker"},
		{"?marker=bogus", "Invalid marker"},
		{"?sort_key=owner", "Invalid sort key"},
		{"?sort_dir=up", "Invalid sort direction"},
		{"?sort=name:up", "Invalid sort direction"},
		{"?sort=name&sort_key=name", "cannot be combined"},
		{"?sort_key=name&sort_key=status&sort_dir=asc&sort_dir=desc&sort_dir=asc", "does not match"},
		{"?visibility=everyone", "Invalid visibility value"},
		{"?member_status=maybe", "Invalid status value"},
		{"?status=sleeping", "Invalid status value"},
		{"?size_min=-5", "non-negative integer"},
		{"?size_max=big", "non-negative integer"},
		{"?protected=maybe", "Expected boolean"},
		{"?created_at=gte:yesterday", "invalid time format"},
		{"?created_at=foo:2016-01-01", "unknown operator"},
		{"?name=in:%22open", "quote is not closed"},
	}
	for _, tc := range bad {
		t.Run("bad"+tc.query, func(t *testing.T) {
			r := a.do("alice", "GET", "/image/v2/images"+tc.query, nil)
			if r.status != 400 || !strings.Contains(string(r.body), tc.msg) {
				t.Fatalf("got %d %s, want 400 containing %q", r.status, r.body, tc.msg)
			}
		})
	}
}

func TestSchemas(t *testing.T) {
	a := newTestAPI(t, Config{})
	for _, name := range []string{"image", "images", "member", "members"} {
		r := a.mustStatus(a.do("alice", "GET", "/image/v2/schemas/"+name, nil), 200)
		if r.json(t)["name"] != name {
			t.Fatalf("schema %s: %s", name, r.body)
		}
	}
	r := a.do("alice", "GET", "/image/v2/schemas/image", nil)
	props := r.json(t)["properties"].(map[string]any)
	vis := props["visibility"].(map[string]any)["enum"].([]any)
	if len(vis) != 4 || props["os_hidden"] == nil {
		t.Fatalf("image schema %v", props["visibility"])
	}
}

func authCtx(t testing.TB, a *testAPI, token string) context.Context {
	t.Helper()
	c, err := a.svc.deps.Auth.ValidateToken(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return auth.With(context.Background(), c)
}
