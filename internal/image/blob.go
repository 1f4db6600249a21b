package image

import (
	"context"
	"crypto/md5"
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
}

func newBlobs(dir string) (*blobs, error) {
	for _, sub := range []string{"images", "staging", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	return &blobs{dir: dir}, nil
}

func (b *blobs) path(id string) string        { return filepath.Join(b.dir, "images", id) }
func (b *blobs) stagingPath(id string) string { return filepath.Join(b.dir, "staging", id) }

// errTooLarge is returned by ingest when the data exceeds the limit.
var errTooLarge = errors.New("image data exceeds the limit")

// ingested is data written to a temporary file.
type ingested struct {
	tmp    string
	size   int64
	md5    string
	sha512 string
}

func (in *ingested) remove() {
	if in != nil && in.tmp != "" {
		_ = os.Remove(in.tmp)
	}
}

const chunkSize = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// ingest copies r into a new temporary file while computing its MD5 and
// SHA-512, failing with errTooLarge as soon as more than limit bytes
// arrive. The two hashes and the file write run in parallel on a small
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
	wb, err := newWriteback(f)
	if err != nil {
		return nil, fmt.Errorf("image data file: %w", err)
	}
	md, sh := md5.New(), sha512.New()
	size, err := pipeline(ctx, r, limit, wb, md, sh)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync image data: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close image data: %w", err)
	}
	return &ingested{tmp: f.Name(), size: size,
		md5: hex.EncodeToString(md.Sum(nil)), sha512: hex.EncodeToString(sh.Sum(nil))}, nil
}

type chunk struct {
	buf  *[]byte
	n    int
	refs atomic.Int32
}

// pipeline reads r in chunks and feeds every chunk to w and to each hash
// concurrently. It returns the number of bytes copied.
func pipeline(ctx context.Context, r io.Reader, limit int64, w io.Writer, hashes ...hash.Hash) (int64, error) {
	const depth = 8
	consumers := 1 + len(hashes)
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
	chans := make([]chan *chunk, consumers)
	var (
		wg       sync.WaitGroup
		writeErr atomic.Pointer[error]
	)
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	for i := range chans {
		chans[i] = make(chan *chunk, depth)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for c := range chans[i] {
				if i == 0 {
					if writeErr.Load() == nil {
						if _, err := w.Write((*c.buf)[:c.n]); err != nil {
							writeErr.Store(&err)
						}
					}
				} else {
					hashes[i-1].Write((*c.buf)[:c.n])
				}
				release(c)
			}
		}(i)
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
			total += int64(n)
			if total > limit {
				free <- c
				err = errTooLarge
				break
			}
			c.n = n
			c.refs.Store(int32(consumers))
			for _, ch := range chans {
				ch <- c
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
	for _, ch := range chans {
		close(ch)
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

func newHashes() (hash.Hash, hash.Hash) { return md5.New(), sha512.New() }

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
