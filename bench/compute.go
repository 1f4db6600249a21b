package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// computeVersion is the microversion the compute scenarios speak (2.37:
// "networks": "none" is accepted and required).
var computeHdr = map[string]string{"OpenStack-API-Version": "compute 2.37"}

// computeSetup lifts the admin project's compute quotas and uploads a
// small image to boot from; it returns the image id.
func (e *env) computeSetup(ctx context.Context) (string, error) {
	q := mustJSON(map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1, "metadata_items": -1}})
	if _, _, err := e.c.do(ctx, "PUT", e.c.url("compute", "/os-quota-sets/"+e.c.projectID), q, computeHdr, http.StatusOK); err != nil {
		return "", fmt.Errorf("raise compute quotas: %w", err)
	}
	return e.uploadImage(ctx, "bench-boot", bytes.Repeat([]byte{0}, 1<<20))
}

// uploadImage creates a raw image with data and waits until it is active.
func (e *env) uploadImage(ctx context.Context, name string, data []byte) (string, error) {
	var img struct{ ID string }
	body := mustJSON(map[string]any{"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "public"})
	if _, err := e.c.doJSON(ctx, "POST", e.c.url("image", "/v2/images"), body, nil, http.StatusCreated, &img); err != nil {
		return "", fmt.Errorf("create image: %w", err)
	}
	if _, _, err := e.c.do(ctx, "PUT", e.c.url("image", "/v2/images/"+img.ID+"/file"), data,
		map[string]string{"Content-Type": "application/octet-stream"}, http.StatusNoContent); err != nil {
		return "", fmt.Errorf("upload image: %w", err)
	}
	return img.ID, nil
}

// createServers asks for n servers in one request (multi-create when n
// > 1) and returns the first one's id (or the reservation).
func (e *env) createServer(ctx context.Context, image, name string, n int) (string, error) {
	s := map[string]any{"name": name, "imageRef": image, "flavorRef": "42", "networks": "none"}
	if n > 1 {
		s["min_count"], s["max_count"] = n, n
	}
	var out struct {
		Server struct{ ID string } `json:"server"`
	}
	_, err := e.c.doJSON(ctx, "POST", e.c.url("compute", "/servers"), mustJSON(map[string]any{"server": s}), computeHdr, http.StatusAccepted, &out)
	return out.Server.ID, err
}

// watcher follows server status changes for many waiters with one
// client: it polls GET /servers/detail?changes-since=T every interval
// (T trailing the previous poll by an overlap that covers commit delays)
// so that waiting for a server costs the server almost nothing per
// waiter and the boot path's query count stays clean. Every server
// changed within interval+overlap is in each answer, so the overlap is
// most of the watcher's cost on the server; a change committed later
// than the overlap after its updated_at is caught by the waiter's own
// GET after a second (counted in misses).
type watcher struct {
	e        *env
	interval time.Duration
	overlap  time.Duration

	mu     sync.Mutex
	waits  map[string]*wait
	polls  int
	misses int // waits that ended by the waiter's own GET
}

type wait struct {
	want map[string]bool
	ch   chan string // the status reached (or ERROR)
}

func (e *env) newWatcher(ctx context.Context) *watcher {
	w := &watcher{e: e, interval: 25 * time.Millisecond, overlap: 150 * time.Millisecond, waits: map[string]*wait{}}
	go w.run(ctx)
	return w
}

// await blocks until server id reaches one of statuses; ERROR fails.
func (w *watcher) await(ctx context.Context, id string, statuses ...string) error {
	wt := &wait{want: map[string]bool{}, ch: make(chan string, 1)}
	for _, s := range statuses {
		wt.want[s] = true
	}
	w.mu.Lock()
	w.waits[id] = wt
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.waits[id] == wt {
			delete(w.waits, id)
		}
		w.mu.Unlock()
	}()
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	// A change committed later than the watcher's overlap after its
	// updated_at (a very busy server) escapes the changes-since polls:
	// after 1 s, the waiter also asks for its server twice a second.
	direct := time.NewTimer(time.Second)
	defer direct.Stop()
	for {
		select {
		case st := <-wt.ch:
			if st == "ERROR" {
				return fmt.Errorf("server %s went to ERROR", id)
			}
			return nil
		case <-direct.C:
			// Decide here: a send on wt.ch could block forever when the
			// watcher filled its one slot meanwhile (this goroutine is
			// its only reader).
			st, err := w.status(ctx, id)
			if err == nil && st == "ERROR" {
				return fmt.Errorf("server %s went to ERROR", id)
			}
			if err == nil && wt.want[st] {
				w.mu.Lock()
				w.misses++
				w.mu.Unlock()
				return nil
			}
			direct.Reset(500 * time.Millisecond)
		case <-timeout.C:
			return fmt.Errorf("server %s: no %v within 2 minutes", id, statuses)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// status reads one server's status; a server gone (404) is DELETED.
func (w *watcher) status(ctx context.Context, id string) (string, error) {
	_, b, err := w.e.c.do(ctx, "GET", w.e.c.url("compute", "/servers/"+id), nil, computeHdr, 0)
	if err != nil {
		return "", err
	}
	var out struct {
		Server struct {
			Status string `json:"status"`
		} `json:"server"`
		NotFound any `json:"itemNotFound"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", err
	}
	if out.NotFound != nil {
		return "DELETED", nil
	}
	return out.Server.Status, nil
}

func (w *watcher) run(ctx context.Context) {
	since := time.Now().Add(-w.overlap)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		idle := len(w.waits) == 0
		w.mu.Unlock()
		start := time.Now()
		if idle {
			since = start.Add(-w.overlap)
			continue
		}
		if err := w.poll(ctx, since); err != nil {
			if ctx.Err() == nil {
				w.e.logf("watcher: %v", err)
			}
			continue
		}
		since = start.Add(-w.overlap)
	}
}

func (w *watcher) poll(ctx context.Context, since time.Time) error {
	marker := ""
	for {
		u := w.e.c.url("compute", "/servers/detail?limit=1000&changes-since="+url.QueryEscape(since.UTC().Format(time.RFC3339Nano)))
		if marker != "" {
			u += "&marker=" + marker
		}
		var out struct {
			Servers []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"servers"`
		}
		if _, err := w.e.c.doJSON(ctx, "GET", u, nil, computeHdr, http.StatusOK, &out); err != nil {
			return err
		}
		w.mu.Lock()
		w.polls++
		for _, s := range out.Servers {
			if wt, ok := w.waits[s.ID]; ok && (wt.want[s.Status] || s.Status == "ERROR") {
				select {
				case wt.ch <- s.Status:
				default:
				}
			}
		}
		w.mu.Unlock()
		if len(out.Servers) < 1000 {
			return nil
		}
		marker = out.Servers[len(out.Servers)-1].ID
	}
}
