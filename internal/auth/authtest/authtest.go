// Package authtest offers a token validator for API tests of services other
// than identity: tokens are registered up front with the caller they stand for.
package authtest

import (
	"context"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
)

// Validator maps token strings to callers.
type Validator struct {
	mu     sync.RWMutex
	tokens map[string]*auth.Context
}

// New returns an empty validator.
func New() *Validator { return &Validator{tokens: map[string]*auth.Context{}} }

// Add registers token for a project-scoped caller with the given role names
// and returns the token.
func (v *Validator) Add(token, userID, projectID string, roles ...string) string {
	c := &auth.Context{
		Token: token, UserID: userID, UserName: userID, UserDomainID: "default", UserDomainName: "Default",
		ProjectID: projectID, ProjectName: projectID, ProjectDomainID: "default", ProjectDomainName: "Default",
		Methods: []string{"password"}, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
	}
	for _, r := range roles {
		c.Roles = append(c.Roles, auth.Role{ID: r + "-id", Name: r})
	}
	v.mu.Lock()
	v.tokens[token] = c
	v.mu.Unlock()
	return token
}

// ValidateToken implements auth.Validator.
func (v *Validator) ValidateToken(_ context.Context, token string) (*auth.Context, error) {
	v.mu.RLock()
	c, ok := v.tokens[token]
	v.mu.RUnlock()
	if !ok {
		return nil, apiutil.Unauthorized("The request you have made requires authentication.")
	}
	return c, nil
}

// NewCallers returns a validator with the four callers the service API
// tests share: tokens "admin" (user admin-u, project p-admin, admin),
// "alice" (member of p1), "rob" (reader of p1) and "bob" (member of p2).
func NewCallers() *Validator {
	v := New()
	v.Add("admin", "admin-u", "p-admin", "admin", "member", "reader")
	v.Add("alice", "alice", "p1", "member", "reader")
	v.Add("rob", "rob", "p1", "reader")
	v.Add("bob", "bob", "p2", "member", "reader")
	return v
}
