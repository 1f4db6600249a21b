package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netns"

	"github.com/kumo-cloud/kumo/internal/network/linux/l3"
	"github.com/kumo-cloud/kumo/internal/network/linux/ra"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// L3 runs this host's routers in namespaces (internal/network/linux/l3):
// the routers whose ports the control plane put on this host, and the
// IPv6 router advertisements of their interfaces (internal/network/linux/ra).
type L3 struct {
	M      *l3.Manager
	nsPref string
	log    *slog.Logger

	mu  sync.Mutex
	ras map[string]*raRun // router/port -> advertiser
}

type raRun struct {
	cfg  ra.Config
	stop context.CancelFunc
	done chan struct{}
}

// NewL3 returns the router manager of the process's namespace; its
// router namespaces are named prefix + "qrouter-<id>".
func NewL3(log *slog.Logger, prefix string) (*L3, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := l3.New(log, l3.Options{NamespacePrefix: prefix + "qrouter-"})
	if err != nil {
		return nil, err
	}
	return &L3{M: m, nsPref: prefix + "qrouter-", log: log, ras: map[string]*raRun{}}, nil
}

// Apply implements Routers.
func (l *L3) Apply(ctx context.Context, host string, routers []*rpc.RouterState, nets map[string]*rpc.NetworkState) error {
	err := l.M.Apply(ctx, routerDesired(host, routers, nets))
	return errors.Join(err, l.advertise(ctx, routerAdverts(host, routers, nets)))
}

// advertise runs one advertiser per router interface that wants one,
// restarting those whose announcement changed.
func (l *L3) advertise(ctx context.Context, want map[string]advert) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, r := range l.ras {
		if w, ok := want[key]; !ok || !reflect.DeepEqual(w.cfg, r.cfg) {
			r.stop()
			<-r.done
			delete(l.ras, key)
		}
	}
	var errs []error
	for key, w := range want {
		if _, ok := l.ras[key]; ok {
			continue
		}
		h, err := netns.GetFromName(l.nsPref + w.router)
		if err != nil {
			errs = append(errs, fmt.Errorf("router %s advertisements: %w", w.router, err))
			continue
		}
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		r := &raRun{cfg: w.cfg, stop: stop, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			defer h.Close()
			if err := ra.Run(rctx, h, w.cfg, l.log); err != nil {
				l.log.Error("router advertisements stopped", "router", w.router, "interface", w.cfg.Interface, "err", err)
			}
		}()
		l.ras[key] = r
		l.log.Info("router advertisements", "router", w.router, "interface", w.cfg.Interface, "prefixes", len(w.cfg.Prefixes))
	}
	return errors.Join(errs...)
}

// Close stops the advertisements and releases the manager's handles;
// routers keep running.
func (l *L3) Close() {
	l.mu.Lock()
	for key, r := range l.ras {
		r.stop()
		<-r.done
		delete(l.ras, key)
	}
	l.mu.Unlock()
	l.M.Close()
}

type advert struct {
	router string
	cfg    ra.Config
}

// routerAdverts lists the router interfaces on host that advertise: those
// with an address on an IPv6 subnet whose ipv6_ra_mode is set (Neutron:
// the router sends the advertisements then; without ra_mode an outside
// router is expected to).
func routerAdverts(host string, routers []*rpc.RouterState, nets map[string]*rpc.NetworkState) map[string]advert {
	out := map[string]advert{}
	for _, r := range routers {
		if !routerHere(r, host) {
			continue
		}
		for _, p := range r.Interfaces {
			n := nets[p.NetworkID]
			if n == nil {
				continue
			}
			name, _ := l3.DeviceNames(p.ID, false)
			cfg := ra.Config{Interface: name, MTU: n.MTU}
			for _, f := range p.FixedIPs {
				for _, s := range n.Subnets {
					pfx, err := netip.ParsePrefix(s.CIDR)
					if s.ID != f.SubnetID || s.IPVersion != 6 || s.IPv6RAMode == "" || err != nil {
						continue
					}
					cfg.Prefixes = append(cfg.Prefixes, ra.Prefix{Prefix: pfx, Mode: s.IPv6RAMode})
				}
			}
			if len(cfg.Prefixes) > 0 {
				out[r.ID+"/"+p.ID] = advert{router: r.ID, cfg: cfg}
			}
		}
	}
	return out
}

// routerHere: a router runs on the host its gateway or interfaces are on.
func routerHere(r *rpc.RouterState, host string) bool {
	if r == nil || r.Deleted || !r.AdminStateUp {
		return false
	}
	here := r.Gateway != nil && r.Gateway.Host == host
	for _, p := range r.Interfaces {
		here = here || p.Host == host
	}
	return here
}

// routerDesired renders the routers with a port on host: interfaces with
// their subnets' prefix lengths and MTU, the gateway with the external
// subnets' gateways as next hops, routes, floating IPs, port forwardings.
func routerDesired(host string, routers []*rpc.RouterState, nets map[string]*rpc.NetworkState) l3.Desired {
	var d l3.Desired
	iface := func(p rpc.Port) (l3.Interface, *rpc.NetworkState) {
		n := nets[p.NetworkID]
		out := l3.Interface{PortID: p.ID, MACAddress: strings.ToLower(p.MAC)}
		if n == nil {
			return out, nil
		}
		out.MTU = n.MTU
		for _, f := range p.FixedIPs {
			for _, s := range n.Subnets {
				pfx, err := netip.ParsePrefix(s.CIDR)
				ip, err2 := netip.ParseAddr(f.IPAddress)
				if s.ID == f.SubnetID && err == nil && err2 == nil {
					out.IPs = append(out.IPs, netip.PrefixFrom(ip, pfx.Bits()).String())
				}
			}
		}
		return out, n
	}
	for _, r := range routers {
		if !routerHere(r, host) {
			continue
		}
		lr := l3.Router{ID: r.ID, EnableSNAT: r.EnableSNAT}
		for _, p := range r.Interfaces {
			i, _ := iface(p)
			lr.Interfaces = append(lr.Interfaces, i)
		}
		if r.Gateway != nil {
			i, n := iface(*r.Gateway)
			gw := &l3.Gateway{Interface: i}
			if n != nil {
				for _, s := range n.Subnets {
					if s.GatewayIP != "" {
						gw.NextHops = append(gw.NextHops, s.GatewayIP)
					}
				}
			}
			lr.Gateway = gw
		}
		for _, rt := range r.Routes {
			lr.Routes = append(lr.Routes, l3.Route{Destination: rt.Destination, NextHop: rt.Nexthop})
		}
		for _, f := range r.FloatingIPs {
			lr.FloatingIPs = append(lr.FloatingIPs, l3.FloatingIP{FloatingIP: f.FloatingIP, FixedIP: f.FixedIP})
		}
		for _, pf := range r.PortForwardings {
			lr.PortForwardings = append(lr.PortForwardings, l3.PortForwarding{FloatingIP: pf.FloatingIP, Protocol: pf.Protocol,
				ExternalPort: pf.ExternalPort, InternalIP: pf.InternalIP, InternalPort: pf.InternalPort})
		}
		d.Routers = append(d.Routers, lr)
	}
	slices.SortFunc(d.Routers, func(a, b l3.Router) int { return strings.Compare(a.ID, b.ID) })
	return d
}
