// Package auth carries the identity of the caller of an API request: who
// they are, what their token is scoped to and which roles they hold. The
// identity service produces it when it validates a token; every other
// service reads it from the request context.
package auth

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/policy"
)

// Context is a validated token as the services see it.
type Context struct {
	Token     string
	Methods   []string
	AuditIDs  []string
	IssuedAt  time.Time
	ExpiresAt time.Time

	UserID, UserName             string
	UserDomainID, UserDomainName string

	// Exactly one of project, domain or system scope is set, or none for an
	// unscoped token.
	ProjectID, ProjectName             string
	ProjectDomainID, ProjectDomainName string
	DomainID, DomainName               string
	System                             bool

	Roles   []Role // effective roles, implied ones included
	AppCred *AppCred
	TrustID string // set on tokens scoped with an OS-TRUST trust
}

// Role is a role held through the token's scope.
type Role struct {
	ID, Name string
	DomainID string // empty for global roles
}

// AppCred names the application credential a token was issued from.
type AppCred struct {
	ID, Name     string
	Unrestricted bool
	// AccessRules, when not nil, are the only requests the token may make.
	AccessRules []AccessRule
}

// AccessRule permits requests of one method to paths matching Path
// ("*" matches one path segment, "**" any number) of a service type.
type AccessRule struct {
	Service, Path, Method string
}

// Permits reports whether the access rules let a token from the
// credential make the request; a credential without rules permits all.
func (a *AppCred) Permits(serviceTypes []string, path, method string) bool {
	if a == nil || a.AccessRules == nil {
		return true
	}
	for _, r := range a.AccessRules {
		if r.Method == method && slices.Contains(serviceTypes, r.Service) && globPath(r.Path, path) {
			return true
		}
	}
	return false
}

// globPath matches a path against a pattern of segments where "*" is any
// one segment and "**" any number of segments (none included).
func globPath(pattern, path string) bool {
	return globSegs(strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/"))
}

func globSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case "**":
			for i := 0; i <= len(segs); i++ {
				if globSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(segs) == 0 || segs[0] == "" {
				return false
			}
		default:
			if len(segs) == 0 || segs[0] != pat[0] {
				return false
			}
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// HasRole reports whether the token carries the role name (case-insensitive).
func (c *Context) HasRole(name string) bool {
	for _, r := range c.Roles {
		if strings.EqualFold(r.Name, name) {
			return true
		}
	}
	return false
}

// IsAdmin reports whether the caller holds the admin role. Like OpenStack's
// defaults with scope enforcement off, admin on any scope is cloud admin.
func (c *Context) IsAdmin() bool { return c.HasRole("admin") }

// RoleNames lists the role names, lower case.
func (c *Context) RoleNames() []string {
	out := make([]string, 0, len(c.Roles))
	for _, r := range c.Roles {
		out = append(out, strings.ToLower(r.Name))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Scoped reports whether the token has any scope.
func (c *Context) Scoped() bool { return c.ProjectID != "" || c.DomainID != "" || c.System }

// Policy returns the credentials the policy engine checks rules against.
func (c *Context) Policy() policy.Credentials {
	return policy.Credentials{
		UserID:          c.UserID,
		UserDomainID:    c.UserDomainID,
		ProjectID:       c.ProjectID,
		ProjectDomainID: c.ProjectDomainID,
		DomainID:        c.DomainID,
		System:          c.System,
		Roles:           c.RoleNames(),
	}
}

// Validator turns a token string into a Context; the identity service
// implements it. Errors are API errors (401 for bad or expired tokens).
type Validator interface {
	ValidateToken(ctx context.Context, token string) (*Context, error)
}

type ctxKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// From returns the caller of the request, or nil when unauthenticated.
func From(ctx context.Context) *Context {
	c, _ := ctx.Value(ctxKey{}).(*Context)
	return c
}
