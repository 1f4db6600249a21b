package linux

import (
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// vlanAddRequest is the RTM_NEWLINK message creating an 802.1Q
// sub-interface: name, MTU, the parent's index (IFLA_LINK) and the VLAN id
// in IFLA_LINKINFO/IFLA_INFO_DATA. Kumo builds it itself (rather than
// through netlink.LinkAdd) so that the exact bytes sent are testable on
// kernels without 8021q.
func vlanAddRequest(name string, parentIndex, vid, mtu int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	if mtu > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	req.AddData(nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(parentIndex))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("vlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_VLAN_ID, nl.Uint16Attr(uint16(vid)))
	req.AddData(info)
	return req
}
