package agent

import (
	"context"
	"time"

	"github.com/kumo-cloud/kumo/internal/network/linux"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// ensureDHCP runs a network's DHCP (and metadata) service on this host:
// the DHCP port in the namespace, the server, its answers. It returns
// true when it must be retried.
func (a *Agent) ensureDHCP(ctx context.Context, n *rpc.NetworkState) bool {
	if !a.cfg.DHCP || !wantsDHCP(n) {
		a.stopDHCP(n.ID, true)
		return false
	}
	dp := dhcpPort(n, a.cfg.Host)
	if dp == nil {
		a.requestDHCPPort(ctx, n.ID)
		return false // the new port arrives with the next network.state
	}
	svc := a.dhcp[n.ID]
	if svc != nil && svc.portID != dp.ID {
		a.stopDHCP(n.ID, true)
		svc = nil
	}
	nsName := linux.DHCPNamespace(a.cfg.NamespacePrefix, n.ID)
	ns, err := a.l2.EnsureServicePort(servicePort(n, dp, nsName, a.cfg.Metadata))
	if err != nil {
		a.log.Error("dhcp port not wired", "network", n.ID, "port", dp.ID, "err", err)
		return true
	}
	if svc != nil {
		ns.Close()
	} else {
		srv, err := linux.ListenDHCP(ns, linux.NSDevName(dp.ID), a.log.With("network", n.ID))
		if err != nil {
			ns.Close()
			a.log.Error("dhcp server", "network", n.ID, "err", err)
			return true
		}
		sctx, stop := context.WithCancel(a.runCtx)
		svc = &dhcpService{portID: dp.ID, ns: ns, srv: srv, ctx: sctx, stop: stop}
		go func() {
			if err := srv.Serve(sctx); err != nil {
				a.log.Error("dhcp server stopped", "network", n.ID, "err", err)
			}
		}()
		if a.cfg.Metadata {
			m, err := a.meta.listen(sctx, ns, n.ID)
			if err != nil {
				a.log.Error("metadata server", "network", n.ID, "err", err)
			}
			svc.meta = m
		}
		a.dhcp[n.ID] = svc
		a.log.Info("dhcp serving", "network", n.ID, "namespace", nsName, "metadata", svc.meta != nil)
	}
	svc.srv.SetTable(dhcpTable(n, dp, a.cfg.LeaseTime, a.cfg.Metadata))
	retry := a.ensureDHCP6(n, dp, svc)
	return retry || a.cfg.Metadata && svc.meta == nil
}

// ensureDHCP6 runs the network's DHCPv6 server beside its DHCPv4 one while
// it has dhcpv6-stateful or dhcpv6-stateless subnets, and stops it when
// none is left. It returns true when it must be retried.
func (a *Agent) ensureDHCP6(n *rpc.NetworkState, dp *rpc.Port, svc *dhcpService) bool {
	if !wantsDHCP6(n) {
		if svc.srv6 != nil {
			_ = svc.srv6.Close()
			svc.srv6 = nil
			a.log.Info("dhcpv6 stopped", "network", n.ID)
		}
		return false
	}
	if svc.srv6 == nil {
		srv, err := linux.ListenDHCP6(svc.ns, linux.NSDevName(dp.ID), a.log.With("network", n.ID))
		if err != nil {
			a.log.Error("dhcpv6 server", "network", n.ID, "err", err)
			return true
		}
		svc.srv6 = srv
		go func() {
			if err := srv.Serve(svc.ctx); err != nil {
				a.log.Error("dhcpv6 server stopped", "network", n.ID, "err", err)
			}
		}()
		a.log.Info("dhcpv6 serving", "network", n.ID)
	}
	svc.srv6.SetTable(dhcp6Table(n, dp, a.cfg.LeaseTime))
	return false
}

// stopDHCP stops a network's services; remove also deletes the
// namespace and the port's veth.
func (a *Agent) stopDHCP(id string, remove bool) {
	svc := a.dhcp[id]
	if svc == nil {
		return
	}
	svc.stop()
	_ = svc.srv.Close()
	if svc.srv6 != nil {
		_ = svc.srv6.Close()
	}
	if svc.meta != nil {
		svc.meta.close()
	}
	svc.ns.Close()
	delete(a.dhcp, id)
	if remove {
		if err := a.l2.DeleteServicePort(linux.DHCPNamespace(a.cfg.NamespacePrefix, id), svc.portID); err != nil {
			a.log.Warn("remove dhcp namespace", "network", id, "err", err)
		}
	}
}

// requestDHCPPort asks the server for this host's DHCP port on a network,
// at most every few seconds per network.
func (a *Agent) requestDHCPPort(ctx context.Context, networkID string) {
	a.mu.Lock()
	if t, ok := a.dhcpReq[networkID]; ok && time.Since(t) < 5*time.Second {
		a.mu.Unlock()
		return
	}
	a.dhcpReq[networkID] = time.Now()
	a.mu.Unlock()
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var p rpc.Port
		err := a.b.Request(rctx, rpc.SubjectServer, rpc.MsgDHCPPort, rpc.DHCPPortVersion,
			rpc.DHCPPortRequest{Host: a.cfg.Host, NetworkID: networkID}, &p)
		if err != nil {
			a.log.Warn("dhcp port request", "network", networkID, "err", err)
			a.mu.Lock()
			delete(a.dhcpReq, networkID)
			a.dirty[networkID] = true
			a.mu.Unlock()
			return
		}
		// Use the port at once rather than waiting for the state message.
		a.mu.Lock()
		if n := a.desired[networkID]; n != nil && dhcpPort(n, a.cfg.Host) == nil {
			cp := *n
			cp.Ports = append(append([]rpc.Port(nil), n.Ports...), p)
			a.desired[networkID] = &cp
			a.dirty[networkID] = true
		}
		a.mu.Unlock()
		a.wake()
	}()
}
