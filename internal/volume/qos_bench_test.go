package volume_test

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkAttachmentConnect reserves and deletes an attachment with a
// connector (so connection_info, and with it the volume type's QoS spec,
// is looked up) of one volume, over the HTTP API on SQLite. cpu-ms/op is
// the process's user+system CPU per reserve+delete pair.
func BenchmarkAttachmentConnect(b *testing.B) {
	e := newEnv(b, nil, nil)
	v := e.createVolume("alice", `{"volume": {"size": 1}}`)
	body := `{"attachment": {"volume_uuid": "` + v["id"].(string) + `", "instance_uuid": "8a3e1b2c-1111-4222-8333-444455556666", "connector": {"host": "h"}}}`
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	cpu0 := cpu()
	for i := 0; i < b.N; i++ {
		r := e.do("alice", "POST", v3+"/attachments", "3.44", body).Expect(b, 200, "")
		e.do("alice", "DELETE", v3+"/attachments/"+obj(b, r.Body, "attachment")["id"].(string), "3.44", "").Expect(b, 200, "")
	}
	b.ReportMetric(float64((cpu()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
