package l3

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// sendGARP announces addr on the device ifindex of namespace ns with a
// gratuitous ARP request (sender = target = addr, broadcast), so neighbours
// and switches learn at once that a floating or gateway address moved here.
func sendGARP(ns netns.NsHandle, ifindex int, mac net.HardwareAddr, addr netip.Addr) error {
	if !addr.Is4() || len(mac) != 6 {
		return nil
	}
	ip := addr.As4()
	pkt := make([]byte, 0, 28)
	pkt = append(pkt, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet, IPv4, hlen 6, plen 4, request
	pkt = append(pkt, mac...)
	pkt = append(pkt, ip[:]...)
	pkt = append(pkt, 0, 0, 0, 0, 0, 0)
	pkt = append(pkt, ip[:]...)
	return inNS(ns, func() error {
		proto := htons(unix.ETH_P_ARP)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifindex, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		return unix.Sendto(fd, pkt, 0, to)
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
