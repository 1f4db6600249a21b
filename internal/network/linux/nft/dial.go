package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
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

// NewNSSyncer returns a Syncer for the namespace open as nsFd (-1: the
// process's own) that reads rules back with one dump per table.
func NewNSSyncer(nsFd int) *Syncer {
	s := NewSyncer(Dial(nsFd))
	s.dumpRules = func(family nftables.TableFamily, table string) (map[string][]string, error) {
		return dumpRuleKeys(nsFd, family, table)
	}
	return s
}

// dumpRuleKeys reads the rule keys (comments) of every chain of a table in
// one netlink dump; the library can only dump one chain at a time.
func dumpRuleKeys(nsFd int, family nftables.TableFamily, table string) (map[string][]string, error) {
	cfg := &netlink.Config{}
	if nsFd >= 0 {
		cfg.NetNS = nsFd
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := bigBuffers(c); err != nil {
		return nil, err
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: []byte(table + "\x00")}})
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE), Flags: netlink.Request | netlink.Dump},
		Data:   append([]byte{byte(family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return nil, fmt.Errorf("dump rules of %s: %w", table, err)
	}
	keys := map[string][]string{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		var chain string
		var udata []byte
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_USERDATA:
				udata = ad.Bytes()
			}
		}
		if ad.Err() != nil {
			return nil, ad.Err()
		}
		k, _ := userdata.GetString(udata, userdata.TypeComment)
		keys[chain] = append(keys[chain], k)
	}
	return keys, nil
}
