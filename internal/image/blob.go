package image

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"unsafe"
)

// blobs keeps image data as files:
//
//	<dir>/images/<id>    committed data of active and deactivated images
//	<dir>/staging/<id>   data staged for glance-direct import
//	<dir>/tmp/           uploads in progress
//
// Every write goes to a temporary file that is hashed while written,
// fsynced and renamed into place, so a reader never sees partial data and
// an interrupted upload leaves only a temporary file, which recovery
// removes.
type blobs struct {
	dir string
	// algo is the os_hash_algo computed beside MD5 (hashAlgos).
	algo string
	// direct writes and reads image data with O_DIRECT where the file
	// system allows it (see dataio_linux.go).
	direct bool
}

func newBlobs(dir, algo string, direct bool) (*blobs, error) {
	if _, ok := hashAlgos[algo]; !ok {
		return nil, fmt.Errorf("image store: unsupported hashing algorithm %q", algo)
	}
	for _, sub := range []string{"images", "staging", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	return &blobs{dir: dir, algo: algo, direct: direct}, nil
}

func (b *blobs) path(id string) string        { return filepath.Join(b.dir, "images", id) }
func (b *blobs) stagingPath(id string) string { return filepath.Join(b.dir, "staging", id) }

// errTooLarge is returned by ingest when the data exceeds the limit.
var errTooLarge = errors.New("image data exceeds the limit")

// ingested is data written to a temporary file.
type ingested struct {
	tmp  string
	size int64
	md5  string
	// algo and hash are os_hash_algo and os_hash_value.
	algo, hash string
}

func (in *ingested) remove() {
	if in != nil && in.tmp != "" {
		_ = os.Remove(in.tmp)
	}
}

// chunkSize is the unit of reads, hashing and writes. 4 MiB chunks cost
// ~8 % less server CPU per GiB of upload than 1 MiB ones here (fewer
// direct writes, each a blocking system call that the Go runtime's
// sysmon retakes the P from) and still fit the L3 cache between the
// socket read and the hashes.
const chunkSize = 4 << 20

// chunkPool holds chunk buffers aligned for direct I/O.
var chunkPool = sync.Pool{New: func() any { b := alignedBuf(chunkSize); return &b }}

// dioAlign is the alignment of buffers, offsets and lengths of direct I/O.
const dioAlign = 4096

// alignedBuf returns n bytes starting at a multiple of dioAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+dioAlign)
	a := dioAlign - int(uintptr(unsafe.Pointer(&b[0]))%dioAlign)
	return b[a%dioAlign : a%dioAlign+n : a%dioAlign+n]
}

// ingest copies r into a new temporary file while computing its MD5 and
// its os_hash_value, failing with errTooLarge as soon as more than limit bytes
// arrive. The two hashes and the file writes run in parallel on a small
// ring of buffers, so memory use does not depend on the image size. On
// error nothing is left behind.
func (b *blobs) ingest(ctx context.Context, r io.Reader, limit int64) (_ *ingested, err error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "upload-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	df, err := newDataFile(f, b.direct)
	if err != nil {
		return nil, fmt.Errorf("image data file: %w", err)
	}
	md, sh := b.newHashes()
	size, err := pipeline(ctx, r, limit, df, md, sh)
	if err != nil {
		return nil, err
	}
	if err := df.finish(size); err != nil {
		return nil, fmt.Errorf("sync image data: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close image data: %w", err)
	}
	return &ingested{tmp: f.Name(), size: size, md5: hexSum(md), algo: b.algo, hash: hexSum(sh)}, nil
}

// positionalWriter is a sink that takes chunks at their offsets, from
// several goroutines at once (a dataFile).
type positionalWriter interface {
	writeAt(p []byte, off int64) error
	// writers is how many goroutines should write at once.
	writers() int
}

type chunk struct {
	buf  *[]byte
	n    int
	off  int64
	refs atomic.Int32
}

// pipeline reads r in chunks and feeds every chunk to w and to each hash
// concurrently: one goroutine per hash (a hash is sequential) and, when w
// is a positionalWriter, as many writers as it asks for (direct I/O waits
// for the disk, so several chunks are in flight). w == io.Discard writes
// nothing. It returns the number of bytes copied.
func pipeline(ctx context.Context, r io.Reader, limit int64, w io.Writer, hashes ...hash.Hash) (int64, error) {
	const depth = 6 // 24 MiB of buffers, whatever the image size
	free := make(chan *chunk, depth)
	for i := 0; i < depth; i++ {
		free <- &chunk{buf: chunkPool.Get().(*[]byte)}
	}
	defer func() {
		// Drain: all chunks come back once the consumers are done.
		for i := 0; i < depth; i++ {
			c := <-free
			chunkPool.Put(c.buf)
		}
	}()
	var (
		wg       sync.WaitGroup
		writeErr atomic.Pointer[error]
	)
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	type consumer struct {
		ch      chan *chunk
		workers int
		run     func(c *chunk) error
	}
	var cons []consumer
	for _, h := range hashes {
		cons = append(cons, consumer{make(chan *chunk, depth), 1, func(c *chunk) error {
			h.Write((*c.buf)[:c.n])
			return nil
		}})
	}
	switch pw, ok := w.(positionalWriter); {
	case ok:
		cons = append(cons, consumer{make(chan *chunk, depth), pw.writers(), func(c *chunk) error {
			return pw.writeAt((*c.buf)[:c.n], c.off)
		}})
	case w != io.Discard:
		cons = append(cons, consumer{make(chan *chunk, depth), 1, func(c *chunk) error {
			_, err := w.Write((*c.buf)[:c.n])
			return err
		}})
	}
	for _, cn := range cons {
		for range cn.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range cn.ch {
					if writeErr.Load() == nil {
						if err := cn.run(c); err != nil {
							writeErr.Store(&err)
						}
					}
					release(c)
				}
			}()
		}
	}
	var (
		total int64
		err   error
	)
	for {
		if e := writeErr.Load(); e != nil {
			err = fmt.Errorf("write image data: %w", *e)
			break
		}
		if e := ctx.Err(); e != nil {
			err = e
			break
		}
		c := <-free
		n, rerr := readFull(r, *c.buf)
		if n > 0 {
			if total+int64(n) > limit {
				free <- c
				err = errTooLarge
				break
			}
			c.n, c.off = n, total
			total += int64(n)
			if len(cons) == 0 {
				free <- c
			} else {
				c.refs.Store(int32(len(cons)))
				for _, cn := range cons {
					cn.ch <- c
				}
			}
		} else {
			free <- c
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("%w: %w", errReadBody, rerr)
			break
		}
	}
	for _, cn := range cons {
		close(cn.ch)
	}
	wg.Wait()
	if err == nil {
		if e := writeErr.Load(); e != nil {
			err = fmt.Errorf("write image data: %w", *e)
		}
	}
	return total, err
}

// readFull fills buf unless r ends (io.EOF) or fails; unlike io.ReadFull
// it reports a reader's own io.ErrUnexpectedEOF (a truncated HTTP body) as
// a failure rather than as a short final chunk.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// errReadBody marks a failure reading the client's data (a disconnect or a
// body shorter than its Content-Length).
var errReadBody = errors.New("read request body")

// copyBuffered writes n bytes of f from off to w with 1 MiB reads and
// writes through a pooled buffer (as measured before the chunks grew to
// 4 MiB). sendfile(2) (io.Copy of the file into
// w) was measured slower on loopback here: 660-840 MiB/s and 0.48-0.52 s
// of server CPU per GiB against 1,110 MiB/s and 0.40-0.48 s; see
// docs/performance.md. The wrapper hides any ReadFrom of w, which would
// pick sendfile.
func copyBuffered(w io.Writer, f *os.File, off, n int64) (int64, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w}, io.NewSectionReader(f, off, n), (*bp)[:1<<20])
}

// commit moves ingested data into place as the data of image id.
func (b *blobs) commit(in *ingested, dst string) error {
	if err := os.Rename(in.tmp, dst); err != nil {
		return fmt.Errorf("commit image data: %w", err)
	}
	in.tmp = ""
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// sweepTmp removes leftovers of interrupted uploads.
func (b *blobs) sweepTmp() error {
	ents, err := os.ReadDir(filepath.Join(b.dir, "tmp"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		_ = os.Remove(filepath.Join(b.dir, "tmp", e.Name()))
	}
	return nil
}

// hashAlgos are the values image.hashing_algorithm may take (Glance's
// hashing_algorithm, default sha512): the os_hash_algo of new images.
var hashAlgos = map[string]func() hash.Hash{"sha512": sha512.New, "sha384": sha512.New384, "sha256": sha256.New}

// newHashes returns the MD5 of checksum and the hash of os_hash_value.
func (b *blobs) newHashes() (hash.Hash, hash.Hash) { return md5.New(), hashAlgos[b.algo]() }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
