package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/linux/netnstest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// benchNetworks makes nets networks of ports ports each, all bound to
// hostA, with DHCP on.
func benchNetworks(tag string, nets, ports int) []*rpc.NetworkState {
	var out []*rpc.NetworkState
	for n := 0; n < nets; n++ {
		id := fmt.Sprintf("b%s%02d-0000-4000-8000-000000000000", tag, n)
		st := &rpc.NetworkState{ID: id, AdminStateUp: true, MTU: 1450, NetworkType: "vxlan", SegmentationID: 5000 + n,
			Subnets: []rpc.Subnet{{ID: "s-" + id, IPVersion: 4, CIDR: fmt.Sprintf("10.%d.0.0/16", 100+n), GatewayIP: fmt.Sprintf("10.%d.0.1", 100+n), EnableDHCP: true}}}
		for p := 0; p < ports; p++ {
			pid := fmt.Sprintf("%s%02d%04d-aaaa", tag, n, p)
			st.Ports = append(st.Ports, rpc.Port{ID: pid, NetworkID: id, MAC: fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", n, p/256, p%256),
				Host: "hostA", DeviceOwner: "compute:nova", DeviceID: "vm-" + pid, AdminStateUp: true, Status: "DOWN",
				Device:   linux.TapName(pid),
				FixedIPs: []rpc.FixedIP{{SubnetID: "s-" + id, IPAddress: fmt.Sprintf("10.%d.%d.%d", 100+n, 1+p/250, 2+p%250)}}})
		}
		out = append(out, st)
	}
	return out
}

func quietLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func addTap(b testing.TB, h *netlink.Handle, name string) {
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "v" + name[3:]}); err != nil {
		b.Fatalf("add %s: %v", name, err)
	}
}

// BenchmarkKernelPortWired measures the time from a VM's tap appearing to
// the tap being in its network's bridge, up, with the network's MTU
// (the DHCP entry is in place before: it depends on the port, not the tap).
func BenchmarkKernelPortWired(b *testing.B) {
	netnstest.Require(b, "busybox")
	tag := netnstest.Tag()[:4]
	host := newNS(b, "kb"+tag+"-h")
	bs, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bs.Close() })
	srv := newFakeServer(b, bs)
	const ports = 200
	nets := benchNetworks(tag, 1, ports)
	srv.set(nets[0])
	h := host.h
	a, _ := startAgent(b, bs, Config{Host: "hostA", LocalIP: netip.MustParseAddr("10.97.0.1"), HostNetns: &h, NamespacePrefix: "kb" + tag + "-"})
	hd, err := netlink.NewHandleAt(host.h)
	if err != nil {
		b.Fatal(err)
	}
	defer hd.Close()
	bridge := linux.BridgeName(nets[0].ID)
	eventually(b, 10*time.Second, "bridge", func() error {
		_, err := hd.LinkByName(bridge)
		return err
	})
	br, _ := hd.LinkByName(bridge)
	updates := make(chan netlink.LinkUpdate, 1024)
	done := make(chan struct{})
	defer close(done)
	ns := host.h
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
		b.Fatal(err)
	}
	_ = a
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := nets[0].Ports[i%ports]
		b.StopTimer()
		if l, err := hd.LinkByName(p.Device); err == nil {
			_ = hd.LinkDel(l)
		}
	drain:
		for {
			select {
			case <-updates:
			default:
				break drain
			}
		}
		b.StartTimer()
		start := time.Now()
		addTap(b, hd, p.Device)
		for u := range updates {
			if u.Link != nil && u.Link.Attrs().Name == p.Device && u.Link.Attrs().MasterIndex == br.Attrs().Index {
				break
			}
		}
		total += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/port")
}

// BenchmarkKernelFullResync1000 measures a full resync (the sync request
// and re-applying every network and port) of a host carrying 1,000 wired
// ports on 10 networks: what an agent restart costs. Nothing changes on
// the host: all links are right already.
func BenchmarkKernelFullResync1000(b *testing.B) {
	netnstest.Require(b, "busybox")
	tag := netnstest.Tag()[:4]
	host := newNS(b, "kb"+tag+"-h")
	bs, err := bus.Open(context.Background(), bus.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bs.Close() })
	srv := newFakeServer(b, bs)
	nets := benchNetworks(tag, 10, 100)
	hd, err := netlink.NewHandleAt(host.h)
	if err != nil {
		b.Fatal(err)
	}
	defer hd.Close()
	for _, n := range nets {
		srv.mu.Lock()
		srv.nets[n.ID] = n
		srv.mu.Unlock()
		for _, p := range n.Ports {
			addTap(b, hd, p.Device)
		}
	}
	h := host.h
	a, err := New(bs, Config{Host: "hostA", LocalIP: netip.MustParseAddr("10.97.0.1"), HostNetns: &h, NamespacePrefix: "kb" + tag + "-",
		DHCP: true}, quietLog(b))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.runCtx = ctx
	a.needSync = true
	start := time.Now()
	a.pass(ctx)
	first := time.Since(start)
	for _, n := range nets {
		for _, p := range n.Ports {
			if st := a.ports[p.ID]; st.status != rpc.StatusActive && p.DeviceOwner != rpc.DeviceOwnerDHCP {
				b.Fatalf("port %s not wired: %+v (%v)", p.ID, st, a.netErr[n.ID])
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.mu.Lock()
		a.needSync = true
		a.mu.Unlock()
		a.pass(ctx)
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Milliseconds()), "ms-first-wiring")
	for id := range a.dhcp {
		a.stopDHCP(id, true)
	}
}
