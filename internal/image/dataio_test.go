package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/service"
)

// TestDataRoundTrip writes data of sizes around the direct-I/O alignment
// and the chunk size through ingest, reads it back whole and by ranges,
// with direct and with buffered I/O, and checks bytes and hashes.
func TestDataRoundTrip(t *testing.T) {
	sizes := []int{0, 1, dioAlign - 1, dioAlign, dioAlign + 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5}
	src := make([]byte, 3*chunkSize+5)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	for _, direct := range []bool{true, false} {
		b, err := newBlobs(t.TempDir(), "sha512", direct)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range sizes {
			data := src[:size]
			in, err := b.ingest(context.Background(), bytes.NewReader(data), 1<<40)
			if err != nil {
				t.Fatalf("direct=%v size %d: %v", direct, size, err)
			}
			md, sh := md5.Sum(data), sha512.Sum512(data)
			if in.size != int64(size) || in.md5 != hex.EncodeToString(md[:]) || in.hash != hex.EncodeToString(sh[:]) {
				t.Fatalf("direct=%v size %d: ingested %d bytes, md5 %s", direct, size, in.size, in.md5)
			}
			st, err := os.Stat(in.tmp)
			if err != nil || st.Size() != int64(size) {
				t.Fatalf("direct=%v size %d: file %v %v", direct, size, st, err)
			}
			f, err := os.Open(in.tmp)
			if err != nil {
				t.Fatal(err)
			}
			ranges := [][2]int{{0, size}}
			if size > 2 {
				ranges = append(ranges, [2]int{1, size - 2}, [2]int{size / 2, size - size/2}, [2]int{size - 1, 1})
			}
			if size > chunkSize+10 {
				ranges = append(ranges, [2]int{chunkSize - 3, 10}, [2]int{dioAlign + 7, chunkSize})
			}
			for _, rg := range ranges {
				var out bytes.Buffer
				n, err := copyData(&out, f, int64(rg[0]), int64(rg[1]), direct)
				if err != nil || n != int64(rg[1]) || !bytes.Equal(out.Bytes(), data[rg[0]:rg[0]+rg[1]]) {
					t.Fatalf("direct=%v size %d: range %v: %d bytes, %v, equal %v", direct, size, rg, n, err,
						bytes.Equal(out.Bytes(), data[rg[0]:rg[0]+rg[1]]))
				}
			}
			// Beyond the end of the file (the file is shorter than the
			// image's recorded size): a short copy or an error.
			if n, err := copyData(&bytes.Buffer{}, f, 0, int64(size)+1, direct); err == nil && n == int64(size)+1 {
				t.Fatalf("direct=%v size %d: read past the end: no error", direct, size)
			}
			f.Close()
			in.remove()
		}
	}
}

// TestDataFileUnalignedWrite: a write that direct I/O refuses (here an
// unaligned buffer) is done buffered instead, and the data is right.
func TestDataFileUnalignedWrite(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := newDataFile(f, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := alignedBuf(2 * dioAlign)
	for i := range buf {
		buf[i] = byte(i)
	}
	if err := d.writeAt(buf[1:dioAlign+1], 0); err != nil {
		t.Fatal(err)
	}
	if err := d.writeAt(buf[:dioAlign], dioAlign); err != nil {
		t.Fatal(err)
	}
	if err := d.finish(2*dioAlign - 1); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, buf[1:dioAlign+1]...), buf[:dioAlign-1]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d; equal %v", len(got), len(want), bytes.Equal(got, want))
	}
}

// TestHashingAlgorithm: image.hashing_algorithm names the os_hash_algo of
// uploads (sha512 by default); anything else is refused at start.
func TestHashingAlgorithm(t *testing.T) {
	data := bytes.Repeat([]byte("kumo"), 1000)
	for _, tc := range []struct {
		algo, want string
		sum        func([]byte) []byte
	}{
		{"", "sha512", func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }},
		{"sha512", "sha512", func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }},
		{"sha384", "sha384", func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }},
		{"sha256", "sha256", func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
	} {
		t.Run(tc.want+"/"+tc.algo, func(t *testing.T) {
			a := newTestAPI(t, Config{HashingAlgorithm: tc.algo})
			id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
			a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", data), 204)
			img := a.get("alice", id)
			md := md5.Sum(data)
			if img["os_hash_algo"] != tc.want || img["os_hash_value"] != hex.EncodeToString(tc.sum(data)) ||
				img["checksum"] != hex.EncodeToString(md[:]) {
				t.Fatalf("got %v %v %v", img["os_hash_algo"], img["os_hash_value"], img["checksum"])
			}
		})
	}
	for _, bad := range []string{"md5", "SHA512", "sha3_512"} {
		if _, err := New(service.Deps{DB: dbtest.OpenSQLite(t, Migrations()), DataDir: t.TempDir()}, Config{HashingAlgorithm: bad}); err == nil {
			t.Errorf("hashing_algorithm %q accepted", bad)
		}
	}
}

// TestDirectIOThroughAPI: with image.direct_io an upload of a size that
// is no multiple of the alignment comes back whole and by ranges, with
// its checksums.
func TestDirectIOThroughAPI(t *testing.T) {
	a := newTestAPI(t, Config{DirectIO: true})
	data := make([]byte, 2*chunkSize+4097)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	id := a.create("alice", map[string]any{"disk_format": "raw", "container_format": "bare"})
	a.mustStatus(a.do("alice", "PUT", "/image/v2/images/"+id+"/file", data), 204)
	md, sh := md5.Sum(data), sha512.Sum512(data)
	if img := a.get("alice", id); img["size"] != float64(len(data)) || img["checksum"] != hex.EncodeToString(md[:]) ||
		img["os_hash_value"] != hex.EncodeToString(sh[:]) {
		t.Fatalf("after upload %v", img)
	}
	if res := a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil), 200); !bytes.Equal(res.body, data) {
		t.Fatalf("download: %d bytes, not the data", len(res.body))
	}
	res := a.mustStatus(a.do("alice", "GET", "/image/v2/images/"+id+"/file", nil, "Range", "bytes=4095-"), 206)
	if !bytes.Equal(res.body, data[4095:]) {
		t.Fatalf("range: %d bytes, not the data", len(res.body))
	}
}
