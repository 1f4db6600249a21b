package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// bufferSize is the netlink socket buffer for batches: a full host of a
// thousand ports is one atomic batch of some ten megabytes, and the kernel
// answers every message with an acknowledgement.
const bufferSize = 64 << 20

// Dial returns a connection maker for the namespace open as nsFd (-1: the
// process's own), with socket buffers large enough for whole-host batches.
// Connections are lasting (one socket for every request of a Sync, instead
// of one per request); users close them with CloseLasting.
func Dial(nsFd int) func() (*nftables.Conn, error) {
	return func() (*nftables.Conn, error) {
		opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
		if nsFd >= 0 {
			opts = append(opts, nftables.WithNetNSFd(nsFd))
		}
		return nftables.New(opts...)
	}
}

// bigBuffers raises the socket buffers past net.core.{r,w}mem_max (the
// process has CAP_NET_ADMIN, as it needs for nftables anyway).
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, bufferSize); e != nil {
				serr = fmt.Errorf("netlink socket buffer: %w", e)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
