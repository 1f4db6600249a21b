package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// Cold migration (virt.DiskMigrator). The disks that move are the root
// overlay and the ephemeral disks: the root stays a qcow2 overlay, and the
// destination rebases it onto its own cached copy of the same image
// (downloaded and verified by hash by its image cache), so only what the
// guest wrote travels. Swap and the config drive are made afresh on the
// destination, as at spawn.
var migratedDisks = func() []string {
	out := []string{"disk.qcow2"}
	for n := range maxEphemerals {
		out = append(out, ephemeralFile(n))
	}
	return out
}()

// ExportDisks lists the root and ephemeral disks of a shut-down instance
// with their sizes and SHA-256.
func (d *Driver) ExportDisks(ctx context.Context, uuid string) ([]virt.DiskFile, error) {
	h, rec, st, err := d.lockState(ctx, uuid)
	if err != nil {
		return nil, err
	}
	defer h.unlock()
	if st != virt.Shutdown || rec.Rescue != nil {
		return nil, errState("export disks of", uuid, st)
	}
	var out []virt.DiskFile
	for _, name := range migratedDisks {
		p := d.path(uuid, name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("qemu export %s: %w", uuid, err)
		}
		sum, err := fileSHA256(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("qemu export %s: %w", uuid, err)
		}
		f := virt.DiskFile{Name: name, Size: fi.Size(), SHA256: sum}
		if name == "disk.qcow2" && rec.Instance.Image.Path != "" {
			if rec.Instance.Image.ID == "" {
				return nil, fmt.Errorf("qemu export %s: the root disk's backing image has no id", uuid)
			}
			f.BackingImage = rec.Instance.Image.ID
		}
		out = append(out, f)
	}
	return out, nil
}

// OpenDisk opens an exported disk of an instance.
func (d *Driver) OpenDisk(ctx context.Context, uuid, name string) (virt.DiskReader, error) {
	if !validUUID(uuid) || !slices.Contains(migratedDisks, name) {
		return nil, fmt.Errorf("disk %q of %q: %w", name, uuid, virt.ErrNotFound)
	}
	f, err := os.Open(d.path(uuid, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("disk %s of %s: %w", name, uuid, virt.ErrNotFound)
	}
	return f, err
}

// SpawnMigrated creates the instance from copies of its disks, checked
// against the size and SHA-256 the source reported, rebases the root
// overlay onto the local copy of its image, grows the disks to the
// flavor and starts the guest (unless stopped).
func (d *Driver) SpawnMigrated(ctx context.Context, inst *virt.Instance, disks []virt.DiskFile,
	fetch func(context.Context, virt.DiskFile, io.WriterAt) error, stopped bool) error {
	if inst == nil || !validUUID(inst.UUID) {
		return fmt.Errorf("qemu spawn: instance needs a uuid")
	}
	uuid := inst.UUID
	return d.spawn(ctx, inst, stopped, func() error {
		have := map[string]bool{}
		for _, f := range disks {
			if !slices.Contains(migratedDisks, f.Name) || have[f.Name] {
				return fmt.Errorf("qemu spawn %s: unexpected migrated disk %q", uuid, f.Name)
			}
			have[f.Name] = true
			p := d.path(uuid, f.Name)
			if err := receiveDisk(ctx, p, f, fetch); err != nil {
				return fmt.Errorf("qemu spawn %s: copy %s from the source host: %w", uuid, f.Name, err)
			}
			if f.BackingImage == "" {
				continue
			}
			if f.BackingImage != inst.Image.ID || inst.Image.Path == "" {
				return fmt.Errorf("qemu spawn %s: %s is an overlay of image %s, but the instance's image here is %q",
					uuid, f.Name, f.BackingImage, inst.Image.ID)
			}
			if err := d.rebase(ctx, inst.Image, p); err != nil {
				return fmt.Errorf("qemu spawn %s: %w", uuid, err)
			}
		}
		if !have["disk.qcow2"] {
			return fmt.Errorf("qemu spawn %s: the source sent no root disk", uuid)
		}
		if err := d.growTo(ctx, d.path(uuid, "disk.qcow2"), int64(inst.RootGB)*gib); err != nil {
			return fmt.Errorf("qemu spawn %s: root disk: %w", uuid, err)
		}
		if len(inst.Ephemerals) > 0 {
			// A mapping's ephemeral disks arrive as they were (a resize
			// keeps them); one the source did not send is made blank.
			for n, e := range inst.Ephemerals {
				if have[ephemeralFile(n)] {
					continue
				}
				if err := d.createEphemeral(ctx, uuid, n, e.SizeGB); err != nil {
					return fmt.Errorf("qemu spawn %s: %w", uuid, err)
				}
			}
			return nil
		}
		eph := d.path(uuid, ephemeralFile(0))
		switch {
		case have[ephemeralFile(0)]:
			if err := d.growTo(ctx, eph, int64(inst.EphemeralGB)*gib); err != nil {
				return fmt.Errorf("qemu spawn %s: ephemeral disk: %w", uuid, err)
			}
			if inst.EphemeralGB == 0 { // disks never shrink: keep the guest's
				size, err := d.virtualSize(ctx, eph)
				if err != nil {
					return fmt.Errorf("qemu spawn %s: ephemeral disk: %w", uuid, err)
				}
				inst.EphemeralGB = int((size + gib - 1) / gib)
			}
		case inst.EphemeralGB > 0:
			if _, err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", eph, strconv.Itoa(inst.EphemeralGB)+"G"); err != nil {
				return fmt.Errorf("qemu spawn %s: ephemeral disk: %w", uuid, err)
			}
		}
		return nil
	})
}

// receiveDisk fills a new file at p through fetch and checks it.
func receiveDisk(ctx context.Context, p string, f virt.DiskFile, fetch func(context.Context, virt.DiskFile, io.WriterAt) error) error {
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := out.Truncate(f.Size); err != nil {
		out.Close()
		return err
	}
	if err := fetch(ctx, f, out); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(ctx, p)
	if err != nil {
		return err
	}
	if fi.Size() != f.Size || sum != f.SHA256 {
		return fmt.Errorf("copy does not match the source (size %d, sha256 %s; want %d, %s)", fi.Size(), sum, f.Size, f.SHA256)
	}
	return nil
}

// rebase points an overlay at the local copy of its backing image. The
// content is the same image (the cache verified its hash), so the unsafe
// rebase, which rewrites only the header, is exact.
func (d *Driver) rebase(ctx context.Context, img virt.Image, overlay string) error {
	base, format, err := backingImage(img)
	if err != nil {
		return err
	}
	if _, err := d.qemuImg(ctx, "rebase", "-u", "-f", "qcow2", "-F", format, "-b", base, overlay); err != nil {
		return fmt.Errorf("rebase %s onto image %s: %w", filepath.Base(overlay), img.ID, err)
	}
	return nil
}

// growTo grows a qcow2 disk to want bytes; a larger disk is left alone.
func (d *Driver) growTo(ctx context.Context, path string, want int64) error {
	if want <= 0 {
		return nil
	}
	size, err := d.virtualSize(ctx, path)
	if err != nil {
		return err
	}
	if want <= size {
		return nil
	}
	_, err = d.qemuImg(ctx, "resize", "-q", path, strconv.FormatInt(want, 10))
	return err
}

func fileSHA256(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ virt.DiskMigrator = (*Driver)(nil)
