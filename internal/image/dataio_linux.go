package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Image data and the page cache. In the VM this was measured on (PVM,
// 2 cores) every page the kernel newly allocates costs ~12-16 µs of CPU
// (host faults; anonymous memory: 4.1-4.4 s per GiB on first touch), so
// writing a new 1 GiB image through the page cache costs ~2-3 s of CPU
// per GiB (more than MD5 or SHA-512) and a cold buffered read ~2 s;
// O_DIRECT writes and reads move the data by DMA for ~0.1-0.3 s. But
// then downloads come from the shared disk (300-900 MiB/s here) instead
// of the page cache (1-2.7 GB/s), so direct I/O is an option
// (image.direct_io), not the default. See docs/performance.md, "Image
// upload: where the time goes". File systems without O_DIRECT fall back
// to buffered I/O by themselves.

// directWriters is how many direct writes are in flight: one at a time
// the disk took 4 MiB writes at ~320 MiB/s here.
const directWriters = 4

// dataFile writes an image data file, by chunks at their offsets.
type dataFile struct {
	f      *os.File
	raw    syscall.RawConn
	direct bool
	mu     sync.Mutex // serializes the switch from direct to buffered I/O
	off    int64      // for Write
}

// newDataFile prepares f for writing, with O_DIRECT if direct is set and
// the file system takes it.
func newDataFile(f *os.File, direct bool) (*dataFile, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	d := &dataFile{f: f, raw: raw}
	if direct {
		d.direct = d.setDirect(true) == nil
	}
	return d, nil
}

// setDirect turns O_DIRECT on or off for the open file.
func (d *dataFile) setDirect(on bool) error {
	var err error
	cerr := d.raw.Control(func(fd uintptr) {
		var fl int
		if fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0); err != nil {
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, err = unix.FcntlInt(fd, unix.F_SETFL, fl)
	})
	return errors.Join(cerr, err)
}

func (d *dataFile) writers() int {
	if d.direct {
		return directWriters
	}
	return 1
}

// writeAt writes p at off. With direct I/O a last chunk whose length is
// not a multiple of dioAlign is written padded (the buffer has the room:
// chunks come from chunkPool) and finish truncates the padding away.
func (d *dataFile) writeAt(p []byte, off int64) error {
	d.mu.Lock()
	direct := d.direct
	d.mu.Unlock()
	if direct {
		q := p
		if r := len(p) % dioAlign; r != 0 && cap(p) >= len(p)+dioAlign-r {
			q = p[:len(p)+dioAlign-r]
		}
		_, err := d.f.WriteAt(q, off)
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		// The file system took O_DIRECT at open but not this write
		// (alignment rules of its own): go on buffered.
		d.mu.Lock()
		if d.direct {
			if err := d.setDirect(false); err != nil {
				d.mu.Unlock()
				return fmt.Errorf("turn off direct I/O: %w", err)
			}
			d.direct = false
		}
		d.mu.Unlock()
	}
	n, err := d.f.WriteAt(p, off)
	if n > 0 {
		_ = d.raw.Control(func(fd uintptr) {
			// Start writeback of the chunk now, so that the fsync that
			// ends the upload waits for the last chunks only. A hint:
			// on failure the final fsync does all the work.
			_ = unix.SyncFileRange(int(fd), off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
		})
	}
	return err
}

// Write appends p (a sequential writer for callers without offsets).
func (d *dataFile) Write(p []byte) (int, error) {
	if err := d.writeAt(p, d.off); err != nil {
		return 0, err
	}
	d.off += int64(len(p))
	return len(p), nil
}

// finish cuts the file to size (dropping the padding of a last direct
// write) and makes it durable.
func (d *dataFile) finish(size int64) error {
	if err := d.f.Truncate(size); err != nil {
		return err
	}
	return d.f.Sync()
}

// directReaders is how many direct reads of a download are in flight.
const directReaders = 2

// copyData writes n bytes of f from off to w. Blocks that are in the page
// cache are read from it; the others are read with O_DIRECT, so a
// download does not fill the page cache (see above). Reads run ahead
// while w takes the previous block.
func copyData(w io.Writer, f *os.File, off, n int64, direct bool) (int64, error) {
	dfd := -1
	if direct {
		// A second descriptor of the same file, with O_DIRECT.
		fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if err == nil {
			dfd = fd
			defer unix.Close(dfd)
		}
	}
	if dfd < 0 {
		return copyBuffered(w, f, off, n)
	}
	// Blocks are read by directReaders goroutines at once (the disk
	// works on several requests) and written to w in order.
	type block struct {
		buf  *[]byte
		pos  int64
		want int
		got  int
		err  error
		done chan struct{}
	}
	const buffers = directReaders + 2
	free := make(chan *[]byte, buffers)
	for range buffers {
		free <- chunkPool.Get().(*[]byte)
	}
	order := make(chan *block, buffers)
	jobs := make(chan *block)
	stop := make(chan struct{})
	bfd := int(f.Fd())
	for range directReaders {
		go func() {
			for b := range jobs {
				b.got, b.err = readBlock(bfd, dfd, (*b.buf)[:b.want], b.pos)
				close(b.done)
			}
		}()
	}
	end := off + n
	go func() {
		defer close(order)
		defer close(jobs)
		for pos := off &^ (dioAlign - 1); pos < end; {
			var bp *[]byte
			select {
			case bp = <-free:
			case <-stop:
				return
			}
			b := &block{buf: bp, pos: pos, want: int(min(int64(len(*bp)), (end-pos+dioAlign-1)&^(dioAlign-1))), done: make(chan struct{})}
			select {
			case order <- b:
			case <-stop:
				free <- bp
				return
			}
			jobs <- b
			pos += int64(b.want)
		}
	}()
	defer func() {
		close(stop)
		for b := range order {
			<-b.done
			free <- b.buf
		}
		for range buffers {
			chunkPool.Put(<-free)
		}
	}()
	var done int64
	for b := range order {
		<-b.done
		skip := max(off-b.pos, 0)
		last := min(int64(b.got), end-b.pos)
		err := b.err
		if err == nil && (last <= skip || b.got < b.want && b.pos+int64(b.got) < end) {
			err = io.ErrUnexpectedEOF // the file is shorter than the image
		}
		if err != nil {
			free <- b.buf
			return done, fmt.Errorf("read image data: %w", err)
		}
		m, err := w.Write((*b.buf)[skip:last])
		done += int64(m)
		free <- b.buf
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// readBlock fills b from offset pos (aligned), from the page cache when
// all of it is cached there (cachestat), else with direct I/O. It
// returns fewer bytes only at the end of the file.
func readBlock(bfd, dfd int, b []byte, pos int64) (int, error) {
	fd := dfd
	var cs unix.Cachestat_t
	if unix.Cachestat(uint(bfd), &unix.CachestatRange{Off: uint64(pos), Len: uint64(len(b))}, &cs, 0) == nil &&
		cs.Cache*uint64(os.Getpagesize()) >= uint64(len(b)) {
		fd = bfd
	}
	n := 0
	for n < len(b) {
		m, err := unix.Pread(fd, b[n:], pos+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
		if fd == dfd && n%dioAlign != 0 {
			break // a short direct read ends at the end of the file
		}
	}
	return n, nil
}
