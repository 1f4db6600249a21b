package server

import (
	"maps"
	"testing"
)

// TestConnVolumeQoS: the front-end QoS spec of connection_info reaches
// the bus message the agent plugs the volume from.
func TestConnVolumeQoS(t *testing.T) {
	qos := map[string]string{"total_iops_sec": "100"}
	for _, c := range []struct {
		name string
		qos  any
		want map[string]string
	}{
		{"front-end spec", qos, qos},
		{"null", nil, nil},
	} {
		info := map[string]any{"data": map[string]any{"device_path": "/v/x.raw", "format": "raw", "access_mode": "rw", "qos_specs": c.qos}}
		v := connVolume("vol", "/dev/vdb", info)
		if v.Path != "/v/x.raw" || !maps.Equal(v.QoS, c.want) {
			t.Errorf("%s: %+v", c.name, v)
		}
	}
}
