package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// QCOW2Options describe a crafted qcow2 header for tests.
type qcowOpts struct {
	version     uint32
	backingOff  uint64
	backingSize uint32
	clusterBits uint32
	virtualSize uint64
	incompat    uint64
	exts        [][2]any // {type uint32, data []byte}
	headerLen   uint32
	pad         int
}

func craftQCOW2(o qcowOpts) []byte {
	if o.version == 0 {
		o.version = 3
	}
	if o.clusterBits == 0 {
		o.clusterBits = 16
	}
	hl := uint32(72)
	if o.version == 3 {
		hl = 104
		if o.headerLen != 0 {
			hl = o.headerLen
		}
	}
	b := make([]byte, hl)
	be := binary.BigEndian
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], o.version)
	be.PutUint64(b[8:], o.backingOff)
	be.PutUint32(b[16:], o.backingSize)
	be.PutUint32(b[20:], o.clusterBits)
	be.PutUint64(b[24:], o.virtualSize)
	if o.version == 3 {
		be.PutUint64(b[72:], o.incompat)
		be.PutUint32(b[96:], 4)
		be.PutUint32(b[100:], hl)
	}
	for _, e := range o.exts {
		data := e[1].([]byte)
		var h [8]byte
		be.PutUint32(h[0:], e[0].(uint32))
		be.PutUint32(h[4:], uint32(len(data)))
		b = append(b, h[:]...)
		b = append(b, data...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	b = append(b, make([]byte, 8)...) // end extension
	if o.pad > 0 {
		b = append(b, make([]byte, o.pad)...)
	}
	return b
}

func isoImage() []byte {
	b := make([]byte, 0x8800)
	copy(b[0x8001:], "CD001")
	return b
}

func vmdkSparse(createType string, extents int) []byte {
	b := make([]byte, 4096)
	le := binary.LittleEndian
	copy(b, "KDMV")
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[12:], 2048) // capacity in sectors
	le.PutUint64(b[28:], 1)    // descriptor at sector 1
	le.PutUint64(b[36:], 2)    // 2 sectors
	desc := "# Disk DescriptorFile\nversion=1\ncreateType=\"" + createType + "\"\n"
	for i := 0; i < extents; i++ {
		desc += "RW 2048 SPARSE \"disk.vmdk\"\n"
	}
	copy(b[512:], desc)
	return b
}

func TestCheck(t *testing.T) {
	be := binary.BigEndian
	vhdFixed := make([]byte, 4096)
	copy(vhdFixed[4096-512:], "conectix")
	be.PutUint64(vhdFixed[4096-512+48:], 3584)
	vhdx := append([]byte("vhdxfile"), make([]byte, 1024)...)
	vdi := make([]byte, 1024)
	binary.LittleEndian.PutUint32(vdi[0x40:], 0xbeda107f)
	binary.LittleEndian.PutUint64(vdi[0x170:], 1<<30)
	mbr := make([]byte, 2048)
	mbr[510], mbr[511] = 0x55, 0xaa

	tests := []struct {
		name     string
		data     []byte
		declared string
		wantErr  string // substring; empty means accepted
		wantFmt  string
		wantVS   int64
	}{
		{"qcow2 v3 ok", craftQCOW2(qcowOpts{virtualSize: 1 << 30}), "qcow2", "", "qcow2", 1 << 30},
		{"qcow2 v2 ok", craftQCOW2(qcowOpts{version: 2, virtualSize: 5 << 20}), "qcow2", "", "qcow2", 5 << 20},
		{"qcow2 backing file", craftQCOW2(qcowOpts{backingOff: 0x200, backingSize: 11, virtualSize: 1 << 20}), "qcow2", "backing file", "", 0},
		{"qcow2 backing size only", craftQCOW2(qcowOpts{backingSize: 11}), "qcow2", "backing file", "", 0},
		{"qcow2 data-file feature bit", craftQCOW2(qcowOpts{incompat: 1 << 2}), "qcow2", "external data file", "", 0},
		{"qcow2 data-file extension", craftQCOW2(qcowOpts{exts: [][2]any{{uint32(0xe2792aca), []byte("qcow2")}, {uint32(0x44415441), []byte("/etc/shadow")}}}), "qcow2", "external data file", "", 0},
		{"qcow2 harmless extension", craftQCOW2(qcowOpts{exts: [][2]any{{uint32(0xe2792aca), []byte("qcow2")}}, virtualSize: 4096}), "qcow2", "", "qcow2", 4096},
		{"qcow2 unknown incompatible", craftQCOW2(qcowOpts{incompat: 1 << 40}), "qcow2", "unknown incompatible", "", 0},
		{"qcow2 bad version", craftQCOW2(qcowOpts{version: 7}), "qcow2", "version", "", 0},
		{"qcow2 bad cluster bits", craftQCOW2(qcowOpts{clusterBits: 40}), "qcow2", "cluster", "", 0},
		{"qcow2 truncated", []byte("QFI\xfb\x00\x00\x00\x03"), "qcow2", "truncated", "", 0},
		{"qcow2 declared raw", craftQCOW2(qcowOpts{virtualSize: 1 << 20}), "raw", "not the declared raw", "", 0},
		{"qcow2 declared vmdk", craftQCOW2(qcowOpts{}), "vmdk", "not the declared vmdk", "", 0},
		{"qcow2 declared ami", craftQCOW2(qcowOpts{}), "ami", "not the declared ami", "", 0},
		{"raw declared qcow2", bytes.Repeat([]byte{1}, 4096), "qcow2", "not a recognised image format", "", 0},
		{"raw ok", bytes.Repeat([]byte{1}, 4096), "raw", "", "raw", 4096},
		{"mbr raw ok", mbr, "raw", "", "raw", 2048},
		{"empty raw ok", nil, "raw", "", "raw", 0},
		{"iso ok", isoImage(), "iso", "", "iso", 0x8800},
		{"iso as raw ok", isoImage(), "raw", "", "iso", 0x8800},
		{"raw declared iso", bytes.Repeat([]byte{0}, 0x9000), "iso", "not the declared iso", "", 0},
		{"vmdk sparse ok", vmdkSparse("monolithicSparse", 1), "vmdk", "", "vmdk", 2048 * 512},
		{"vmdk stream ok", vmdkSparse("streamOptimized", 1), "vmdk", "", "vmdk", 2048 * 512},
		{"vmdk flat refused", vmdkSparse("monolithicFlat", 1), "vmdk", "create type", "", 0},
		{"vmdk two extents", vmdkSparse("monolithicSparse", 2), "vmdk", "more than one extent", "", 0},
		{"vmdk descriptor file", []byte("# Disk DescriptorFile\ncreateType=\"vmfs\"\nRW 10 VMFS \"/etc/passwd\"\n"), "vmdk", "external extents", "", 0},
		{"vmdk declared raw", vmdkSparse("monolithicSparse", 1), "raw", "not the declared raw", "", 0},
		{"vhd fixed ok", vhdFixed, "vhd", "", "vhd", 3584},
		{"vhd declared raw", vhdFixed, "raw", "not the declared raw", "", 0},
		{"vhdx ok", vhdx, "vhdx", "", "vhdx", 0},
		{"vhdx declared vhd", vhdx, "vhd", "not the declared vhd", "", 0},
		{"vdi ok", vdi, "vdi", "", "vdi", 1 << 30},
		{"ami unchecked", bytes.Repeat([]byte{7}, 100), "ami", "", "raw", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Check(bytes.NewReader(tc.data), int64(len(tc.data)), tc.declared)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrUnsafe) || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
					t.Fatalf("err = %v, want ErrUnsafe containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if info.Format != tc.wantFmt || info.VirtualSize != tc.wantVS {
				t.Fatalf("got %+v, want format %s virtual size %d", info, tc.wantFmt, tc.wantVS)
			}
		})
	}
}
