package image

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Image status values. The life cycle:
//
//	queued ──PUT file──▶ saving ──ok──▶ active ◀──reactivate── deactivated
//	  │  ▲                 │ fail/interrupted        └──deactivate──▶
//	  │  └─────────────────┘
//	  ├──PUT stage──▶ uploading ──POST import──▶ importing ──ok──▶ active
//	  │                  ▲       (glance-direct)     ▲  │ fail
//	  └──POST import (web-download) ─────────────────┘  │
//	queued ◀─────────────┴──────────────────────────────┘
//
// (A failed glance-direct import returns to queued, its staged data
// dropped; so does a failed web-download, import_web.go.)
//
// Kumo deletes image rows outright, so "deleted" and "pending_delete"
// never appear, and a failed upload returns the image to queued instead
// of "killed" so that the client can retry.
const (
	StatusQueued      = "queued"
	StatusSaving      = "saving"
	StatusActive      = "active"
	StatusKilled      = "killed"
	StatusDeleted     = "deleted"
	StatusPending     = "pending_delete"
	StatusDeactivated = "deactivated"
	StatusUploading   = "uploading"
	StatusImporting   = "importing"
)

var allStatuses = []string{StatusQueued, StatusSaving, StatusActive, StatusKilled, StatusDeleted,
	StatusPending, StatusDeactivated, StatusUploading, StatusImporting}

// Visibility values.
const (
	VisPublic    = "public"
	VisPrivate   = "private"
	VisShared    = "shared"
	VisCommunity = "community"
)

var (
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
)

// Member status values.
const (
	MemberPending  = "pending"
	MemberAccepted = "accepted"
	MemberRejected = "rejected"
)

// Image is an image record. Nullable attributes are pointers.
type Image struct {
	ID              string
	Name            *string
	Status          string
	Visibility      string
	Owner           string
	DiskFormat      *string
	ContainerFormat *string
	Size            *int64
	VirtualSize     *int64
	Checksum        *string
	HashAlgo        *string
	HashValue       *string
	MinDisk         int64
	MinRAM          int64
	Protected       bool
	Hidden          bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Tags            []string
	Properties      map[string]string
}

// Clone returns a deep copy.
func (img *Image) Clone() *Image {
	c := *img
	c.Tags = append([]string(nil), img.Tags...)
	c.Properties = make(map[string]string, len(img.Properties))
	for k, v := range img.Properties {
		c.Properties[k] = v
	}
	return &c
}

// Member is the membership of a project in a shared image.
type Member struct {
	ImageID   string
	MemberID  string
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store sentinels; the service maps them to API errors.
var (
	ErrNotFound  = errors.New("image: not found")
	ErrDuplicate = errors.New("image: already exists")
)

func ptr[T any](v T) *T { return &v }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
