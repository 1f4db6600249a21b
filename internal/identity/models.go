package identity

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Extra holds the free-form attributes Keystone keeps beside the standard
// ones (a user's email, for example).
type Extra map[string]any

type Domain struct {
	ID, Name, Description string
	Enabled               bool
	Extra                 Extra
	CreatedAt             time.Time
}

type Project struct {
	ID, Name, DomainID string
	ParentID           string // empty for a top-level project (its parent is its domain)
	Description        string
	Enabled            bool
	Tags               []string
	Extra              Extra
	CreatedAt          time.Time
}

type User struct {
	ID, Name, DomainID string
	Enabled            bool
	DefaultProjectID   string
	Description        *string
	PasswordHash       string
	PasswordExpiresAt  time.Time
	PasswordCreatedAt  time.Time
	FailedAuthCount    int
	FailedAuthAt       time.Time
	Extra              Extra
	CreatedAt          time.Time
}

type Group struct {
	ID, Name, DomainID, Description string
	Extra                           Extra
}

type Role struct {
	ID, Name    string
	DomainID    string // empty for global roles
	Description string
	Extra       Extra
}

// Assignment kinds.
const (
	UserProject  = "user_project"
	GroupProject = "group_project"
	UserDomain   = "user_domain"
	GroupDomain  = "group_domain"
	UserSystem   = "user_system"
	GroupSystem  = "group_system"
)

// SystemTarget is the target id of system role assignments.
const SystemTarget = "system"

type Assignment struct {
	Kind      string
	ActorID   string // user or group id
	TargetID  string // project id, domain id or "system"
	RoleID    string
	Inherited bool
}

type Region struct {
	ID, Description, ParentRegionID string
	Extra                           Extra
}

type CatalogService struct {
	ID, Type, Name, Description string
	Enabled                     bool
	Extra                       Extra
}

type Endpoint struct {
	ID, ServiceID, Interface, URL, RegionID string
	Enabled                                 bool
	Extra                                   Extra
}

type AppCred struct {
	ID, Name, UserID, ProjectID string
	SecretHash                  string
	Description                 *string
	ExpiresAt                   time.Time
	Unrestricted                bool
	RoleIDs                     []string
	AccessRules                 []*AccessRule // nil: any request
	CreatedAt                   time.Time
}

// newID returns a Keystone-style id: 32 hex characters.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
