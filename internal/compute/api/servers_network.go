package api

import (
	"errors"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// networkError turns an allocator error into Nova's fault: unknown
// networks and ports are notFound (404 in os-interface, 400 at server
// create), a port in use is a conflict.
func networkError(err error, notFound int) error {
	var nf *conductor.ErrNetworkNotFound
	var pf *conductor.ErrPortNotFound
	var pu *conductor.ErrPortInUse
	var inv *conductor.ErrNetworkInvalid
	switch {
	case errors.As(err, &nf):
		return apiutil.Errorf(notFound, "%s", nf.Error()).WithCode(faultCode(notFound))
	case errors.As(err, &pf):
		return apiutil.Errorf(notFound, "%s", pf.Error()).WithCode(faultCode(notFound))
	case errors.As(err, &pu):
		return apiutil.Conflict("%s", pu.Error())
	case errors.As(err, &inv):
		st := inv.Status
		if st == 0 {
			st = 400
		}
		if st == 404 {
			st = notFound
		}
		return apiutil.Errorf(st, "%s", inv.Msg).WithCode(faultCode(st))
	}
	var ae *apiutil.Error
	if errors.As(err, &ae) {
		return ae
	}
	return internal(err)
}

func faultCode(status int) string {
	switch status {
	case 400:
		return "badRequest"
	case 404:
		return "itemNotFound"
	case 409:
		return "conflictingRequest"
	case 403:
		return "forbidden"
	}
	return "computeFault"
}

// addressesView renders VIFs as Nova's "addresses": by network name,
// fixed addresses then floating ones, each with its type and MAC.
func addressesView(vifs []conductor.VIF) map[string]any {
	out := map[string]any{}
	for _, v := range vifs {
		label := v.NetworkLabel
		if label == "" {
			label = v.NetworkID
		}
		list, _ := out[label].([]any)
		for _, ad := range v.Addresses {
			list = append(list, map[string]any{"addr": ad.Addr, "version": ad.Version,
				"OS-EXT-IPS:type": ad.Type, "OS-EXT-IPS-MAC:mac_addr": v.MAC})
		}
		if list == nil {
			list = []any{}
		}
		out[label] = list
	}
	return out
}

// interfacesOf reads the VIFs of servers; a failure leaves the addresses
// empty rather than failing the whole view (as Nova's info cache would).
func (a *API) interfacesOf(r *http.Request, insts []*store.Instance) map[string][]conductor.VIF {
	ids := make([]string, 0, len(insts))
	for _, i := range insts {
		if !i.Deleted {
			ids = append(ids, i.UUID)
		}
	}
	if len(ids) == 0 {
		return map[string][]conductor.VIF{}
	}
	m, err := a.network.Interfaces(ctx(r), ids)
	if err != nil {
		a.log.Warn("read server interfaces", "err", err)
		return map[string][]conductor.VIF{}
	}
	return m
}

// withAddresses fills the "addresses" of rendered servers.
func (a *API) withAddresses(r *http.Request, insts []*store.Instance, views []map[string]any) {
	m := a.interfacesOf(r, insts)
	for k, i := range insts {
		if k < len(views) {
			views[k]["addresses"] = addressesView(m[i.UUID])
		}
	}
}

func (a *API) listIPs(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIPsIndex)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"addresses": ipsView(a.interfacesOf(r, []*store.Instance{i})[i.UUID])}), nil
}

// ipsView is the addresses of /ips: addr and version only.
func ipsView(vifs []conductor.VIF) map[string]any {
	out := map[string]any{}
	for label, v := range addressesView(vifs) {
		var list []any
		for _, ad := range v.([]any) {
			m := ad.(map[string]any)
			list = append(list, map[string]any{"addr": m["addr"], "version": m["version"]})
		}
		if list == nil {
			list = []any{}
		}
		out[label] = list
	}
	return out
}

func (a *API) showIPs(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIPsShow)
	if err != nil {
		return nil, err
	}
	label := r.PathValue("network")
	all := ipsView(a.interfacesOf(r, []*store.Instance{i})[i.UUID])
	if v, ok := all[label]; ok {
		return apiutil.JSON(200, map[string]any{label: v}), nil
	}
	return nil, apiutil.NotFound("Network %s could not be found.", label)
}

// fullServerView is serverView with the server's addresses.
func (a *API) fullServerView(r *http.Request, i *store.Instance) map[string]any {
	v := a.serverView(r, i, a.isAdminView(r, i))
	v["addresses"] = addressesView(a.interfacesOf(r, []*store.Instance{i})[i.UUID])
	v["os-extended-volumes:volumes_attached"] = a.volumesAttachedView(r, i)
	return v
}

// volumesAttachedView is os-extended-volumes:volumes_attached: the
// server's attached volumes, with delete_on_termination from 2.3.
func (a *API) volumesAttachedView(r *http.Request, i *store.Instance) []any {
	out := []any{}
	vas, err := a.serverVolumes(r, i)
	if err != nil {
		a.log.Warn("list volumes of server", "server", i.UUID, "err", err)
		return out
	}
	for _, va := range vas {
		if !va.Attached {
			continue
		}
		e := map[string]any{"id": va.VolumeID}
		if atLeast(r, V2_3) {
			e["delete_on_termination"] = va.DeleteOnTermination
		}
		out = append(out, e)
	}
	return out
}
