package api

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Policy rule names of servers.
const (
	ruleServersIndex        = "os_compute_api:servers:index"
	ruleServersIndexAll     = "os_compute_api:servers:index:get_all_tenants"
	ruleServersDetail       = "os_compute_api:servers:detail"
	ruleServersDetailAll    = "os_compute_api:servers:detail:get_all_tenants"
	ruleServersAllFilters   = "os_compute_api:servers:allow_all_filters"
	ruleServersShow         = "os_compute_api:servers:show"
	ruleServersHostStatus   = "os_compute_api:servers:show:host_status"
	ruleServersCreate       = "os_compute_api:servers:create"
	ruleServersUpdate       = "os_compute_api:servers:update"
	ruleServersDelete       = "os_compute_api:servers:delete"
	ruleExtendedAttrs       = "os_compute_api:os-extended-server-attributes"
	ruleForceDelete         = "os_compute_api:os-deferred-delete:force"
	ruleServerMetaIndex     = "os_compute_api:server-metadata:index"
	ruleServerMetaShow      = "os_compute_api:server-metadata:show"
	ruleServerMetaCreate    = "os_compute_api:server-metadata:create"
	ruleServerMetaUpdate    = "os_compute_api:server-metadata:update"
	ruleServerMetaUpdateAll = "os_compute_api:server-metadata:update_all"
	ruleServerMetaDelete    = "os_compute_api:server-metadata:delete"
	ruleTagsIndex           = "os_compute_api:os-server-tags:index"
	ruleTagsShow            = "os_compute_api:os-server-tags:show"
	ruleTagsUpdate          = "os_compute_api:os-server-tags:update"
	ruleTagsUpdateAll       = "os_compute_api:os-server-tags:update_all"
	ruleTagsDelete          = "os_compute_api:os-server-tags:delete"
	ruleTagsDeleteAll       = "os_compute_api:os-server-tags:delete_all"
	ruleActionsList         = "os_compute_api:os-instance-actions:list"
	ruleActionsShow         = "os_compute_api:os-instance-actions:show"
	ruleActionsEvents       = "os_compute_api:os-instance-actions:events"
	ruleActionsDetails      = "os_compute_api:os-instance-actions:events:details"
	ruleIPsIndex            = "os_compute_api:ips:index"
	ruleIPsShow             = "os_compute_api:ips:show"
)

// Image is what server create needs to know about an image.
type Image struct {
	ID      string
	Name    string
	Status  string // "active" when usable
	MinDisk int64  // GiB
	MinRAM  int64  // MiB
	Size    int64  // bytes

	// Shown by the /images proxy (ImageProxy).
	SizeKnown bool
	Created   time.Time
	Updated   time.Time
	// DiskFormat, ContainerFormat and Properties are inherited by
	// snapshots of servers booted from the image.
	DiskFormat      string
	ContainerFormat string
	Properties      map[string]string
}

// ErrImageNotFound is returned by an ImageLookup for an image the caller
// cannot see.
var ErrImageNotFound = errors.New("image not found")

// ImageLookup finds images in the image service, as the caller of ctx.
type ImageLookup interface {
	GetImage(ctx context.Context, id string) (*Image, error)
}

// TaskKicker starts tasks the API created and reads consoles.
type TaskKicker interface {
	Kick(ctx context.Context, uuid string)
	ConsoleOutput(ctx context.Context, host, uuid string, maxBytes int) (string, error)
	// InstanceOp runs a synchronous agent operation (servers_guest.go).
	InstanceOp(ctx context.Context, host string, req rpc.OpRequest) (rpc.OpReply, error)
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidRe.MatchString(s) }

func serverNotFound(id string) error {
	return apiutil.NotFound("Instance %s could not be found.", id)
}

// loadServer returns a live server the caller may act on under rule: the
// policy target is the server's project, and a server of another project
// is a 404 for non-admins (Nova hides it).
func (a *API) loadServer(r *http.Request, id, rule string) (*store.Instance, error) {
	return a.loadServerWith(r, id, rule, a.st.GetInstance)
}

// loadServerWith is loadServer reading the server with get (the row
// alone, when the caller needs no metadata or tags).
func (a *API) loadServerWith(r *http.Request, id, rule string, get func(context.Context, db.Querier, string) (*store.Instance, error)) (*store.Instance, error) {
	if a.servers == nil {
		return nil, serverNotFound(id)
	}
	i, err := get(ctx(r), nil, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && i.Deleted {
		return nil, serverNotFound(id)
	}
	if err != nil {
		return nil, internal(err)
	}
	c := caller(r)
	target := map[string]string{"project_id": i.ProjectID, "user_id": i.UserID}
	if i.ProjectID != c.ProjectID && !a.allowed(r, rule, target) {
		return nil, serverNotFound(id)
	}
	if err := a.authorize(r, rule, target); err != nil {
		return nil, err
	}
	return i, nil
}

// ---- create ----

const serverCreateProps = `
	"name": {"type": "string", "minLength": 1, "maxLength": 255},
	"imageRef": {"type": "string"},
	"flavorRef": {"type": ["string", "integer"], "minLength": 1},
	"adminPass": {"type": "string"},
	"metadata": {"type": "object", "patternProperties": {"^.{1,255}$": {"type": "string", "maxLength": 255}}, "additionalProperties": false},
	"networks": {"oneOf": [
		{"type": "array", "items": {"type": "object", "properties": {
			"uuid": {"type": "string"}, "port": {"type": ["string", "null"]}, "fixed_ip": {"type": "string"},
			"tag": {"type": "string", "maxLength": 60}}, "additionalProperties": false}},
		{"type": "string", "enum": ["auto", "none"]}]},
	"key_name": {"type": "string", "minLength": 1, "maxLength": 255},
	"user_data": {"type": "string", "maxLength": 65535},
	"availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
	"config_drive": ` + booleanSchema + `,
	"min_count": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
	"max_count": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
	"return_reservation_id": ` + booleanSchema + `,
	"accessIPv4": {"type": "string", "format": "ipv4"},
	"accessIPv6": {"type": "string", "format": "ipv6"},
	"OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
	"security_groups": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
	"block_device_mapping_v2": {"type": "array", "items": ` + bdmItemSchema + `},
	"personality": {"type": "array"},
	"description": {"type": ["string", "null"], "maxLength": 255},
	"tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}, "maxItems": 50},
	"trusted_image_certificates": {"type": ["array", "null"]},
	"host": {"type": "string"},
	"hypervisor_hostname": {"type": "string"},
	"hostname": {"type": "string", "minLength": 1, "maxLength": 255}`

var serverCreateSchema = apiutil.MustSchema("compute-server-create", `{"type": "object",
	"properties": {"server": {"type": "object", "properties": {`+serverCreateProps+`},
		"required": ["name", "flavorRef"], "additionalProperties": false},
		"os:scheduler_hints": {"type": "object"}, "OS-SCH-HNT:scheduler_hints": {"type": "object"}},
	"required": ["server"], "additionalProperties": false}`)

type createReq struct {
	Name                string            `json:"name"`
	ImageRef            *string           `json:"imageRef"`
	FlavorRef           json.RawMessage   `json:"flavorRef"`
	AdminPass           *string           `json:"adminPass"`
	Metadata            map[string]string `json:"metadata"`
	Networks            json.RawMessage   `json:"networks"`
	KeyName             *string           `json:"key_name"`
	UserData            *string           `json:"user_data"`
	AvailabilityZone    *string           `json:"availability_zone"`
	ConfigDrive         json.RawMessage   `json:"config_drive"`
	MinCount            json.RawMessage   `json:"min_count"`
	MaxCount            json.RawMessage   `json:"max_count"`
	ReturnReservationID json.RawMessage   `json:"return_reservation_id"`
	AccessIPv4          string            `json:"accessIPv4"`
	AccessIPv6          string            `json:"accessIPv6"`
	Description         *string           `json:"description"`
	Tags                []string          `json:"tags"`
	BDM                 []bdmItem         `json:"block_device_mapping_v2"`
	Personality         json.RawMessage   `json:"personality"`
	Hostname            *string           `json:"hostname"`
	Host                *string           `json:"host"`
	HypervisorHostname  *string           `json:"hypervisor_hostname"`
}

// idFromRef takes the id out of a reference that may be a URL.
func idFromRef(ref string) string {
	ref = strings.TrimRight(ref, "/")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

var hostnameBad = regexp.MustCompile(`[^a-z0-9.-]+`)

// sanitizeHostname follows Nova's rule for hostnames made from names.
func sanitizeHostname(name string) string {
	h := strings.ToLower(name)
	h = strings.NewReplacer(" ", "-", "_", "-").Replace(h)
	h = hostnameBad.ReplaceAllString(h, "")
	h = strings.Trim(h, ".-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], ".-")
	}
	if h == "" {
		h = "server"
	}
	return h
}

func (a *API) createServer(r *http.Request) (*apiutil.Response, error) {
	c := caller(r)
	if err := a.authorize(r, ruleServersCreate, own(r)); err != nil {
		return nil, err
	}
	if a.servers == nil {
		return nil, apiutil.Errorf(501, "Servers are not available.").WithCode("notImplemented")
	}
	var body struct {
		Server   createReq                  `json:"server"`
		Hints    map[string]json.RawMessage `json:"os:scheduler_hints"`
		HintsOld map[string]json.RawMessage `json:"OS-SCH-HNT:scheduler_hints"`
	}
	if err := apiutil.DecodeJSON(r, serverCreateSchema, &body); err != nil {
		return nil, err
	}
	s := body.Server
	if body.Hints == nil {
		body.Hints = body.HintsOld
	}
	hints, err := a.parseHints(r, body.Hints)
	if err != nil {
		return nil, err
	}
	if err := checkName("name", s.Name); err != nil {
		return nil, err
	}
	if s.Description != nil && !atLeast(r, V2_19) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
	}
	if s.Tags != nil && !atLeast(r, V2_52) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)")
	}
	if len(s.Personality) > 0 && atLeast(r, V2_57) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('personality' was unexpected)")
	}
	if atLeast(r, V2_37) && len(s.Networks) == 0 {
		return nil, apiutil.BadRequest("Invalid input for field/attribute server. 'networks' is a required property")
	}
	// Counts.
	minCount, maxCount := int64(1), int64(1)
	if len(s.MinCount) > 0 {
		if minCount, err = intValue("min_count", s.MinCount, 1, 1<<31); err != nil {
			return nil, err
		}
		maxCount = minCount
	}
	if len(s.MaxCount) > 0 {
		if maxCount, err = intValue("max_count", s.MaxCount, 1, 1<<31); err != nil {
			return nil, err
		}
	}
	if minCount > maxCount {
		return nil, apiutil.BadRequest("min_count must be <= max_count")
	}
	// Flavor.
	var flavorID string
	if err := json.Unmarshal(s.FlavorRef, &flavorID); err != nil {
		flavorID = strings.TrimSpace(string(s.FlavorRef))
	}
	flavorID = idFromRef(flavorID)
	flavor, err := a.st.GetFlavor(ctx(r), flavorID)
	if errors.Is(err, store.ErrNoFlavor) {
		return nil, apiutil.BadRequest("Flavor %s could not be found.", flavorID)
	}
	if err != nil {
		return nil, internal(err)
	}
	if flavor.Disabled {
		return nil, apiutil.BadRequest("Flavor is disabled.")
	}
	// Image and block devices: the boot device is the image, or a volume
	// of the mapping (which may come from the image's own mapping, for a
	// snapshot of a volume-backed server).
	imageRef := ""
	if s.ImageRef != nil {
		imageRef = idFromRef(*s.ImageRef)
	}
	if imageRef != "" && !isUUID(imageRef) {
		return nil, apiutil.BadRequest("Invalid imageRef provided.")
	}
	plan, err := planBlockDevices(r, s.BDM, imageRef, flavor, maxCount)
	if err != nil {
		return nil, err
	}
	imageRef = plan.imageRef
	if imageRef != "" && !isUUID(imageRef) {
		return nil, apiutil.BadRequest("Invalid imageRef provided.")
	}
	imageProps := ""
	if a.images != nil && imageRef != "" {
		img, err := a.images.GetImage(ctx(r), imageRef)
		if errors.Is(err, ErrImageNotFound) || apiutil.AsError(err).Status == 404 {
			return nil, apiutil.BadRequest("Image %s could not be found.", imageRef)
		}
		if err != nil {
			return nil, internal(err)
		}
		if img.Status != "active" {
			return nil, apiutil.BadRequest("Image %s is not active.", imageRef)
		}
		if ibd, err := imageBlockDevices(img); err != nil {
			return nil, err
		} else if ibd != nil {
			if plan, err = planBlockDevices(r, mergeImageBlockDevices(ibd, s.BDM), imageRef, flavor, maxCount); err != nil {
				return nil, err
			}
		}
		const gib = 1 << 30
		// A volume root disk does not live on the flavor's disk (Nova
		// checks the image against the volume's size instead).
		localRoot := !plan.volumeBacked && flavor.RootGB > 0
		if localRoot && img.Size > flavor.RootGB*gib {
			return nil, apiutil.BadRequest("Flavor's disk is too small for requested image. Flavor disk is %d bytes, image is %d bytes.", flavor.RootGB*gib, img.Size)
		}
		if localRoot && img.MinDisk > flavor.RootGB {
			return nil, apiutil.BadRequest("Flavor's disk is too small for requested image. Flavor disk is %d bytes, minimum disk is %d bytes.", flavor.RootGB*gib, img.MinDisk*gib)
		}
		if img.MinRAM > flavor.MemoryMB {
			return nil, apiutil.BadRequest("Flavor's memory is too small for requested image.")
		}
		imageProps = schedulingImageProps(img.Properties)
	}
	if err := a.checkBlockDevices(r, plan); err != nil {
		return nil, err
	}
	var bdmsJSON string
	if len(plan.devices) > 0 {
		b, err := json.Marshal(plan.devices)
		if err != nil {
			return nil, internal(err)
		}
		bdmsJSON = string(b)
	}
	// Key pair.
	var keyData *string
	if s.KeyName != nil {
		kp, err := a.st.GetKeyPair(ctx(r), c.UserID, *s.KeyName)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apiutil.BadRequest("Invalid key_name provided.")
		}
		if err != nil {
			return nil, internal(err)
		}
		keyData = &kp.PublicKey
	}
	if s.UserData != nil {
		if _, err := base64.StdEncoding.DecodeString(*s.UserData); err != nil {
			return nil, apiutil.BadRequest("User data needs to be valid base 64.")
		}
	}
	// Networks: "auto" and "none" exist from 2.37 on.
	if len(s.Networks) > 0 && s.Networks[0] == '"' && !atLeast(r, V2_37) {
		return nil, apiutil.BadRequest("Invalid input for field/attribute networks. Value: %s. %s is not of type 'array'", strings.Trim(string(s.Networks), `"`), string(s.Networks))
	}
	nets, err := parseNetworks(s.Networks)
	if err != nil {
		return nil, err
	}
	if err := a.network.Validate(ctx(r), c.ProjectID, nets, int(maxCount)); err != nil {
		return nil, networkError(err, 400)
	}
	netsJSON, _ := json.Marshal(nets)
	// Zone, and the admin's "zone:host[:node]" forcing.
	forcedHost, forcedNode := "", ""
	if s.AvailabilityZone != nil {
		zone, rest, forced := strings.Cut(*s.AvailabilityZone, ":")
		if forced {
			if err := a.authorize(r, ruleForcedHost, own(r)); err != nil {
				return nil, err
			}
			forcedHost, forcedNode, _ = strings.Cut(rest, ":")
		}
		if zone != "" {
			if err := a.checkZone(r, zone); err != nil {
				return nil, err
			}
			s.AvailabilityZone = &zone
		} else {
			s.AvailabilityZone = nil
		}
	}
	if s.Host != nil || s.HypervisorHostname != nil {
		if !atLeast(r, V2_74) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('host' was unexpected)")
		}
		if !caller(r).IsAdmin() {
			return nil, apiutil.Forbidden("Policy doesn't allow compute:servers:create:requested_destination to be performed.")
		}
	}
	configDrive := ""
	if len(s.ConfigDrive) > 0 && boolValue(s.ConfigDrive) {
		configDrive = "True"
	}
	adminPass := ""
	if s.AdminPass != nil {
		adminPass = *s.AdminPass
	} else {
		adminPass = randomPassword()
	}
	hostname := sanitizeHostname(s.Name)
	if s.Hostname != nil {
		if !atLeast(r, V2_90) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute server. Additional properties are not allowed ('hostname' was unexpected)")
		}
		hostname = *s.Hostname
	}
	resID := "r-" + newUUID()[:8]
	fl := store.FlavorCopy(flavor)
	fl.VolumeBacked = plan.volumeBacked
	fl.Ephemerals = plan.ephemerals
	if plan.hasSwap {
		fl.SwapMB = plan.swapMB
	}
	var created []*store.Instance
	err = a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		count, err := a.fitQuota(r, tx, c.ProjectID, c.UserID, minCount, maxCount, fl, int64(len(s.Metadata)))
		if err != nil {
			return err
		}
		created = created[:0]
		for n := int64(0); n < count; n++ {
			i := &store.Instance{UUID: newUUID(), ProjectID: c.ProjectID, UserID: c.UserID, Name: s.Name,
				Description: s.Description, Hostname: hostname, Flavor: fl, ImageRef: imageRef, KeyName: s.KeyName,
				KeyData: keyData, UserData: s.UserData, ConfigDrive: configDrive, AvailabilityZone: s.AvailabilityZone,
				VMState: states.Building, ReservationID: resID, LaunchIndex: int(n), Metadata: s.Metadata, Tags: s.Tags}
			if count > 1 {
				i.Name = fmt.Sprintf("%s-%d", s.Name, n+1)
				i.Hostname = fmt.Sprintf("%s-%d", hostname, n+1)
			}
			t := &store.Task{ID: conductor.NewTaskID(), Kind: conductor.Build, Args: map[string]string{"networks": string(netsJSON), "admin_pass": adminPass,
				conductor.ArgBatch: strconv.FormatInt(count, 10)}}
			if bdmsJSON != "" {
				t.Args["bdms"] = bdmsJSON
			}
			if s.Host != nil {
				t.Args["host"] = *s.Host
			} else if s.HypervisorHostname != nil {
				t.Args["host"] = *s.HypervisorHostname
			}
			hints.apply(t.Args, forcedHost, forcedNode, imageProps)
			ts := states.Scheduling
			i.TaskID, i.Task, i.TaskState = &t.ID, t, &ts
			// The action first, so that the row is inserted with the
			// task holding its ids (no second write of the row).
			if err := a.startAction(r, tx, i.UUID, "create", t); err != nil {
				return err
			}
			if err := a.st.InsertInstance(ctx(r), tx, i); err != nil {
				return err
			}
			if hints.group != nil {
				if err := a.joinGroup(r, tx, hints.group, i.UUID, int(n)); err != nil {
					return err
				}
			}
			created = append(created, i)
		}
		return nil
	})
	if err != nil {
		return nil, quotaError(err)
	}
	for _, i := range created {
		a.servers.Kick(ctx(r), i.UUID)
	}
	if len(s.ReturnReservationID) > 0 && boolValue(s.ReturnReservationID) {
		return apiutil.JSON(202, map[string]any{"reservation_id": resID}), nil
	}
	first := created[0]
	out := map[string]any{"id": first.UUID, "links": links(r, "servers", first.UUID), "OS-DCF:diskConfig": "MANUAL",
		"security_groups": []any{map[string]any{"name": "default"}}}
	out["adminPass"] = adminPass
	return apiutil.JSON(202, map[string]any{"server": out}).SetHeader("Location", links(r, "servers", first.UUID)[0].(map[string]any)["href"].(string)), nil
}

// beginAction records an instance action with the task's first event and
// stores the task (with the ids) on the row, inside tx.
func (a *API) beginAction(r *http.Request, tx *sql.Tx, i *store.Instance, action string, t *store.Task) error {
	if err := a.startAction(r, tx, i.UUID, action, t); err != nil {
		return err
	}
	return a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{TaskID: t.ID}, store.Set{"task": t})
}

// startAction records an instance action with the task's first event
// and puts their ids in t, inside tx; the caller writes t to the row.
func (a *API) startAction(r *http.Request, tx *sql.Tx, uuid, action string, t *store.Task) error {
	c := caller(r)
	act := &store.Action{InstanceUUID: uuid, Action: action, RequestID: requestID(r), UserID: c.UserID, ProjectID: c.ProjectID}
	ev, err := a.st.BeginAction(ctx(r), tx, act, conductor.Event(t.Kind))
	if err != nil {
		return err
	}
	t.ActionID, t.EventID = act.ID, ev
	return nil
}

func requestID(r *http.Request) string {
	if id := apiutil.RequestID(r.Context()); id != "" {
		return id
	}
	return "req-" + newUUID()
}

// fitQuota checks the instances, cores and ram quota for between min and
// max servers (Nova creates as many as fit, if at least min do) and the
// metadata item limit; it returns how many to create.
func (a *API) fitQuota(r *http.Request, tx *sql.Tx, project, user string, minCount, maxCount int64, f store.InstanceFlavor, metaItems int64) (int64, error) {
	limits, err := a.quota.Limits(ctx(r), tx, project, "")
	if err != nil {
		return 0, err
	}
	if l := limits[quota.MetadataItems]; l >= 0 && metaItems > l {
		return 0, apiutil.Forbidden("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", metaItems, l)
	}
	deltas := func(n int64) map[string]int64 {
		return map[string]int64{quota.Instances: n, quota.Cores: n * f.VCPUs, quota.RAM: n * f.MemoryMB}
	}
	err = a.quota.CheckLimits(ctx(r), tx, project, user, limits, deltas(maxCount))
	var over *quota.OverQuotaError
	if err == nil || !errors.As(err, &over) || minCount == maxCount {
		return maxCount, err
	}
	for n := maxCount - 1; n >= minCount; n-- {
		if err = a.quota.CheckLimits(ctx(r), tx, project, user, limits, deltas(n)); err == nil {
			return n, nil
		}
		if !errors.As(err, &over) {
			return 0, err
		}
	}
	return 0, err
}

func quotaError(err error) error {
	var over *quota.OverQuotaError
	if errors.As(err, &over) {
		return apiutil.Forbidden("%s", over.Error())
	}
	var ae *apiutil.Error
	if errors.As(err, &ae) {
		return ae
	}
	return internal(err)
}

func parseNetworks(raw json.RawMessage) (conductor.Networks, error) {
	var n conductor.Networks
	if len(raw) == 0 {
		// Before 2.37: the one network available, if any.
		return n, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n.Auto, n.None = s == "auto", s == "none"
		return n, nil
	}
	if err := json.Unmarshal(raw, &n.Requests); err != nil {
		return n, apiutil.BadRequest("Bad networks format")
	}
	for _, q := range n.Requests {
		if q.UUID == "" && q.Port == "" {
			return n, apiutil.BadRequest("Bad networks format: network uuid is not in proper format ()")
		}
		if q.UUID != "" && !isUUID(q.UUID) {
			return n, apiutil.BadRequest("Bad networks format: network uuid is not in proper format (%s)", q.UUID)
		}
		if q.Port != "" && !isUUID(q.Port) {
			return n, apiutil.BadRequest("Bad networks format: port uuid is not in proper format (%s)", q.Port)
		}
		if q.FixedIP != "" {
			if _, err := netip.ParseAddr(q.FixedIP); err != nil {
				return n, apiutil.BadRequest("Invalid fixed IP address (%s)", q.FixedIP)
			}
		}
	}
	return n, nil
}

func (a *API) checkZone(r *http.Request, zone string) error {
	zones, err := a.zones.Zones(ctx(r))
	if err != nil {
		return internal(err)
	}
	for _, z := range zones {
		if z.Name == zone {
			return nil
		}
	}
	return apiutil.BadRequest("The requested availability zone is not available")
}

func randomPassword() string {
	const chars = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := []byte(newUUID() + newUUID())
	out := make([]byte, 12)
	for i := range out {
		out[i] = chars[int(b[i*3])%len(chars)]
	}
	return string(out)
}

// ---- views ----

func novaTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func microTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func hostID(project, host string) string {
	if host == "" {
		return ""
	}
	h := sha256.Sum224([]byte(project + host))
	return hex.EncodeToString(h[:])
}

func strOrEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func orNil(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// lookupHostStatus reads the status of the nova-compute service of host h.
func (a *API) lookupHostStatus(r *http.Request, h string) string {
	svcs, err := a.st.ListServices(ctx(r), h, "nova-compute")
	if err != nil || len(svcs) == 0 {
		return "UNKNOWN"
	}
	switch {
	case !conductor.ServiceUp(svcs[0], a.downTime, time.Now()):
		return "DOWN"
	case svcs[0].Disabled:
		return "MAINTENANCE"
	}
	return "UP"
}

func (a *API) showServer(r *http.Request) (*apiutil.Response, error) {
	i, err := a.loadServer(r, r.PathValue("server_id"), ruleServersShow)
	if err != nil {
		return nil, err
	}
	v := a.fullServerView(r, i)
	a.addServerGroups(r, v, i.UUID) // secgroups.go
	return apiutil.JSON(200, serverDoc{v}), nil
}

// showServerOrDetail serves GET /servers/{id} and GET /servers/detail.
func (a *API) showServerOrDetail(r *http.Request) (*apiutil.Response, error) {
	if r.PathValue("server_id") == "detail" {
		return a.listServers(true)(r)
	}
	return a.showServer(r)
}
