//go:build !linux

package image

import (
	"io"
	"os"
)

// dataFile writes an image data file with plain buffered writes where
// O_DIRECT and sync_file_range do not exist.
type dataFile struct {
	f   *os.File
	off int64
}

func newDataFile(f *os.File, _ bool) (*dataFile, error) { return &dataFile{f: f}, nil }

func (d *dataFile) writers() int { return 1 }

func (d *dataFile) writeAt(p []byte, off int64) error {
	_, err := d.f.WriteAt(p, off)
	return err
}

func (d *dataFile) Write(p []byte) (int, error) {
	n, err := d.f.WriteAt(p, d.off)
	d.off += int64(n)
	return n, err
}

func (d *dataFile) finish(size int64) error {
	if err := d.f.Truncate(size); err != nil {
		return err
	}
	return d.f.Sync()
}

func copyData(w io.Writer, f *os.File, off, n int64, _ bool) (int64, error) {
	return copyBuffered(w, f, off, n)
}
