package image

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchImageServer serves benchImageSize bytes of the pattern at any
// path, with a Content-Length, until the benchmark ends.
func benchImageServer(b *testing.B) *httptest.Server {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(benchImageSize))
		bp := chunkPool.Get().(*[]byte)
		defer chunkPool.Put(bp)
		io.CopyBuffer(w, &patternReader{n: benchImageSize}, *bp)
	}))
	b.Cleanup(web.Close)
	return web
}

// BenchmarkImportTask imports a 256 MiB raw image from a local web server
// with an import task: the task's HTTP fetch feeds the same ingest as
// BenchmarkUpload, whose figures it is compared with. The CPU per GiB is
// the whole process's: web server, fetching client and image service.
func BenchmarkImportTask(b *testing.B) {
	web := benchImageServer(b)
	a := newTestAPI(b, trustServers(Config{}, web.URL))
	var r resp
	measureIngest(b, func() {
		r = a.do("admin", "POST", "/image/v2/tasks", importTask(web.URL+"/disk.raw", "raw", nil))
		if r.status != 201 {
			b.Fatalf("create task: %d %s", r.status, r.body)
		}
		a.svc.WaitTasks()
	}, func() {
		task := a.task("admin", r.json(b)["id"].(string))
		if task["status"] != "success" {
			b.Fatalf("task %v", task)
		}
		a.do("admin", "DELETE", "/image/v2/images/"+task["result"].(map[string]any)["image_id"].(string), nil)
	})
}
