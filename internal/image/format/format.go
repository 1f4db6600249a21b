// Package format inspects disk image files: it detects the format from
// the content (qcow2, vmdk, vhd, vhdx, vdi, iso, raw), reads the virtual
// size, and refuses images whose content is unsafe to hand to a
// hypervisor: qcow2 images that name a backing file or an external data
// file, VMDK images whose extents live in other files, and images whose
// content does not match the disk_format they were declared with. These
// are the problems behind OpenStack's format-inspector advisories
// (OSSA-2024-001, OSSA-2024-002): a qcow2 file that points at
// /etc/shadow as its backing file would otherwise be read by qemu-img or
// the hypervisor on the compute host.
//
// Inspection only reads headers through an io.ReaderAt, so it costs a few
// small reads whatever the image size.
package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format names, as Glance's disk_format values.
const (
	Raw   = "raw"
	QCOW2 = "qcow2"
	VMDK  = "vmdk"
	VHD   = "vhd"
	VHDX  = "vhdx"
	VDI   = "vdi"
	ISO   = "iso"
)

// ErrUnsafe is wrapped by every inspection failure: the data must not be
// accepted as an image of the declared format.
var ErrUnsafe = errors.New("unsafe image")

// Info is what inspection learned about an image.
type Info struct {
	Format      string // detected format; Raw when nothing else matched
	VirtualSize int64  // bytes; equals the file size for raw and iso
}

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsafe, fmt.Sprintf(format, args...))
}

// Detect reads the headers of the image r (size bytes long) and returns
// its format and virtual size. It fails with ErrUnsafe when the content is
// a format Kumo refuses in any case (qcow2 with a backing or data file,
// VMDK with external extents, malformed headers).
func Detect(r io.ReaderAt, size int64) (Info, error) {
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Info{}, fmt.Errorf("read header: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		vs, err := inspectQCOW2(r, head, size)
		return Info{Format: QCOW2, VirtualSize: vs}, err
	case bytes.HasPrefix(head, []byte("KDMV")):
		vs, err := inspectVMDKSparse(r, head)
		return Info{Format: VMDK, VirtualSize: vs}, err
	case bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return Info{Format: VMDK}, unsafef("VMDK descriptor files reference external extents")
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return Info{Format: VHDX, VirtualSize: 0}, nil
	case bytes.HasPrefix(head, []byte("conectix")):
		return Info{Format: VHD, VirtualSize: vhdSize(head)}, nil
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f:
		var vs int64
		if len(head) >= 0x178 {
			vs = int64(binary.LittleEndian.Uint64(head[0x170:]))
		}
		return Info{Format: VDI, VirtualSize: vs}, nil
	}
	if size >= 512 {
		// A fixed VHD has its footer in the last sector only.
		foot := make([]byte, 512)
		if _, err := r.ReadAt(foot, size-512); err == nil && bytes.HasPrefix(foot, []byte("conectix")) {
			return Info{Format: VHD, VirtualSize: vhdSize(foot)}, nil
		}
	}
	if size >= 0x8006 {
		magic := make([]byte, 5)
		if _, err := r.ReadAt(magic, 0x8001); err == nil && string(magic) == "CD001" {
			return Info{Format: ISO, VirtualSize: size}, nil
		}
	}
	return Info{Format: Raw, VirtualSize: size}, nil
}

func vhdSize(footer []byte) int64 {
	if len(footer) < 0x38 {
		return 0
	}
	// Current size of the disk, big endian at offset 48.
	return int64(binary.BigEndian.Uint64(footer[48:]))
}

// Check inspects the image and verifies it against the declared
// disk_format. Formats that Kumo cannot verify from content (ami, ari,
// aki, ploop) are still checked for being one of the dangerous detectable
// formats.
func Check(r io.ReaderAt, size int64, declared string) (Info, error) {
	info, err := Detect(r, size)
	if err != nil {
		return info, err
	}
	switch declared {
	case Raw:
		// A raw disk may hold anything, except another image format that
		// the hypervisor would be asked to interpret as raw bytes (or a
		// user might later re-declare). ISO content is fine as raw.
		if info.Format != Raw && info.Format != ISO {
			return info, unsafef("image content is %s, not the declared raw", info.Format)
		}
		info.VirtualSize = size
	case QCOW2, VMDK, VHD, VHDX, VDI, ISO:
		if info.Format != declared {
			return info, unsafef("image content is %s, not the declared %s", describe(info.Format), declared)
		}
	default:
		// ami, ari, aki, ploop: not inspected beyond refusing content that
		// is a known container format with external references.
		if info.Format == QCOW2 || info.Format == VMDK {
			return info, unsafef("image content is %s, not the declared %s", info.Format, declared)
		}
		info.VirtualSize = 0
	}
	return info, nil
}

func describe(f string) string {
	if f == Raw {
		return "not a recognised image format"
	}
	return f
}

// qcow2 header layout (big endian):
//
//	0  magic            4
//	4  version          4
//	8  backing_file_offset 8
//	16 backing_file_size   4
//	20 cluster_bits     4
//	24 size             8
//	32 crypt_method     4
//	...
//	72 incompatible_features 8 (v3)
//	80 compatible_features   8 (v3)
//	88 autoclear_features    8 (v3)
//	96 refcount_order        4 (v3)
//	100 header_length        4 (v3)
const (
	qcowExtEnd      = 0x00000000
	qcowExtDataFile = 0x44415441 // "DATA": external data file name
	qcowIncDataFile = 1 << 2     // incompatible feature: external data file
	qcowKnownInc    = 0x1f       // dirty, corrupt, data file, compression type, extended L2
)

func inspectQCOW2(r io.ReaderAt, head []byte, fileSize int64) (int64, error) {
	if len(head) < 72 {
		return 0, unsafef("qcow2 header is truncated")
	}
	be := binary.BigEndian
	version := be.Uint32(head[4:])
	if version != 2 && version != 3 {
		return 0, unsafef("unsupported qcow2 version %d", version)
	}
	if off := be.Uint64(head[8:]); off != 0 || be.Uint32(head[16:]) != 0 {
		return 0, unsafef("qcow2 images with a backing file are not allowed")
	}
	cb := be.Uint32(head[20:])
	if cb < 9 || cb > 21 {
		return 0, unsafef("qcow2 cluster size 2^%d is invalid", cb)
	}
	vsize := be.Uint64(head[24:])
	if vsize > 1<<62 {
		return 0, unsafef("qcow2 virtual size %d is invalid", vsize)
	}
	hdrLen := uint32(72)
	if version == 3 {
		if len(head) < 104 {
			return 0, unsafef("qcow2 header is truncated")
		}
		inc := be.Uint64(head[72:])
		if inc&qcowIncDataFile != 0 {
			return 0, unsafef("qcow2 images with an external data file are not allowed")
		}
		if inc&^uint64(qcowKnownInc) != 0 {
			return 0, unsafef("qcow2 image uses unknown incompatible features %#x", inc)
		}
		hdrLen = be.Uint32(head[100:])
		if hdrLen < 104 || hdrLen > 1<<cb {
			return 0, unsafef("qcow2 header length %d is invalid", hdrLen)
		}
	}
	// Walk the header extensions, which end at the first cluster.
	clusterSize := int64(1) << cb
	off := int64(hdrLen)
	var ext [8]byte
	for i := 0; i < 1024; i++ {
		if off+8 > clusterSize || off+8 > fileSize {
			break
		}
		if _, err := r.ReadAt(ext[:], off); err != nil {
			break
		}
		typ, length := be.Uint32(ext[0:]), be.Uint32(ext[4:])
		if typ == qcowExtEnd {
			break
		}
		if typ == qcowExtDataFile {
			return 0, unsafef("qcow2 images with an external data file are not allowed")
		}
		off += 8 + int64((length+7)&^7)
	}
	return int64(vsize), nil
}

// VMDK sparse extent header (little endian): magic, version, flags,
// capacity (sectors) at 12, grainSize at 20, descriptorOffset at 28,
// descriptorSize at 36.
func inspectVMDKSparse(r io.ReaderAt, head []byte) (int64, error) {
	if len(head) < 44 {
		return 0, unsafef("vmdk header is truncated")
	}
	le := binary.LittleEndian
	capacity := le.Uint64(head[12:])
	descOff := le.Uint64(head[28:])
	descSize := le.Uint64(head[36:])
	if descOff == 0 || descSize == 0 {
		// streamOptimized images may keep no embedded descriptor.
		return int64(capacity * 512), nil
	}
	if descSize > 2048 { // sectors: 1 MiB is far more than any descriptor
		return 0, unsafef("vmdk descriptor is too large")
	}
	desc := make([]byte, descSize*512)
	n, err := r.ReadAt(desc, int64(descOff*512))
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read vmdk descriptor: %w", err)
	}
	desc = bytes.TrimRight(desc[:n], "\x00")
	createType := ""
	extents := 0
	for _, line := range strings.Split(string(desc), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "createType="); ok {
			createType = strings.Trim(v, `"`)
		}
		if strings.HasPrefix(line, "RW ") || strings.HasPrefix(line, "RDONLY ") || strings.HasPrefix(line, "NOACCESS ") {
			extents++
			if extents > 1 {
				return 0, unsafef("vmdk images with more than one extent are not allowed")
			}
		}
	}
	if createType != "monolithicSparse" && createType != "streamOptimized" {
		return 0, unsafef("vmdk create type %q is not allowed", createType)
	}
	return int64(capacity * 512), nil
}
