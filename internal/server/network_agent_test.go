package server

import (
	"net/netip"
	"strings"
	"testing"
)

func TestListenIP(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   string // "" for none
	}{
		{"10.99.0.1:4222", "10.99.0.1"},
		{"[2001:db8::5]:4222", "2001:db8::5"},
		{"0.0.0.0:4222", ""},
		{"[::]:4222", ""},
		{":4222", ""},
		{"127.0.0.1:4222", ""},
		{"controller:4222", ""},
		{"garbage", ""},
	} {
		ip, ok := listenIP(tc.listen)
		if tc.want == "" && ok || tc.want != "" && (!ok || ip != netip.MustParseAddr(tc.want)) {
			t.Errorf("listenIP(%q) = %v %v, want %q", tc.listen, ip, ok, tc.want)
		}
	}
}

func TestRouteSource(t *testing.T) {
	// A control plane on this very host gives no address the other hosts
	// could reach.
	if _, err := routeSource("nats://127.0.0.1:4222"); err == nil || !strings.Contains(err.Error(), "--local-ip") {
		t.Errorf("loopback NATS: err %v, want a hint to --local-ip", err)
	}
	if _, err := routeSource("nats://:4222"); err == nil {
		t.Error("NATS URL without a host accepted")
	}
	// The first URL of a list counts; a missing port is NATS's default.
	if _, err := routeSource("nats://127.0.0.1, nats://192.0.2.1:4222"); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("URL list: err %v, want the first URL's route", err)
	}
}
