package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/auth"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// Config tunes the identity service; the zero value gets defaults.
type Config struct {
	TokenTTL        time.Duration // default 1h
	LockoutAttempts int           // failed passwords before lockout; 0 = default 6, <0 = never
	LockoutDuration time.Duration // default 5m
	BcryptCost      int           // default 10
	CacheSize       int           // validated tokens kept in memory; default 50,000
	KeysToKeep      int           // token keys kept on rotation; default 3
	PollInterval    time.Duration // how often other processes' writes are noticed; default 1s
	// CredentialKeyFile holds the keys that encrypt credential blobs at
	// rest (credkeys.go), created on first start; empty stores them in
	// clear (tools and tests).
	CredentialKeyFile string
}

func (c *Config) defaults() {
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.LockoutAttempts == 0 {
		c.LockoutAttempts = 6
	}
	if c.LockoutDuration <= 0 {
		c.LockoutDuration = 5 * time.Minute
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = 10
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 50000
	}
	if c.KeysToKeep <= 0 {
		c.KeysToKeep = 3
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
}

// Service is the identity logic: authentication, token validation with an
// in-memory cache, and the CRUD rules the API applies.
type Service struct {
	store  *Store
	cfg    Config
	log    *slog.Logger
	policy *policy.Enforcer
	now    func() time.Time

	bus *bus.Bus // optional: announces and hears identity changes

	keys atomic.Pointer[keyRing]
	gen  atomic.Int64 // last identity generation seen

	mu    sync.RWMutex
	cache map[string]*cached
	snap  *snapshot // roles, implied roles, catalog, revocations at gen

	limits limitCache // resolved unified limits at gen (limits.go)
}

type cached struct {
	gen int64
	ctx *auth.Context
}

// snapshot is the slow-changing data every validation needs, reloaded
// when the generation moves.
type snapshot struct {
	gen      int64
	roles    map[string]*Role
	implied  map[string][]string
	catalog  []catalogEntry
	revAudit map[string]bool
	revUsers map[string]time.Time
}

// NewService returns the identity service on store.
func NewService(store *Store, cfg Config, enf *policy.Enforcer, log *slog.Logger) *Service {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, cfg: cfg, log: log, policy: enf, now: time.Now, cache: map[string]*cached{}}
}

// Start loads the token keys (creating the first one) and the generation.
func (s *Service) Start(ctx context.Context) error {
	keys, err := s.store.TokenKeys(ctx)
	if err != nil {
		return fmt.Errorf("identity: load token keys: %w", err)
	}
	if len(keys) == 0 {
		if err := s.store.AddTokenKey(ctx, newKeySecret(), s.cfg.KeysToKeep); err != nil {
			return fmt.Errorf("identity: create token key: %w", err)
		}
		if keys, err = s.store.TokenKeys(ctx); err != nil {
			return err
		}
	}
	kr, err := newKeyRing(keys)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	s.keys.Store(kr)
	if s.cfg.CredentialKeyFile != "" {
		if err := s.store.useCredentialKeys(s.cfg.CredentialKeyFile); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		n, bad, err := s.store.reencryptCredentials(ctx)
		if err != nil {
			return fmt.Errorf("identity: encrypt stored credentials: %w", err)
		}
		if n > 0 {
			s.log.Info("credentials encrypted with the primary credential key", "count", n)
		}
		if bad > 0 {
			s.log.Warn("credentials encrypted with keys missing from the credential key file: copy the file of the process that wrote them",
				"count", bad, "file", s.cfg.CredentialKeyFile)
		}
	}
	return s.Refresh(ctx)
}

// RotateKeys adds a new primary token key; tokens issued with the older
// kept keys stay valid.
func (s *Service) RotateKeys(ctx context.Context) error {
	if err := s.store.AddTokenKey(ctx, newKeySecret(), s.cfg.KeysToKeep); err != nil {
		return err
	}
	keys, err := s.store.TokenKeys(ctx)
	if err != nil {
		return err
	}
	kr, err := newKeyRing(keys)
	if err != nil {
		return err
	}
	s.keys.Store(kr)
	return s.Refresh(ctx)
}

// Refresh reads the generation and drops cached data if it moved.
func (s *Service) Refresh(ctx context.Context) error {
	g, err := s.store.Generation(ctx)
	if err != nil {
		return err
	}
	if old := s.gen.Swap(g); old != g {
		s.mu.Lock()
		clear(s.cache)
		s.mu.Unlock()
	}
	return nil
}

// Run polls the generation so that writes made by other processes (and
// key rotations) are seen within the poll interval.
func (s *Service) Run(ctx context.Context) error {
	if s.bus != nil {
		sub, err := s.listen()
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
	}
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	lastKeys := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("identity refresh failed", "err", err)
			}
			if time.Since(lastKeys) > time.Minute {
				lastKeys = time.Now()
				if keys, err := s.store.TokenKeys(ctx); err == nil {
					if kr, err := newKeyRing(keys); err == nil {
						s.keys.Store(kr)
					}
				}
			}
		}
	}
}

// changed is called after every write this process makes.
func (s *Service) changed(ctx context.Context) {
	if err := s.Refresh(ctx); err != nil {
		s.log.Warn("identity refresh after write failed", "err", err)
	}
	s.announce(ctx)
}

func (s *Service) snapshot(ctx context.Context) (*snapshot, error) {
	g := s.gen.Load()
	s.mu.RLock()
	sn := s.snap
	s.mu.RUnlock()
	if sn != nil && sn.gen == g {
		return sn, nil
	}
	sn = &snapshot{gen: g, roles: map[string]*Role{}, revAudit: map[string]bool{}, revUsers: map[string]time.Time{}}
	roles, err := s.store.ListRoles(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		sn.roles[r.ID] = r
	}
	if sn.implied, err = s.store.ImpliedRoles(ctx); err != nil {
		return nil, err
	}
	if sn.catalog, err = s.loadCatalog(ctx); err != nil {
		return nil, err
	}
	revs, err := s.store.Revocations(ctx, s.now())
	if err != nil {
		return nil, err
	}
	for _, r := range revs {
		switch r.Kind {
		case "audit_id":
			sn.revAudit[r.Value] = true
		case "user_id":
			sn.revUsers[r.Value] = r.IssuedBefore
		}
	}
	s.mu.Lock()
	if s.snap == nil || s.snap.gen <= g {
		s.snap = sn
	}
	s.mu.Unlock()
	return sn, nil
}

// ---- passwords ----

// Passwords are pre-hashed with SHA-256 so that bcrypt sees every byte of
// long passwords (bcrypt alone stops at 72 bytes), then hashed with bcrypt.
const hashPrefix = "sha256-bcrypt$"

func prehash(pw string) []byte {
	sum := sha256.Sum256([]byte(pw))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

func (s *Service) hashSecret(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(prehash(pw), s.cfg.BcryptCost)
	if err != nil {
		return "", err
	}
	return hashPrefix + string(h), nil
}

func checkSecret(hash, pw string) bool {
	if !strings.HasPrefix(hash, hashPrefix) {
		// Keep the timing of a real comparison.
		_ = subtle.ConstantTimeCompare([]byte(hash), []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash[len(hashPrefix):]), prehash(pw)) == nil
}

// ---- roles ----

// effectiveRoles returns the roles a user holds on a target through direct
// and group assignments, domain-inherited ones for projects, and implied
// roles.
func (s *Service) effectiveRoles(ctx context.Context, sn *snapshot, userID string, p *payload, projectDomain string) ([]auth.Role, error) {
	actors, err := s.actors(ctx, userID)
	if err != nil {
		return nil, err
	}
	var as []Assignment
	switch {
	case p.ProjectID != "":
		no, yes := false, true
		direct, err := s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserProject, GroupProject}, ActorIDs: actors, TargetID: p.ProjectID, Inherited: &no})
		if err != nil {
			return nil, err
		}
		as = direct
		// Assignments inherited from the parent projects and the domain.
		ancestors, err := s.ancestors(ctx, p.ProjectID)
		if err != nil {
			return nil, err
		}
		for _, anc := range ancestors {
			inh, err := s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserProject, GroupProject}, ActorIDs: actors, TargetID: anc, Inherited: &yes})
			if err != nil {
				return nil, err
			}
			as = append(as, inh...)
		}
		inh, err := s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserDomain, GroupDomain}, ActorIDs: actors, TargetID: projectDomain, Inherited: &yes})
		if err != nil {
			return nil, err
		}
		as = append(as, inh...)
	case p.DomainID != "":
		no := false
		as, err = s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserDomain, GroupDomain}, ActorIDs: actors, TargetID: p.DomainID, Inherited: &no})
	case p.System:
		as, err = s.store.ListAssignments(ctx, AssignmentFilter{Kinds: []string{UserSystem, GroupSystem}, ActorIDs: actors, TargetID: SystemTarget})
	}
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, a := range as {
		ids[a.RoleID] = true
	}
	return sn.expandRoles(ids), nil
}

// reachable returns the roles implied by id, directly or transitively,
// breadth first, without id itself.
func reachable(implied map[string][]string, id string) []string {
	seen := map[string]bool{id: true}
	var out []string
	for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
		for _, imp := range implied[queue[0]] {
			if !seen[imp] {
				seen[imp] = true
				out = append(out, imp)
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// ancestors lists the parent projects of a project, nearest first.
func (s *Service) ancestors(ctx context.Context, projectID string) ([]string, error) {
	var out []string
	for id := projectID; len(out) < 32; {
		p, err := s.store.GetProject(ctx, id)
		if err != nil {
			return nil, err
		}
		if p.ParentID == "" {
			return out, nil
		}
		out = append(out, p.ParentID)
		id = p.ParentID
	}
	return out, nil
}

// expandRoles adds implied roles and resolves names, sorted by name.
func (sn *snapshot) expandRoles(ids map[string]bool) []auth.Role {
	for id := range ids {
		for _, imp := range reachable(sn.implied, id) {
			ids[imp] = true
		}
	}
	out := make([]auth.Role, 0, len(ids))
	for id := range ids {
		if r, ok := sn.roles[id]; ok {
			out = append(out, auth.Role{ID: r.ID, Name: r.Name, DomainID: r.DomainID})
		}
	}
	slices.SortFunc(out, func(a, b auth.Role) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ---- tokens ----

var errTokenNotFound = errors.New("token not found")

// ValidateToken implements auth.Validator: a cache hit costs one map
// lookup; a miss decrypts the token and recomputes its roles.
func (s *Service) ValidateToken(ctx context.Context, tok string) (*auth.Context, error) {
	c, err := s.validate(ctx, tok)
	if errors.Is(err, errTokenNotFound) {
		return nil, apiutil.Unauthorized("The request you have made requires authentication.")
	}
	return c, err
}

// validateSubject validates a token named in X-Subject-Token: unknown,
// expired or revoked tokens are 404 as in Keystone.
func (s *Service) validateSubject(ctx context.Context, tok string) (*auth.Context, error) {
	c, err := s.validate(ctx, tok)
	if errors.Is(err, errTokenNotFound) {
		return nil, apiutil.NotFound("Could not recognize Fernet token")
	}
	return c, err
}

func (s *Service) validate(ctx context.Context, tok string) (*auth.Context, error) {
	g := s.gen.Load()
	s.mu.RLock()
	e := s.cache[tok]
	s.mu.RUnlock()
	if e != nil && e.gen == g {
		if s.now().Before(e.ctx.ExpiresAt) {
			return e.ctx, nil
		}
		return nil, errTokenNotFound
	}
	kr := s.keys.Load()
	if kr == nil {
		return nil, errors.New("identity: token keys not loaded")
	}
	p, err := kr.open(tok)
	if err != nil {
		return nil, errTokenNotFound
	}
	if !s.now().Before(p.expires()) {
		return nil, errTokenNotFound
	}
	sn, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range p.AuditIDs {
		if sn.revAudit[a] {
			return nil, errTokenNotFound
		}
	}
	if before, ok := sn.revUsers[p.UserID]; ok && !p.issued().After(before) {
		return nil, errTokenNotFound
	}
	c, err := s.buildContext(ctx, sn, p)
	if err != nil {
		return nil, err
	}
	c.Token = tok
	s.mu.Lock()
	if len(s.cache) >= s.cfg.CacheSize {
		clear(s.cache)
	}
	s.cache[tok] = &cached{gen: sn.gen, ctx: c}
	s.mu.Unlock()
	return c, nil
}

// buildContext resolves a payload against current data: the user, its
// scope and its roles must all still be valid.
func (s *Service) buildContext(ctx context.Context, sn *snapshot, p *payload) (*auth.Context, error) {
	u, err := s.store.GetUser(ctx, p.UserID)
	if errors.Is(err, apiutil.ErrNotFound) {
		return nil, errTokenNotFound
	}
	if err != nil {
		return nil, err
	}
	ud, err := s.store.GetDomain(ctx, u.DomainID)
	if err != nil {
		return nil, errTokenNotFound
	}
	if !u.Enabled || !ud.Enabled {
		return nil, errTokenNotFound
	}
	c := &auth.Context{
		Methods: p.Methods, AuditIDs: p.AuditIDs, IssuedAt: p.issued(), ExpiresAt: p.expires(),
		UserID: u.ID, UserName: u.Name, UserDomainID: ud.ID, UserDomainName: ud.Name, System: p.System,
	}
	projectDomain := ""
	switch {
	case p.ProjectID != "":
		pr, err := s.store.GetProject(ctx, p.ProjectID)
		if err != nil {
			return nil, errTokenNotFound
		}
		pd, err := s.store.GetDomain(ctx, pr.DomainID)
		if err != nil || !pr.Enabled || !pd.Enabled {
			return nil, errTokenNotFound
		}
		c.ProjectID, c.ProjectName, c.ProjectDomainID, c.ProjectDomainName = pr.ID, pr.Name, pd.ID, pd.Name
		projectDomain = pd.ID
	case p.DomainID != "":
		d, err := s.store.GetDomain(ctx, p.DomainID)
		if err != nil || !d.Enabled {
			return nil, errTokenNotFound
		}
		c.DomainID, c.DomainName = d.ID, d.Name
	}
	if p.ProjectID != "" || p.DomainID != "" || p.System {
		roles, err := s.effectiveRoles(ctx, sn, u.ID, p, projectDomain)
		if err != nil {
			return nil, err
		}
		if p.TrustID != "" {
			if roles, err = s.trustRoles(ctx, sn, p, u.ID, roles, projectDomain); err != nil {
				return nil, err
			}
			c.TrustID = p.TrustID
		}
		if p.AppCredID != "" {
			ac, err := s.store.GetAppCred(ctx, p.AppCredID)
			if err != nil {
				return nil, errTokenNotFound
			}
			if !ac.ExpiresAt.IsZero() && !s.now().Before(ac.ExpiresAt) {
				return nil, errTokenNotFound
			}
			allowed := map[string]bool{}
			for _, id := range ac.RoleIDs {
				allowed[id] = true
			}
			// The credential's roles, as far as the user still holds them.
			userRoles := roles
			roles = slices.DeleteFunc(sn.expandRoles(allowed), func(r auth.Role) bool { return !hasRoleID(userRoles, r.ID) })
			c.AppCred = &auth.AppCred{ID: ac.ID, Name: ac.Name, Unrestricted: ac.Unrestricted}
			if ac.AccessRules != nil {
				c.AppCred.AccessRules = []auth.AccessRule{}
				for _, r := range ac.AccessRules {
					c.AppCred.AccessRules = append(c.AppCred.AccessRules, auth.AccessRule{Service: r.Service, Path: r.Path, Method: r.Method})
				}
			}
		}
		if len(roles) == 0 {
			return nil, errTokenNotFound
		}
		c.Roles = roles
	}
	return c, nil
}

func hasRoleID(rs []auth.Role, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// trustRoles narrows a trust-scoped token's roles to those of the trust
// that its trustor still holds on the project. userRoles are the roles of
// the token's user (the trustor when the trust impersonates).
func (s *Service) trustRoles(ctx context.Context, sn *snapshot, p *payload, userID string, userRoles []auth.Role, projectDomain string) ([]auth.Role, error) {
	t, err := s.store.GetTrust(ctx, p.TrustID)
	if errors.Is(err, apiutil.ErrNotFound) {
		return nil, errTokenNotFound
	}
	if err != nil {
		return nil, err
	}
	if t.ProjectID != p.ProjectID || (!t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt)) {
		return nil, errTokenNotFound
	}
	trustor := userRoles
	if userID != t.TrustorUserID {
		tu, err := s.store.GetUser(ctx, t.TrustorUserID)
		if err != nil || !tu.Enabled {
			return nil, errTokenNotFound
		}
		if trustor, err = s.effectiveRoles(ctx, sn, t.TrustorUserID, p, projectDomain); err != nil {
			return nil, err
		}
	}
	allowed := map[string]bool{}
	for _, id := range t.RoleIDs {
		allowed[id] = true
	}
	return slices.DeleteFunc(sn.expandRoles(allowed), func(r auth.Role) bool { return !hasRoleID(trustor, r.ID) }), nil
}
