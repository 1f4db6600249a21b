package bench

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// imageSource returns size bytes of block repeated as an in-memory file
// (memfd): net/http sends an *os.File body with sendfile(2), so the load
// generator does no per-byte work in user space and the disk is left to
// the server. close releases the memory.
func imageSource(block []byte, size int64) (body io.Reader, close func(), err error) {
	fd, err := unix.MemfdCreate("kumo-bench-image", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "kumo-bench-image")
	for left := size; left > 0; {
		n, err := f.Write(block[:min(int64(len(block)), left)])
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("fill memfd: %w", err)
		}
		left -= int64(n)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// loadAvg is the 1-minute load average, or -1 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return -1
	}
	return l
}
