package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/identity"
)

// BenchmarkCreateUploadLimits measures what unified limit enforcement
// costs an image's life through the API: create, upload 4 KiB, delete,
// with image.use_keystone_limits off and on (limits read from a real
// identity service with the four limits registered, as kumo serve
// wires it). Reports process CPU per image.
func BenchmarkCreateUploadLimits(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) { benchCreateUpload(b, on) })
	}
}

func benchCreateUpload(b *testing.B, on bool) {
	d := dbtest.OpenSQLite(b, Migrations(), identity.Migrations())
	ctx := context.Background()
	ids := identity.NewService(identity.NewStore(d), identity.Config{}, nil, nil)
	if err := ids.Start(ctx); err != nil {
		b.Fatal(err)
	}
	svc := &identity.CatalogService{Type: "image", Name: "glance", Enabled: true}
	if err := ids.CreateService(ctx, svc); err != nil {
		b.Fatal(err)
	}
	var regs []*identity.RegisteredLimit
	for i, r := range limitResources {
		regs = append(regs, &identity.RegisteredLimit{ID: fmt.Sprintf("r%d", i), ServiceID: svc.ID, ResourceName: r, DefaultLimit: 1 << 30})
	}
	if err := ids.Store().CreateRegisteredLimits(ctx, regs); err != nil {
		b.Fatal(err)
	}
	a := newTestAPIOn(b, d, Config{UseKeystoneLimits: on, Limits: ids})
	data := bytes.Repeat([]byte{7}, 4096)
	do := func(method, path string, body io.Reader, ct string, want int) []byte {
		req, _ := http.NewRequest(method, a.srv.URL+path, body)
		req.Header.Set("X-Auth-Token", "alice")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := a.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("%s %s: %d %s", method, path, res.StatusCode, out)
		}
		return out
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		out := do("POST", "/image/v2/images", bytes.NewReader([]byte(`{"disk_format":"raw","container_format":"bare"}`)), "application/json", 201)
		id := string(out[bytes.Index(out, []byte(`"id":"`))+6:][:36])
		do("PUT", "/image/v2/images/"+id+"/file", bytes.NewReader(data), "application/octet-stream", 204)
		do("DELETE", "/image/v2/images/"+id, nil, "", 204)
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/op")
}
