package api

import (
	"net/http"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// serverBody is a server as the compute API shows it at one
// microversion to one caller. Members only some microversions or callers
// see are opt (absent unless Set); *string members are null when nil.
// It encodes itself (appendJSON) as encoding/json would the equivalent
// map; testdata/server_views.json in internal/compute pins the output of
// every microversion.
type serverBody struct {
	// Volumes are os-extended-volumes:volumes_attached; SecurityGroups
	// the names of the server's ports' groups (none leaves the key out).
	// Both come from other services: fullServerView and listExtras fill
	// them.
	Volumes          []attachedVolume
	SecurityGroups   []string
	ID, Name, Status string
	TenantID, UserID string
	Metadata         map[string]string
	HostID           string
	Created, Updated time.Time // "2006-01-02T15:04:05Z", null when zero
	Addresses        []conductor.VIF
	AccessIPv4       string
	AccessIPv6       string
	// URLs are the request's link prefixes (shared by a page's servers).
	URLs             *viewURLs
	KeyName          *string
	ConfigDrive      string
	AvailabilityZone string // OS-EXT-AZ:availability_zone
	TaskState        *string
	VMState          string
	PowerState       int
	// OS-SRV-USG times, "2006-01-02T15:04:05.000000", null when zero.
	LaunchedAt, TerminatedAt time.Time
	// Image is "" without an image, else {"id", "links": [bookmark]}.
	ImageID string
	// Flavor is {"id", "links": [bookmark]} before 2.47, the embedded
	// copy from 2.47 (with extra_specs when FlavorExtraSpecs).
	Flavor           store.InstanceFlavor
	FlavorEmbedded   bool
	FlavorExtraSpecs bool
	Progress         opt[int]
	Fault            *faultBody
	PinnedAZ         opt[*string] // pinned_availability_zone, 2.96
	// OS-EXT-SRV-ATTR members: the first three for admins, the rest for
	// admins from 2.3 (hostname for everyone from 2.90).
	Host, HypervisorHostname opt[*string]
	InstanceName             opt[string]
	ReservationID            opt[string]
	LaunchIndex              opt[int]
	Hostname                 opt[string]
	Ext23                    bool // kernel_id, ramdisk_id, root_device_name
	UserData                 opt[*string]
	Locked                   opt[bool]    // 2.9
	LockedReason             opt[*string] // 2.73
	Description              opt[*string] // 2.19
	Tags                     opt[[]string]
	TrustedImageCerts        bool // null from 2.63
	ServerGroups             opt[[]string]
	HostStatus               opt[string]
	AdminPass                opt[string] // rebuild answers
}

// faultBody is the "fault" of an ERROR or DELETED server.
type faultBody struct {
	Code    int
	Message string
	Details opt[string]
	Created time.Time
}

// serverViews renders the servers of one request: what depends only on
// the request (microversion, URLs, policy per project, host status and
// hostId per host, addresses and groups of the page) is worked out once.
type serverViews struct {
	a          *API
	r          *http.Request
	ver        apiutil.Version
	urls       *viewURLs
	extraSpecs bool

	adminOf      map[string]bool // extended attributes, by project
	hostStatusOK map[string]bool // host_status policy, by project
	hostStatus   map[string]string
	hostIDs      map[[2]string]string
	addrs        map[string][]conductor.VIF
	groups       map[string]string // instance → group uuid (2.71)
	showGroups   bool              // server_groups: shows, updates and rebuilds only, as in Nova
}

// newServerViews prepares the views of insts: their addresses when
// withAddrs. Lists leave server_groups out (Nova shows them from 2.71 for
// one server only: see withGroups).
func (a *API) newServerViews(r *http.Request, insts []*store.Instance, withAddrs bool) *serverViews {
	base := apiutil.PublicURL(r) + Prefix
	p := ""
	if pp := projectPrefix(r); pp != "" {
		p = "/" + pp
	}
	sv := &serverViews{a: a, r: r, ver: apiutil.VersionOf(r.Context()),
		urls: &viewURLs{self: jsonEscaped(base + "/v2.1" + p + "/servers/"), bookmark: jsonEscaped(base + p + "/servers/"),
			image: jsonEscaped(base + p + "/images/"), flavor: jsonEscaped(base + p + "/flavors/")},
		adminOf: map[string]bool{}, hostStatusOK: map[string]bool{}, hostStatus: map[string]string{},
		hostIDs: map[[2]string]string{}}
	if sv.ver.AtLeast(V2_47) {
		sv.extraSpecs = a.allowed(r, ruleExtraSpecsIndex, own(r))
	}
	if withAddrs {
		sv.addrs = a.interfacesOf(r, insts)
	}
	return sv
}

// withGroups adds server_groups (from 2.71) to the views of insts.
func (sv *serverViews) withGroups(insts []*store.Instance) *serverViews {
	if !sv.ver.AtLeast(V2_71) || len(insts) == 0 {
		return sv
	}
	sv.showGroups = true
	ids := make([]string, len(insts))
	for n, i := range insts {
		ids[n] = i.UUID
	}
	g, err := sv.a.st.InstanceGroups(ctx(sv.r), ids)
	if err != nil {
		sv.a.log.Warn("read server groups", "err", err)
	}
	sv.groups = g
	return sv
}

func (sv *serverViews) isAdmin(project string) bool {
	return sv.allowedFor(sv.adminOf, ruleExtendedAttrs, project)
}

func (sv *serverViews) showsHostStatus(project string) bool {
	return sv.allowedFor(sv.hostStatusOK, ruleServersHostStatus, project)
}

// allowedFor checks rule for a project's servers once per request (cache
// holds the answers by project).
func (sv *serverViews) allowedFor(cache map[string]bool, rule, project string) bool {
	v, ok := cache[project]
	if !ok {
		v = sv.a.allowed(sv.r, rule, map[string]string{"project_id": project})
		cache[project] = v
	}
	return v
}

// hostStatusOf is UP, DOWN, MAINTENANCE (disabled) or UNKNOWN; "" without
// a host.
func (sv *serverViews) hostStatusOf(host string) string {
	if host == "" {
		return ""
	}
	st, ok := sv.hostStatus[host]
	if !ok {
		st = sv.a.lookupHostStatus(sv.r, host)
		sv.hostStatus[host] = st
	}
	return st
}

func (sv *serverViews) hostID(project, host string) string {
	if host == "" {
		return ""
	}
	k := [2]string{project, host}
	id, ok := sv.hostIDs[k]
	if !ok {
		id = hostID(project, host)
		sv.hostIDs[k] = id
	}
	return id
}

// server renders i (its addresses when they were loaded).
func (sv *serverViews) server(i *store.Instance) serverBody {
	at := sv.ver.AtLeast
	status := states.Status(i.VMState, i.TaskState)
	v := serverBody{ID: i.UUID, Name: i.Name, Status: status, TenantID: i.ProjectID, UserID: i.UserID,
		Metadata: i.Metadata, HostID: sv.hostID(i.ProjectID, i.HostName()), Created: i.CreatedAt, Updated: i.UpdatedAt,
		AccessIPv4: i.AccessIPv4, AccessIPv6: i.AccessIPv6,
		URLs:    sv.urls,
		KeyName: i.KeyName, ConfigDrive: i.ConfigDrive, AvailabilityZone: serverZone(i),
		TaskState: i.TaskState, VMState: i.VMState, PowerState: i.PowerState,
		LaunchedAt: i.LaunchedAt, TerminatedAt: i.TerminatedAt,
		ImageID: i.ImageRef, Flavor: i.Flavor, FlavorEmbedded: at(V2_47), FlavorExtraSpecs: sv.extraSpecs}
	if sv.addrs != nil {
		v.Addresses = sv.addrs[i.UUID]
	}
	switch status {
	case "ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING":
		v.Progress = some(i.Progress)
	}
	admin := sv.isAdmin(i.ProjectID)
	if (i.VMState == states.Error || i.VMState == states.Deleted) && i.Fault != nil {
		f := &faultBody{Code: i.Fault.Code, Message: i.Fault.Message, Created: i.Fault.Created}
		if admin || i.Fault.Code != 500 {
			f.Details = some(i.Fault.Details)
		}
		v.Fault = f
	}
	if at(V2_96) {
		v.PinnedAZ = some(i.AvailabilityZone)
	}
	if admin {
		v.Host, v.HypervisorHostname = some(i.Host), some(i.Node)
		v.InstanceName = some(i.InstanceName())
		if at(V2_3) {
			v.ReservationID, v.LaunchIndex, v.Hostname = some(i.ReservationID), some(i.LaunchIndex), some(i.Hostname)
			v.Ext23, v.UserData = true, some(i.UserData)
		}
	} else if at(V2_90) {
		v.Hostname = some(i.Hostname)
	}
	if at(V2_9) {
		v.Locked = some(i.Locked)
	}
	if at(V2_73) {
		v.LockedReason = some(i.LockedReason)
	}
	if at(V2_19) {
		v.Description = some(i.Description)
	}
	if at(V2_26) {
		v.Tags = some(i.Tags)
	}
	v.TrustedImageCerts = at(V2_63)
	if at(V2_71) && sv.showGroups {
		groups := []string{}
		if g := sv.groups[i.UUID]; g != "" {
			groups = []string{g}
		}
		v.ServerGroups = some(groups)
	}
	if at(V2_16) && sv.showsHostStatus(i.ProjectID) {
		v.HostStatus = some(sv.hostStatusOf(i.HostName()))
	}
	return v
}

func serverZone(i *store.Instance) string {
	if i.AvailabilityZone != nil {
		return *i.AvailabilityZone
	}
	if i.Host != nil {
		return DefaultZone
	}
	return ""
}

// appendJSON appends the server as a JSON object.
func (s *serverBody) appendJSON(b []byte) []byte {
	o := beginObj(b)
	o.str("id", s.ID)
	o.str("name", s.Name)
	o.str("status", s.Status)
	o.str("tenant_id", s.TenantID)
	o.str("user_id", s.UserID)
	o.strMap("metadata", s.Metadata)
	o.str("hostId", s.HostID)
	o.time("created", s.Created, novaTimeLayout)
	o.time("updated", s.Updated, novaTimeLayout)
	o.key("addresses")
	o.b = appendAddresses(o.b, s.Addresses)
	o.str("accessIPv4", s.AccessIPv4)
	o.str("accessIPv6", s.AccessIPv6)
	o.key("links")
	o.b = s.URLs.appendLinks(o.b, s.ID)
	o.str("OS-DCF:diskConfig", "MANUAL")
	o.strp("key_name", s.KeyName)
	o.str("config_drive", s.ConfigDrive)
	o.str("OS-EXT-AZ:availability_zone", s.AvailabilityZone)
	o.strp("OS-EXT-STS:task_state", s.TaskState)
	o.str("OS-EXT-STS:vm_state", s.VMState)
	o.int("OS-EXT-STS:power_state", int64(s.PowerState))
	o.time("OS-SRV-USG:launched_at", s.LaunchedAt, microTimeLayout)
	o.time("OS-SRV-USG:terminated_at", s.TerminatedAt, microTimeLayout)
	if len(s.SecurityGroups) > 0 {
		o.key("security_groups")
		o.b = appendNames(o.b, s.SecurityGroups)
	}
	o.key("os-extended-volumes:volumes_attached")
	o.b = appendVolumes(o.b, s.Volumes)
	o.key("image")
	if s.ImageID == "" {
		o.b = append(o.b, `""`...)
	} else {
		o.b = appendRef(o.b, s.ImageID, s.URLs.image)
	}
	o.key("flavor")
	if s.FlavorEmbedded {
		f := beginObj(o.b)
		f.int("vcpus", s.Flavor.VCPUs)
		f.int("ram", s.Flavor.MemoryMB)
		f.int("disk", s.Flavor.RootGB)
		f.int("ephemeral", s.Flavor.EphemeralGB)
		f.int("swap", s.Flavor.Swap)
		f.str("original_name", s.Flavor.Name)
		if s.FlavorExtraSpecs {
			specs := s.Flavor.ExtraSpecs
			if specs == nil {
				specs = map[string]string{}
			}
			f.strMap("extra_specs", specs)
		}
		o.b = f.end()
	} else {
		o.b = appendRef(o.b, s.Flavor.ID, s.URLs.flavor)
	}
	if s.Progress.Set {
		o.int("progress", int64(s.Progress.V))
	}
	if s.Fault != nil {
		o.key("fault")
		f := beginObj(o.b)
		f.int("code", int64(s.Fault.Code))
		f.str("message", s.Fault.Message)
		f.time("created", s.Fault.Created, novaTimeLayout)
		if s.Fault.Details.Set {
			f.str("details", s.Fault.Details.V)
		}
		o.b = f.end()
	}
	if s.PinnedAZ.Set {
		o.strp("pinned_availability_zone", s.PinnedAZ.V)
	}
	if s.Host.Set {
		o.strp("OS-EXT-SRV-ATTR:host", s.Host.V)
	}
	if s.HypervisorHostname.Set {
		o.strp("OS-EXT-SRV-ATTR:hypervisor_hostname", s.HypervisorHostname.V)
	}
	if s.InstanceName.Set {
		o.str("OS-EXT-SRV-ATTR:instance_name", s.InstanceName.V)
	}
	if s.ReservationID.Set {
		o.str("OS-EXT-SRV-ATTR:reservation_id", s.ReservationID.V)
	}
	if s.LaunchIndex.Set {
		o.int("OS-EXT-SRV-ATTR:launch_index", int64(s.LaunchIndex.V))
	}
	if s.Hostname.Set {
		o.str("OS-EXT-SRV-ATTR:hostname", s.Hostname.V)
	}
	if s.Ext23 {
		o.str("OS-EXT-SRV-ATTR:kernel_id", "")
		o.str("OS-EXT-SRV-ATTR:ramdisk_id", "")
		o.str("OS-EXT-SRV-ATTR:root_device_name", "/dev/vda")
	}
	if s.UserData.Set {
		o.strp("OS-EXT-SRV-ATTR:user_data", s.UserData.V)
	}
	if s.Locked.Set {
		o.bool("locked", s.Locked.V)
	}
	if s.LockedReason.Set {
		o.strp("locked_reason", s.LockedReason.V)
	}
	if s.Description.Set {
		o.strp("description", s.Description.V)
	}
	if s.Tags.Set {
		o.strList("tags", s.Tags.V)
	}
	if s.TrustedImageCerts {
		o.null("trusted_image_certificates")
	}
	if s.ServerGroups.Set {
		o.strList("server_groups", s.ServerGroups.V)
	}
	if s.HostStatus.Set {
		o.str("host_status", s.HostStatus.V)
	}
	if s.AdminPass.Set {
		o.str("adminPass", s.AdminPass.V)
	}
	return o.end()
}

// MarshalJSON lets a serverBody sit in an encoding/json document.
func (s *serverBody) MarshalJSON() ([]byte, error) { return s.appendJSON(nil), nil }

// viewURLs are the prefixes of a request's links, each ending in "/",
// held JSON-escaped (without quotes): they are written as they are.
type viewURLs struct {
	self     string // ".../v2.1[/project]/servers/"
	bookmark string // "...[/project]/servers/"
	image    string // "...[/project]/images/"
	flavor   string // "...[/project]/flavors/"
}

// appendLinks appends the self and bookmark links of server id.
func (u *viewURLs) appendLinks(b []byte, id string) []byte {
	b = append(b, `[{"href":"`...)
	b = append(b, u.self...)
	b = appendEscaped(b, id)
	b = append(b, `","rel":"self"},{"href":"`...)
	b = append(b, u.bookmark...)
	b = appendEscaped(b, id)
	return append(b, `","rel":"bookmark"}]`...)
}

// appendRef appends {"id": id, "links": [{"href": prefix+id, "rel":
// "bookmark"}]}; prefix is JSON-escaped already.
func appendRef(b []byte, id, prefix string) []byte {
	b = append(b, `{"id":`...)
	b = appendStr(b, id)
	b = append(b, `,"links":[{"href":"`...)
	b = append(b, prefix...)
	b = appendEscaped(b, id)
	return append(b, `","rel":"bookmark"}]}`...)
}

// jsonEscaped is s escaped for a JSON string, without the quotes.
func jsonEscaped(s string) string { return string(appendEscaped(nil, s)) }

// vifLabel is the "addresses" key of a VIF: its network's name, or id.
func vifLabel(v *conductor.VIF) string {
	if v.NetworkLabel != "" {
		return v.NetworkLabel
	}
	return v.NetworkID
}

// appendAddresses appends Nova's "addresses": by network label, each
// VIF's addresses (fixed, then floating) with their type and MAC; VIFs
// on the same network share one list.
func appendAddresses(b []byte, vifs []conductor.VIF) []byte {
	o := beginObj(b)
	for n := range vifs {
		label := vifLabel(&vifs[n])
		seen := false
		for m := 0; m < n && !seen; m++ {
			seen = vifLabel(&vifs[m]) == label
		}
		if seen {
			continue
		}
		o.escapedKey(label)
		o.b = append(o.b, '[')
		first := true
		for m := n; m < len(vifs); m++ {
			v := &vifs[m]
			if vifLabel(v) != label {
				continue
			}
			for _, ad := range v.Addresses {
				if !first {
					o.b = append(o.b, ',')
				}
				first = false
				a := beginObj(o.b)
				a.str("addr", ad.Addr)
				a.int("version", int64(ad.Version))
				a.str("OS-EXT-IPS:type", ad.Type)
				a.str("OS-EXT-IPS-MAC:mac_addr", v.MAC)
				o.b = a.end()
			}
		}
		o.b = append(o.b, ']')
	}
	return o.end()
}

// serverList is the body of GET /servers and /servers/detail.
type serverList struct {
	detail []serverBody
	brief  []serverRef
	next   string // href of the next page, "" when none
}

// serverRef is a server of GET /servers: id, name and links.
type serverRef struct {
	ID, Name string
	URLs     *viewURLs
}

// AppendJSON implements apiutil.JSONAppender.
func (l *serverList) AppendJSON(b []byte) []byte {
	b = append(b, `{"servers":[`...)
	for n := range l.detail {
		if n > 0 {
			b = append(b, ',')
		}
		b = l.detail[n].appendJSON(b)
	}
	for n, s := range l.brief {
		if n > 0 {
			b = append(b, ',')
		}
		o := beginObj(b)
		o.str("id", s.ID)
		o.str("name", s.Name)
		o.key("links")
		o.b = s.URLs.appendLinks(o.b, s.ID)
		b = o.end()
	}
	return endPage(b, "servers_links", l.next)
}

// serverDoc is {"server": ...}, the body of show, update and rebuild.
type serverDoc struct{ s *serverBody }

// AppendJSON implements apiutil.JSONAppender.
func (d serverDoc) AppendJSON(b []byte) []byte {
	b = append(b, `{"server":`...)
	b = d.s.appendJSON(b)
	return append(b, '}')
}

// attachedVolume is one entry of os-extended-volumes:volumes_attached.
type attachedVolume struct {
	ID                  string
	DeleteOnTermination *bool // from 2.3
}

func appendVolumes(b []byte, vols []attachedVolume) []byte {
	b = append(b, '[')
	for n, v := range vols {
		if n > 0 {
			b = append(b, ',')
		}
		o := beginObj(b)
		o.str("id", v.ID)
		if v.DeleteOnTermination != nil {
			o.bool("delete_on_termination", *v.DeleteOnTermination)
		}
		b = o.end()
	}
	return append(b, ']')
}

// appendNames appends [{"name": n}, …].
func appendNames(b []byte, names []string) []byte {
	b = append(b, '[')
	for n, name := range names {
		if n > 0 {
			b = append(b, ',')
		}
		o := beginObj(b)
		o.str("name", name)
		b = o.end()
	}
	return append(b, ']')
}
