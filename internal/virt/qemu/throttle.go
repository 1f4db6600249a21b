package qemu

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// I/O throttling of a disk, from the front-end QoS spec of its volume.
//
// A throttled disk is three things instead of one: a throttle-group
// object holding the limits (tg-<id>), the format node (<id>-f), and a
// throttle filter node on top of it named <id>, which the device uses.
// The same shape serves the command line (boot, restart, boot from
// volume) and hot-plug (object-add + blockdev-add), so a disk looks the
// same however it was plugged. block_set_io_throttle would need a
// -drive (legacy) or an already-running guest; the filter does not.

// throttleKeys maps Cinder's (and Nova's libvirt driver's) QoS keys to
// QEMU's ThrottleLimits members, in the order they are rendered.
var throttleKeys = [][2]string{
	{"total_bytes_sec", "bps-total"},
	{"read_bytes_sec", "bps-read"},
	{"write_bytes_sec", "bps-write"},
	{"total_iops_sec", "iops-total"},
	{"read_iops_sec", "iops-read"},
	{"write_iops_sec", "iops-write"},
	{"total_bytes_sec_max", "bps-total-max"},
	{"read_bytes_sec_max", "bps-read-max"},
	{"write_bytes_sec_max", "bps-write-max"},
	{"total_iops_sec_max", "iops-total-max"},
	{"read_iops_sec_max", "iops-read-max"},
	{"write_iops_sec_max", "iops-write-max"},
	{"size_iops_sec", "iops-size"},
}

// maxLimit is the largest limit QEMU accepts (THROTTLE_VALUE_MAX).
const maxLimit = 1_000_000_000_000_000

// Throttle is the I/O limits of one disk: QEMU's ThrottleLimits members
// and their values (zero or absent: no limit).
type Throttle struct {
	Limits map[string]int64 `json:"limits"`
	// bad is why the QoS spec could not be read (Args and hot-plug
	// refuse such a disk).
	bad string
}

// throttleOf reads a volume's QoS spec; nil when it limits nothing.
// Keys QEMU has no limit for (a backend's keys) are ignored, as Nova
// ignores them.
func throttleOf(qos map[string]string) *Throttle {
	t := &Throttle{Limits: map[string]int64{}}
	for _, kv := range throttleKeys {
		v, ok := qos[kv[0]]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			t.bad = fmt.Sprintf("%s: %q is not a count", kv[0], v)
			return t
		}
		if n > 0 {
			t.Limits[kv[1]] = n
		}
	}
	if len(t.Limits) == 0 {
		return nil
	}
	return t
}

// validate applies QEMU's rules (throttle_is_valid) before QEMU does, so
// that a bad spec fails with a message naming the spec's keys.
func (t *Throttle) validate() error {
	if t == nil {
		return nil
	}
	if t.bad != "" {
		return fmt.Errorf("qos specs: %s", t.bad)
	}
	l := t.Limits
	for _, kind := range []string{"bps", "iops"} {
		if l[kind+"-total"] > 0 && (l[kind+"-read"] > 0 || l[kind+"-write"] > 0) {
			return fmt.Errorf("qos specs: total_%s_sec cannot be used with read_%[1]s_sec or write_%[1]s_sec", cinderUnit(kind))
		}
		for _, dir := range []string{"total", "read", "write"} {
			base, burst := l[kind+"-"+dir], l[kind+"-"+dir+"-max"]
			if burst > 0 && burst < base {
				return fmt.Errorf("qos specs: %s_%s_sec_max cannot be lower than %[1]s_%[2]s_sec", dir, cinderUnit(kind))
			}
			if burst > 0 && base == 0 {
				return fmt.Errorf("qos specs: %s_%s_sec_max needs %[1]s_%[2]s_sec", dir, cinderUnit(kind))
			}
		}
	}
	if l["iops-size"] > 0 && l["iops-total"] == 0 && l["iops-read"] == 0 && l["iops-write"] == 0 {
		return fmt.Errorf("qos specs: size_iops_sec needs total_iops_sec, read_iops_sec or write_iops_sec")
	}
	for k, v := range l {
		if v > maxLimit {
			return fmt.Errorf("qos specs: %s above %d", k, int64(maxLimit))
		}
	}
	return nil
}

func cinderUnit(kind string) string {
	if kind == "bps" {
		return "bytes"
	}
	return "iops"
}

// throttleGroup and formatNode name the parts of a throttled disk.
func throttleGroup(id string) string { return "tg-" + id }
func formatNode(id string) string    { return id + "-f" }

// keyval renders the limits as -object throttle-group options.
func (t *Throttle) keyval() string {
	var b strings.Builder
	for _, kv := range throttleKeys {
		if v, ok := t.Limits[kv[1]]; ok {
			fmt.Fprintf(&b, ",x-%s=%d", kv[1], v)
		}
	}
	return b.String()
}

// throttleArgs renders a throttled disk's group object and nodes: the
// format node (fmtNode, as an unthrottled disk's only node would be) is
// renamed and the filter takes the disk's id.
func throttleArgs(d Disk, fmtNode string) []string {
	ro := "off"
	if d.ReadOnly {
		ro = "on"
	}
	return []string{
		"-object", "throttle-group,id=" + throttleGroup(d.ID) + d.Throttle.keyval(),
		"-blockdev", fmtNode,
		"-blockdev", fmt.Sprintf("driver=throttle,node-name=%s,read-only=%s,throttle-group=%s,file=%s",
			d.ID, ro, throttleGroup(d.ID), formatNode(d.ID)),
	}
}

// qmpExecutor is the part of the QMP client plugging nodes needs.
type qmpExecutor interface {
	Execute(ctx context.Context, cmd string, args, out any) error
}

// plugNodes adds a disk's block nodes to a running QEMU: the format node
// and, for a throttled disk, its throttle group and filter on top. undo
// removes what was added (the device could not be plugged).
func plugNodes(ctx context.Context, c qmpExecutor, d Disk) (undo func(), err error) {
	var undos []func()
	bg := context.WithoutCancel(ctx)
	undo = func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	fmtNode := d.ID
	if d.Throttle != nil {
		fmtNode = formatNode(d.ID)
		err := c.Execute(ctx, "object-add", map[string]any{"qom-type": "throttle-group", "id": throttleGroup(d.ID),
			"limits": d.Throttle.Limits}, nil)
		if err != nil {
			return nil, err
		}
		undos = append(undos, func() { _ = c.Execute(bg, "object-del", map[string]any{"id": throttleGroup(d.ID)}, nil) })
	}
	err = c.Execute(ctx, "blockdev-add", map[string]any{
		"driver": d.Format, "node-name": fmtNode, "read-only": d.ReadOnly, "discard": "unmap",
		"file": map[string]any{"driver": fileDriver(d.Path), "filename": d.Path},
	}, nil)
	if err != nil {
		undo()
		return nil, err
	}
	undos = append(undos, func() { _ = c.Execute(bg, "blockdev-del", map[string]any{"node-name": fmtNode}, nil) })
	if d.Throttle != nil {
		err = c.Execute(ctx, "blockdev-add", map[string]any{"driver": "throttle", "node-name": d.ID, "read-only": d.ReadOnly,
			"throttle-group": throttleGroup(d.ID), "file": fmtNode}, nil)
		if err != nil {
			undo()
			return nil, err
		}
		undos = append(undos, func() { _ = c.Execute(bg, "blockdev-del", map[string]any{"node-name": d.ID}, nil) })
	}
	return undo, nil
}

// unplugNodes removes a disk's nodes (and throttle group) once its device
// is gone; parts already missing are fine.
func unplugNodes(ctx context.Context, c qmpExecutor, d Disk) error {
	nodes := []string{d.ID}
	if d.Throttle != nil {
		nodes = append(nodes, formatNode(d.ID))
	}
	for _, n := range nodes {
		if err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": n}, nil); err != nil && !isNotFound(err) {
			return err
		}
	}
	if d.Throttle != nil {
		if err := c.Execute(ctx, "object-del", map[string]any{"id": throttleGroup(d.ID)}, nil); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}
