package nft

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks run against the kernel in a throwaway namespace (root only).
// Devices need not exist: the rules match tap names.

func benchNS(b *testing.B) int {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("kernel benchmark: needs root")
	}
	r := make([]byte, 3)
	_, _ = rand.Read(r)
	name := "kb" + hex.EncodeToString(r)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Skipf("ip netns add: %v %s", err, out)
	}
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close(); _ = exec.Command("ip", "netns", "del", name).Run() })
	return int(f.Fd())
}

// cpu reports the process's user+system CPU time (nftables commits run in
// the sending thread, so the kernel's work is included) per operation as
// "cpu-ms/op": on a loaded machine wall time mostly measures the queue.
func cpu(b *testing.B) func() {
	var start unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &start)
	return func() {
		var end unix.Rusage
		_ = unix.Getrusage(unix.RUSAGE_SELF, &end)
		d := time.Duration(end.Utime.Nano() + end.Stime.Nano() - start.Utime.Nano() - start.Stime.Nano())
		b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}

// hostOf builds a host with n ports spread over n/20 groups of 5 rules,
// each group also a remote group of the next.
func hostOf(n int) Desired {
	var d Desired
	groups := n / 20
	for g := 0; g < groups; g++ {
		id := fmt.Sprintf("g%03d", g)
		grp := Group{ID: id, Stateful: true, Rules: []SGRule{
			{ID: "e4", Direction: "egress", EtherType: "IPv4"},
			{ID: "e6", Direction: "egress", EtherType: "IPv6"},
			{ID: "ssh", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(22), PortRangeMax: intp(22)},
			{ID: "icmp", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp"},
			{ID: "peer", Direction: "ingress", EtherType: "IPv4", RemoteGroupID: fmt.Sprintf("g%03d", (g+1)%groups)},
		}}
		d.Groups = append(d.Groups, grp)
	}
	for i := 0; i < n; i++ {
		g := i % groups
		ip := fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256+1)
		if i%256 == 255 {
			ip = fmt.Sprintf("10.%d.%d.%d", 200+i/65536, (i/256)%256, 1)
		}
		d.Ports = append(d.Ports, Port{ID: fmt.Sprintf("port-%05d", i), Device: fmt.Sprintf("tap%08d", i), MACAddress: fmt.Sprintf("fa:16:3e:00:%02x:%02x", i/256, i%256),
			FixedIPs: []string{ip}, PortSecurityEnabled: true, SecurityGroups: []string{d.Groups[g].ID}})
		d.Groups[g].Members = append(d.Groups[g].Members, ip)
	}
	return d
}

func BenchmarkApplyRuleChange1000Ports(b *testing.B) {
	fw := NewFirewall(nil, benchNS(b))
	d := hostOf(1000)
	ctx := context.Background()
	if _, err := fw.Apply(ctx, d); err != nil {
		b.Fatal(err)
	}
	extra := SGRule{ID: "http", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: intp(80), PortRangeMax: intp(80)}
	base := d.Groups[7].Rules
	b.ResetTimer()
	defer cpu(b)()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			d.Groups[7].Rules = append(append([]SGRule(nil), base...), extra)
		} else {
			d.Groups[7].Rules = base
		}
		st, err := fw.Apply(ctx, d)
		if err != nil || st.ChainsWritten != 1 {
			b.Fatalf("%+v %v", st, err)
		}
	}
}

func BenchmarkApplyMemberChange1000Ports(b *testing.B) {
	fw := NewFirewall(nil, benchNS(b))
	d := hostOf(1000)
	ctx := context.Background()
	if _, err := fw.Apply(ctx, d); err != nil {
		b.Fatal(err)
	}
	base := d.Groups[3].Members
	b.ResetTimer()
	defer cpu(b)()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			d.Groups[3].Members = append(append([]string(nil), base...), "172.16.0.9")
		} else {
			d.Groups[3].Members = base
		}
		st, err := fw.Apply(ctx, d)
		if err != nil || st.ChainsWritten != 0 || st.ElemsAdded+st.ElemsDeleted != 1 {
			b.Fatalf("%+v %v", st, err)
		}
	}
}

// BenchmarkResync1000Ports is a restarted agent: read everything back from
// the kernel, find nothing to change.
func BenchmarkResync1000Ports(b *testing.B) {
	dial := benchNS(b)
	d := hostOf(1000)
	ctx := context.Background()
	if _, err := NewFirewall(nil, dial).Apply(ctx, d); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	defer cpu(b)()
	for i := 0; i < b.N; i++ {
		st, err := NewFirewall(nil, dial).Apply(ctx, d)
		if err != nil || st.Changed() {
			b.Fatalf("%+v %v", st, err)
		}
	}
}

// BenchmarkApplyFromScratch1000Ports programs 1,000 ports into empty tables.
func BenchmarkApplyFromScratch1000Ports(b *testing.B) {
	dial := benchNS(b)
	d := hostOf(1000)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		fw := NewFirewall(nil, dial)
		if _, err := fw.Apply(ctx, d); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := fw.Remove(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkRender1000Ports(b *testing.B) {
	d := hostOf(1000)
	defer cpu(b)()
	for i := 0; i < b.N; i++ {
		if _, err := Render(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyAddressGroupChange1000Ports adds or removes one address of
// an address group of 100 CIDRs that every group's rules name: one set
// element, no chain.
func BenchmarkApplyAddressGroupChange1000Ports(b *testing.B) {
	fw := NewFirewall(nil, benchNS(b))
	d := hostOf(1000)
	var addrs []string
	for i := 0; i < 100; i++ {
		addrs = append(addrs, fmt.Sprintf("192.%d.%d.0/24", 168+i/100, i%100*2))
	}
	d.AddressGroups = []AddressGroup{{ID: "ag-office", Addresses: addrs}}
	for g := range d.Groups {
		d.Groups[g].Rules = append(d.Groups[g].Rules, SGRule{ID: "office", Direction: "ingress", EtherType: "IPv4",
			Protocol: "tcp", PortRangeMin: intp(443), PortRangeMax: intp(443), RemoteAddressGroupID: "ag-office"})
	}
	ctx := context.Background()
	if _, err := fw.Apply(ctx, d); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	defer cpu(b)()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			d.AddressGroups[0].Addresses = append(append([]string(nil), addrs...), "172.16.0.9/32")
		} else {
			d.AddressGroups[0].Addresses = addrs
		}
		st, err := fw.Apply(ctx, d)
		if err != nil || st.ChainsWritten != 0 || st.ElemsAdded+st.ElemsDeleted != 1 {
			b.Fatalf("%+v %v", st, err)
		}
	}
}
