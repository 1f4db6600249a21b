package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"time"
)

func init() {
	scenarios["image"] = scenario{
		help: "upload then download one image of --image-size bytes (default 1 GiB), streamed; server peak RSS",
		run:  runImage,
	}
}

// pattern is an endless reader of a 1 MiB random block repeated: data
// that does not compress and is never held whole.
type pattern struct {
	block []byte
	off   int
	left  int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	n := copy(b, p.block[p.off:])
	n = int(min(int64(n), p.left))
	p.off = (p.off + n) % len(p.block)
	p.left -= int64(n)
	return n, nil
}

func runImage(ctx context.Context, e *env) error {
	size := e.opts.ImageSize
	if size <= 0 {
		size = 1 << 30
	}
	var img struct{ ID string }
	body := mustJSON(map[string]any{"name": "bench-image", "disk_format": "raw", "container_format": "bare"})
	if _, err := e.c.doJSON(ctx, "POST", e.c.url("image", "/v2/images"), body, nil, http.StatusCreated, &img); err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	src, closeSrc, err := imageSource(block, size)
	if err != nil {
		return err
	}
	defer closeSrc()
	fileURL := e.c.url("image", "/v2/images/"+img.ID+"/file")
	gib := float64(size) / (1 << 30)
	params := map[string]any{"bytes": size}
	// report adds what a one-operation transfer phase means: wall MiB/s,
	// server and load-generator CPU seconds per GiB (the figures that do
	// not depend on how busy the machine is), and the load average.
	report := func(r *Result, lat []time.Duration, what string) {
		if len(lat) == 0 {
			return
		}
		wall := lat[0].Seconds()
		r.extra("MiB_per_s", gib*1024/wall)
		r.extra("server_cpu_s_per_GiB", r.ServerCPUPerOpMs/1000/gib)
		r.extra("loadgen_cpu_s_per_GiB", r.LoadgenCPUCores*wall/gib)
		if l := loadAvg(); l >= 0 {
			r.extra("loadavg_1m", l)
		}
		r.target(what, gib*1024/wall, 500, "MiB/s", true)
	}

	p := e.begin(ctx, "image-upload", params)
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, "PUT", fileURL, src)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", e.c.token)
	var lat []time.Duration
	errs, first := 0, ""
	resp, err := e.c.hc.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			err = fmt.Errorf("upload: status %d: %.200s", resp.StatusCode, b)
		}
	}
	if err != nil {
		errs, first = 1, err.Error()
	} else {
		lat = append(lat, time.Since(t0))
	}
	r := p.end(ctx, lat, errs, first)
	report(r, lat, "upload")
	e.logf("%s", r.line())
	if err != nil {
		return err
	}

	p = e.begin(ctx, "image-download", params)
	t0 = time.Now()
	lat, errs, first = nil, 0, ""
	req, _ = http.NewRequestWithContext(ctx, "GET", fileURL, nil)
	req.Header.Set("X-Auth-Token", e.c.token)
	resp, err = e.c.hc.Do(req)
	var n int64
	if err == nil {
		n, err = drain(resp.Body, make([]byte, 1<<20))
		resp.Body.Close()
		if err == nil && (resp.StatusCode != http.StatusOK || n != size) {
			err = fmt.Errorf("download: status %d, %d bytes of %d", resp.StatusCode, n, size)
		}
	}
	if err != nil {
		errs, first = 1, err.Error()
	} else {
		lat = append(lat, time.Since(t0))
	}
	r = p.end(ctx, lat, errs, first)
	report(r, lat, "download")
	e.logf("%s", r.line())
	_, _, _ = e.c.do(ctx, "DELETE", e.c.url("image", "/v2/images/"+img.ID), nil, nil, http.StatusNoContent)
	return err
}

// drain reads r to the end in reads as large as buf (the HTTP client's
// buffered reader passes large reads straight to the socket), counting the
// bytes: io.Copy to io.Discard would read 8 KiB at a time.
func drain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
