package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// LVM keeps volumes as logical volumes of an existing volume group:
// thin volumes in ThinPool when set (snapshots are then thin snapshots),
// thick ones otherwise (snapshots are then full copies, so a volume and
// its snapshots stay independent). It runs the lvm2 commands.
type LVM struct {
	name     string
	vg       string
	thinPool string
}

// NewLVM returns an LVM backend on volume group vg; thinPool names a thin
// pool LV in it, or "" for thick volumes. The group must exist.
func NewLVM(ctx context.Context, name, vg, thinPool string) (*LVM, error) {
	if vg == "" {
		return nil, fmt.Errorf("lvm backend %s: no volume group", name)
	}
	if _, err := run(ctx, "vgs", "--noheadings", "-o", "vg_name", vg); err != nil {
		return nil, fmt.Errorf("lvm backend %s: %w", name, err)
	}
	l := &LVM{name: name, vg: vg, thinPool: thinPool}
	if thinPool != "" {
		if !l.exists(ctx, thinPool) {
			return nil, fmt.Errorf("lvm backend %s: thin pool %s/%s not found", name, vg, thinPool)
		}
	}
	return l, nil
}

func (l *LVM) Name() string   { return l.name }
func (l *LVM) Driver() string { return "lvm" }

func bytesOf(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "B"))
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	return strconv.ParseInt(s, 10, 64)
}

func (l *LVM) Capacity(ctx context.Context) (Capacity, error) {
	if l.thinPool != "" {
		out, err := run(ctx, "lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", ",", "-o", "lv_size,data_percent", l.vg+"/"+l.thinPool)
		if err != nil {
			return Capacity{}, err
		}
		size, pct, _ := strings.Cut(out, ",")
		total, err := bytesOf(size)
		if err != nil {
			return Capacity{}, fmt.Errorf("lvs: size %q: %w", size, err)
		}
		used, _ := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		free := int64(float64(total) * (100 - used) / 100)
		return Capacity{TotalGB: total / GiB, FreeGB: free / GiB, Thin: true}, nil
	}
	out, err := run(ctx, "vgs", "--noheadings", "--units", "b", "--nosuffix", "--separator", ",", "-o", "vg_size,vg_free", l.vg)
	if err != nil {
		return Capacity{}, err
	}
	size, free, _ := strings.Cut(out, ",")
	t, err1 := bytesOf(size)
	f, err2 := bytesOf(free)
	if err1 != nil || err2 != nil {
		return Capacity{}, fmt.Errorf("vgs: unexpected output %q", out)
	}
	return Capacity{TotalGB: t / GiB, FreeGB: f / GiB}, nil
}

func (l *LVM) exists(ctx context.Context, lv string) bool {
	_, err := run(ctx, "lvs", "--noheadings", "-o", "lv_name", l.vg+"/"+lv)
	return err == nil
}

func (l *LVM) lvOf(loc string) (string, error) {
	vg, lv, ok := strings.Cut(loc, "/")
	if !ok || vg != l.vg || lv == "" || strings.Contains(lv, "/") {
		return "", fmt.Errorf("location %q is not in backend %s", loc, l.name)
	}
	return lv, nil
}

func (l *LVM) remove(ctx context.Context, lv string) error {
	if !l.exists(ctx, lv) {
		return nil
	}
	_, err := run(ctx, "lvremove", "-f", "-y", l.vg+"/"+lv)
	return err
}

func (l *LVM) create(ctx context.Context, lv string, size int64) error {
	args := []string{"-y", "-W", "n", "-Z", "n", "-n", lv}
	if l.thinPool != "" {
		args = append(args, "-V", strconv.FormatInt(size, 10)+"b", "--thinpool", l.thinPool, l.vg)
	} else {
		args = append(args, "-L", strconv.FormatInt(size, 10)+"b", l.vg)
	}
	if _, err := run(ctx, "lvcreate", args...); err != nil {
		if strings.Contains(err.Error(), "insufficient free space") || strings.Contains(err.Error(), "Insufficient") {
			return fmt.Errorf("%w: %v", ErrNoSpace, err)
		}
		return err
	}
	return nil
}

func (l *LVM) dev(lv string) string { return "/dev/" + l.vg + "/" + lv }

func (l *LVM) Create(ctx context.Context, id string, sizeGB int, src *Source) (string, error) {
	lv := "volume-" + id
	if err := l.remove(ctx, lv); err != nil {
		return "", err
	}
	size := int64(sizeGB) * GiB
	if src != nil {
		vsize, err := VirtualSize(ctx, src.Path, src.Format)
		if err != nil {
			return "", err
		}
		if vsize > size {
			return "", fmt.Errorf("source virtual size %d bytes does not fit in a volume of %d bytes: %w", vsize, size, ErrNoSpace)
		}
	}
	if err := l.create(ctx, lv, size); err != nil {
		return "", err
	}
	if src == nil {
		if l.thinPool == "" {
			// A thick LV holds whatever was on the disk before: a new
			// volume must not show another tenant's data.
			if _, err := run(ctx, "blkdiscard", "-z", l.dev(lv)); err != nil {
				_ = l.remove(ctx, lv)
				return "", err
			}
		}
		return l.vg + "/" + lv, nil
	}
	f := src.Format
	if f == "" {
		f = "raw"
	}
	if _, err := run(ctx, "qemu-img", "convert", "-q", "-n", "-f", f, "-O", "raw", src.Path, l.dev(lv)); err != nil {
		_ = l.remove(ctx, lv)
		return "", err
	}
	return l.vg + "/" + lv, nil
}

func (l *LVM) Delete(ctx context.Context, loc string) error {
	lv, err := l.lvOf(loc)
	if err != nil {
		return err
	}
	return l.remove(ctx, lv)
}

func (l *LVM) Extend(ctx context.Context, loc string, sizeGB int) error {
	lv, err := l.lvOf(loc)
	if err != nil {
		return err
	}
	out, err := run(ctx, "lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size", loc)
	if err != nil {
		return err
	}
	cur, err := bytesOf(out)
	if err != nil {
		return fmt.Errorf("lvs size %q: %w", out, err)
	}
	size := int64(sizeGB) * GiB
	if cur >= size {
		return nil
	}
	_, err = run(ctx, "lvextend", "-L", strconv.FormatInt(size, 10)+"b", l.vg+"/"+lv)
	return err
}

func (l *LVM) Snapshot(ctx context.Context, loc, snapID string) (string, error) {
	lv, err := l.lvOf(loc)
	if err != nil {
		return "", err
	}
	snap := "snapshot-" + snapID
	if err := l.remove(ctx, snap); err != nil {
		return "", err
	}
	if l.thinPool != "" {
		if _, err := run(ctx, "lvcreate", "-y", "-s", "-kn", "-n", snap, l.vg+"/"+lv); err != nil {
			return "", err
		}
		return l.vg + "/" + snap, nil
	}
	out, err := run(ctx, "lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size", loc)
	if err != nil {
		return "", err
	}
	size, err := bytesOf(out)
	if err != nil {
		return "", err
	}
	if err := l.create(ctx, snap, size); err != nil {
		return "", err
	}
	if _, err := run(ctx, "qemu-img", "convert", "-q", "-n", "-f", "raw", "-O", "raw", l.dev(lv), l.dev(snap)); err != nil {
		_ = l.remove(ctx, snap)
		return "", err
	}
	return l.vg + "/" + snap, nil
}

func (l *LVM) DeleteSnapshot(ctx context.Context, loc string) error { return l.Delete(ctx, loc) }

func (l *LVM) Connect(ctx context.Context, loc string) (Connection, error) {
	lv, err := l.lvOf(loc)
	if err != nil {
		return Connection{}, err
	}
	if !l.exists(ctx, lv) {
		return Connection{}, fmt.Errorf("logical volume %s not found", loc)
	}
	return Connection{Type: "local", Path: l.dev(lv), Format: "raw"}, nil
}
