package image

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writeback of the
// range's dirty pages without waiting for it.
const syncFileRangeWrite = 0x2

// writeback writes to f and starts the disk write of every chunk at once,
// so that the fsync that ends an upload waits for the last chunks only
// instead of the whole image (the disk works while the hashes run).
type writeback struct {
	f   *os.File
	raw syscall.RawConn
	off int64
}

func newWriteback(f *os.File) (*writeback, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &writeback{f: f, raw: raw}, nil
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n > 0 {
		off := w.off
		_ = w.raw.Control(func(fd uintptr) {
			// A hint only: on failure the final fsync does all the work.
			_, _, _ = syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
		})
		w.off += int64(n)
	}
	return n, err
}
