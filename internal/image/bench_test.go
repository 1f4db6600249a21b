package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
)

// cpuTime is the process's user+system CPU time: with the machine shared,
// CPU per GiB is the figure that does not depend on the load.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU seconds per GiB moved since cpu0.
func reportCPU(b *testing.B, cpu0 time.Duration, bytes int64) {
	b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(bytes)/(1<<30)), "cpu-s/GiB")
}

// patternReader yields n bytes of a repeating pattern without holding
// them in memory.
type patternReader struct{ n int64 }

var pattern = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}()

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	k := copy(b[:min(int64(len(b)), p.n)], pattern)
	p.n -= int64(k)
	return k, nil
}

const benchImageSize = 256 << 20

func benchUpload(b *testing.B, a *testAPI, size int64) string {
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	req, _ := http.NewRequest("PUT", a.srv.URL+"/image/v2/images/"+id+"/file", &patternReader{n: size})
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", "alice")
	res, err := a.srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 204 {
		b.Fatalf("upload status %d", res.StatusCode)
	}
	return id
}

// BenchmarkUpload streams a 256 MiB image through HTTP into the store
// (hashing MD5 and SHA-512, fsync, rename), through the page cache and
// with direct I/O (image.direct_io). Reported: throughput, peak
// heap growth, which must not depend on the image size, and the CPU of
// the whole process (HTTP client included) per GiB.
func BenchmarkUpload(b *testing.B) {
	for _, direct := range []bool{false, true} {
		b.Run(ioName(direct), func(b *testing.B) { benchmarkUpload(b, direct) })
	}
}

// ioName names the I/O mode of a sub-benchmark.
func ioName(direct bool) string {
	if direct {
		return "direct"
	}
	return "page-cache"
}

func benchmarkUpload(b *testing.B, direct bool) {
	a := newTestAPI(b, Config{DirectIO: direct})
	var id string
	measureIngest(b, func() { id = benchUpload(b, a, benchImageSize) },
		func() { a.do("alice", "DELETE", "/image/v2/images/"+id, nil) })
}

// measureIngest times ingest, which stores one image of benchImageSize, b.N
// times, and reports the heap growth and the CPU per GiB; cleanup runs
// after each ingest with the timer and the CPU count stopped.
func measureIngest(b *testing.B, ingest, cleanup func()) {
	b.SetBytes(benchImageSize)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var (
		peak uint64
		cpu  time.Duration
	)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cpu0 := cpuTime()
		ingest()
		cpu += cpuTime() - cpu0
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		cleanup()
		b.StartTimer()
	}
	b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "heapMiB")
	reportCPU(b, cpuTime()-cpu, int64(b.N)*benchImageSize)
}

// BenchmarkDownload streams a 256 MiB image out of the store over HTTP;
// the CPU per GiB includes the HTTP client reading it.
func BenchmarkDownload(b *testing.B) {
	for _, direct := range []bool{false, true} {
		b.Run(ioName(direct), func(b *testing.B) { benchmarkDownload(b, direct) })
	}
}

func benchmarkDownload(b *testing.B, direct bool) {
	a := newTestAPI(b, Config{DirectIO: direct})
	id := benchUpload(b, a, benchImageSize)
	b.SetBytes(benchImageSize)
	buf := make([]byte, 1<<20)
	b.ResetTimer()
	defer reportCPU(b, cpuTime(), int64(b.N)*benchImageSize)
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", a.srv.URL+"/image/v2/images/"+id+"/file", nil)
		req.Header.Set("X-Auth-Token", "alice")
		res, err := a.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		// 1 MiB reads (io.Copy to io.Discard reads 8 KiB at a time): the
		// client's share of the CPU figure as small as it gets.
		var n int64
		for {
			m, err := res.Body.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		res.Body.Close()
		if n != benchImageSize {
			b.Fatalf("got %d bytes", n)
		}
	}
}

// BenchmarkList1000 lists 1,000 images (with tags and properties) in one
// page over HTTP, on each engine, and reports the median latency and the
// CPU time of the whole process (server, and the client reading the
// 1.1 MB body; not PostgreSQL's own) per list.
func BenchmarkList1000(b *testing.B) {
	for _, e := range dbtest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) { benchList1000(b, e.Open(b, Migrations())) })
	}
}

func benchList1000(b *testing.B, d *db.DB) {
	a := newTestAPIOn(b, d, Config{})
	ctx := context.Background()
	t0 := time.Now().UTC()
	for i := 0; i < 1000; i++ {
		img := testImage("p-alice", fmt.Sprintf("image-%04d", i), t0.Add(time.Duration(i)*time.Millisecond))
		img.Tags = []string{"bench", fmt.Sprintf("t%d", i%10)}
		img.Properties = map[string]string{"os_distro": "debian", "hw_disk_bus": "virtio"}
		img.DiskFormat, img.ContainerFormat = ptr("qcow2"), ptr("bare")
		if err := a.svc.store.CreateImage(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		req, _ := http.NewRequest("GET", a.srv.URL+"/image/v2/images?limit=1000", nil)
		req.Header.Set("X-Auth-Token", "alice")
		res, err := a.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		lat = append(lat, time.Since(start))
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/op")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkIngest measures the store's write path alone (no HTTP client
// competing for the CPUs): read, MD5 + SHA-512 in parallel, write, fsync.
func BenchmarkIngest(b *testing.B) {
	for _, direct := range []bool{false, true} {
		b.Run(ioName(direct), func(b *testing.B) { benchmarkIngest(b, direct) })
	}
}

func benchmarkIngest(b *testing.B, direct bool) {
	bl, err := newBlobs(b.TempDir(), "sha512", direct)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchImageSize)
	defer reportCPU(b, cpuTime(), int64(b.N)*benchImageSize)
	for i := 0; i < b.N; i++ {
		in, err := bl.ingest(context.Background(), &patternReader{n: benchImageSize}, 1<<40)
		if err != nil {
			b.Fatal(err)
		}
		in.remove()
	}
}
