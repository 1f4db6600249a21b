package agent

import (
	"maps"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
)

// TestBlockDevicesQoS: the QoS specs of the spawn's block devices reach
// the driver's volumes, the boot volume's too.
func TestBlockDevicesQoS(t *testing.T) {
	qos := map[string]string{"read_bytes_sec": "1048576"}
	root, others := blockDevices([]rpc.Volume{
		{ID: "boot", Path: "/b", Root: true, QoS: qos},
		{ID: "data", Path: "/d", QoS: map[string]string{"write_iops_sec": "5"}},
		{ID: "plain", Path: "/p"},
	})
	if root == nil || !maps.Equal(root.QoS, qos) {
		t.Errorf("root %+v", root)
	}
	if len(others) != 2 || others[0].QoS["write_iops_sec"] != "5" || others[1].QoS != nil {
		t.Errorf("others %+v", others)
	}
}
