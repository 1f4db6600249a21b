package image

import (
	"bytes"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func webDownload(uri string) map[string]any {
	return map[string]any{"method": map[string]any{"name": "web-download", "uri": uri}}
}

// rawImage is data no format inspector recognises.
func rawImage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// webServer serves the files, each at its path with a Content-Length,
// and also: /chunked/<path> without a length, /short/<path> cut 100 bytes
// short of its length, /to?u=URL redirecting to URL.
func webServer(t *testing.T, files map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		case strings.HasPrefix(p, "/chunked/") && files[strings.TrimPrefix(p, "/chunked")] != nil:
			data := files[strings.TrimPrefix(p, "/chunked")]
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			w.Write(data[len(data)/2:])
		case strings.HasPrefix(p, "/short/") && files[strings.TrimPrefix(p, "/short")] != nil:
			data := files[strings.TrimPrefix(p, "/short")]
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data[:len(data)-100])
		case files[p] != nil:
			w.Header().Set("Content-Length", fmt.Sprint(len(files[p])))
			w.Write(files[p])
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// imageTasks returns the tasks of an image.
func (a *testAPI) imageTasks(token, id string) []any {
	a.t.Helper()
	return a.mustStatus(a.do(token, "GET", "/image/v2/images/"+id+"/tasks", nil), 200).json(a.t)["tasks"].([]any)
}

func TestWebDownload(t *testing.T) {
	qcow, raw := qcow2Image(1<<30), rawImage(3<<20+17)
	srv := webServer(t, map[string][]byte{"/disk.qcow2": qcow, "/disk.raw": raw})
	a := newTestAPI(t, trustServers(Config{}, srv.URL))
	for _, c := range []struct {
		name, path, format string
		data               []byte
		virtual            any
	}{
		{"qcow2", "/disk.qcow2", "qcow2", qcow, float64(1 << 30)},
		{"raw", "/disk.raw", "raw", raw, float64(len(raw))},
		{"no length", "/chunked/disk.raw", "raw", raw, float64(len(raw))},
		{"redirected", "/to?u=" + url.QueryEscape("/disk.qcow2"), "qcow2", qcow, float64(1 << 30)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := a.mustStatus(a.do("alice", "POST", "/image/v2/images", map[string]any{
				"name": c.name, "disk_format": c.format, "container_format": "bare"}), 201)
			if m := r.header.Get("OpenStack-image-import-methods"); m != "glance-direct,web-download" {
				t.Fatalf("import methods header %q", m)
			}
			id := r.json(t)["id"].(string)
			uri := srv.URL + c.path
			r = a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", webDownload(uri)), 202)
			if len(r.body) != 0 {
				t.Fatalf("body %q", r.body)
			}
			a.svc.WaitTasks()
			img := a.get("alice", id)
			sum, sha := md5.Sum(c.data), sha512.Sum512(c.data)
			if img["status"] != "active" || img["size"] != float64(len(c.data)) || img["virtual_size"] != c.virtual ||
				img["checksum"] != hex.EncodeToString(sum[:]) || img["os_hash_algo"] != "sha512" ||
				img["os_hash_value"] != hex.EncodeToString(sha[:]) {
				t.Fatalf("image %v", img)
			}
			got := a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil), 200).body
			if !bytes.Equal(got, c.data) {
				t.Fatal("imported data differs")
			}
			ts := a.imageTasks("alice", id)
			if len(ts) != 1 {
				t.Fatalf("tasks %v", ts)
			}
			tk := ts[0].(map[string]any)
			method := tk["input"].(map[string]any)["import_req"].(map[string]any)["method"].(map[string]any)
			if tk["type"] != "api_image_import" || tk["status"] != "success" || tk["image_id"] != id || tk["owner"] != "p-alice" ||
				method["name"] != "web-download" || method["uri"] != uri || tk["result"].(map[string]any)["image_id"] != id {
				t.Fatalf("task %v", tk)
			}
			// An active image is no import target.
			r = a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", webDownload(uri)), 409)
			if !strings.Contains(string(r.body), "Image with status active cannot be target for import") {
				t.Fatalf("body %s", r.body)
			}
		})
	}
	if f := a.storeFiles(); len(f) != 4 {
		t.Fatalf("files %v", f)
	}
}

// TestWebDownloadImporting watches an import while its data arrives, and
// one cut by a shutdown of the service.
func TestWebDownloadImporting(t *testing.T) {
	data := qcow2Image(1 << 20)
	started, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:512])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-release:
			w.Write(data[512:])
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	a := newTestAPI(t, trustServers(Config{}, srv.URL))
	id := a.create("alice", map[string]any{"disk_format": "qcow2", "container_format": "bare"})
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", webDownload(srv.URL+"/slow.qcow2")), 202)
	<-started
	if st := a.get("alice", id)["status"]; st != "importing" {
		t.Fatalf("status %v", st)
	}
	if ts := a.imageTasks("alice", id); len(ts) != 1 || ts[0].(map[string]any)["status"] != "processing" {
		t.Fatalf("tasks %v", ts)
	}
	for _, imp := range []map[string]any{webDownload(srv.URL + "/again.qcow2"), {"method": map[string]any{"name": "glance-direct"}}} {
		r := a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", imp), 409)
		if !strings.Contains(string(r.body), "Image needs to be") {
			t.Fatalf("second import: %s", r.body)
		}
	}
	close(release)
	a.svc.WaitTasks()
	if st := a.get("alice", id)["status"]; st != "active" {
		t.Fatalf("status %v", st)
	}

	cut := a.create("alice", map[string]any{"disk_format": "qcow2", "container_format": "bare"})
	release = make(chan struct{}) // never closed
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+cut+"/import", webDownload(srv.URL+"/slow.qcow2")), 202)
	<-started
	a.svc.Close()
	img := a.get("alice", cut)
	ts := a.imageTasks("alice", cut)
	if img["status"] != "queued" || img["size"] != nil || len(ts) != 1 || ts[0].(map[string]any)["status"] != "failure" ||
		!strings.Contains(ts[0].(map[string]any)["message"].(string), "the image service is stopping") {
		t.Fatalf("image %v, tasks %v", img, ts)
	}
	for _, f := range a.storeFiles() {
		if strings.Contains(f, cut) || strings.Contains(f, "/tmp/") {
			t.Fatalf("file left: %s", f)
		}
	}
}

// TestWebDownloadRefused checks the answers to imports that cannot start:
// nothing changes, no task is recorded.
func TestWebDownloadRefused(t *testing.T) {
	srv := webServer(t, map[string][]byte{"/disk.raw": rawImage(4096)})
	other := webServer(t, nil)
	trusted := newTestAPI(t, trustServers(Config{}, srv.URL))
	def := newTestAPI(t, Config{})
	strict := newTestAPI(t, Config{ImportFilter: ImportFilter{DisallowedHosts: []string{"evil.example"}, AllowedSchemes: []string{"https"}}})
	direct := newTestAPI(t, Config{ImportMethods: []string{"glance-direct"}})
	queued := func(a *testAPI) string {
		return a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	}
	for _, c := range []struct {
		name   string
		a      *testAPI
		token  string
		image  func(a *testAPI) string
		body   any
		status int
		want   string
	}{
		{"no uri", def, "alice", queued, `{"method": {"name": "web-download"}}`, 400, "URI for web-download does not pass filtering: None"},
		{"empty uri", def, "alice", queued, webDownload(""), 400, "does not pass filtering: None"},
		{"uri not a string", def, "alice", queued, `{"method": {"name": "web-download", "uri": 7}}`, 400, "Malformed JSON"},
		{"not a URL", def, "alice", queued, webDownload("http://[::1"), 400, "does not pass filtering: http://[::1"},
		{"ftp", def, "alice", queued, webDownload("ftp://example.com/x.img"), 400, "does not pass filtering: ftp://example.com/x.img"},
		{"file", def, "alice", queued, webDownload("file:///etc/shadow"), 400, "does not pass filtering: file:///etc/shadow"},
		{"port", def, "alice", queued, webDownload("http://example.com:8080/x.img"), 400, "does not pass filtering"},
		{"loopback", def, "alice", queued, webDownload("http://127.0.0.1/x.img"), 400, "does not pass filtering"},
		{"localhost", def, "alice", queued, webDownload("http://localhost/x.img"), 400, "does not pass filtering"},
		{"metadata", def, "alice", queued, webDownload("http://169.254.169.254/latest/meta-data/"), 400, "does not pass filtering"},
		{"IPv6 loopback", def, "alice", queued, webDownload("http://[::1]:80/x.img"), 400, "does not pass filtering"},
		{"loopback behind userinfo", def, "alice", queued, webDownload("http://example.com@127.0.0.1/x"), 400, "does not pass filtering"},
		{"disallowed host", strict, "alice", queued, webDownload("https://evil.example/x.img"), 400, "does not pass filtering"},
		{"scheme not allowed", strict, "alice", queued, webDownload("http://good.example/x.img"), 400, "does not pass filtering"},
		{"other port of the trusted host", trusted, "alice", queued, webDownload(other.URL + "/x.img"), 400, "does not pass filtering"},
		{"other host than the trusted one", trusted, "alice", queued, webDownload("https://example.com/x.img"), 400, "does not pass filtering"},
		{"no disk_format", trusted, "alice", func(a *testAPI) string { return a.create("alice", map[string]any{"container_format": "bare"}) },
			webDownload(srv.URL + "/disk.raw"), 409, "'disk_format' needs to be set before import"},
		{"no container_format", trusted, "alice", func(a *testAPI) string { return a.create("alice", map[string]any{"disk_format": "raw"}) },
			webDownload(srv.URL + "/disk.raw"), 409, "'container_format' needs to be set before import"},
		{"staged", trusted, "alice", func(a *testAPI) string {
			id := queued(a)
			a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/stage", rawImage(1024)), 204)
			return id
		}, webDownload(srv.URL + "/disk.raw"), 409, "Image needs to be in 'queued' state to use 'web-download' method"},
		{"status before filter, as in Glance", def, "alice", func(a *testAPI) string {
			id := queued(a)
			a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", rawImage(1024)), 204)
			return id
		}, webDownload("http://169.254.169.254/"), 409, "Image with status active cannot be target for import"},
		{"other project", trusted, "bob", queued, webDownload(srv.URL + "/disk.raw"), 404, "No image found with ID"},
		{"reader", trusted, "aliceread", queued, webDownload(srv.URL + "/disk.raw"), 403, "image:import_image"},
		{"unknown store", trusted, "alice", queued, map[string]any{"method": map[string]any{"name": "web-download", "uri": srv.URL + "/disk.raw"},
			"stores": []string{"ceph"}}, 409, "Store for identifier ceph not found"},
		{"method disabled", direct, "alice", queued, webDownload(srv.URL + "/disk.raw"), 400, "Import method web-download is not valid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := c.image(c.a)
			before := c.a.get("alice", id)
			r := c.a.mustStatus(c.a.do(c.token, "POST", "/image/v2/images/"+id+"/import", c.body), c.status)
			if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, c.want) {
				t.Fatalf("body %s, want %q", r.body, c.want)
			}
			c.a.svc.WaitTasks()
			if after := c.a.get("alice", id); after["status"] != before["status"] || after["updated_at"] != before["updated_at"] {
				t.Fatalf("image changed: %v", after)
			}
			if ts := c.a.imageTasks("alice", id); len(ts) != 0 {
				t.Fatalf("tasks recorded: %v", ts)
			}
		})
	}
	r := direct.mustStatus(direct.do("alice", "GET", "/image/v2/info/import", nil), 200)
	if !strings.Contains(string(r.body), `"value":["glance-direct"]`) {
		t.Fatalf("info %s", r.body)
	}
}

// TestWebDownloadFailures checks imports that fail once started: the
// image goes back to queued with no data, the task says why, and the
// image can be imported again.
func TestWebDownloadFailures(t *testing.T) {
	qcow, raw := qcow2Image(1<<20), rawImage(64<<10)
	srv := webServer(t, map[string][]byte{"/disk.qcow2": qcow, "/disk.raw": raw})
	other := webServer(t, map[string][]byte{"/disk.raw": raw})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/disk.raw"
	l.Close()
	to := func(u string) string { return srv.URL + "/to?u=" + url.QueryEscape(u) }
	for _, c := range []struct {
		name, format, uri string
		cfg               Config
		want              string
	}{
		{"not found", "raw", srv.URL + "/missing.raw", Config{}, "Unable to fetch " + srv.URL + "/missing.raw: HTTP 404 Not Found"},
		{"unreachable", "raw", closed, Config{}, "Unable to fetch " + closed + ": dial tcp"},
		{"body cut short", "raw", srv.URL + "/short/disk.raw", Config{}, "Error reading image data from " + srv.URL + "/short/disk.raw"},
		{"over quota (declared length)", "raw", srv.URL + "/disk.raw", Config{ProjectQuotaBytes: 1000},
			"Denying attempt to upload image because it exceeds the quota: The size of the data 65536 will exceed the limit. 1000 bytes remaining."},
		{"over quota (no length)", "raw", srv.URL + "/chunked/disk.raw", Config{ProjectQuotaBytes: 1000},
			"Denying attempt to upload image because it exceeds the quota"},
		{"image too big", "raw", srv.URL + "/chunked/disk.raw", Config{MaxImageBytes: 1000}, "Image exceeds the maximum image size of 1000 bytes."},
		{"format mismatch", "raw", srv.URL + "/disk.qcow2", Config{}, "Image format verification failed"},
		{"redirect to a port not allowed", "raw", to(other.URL + "/disk.raw"), Config{},
			"Unable to fetch " + to(other.URL+"/disk.raw") + ": redirect to " + other.URL + "/disk.raw does not pass filtering: port"},
		{"redirect to the metadata service", "raw", to("http://169.254.169.254/latest/meta-data/"), Config{},
			`does not pass filtering: host "169.254.169.254" is not allowed`},
		{"redirect to file", "raw", to("file:///etc/shadow"), Config{}, `does not pass filtering: scheme "file"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newTestAPI(t, trustServers(c.cfg, srv.URL, closed))
			id := a.create("alice", map[string]any{"disk_format": c.format, "container_format": "bare"})
			a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", webDownload(c.uri)), 202)
			a.svc.WaitTasks()
			img := a.get("alice", id)
			if img["status"] != "queued" || img["size"] != nil || img["checksum"] != nil {
				t.Fatalf("image %v", img)
			}
			ts := a.imageTasks("alice", id)
			if len(ts) != 1 {
				t.Fatalf("tasks %v", ts)
			}
			tk := ts[0].(map[string]any)
			if tk["status"] != "failure" || !strings.Contains(tk["message"].(string), c.want) || tk["result"] != nil {
				t.Fatalf("task %v, want message %q", tk, c.want)
			}
			if files := a.storeFiles(); len(files) != 0 {
				t.Fatalf("files left: %v", files)
			}
			// The image can be imported again (within the limits).
			if c.cfg.ProjectQuotaBytes != 0 || c.cfg.MaxImageBytes != 0 {
				return
			}
			a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+id+"/import", webDownload(srv.URL+"/disk."+c.format)), 202)
			a.svc.WaitTasks()
			if img := a.get("alice", id); img["status"] != "active" || img["size"] != float64(len(raw)) {
				t.Fatalf("retried import: %v", img)
			}
			if ts := a.imageTasks("alice", id); len(ts) != 2 {
				t.Fatalf("tasks %v", ts)
			}
		})
	}
}
