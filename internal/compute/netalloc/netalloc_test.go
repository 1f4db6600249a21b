package netalloc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/network"
)

// fakeNeutron is an in-memory networking service: networks by id (the
// caller sees all of them), ports by id, available networks per project.
type fakeNeutron struct {
	nets      map[string]*network.NetInfo
	ports     map[string]*network.ServerPort
	available map[string][]string
	auto      map[string]string // project -> auto network; "" fails
	allocs    []network.ServerBinding
	released  []string
}

func newFake() *fakeNeutron {
	f := &fakeNeutron{nets: map[string]*network.NetInfo{}, ports: map[string]*network.ServerPort{},
		available: map[string][]string{}, auto: map[string]string{}}
	f.nets["net-a"] = &network.NetInfo{ID: "net-a", Name: "a", Subnets: []network.SubnetInfo{{ID: "sub-a", CIDR: netip.MustParsePrefix("10.0.0.0/24"), IPVersion: 4}}}
	f.nets["net-b"] = &network.NetInfo{ID: "net-b", Name: "b"}
	f.ports["free"] = &network.ServerPort{ID: "free", NetworkID: "net-a", FixedIPs: []network.PortIP{{SubnetID: "sub-a", Address: "10.0.0.5", Version: 4}}}
	f.ports["busy"] = &network.ServerPort{ID: "busy", NetworkID: "net-a", DeviceID: "someone", FixedIPs: []network.PortIP{{Address: "10.0.0.6"}}}
	f.ports["noip"] = &network.ServerPort{ID: "noip", NetworkID: "net-b"}
	return f
}

func (f *fakeNeutron) GetNetwork(_ context.Context, id string) (*network.NetInfo, error) {
	if n := f.nets[id]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%s: %w", id, network.ErrNetworkNotFound)
}

func (f *fakeNeutron) GetPort(_ context.Context, id string) (*network.ServerPort, error) {
	if p := f.ports[id]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%s: %w", id, network.ErrPortNotFound)
}

func (f *fakeNeutron) AvailableNetworks(_ context.Context, project string) ([]*network.NetInfo, error) {
	var out []*network.NetInfo
	for _, id := range f.available[project] {
		out = append(out, f.nets[id])
	}
	return out, nil
}

func (f *fakeNeutron) AutoAllocatedNetwork(_ context.Context, project string, _ bool) (string, error) {
	if id := f.auto[project]; id != "" {
		return id, nil
	}
	return "", errors.New("Deployment error: No default router:external network.")
}

func (f *fakeNeutron) FixedIPUser(_ context.Context, _ string, ip netip.Addr) (string, bool, error) {
	for _, p := range f.ports {
		for _, a := range p.FixedIPs {
			if a.Address == ip.String() {
				return p.DeviceID, true, nil
			}
		}
	}
	return "", false, nil
}

func (f *fakeNeutron) ServerPorts(_ context.Context, uuids []string) (map[string][]*network.ServerPort, error) {
	out := map[string][]*network.ServerPort{}
	for _, id := range []string{"free", "busy", "noip", "new"} {
		if p := f.ports[id]; p != nil && p.DeviceID != "" {
			out[p.DeviceID] = append(out[p.DeviceID], p)
		}
	}
	return out, nil
}

func (f *fakeNeutron) AllocateServerPorts(_ context.Context, b network.ServerBinding, reqs []network.ServerPortRequest, _ bool) ([]*network.ServerPort, error) {
	f.allocs = append(f.allocs, b)
	var out []*network.ServerPort
	for _, r := range reqs {
		if r.PortID != "" {
			p := f.ports[r.PortID]
			p.DeviceID, p.HostID = b.ServerUUID, b.Host
			out = append(out, p)
			continue
		}
		p := &network.ServerPort{ID: "new", NetworkID: r.NetworkID, NetworkName: f.nets[r.NetworkID].Name, MAC: "fa:16:3e:00:00:01",
			Status: "ACTIVE", DeviceID: b.ServerUUID, HostID: b.Host, Tag: r.Tag,
			FixedIPs:    []network.PortIP{{SubnetID: "sub-a", Address: "10.0.0.9", Version: 4}},
			FloatingIPs: []network.FloatingAddr{{Address: "203.0.113.7", FixedIP: "10.0.0.9"}}}
		f.ports["new"] = p
		out = append(out, p)
	}
	return out, nil
}

func (f *fakeNeutron) RebindServerPorts(_ context.Context, uuid, host, _ string) error {
	f.allocs = append(f.allocs, network.ServerBinding{ServerUUID: uuid, Host: host})
	return nil
}

func (f *fakeNeutron) ReleaseServerPorts(_ context.Context, uuid, port string) error {
	f.released = append(f.released, uuid+"/"+port)
	return nil
}

func TestValidate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		project string
		req     conductor.Networks
		count   int
		want    string // "" for success, else a substring of the error
		status  int
	}{
		{"none", "p", conductor.Networks{None: true}, 1, "", 0},
		{"nothing and no network", "p", conductor.Networks{}, 1, "", 0},
		{"nothing and one network", "one", conductor.Networks{}, 1, "", 0},
		{"nothing and two networks", "two", conductor.Networks{}, 1, "Multiple possible networks", 409},
		{"auto and two networks", "two", conductor.Networks{Auto: true}, 1, "Multiple possible networks", 409},
		{"auto and no network, no topology", "p", conductor.Networks{Auto: true}, 1, "Unable to automatically allocate a network for project p", 400},
		{"auto with a topology", "auto", conductor.Networks{Auto: true}, 1, "", 0},
		{"network", "p", reqs(conductor.NetworkRequest{UUID: "net-a"}), 3, "", 0},
		{"unknown network", "p", reqs(conductor.NetworkRequest{UUID: "nope"}), 1, "Network nope could not be found.", 0},
		{"port", "p", reqs(conductor.NetworkRequest{Port: "free"}), 1, "", 0},
		{"unknown port", "p", reqs(conductor.NetworkRequest{Port: "nope"}), 1, "Port id nope could not be found.", 0},
		{"port in use", "p", reqs(conductor.NetworkRequest{Port: "busy"}), 1, "Port busy is still in use.", 0},
		{"port without address", "p", reqs(conductor.NetworkRequest{Port: "noip"}), 1, "requires a FixedIP", 400},
		{"port twice", "p", reqs(conductor.NetworkRequest{Port: "free"}, conductor.NetworkRequest{Port: "free"}), 1, "duplicated", 409},
		{"port for two servers", "p", reqs(conductor.NetworkRequest{Port: "free"}), 2, "multiple instances with a single configured port", 400},
		{"fixed ip", "p", reqs(conductor.NetworkRequest{UUID: "net-a", FixedIP: "10.0.0.50"}), 1, "", 0},
		{"fixed ip outside", "p", reqs(conductor.NetworkRequest{UUID: "net-a", FixedIP: "10.9.0.50"}), 1, "Invalid fixed IP address (10.9.0.50)", 400},
		{"fixed ip in use", "p", reqs(conductor.NetworkRequest{UUID: "net-a", FixedIP: "10.0.0.5"}), 1, "is already in use on instance", 400},
		{"fixed ip for two servers", "p", reqs(conductor.NetworkRequest{UUID: "net-a", FixedIP: "10.0.0.50"}), 2, "single configured fixed IP", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			f.available["one"] = []string{"net-a"}
			f.available["two"] = []string{"net-a", "net-b"}
			f.auto["auto"] = "net-b"
			err := New(f).Validate(ctx, c.project, c.req, c.count)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			var inv *conductor.ErrNetworkInvalid
			if c.status != 0 && (!errors.As(err, &inv) || max(inv.Status, 400) != c.status) {
				t.Fatalf("error %#v, want status %d", err, c.status)
			}
		})
	}
}

func reqs(r ...conductor.NetworkRequest) conductor.Networks { return conductor.Networks{Requests: r} }

func TestAllocateAndInterfaces(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.available["p"] = []string{"net-a"}
	zone := "az1"
	inst := &store.Instance{UUID: "vm-1", ProjectID: "p", AvailabilityZone: &zone}
	a := New(f)
	vifs, err := a.Allocate(ctx, inst, "h1", conductor.Networks{})
	if err != nil {
		t.Fatal(err)
	}
	want := []conductor.VIF{{PortID: "new", NetworkID: "net-a", NetworkLabel: "a", MAC: "fa:16:3e:00:00:01", Status: "ACTIVE",
		IPs: []string{"10.0.0.9"}, Addresses: []conductor.Address{{Addr: "10.0.0.9", Version: 4, Type: "fixed", SubnetID: "sub-a"},
			{Addr: "203.0.113.7", Version: 4, Type: "floating"}}}}
	if !reflect.DeepEqual(want, vifs) {
		t.Fatalf("vifs:\n got %+v\nwant %+v", vifs, want)
	}
	if b := f.allocs[0]; b.Host != "h1" || b.Zone != "az1" || b.ProjectID != "p" || b.ServerUUID != "vm-1" {
		t.Fatalf("binding: %+v", b)
	}
	if ok, err := a.Plugged(ctx, inst); !ok || err != nil {
		t.Fatalf("plugged: %v %v", ok, err)
	}
	f.ports["new"].Status = "DOWN"
	if ok, _ := a.Plugged(ctx, inst); ok {
		t.Fatal("a DOWN port counts as plugged")
	}
	m, err := a.Interfaces(ctx, []string{"vm-1"})
	if err != nil || len(m["vm-1"]) != 1 {
		t.Fatalf("interfaces: %v %v", m, err)
	}
	if err := a.Rebind(ctx, inst, ""); err != nil || f.allocs[1].Host != "" {
		t.Fatalf("rebind: %v %+v", err, f.allocs)
	}
	if err := a.Deallocate(ctx, inst); err != nil || f.released[0] != "vm-1/" {
		t.Fatalf("deallocate: %v %v", err, f.released)
	}
	// Attach with neither network nor port takes the one available.
	v, err := a.Attach(ctx, inst, conductor.NetworkRequest{Tag: "t"})
	if err != nil || v.NetworkID != "net-a" || v.Tag != "t" {
		t.Fatalf("attach: %+v %v", v, err)
	}
	if _, err := a.Attach(ctx, &store.Instance{UUID: "vm-2", ProjectID: "none"}, conductor.NetworkRequest{}); err == nil {
		t.Fatal("attach without any network succeeded")
	}
	var pnf *conductor.ErrPortNotFound
	if _, err := a.Attach(ctx, inst, conductor.NetworkRequest{Port: "nope"}); !errors.As(err, &pnf) {
		t.Fatalf("attach of an unknown port: %v", err)
	}
	if err := a.Detach(ctx, inst, "new"); err != nil || f.released[1] != "vm-1/new" {
		t.Fatalf("detach: %v %v", err, f.released)
	}
}
