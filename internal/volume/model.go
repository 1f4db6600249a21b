package volume

import "time"

// Volume statuses (Cinder's). The state machine, as the service drives it:
//
//	          create                    attachment create
//	(none) ──────────▶ creating ──▶ available ─────────────▶ reserved
//	                      │            │  ▲  ▲                 │ attachment update
//	                      ▼            │  │  └── detaching ◀── ▼ (connector)
//	                    error          │  │         ▲        attaching
//	                                   │  │         │           │ complete
//	             extend ┌──────────────┘  │         └──────── in-use
//	                    ▼                 │
//	                extending ────────────┘   (error_extending on failure)
//	available|error ──delete──▶ deleting ──▶ (gone)   (error_deleting on failure)
//	available|in-use ──upload to image──▶ uploading ──▶ previous status
//
// Every transitional status (creating, deleting, extending, uploading,
// attaching, detaching) is a persisted task: the volume row holds the
// step's arguments (Task), and a restarted service finishes the step or
// fails it cleanly (Service.Recover), so nothing stays creating forever.
const (
	StatusCreating       = "creating"
	StatusAvailable      = "available"
	StatusReserved       = "reserved"
	StatusAttaching      = "attaching"
	StatusInUse          = "in-use"
	StatusDetaching      = "detaching"
	StatusDeleting       = "deleting"
	StatusError          = "error"
	StatusErrorDeleting  = "error_deleting"
	StatusExtending      = "extending"
	StatusErrorExtending = "error_extending"
	StatusUploading      = "uploading"
	StatusMaintenance    = "maintenance"
	StatusDownloading    = "downloading"
)

// Attach statuses of a volume and of an attachment.
const (
	AttachDetached  = "detached"
	AttachAttached  = "attached"
	AttachAttaching = "attaching"
	AttachDetaching = "detaching"
	AttachReserved  = "reserved"
	AttachError     = "error_attaching"
)

// Task is the persisted argument of a volume's or snapshot's current
// transitional step.
type Task struct {
	Op         string `json:"op"`                    // create, delete, extend, upload, reimage
	NewSize    int    `json:"new_size,omitempty"`    // extend
	PrevStatus string `json:"prev_status,omitempty"` // upload
	ImageID    string `json:"image_id,omitempty"`    // upload target, reimage source
	DiskFormat string `json:"disk_format,omitempty"` // upload, reimage
	Force      bool   `json:"force,omitempty"`
	VolumeID   string `json:"volume_id,omitempty"` // backup restore target
}

// Backup statuses.
const (
	BackupCreating  = "creating"
	BackupAvailable = "available"
	BackupDeleting  = "deleting"
	BackupRestoring = "restoring"
	BackupError     = "error"
)

// Volume statuses while a backup reads or writes it.
const (
	StatusBackingUp       = "backing-up"
	StatusRestoringBackup = "restoring-backup"
)

// Backup is a full copy of a volume's data kept outside the backend
// (a compressed qcow2 file in the backup directory).
type Backup struct {
	ID          string
	ProjectID   string
	UserID      string
	VolumeID    string
	Name        *string
	Description *string
	Size        int
	Status      string
	FailReason  *string
	Location    *string
	Task        *Task
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Volume is a block storage volume.
type Volume struct {
	ID           string
	ProjectID    string
	UserID       string
	Name         *string
	Description  *string
	Size         int
	Status       string
	AttachStatus string
	Zone         string
	TypeID       string
	TypeName     string // joined from volume_types
	SnapshotID   *string
	SourceVolID  *string
	ImageID      *string
	Bootable     bool
	Multiattach  bool
	Host         *string // host@backend#pool
	Location     *string // backend's handle
	Metadata     map[string]string
	ImageMeta    map[string]string
	AdminMeta    map[string]string
	Task         *Task
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Attachments  []*Attachment
}

// Backend returns the backend name of the volume's host ("kumo@file#file").
func (v *Volume) Backend() string {
	if v.Host == nil {
		return ""
	}
	h := *v.Host
	for i := 0; i < len(h); i++ {
		if h[i] == '@' {
			h = h[i+1:]
			break
		}
	}
	for i := 0; i < len(h); i++ {
		if h[i] == '#' {
			return h[:i]
		}
	}
	return h
}

// Attachment is a volume attachment (Cinder's v3 attachment record);
// DeleteOnTermination and Tag are the Compute API's fields on it.
type Attachment struct {
	ID                  string
	VolumeID            string
	ProjectID           string
	InstanceUUID        *string
	Host                *string
	Mountpoint          *string
	Status              string
	Mode                string
	Connector           map[string]any
	DeleteOnTermination bool
	Tag                 *string
	AttachTime          time.Time
	DetachTime          time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Snapshot statuses.
const (
	SnapCreating      = "creating"
	SnapAvailable     = "available"
	SnapDeleting      = "deleting"
	SnapError         = "error"
	SnapErrorDeleting = "error_deleting"
)

// Snapshot is a point-in-time copy of a volume.
type Snapshot struct {
	ID          string
	ProjectID   string
	UserID      string
	VolumeID    string
	Name        *string
	Description *string
	Size        int
	Status      string
	Progress    string
	Location    *string
	Metadata    map[string]string
	Task        *Task
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// VolumeType is a volume type with its extra specs.
type VolumeType struct {
	ID          string
	Name        string
	Description *string
	IsPublic    bool
	ExtraSpecs  map[string]string
	QoSSpecsID  *string // the associated QoS specs (qos.go)
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Usage is what a project holds.
type Usage struct {
	Volumes   int64
	Snapshots int64
	Gigabytes int64
}
