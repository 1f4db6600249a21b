package linux

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVLANAddMessage checks the exact RTM_NEWLINK bytes that create an
// 802.1Q sub-interface, attribute by attribute, against the kernel ABI.
func TestVLANAddMessage(t *testing.T) {
	got := vlanAddRequest("eth1.100", 7, 100, 1500).Serialize()
	le := binary.LittleEndian // netlink is host order; these machines are little endian
	var want bytes.Buffer
	attr := func(typ uint16, payload []byte) []byte {
		b := make([]byte, 4, 4+len(payload)+3)
		le.PutUint16(b[0:], uint16(4+len(payload)))
		le.PutUint16(b[2:], typ)
		b = append(b, payload...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	u32 := func(v uint32) []byte { b := make([]byte, 4); le.PutUint32(b, v); return b }
	u16 := func(v uint16) []byte { b := make([]byte, 2); le.PutUint16(b, v); return b }
	var body bytes.Buffer
	body.Write(make([]byte, unix.SizeofIfInfomsg)) // AF_UNSPEC, no index, no flags
	body.Write(attr(unix.IFLA_IFNAME, []byte("eth1.100\x00")))
	body.Write(attr(unix.IFLA_MTU, u32(1500)))
	body.Write(attr(unix.IFLA_LINK, u32(7)))
	info := append(attr(1 /* IFLA_INFO_KIND */, []byte("vlan")), attr(2 /* IFLA_INFO_DATA */, attr(1 /* IFLA_VLAN_ID */, u16(100)))...)
	body.Write(attr(unix.IFLA_LINKINFO, info))
	hdr := make([]byte, unix.SizeofNlMsghdr)
	le.PutUint32(hdr[0:], uint32(unix.SizeofNlMsghdr+body.Len()))
	le.PutUint16(hdr[4:], unix.RTM_NEWLINK)
	le.PutUint16(hdr[6:], unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	want.Write(hdr)
	want.Write(body.Bytes())
	// The sequence number (bytes 8-12) is the socket's business.
	copy(got[8:12], []byte{0, 0, 0, 0})
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("RTM_NEWLINK for a VLAN\n got % x\nwant % x", got, want.Bytes())
	}
}
