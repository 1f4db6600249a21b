package image

import "testing"

// BenchmarkWebDownload imports a 256 MiB raw image from a local web
// server with the web-download method: the same fetch and ingest as
// BenchmarkImportTask, into an image created beforehand. The CPU per GiB
// is the whole process's: web server, fetching client and image service.
func BenchmarkWebDownload(b *testing.B) {
	web := benchImageServer(b)
	a := newTestAPI(b, trustServers(Config{}, web.URL))
	// Each image is created beforehand, off the clock (in cleanup).
	newImage := func() string {
		return a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	}
	id := newImage()
	measureIngest(b, func() {
		if r := a.do("alice", "POST", "/image/v2/images/"+id+"/import", webDownload(web.URL+"/disk.raw")); r.status != 202 {
			b.Fatalf("import: %d %s", r.status, r.body)
		}
		a.svc.WaitTasks()
	}, func() {
		if img := a.get("alice", id); img["status"] != "active" {
			b.Fatalf("image %v", img)
		}
		a.do("alice", "DELETE", "/image/v2/images/"+id, nil)
		id = newImage()
	})
}
