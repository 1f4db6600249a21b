package image

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkUploadCeiling measures the most an upload can do on this
// machine whatever the store does with the data: 1 GiB sent over
// loopback TCP with sendfile from a memfd (the lightest load generator),
// read into the upload pipeline's chunks and hashed as an upload is, the
// data then dropped (no HTTP, no file, no database). Sub-benchmarks:
//
//	receive      the socket read alone
//	md5+sha512   Glance's checksum and default os_hash_algo (Kumo's default)
//	md5+sha256   with image.hashing_algorithm: sha256
//	memory/...   the same hashes over an in-memory reader, no socket
//
// cpu-s/GiB is the whole process: sender and receiver.
func BenchmarkUploadCeiling(b *testing.B) {
	const size = 1 << 30
	for _, tc := range []struct {
		name   string
		hashes func() []hash.Hash
		socket bool
	}{
		{"receive", func() []hash.Hash { return nil }, true},
		{"md5+sha512", func() []hash.Hash { return []hash.Hash{md5.New(), sha512.New()} }, true},
		{"md5+sha256", func() []hash.Hash { return []hash.Hash{md5.New(), sha256.New()} }, true},
		{"memory/md5+sha512", func() []hash.Hash { return []hash.Hash{md5.New(), sha512.New()} }, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(size)
			var cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Filling the sender's memfd (1 GiB of new pages) is
				// set-up: off the clock and out of the CPU count.
				b.StopTimer()
				var src io.Reader = &patternReader{n: size}
				var done chan struct{}
				var c net.Conn
				if tc.socket {
					c, done = loopbackSender(b, size)
					src = c
				}
				cpu0 := cpuTime()
				b.StartTimer()
				n, err := pipeline(context.Background(), src, size, io.Discard, tc.hashes()...)
				if err != nil || n != size {
					b.Fatalf("pipeline: %d bytes, %v", n, err)
				}
				if c != nil {
					c.Close()
					<-done // the sender's CPU counts: it ends with the transfer
				}
				b.StopTimer()
				cpu += cpuTime() - cpu0
			}
			b.ReportMetric(cpu.Seconds()/(float64(int64(b.N)*size)/(1<<30)), "cpu-s/GiB")
		})
	}
}

// loopbackSender returns the receiving end of a loopback TCP connection
// whose other end sends n bytes with sendfile from a memfd holding the
// 1 MiB pattern repeated.
func loopbackSender(b *testing.B, n int64) (net.Conn, chan struct{}) {
	b.Helper()
	fd, err := unix.MemfdCreate("ceiling", 0)
	if err != nil {
		b.Skipf("memfd: %v", err)
	}
	mf := os.NewFile(uintptr(fd), "ceiling")
	for off := int64(0); off < n; off += int64(len(pattern)) {
		if _, err := mf.Write(pattern[:min(int64(len(pattern)), n-off)]); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer mf.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = mf.Seek(0, 0)
		_, _ = c.(*net.TCPConn).ReadFrom(mf) // sendfile
	}()
	c, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return c, done
}
