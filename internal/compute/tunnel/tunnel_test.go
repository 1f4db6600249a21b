package tunnel_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/tunnel"
)

// TestTunnel joins a local connection (the agent's console socket) to a
// tunnel and talks to it from the proxy's side: bytes both ways, in
// order and whole (a write bigger than a frame included), and an end on
// either side ends the other.
func TestTunnel(t *testing.T) {
	b, err := bus.Open(context.Background(), bus.Config{Name: "tunnel-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, endBy := range []string{"proxy", "console"} {
		t.Run("ended by "+endBy, func(t *testing.T) {
			id := tunnel.NewID()
			proxy, err := tunnel.Dial(b.Conn(), id)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			agentEnd, console := net.Pipe()
			agent, err := tunnel.Accept(b.Conn(), id)
			if err != nil {
				t.Fatal(err)
			}
			joined := make(chan struct{})
			go func() { tunnel.Join(agent, agentEnd); close(joined) }()

			// The console speaks first (as VNC does), then echoes.
			go func() {
				_, _ = console.Write([]byte("RFB 003.008\n"))
				buf := make([]byte, 200<<10)
				for {
					n, err := console.Read(buf)
					if err != nil {
						return
					}
					if _, err := console.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			greet := make([]byte, 12)
			if _, err := io.ReadFull(proxy, greet); err != nil || string(greet) != "RFB 003.008\n" {
				t.Fatalf("greeting %q %v", greet, err)
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), 10<<10) // 160 KiB: several frames
			go func() { _, _ = proxy.Write(big) }()
			got := make([]byte, len(big))
			if _, err := io.ReadFull(proxy, got); err != nil || !bytes.Equal(got, big) {
				t.Fatalf("echo of %d bytes: %v (equal %v)", len(big), err, bytes.Equal(got, big))
			}
			if endBy == "proxy" {
				proxy.Close()
			} else {
				console.Close()
				if _, err := proxy.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("proxy read after the console closed: %v", err)
				}
			}
			select {
			case <-joined:
			case <-time.After(10 * time.Second):
				t.Fatal("the agent side did not end")
			}
		})
	}
}
