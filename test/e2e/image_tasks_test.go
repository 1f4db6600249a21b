package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/tasks"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestImageTasksImportAndRestart drives the tasks API with gophercloud
// against the real binary: an import from a local web server succeeds;
// an import whose server stalls is cut by a SIGKILL of kumo and, after
// the restart, ends in failure with its half-made image gone.
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

	dir := t.TempDir()
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
