package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/identity"
)

// fakeLimits is a LimitReader over registered defaults and per-project
// overrides, resolved as identity.Service resolves them.
type fakeLimits struct {
	mu   sync.Mutex
	reg  map[string]int64
	proj map[string]map[string]int64
	err  error
}

func (f *fakeLimits) ProjectLimits(_ context.Context, q identity.LimitQuery) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if q.ServiceType != "image" {
		return map[string]int64{}, nil
	}
	out := map[string]int64{}
	for _, r := range q.Resources {
		if v, ok := f.reg[r]; ok {
			out[r] = v
		}
		if v, ok := f.proj[q.ProjectID][r]; ok {
			out[r] = v
		}
	}
	return out, nil
}

func (f *fakeLimits) set(project, resource string, v int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if project == "" {
		f.reg[resource] = v
		return
	}
	if f.proj[project] == nil {
		f.proj[project] = map[string]int64{}
	}
	f.proj[project][resource] = v
}

// unlimited registers -1 for every resource.
func unlimited() *fakeLimits {
	return &fakeLimits{reg: map[string]int64{resSizeTotal: -1, resStageTotal: -1, resCountTotal: -1, resCountUploading: -1},
		proj: map[string]map[string]int64{}}
}

func TestLimitArithmetic(t *testing.T) {
	over := []struct {
		limit, usage, delta int64
		want                bool
	}{
		{10, 9, 1, false},  // reaches the limit: allowed
		{10, 10, 1, true},  // one past: refused
		{10, 10, 0, false}, // at the limit, nothing more asked
		{10, 11, 0, true},  // already over
		{0, 0, 1, true},    // unregistered (0): nothing may be used
		{0, 0, 0, false},
		{-1, 1 << 40, 1 << 40, false}, // -1 is unlimited
	}
	for _, tc := range over {
		if got := overLimit(tc.limit, tc.usage, tc.delta); got != tc.want {
			t.Errorf("overLimit(%d, %d, %d) = %v, want %v", tc.limit, tc.usage, tc.delta, got, tc.want)
		}
	}
	rooms := []struct {
		limitMiB, used, want int64
	}{
		{1, 0, mib},
		{1, mib, 0},
		{1, mib + 1, -1},
		{0, 0, 0},
		{2147483647, 0, 2147483647 * mib}, // Keystone's maximum does not overflow
		{-1, 1 << 50, math.MaxInt64},
	}
	for _, tc := range rooms {
		if got := byteRoom(tc.limitMiB, tc.used); got != tc.want {
			t.Errorf("byteRoom(%d, %d) = %d, want %d", tc.limitMiB, tc.used, got, tc.want)
		}
	}
	mibs := []struct{ b, up, down int64 }{
		{0, 0, 0}, {1, 1, 0}, {mib, 1, 1}, {mib + 1, 2, 1}, {-5, 0, 0},
	}
	for _, tc := range mibs {
		if mibUp(tc.b) != tc.up || mibDown(tc.b) != tc.down {
			t.Errorf("mib(%d) = %d up, %d down; want %d, %d", tc.b, mibUp(tc.b), mibDown(tc.b), tc.up, tc.down)
		}
	}
}

func TestLimitExceededBody(t *testing.T) {
	err := limitExceeded("p1", overInfo{resStageTotal, 5, 5, 0}, overInfo{resCountUploading, 1, 1, 1})
	ae := apiutil.AsError(err)
	want := "The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\n" +
		"The response body:\nProject p1 is over a limit for [Resource image_stage_total is over limit of 5 due to current usage 5 and delta 0, " +
		"Resource image_count_uploading is over limit of 1 due to current usage 1 and delta 1]"
	if ae.Status != 413 || ae.Message != want || !errors.Is(err, apiutil.ErrOverLimit) {
		t.Fatalf("got %d %q", ae.Status, ae.Message)
	}
}

func limitsAPI(t *testing.T, f *fakeLimits) *testAPI {
	t.Helper()
	return newTestAPI(t, Config{UseKeystoneLimits: true, Limits: f, ProjectQuotaBytes: 1})
}

func (a *testAPI) wantOver(r resp, resource string) {
	a.t.Helper()
	a.mustStatus(r, 413)
	if !strings.Contains(string(r.body), "Resource "+resource+" is over limit") || !strings.Contains(string(r.body), "quota threshold was breached") {
		a.t.Fatalf("413 body %s, want %s over its limit", r.body, resource)
	}
}

// noFilesOf fails when any file of image id remains in the store.
func (a *testAPI) noFilesOf(id string) {
	a.t.Helper()
	for _, f := range a.storeFiles() {
		if strings.Contains(f, id) || strings.Contains(f, "/tmp/") {
			a.t.Fatalf("file left: %s", f)
		}
	}
}

func TestKeystoneLimitImageCount(t *testing.T) {
	f := unlimited()
	f.set("", resCountTotal, 2)
	a := limitsAPI(t, f)
	a.create("alice", map[string]any{"name": "1"})
	a.create("alice", map[string]any{"name": "2"})
	r := a.do("alice", "POST", "/image/v2/images", map[string]any{"name": "3"})
	a.wantOver(r, resCountTotal)
	if !strings.Contains(string(r.body), "due to current usage 2 and delta 1") {
		t.Fatalf("body %s", r.body)
	}
	// Other projects have their own count; a project limit overrides the default.
	a.create("bob", map[string]any{"name": "b1"})
	f.set("p-alice", resCountTotal, 3)
	id3 := a.create("alice", map[string]any{"name": "3"})
	a.wantOver(a.do("alice", "POST", "/image/v2/images", map[string]any{"name": "4"}), resCountTotal)
	// Deleting frees a slot.
	a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+id3, nil), 204)
	a.create("alice", map[string]any{"name": "4"})
	// An unregistered resource is a limit of 0: no image at all.
	f.mu.Lock()
	delete(f.reg, resCountTotal)
	f.mu.Unlock()
	a.wantOver(a.do("carol", "POST", "/image/v2/images", map[string]any{"name": "c"}), resCountTotal)
	// Every image counts, whatever its status, and nothing was stored by a refusal.
	if n := len(a.mustStatus(a.do("admin", "GET", "/image/v2/images?owner=p-alice", nil), 200).json(t)["images"].([]any)); n != 3 {
		t.Fatalf("alice has %d images, want 3", n)
	}
}

func TestKeystoneLimitSizeTotal(t *testing.T) {
	f := unlimited()
	f.set("", resSizeTotal, 1) // 1 MiB
	a := limitsAPI(t, f)
	raw := map[string]any{"disk_format": "raw", "container_format": "bare"}
	// The whole MiB fits (the legacy 1-byte ProjectQuotaBytes is ignored).
	id1 := a.create("alice", raw)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id1+"/file", make([]byte, mib-10)), 204)
	tests := []struct {
		name string
		body func() io.Reader
	}{
		{"declared length", func() io.Reader { return bytes.NewReader(make([]byte, 11)) }},
		{"chunked", func() io.Reader { return io.MultiReader(bytes.NewReader(make([]byte, 11))) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := a.create("alice", raw)
			a.wantOver(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", tc.body()), resSizeTotal)
			if st := a.get("alice", id)["status"]; st != "queued" {
				t.Fatalf("refused image is %s", st)
			}
			a.noFilesOf(id)
			// Exactly what is left fits.
			a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", make([]byte, 10)), 204)
			a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+id, nil), 204)
		})
	}
	// Over the limit already (the limit was lowered): refused before reading.
	f.set("p-alice", resSizeTotal, 0)
	id := a.create("alice", raw)
	r := a.do("alice", "PUT", "/image/v2/images/"+id+"/file", make([]byte, 0))
	a.wantOver(r, resSizeTotal)
	if !strings.Contains(string(r.body), "over limit of 0 due to current usage 1 and delta 0") {
		t.Fatalf("body %s", r.body)
	}
	// A project override raises it; bob's default is untouched.
	f.set("p-alice", resSizeTotal, 2)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", make([]byte, mib)), 204)
	idb := a.create("bob", raw)
	a.wantOver(a.do("bob", "PUT", "/image/v2/images/"+idb+"/file", make([]byte, mib+1)), resSizeTotal)
}

func TestKeystoneLimitUploading(t *testing.T) {
	dbtest.Each(t, []db.Set{Migrations()}, testKeystoneLimitUploading)
}

func testKeystoneLimitUploading(t *testing.T, d *db.DB) {
	f := unlimited()
	f.set("", resCountUploading, 1)
	a := newTestAPIOn(t, d, Config{UseKeystoneLimits: true, Limits: f})
	raw := map[string]any{"disk_format": "raw", "container_format": "bare"}
	staged := a.create("alice", raw)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+staged+"/stage", []byte("staged")), 204)
	// The staged image holds the one upload slot: neither an upload nor a stage may start.
	for _, op := range []string{"file", "stage"} {
		id := a.create("alice", raw)
		a.wantOver(a.do("alice", "PUT", "/image/v2/images/"+id+"/"+op, []byte("x")), resCountUploading)
		if st := a.get("alice", id)["status"]; st != "queued" {
			t.Fatalf("%s: refused image is %s", op, st)
		}
		a.noFilesOf(id)
	}
	// Other projects are not affected; a project limit of 2 lets one more in.
	idb := a.create("bob", raw)
	a.mustStatus(a.do("bob", "PUT", "/image/v2/images/"+idb+"/file", []byte("x")), 204)
	f.set("p-alice", resCountUploading, 2)
	id := a.create("alice", raw)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", []byte("x")), 204)
	// Importing the staged image ends its upload: the slot is free again.
	f.set("p-alice", resCountUploading, 1)
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+staged+"/import", map[string]any{"method": map[string]any{"name": "glance-direct"}}), 202)
	a.svc.WaitTasks()
	id = a.create("alice", raw)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", []byte("x")), 204)
}

func TestKeystoneLimitStageAndImport(t *testing.T) {
	f := unlimited()
	f.set("", resStageTotal, 1)
	f.set("", resSizeTotal, 1)
	a := limitsAPI(t, f)
	raw := map[string]any{"disk_format": "raw", "container_format": "bare"}
	imp := map[string]any{"method": map[string]any{"name": "glance-direct"}}
	s1 := a.create("alice", raw)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+s1+"/stage", make([]byte, mib-1)), 204)
	// The staging area holds 1 MiB - 1 byte: 2 more bytes do not fit, 1 does.
	s2 := a.create("alice", raw)
	for _, body := range []io.Reader{bytes.NewReader(make([]byte, 2)), io.MultiReader(bytes.NewReader(make([]byte, 2)))} {
		a.wantOver(a.do("alice", "PUT", "/image/v2/images/"+s2+"/stage", body), resStageTotal)
		if st := a.get("alice", s2)["status"]; st != "queued" {
			t.Fatalf("refused stage left %s", st)
		}
		a.noFilesOf(s2)
	}
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+s2+"/stage", make([]byte, 1)), 204)
	// Uploads do not stage: image_stage_total does not gate them.
	up := a.create("alice", raw)
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+up+"/file", make([]byte, 2)), 204)
	// Importing s1 (1 MiB - 1) on top of the 2 stored bytes passes image_size_total: refused,
	// the image stays staged so that the client can import it once there is room.
	a.wantOver(a.do("alice", "POST", "/image/v2/images/"+s1+"/import", imp), resSizeTotal)
	if st := a.get("alice", s1)["status"]; st != "uploading" {
		t.Fatalf("refused import left %s", st)
	}
	a.mustStatus(a.do("alice", "DELETE", "/image/v2/images/"+up, nil), 204)
	a.mustStatus(a.do("alice", "POST", "/image/v2/images/"+s1+"/import", imp), 202)
	a.svc.WaitTasks()
	if st := a.get("alice", s1)["status"]; st != "active" {
		t.Fatalf("import ended %s", st)
	}
	// The usage call shows it all.
	u := a.mustStatus(a.do("alice", "GET", "/image/v2/info/usage", nil), 200).json(t)["usage"].(map[string]any)
	want := map[string]map[string]float64{
		resSizeTotal:      {"limit": 1, "usage": 0}, // 1 MiB - 1 byte, rounded down
		resStageTotal:     {"limit": 1, "usage": 0}, // s2's one byte
		resCountTotal:     {"limit": -1, "usage": 2},
		resCountUploading: {"limit": -1, "usage": 1},
	}
	for k, v := range want {
		got := u[k].(map[string]any)
		if got["limit"] != v["limit"] || got["usage"] != v["usage"] {
			t.Errorf("%s: got %v, want %v", k, got, v)
		}
	}
}

// TestKeystoneLimitActivateRecheck: a limit lowered while data streams is
// checked again when the upload commits, and nothing stays stored.
func TestKeystoneLimitActivateRecheck(t *testing.T) {
	f := unlimited()
	f.set("", resSizeTotal, 1)
	a := limitsAPI(t, f)
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	pr, pw := io.Pipe()
	done := make(chan resp)
	go func() { done <- a.do("alice", "PUT", "/image/v2/images/"+id+"/file", io.Reader(pr)) }()
	if _, err := pw.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// saving: the upload took its budget under the old limit.
	for deadline := time.Now().Add(10 * time.Second); a.get("alice", id)["status"] != "saving"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("upload never started")
		}
	}
	f.set("p-alice", resSizeTotal, 0)
	pw.Close()
	a.wantOver(<-done, resSizeTotal)
	if st := a.get("alice", id)["status"]; st != "queued" {
		t.Fatalf("image %s", st)
	}
	a.noFilesOf(id)
}

func TestKeystoneLimitsReadFailure(t *testing.T) {
	f := unlimited()
	a := limitsAPI(t, f)
	f.err = errors.New("catalog has two image services")
	r := a.do("alice", "POST", "/image/v2/images", map[string]any{"name": "x"})
	if r.status != 500 || strings.Contains(string(r.body), "two image services") {
		t.Fatalf("got %d %s: want a 500 that does not leak the cause", r.status, r.body)
	}
	f.err = nil
	a.create("alice", map[string]any{"name": "x"})
}

func TestKeystoneLimitsNeedReader(t *testing.T) {
	if _, err := New(newTestAPI(t, Config{}).svc.deps, Config{UseKeystoneLimits: true}); err == nil {
		t.Fatal("New accepted use_keystone_limits without a limit reader")
	}
}

func TestInfoUsage(t *testing.T) {
	sample := map[string]map[string]int64{}
	if err := json.Unmarshal(mustRead(t, "testdata/usage-response.json"), &struct {
		Usage *map[string]map[string]int64 `json:"usage"`
	}{&sample}); err != nil {
		t.Fatal(err)
	}
	// Off: Glance answers an empty usage.
	off := newTestAPI(t, Config{})
	if r := off.mustStatus(off.do("alice", "GET", "/image/v2/info/usage", nil), 200); string(r.body) != `{"usage":{}}` {
		t.Fatalf("usage with limits off: %s", r.body)
	}
	f := unlimited()
	f.set("", resSizeTotal, 1024)
	f.set("", resCountTotal, 10)
	f.set("p-alice", resCountTotal, 20)
	delete(f.reg, resStageTotal) // unregistered: shown as 0, as oslo.limit reports it
	a := limitsAPI(t, f)
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", make([]byte, 3*mib)), 204)
	a.create("alice", map[string]any{"name": "queued"})
	var got struct {
		Usage map[string]map[string]int64 `json:"usage"`
	}
	if err := json.Unmarshal(a.mustStatus(a.do("alice", "GET", "/image/v2/info/usage", nil), 200).body, &got); err != nil {
		t.Fatal(err)
	}
	// Same resources and fields as Glance's sample.
	for k, v := range sample {
		g, ok := got.Usage[k]
		if !ok || len(g) != len(v) {
			t.Fatalf("usage %v lacks %s as in the sample %v", got.Usage, k, v)
		}
		for field := range v {
			if _, ok := g[field]; !ok {
				t.Fatalf("%s lacks %s", k, field)
			}
		}
	}
	if len(got.Usage) != len(sample) {
		t.Fatalf("usage has %d resources, the sample %d", len(got.Usage), len(sample))
	}
	want := map[string]map[string]int64{
		resSizeTotal:      {"limit": 1024, "usage": 3},
		resStageTotal:     {"limit": 0, "usage": 0},
		resCountTotal:     {"limit": 20, "usage": 2},
		resCountUploading: {"limit": -1, "usage": 0},
	}
	for k, v := range want {
		if got.Usage[k]["limit"] != v["limit"] || got.Usage[k]["usage"] != v["usage"] {
			t.Errorf("%s = %v, want %v", k, got.Usage[k], v)
		}
	}
	// Bob sees his project's numbers.
	if err := json.Unmarshal(a.mustStatus(a.do("bob", "GET", "/image/v2/info/usage", nil), 200).body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Usage[resCountTotal]["limit"] != 10 || got.Usage[resCountTotal]["usage"] != 0 || got.Usage[resSizeTotal]["usage"] != 0 {
		t.Fatalf("bob's usage %v", got.Usage)
	}
	a.mustStatus(a.do("", "GET", "/image/v2/info/usage", nil), 401)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInfoStoresDetail(t *testing.T) {
	a := newTestAPI(t, Config{})
	for _, tok := range []string{"alice", "aliceread"} {
		r := a.mustStatus(a.do(tok, "GET", "/image/v2/info/stores/detail", nil), 403)
		if !strings.Contains(string(r.body), "stores_info_detail") {
			t.Fatalf("403 body %s", r.body)
		}
	}
	a.mustStatus(a.do("", "GET", "/image/v2/info/stores/detail", nil), 401)
	var got struct {
		Stores []struct {
			ID          string         `json:"id"`
			Type        string         `json:"type"`
			Description string         `json:"description"`
			Default     bool           `json:"default"`
			Properties  map[string]any `json:"properties"`
		} `json:"stores"`
	}
	if err := json.Unmarshal(a.mustStatus(a.do("admin", "GET", "/image/v2/info/stores/detail", nil), 200).body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Stores) != 1 {
		t.Fatalf("stores %+v", got.Stores)
	}
	st := got.Stores[0]
	keys := make([]string, 0, len(st.Properties))
	for k := range st.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if st.ID != "file" || st.Type != "file" || !st.Default || st.Description == "" ||
		!slices.Equal(keys, []string{"chunk_size", "data_dir", "thin_provisioning"}) ||
		!strings.HasPrefix(st.Properties["data_dir"].(string), a.dir) {
		t.Fatalf("store %+v", st)
	}
}
