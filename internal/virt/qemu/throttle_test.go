package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/virt"
)

func TestThrottleOf(t *testing.T) {
	for _, c := range []struct {
		name string
		qos  map[string]string
		want map[string]int64 // nil: no throttle
		err  string           // from validate
	}{
		{"none", nil, nil, ""},
		{"backend keys only", map[string]string{"vendor:replication": "on", "delay": "1"}, nil, ""},
		{"zero is no limit", map[string]string{"total_iops_sec": "0"}, nil, ""},
		{"every key", map[string]string{
			"total_bytes_sec": "1", "total_iops_sec": "2", "total_bytes_sec_max": "3", "total_iops_sec_max": "4",
			"size_iops_sec": "4096",
		}, map[string]int64{"bps-total": 1, "iops-total": 2, "bps-total-max": 3, "iops-total-max": 4, "iops-size": 4096}, ""},
		{"read and write", map[string]string{
			"read_bytes_sec": "10", "write_bytes_sec": "20", "read_iops_sec": "30", "write_iops_sec": "40",
			"read_bytes_sec_max": "11", "write_bytes_sec_max": "21", "read_iops_sec_max": "31", "write_iops_sec_max": "41",
		}, map[string]int64{"bps-read": 10, "bps-write": 20, "iops-read": 30, "iops-write": 40,
			"bps-read-max": 11, "bps-write-max": 21, "iops-read-max": 31, "iops-write-max": 41}, ""},
		{"not a count", map[string]string{"read_iops_sec": "many"}, nil, `read_iops_sec: "many" is not a count`},
		{"negative", map[string]string{"write_bytes_sec": "-1"}, nil, "is not a count"},
		{"total with read", map[string]string{"total_iops_sec": "10", "read_iops_sec": "5"}, nil,
			"total_iops_sec cannot be used with read_iops_sec or write_iops_sec"},
		{"burst below rate", map[string]string{"read_bytes_sec": "10", "read_bytes_sec_max": "5"}, nil,
			"read_bytes_sec_max cannot be lower than read_bytes_sec"},
		{"burst alone", map[string]string{"write_iops_sec_max": "5"}, nil, "write_iops_sec_max needs write_iops_sec"},
		{"size alone", map[string]string{"size_iops_sec": "4096", "read_bytes_sec": "1"}, nil, "size_iops_sec needs"},
		{"too large", map[string]string{"total_bytes_sec": "2000000000000000"}, nil, "above"},
	} {
		t.Run(c.name, func(t *testing.T) {
			th := throttleOf(c.qos)
			err := th.validate()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("validate = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.want == nil {
				if th != nil {
					t.Fatalf("throttle %+v, want none", th)
				}
				return
			}
			if th == nil || !maps.Equal(th.Limits, c.want) {
				t.Fatalf("limits %+v, want %v", th, c.want)
			}
		})
	}
}

// TestThrottleArgsGolden: a throttled volume and a throttled boot volume
// become a throttle group, the format node and the filter the device uses.
func TestThrottleArgsGolden(t *testing.T) {
	d := &Driver{cfg: Config{StateDir: "/s"}}
	rec := &record{Instance: virt.Instance{
		UUID: "u1", Name: "instance-1", VCPUs: 1, MemoryMB: 128,
		RootVolume: &virt.Volume{ID: "0b0e0f00-aaaa-4bbb-8ccc-000000000001", Path: "/dev/vg/volume-boot", Format: "raw",
			QoS: map[string]string{"total_iops_sec": "500", "total_iops_sec_max": "1000", "consumer": "front-end"}},
	}}
	rec.Volumes = []pluggedVolume{
		{Volume: virt.Volume{ID: "1c1e1f11-aaaa-4bbb-8ccc-000000000002", Path: "/v/volume-data.raw", Format: "raw",
			QoS: map[string]string{"read_bytes_sec": "1048576", "write_bytes_sec": "524288", "write_iops_sec": "200", "size_iops_sec": "4096", "vendor:x": "y"}}, Port: 0},
		{Volume: virt.Volume{ID: "2d2e2f22-aaaa-4bbb-8ccc-000000000003", Path: "/v/volume-plain.raw", Format: "raw", ReadOnly: true}, Port: 1},
		{Volume: virt.Volume{ID: "3e3e3f33-aaaa-4bbb-8ccc-000000000004", Path: "/v/volume-ro.raw", Format: "raw", ReadOnly: true,
			QoS: map[string]string{"read_iops_sec": "100"}}, Port: 2},
	}
	args, err := Args(d.vm(rec, "tcg", false))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "args_throttled_volumes", render(args))

	rec.Volumes[0].QoS = map[string]string{"total_bytes_sec": "1", "read_bytes_sec": "1"}
	if _, err := Args(d.vm(rec, "tcg", false)); err == nil || !strings.Contains(err.Error(), "total_bytes_sec cannot be used") {
		t.Errorf("Args of an invalid throttle: %v", err)
	}
}

// recorder is a QMP peer that records commands and fails the one named
// failOn.
type recorder struct {
	cmds   []string
	failOn string
}

func (r *recorder) Execute(_ context.Context, cmd string, args, _ any) error {
	b, _ := json.Marshal(args)
	r.cmds = append(r.cmds, cmd+" "+string(b))
	if r.failOn != "" && strings.HasPrefix(cmd+" "+string(b), r.failOn) {
		return errors.New("refused")
	}
	return nil
}

// TestPlugNodes checks the QMP commands that hot-plug (and unplug) a
// throttled volume's nodes, and the undo when a step fails.
func TestPlugNodes(t *testing.T) {
	throttled := Disk{ID: "vol1c1e1f11aaaa4bbb8ccc", Path: "/v/d.raw", Format: "raw",
		Throttle: throttleOf(map[string]string{"read_iops_sec": "100", "read_iops_sec_max": "200"})}
	plain := Disk{ID: "vol2", Path: "/v/p.raw", Format: "raw", ReadOnly: true}
	const (
		group  = `object-add {"id":"tg-vol1c1e1f11aaaa4bbb8ccc","limits":{"iops-read":100,"iops-read-max":200},"qom-type":"throttle-group"}`
		format = `blockdev-add {"discard":"unmap","driver":"raw","file":{"driver":"file","filename":"/v/d.raw"},"node-name":"vol1c1e1f11aaaa4bbb8ccc-f","read-only":false}`
		filter = `blockdev-add {"driver":"throttle","file":"vol1c1e1f11aaaa4bbb8ccc-f","node-name":"vol1c1e1f11aaaa4bbb8ccc","read-only":false,"throttle-group":"tg-vol1c1e1f11aaaa4bbb8ccc"}`
		delF   = `blockdev-del {"node-name":"vol1c1e1f11aaaa4bbb8ccc"}`
		delFmt = `blockdev-del {"node-name":"vol1c1e1f11aaaa4bbb8ccc-f"}`
		delG   = `object-del {"id":"tg-vol1c1e1f11aaaa4bbb8ccc"}`
	)
	for _, c := range []struct {
		name   string
		disk   Disk
		failOn string
		want   []string
	}{
		{"throttled", throttled, "", []string{group, format, filter}},
		{"plain", plain, "", []string{`blockdev-add {"discard":"unmap","driver":"raw","file":{"driver":"file","filename":"/v/p.raw"},"node-name":"vol2","read-only":true}`}},
		{"group refused", throttled, "object-add", []string{group}},
		{"format refused", throttled, format, []string{group, format, delG}},
		{"filter refused", throttled, filter, []string{group, format, filter, delFmt, delG}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{failOn: c.failOn}
			undo, err := plugNodes(t.Context(), r, c.disk)
			if (err != nil) != (c.failOn != "") {
				t.Fatalf("plugNodes: %v", err)
			}
			if strings.Join(r.cmds, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(r.cmds, "\n"), strings.Join(c.want, "\n"))
			}
			if err != nil {
				return
			}
			// A refused device_add undoes everything, in reverse.
			r.cmds = nil
			undo()
			if c.disk.Throttle != nil && strings.Join(r.cmds, "\n") != strings.Join([]string{delF, delFmt, delG}, "\n") {
				t.Errorf("undo:\n%s", strings.Join(r.cmds, "\n"))
			}
		})
	}
	r := &recorder{}
	if err := unplugNodes(t.Context(), r, throttled); err != nil || strings.Join(r.cmds, "\n") != strings.Join([]string{delF, delFmt, delG}, "\n") {
		t.Errorf("unplug: %v\n%s", err, strings.Join(r.cmds, "\n"))
	}
}

// queryThrottle asks a running guest's QEMU what the device id's disk
// is (query-block: the driver of its top node) and the limits of its
// throttle group.
func queryThrottle(ctx context.Context, t *testing.T, d *Driver, uuid, id string) (drv string, limits map[string]int64) {
	t.Helper()
	h, _, _, err := d.lockState(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	defer h.unlock()
	c, err := d.qmp(ctx, h, uuid)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []struct {
		QDev     string `json:"qdev"`
		Inserted struct {
			NodeName string `json:"node-name"`
			Drv      string `json:"drv"`
		} `json:"inserted"`
	}
	if err := c.Execute(ctx, "query-block", nil, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if strings.HasPrefix(b.QDev, "/machine/peripheral/"+id+"/") {
			drv = b.Inserted.Drv
		}
	}
	if err := c.Execute(ctx, "qom-get", map[string]any{"path": "/objects/" + throttleGroup(id), "property": "limits"}, &limits); err != nil {
		t.Fatal(err)
	}
	return drv, limits
}
