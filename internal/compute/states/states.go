// Package states names Nova's vm_state and task_state values and maps
// them to the API's server status. The transitions between them are
// drawn and driven in internal/compute/conductor.
package states

// vm_state values.
const (
	Active           = "active"
	Building         = "building"
	Paused           = "paused"
	Suspended        = "suspended"
	Stopped          = "stopped"
	Rescued          = "rescued"
	Resized          = "resized"
	SoftDeleted      = "soft-delete"
	Deleted          = "deleted"
	Error            = "error"
	Shelved          = "shelved"
	ShelvedOffloaded = "shelved_offloaded"
)

// task_state values.
const (
	Scheduling         = "scheduling"
	Networking         = "networking"
	Spawning           = "spawning"
	ImageSnapshot      = "image_snapshot"
	ImageUploading     = "image_uploading"
	UpdatingPassword   = "updating_password"
	ResizePrep         = "resize_prep"
	ResizeMigrating    = "resize_migrating"
	ResizeFinish       = "resize_finish"
	ResizeReverting    = "resize_reverting"
	ResizeConfirming   = "resize_confirming"
	Rebooting          = "rebooting"
	RebootingHard      = "rebooting_hard"
	Pausing            = "pausing"
	Unpausing          = "unpausing"
	Suspending         = "suspending"
	Resuming           = "resuming"
	PoweringOff        = "powering-off"
	PoweringOn         = "powering-on"
	Rescuing           = "rescuing"
	Unrescuing         = "unrescuing"
	Rebuilding         = "rebuilding"
	RebuildSpawning    = "rebuild_spawning"
	Migrating          = "migrating"
	Deleting           = "deleting"
	SoftDeleting       = "soft-deleting"
	Restoring          = "restoring"
	Shelving           = "shelving"
	ShelvingOffloading = "shelving_offloading"
	Unshelving         = "unshelving"
)

// Status is the API status of a vm_state/task_state pair.
func Status(vm string, task *string) string {
	t := ""
	if task != nil {
		t = *task
	}
	switch vm {
	case Building:
		return "BUILD"
	case Active:
		switch t {
		case Rebooting:
			return "REBOOT"
		case RebootingHard:
			return "HARD_REBOOT"
		case UpdatingPassword:
			return "PASSWORD"
		case Rebuilding, RebuildSpawning:
			return "REBUILD"
		case Migrating:
			return "MIGRATING"
		case ResizePrep, ResizeMigrating, ResizeFinish:
			return "RESIZE"
		}
		return "ACTIVE"
	case Stopped:
		switch t {
		case ResizePrep, ResizeMigrating, ResizeFinish:
			return "RESIZE"
		case Rebuilding, RebuildSpawning:
			return "REBUILD"
		}
		return "SHUTOFF"
	case Resized:
		if t == ResizeReverting {
			return "REVERT_RESIZE"
		}
		return "VERIFY_RESIZE"
	case Paused:
		return "PAUSED"
	case Suspended:
		return "SUSPENDED"
	case Rescued:
		return "RESCUE"
	case Error:
		if t == Rebuilding || t == RebuildSpawning {
			return "REBUILD"
		}
		return "ERROR"
	case Deleted:
		return "DELETED"
	case SoftDeleted:
		return "SOFT_DELETED"
	case Shelved:
		return "SHELVED"
	case ShelvedOffloaded:
		return "SHELVED_OFFLOADED"
	}
	return "UNKNOWN"
}

// ForStatus returns the vm_states and task_states (nil: any) a status
// filter selects; ok is false for an unknown status.
func ForStatus(status string) (vm []string, task []string, ok bool) {
	switch status {
	case "ACTIVE":
		return []string{Active}, []string{""}, true
	case "BUILD":
		return []string{Building}, nil, true
	case "REBOOT":
		return []string{Active}, []string{Rebooting}, true
	case "HARD_REBOOT":
		return []string{Active}, []string{RebootingHard}, true
	case "PASSWORD":
		return []string{Active}, []string{UpdatingPassword}, true
	case "REBUILD":
		return []string{Active, Stopped, Error}, []string{Rebuilding, RebuildSpawning}, true
	case "MIGRATING":
		return []string{Active}, []string{Migrating}, true
	case "RESIZE":
		return []string{Active, Stopped}, []string{ResizePrep, ResizeMigrating, ResizeFinish}, true
	case "SHUTOFF":
		return []string{Stopped}, nil, true
	case "VERIFY_RESIZE":
		return []string{Resized}, nil, true
	case "REVERT_RESIZE":
		return []string{Resized}, []string{ResizeReverting}, true
	case "PAUSED":
		return []string{Paused}, nil, true
	case "SUSPENDED":
		return []string{Suspended}, nil, true
	case "RESCUE":
		return []string{Rescued}, nil, true
	case "ERROR":
		return []string{Error}, nil, true
	case "DELETED":
		return []string{Deleted}, nil, true
	case "SOFT_DELETED":
		return []string{SoftDeleted}, nil, true
	case "SHELVED":
		return []string{Shelved}, nil, true
	case "SHELVED_OFFLOADED":
		return []string{ShelvedOffloaded}, nil, true
	}
	return nil, nil, false
}
