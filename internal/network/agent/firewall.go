package agent

import (
	"context"

	"log/slog"
	"slices"
	"strings"

	"github.com/kumo-cloud/kumo/internal/network/linux/nft"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// NFT enforces security groups and anti-spoofing of this host's ports
// with nftables (internal/network/linux/nft).
type NFT struct {
	FW *nft.Firewall
}

// NewNFT returns the nftables firewall of the process's namespace.
func NewNFT(log *slog.Logger) *NFT {
	fw := nft.NewFirewall(log, -1)
	fw.CheckBrNetfilter = true
	return &NFT{FW: fw}
}

// Apply implements Firewall.
func (f *NFT) Apply(ctx context.Context, hosts []string, nets []*rpc.NetworkState) error {
	_, err := f.FW.Apply(ctx, firewallDesired(hosts, nets))
	return err
}

// firewallDesired renders the security-group state of a host's ports:
// its VM ports (network-owned ports are not filtered, as in Neutron) and
// every group they use or name as remote group.
func firewallDesired(hosts hostSet, nets []*rpc.NetworkState) nft.Desired {
	var d nft.Desired
	groups := map[string]rpc.SecurityGroup{}
	addrGroups := map[string]rpc.AddressGroup{}
	for _, n := range nets {
		for _, g := range n.SecurityGroups {
			groups[g.ID] = g
		}
		for _, g := range n.AddressGroups {
			addrGroups[g.ID] = g
		}
	}
	need := map[string]bool{}
	for _, n := range nets {
		for _, p := range n.Ports {
			if !hosts.has(p.Host) || strings.HasPrefix(p.DeviceOwner, "network:") {
				continue
			}
			port := nft.Port{ID: p.ID, Device: devName(p), MACAddress: strings.ToLower(p.MAC),
				PortSecurityEnabled: p.PortSecurity, SecurityGroups: p.SecurityGroups}
			for _, f := range p.FixedIPs {
				port.FixedIPs = append(port.FixedIPs, f.IPAddress)
			}
			for _, a := range p.AddressPairs {
				port.AllowedAddressPairs = append(port.AllowedAddressPairs, nft.AddressPair{IPAddress: a.IPAddress, MACAddress: a.MACAddress})
			}
			d.Ports = append(d.Ports, port)
			for _, g := range p.SecurityGroups {
				need[g] = true
			}
		}
	}
	for id := range need {
		for _, r := range groups[id].Rules {
			if r.RemoteGroupID != "" {
				need[r.RemoteGroupID] = true
			}
		}
	}
	ids := make([]string, 0, len(need))
	for id := range need {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	needAG := map[string]bool{}
	for _, id := range ids {
		g, ok := groups[id]
		if !ok {
			continue
		}
		ng := nft.Group{ID: g.ID, Stateful: g.Stateful, Members: g.MemberIPs}
		for _, r := range g.Rules {
			nr := nft.SGRule{ID: r.ID, Direction: r.Direction, EtherType: r.Ethertype, Protocol: r.Protocol,
				RemoteIPPrefix: r.RemoteIPPrefix, RemoteGroupID: r.RemoteGroupID, RemoteAddressGroupID: r.RemoteAddressGroupID}
			nr.PortRangeMin, nr.PortRangeMax = r.PortRangeMin, r.PortRangeMax
			if r.RemoteAddressGroupID != "" {
				needAG[r.RemoteAddressGroupID] = true
			}
			ng.Rules = append(ng.Rules, nr)
		}
		d.Groups = append(d.Groups, ng)
	}
	for id := range needAG {
		if g, ok := addrGroups[id]; ok {
			d.AddressGroups = append(d.AddressGroups, nft.AddressGroup{ID: g.ID, Addresses: g.Addresses})
		}
	}
	slices.SortFunc(d.AddressGroups, func(a, b nft.AddressGroup) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(d.Ports, func(a, b nft.Port) int { return strings.Compare(a.ID, b.ID) })
	return d
}
