package image

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/policy"
)

func importTask(url, format string, props map[string]any) map[string]any {
	if props == nil {
		props = map[string]any{"container_format": "bare", "disk_format": format}
	}
	return map[string]any{"type": "import", "input": map[string]any{
		"import_from": url, "import_from_format": format, "image_properties": props}}
}

// openTasks lets members use the tasks API (admin-only by default), so
// owner scoping can be tested.
func openTasks(t *testing.T, a *testAPI) {
	t.Helper()
	enf, err := policy.New(PolicyDefaults(), map[string]string{ruleTasksAPIAccess: "role:reader"})
	if err != nil {
		t.Fatal(err)
	}
	a.svc.policy = enf
}

func (a *testAPI) task(token, id string) map[string]any {
	a.t.Helper()
	return a.mustStatus(a.do(token, "GET", "/image/v2/tasks/"+id, nil), 200).json(a.t)
}

// runTask creates an import task, waits for it to end and returns it.
func (a *testAPI) runTask(token string, body map[string]any) map[string]any {
	a.t.Helper()
	r := a.mustStatus(a.do(token, "POST", "/image/v2/tasks", body), 201)
	created := r.json(a.t)
	if created["status"] != "pending" || created["message"] != "" || created["result"] != nil ||
		r.header.Get("Location") != publicURL+"/image/v2/tasks/"+created["id"].(string) {
		a.t.Fatalf("created task %s, Location %q", r.body, r.header.Get("Location"))
	}
	a.svc.WaitTasks()
	return a.task(token, created["id"].(string))
}

func TestTaskCreateBadInput(t *testing.T) {
	a := newTestAPI(t, Config{})
	openTasks(t, a)
	good := func(edit func(in map[string]any)) map[string]any {
		b := importTask("http://example.test/cirros.img", "raw", nil)
		edit(b["input"].(map[string]any))
		return b
	}
	for _, c := range []struct {
		name   string
		token  string
		body   any
		status int
		want   string
	}{
		{"no body", "admin", "", 400, "Body expected in request."},
		{"not an object", "admin", `["import"]`, 400, "Malformed JSON in request body."},
		{"no type", "admin", map[string]any{"input": map[string]any{}}, 400, "Task 'type' is required"},
		{"no input", "admin", map[string]any{"type": "import"}, 400, "Task 'input' is required"},
		{"unknown type", "admin", map[string]any{"type": "export", "input": map[string]any{}}, 400,
			"Provided object does not match schema 'task': 'export' is not one of ['import']"},
		{"type api_image_import", "admin", map[string]any{"type": "api_image_import", "input": map[string]any{}}, 400,
			"'api_image_import' is not one of ['import']"},
		{"input not an object", "admin", map[string]any{"type": "import", "input": "x"}, 400,
			"Provided object does not match schema 'task': 'x' is not of type 'object'"},
		{"no import_from", "admin", good(func(in map[string]any) { delete(in, "import_from") }), 400,
			"Input does not contain 'import_from' field"},
		{"no import_from_format", "admin", good(func(in map[string]any) { delete(in, "import_from_format") }), 400,
			"Input does not contain 'import_from_format' field"},
		{"no image_properties", "admin", good(func(in map[string]any) { delete(in, "image_properties") }), 400,
			"Input does not contain 'image_properties' field"},
		{"file URL", "admin", good(func(in map[string]any) { in["import_from"] = "file:///etc/shadow" }), 400,
			"File based imports are not allowed. Please use a non-local source of image data."},
		{"ftp URL", "admin", good(func(in map[string]any) { in["import_from"] = "ftp://example.test/x.img" }), 400,
			"The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http', 'https']"},
		{"URL without host", "admin", good(func(in map[string]any) { in["import_from"] = "http:///x.img" }), 400,
			"The given uri is not valid"},
		{"port not allowed", "admin", good(func(in map[string]any) { in["import_from"] = "http://example.test:8080/x.img" }), 400,
			"URI for import does not pass filtering: http://example.test:8080/x.img"},
		{"loopback", "admin", good(func(in map[string]any) { in["import_from"] = "http://127.0.0.1/x.img" }), 400,
			"URI for import does not pass filtering: http://127.0.0.1/x.img"},
		{"metadata service", "admin", good(func(in map[string]any) { in["import_from"] = "http://169.254.169.254/latest/meta-data/" }), 400,
			"URI for import does not pass filtering"},
		{"IPv6 link-local", "admin", good(func(in map[string]any) { in["import_from"] = "https://[fe80::1]/x.img" }), 400,
			"URI for import does not pass filtering"},
		{"localhost", "admin", good(func(in map[string]any) { in["import_from"] = "https://localhost/x.img" }), 400,
			"URI for import does not pass filtering"},
		{"URL not a string", "admin", good(func(in map[string]any) { in["import_from"] = 7 }), 400, "Invalid location: 7"},
		{"URL null", "admin", good(func(in map[string]any) { in["import_from"] = nil }), 400, "Invalid location: None"},
		{"empty URL", "admin", good(func(in map[string]any) { in["import_from"] = "" }), 400, "Invalid location: <br"},
		{"unknown format", "admin", good(func(in map[string]any) { in["import_from_format"] = "exe" }), 400,
			"Invalid import_from_format 'exe'"},
		{"properties not an object", "admin", good(func(in map[string]any) { in["image_properties"] = []any{} }), 400,
			"[] is not of type 'object' (image_properties)"},
		{"conversion", "admin", good(func(in map[string]any) {
			in["image_properties"] = map[string]any{"disk_format": "vhd", "container_format": "ovf"}
		}), 400, "Image conversion is not supported: import_from_format raw differs from disk_format vhd"},
		{"bad visibility", "admin", good(func(in map[string]any) {
			in["image_properties"] = map[string]any{"visibility": "everyone"}
		}), 400, "Provided object does not match schema 'image'"},
		{"bad image id", "admin", good(func(in map[string]any) { in["image_properties"] = map[string]any{"id": "x"} }), 400,
			`"x" is not a valid image id`},
		{"read-only property", "admin", good(func(in map[string]any) {
			in["image_properties"] = map[string]any{"status": "active"}
		}), 403, "Attribute 'status' is read-only."},
		{"reader may not create", "aliceread", importTask("http://example.test/x", "raw", nil), 403,
			"You are not authorized to complete image:add_task action."},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := a.mustStatus(a.do(c.token, "POST", "/image/v2/tasks", c.body), c.status)
			if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, c.want) {
				t.Fatalf("body %s, want %q", r.body, c.want)
			}
		})
	}
	// Nothing was stored by any of them.
	r := a.mustStatus(a.do("admin", "GET", "/image/v2/tasks", nil), 200).json(t)
	if n := len(r["tasks"].([]any)); n != 0 {
		t.Fatalf("%d tasks stored by bad requests", n)
	}
	if imgs := a.mustStatus(a.do("admin", "GET", "/image/v2/images", nil), 200).json(t)["images"].([]any); len(imgs) != 0 {
		t.Fatalf("images made by bad requests: %v", imgs)
	}
}

func TestTasksAdminOnlyByDefault(t *testing.T) {
	a := newTestAPI(t, Config{})
	for _, c := range []struct{ method, path string }{
		{"GET", "/image/v2/tasks"},
		{"GET", "/image/v2/tasks/" + newUUID()},
		{"POST", "/image/v2/tasks"},
	} {
		var body any
		if c.method == "POST" {
			body = importTask("http://example.test/x", "raw", nil)
		}
		r := a.mustStatus(a.do("alice", c.method, c.path, body), 403)
		if !strings.Contains(string(r.body), "image:tasks_api_access") {
			t.Errorf("%s %s: %s", c.method, c.path, r.body)
		}
	}
	a.mustStatus(a.do("admin", "GET", "/image/v2/tasks", nil), 200)
	a.mustStatus(a.do("admin", "GET", "/image/v2/tasks/"+newUUID(), nil), 404)
	a.mustStatus(a.do("admin", "GET", "/image/v2/tasks/not-a-uuid", nil), 404)
	r := a.mustStatus(a.do("admin", "DELETE", "/image/v2/tasks/"+newUUID(), nil), 405)
	if r.header.Get("Allow") != "GET" || !strings.Contains(string(r.body), "auto deleted") {
		t.Errorf("delete: %v %s", r.header, r.body)
	}
}

// imageServer serves data at /image.img, 404 elsewhere, and a body
// cut short of its Content-Length at /short.img.
func imageServer(t *testing.T, data []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/image.img":
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data)
		case "/chunked.img":
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			w.Write(data[len(data)/2:])
		case "/short.img":
			w.Header().Set("Content-Length", fmt.Sprint(len(data)+100))
			w.Write(data)
		case "/redirect":
			http.Redirect(w, r, "/image.img", http.StatusFound)
		case "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTaskImportFromHTTP(t *testing.T) {
	data := qcow2Image(1 << 30)
	srv := imageServer(t, data)
	a := newTestAPI(t, trustServers(Config{}, srv.URL))
	for _, path := range []string{"/image.img", "/chunked.img", "/redirect"} {
		t.Run(path, func(t *testing.T) {
			before := time.Now().UTC().Add(-time.Second)
			task := a.runTask("admin", importTask(srv.URL+path, "qcow2", map[string]any{"name": "imported", "min_disk": 2}))
			if task["status"] != "success" || task["message"] != "" || task["type"] != "import" {
				t.Fatalf("task %v", task)
			}
			exp, err := time.Parse(time.RFC3339, task["expires_at"].(string))
			if err != nil || exp.Before(before.Add(TaskTTL)) || exp.After(time.Now().Add(TaskTTL+time.Minute)) {
				t.Fatalf("expires_at %v (%v)", task["expires_at"], err)
			}
			in := task["input"].(map[string]any)
			if in["import_from"] != srv.URL+path || in["image_properties"].(map[string]any)["min_disk"] != float64(2) {
				t.Fatalf("input %v", in)
			}
			id := task["result"].(map[string]any)["image_id"].(string)
			img := a.get("admin", id)
			sum := md5.Sum(data)
			if img["status"] != "active" || img["checksum"] != hex.EncodeToString(sum[:]) || img["size"] != float64(len(data)) ||
				img["virtual_size"] != float64(1<<30) || img["disk_format"] != "qcow2" || img["container_format"] != "bare" ||
				img["name"] != "imported" || img["min_disk"] != float64(2) {
				t.Fatalf("image %v", img)
			}
			got := a.mustStatus(a.do("admin", "GET", "/image/v2/images/"+id+"/file", nil), 200).body
			if string(got) != string(data) {
				t.Fatal("imported data differs")
			}
			// The import task is listed on its image.
			its := a.mustStatus(a.do("admin", "GET", "/image/v2/images/"+id+"/tasks", nil), 200).json(t)["tasks"].([]any)
			if len(its) != 1 || its[0].(map[string]any)["id"] != task["id"] || its[0].(map[string]any)["image_id"] != id {
				t.Fatalf("image tasks %v", its)
			}
		})
	}
}

func TestTaskImportFailures(t *testing.T) {
	qcow := qcow2Image(1 << 20)
	srv, other := imageServer(t, qcow), imageServer(t, qcow)
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/x.img"
	l.Close()
	for _, c := range []struct {
		name   string
		cfg    Config
		body   map[string]any
		want   string
		images int // images left afterwards
	}{
		{"unreachable", Config{}, importTask(closed, "raw", nil), "Unable to fetch " + closed + ": dial tcp", 0},
		{"not found", Config{}, importTask(srv.URL+"/missing.img", "raw", nil), "Unable to fetch " + srv.URL + "/missing.img: HTTP 404 Not Found", 0},
		{"declared format mismatch", Config{}, importTask(srv.URL+"/image.img", "raw", nil), "Image format verification failed", 0},
		{"body cut short", Config{}, importTask(srv.URL+"/short.img", "qcow2", nil), "Error reading image data from " + srv.URL + "/short.img", 0},
		{"over quota (declared length)", Config{ProjectQuotaBytes: 1000}, importTask(srv.URL+"/image.img", "qcow2", nil),
			"Denying attempt to upload image because it exceeds the quota", 0},
		{"over quota (chunked)", Config{ProjectQuotaBytes: 1000}, importTask(srv.URL+"/chunked.img", "qcow2", nil),
			"Denying attempt to upload image because it exceeds the quota", 0},
		{"image too big", Config{MaxImageBytes: 1000}, importTask(srv.URL+"/chunked.img", "qcow2", nil),
			"Image exceeds the maximum image size of 1000 bytes.", 0},
		{"duplicate image id", Config{}, nil, "Image with identifier", 1},
		{"redirect to a port not allowed", Config{}, importTask(srv.URL+"/to?u="+url.QueryEscape(other.URL+"/image.img"), "qcow2", nil),
			"redirect to " + other.URL + "/image.img does not pass filtering: port", 0},
		{"redirect to the metadata service", Config{}, importTask(srv.URL+"/to?u="+url.QueryEscape("http://169.254.169.254/"), "qcow2", nil),
			`does not pass filtering: host "169.254.169.254"`, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newTestAPI(t, trustServers(c.cfg, srv.URL, closed))
			if c.body == nil {
				id := a.create("admin", map[string]any{"name": "taken"})
				c.body = importTask(srv.URL+"/image.img", "qcow2", map[string]any{"id": id, "container_format": "bare"})
			}
			task := a.runTask("admin", c.body)
			if task["status"] != "failure" || !strings.Contains(task["message"].(string), c.want) || task["result"] != nil ||
				task["expires_at"] == nil {
				t.Fatalf("task %v, want message %q", task, c.want)
			}
			imgs := a.mustStatus(a.do("admin", "GET", "/image/v2/images", nil), 200).json(t)["images"].([]any)
			if len(imgs) != c.images {
				t.Fatalf("images left: %v", imgs)
			}
			if files := a.storeFiles(); len(files) != 0 {
				t.Fatalf("files left: %v", files)
			}
		})
	}
}

func TestTaskInterruptedByShutdown(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(qcow2Image(1 << 20)[:512])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	a := newTestAPI(t, trustServers(Config{}, srv.URL))
	r := a.mustStatus(a.do("admin", "POST", "/image/v2/tasks", importTask(srv.URL+"/slow.img", "qcow2", nil)), 201)
	id := r.json(t)["id"].(string)
	<-started
	if got := a.task("admin", id)["status"]; got != "processing" {
		t.Fatalf("status %v", got)
	}
	a.svc.Close()
	task := a.task("admin", id)
	if task["status"] != "failure" || !strings.Contains(task["message"].(string), "the image service is stopping") {
		t.Fatalf("task %v", task)
	}
	if imgs := a.mustStatus(a.do("admin", "GET", "/image/v2/images", nil), 200).json(t)["images"].([]any); len(imgs) != 0 {
		t.Fatalf("images left: %v", imgs)
	}
	if files := a.storeFiles(); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
}

func TestTaskListing(t *testing.T) {
	a := newTestAPI(t, Config{})
	openTasks(t, a)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	st := a.svc.taskStore()
	mk := func(owner, typ, status string, minute int) string {
		at := t0.Add(time.Duration(minute) * time.Minute)
		tk := &Task{ID: newUUID(), Type: typ, Status: status, Owner: owner, Input: json.RawMessage(`{}`), CreatedAt: at, UpdatedAt: at}
		if status == TaskSuccess || status == TaskFailure {
			tk.ExpiresAt = at.Add(1000 * time.Hour)
		}
		if err := st.create(context.Background(), tk); err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	alice1 := mk("p-alice", TaskTypeImport, TaskSuccess, 1)
	alice2 := mk("p-alice", TaskTypeImport, TaskFailure, 2)
	alice3 := mk("p-alice", TaskTypeAPIImport, TaskSuccess, 3)
	alice4 := mk("p-alice", TaskTypeImport, TaskProcessing, 4)
	bob1 := mk("p-bob", TaskTypeImport, TaskSuccess, 5)

	ids := func(body map[string]any) []string {
		var out []string
		for _, x := range body["tasks"].([]any) {
			m := x.(map[string]any)
			if _, ok := m["input"]; ok {
				t.Fatalf("list item with input: %v", m)
			}
			out = append(out, m["id"].(string))
		}
		return out
	}
	for _, c := range []struct {
		token, query string
		want         []string
	}{
		{"alice", "", []string{alice4, alice3, alice2, alice1}},
		{"bob", "", []string{bob1}},
		{"admin", "", []string{bob1, alice4, alice3, alice2, alice1}},
		{"alice", "?sort_dir=asc", []string{alice1, alice2, alice3, alice4}},
		{"alice", "?status=success", []string{alice3, alice1}},
		{"alice", "?type=import", []string{alice4, alice2, alice1}},
		{"alice", "?type=api_image_import", []string{alice3}},
		{"alice", "?sort_key=status&sort_dir=asc", nil}, // checked below
		{"alice", "?sort_dir=desc&sort_key=expires_at&status=success", []string{alice3, alice1}},
		{"alice", "?limit=0", nil},
	} {
		body := a.mustStatus(a.do(c.token, "GET", "/image/v2/tasks"+c.query, nil), 200).json(t)
		got := ids(body)
		if c.query == "?sort_key=status&sort_dir=asc" {
			// failure < processing < success, ties by id.
			if len(got) != 4 || got[0] != alice2 || got[1] != alice4 {
				t.Errorf("%s %s: %v", c.token, c.query, got)
			}
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.token, c.query, got, c.want)
		}
		if body["schema"] != "/v2/schemas/tasks" || body["first"] != "/v2/tasks"+c.query {
			t.Errorf("%s %s: schema %v first %v", c.token, c.query, body["schema"], body["first"])
		}
	}

	// Paging with next links, in both directions.
	for _, dir := range []string{"desc", "asc"} {
		var got []string
		next := "/v2/tasks?limit=2&sort_dir=" + dir
		pages := 0
		for next != "" {
			body := a.mustStatus(a.do("admin", "GET", "/image"+next, nil), 200).json(t)
			got = append(got, ids(body)...)
			next, _ = body["next"].(string)
			pages++
		}
		want := []string{bob1, alice4, alice3, alice2, alice1}
		if dir == "asc" {
			slices.Reverse(want)
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("paging %s: %v in %d pages", dir, got, pages)
		}
	}

	// Bad queries.
	for _, c := range []struct{ token, query, want string }{
		{"alice", "sort_dir=up", "Invalid sort direction: up"},
		{"alice", "sort_key=name", "Sort key supplied is invalid: name"},
		{"alice", "status=done", "Invalid status value: done"},
		{"alice", "type=export", "Invalid type value: export"},
		{"alice", "marker=abc", "Invalid marker format"},
		{"alice", "marker=" + bob1, "Task with the given id " + bob1 + " was not found"},
		{"alice", "marker=" + newUUID(), "was not found"},
		{"alice", "limit=ten", "limit param must be an integer"},
		{"alice", "limit=-1", "limit param must be positive"},
	} {
		r := a.mustStatus(a.do(c.token, "GET", "/image/v2/tasks?"+c.query, nil), 400)
		if !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %s, want %q", c.query, r.body, c.want)
		}
	}

	// Show: owner scoping, full view.
	a.mustStatus(a.do("alice", "GET", "/image/v2/tasks/"+bob1, nil), 404)
	got := a.task("admin", alice2)
	for _, k := range []string{"input", "result", "message", "expires_at", "self", "schema", "owner"} {
		if _, ok := got[k]; !ok {
			t.Errorf("show lacks %s: %v", k, got)
		}
	}
	if got := a.task("alice", alice4); got["expires_at"] != nil {
		t.Errorf("processing task with expires_at: %v", got)
	}
}

func TestImageTasksOfGlanceDirectImport(t *testing.T) {
	a := newTestAPI(t, Config{})
	imp := map[string]any{"method": map[string]any{"name": "glance-direct"}}
	// A good import and a refused one (raw declared, qcow2 staged).
	good := a.create("alice", map[string]any{"disk_format": "qcow2", "container_format": "bare"})
	bad := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	for _, id := range []string{good, bad} {
		a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/stage", qcow2Image(1<<20)), 204)
		a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", imp, "X-Openstack-Request-Id", "req-x"), 202)
	}
	a.svc.WaitTasks()
	for _, c := range []struct {
		id, status, message string
	}{
		{good, "success", ""},
		{bad, "failure", "Image format verification failed"},
	} {
		ts := a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+c.id+"/tasks", nil), 200).json(t)["tasks"].([]any)
		if len(ts) != 1 {
			t.Fatalf("%s: tasks %v", c.id, ts)
		}
		tk := ts[0].(map[string]any)
		in := tk["input"].(map[string]any)
		if tk["type"] != "api_image_import" || tk["status"] != c.status || !strings.Contains(tk["message"].(string), c.message) ||
			tk["image_id"] != c.id || tk["owner"] != "p-alice" || tk["user"] != "u-alice" || tk["deleted"] != false ||
			in["image_id"] != c.id || in["import_req"].(map[string]any)["method"].(map[string]any)["name"] != "glance-direct" {
			t.Errorf("%s: task %v", c.id, tk)
		}
		if _, err := time.Parse(imageTaskTime, tk["created_at"].(string)); err != nil || tk["expires_at"] == nil {
			t.Errorf("%s: times %v %v", c.id, tk["created_at"], tk["expires_at"])
		}
		if c.status == "success" && tk["result"].(map[string]any)["image_id"] != c.id {
			t.Errorf("result %v", tk["result"])
		}
	}
	// Others do not see the image; an admin sees its tasks.
	a.mustStatus(a.do("bob", "GET", "/image/v2/images/"+good+"/tasks", nil), 404)
	if ts := a.mustStatus(a.do("admin", "GET", "/image/v2/images/"+good+"/tasks", nil), 200).json(t)["tasks"].([]any); len(ts) != 1 {
		t.Fatalf("admin: %v", ts)
	}
	a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+newUUID()+"/tasks", nil), 404)
}

func TestTaskRecovery(t *testing.T) {
	a := newTestAPI(t, Config{})
	ctx := context.Background()
	st := a.svc.taskStore()
	now := time.Now().UTC()
	mk := func(typ, status, imageID string) string {
		tk := &Task{ID: newUUID(), Type: typ, Status: status, Owner: "p-admin", ImageID: imageID,
			Input: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}
		if err := st.create(ctx, tk); err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	// An import whose image was still saving, one whose image had become
	// active, one that never started, a glance-direct import, one live
	// in this process, and a long expired one.
	saving := a.create("admin", map[string]any{"disk_format": "raw", "container_format": "bare"})
	if _, err := a.svc.store.UpdateImage(ctx, saving, func(img *Image, _ UsageFunc) error { img.Status = StatusSaving; return nil }); err != nil {
		t.Fatal(err)
	}
	active := a.create("admin", map[string]any{"disk_format": "raw", "container_format": "bare"})
	a.mustStatus(a.do("admin", "PUT", "/image/v2/images/"+active+"/file", []byte("data")), 204)
	importing := a.create("admin", map[string]any{"disk_format": "raw", "container_format": "bare"})
	if _, err := a.svc.store.UpdateImage(ctx, importing, func(img *Image, _ UsageFunc) error { img.Status = StatusImporting; return nil }); err != nil {
		t.Fatal(err)
	}
	tSaving := mk(TaskTypeImport, TaskProcessing, saving)
	tActive := mk(TaskTypeImport, TaskProcessing, active)
	tPending := mk(TaskTypeImport, TaskPending, "")
	tDirect := mk(TaskTypeAPIImport, TaskProcessing, importing)
	tLive := mk(TaskTypeImport, TaskProcessing, "")
	liveTasks.Store(liveKey{a.svc, tLive}, struct{}{})
	defer liveTasks.Delete(liveKey{a.svc, tLive})
	expired := &Task{ID: newUUID(), Type: TaskTypeImport, Status: TaskSuccess, Owner: "p-admin", Input: json.RawMessage(`{}`),
		CreatedAt: now.Add(-100 * time.Hour), UpdatedAt: now.Add(-99 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	if err := st.create(ctx, expired); err != nil {
		t.Fatal(err)
	}

	if err := a.svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.recoverTasks(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, status, message string }{
		{tSaving, "failure", "the partially imported image was deleted"},
		{tActive, "success", ""},
		{tPending, "failure", "Task was interrupted by a restart of the image service."},
		{tDirect, "failure", "the image is back in status queued"},
		{tLive, "processing", ""},
	} {
		got := a.task("admin", c.id)
		if got["status"] != c.status || !strings.Contains(got["message"].(string), c.message) {
			t.Errorf("task %s: %v, want %s %q", c.id, got, c.status, c.message)
		}
	}
	if res := a.task("admin", tActive)["result"].(map[string]any); res["image_id"] != active {
		t.Errorf("result %v", res)
	}
	a.mustStatus(a.do("admin", "GET", "/image/v2/images/"+saving, nil), 404)
	a.mustStatus(a.do("admin", "GET", "/image/v2/images/"+active, nil), 200)
	a.mustStatus(a.do("admin", "GET", "/image/v2/tasks/"+expired.ID, nil), 404)
}

func TestTaskSchemas(t *testing.T) {
	a := newTestAPI(t, Config{})
	task := a.mustStatus(a.do("alice", "GET", "/image/v2/schemas/task", nil), 200).json(t)
	props := task["properties"].(map[string]any)
	if task["name"] != "task" || props["input"] == nil || props["result"] == nil ||
		len(props["status"].(map[string]any)["enum"].([]any)) != 4 {
		t.Fatalf("task schema %v", task)
	}
	tasks := a.mustStatus(a.do("alice", "GET", "/image/v2/schemas/tasks", nil), 200).json(t)
	items := tasks["properties"].(map[string]any)["tasks"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	if tasks["name"] != "tasks" || items["input"] != nil || items["id"] == nil {
		t.Fatalf("tasks schema %v", tasks)
	}
}

func TestTaskStore(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := taskStore{db: d}
		t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		var all []*Task
		for i, st := range []string{TaskSuccess, TaskFailure, TaskSuccess, TaskPending} {
			tk := &Task{ID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), Type: TaskTypeImport, Status: st,
				Owner: "p", ImageID: "img", Input: json.RawMessage(`{"n":12345678901234567890}`),
				CreatedAt: t0.Add(time.Duration(i%2) * time.Minute), UpdatedAt: t0}
			if st != TaskPending {
				tk.ExpiresAt = t0.Add(time.Duration(i) * time.Hour)
			}
			if err := s.create(ctx, tk); err != nil {
				t.Fatal(err)
			}
			all = append(all, tk)
		}
		got, err := s.get(ctx, all[0].ID)
		if err != nil || string(got.Input) != `{"n":12345678901234567890}` || got.Result != nil || !got.ExpiresAt.Equal(t0) {
			t.Fatalf("get %+v %v", got, err)
		}
		// Keyset paging by every sort key matches a full sort.
		for key := range taskSortColumns {
			for _, desc := range []bool{false, true} {
				full, err := s.list(ctx, taskQuery{SortKey: key, SortDesc: desc, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				var paged []*Task
				q := taskQuery{SortKey: key, SortDesc: desc, Limit: 1}
				for {
					page, err := s.list(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					paged = append(paged, page...)
					q.Marker = page[0]
				}
				if len(full) != 4 || len(paged) != 4 {
					t.Fatalf("%s desc=%v: %d full, %d paged", key, desc, len(full), len(paged))
				}
				for i := range full {
					if full[i].ID != paged[i].ID {
						t.Fatalf("%s desc=%v: paging order differs at %d", key, desc, i)
					}
				}
			}
		}
		up, err := s.update(ctx, all[3].ID, func(tk *Task) error {
			tk.Status, tk.Result = TaskSuccess, json.RawMessage(`{"image_id":"img"}`)
			return nil
		})
		if err != nil || up.Status != TaskSuccess {
			t.Fatal(err)
		}
		if got, _ := s.get(ctx, all[3].ID); string(got.Result) != `{"image_id":"img"}` {
			t.Fatalf("result %s", got.Result)
		}
		if _, err := s.update(ctx, newUUID(), func(*Task) error { return nil }); err == nil {
			t.Fatal("update of a missing task")
		}
		n, err := s.purgeExpired(ctx, t0.Add(90*time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("purged %d, %v", n, err)
		}
		left, _ := s.ofImage(ctx, "img", "p")
		if len(left) != 2 {
			t.Fatalf("left %d", len(left))
		}
	})
}
