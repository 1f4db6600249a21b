package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// File keeps volumes as files in a directory: sparse raw files (created
// without running anything, so creating an empty volume is cheap) or
// qcow2 files made with qemu-img. Snapshots are sparse copies.
type File struct {
	name   string
	dir    string
	format string
}

// NewFile returns a file backend storing under dir in format ("raw",
// the default, or "qcow2").
func NewFile(name, dir, format string) (*File, error) {
	if format == "" {
		format = "raw"
	}
	if format != "raw" && format != "qcow2" {
		return nil, fmt.Errorf("file backend %s: unknown format %q (raw or qcow2)", name, format)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file backend %s: %w", name, err)
	}
	// Leftovers of an interrupted create are removed.
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return &File{name: name, dir: dir, format: format}, nil
}

func (f *File) Name() string   { return f.name }
func (f *File) Driver() string { return "file" }

// Capacity reports the file system holding the directory; files are
// sparse, so the backend is thin.
func (f *File) Capacity(context.Context) (Capacity, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(f.dir, &st); err != nil {
		return Capacity{}, fmt.Errorf("statfs %s: %w", f.dir, err)
	}
	bs := int64(st.Bsize)
	return Capacity{TotalGB: int64(st.Blocks) * bs / GiB, FreeGB: int64(st.Bavail) * bs / GiB, Thin: true}, nil
}

func (f *File) volPath(id string) string  { return filepath.Join(f.dir, "volume-"+id+"."+f.format) }
func (f *File) snapPath(id string) string { return filepath.Join(f.dir, "snapshot-"+id+"."+f.format) }

// inside checks that a location is a file of this backend.
func (f *File) inside(loc string) error {
	if filepath.Dir(loc) != filepath.Clean(f.dir) {
		return fmt.Errorf("location %q is not in backend %s", loc, f.name)
	}
	return nil
}

func (f *File) Create(ctx context.Context, id string, sizeGB int, src *Source) (string, error) {
	dst := f.volPath(id)
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	if err := f.fill(ctx, tmp, int64(sizeGB)*GiB, src); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return dst, nil
}

func (f *File) fill(ctx context.Context, path string, size int64, src *Source) error {
	if src == nil {
		if f.format == "raw" {
			fh, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if err := fh.Truncate(size); err != nil {
				fh.Close()
				return err
			}
			return fh.Close()
		}
		_, err := run(ctx, "qemu-img", "create", "-q", "-f", f.format, path, strconv.FormatInt(size, 10))
		return err
	}
	vsize, err := VirtualSize(ctx, src.Path, src.Format)
	if err != nil {
		return err
	}
	if vsize > size {
		return fmt.Errorf("source virtual size %d bytes does not fit in a volume of %d bytes: %w", vsize, size, ErrNoSpace)
	}
	srcFmt := src.Format
	if srcFmt == "" {
		srcFmt = "raw"
	}
	if _, err := run(ctx, "qemu-img", "convert", "-q", "-f", srcFmt, "-O", f.format, src.Path, path); err != nil {
		return err
	}
	return f.resize(ctx, path, size)
}

func (f *File) resize(ctx context.Context, path string, size int64) error {
	if f.format == "raw" {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.Size() >= size {
			return nil
		}
		return os.Truncate(path, size)
	}
	vs, err := VirtualSize(ctx, path, f.format)
	if err != nil {
		return err
	}
	if vs >= size {
		return nil
	}
	_, err = run(ctx, "qemu-img", "resize", "-q", "-f", f.format, path, strconv.FormatInt(size, 10))
	return err
}

func (f *File) Delete(_ context.Context, loc string) error {
	if err := f.inside(loc); err != nil {
		return err
	}
	if err := os.Remove(loc); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (f *File) Extend(ctx context.Context, loc string, sizeGB int) error {
	if err := f.inside(loc); err != nil {
		return err
	}
	return f.resize(ctx, loc, int64(sizeGB)*GiB)
}

func (f *File) Snapshot(ctx context.Context, loc, snapID string) (string, error) {
	if err := f.inside(loc); err != nil {
		return "", err
	}
	dst := f.snapPath(snapID)
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	if _, err := run(ctx, "cp", "--sparse=always", "--reflink=auto", loc, tmp); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return dst, nil
}

func (f *File) DeleteSnapshot(ctx context.Context, loc string) error { return f.Delete(ctx, loc) }

func (f *File) Connect(_ context.Context, loc string) (Connection, error) {
	if err := f.inside(loc); err != nil {
		return Connection{}, err
	}
	if _, err := os.Stat(loc); err != nil {
		return Connection{}, err
	}
	return Connection{Type: "local", Path: loc, Format: f.format}, nil
}

// VirtualSize reads the virtual size of an image file with qemu-img.
func VirtualSize(ctx context.Context, path, format string) (int64, error) {
	args := []string{"info", "--output", "json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := run(ctx, "qemu-img", append(args, path)...)
	if err != nil {
		return 0, err
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&info); err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info.VirtualSize, nil
}

// Export writes the data of a volume (conn) to dst in format.
func Export(ctx context.Context, conn Connection, dst, format string) error {
	_, err := run(ctx, "qemu-img", "convert", "-q", "-f", conn.Format, "-O", format, conn.Path, dst)
	return err
}

// ExportCompressed writes a volume's data to dst as a compressed qcow2
// file (backups).
func ExportCompressed(ctx context.Context, conn Connection, dst string) error {
	_, err := run(ctx, "qemu-img", "convert", "-q", "-c", "-f", conn.Format, "-O", "qcow2", conn.Path, dst)
	return err
}

// Import writes a qcow2 file (a backup) into an existing volume.
func Import(ctx context.Context, src *string, conn Connection) error {
	if src == nil {
		return fmt.Errorf("backup has no data")
	}
	_, err := run(ctx, "qemu-img", "convert", "-q", "-n", "-f", "qcow2", "-O", conn.Format, *src, conn.Path)
	return err
}
