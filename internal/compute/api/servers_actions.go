package api

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/conductor"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Policy rule names of server actions.
const (
	ruleStart          = "os_compute_api:servers:start"
	ruleStop           = "os_compute_api:servers:stop"
	ruleReboot         = "os_compute_api:servers:reboot"
	ruleResize         = "os_compute_api:servers:resize"
	ruleConfirmResize  = "os_compute_api:servers:confirm_resize"
	ruleRevertResize   = "os_compute_api:servers:revert_resize"
	ruleRebuild        = "os_compute_api:servers:rebuild"
	ruleCreateImage    = "os_compute_api:servers:create_image"
	rulePause          = "os_compute_api:os-pause-server:pause"
	ruleUnpause        = "os_compute_api:os-pause-server:unpause"
	ruleSuspend        = "os_compute_api:os-suspend-server:suspend"
	ruleResume         = "os_compute_api:os-suspend-server:resume"
	ruleLock           = "os_compute_api:os-lock-server:lock"
	ruleUnlock         = "os_compute_api:os-lock-server:unlock"
	ruleUnlockOverride = "os_compute_api:os-lock-server:unlock:unlock_override"
	ruleRescue         = "os_compute_api:os-rescue"
	ruleUnrescue       = "os_compute_api:os-unrescue"
	ruleShelve         = "os_compute_api:os-shelve:shelve"
	ruleShelveOffload  = "os_compute_api:os-shelve:shelve_offload"
	ruleUnshelve       = "os_compute_api:os-shelve:unshelve"
	ruleConsoleOutput  = "os_compute_api:os-console-output"
	ruleAdminPassword  = "os_compute_api:os-admin-password"
	ruleCrashDump      = "os_compute_api:servers:trigger_crash_dump"
	ruleResetState     = "os_compute_api:os-admin-actions:reset_state"
	ruleMigrate        = "os_compute_api:os-migrate-server:migrate"
	ruleMigrateLive    = "os_compute_api:os-migrate-server:migrate_live"
	ruleEvacuate       = "os_compute_api:os-evacuate"
	ruleRestore        = "os_compute_api:os-deferred-delete:restore"
)

// taskAction describes an action that becomes a conductor task.
type taskAction struct {
	name      string   // Nova's name in conflict messages ("stop", "reboot", ...)
	record    string   // instance action name
	rule      string   // policy rule
	vmStates  []string // vm_states the action is allowed in
	kind      string   // conductor task kind
	taskState string   // task_state while it runs
	noLock    bool     // allowed on a locked server
}

var (
	allStates  = []string{states.Active, states.Building, states.Paused, states.Suspended, states.Stopped, states.Rescued, states.Resized, states.Error, states.Shelved, states.ShelvedOffloaded}
	actStart   = taskAction{"start", "start", ruleStart, []string{states.Stopped}, conductor.Start, states.PoweringOn, false}
	actStop    = taskAction{"stop", "stop", ruleStop, []string{states.Active, states.Error}, conductor.Stop, states.PoweringOff, false}
	actSoft    = taskAction{"reboot", "reboot", ruleReboot, []string{states.Active}, conductor.Reboot, states.Rebooting, false}
	actHard    = taskAction{"reboot", "reboot", ruleReboot, []string{states.Active, states.Stopped, states.Paused, states.Suspended, states.Error}, conductor.Reboot, states.RebootingHard, false}
	actPause   = taskAction{"pause", "pause", rulePause, []string{states.Active}, conductor.Pause, states.Pausing, false}
	actUnpause = taskAction{"unpause", "unpause", ruleUnpause, []string{states.Paused}, conductor.Unpause, states.Unpausing, false}
	actSuspend = taskAction{"suspend", "suspend", ruleSuspend, []string{states.Active}, conductor.Suspend, states.Suspending, false}
	actResume  = taskAction{"resume", "resume", ruleResume, []string{states.Suspended}, conductor.Resume, states.Resuming, false}
	actRescue  = taskAction{"rescue", "rescue", ruleRescue, []string{states.Active, states.Stopped, states.Error}, conductor.Rescue, states.Rescuing, false}
	actUnresc  = taskAction{"unrescue", "unrescue", ruleUnrescue, []string{states.Rescued}, conductor.Unrescue, states.Unrescuing, false}
	actRebuild = taskAction{"rebuild", "rebuild", ruleRebuild, []string{states.Active, states.Stopped, states.Error}, conductor.Rebuild, states.Rebuilding, false}
	actResize  = taskAction{"resize", "resize", ruleResize, []string{states.Active, states.Stopped}, conductor.Resize, states.ResizePrep, false}
	actMigrate = taskAction{"migrate", "migrate", ruleMigrate, []string{states.Active, states.Stopped}, conductor.Migrate, states.ResizePrep, true}
	actConfirm = taskAction{"confirmResize", "confirmResize", ruleConfirmResize, []string{states.Resized}, conductor.ConfirmResize, "", false}
	actRevert  = taskAction{"revertResize", "revertResize", ruleRevertResize, []string{states.Resized}, conductor.RevertResize, states.ResizeReverting, false}
	actLive    = taskAction{"os-migrateLive", "live-migration", ruleMigrateLive, []string{states.Active, states.Paused}, conductor.LiveMigrate, states.Migrating, true}
	actEvac    = taskAction{"evacuate", "evacuate", ruleEvacuate, []string{states.Active, states.Stopped, states.Error}, conductor.Evacuate, states.Rebuilding, true}
	actShelve  = taskAction{"shelve", "shelve", ruleShelve, []string{states.Active, states.Stopped, states.Paused, states.Suspended}, conductor.Shelve, states.Shelving, false}
	actOffload = taskAction{"shelveOffload", "shelveOffload", ruleShelveOffload, []string{states.Shelved}, conductor.ShelveOffload, states.ShelvingOffloading, false}
	actUnshelv = taskAction{"unshelve", "unshelve", ruleUnshelve, []string{states.Shelved, states.ShelvedOffloaded}, conductor.Unshelve, states.Unshelving, false}
)

func conflictState(action string, i *store.Instance) error {
	if i.TaskState != nil {
		return apiutil.Conflict("Cannot '%s' instance %s while it is in task_state %s", action, i.UUID, *i.TaskState)
	}
	return apiutil.Conflict("Cannot '%s' instance %s while it is in vm_state %s", action, i.UUID, i.VMState)
}

// checkState applies Nova's state rule of an action: an allowed
// vm_state and no task running.
func checkState(action string, i *store.Instance, vm []string) error {
	if !slices.Contains(vm, i.VMState) || i.TaskState != nil || i.TaskID != nil {
		return conflictState(action, i)
	}
	return nil
}

// startTask writes the task of an action on the server (only if its
// state still allows it) with the instance action, and kicks it.
func (a *API) startTask(r *http.Request, i *store.Instance, act taskAction, t *store.Task, extra store.Set) error {
	if !act.noLock {
		if err := a.checkLock(r, i); err != nil {
			return err
		}
	}
	if err := checkState(act.name, i, act.vmStates); err != nil {
		return err
	}
	t.ID, t.Kind = conductor.NewTaskID(), act.kind
	if t.PrevVMState == "" {
		t.PrevVMState = i.VMState
	}
	var ts *string
	if act.taskState != "" {
		ts = &act.taskState
	}
	set := store.TaskSet(t, ts)
	for k, v := range extra {
		set[k] = v
	}
	err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{NoTask: true, NotDeleted: true, VMStates: act.vmStates}, set); err != nil {
			return err
		}
		return a.beginAction(r, tx, i, act.record, t)
	})
	if errors.Is(err, store.ErrPreempted) {
		fresh, gerr := a.st.GetInstance(ctx(r), nil, i.UUID)
		if gerr != nil || fresh.Deleted {
			return serverNotFound(i.UUID)
		}
		return conflictState(act.name, fresh)
	}
	if err != nil {
		return quotaError(err)
	}
	a.servers.Kick(ctx(r), i.UUID)
	return nil
}

// serverAction dispatches POST /servers/{id}/action.
func (a *API) serverAction(r *http.Request) (*apiutil.Response, error) {
	id := r.PathValue("server_id")
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var body map[string]json.RawMessage
	if err := apiutil.DecodeJSONBytes(b, nil, &body); err != nil {
		return nil, err
	}
	if len(body) != 1 {
		return nil, apiutil.BadRequest("Malformed request body: exactly one action expected")
	}
	var name string
	var arg json.RawMessage
	for k, v := range body {
		name, arg = k, v
	}
	h, ok := a.actions()[name]
	if !ok {
		return nil, apiutil.BadRequest("There is no such action: %s", name)
	}
	return h(r, id, arg)
}

type actionHandler func(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error)

// args decodes an action's argument object (null and {} alike) and
// checks it against the allowed member names.
func args(arg json.RawMessage, allowed ...string) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	s := strings.TrimSpace(string(arg))
	if s == "" || s == "null" {
		return m, nil
	}
	if err := json.Unmarshal(arg, &m); err != nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute action. Value: %s. %s is not of type 'object'", s, s)
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute action. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	return m, nil
}

func str(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// simple is an action with no arguments that becomes a task.
func (a *API) simple(act taskAction, status int) actionHandler {
	return func(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
		i, err := a.loadServer(r, id, act.rule)
		if err != nil {
			return nil, err
		}
		if _, err := args(arg); err != nil && act.kind != conductor.Unshelve {
			return nil, err
		}
		t := &store.Task{}
		if act.kind == conductor.ConfirmResize && i.Migration != nil {
			t.PrevVMState = i.Migration.PrevVMState
		}
		if err := a.startTask(r, i, act, t, nil); err != nil {
			return nil, err
		}
		return &apiutil.Response{Status: status}, nil
	}
}

func (a *API) actions() map[string]actionHandler {
	return map[string]actionHandler{
		"os-start":            a.simple(actStart, 202),
		"os-stop":             a.simple(actStop, 202),
		"pause":               a.simple(actPause, 202),
		"unpause":             a.simple(actUnpause, 202),
		"suspend":             a.simple(actSuspend, 202),
		"resume":              a.simple(actResume, 202),
		"unrescue":            a.simple(actUnresc, 202),
		"shelve":              a.shelve,
		"shelveOffload":       a.simple(actOffload, 202),
		"unshelve":            a.simple(actUnshelv, 202),
		"confirmResize":       a.simple(actConfirm, 204),
		"reboot":              a.reboot,
		"rescue":              a.rescue,
		"rebuild":             a.rebuild,
		"resize":              a.resize,
		"revertResize":        a.revertResize,
		"migrate":             a.migrate,
		"os-migrateLive":      a.liveMigrate,
		"evacuate":            a.evacuate,
		"lock":                a.lock,
		"unlock":              a.unlock,
		"os-resetState":       a.resetState,
		"os-getConsoleOutput": a.consoleOutput,
		"os-getSerialConsole": a.legacyConsole("os-getSerialConsole", "serial"),
		"os-getVNCConsole":    a.legacyConsole("os-getVNCConsole", "vnc"),
		"changePassword":      a.changePassword,
		"trigger_crash_dump":  a.crashDump,
		"createImage":         a.createImage,
		"forceDelete":         a.forceDelete,
		"restore":             a.restoreServer,
		"addSecurityGroup":    a.addSecurityGroup,
		"removeSecurityGroup": a.removeSecurityGroup,
	}
}

func (a *API) reboot(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "type")
	if err != nil {
		return nil, err
	}
	typ, _ := str(m["type"])
	act := actSoft
	switch strings.ToUpper(typ) {
	case "SOFT":
	case "HARD":
		act = actHard
	default:
		return nil, apiutil.BadRequest("Invalid input for field/attribute type. Value: %s. '%s' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", typ, typ)
	}
	i, err := a.loadServer(r, id, ruleReboot)
	if err != nil {
		return nil, err
	}
	if err := a.startTask(r, i, act, &store.Task{Args: map[string]string{"reboot_type": strings.ToUpper(typ)}}, nil); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}

func (a *API) rescue(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "adminPass", "rescue_image_ref")
	if err != nil {
		return nil, err
	}
	i, err := a.loadServer(r, id, ruleRescue)
	if err != nil {
		return nil, err
	}
	pass, ok := str(m["adminPass"])
	if !ok {
		pass = randomPassword()
	}
	t := &store.Task{Args: map[string]string{}}
	if ref, ok := str(m["rescue_image_ref"]); ok {
		t.Args["rescue_image_ref"] = idFromRef(ref)
	}
	if err := a.startTask(r, i, actRescue, t, nil); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"adminPass": pass}), nil
}

func (a *API) rebuild(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	allowed := []string{"imageRef", "name", "adminPass", "metadata", "preserve_ephemeral", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6", "personality"}
	if atLeast(r, V2_19) {
		allowed = append(allowed, "description")
	}
	if atLeast(r, V2_54) {
		allowed = append(allowed, "key_name")
	}
	if atLeast(r, V2_57) {
		allowed = append(allowed, "user_data")
	}
	m, err := args(arg, allowed...)
	if err != nil {
		return nil, err
	}
	ref, ok := str(m["imageRef"])
	if !ok || ref == "" {
		return nil, apiutil.BadRequest("Invalid input for field/attribute rebuild. 'imageRef' is a required property")
	}
	ref = idFromRef(ref)
	if !isUUID(ref) {
		return nil, apiutil.BadRequest("Invalid imageRef provided.")
	}
	i, err := a.loadServer(r, id, ruleRebuild)
	if err != nil {
		return nil, err
	}
	// A volume-backed server keeps its root volume. Before 2.93 a rebuild
	// re-creates the guest on it as it is, with the same image only; from
	// 2.93 the volume is re-imaged with the rebuild's image through the
	// volume service (Nova's reimage_boot_volume), erasing its data.
	vb, _, err := a.isVolumeBacked(r, i)
	if err != nil {
		return nil, err
	}
	reimage := vb && atLeast(r, V2_93)
	if vb && !reimage && ref != i.ImageRef {
		return nil, apiutil.BadRequest("Image %s is unacceptable: Unable to rebuild with a different image for a volume-backed server.", ref)
	}
	if a.images != nil {
		img, err := a.images.GetImage(ctx(r), ref)
		if err != nil {
			return nil, apiutil.BadRequest("Image %s could not be found.", ref)
		}
		if img.Status != "active" {
			return nil, apiutil.BadRequest("Image %s is not active.", ref)
		}
	}
	extra := store.Set{"image_ref": ref}
	i.ImageRef = ref
	if v, ok := m["name"]; ok {
		name, _ := str(v)
		if err := checkName("name", name); err != nil {
			return nil, err
		}
		extra["name"], i.Name = name, name
	}
	if v, ok := m["description"]; ok {
		var d *string
		_ = json.Unmarshal(v, &d)
		extra["description"], i.Description = orNil(d), d
	}
	var md map[string]string
	if v, ok := m["metadata"]; ok {
		if err := json.Unmarshal(v, &md); err != nil {
			return nil, apiutil.BadRequest("Invalid input for field/attribute metadata.")
		}
	}
	pass, ok := str(m["adminPass"])
	if !ok {
		pass = randomPassword()
	}
	t := &store.Task{Args: map[string]string{"admin_pass": pass}}
	if reimage {
		t.Args["reimage_boot_volume"] = "true"
	}
	if err := a.startTask(r, i, actRebuild, t, extra); err != nil {
		return nil, err
	}
	if md != nil {
		_ = a.st.WithTx(ctx(r), func(tx *sql.Tx) error { return a.st.SetMetadata(ctx(r), tx, i.UUID, md, true) })
		i.Metadata = md
	}
	ts := states.Rebuilding
	i.TaskState = &ts
	v := a.fullServerView(r, i)
	v.AdminPass = some(pass)
	return apiutil.JSON(202, serverDoc{v}), nil
}

func (a *API) resize(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "flavorRef", "OS-DCF:diskConfig")
	if err != nil {
		return nil, err
	}
	raw, ok := m["flavorRef"]
	if !ok {
		return nil, apiutil.BadRequest("Invalid input for field/attribute resize. 'flavorRef' is a required property")
	}
	fid, ok := str(raw)
	if !ok {
		fid = strings.TrimSpace(string(raw))
	}
	i, err := a.loadServer(r, id, ruleResize)
	if err != nil {
		return nil, err
	}
	fl, err := a.st.GetFlavor(ctx(r), idFromRef(fid))
	if errors.Is(err, store.ErrNoFlavor) {
		return nil, apiutil.BadRequest("Unable to find flavor %s.", fid)
	}
	if err != nil {
		return nil, internal(err)
	}
	if fl.FlavorID == i.Flavor.ID {
		return nil, apiutil.BadRequest("When resizing, instances must change flavor!")
	}
	if fl.RootGB < i.Flavor.RootGB && fl.RootGB != 0 {
		// A volume-backed server's root disk is its volume, which a
		// resize does not touch (Nova skips the check for it).
		vb, _, err := a.isVolumeBacked(r, i)
		if err != nil {
			return nil, err
		}
		if !vb {
			return nil, apiutil.BadRequest("Resize error: Unable to resize disk down.")
		}
	}
	nf := store.FlavorCopy(fl)
	nf.VolumeBacked = i.Flavor.VolumeBacked
	// Ephemeral and swap disks of block device mappings stay as they are
	// (Nova resizes only the flavor's own ephemeral disk).
	nf.Ephemerals, nf.SwapMB = i.Flavor.Ephemerals, i.Flavor.SwapMB
	// An upsize consumes quota for the difference, checked now.
	dc, dr := nf.VCPUs-i.Flavor.VCPUs, nf.MemoryMB-i.Flavor.MemoryMB
	if dc > 0 || dr > 0 {
		err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
			return a.quota.Check(ctx(r), tx, i.ProjectID, i.UserID, map[string]int64{quota.Cores: max(dc, 0), quota.RAM: max(dr, 0)})
		})
		if err != nil {
			return nil, quotaError(err)
		}
	}
	if err := a.startTask(r, i, actResize, &store.Task{NewFlavor: &nf}, nil); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}

func (a *API) revertResize(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	i, err := a.loadServer(r, id, ruleRevertResize)
	if err != nil {
		return nil, err
	}
	prev := ""
	if i.Migration != nil {
		prev = i.Migration.PrevVMState
	}
	if err := a.startTask(r, i, actRevert, &store.Task{PrevVMState: prev}, nil); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}

func (a *API) migrate(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	allowed := []string{}
	if atLeast(r, V2_56) {
		allowed = append(allowed, "host")
	}
	m, err := args(arg, allowed...)
	if err != nil {
		return nil, err
	}
	i, err := a.loadServer(r, id, ruleMigrate)
	if err != nil {
		return nil, err
	}
	t := &store.Task{Args: map[string]string{}}
	if h, ok := str(m["host"]); ok && h != "" {
		if err := a.checkTargetHost(r, h, i); err != nil {
			return nil, err
		}
		t.Args["host"] = h
	}
	fl := i.Flavor
	t.NewFlavor = &fl
	if err := a.startTask(r, i, actMigrate, t, nil); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}

// checkTargetHost validates an admin-named destination host.
func (a *API) checkTargetHost(r *http.Request, host string, i *store.Instance) error {
	svcs, err := a.st.ListServices(ctx(r), host, "nova-compute")
	if err != nil {
		return internal(err)
	}
	if len(svcs) == 0 {
		return apiutil.BadRequest("Compute host %s could not be found.", host)
	}
	if host == i.HostName() {
		return apiutil.BadRequest("The target host can't be the same one.")
	}
	return nil
}

func (a *API) liveMigrate(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "host", "block_migration", "disk_over_commit", "force")
	if err != nil {
		return nil, err
	}
	if _, ok := m["block_migration"]; !ok {
		return nil, apiutil.BadRequest("Invalid input for field/attribute os-migrateLive. 'block_migration' is a required property")
	}
	i, err := a.loadServer(r, id, ruleMigrateLive)
	if err != nil {
		return nil, err
	}
	t := &store.Task{Args: map[string]string{}}
	if h, ok := str(m["host"]); ok && h != "" {
		if err := a.checkTargetHost(r, h, i); err != nil {
			return nil, err
		}
		t.Args["host"] = h
	}
	if err := a.startTask(r, i, actLive, t, nil); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: 202}, nil
}

func (a *API) evacuate(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "host", "adminPass", "onSharedStorage", "force", "targetState")
	if err != nil {
		return nil, err
	}
	i, err := a.loadServer(r, id, ruleEvacuate)
	if err != nil {
		return nil, err
	}
	if src := i.HostName(); src != "" {
		svcs, err := a.st.ListServices(ctx(r), src, "nova-compute")
		if err != nil {
			return nil, internal(err)
		}
		if len(svcs) > 0 && conductor.ServiceUp(svcs[0], a.downTime, time.Now()) {
			return nil, apiutil.BadRequest("Compute service of %s is still in use.", src)
		}
	}
	t := &store.Task{Args: map[string]string{}}
	if h, ok := str(m["host"]); ok && h != "" {
		if err := a.checkTargetHost(r, h, i); err != nil {
			return nil, err
		}
		t.Args["host"] = h
	}
	pass, ok := str(m["adminPass"])
	if !ok {
		pass = randomPassword()
	}
	if err := a.startTask(r, i, actEvac, t, nil); err != nil {
		return nil, err
	}
	if atLeast(r, V2_14) {
		return &apiutil.Response{Status: 200}, nil
	}
	return apiutil.JSON(200, map[string]any{"adminPass": pass}), nil
}

func (a *API) lock(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	allowed := []string{}
	if atLeast(r, V2_73) {
		allowed = append(allowed, "locked_reason")
	}
	m, err := args(arg, allowed...)
	if err != nil {
		return nil, err
	}
	i, err := a.loadServer(r, id, ruleLock)
	if err != nil {
		return nil, err
	}
	var reason any
	if v, ok := m["locked_reason"]; ok {
		s, ok := str(v)
		if !ok || len(s) > 255 {
			return nil, apiutil.BadRequest("Invalid input for field/attribute locked_reason.")
		}
		reason = s
	}
	by := "owner"
	if caller(r).ProjectID != i.ProjectID {
		by = "admin"
	}
	return a.syncAction(r, i, "lock", store.Set{"locked": true, "locked_by": by, "locked_reason": reason})
}

func (a *API) unlock(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	i, err := a.loadServer(r, id, ruleUnlock)
	if err != nil {
		return nil, err
	}
	if i.LockedBy != nil && *i.LockedBy == "admin" && caller(r).ProjectID != i.ProjectID || i.LockedBy != nil && *i.LockedBy == "admin" && !caller(r).IsAdmin() {
		if err := a.authorize(r, ruleUnlockOverride, map[string]string{"project_id": i.ProjectID}); err != nil {
			return nil, err
		}
	}
	return a.syncAction(r, i, "unlock", store.Set{"locked": false, "locked_by": nil, "locked_reason": nil})
}

// syncAction applies an action that needs no host work, recording it.
func (a *API) syncAction(r *http.Request, i *store.Instance, action string, set store.Set) (*apiutil.Response, error) {
	err := a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.st.UpdateInstance(ctx(r), tx, i.UUID, store.Cond{NotDeleted: true}, set); err != nil {
			return err
		}
		c := caller(r)
		act := &store.Action{InstanceUUID: i.UUID, Action: action, RequestID: requestID(r), UserID: c.UserID, ProjectID: c.ProjectID}
		return a.st.InsertAction(ctx(r), tx, act)
	})
	if errors.Is(err, store.ErrPreempted) {
		return nil, serverNotFound(i.UUID)
	}
	if err != nil {
		return nil, internal(err)
	}
	return &apiutil.Response{Status: 202}, nil
}

func (a *API) resetState(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "state")
	if err != nil {
		return nil, err
	}
	st, _ := str(m["state"])
	if st != states.Active && st != states.Error {
		return nil, apiutil.BadRequest("Invalid input for field/attribute state. Value: %s. '%s' is not one of ['active', 'error']", st, st)
	}
	i, err := a.loadServer(r, id, ruleResetState)
	if err != nil {
		return nil, err
	}
	set := store.EndTask()
	set["vm_state"] = st
	return a.syncAction(r, i, "resetState", set)
}

func (a *API) consoleOutput(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
	m, err := args(arg, "length")
	if err != nil {
		return nil, err
	}
	length := int64(0)
	if v, ok := m["length"]; ok && string(v) != "null" {
		if length, err = intValue("length", v, -1, 1<<31); err != nil {
			return nil, err
		}
	}
	i, err := a.loadServer(r, id, ruleConsoleOutput)
	if err != nil {
		return nil, err
	}
	if i.HostName() == "" || i.VMState == states.Building {
		return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
	}
	out, err := a.servers.ConsoleOutput(ctx(r), i.HostName(), i.UUID, 0)
	if err != nil {
		return nil, apiutil.Conflict("Instance %s is not ready", i.UUID)
	}
	if length > 0 {
		lines := strings.SplitAfter(out, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if int64(len(lines)) > length {
			lines = lines[int64(len(lines))-length:]
		}
		out = strings.Join(lines, "")
	}
	return apiutil.JSON(200, map[string]any{"output": out}), nil
}
