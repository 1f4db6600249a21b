//go:build !linux

package image

import "os"

// writeback is a plain file writer where sync_file_range does not exist.
type writeback struct{ f *os.File }

func newWriteback(f *os.File) (*writeback, error) { return &writeback{f: f}, nil }

func (w *writeback) Write(p []byte) (int, error) { return w.f.Write(p) }
