package nft

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// flushPorts deletes the connection-tracking entries from or to the
// addresses of ports whose allowed traffic shrank, so that connections the
// new rules no longer allow stop: the next packet of a flow is tracked anew
// (TCP mid-stream pickup) and judged by the current rules, which let the
// still-allowed flows continue.
func flushPorts(nsFd int, ports []Port) error {
	var v4, v6 []netlink.CustomConntrackFilter
	add := func(p netip.Prefix) error {
		for _, typ := range []netlink.ConntrackFilterType{netlink.ConntrackOrigSrcIP, netlink.ConntrackOrigDstIP} {
			f := &netlink.ConntrackFilter{}
			n := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
			if err := f.AddIPNet(typ, n); err != nil {
				return err
			}
			if p.Addr().Is4() {
				v4 = append(v4, f)
			} else {
				v6 = append(v6, f)
			}
		}
		return nil
	}
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			if a, err := netip.ParseAddr(ip); err == nil {
				if err := add(netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())); err != nil {
					return err
				}
			}
		}
		for _, ap := range p.AllowedAddressPairs {
			if pr, err := parsePrefix(ap.IPAddress); err == nil {
				if err := add(pr); err != nil {
					return err
				}
			}
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil
	}
	var h *netlink.Handle
	var err error
	if nsFd >= 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(nsFd))
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return err
	}
	defer h.Close()
	if len(v4) > 0 {
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, v4...); err != nil {
			return fmt.Errorf("flush IPv4 conntrack: %w", err)
		}
	}
	if len(v6) > 0 {
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET6, v6...); err != nil {
			return fmt.Errorf("flush IPv6 conntrack: %w", err)
		}
	}
	return nil
}
