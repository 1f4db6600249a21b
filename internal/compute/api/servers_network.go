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

func (a *API) listIPs(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleIPsIndex)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"addresses": ipsView(a.interfacesOf(r, []*store.Instance{i})[i.UUID])}), nil
}

// ipsView is the addresses of /ips: by network label, addr and version
// of each address.
func ipsView(vifs []conductor.VIF) map[string]any {
	out := map[string]any{}
	for n := range vifs {
		label := vifLabel(&vifs[n])
		list, _ := out[label].([]any)
		for _, ad := range vifs[n].Addresses {
			list = append(list, map[string]any{"addr": ad.Addr, "version": ad.Version})
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

// fullServerView renders one server with its addresses and attached
// volumes.
func (a *API) fullServerView(r *http.Request, i *store.Instance) *serverBody {
	insts := []*store.Instance{i}
	v := a.newServerViews(r, insts, true).withGroups(insts).server(i)
	v.Volumes = a.volumesAttached(r, i)
	return &v
}

// volumesAttached is os-extended-volumes:volumes_attached of a server:
// its attached volumes, with delete_on_termination from 2.3.
func (a *API) volumesAttached(r *http.Request, i *store.Instance) []attachedVolume {
	vas, err := a.serverVolumes(r, i)
	if err != nil {
		a.log.Warn("list volumes of server", "server", i.UUID, "err", err)
		return nil
	}
	return attachedVolumes(r, vas)
}

// attachedVolumes is the view of a server's attachments.
func attachedVolumes(r *http.Request, vas []VolumeAttachment) []attachedVolume {
	var out []attachedVolume
	for _, va := range vas {
		if !va.Attached {
			continue
		}
		v := attachedVolume{ID: va.VolumeID}
		if atLeast(r, V2_3) {
			v.DeleteOnTermination = &va.DeleteOnTermination
		}
		out = append(out, v)
	}
	return out
}
