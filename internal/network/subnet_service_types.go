package network

import (
	"slices"
	"strings"
)

// The subnet-service-types extension: a subnet with service_types gives
// addresses only to ports whose device_owner is one of them (a subnet of
// floating IPs only, say: ["network:floatingip"]); a port takes its
// addresses from the subnets listing its device owner, else from those
// listing none, as in Neutron.

// serviceTypePrefixes are the device-owner prefixes a service type may
// have (Neutron's device owner prefixes and the compute one).
var serviceTypePrefixes = []string{"network:", "neutron:", "compute:"}

// parseServiceTypes reads service_types when the request has it.
func parseServiceTypes(a attrs) ([]string, bool, error) {
	v, ok := a["service_types"]
	if !ok {
		return nil, false, nil
	}
	if v == nil {
		return []string{}, true, nil
	}
	list, isList := v.([]any)
	if !isList {
		return nil, true, badRequest("InvalidSubnetServiceType", "Subnet service type %s does not correspond to a valid device owner.", render(v))
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		st, isStr := x.(string)
		if !isStr {
			return nil, true, badRequest("InvalidInputSubnetServiceType", "Subnet service type %s is not a string.", render(x))
		}
		if len(st) > 255 || !slices.ContainsFunc(serviceTypePrefixes, func(p string) bool { return strings.HasPrefix(st, p) && len(st) > len(p) }) {
			return nil, true, badRequest("InvalidSubnetServiceType", "Subnet service type %s does not correspond to a valid device owner.", st)
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, true, nil
}

// serviceSubnets returns the subnets a port of device owner may take
// addresses from, as Neutron picks them: those listing owner among their
// service types first, then those listing none; DHCP ports may use any
// subnet with DHCP on.
func serviceSubnets(subs []*Subnet, owner string) []*Subnet {
	var typed, open []*Subnet
	for _, sn := range subs {
		switch {
		case len(sn.ServiceTypes) == 0:
			open = append(open, sn)
		case owner != "" && slices.Contains(sn.ServiceTypes, owner),
			owner == "network:dhcp" && sn.EnableDHCP:
			typed = append(typed, sn)
		}
	}
	return append(typed, open...)
}

// noServiceSubnet is the error for a port no subnet of its network
// serves (Neutron's IpAddressGenerationFailureNoMatchingSubnet, a 409).
func noServiceSubnet(networkID, owner string) error {
	return conflict("IpAddressGenerationFailureNoMatchingSubnet",
		"No valid service subnet for the given device owner, network %s, service type %s.", networkID, owner)
}
