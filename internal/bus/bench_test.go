package bus

import (
	"context"
	"testing"
)

// BenchmarkRequestReply measures request/reply round-trip latency through
// the whole stack (envelope encode, version check, handler, reply decode).
func BenchmarkRequestReply(b *testing.B) {
	run := func(b *testing.B, req, rep *Bus) {
		if _, err := rep.Subscribe("bench", "", map[string]Version{"bench.echo": V(1, 0)}, echoHandler); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := rep.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		in := echoReq{Text: "ping", N: 1}
		var out echoResp
		b.ReportAllocs()
		for b.Loop() {
			if err := req.Request(ctx, "bench", "bench.echo", V(1, 0), in, &out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("in-process", func(b *testing.B) {
		bus := openBus(b, Config{})
		run(b, bus, bus)
	})
	b.Run("tcp", func(b *testing.B) {
		srv := openBus(b, Config{Listen: "127.0.0.1:0"})
		cli := openBus(b, Config{URL: srv.ClientURL()})
		run(b, cli, srv)
	})
}
