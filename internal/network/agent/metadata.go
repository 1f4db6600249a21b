package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// The metadata service: the OpenStack metadata API and the EC2-style
// tree on 169.254.169.254, inside each network's namespace. An instance
// is identified by the network the request arrives on and its source
// address (the port with that fixed IP); what it is told about itself
// comes from the compute service over the bus.

// Versions the OpenStack tree lists (Nova's), and the EC2 ones.
var (
	openstackVersions = []string{"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14", "latest"}
	ec2Versions       = []string{"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04", "latest"}
)

// InstanceSource fetches what the metadata service says about an
// instance; the bus implementation asks the compute service.
type InstanceSource interface {
	Instance(ctx context.Context, id string) (*rpc.InstanceMetadata, error)
	SetPassword(ctx context.Context, id, password string) error
	Password(ctx context.Context, id string) (string, error)
}

// ErrNotFound: no such instance.
var ErrNotFound = errors.New("instance not found")

// Metadata answers metadata requests of every network the agent serves.
type Metadata struct {
	a      *Agent
	Source InstanceSource

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	md  *rpc.InstanceMetadata
	at  time.Time
	err error
}

func newMetadata(a *Agent) *Metadata {
	return &Metadata{a: a, Source: busSource{a.b}, cache: map[string]cached{}}
}

// busSource asks the compute service over the bus.
type busSource struct{ b *bus.Bus }

func (s busSource) Instance(ctx context.Context, id string) (*rpc.InstanceMetadata, error) {
	var md rpc.InstanceMetadata
	err := s.b.Request(ctx, rpc.SubjectMetadata, rpc.MsgMetadata, rpc.MetadataVersion, rpc.MetadataRequest{InstanceID: id}, &md)
	if errors.Is(err, &bus.Error{Code: bus.CodeNotFound}) {
		return nil, ErrNotFound
	}
	return &md, err
}

func (s busSource) SetPassword(ctx context.Context, id, pw string) error {
	return s.b.Request(ctx, rpc.SubjectMetadata, rpc.MsgPassword, rpc.PasswordVersion, rpc.PasswordRequest{InstanceID: id, Password: pw}, nil)
}

func (s busSource) Password(ctx context.Context, id string) (string, error) {
	var r rpc.PasswordReply
	err := s.b.Request(ctx, rpc.SubjectMetadata, rpc.MsgPassword, rpc.PasswordVersion, rpc.PasswordRequest{InstanceID: id, Get: true}, &r)
	return r.Password, err
}

func (m *Metadata) instance(ctx context.Context, id string) (*rpc.InstanceMetadata, error) {
	m.mu.Lock()
	c, ok := m.cache[id]
	m.mu.Unlock()
	if ok && time.Since(c.at) < 10*time.Second {
		return c.md, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := m.Source.Instance(ctx, id)
	if err == nil || errors.Is(err, ErrNotFound) {
		m.mu.Lock()
		m.cache[id] = cached{md: md, at: time.Now(), err: err}
		m.mu.Unlock()
	}
	return md, err
}

// caller finds the port (and so the instance) behind a source address on
// a network.
func (m *Metadata) caller(networkID string, src netip.Addr) (port rpc.Port, all []rpc.Port, nets map[string]*rpc.NetworkState, ok bool) {
	m.a.mu.Lock()
	defer m.a.mu.Unlock()
	n := m.a.desired[networkID]
	if n == nil {
		return port, nil, nil, false
	}
	for _, p := range n.Ports {
		if p.DeviceID == "" || p.DeviceOwner == rpc.DeviceOwnerDHCP || strings.HasPrefix(p.DeviceOwner, "network:") {
			continue
		}
		for _, f := range p.FixedIPs {
			if a, err := netip.ParseAddr(f.IPAddress); err == nil && a == src {
				port, ok = p, true
			}
		}
	}
	if !ok {
		return port, nil, nil, false
	}
	nets = map[string]*rpc.NetworkState{}
	for _, other := range m.a.desired {
		for _, p := range other.Ports {
			if p.DeviceID == port.DeviceID {
				p.NetworkID = other.ID
				all = append(all, p)
				nets[other.ID] = other
			}
		}
	}
	slices.SortFunc(all, func(x, y rpc.Port) int { return strings.Compare(x.ID, y.ID) })
	return port, all, nets, true
}

// Handler answers the metadata requests arriving on a network.
func (m *Metadata) Handler(networkID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		src, perr := netip.ParseAddr(host)
		if err != nil || perr != nil {
			http.Error(w, "bad source address", http.StatusBadRequest)
			return
		}
		port, all, nets, ok := m.caller(networkID, src.Unmap())
		if !ok {
			http.Error(w, "no instance with address "+src.String()+" on this network", http.StatusNotFound)
			return
		}
		// Not cancelled with the request: a client that half-closes its
		// side after sending (busybox nc, HTTP/1.0 scripts) cancels
		// r.Context() at once, yet waits for the answer.
		md, err := m.instance(context.WithoutCancel(r.Context()), port.DeviceID)
		if errors.Is(err, ErrNotFound) {
			http.Error(w, "instance "+port.DeviceID+" not found", http.StatusNotFound)
			return
		}
		if err != nil {
			m.a.log.Warn("metadata: instance lookup", "instance", port.DeviceID, "err", err)
			http.Error(w, "metadata temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		req := &mdRequest{m: m, w: w, r: r, md: md, port: port, ports: all, nets: nets, src: src.Unmap()}
		req.serve()
	})
}

type mdRequest struct {
	m     *Metadata
	w     http.ResponseWriter
	r     *http.Request
	md    *rpc.InstanceMetadata
	port  rpc.Port
	ports []rpc.Port
	nets  map[string]*rpc.NetworkState
	src   netip.Addr
}

func (q *mdRequest) text(s string) {
	q.w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = io.WriteString(q.w, s)
}

func (q *mdRequest) json(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(q.w, err.Error(), http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "application/json")
	_, _ = q.w.Write(b)
}

func (q *mdRequest) notFound() { http.Error(q.w, "404 Not Found", http.StatusNotFound) }

func (q *mdRequest) serve() {
	path := strings.Trim(q.r.URL.Path, "/")
	parts := []string{}
	if path != "" {
		parts = strings.Split(path, "/")
	}
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead &&
		!(q.r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "openstack" && parts[2] == "password") {
		http.Error(q.w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case len(parts) == 0:
		q.text(strings.Join(ec2Versions, "\n"))
	case parts[0] == "openstack":
		q.openstack(parts[1:])
	case slices.Contains(ec2Versions, parts[0]):
		q.ec2(parts[1:])
	default:
		q.notFound()
	}
}

func (q *mdRequest) openstack(parts []string) {
	if len(parts) == 0 {
		q.text(strings.Join(openstackVersions, "\n"))
		return
	}
	if !slices.Contains(openstackVersions, parts[0]) {
		q.notFound()
		return
	}
	if len(parts) == 1 {
		files := []string{"meta_data.json", "password", "vendor_data.json", "network_data.json", "vendor_data2.json"}
		if len(q.md.UserData) > 0 {
			files = append(files, "user_data")
		}
		q.text(strings.Join(files, "\n"))
		return
	}
	if len(parts) != 2 {
		q.notFound()
		return
	}
	switch parts[1] {
	case "meta_data.json":
		q.json(q.metaData())
	case "user_data":
		if len(q.md.UserData) == 0 {
			q.notFound()
			return
		}
		q.w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = q.w.Write(q.md.UserData)
	case "vendor_data.json", "vendor_data2.json":
		q.json(map[string]any{})
	case "network_data.json":
		q.json(q.networkData())
	case "password":
		q.password()
	default:
		q.notFound()
	}
}

func (q *mdRequest) metaData() map[string]any {
	keys := []map[string]any{}
	names := make([]string, 0, len(q.md.PublicKeys))
	for k := range q.md.PublicKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		keys = append(keys, map[string]any{"name": k, "type": "ssh", "data": q.md.PublicKeys[k]})
	}
	meta := q.md.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	pk := q.md.PublicKeys
	if pk == nil {
		pk = map[string]string{}
	}
	seed := sha256.Sum256([]byte(q.md.UUID + q.md.Hostname))
	return map[string]any{
		"uuid": q.md.UUID, "name": q.md.Name, "hostname": q.md.Hostname, "launch_index": q.md.LaunchIndex,
		"availability_zone": q.md.AvailabilityZone, "project_id": q.md.ProjectID, "meta": meta,
		"public_keys": pk, "keys": keys, "devices": []any{}, "dedicated_cpus": []any{},
		"random_seed": base64.StdEncoding.EncodeToString(seed[:]),
	}
}

// networkData is network_data.json: one link per port of the instance,
// one network per subnet address, DNS services.
func (q *mdRequest) networkData() map[string]any {
	links, networks, services := []any{}, []any{}, []any{}
	seenDNS := map[string]bool{}
	i := 0
	for _, p := range q.ports {
		n := q.nets[p.NetworkID]
		if n == nil {
			continue
		}
		link := linux.TapName(p.ID)
		links = append(links, map[string]any{"id": link, "vif_id": p.ID, "type": "bridge", "mtu": n.MTU, "ethernet_mac_address": p.MAC})
		for _, f := range p.FixedIPs {
			var sub *rpc.Subnet
			for j := range n.Subnets {
				if n.Subnets[j].ID == f.SubnetID {
					sub = &n.Subnets[j]
				}
			}
			if sub == nil {
				continue
			}
			pfx, err := netip.ParsePrefix(sub.CIDR)
			if err != nil {
				continue
			}
			typ := "ipv4"
			if sub.IPVersion == 6 {
				typ = "ipv6"
				if sub.IPv6AddrMode == "slaac" {
					typ = "ipv6_slaac"
				} else if sub.IPv6AddrMode == "dhcpv6-stateful" {
					typ = "ipv6_dhcp"
				}
			} else if sub.EnableDHCP {
				typ = "ipv4_dhcp"
			}
			routes := []any{}
			if sub.GatewayIP != "" {
				def := "0.0.0.0"
				if sub.IPVersion == 6 {
					def = "::"
				}
				routes = append(routes, map[string]any{"network": def, "netmask": maskString(netip.PrefixFrom(pfx.Addr(), 0)), "gateway": sub.GatewayIP})
			}
			for _, hr := range sub.HostRoutes {
				if d, err := netip.ParsePrefix(hr.Destination); err == nil {
					routes = append(routes, map[string]any{"network": d.Masked().Addr().String(), "netmask": maskString(d), "gateway": hr.Nexthop})
				}
			}
			dnsSvc := []any{}
			for _, d := range sub.DNSNameservers {
				dnsSvc = append(dnsSvc, map[string]any{"type": "dns", "address": d})
				if !seenDNS[d] {
					seenDNS[d] = true
					services = append(services, map[string]any{"type": "dns", "address": d})
				}
			}
			nw := map[string]any{"id": "network" + strconv.Itoa(i), "type": typ, "link": link, "network_id": n.ID,
				"ip_address": f.IPAddress, "netmask": maskString(pfx), "routes": routes, "services": dnsSvc}
			i++
			networks = append(networks, nw)
		}
	}
	return map[string]any{"links": links, "networks": networks, "services": services}
}

func maskString(p netip.Prefix) string {
	bits := p.Addr().BitLen()
	return net.IP(net.CIDRMask(p.Bits(), bits)).String()
}

func (q *mdRequest) password() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.r.Context()), 10*time.Second)
	defer cancel()
	src := q.m.Source
	if q.r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(q.r.Body, 256+1))
		if err != nil || len(b) > 256 {
			http.Error(q.w, "password too long (256 bytes at most)", http.StatusBadRequest)
			return
		}
		err = src.SetPassword(ctx, q.md.UUID, string(b))
		if errors.Is(err, &bus.Error{Code: bus.CodeConflict}) {
			http.Error(q.w, "password already set", http.StatusConflict)
			return
		}
		if err != nil {
			http.Error(q.w, "password not stored", http.StatusServiceUnavailable)
			return
		}
		return
	}
	pw, err := src.Password(ctx, q.md.UUID)
	if err != nil {
		http.Error(q.w, "password unavailable", http.StatusServiceUnavailable)
		return
	}
	q.text(pw)
}

// ec2 serves the EC2-style tree under /<version>/.
func (q *mdRequest) ec2(parts []string) {
	if len(parts) == 0 {
		items := []string{"meta-data/"}
		if len(q.md.UserData) > 0 {
			items = append(items, "user-data")
		}
		q.text(strings.Join(items, "\n"))
		return
	}
	switch parts[0] {
	case "user-data":
		if len(q.md.UserData) == 0 || len(parts) > 1 {
			q.notFound()
			return
		}
		q.w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = q.w.Write(q.md.UserData)
		return
	case "meta-data":
	default:
		q.notFound()
		return
	}
	tree := q.ec2Tree()
	var node any = tree
	for _, p := range parts[1:] {
		dir, ok := node.(map[string]any)
		if !ok {
			q.notFound()
			return
		}
		if node, ok = dir[p]; !ok {
			q.notFound()
			return
		}
	}
	switch v := node.(type) {
	case string:
		q.text(v)
	case map[string]any:
		names := make([]string, 0, len(v))
		for k, sub := range v {
			if _, dir := sub.(map[string]any); dir {
				k += "/"
			}
			names = append(names, k)
		}
		sort.Strings(names)
		if len(parts) == 2 && parts[1] == "public-keys" {
			// The listing of public-keys is "0=name".
			names = names[:0]
			for i, k := range q.keyNames() {
				names = append(names, strconv.Itoa(i)+"="+k)
			}
		}
		q.text(strings.Join(names, "\n"))
	}
}

func (q *mdRequest) keyNames() []string {
	names := make([]string, 0, len(q.md.PublicKeys))
	for k := range q.md.PublicKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (q *mdRequest) ec2Tree() map[string]any {
	id := q.md.InstanceName
	if rest, ok := strings.CutPrefix(id, "instance-"); ok {
		id = "i-" + rest
	} else {
		id = "i-" + q.md.UUID
	}
	keys := map[string]any{}
	for i, k := range q.keyNames() {
		keys[strconv.Itoa(i)] = map[string]any{"openssh-key": q.md.PublicKeys[k]}
	}
	bdm := map[string]any{"ami": "vda", "root": "/dev/vda"}
	for k, v := range q.md.LocalDevices {
		bdm[k] = v
	}
	sgs := strings.Join(q.port.SecurityGroups, "\n")
	host := q.md.Hostname
	return map[string]any{
		"ami-id": "ami-" + shortID(q.md.ImageID), "ami-launch-index": strconv.Itoa(q.md.LaunchIndex),
		"ami-manifest-path": "FIXME", "hostname": host, "local-hostname": host, "public-hostname": host,
		"instance-action": "none", "instance-id": id, "instance-type": q.md.InstanceType,
		"local-ipv4": q.src.String(), "public-ipv4": "", "reservation-id": q.md.ReservationID,
		"security-groups": sgs, "mac": q.port.MAC,
		"placement":            map[string]any{"availability-zone": q.md.AvailabilityZone},
		"block-device-mapping": bdm,
		"public-keys":          keys,
	}
}

func shortID(s string) string {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) > 8 {
		return s[:8]
	}
	return fmt.Sprintf("%08s", s)
}

// metadataServer is one network's HTTP server on 169.254.169.254:80.
type metadataServer struct {
	srv *http.Server
	ln  net.Listener
}

func (m *metadataServer) close() { _ = m.srv.Close() }

// listen starts the metadata API inside a network's namespace.
func (m *Metadata) listen(ctx context.Context, ns netns.NsHandle, networkID string) (*metadataServer, error) {
	var ln net.Listener
	err := linux.InNetns(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(MetadataIP.String(), "80"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("metadata listen: %w", err)
	}
	s := &metadataServer{ln: ln, srv: &http.Server{Handler: m.Handler(networkID), ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.a.log.Error("metadata server", "network", networkID, "err", err)
		}
	}()
	context.AfterFunc(ctx, s.close)
	return s, nil
}
