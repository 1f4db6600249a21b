package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/tasks"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestImageTasksImportAndRestart drives the tasks API and the web-download
// import with gophercloud against the real binary: an import task and a
// web-download from a local web server (which the configuration's import
// filter allows) succeed; URLs the filter refuses get 400 at once; a
// web-download whose server answers 404 returns the image to queued; an
// import whose server stalls is cut by a SIGKILL of kumo and, after the
// restart, ends in failure with its half-made image gone.
func TestImageTasksImportAndRestart(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	hold := make(chan struct{})
	stalled := make(chan struct{}, 1)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/disk.raw":
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
		case "/stall.raw":
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:1<<20])
			w.(http.Flusher).Flush()
			stalled <- struct{}{}
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer web.Close()
	defer close(hold)

	// Imports may fetch from the local web server only: its host and port
	// are allowed (a loopback host must be listed to be fetched from).
	dir := t.TempDir()
	webURL, err := url.Parse(web.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("image:\n  import_filtering_opts:\n    allowed_hosts: [%q]\n    allowed_ports: [%s]\n", webURL.Hostname(), webURL.Port())
	if err := os.WriteFile(filepath.Join(dir, "kumo.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	k := Start(t, Options{DataDir: dir})
	ctx := testContext(t)
	p, err := k.Authenticate(ctx, k.AdminAuth())
	if err != nil {
		t.Fatal(err)
	}
	c := serviceClient(t, openstack.NewImageV2, p)
	create := func(url string) *tasks.Task {
		t.Helper()
		tk, err := tasks.Create(ctx, c, tasks.CreateOpts{Type: "import", Input: map[string]any{
			"import_from": url, "import_from_format": "raw",
			"image_properties": map[string]any{"container_format": "bare", "disk_format": "raw", "name": "from-web"},
		}}).Extract()
		if err != nil {
			t.Fatalf("create task: %v", err)
		}
		if tk.Status != string(tasks.TaskStatusPending) || tk.Owner == "" || tk.Self != "/v2/tasks/"+tk.ID {
			t.Fatalf("created task %+v", tk)
		}
		return tk
	}
	wait := func(c *gophercloud.ServiceClient, id string, until func(*tasks.Task) bool) *tasks.Task {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			tk, err := tasks.Get(ctx, c, id).Extract()
			if err != nil {
				t.Fatalf("get task: %v", err)
			}
			if until(tk) {
				return tk
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s stuck: %+v", id, tk)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ended := func(tk *tasks.Task) bool { return tk.Status == "success" || tk.Status == "failure" }

	tk := wait(c, create(web.URL+"/disk.raw").ID, ended)
	if tk.Status != "success" || tk.ExpiresAt.IsZero() {
		t.Fatalf("import task %+v", tk)
	}
	img, err := images.Get(ctx, c, tk.Result["image_id"].(string)).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if img.Status != images.ImageStatusActive || img.Checksum != hex.EncodeToString(sum[:]) || img.SizeBytes != int64(len(data)) || img.Name != "from-web" {
		t.Fatalf("imported image %+v", img)
	}

	// The list pages through the tasks with gophercloud's pager.
	var n int
	err = tasks.List(c, tasks.ListOpts{Limit: 1}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		ts, err := tasks.ExtractTasks(page)
		n += len(ts)
		return true, err
	})
	if err != nil || n != 1 {
		t.Fatalf("listed %d tasks: %v", n, err)
	}

	testWebDownload(t, ctx, c, k, web.URL, data)

	// Kill kumo while an import is streaming, then restart it.
	stuck := create(web.URL + "/stall.raw")
	<-stalled
	wait(c, stuck.ID, func(tk *tasks.Task) bool { return tk.Status == "processing" })
	k.stopped = true
	_ = k.cmd.Process.Kill()
	<-k.exited

	k2 := Start(t, Options{DataDir: dir, Password: k.Password})
	p2, err := k2.Authenticate(ctx, k2.AdminAuth())
	if err != nil {
		t.Fatal(err)
	}
	c2 := serviceClient(t, openstack.NewImageV2, p2)
	tk = wait(c2, stuck.ID, ended)
	if tk.Status != "failure" || !strings.Contains(tk.Message, "interrupted by a restart") {
		t.Fatalf("interrupted task %+v", tk)
	}
	pages, err := images.List(c2, images.ListOpts{Name: "from-web"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := images.ExtractImages(pages); len(imgs) != 1 || imgs[0].ID != img.ID {
		t.Fatalf("images after the restart: %+v", imgs)
	}
}

// testWebDownload imports web+"/disk.raw" (data) with web-download: the
// image becomes active with data's checksum and an api_image_import task;
// a URI the filter refuses (kumo's own API, the metadata service) gets
// 400 and a 404 from the server returns the image to queued.
func testWebDownload(t *testing.T, ctx context.Context, c *gophercloud.ServiceClient, k *Kumo, web string, data []byte) {
	t.Helper()
	info, err := imageimport.Get(ctx, c).Extract()
	if err != nil || !slices.Contains(info.ImportMethods.Value, string(imageimport.WebDownloadMethod)) {
		t.Fatalf("import info %+v: %v", info, err)
	}
	newQueued := func(name string) *images.Image {
		t.Helper()
		img, err := images.Create(ctx, c, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	waitStatus := func(id string, want images.ImageStatus) *images.Image {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			img, err := images.Get(ctx, c, id).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if img.Status == want {
				return img
			}
			if time.Now().After(deadline) || (img.Status != images.ImageStatusImporting && img.Status != images.ImageStatusQueued) {
				t.Fatalf("image %s is %s, want %s", id, img.Status, want)
			}
		}
	}
	webImport := func(id, uri string) error {
		return imageimport.Create(ctx, c, id, imageimport.CreateOpts{Name: imageimport.WebDownloadMethod, URI: uri}).ExtractErr()
	}

	img := newQueued("web-download")
	if err := webImport(img.ID, web+"/disk.raw"); err != nil {
		t.Fatalf("web-download: %v", err)
	}
	img = waitStatus(img.ID, images.ImageStatusActive)
	sum := md5.Sum(data)
	if img.Checksum != hex.EncodeToString(sum[:]) || img.SizeBytes != int64(len(data)) {
		t.Fatalf("web-downloaded image %+v", img)
	}
	var its struct {
		Tasks []struct {
			Type, Status string
			Result       map[string]any
		}
	}
	if _, err := c.Get(ctx, c.ServiceURL("images", img.ID, "tasks"), &its, nil); err != nil {
		t.Fatal(err)
	}
	if len(its.Tasks) != 1 || its.Tasks[0].Type != "api_image_import" || its.Tasks[0].Status != "success" || its.Tasks[0].Result["image_id"] != img.ID {
		t.Fatalf("tasks of the image: %+v", its)
	}

	refused := newQueued("refused")
	for _, uri := range []string{k.URL + "/identity/v3", "http://169.254.169.254/latest/meta-data/", "ftp://example.com/x.img"} {
		err := webImport(refused.ID, uri)
		var ue gophercloud.ErrUnexpectedResponseCode
		if !errors.As(err, &ue) || ue.Actual != http.StatusBadRequest || !strings.Contains(string(ue.Body), "URI for web-download does not pass filtering") {
			t.Fatalf("web-download of %s: %v", uri, err)
		}
	}
	waitStatus(refused.ID, images.ImageStatusQueued)

	if err := webImport(refused.ID, web+"/missing.raw"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := c.Get(ctx, c.ServiceURL("images", refused.ID, "tasks"), &its, nil); err != nil {
			t.Fatal(err)
		}
		if len(its.Tasks) == 1 && its.Tasks[0].Status == "failure" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failed web-download: %+v", its)
		}
	}
	waitStatus(refused.ID, images.ImageStatusQueued)
	for _, id := range []string{img.ID, refused.ID} {
		if err := images.Delete(ctx, c, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
}
