package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

var (
	projectReader = Credentials{
		UserID: "u1", UserDomainID: "default",
		ProjectID: "p1", ProjectDomainID: "default",
		Roles: []string{"reader"},
	}
	projectMember = Credentials{
		UserID: "u2", UserDomainID: "default",
		ProjectID: "p1", ProjectDomainID: "default",
		Roles: []string{"member", "reader"},
	}
	domainAdmin = Credentials{
		UserID: "u3", UserDomainID: "d1",
		DomainID: "d1",
		Roles:    []string{"admin", "member", "reader"},
	}
	systemAdmin = Credentials{
		UserID: "admin", UserDomainID: "default",
		System: true,
		Roles:  []string{"Admin", "Member", "Reader"},
	}
	legacyAdmin = Credentials{UserID: "root", IsAdmin: true}
	nobody      = Credentials{}
)

// eval1 compiles a single rule "r" with the given check and evaluates it.
func eval1(t *testing.T, check string, c Credentials, target map[string]string) bool {
	t.Helper()
	e, err := New([]Rule{{Name: "r", Check: check}}, nil)
	if err != nil {
		t.Fatalf("New(%q): %v", check, err)
	}
	return e.Allowed("r", c, target)
}

func TestChecks(t *testing.T) {
	target := map[string]string{
		"project_id":            "p1",
		"other_project":         "p2",
		"target.user.domain_id": "default",
		"target.user.id":        "u1",
		"empty":                 "",
		"role_name":             "READER",
		"suffix":                "1",
		"bool":                  "true",
	}
	tests := []struct {
		check string
		creds Credentials
		want  bool
	}{
		// Constants.
		{"@", nobody, true},
		{"!", systemAdmin, false},
		{"", nobody, true},
		{"   ", nobody, true},

		// role: checks are case-insensitive on both sides.
		{"role:reader", projectReader, true},
		{"role:READER", projectReader, true},
		{"role:admin", systemAdmin, true},
		{"role:admin", projectMember, false},
		{"role:admin", nobody, false},
		{"role:'reader'", projectReader, true},
		{"role:%(role_name)s", projectReader, true},
		{"role:%(missing)s", projectReader, false},
		{"role:reade%(missing)s", projectReader, false},

		// Attribute checks against target substitutions.
		{"project_id:%(project_id)s", projectReader, true},
		{"project_id:%(other_project)s", projectReader, false},
		{"project_id:%(missing)s", projectReader, false},
		{"project_id:%(project_id)s", domainAdmin, false},
		{"tenant_id:%(project_id)s", projectReader, true},
		{"tenant:%(project_id)s", projectReader, true},
		{"user_id:%(target.user.id)s", projectReader, true},
		{"user_id:%(target.user.id)s", projectMember, false},
		{"user_domain_id:%(target.user.domain_id)s", projectReader, true},
		{"user_domain_id:%(target.user.domain_id)s", domainAdmin, false},
		{"project_domain_id:%(target.user.domain_id)s", projectMember, true},
		{"domain_id:d1", domainAdmin, true},
		{"domain_id:d1", projectMember, false},
		{"project_id:p%(suffix)s", projectReader, true},
		{"project_id:%(suffix)s", projectReader, false},
		{"project_id:p%(suffix)s%(suffix)s", projectReader, false},

		// An unset credential attribute never matches, even an empty target value.
		{"domain_id:%(empty)s", projectReader, false},
		{"project_id:%(empty)s", nobody, false},

		// Literals.
		{"project_id:p1", projectReader, true},
		{"project_id:P1", projectReader, false}, // IDs are case-sensitive
		{"project_id:'p1'", projectReader, true},
		{`project_id:"p1"`, projectReader, true},
		{"user_id:'%(project_id)s'", Credentials{UserID: "%(project_id)s"}, true},
		{"user_id:'a b:c (d)'", Credentials{UserID: "a b:c (d)"}, true},
		{"user_id:100%%", Credentials{UserID: "100%"}, true},
		{"system_scope:all", systemAdmin, true},
		{"system_scope:all", domainAdmin, false},
		{"system_scope:all", nobody, false},

		// Booleans.
		{"is_admin:True", legacyAdmin, true},
		{"is_admin:True", systemAdmin, false},
		{"is_admin:true", legacyAdmin, true},
		{"is_admin:False", systemAdmin, true},
		{"is_admin:False", legacyAdmin, false},
		{"is_admin:'True'", legacyAdmin, true},
		{"is_admin:%(bool)s", legacyAdmin, true},
		{"is_admin:%(bool)s", nobody, false},
		{"project_id:True", Credentials{ProjectID: "True"}, true},

		// Operators (keywords are case-insensitive).
		{"role:reader and role:member", projectReader, false},
		{"role:reader and role:member", projectMember, true},
		{"role:reader AND role:member", projectMember, true},
		{"role:admin or role:member", projectReader, false},
		{"role:admin or role:member", projectMember, true},
		{"role:admin Or role:member", projectMember, true},
		{"not role:admin", projectReader, true},
		{"not role:admin", systemAdmin, false},
		{"NOT role:admin", projectReader, true},
		{"not not role:admin", systemAdmin, true},
		{"not !", nobody, true},
		{"not @", nobody, false},
		{"@ and ! or @", nobody, true},
		{"! or ! or ! or @", nobody, true},
		{"@ and @ and @ and !", nobody, false},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			if got := eval1(t, tt.check, tt.creds, target); got != tt.want {
				t.Errorf("%q with %+v = %v, want %v", tt.check, tt.creds, got, tt.want)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	// Evaluate each check for every combination of the three role-based
	// variables a, b, c, and compare with the expected boolean function.
	tests := []struct {
		check string
		want  func(a, b, c bool) bool
	}{
		{"role:a or role:b and role:c", func(a, b, c bool) bool { return a || (b && c) }},
		{"role:a and role:b or role:c", func(a, b, c bool) bool { return (a && b) || c }},
		{"(role:a or role:b) and role:c", func(a, b, c bool) bool { return (a || b) && c }},
		{"role:a and (role:b or role:c)", func(a, b, c bool) bool { return a && (b || c) }},
		{"not role:a and role:b", func(a, b, c bool) bool { return !a && b }},
		{"not role:a or role:b", func(a, b, c bool) bool { return !a || b }},
		{"not (role:a and role:b)", func(a, b, c bool) bool { return !(a && b) }},
		{"not (role:a or role:b) and role:c", func(a, b, c bool) bool { return !(a || b) && c }},
		{"role:a or not role:b and not role:c", func(a, b, c bool) bool { return a || (!b && !c) }},
		{"((role:a))", func(a, b, c bool) bool { return a }},
		{"(role:a)and(role:b)", func(a, b, c bool) bool { return a && b }},
		{"(role:a or (role:b and (not role:c)))", func(a, b, c bool) bool { return a || (b && !c) }},
		{"role:a or role:b or role:c", func(a, b, c bool) bool { return a || b || c }},
		{"(role:a or role:b) or (role:c)", func(a, b, c bool) bool { return a || b || c }},
		{"not role:a and not role:b and not role:c", func(a, b, c bool) bool { return !a && !b && !c }},
	}
	for _, tt := range tests {
		e, err := New([]Rule{{Name: "r", Check: tt.check}}, nil)
		if err != nil {
			t.Fatalf("New(%q): %v", tt.check, err)
		}
		for i := 0; i < 8; i++ {
			a, b, c := i&4 != 0, i&2 != 0, i&1 != 0
			var roles []string
			for _, x := range []struct {
				on   bool
				name string
			}{{a, "a"}, {b, "b"}, {c, "c"}} {
				if x.on {
					roles = append(roles, x.name)
				}
			}
			got := e.Allowed("r", Credentials{Roles: roles}, nil)
			if want := tt.want(a, b, c); got != want {
				t.Errorf("%q with a=%v b=%v c=%v: got %v, want %v", tt.check, a, b, c, got, want)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		check   string
		wantMsg string
	}{
		{"role:admin and", "expected a check, found end of check string"},
		{"or role:admin", `expected a check, found "or"`},
		{"role:admin or or role:b", `expected a check, found "or"`},
		{"role:a role:b", `unexpected "role:b"`},
		{"not", "expected a check"},
		{"(role:admin", `expected ")"`},
		{"role:admin)", `unbalanced ")"`},
		{"()", `expected a check, found ")"`},
		{"admin", `invalid check "admin"`},
		{"rule:", "missing rule name"},
		{"role:", "missing value"},
		{"project_id:", "missing value"},
		{"Role:admin", `unknown check kind or credential attribute "Role"`},
		{"http://example.com/check", `unknown check kind or credential attribute "http"`},
		{"token.is_admin_project:True", "unknown check kind"},
		{"'Member':%(role.name)s", "unknown check kind"},
		{"is_admin:yes", "is_admin must be compared with True or False"},
		{"project_id:%(project_id)", `"%(key)s"`},
		{"project_id:%(project_id", `unterminated "%("`},
		{"project_id:%()s", "empty substitution"},
		{"project_id:%d", `literal "%" must be written "%%"`},
		{"project_id:100%", `literal "%" must be written "%%"`},
		{"project_id:'p1", "unterminated quoted literal"},
		{"project_id:'p1'x", "quoted literal must span the whole value"},
		{"project_id:x'p1'", "quoted literal must span the whole value"},
		{"project_id:''", "empty quoted literal"},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			_, err := New([]Rule{{Name: "svc:do_thing", Check: tt.check}}, nil)
			if err == nil {
				t.Fatalf("New(%q) succeeded, want error", tt.check)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error %v does not wrap ErrInvalidPolicy", err)
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Rule != "svc:do_thing" || re.Check != tt.check {
				t.Errorf("error %v is not a RuleError for the rule", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"svc:do_thing"`) || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q should name the rule and contain %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestParseErrorOffset(t *testing.T) {
	_, err := New([]Rule{{Name: "r", Check: "role:a and project_id:%(x)d"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "at offset 22") {
		t.Errorf("want error at offset 22, got %v", err)
	}
}

func TestAllParseErrorsReported(t *testing.T) {
	_, err := New([]Rule{
		{Name: "a", Check: "role:"},
		{Name: "b", Check: "role:ok"},
		{Name: "c", Check: "and"},
	}, nil)
	if err == nil {
		t.Fatal("want error")
	}
	for _, s := range []string{`rule "a"`, `rule "c"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

func TestRuleReferences(t *testing.T) {
	e, err := New([]Rule{
		{Name: "admin_required", Check: "role:admin or is_admin:True"},
		{Name: "owner", Check: "user_id:%(user_id)s"},
		{Name: "admin_or_owner", Check: "rule:admin_required or rule:owner"},
		{Name: "identity:get_user", Check: "rule:admin_or_owner"},
		{Name: "identity:delete_user", Check: "rule:admin_required and not rule:owner"},
		{Name: "compute:ns:get", Check: "@"},
		{Name: "compute:ns:alias", Check: "rule:compute:ns:get"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := map[string]string{"user_id": "u1"}
	tests := []struct {
		rule  string
		creds Credentials
		want  bool
	}{
		{"identity:get_user", projectReader, true},  // owner
		{"identity:get_user", projectMember, false}, // neither
		{"identity:get_user", systemAdmin, true},    // admin
		{"identity:get_user", legacyAdmin, true},    // is_admin
		{"identity:delete_user", systemAdmin, true},
		{"identity:delete_user", Credentials{UserID: "u1", Roles: []string{"admin"}}, false},
		{"compute:ns:alias", nobody, true},
	}
	for _, tt := range tests {
		if got := e.Allowed(tt.rule, tt.creds, target); got != tt.want {
			t.Errorf("%s for %s: got %v, want %v", tt.rule, tt.creds.UserID, got, tt.want)
		}
	}
}

func TestUnknownReference(t *testing.T) {
	_, err := New([]Rule{
		{Name: "a", Check: "role:x or rule:missing"},
	}, nil)
	if err == nil {
		t.Fatal("want error")
	}
	if !errors.Is(err, ErrUnknownRule) || !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("error %v should wrap ErrUnknownRule and ErrInvalidPolicy", err)
	}
	if want := `policy: rule "a": references undefined rule "missing"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q should contain %q", err, want)
	}
}

func TestCycles(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"self", []Rule{{Name: "a", Check: "role:x or rule:a"}}, "a -> a"},
		{"pair", []Rule{{Name: "a", Check: "rule:b"}, {Name: "b", Check: "not rule:a"}}, "a -> b -> a"},
		{"triangle", []Rule{
			{Name: "root", Check: "rule:x"},
			{Name: "x", Check: "@ and rule:y"},
			{Name: "y", Check: "(role:r or rule:z)"},
			{Name: "z", Check: "rule:x"},
		}, "x -> y -> z -> x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.rules, nil)
			if err == nil {
				t.Fatal("want error")
			}
			if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "cycle: "+tt.want) {
				t.Errorf("got %v, want cycle %s", err, tt.want)
			}
		})
	}
	// A diamond is not a cycle.
	if _, err := New([]Rule{
		{Name: "top", Check: "rule:l and rule:r"},
		{Name: "l", Check: "rule:bottom"},
		{Name: "r", Check: "rule:bottom"},
		{Name: "bottom", Check: "@"},
	}, nil); err != nil {
		t.Errorf("diamond: %v", err)
	}
}

func TestDuplicateAndEmptyNames(t *testing.T) {
	if _, err := New([]Rule{{Name: "a"}, {Name: "a"}}, nil); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("duplicate default: got %v", err)
	}
	if _, err := New([]Rule{{Name: "", Check: "@"}}, nil); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("empty name: got %v", err)
	}
	if _, err := New(nil, map[string]string{"": "@"}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("empty override name: got %v", err)
	}
}

var identityDefaults = []Rule{
	{Name: "admin_required", Check: "role:admin", Description: "Admin role"},
	{Name: "identity:get_user", Check: "rule:admin_required or user_id:%(target.user.id)s", Description: "Show user details."},
	{Name: "identity:list_users", Check: "rule:admin_required", Description: "List users."},
}

func TestOverrides(t *testing.T) {
	e, err := New(identityDefaults, map[string]string{
		"identity:list_users": "role:reader and rule:custom",
		"custom":              "domain_id:%(domain_id)s",
	})
	if err != nil {
		t.Fatal(err)
	}
	target := map[string]string{"domain_id": "d1"}
	// The default allowed admins; the override allows domain readers only.
	if e.Allowed("identity:list_users", systemAdmin, target) {
		t.Error("override should replace default: system admin allowed")
	}
	if !e.Allowed("identity:list_users", domainAdmin, target) {
		t.Error("override should allow domain reader")
	}
	// Non-overridden rules are unchanged.
	if !e.Allowed("identity:get_user", systemAdmin, nil) {
		t.Error("get_user default should allow admin")
	}

	want := []Rule{
		{Name: "admin_required", Check: "role:admin", Description: "Admin role"},
		{Name: "custom", Check: "domain_id:%(domain_id)s"},
		{Name: "identity:get_user", Check: "rule:admin_required or user_id:%(target.user.id)s", Description: "Show user details."},
		{Name: "identity:list_users", Check: "role:reader and rule:custom", Description: "List users."},
	}
	if got := e.Rules(); !reflect.DeepEqual(got, want) {
		t.Errorf("Rules() =\n%v\nwant\n%v", got, want)
	}
	e.Rules()[0].Check = "mutated"
	if r, ok := e.Lookup("admin_required"); !ok || r.Check != "role:admin" {
		t.Errorf("Rules() result aliases enforcer state: %v", r)
	}
	if !e.Overridden("identity:list_users") || !e.Overridden("custom") || e.Overridden("identity:get_user") {
		t.Error("Overridden() wrong")
	}
	if _, ok := e.Lookup("nope"); ok {
		t.Error("Lookup(nope) found a rule")
	}
	// Defaults must not be modified by New.
	if identityDefaults[2].Check != "rule:admin_required" {
		t.Error("New modified the defaults slice")
	}
}

func TestOverrideEmptyAllowsAll(t *testing.T) {
	e, err := New(identityDefaults, map[string]string{"identity:list_users": ""})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Allowed("identity:list_users", nobody, nil) {
		t.Error(`"" override should always pass`)
	}
}

func TestBadOverride(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		wantErr   error
		wantMsg   string
	}{
		{"syntax", map[string]string{"identity:get_user": "role:admin or"}, ErrInvalidPolicy,
			`policy: rule "identity:get_user" (override):`},
		{"unknown ref", map[string]string{"identity:get_user": "rule:nope"}, ErrUnknownRule,
			`references undefined rule "nope"`},
		{"cycle", map[string]string{"admin_required": "rule:identity:get_user"}, ErrInvalidPolicy,
			"admin_required -> identity:get_user -> admin_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(identityDefaults, tt.overrides)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Errorf("got %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e, err := New(identityDefaults, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Authorize("identity:list_users", systemAdmin, nil); err != nil {
		t.Errorf("admin denied: %v", err)
	}

	err = e.Authorize("identity:get_user", projectReader, map[string]string{"target.user.id": "other"})
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnknownRule) {
		t.Fatalf("got %v, want ErrForbidden", err)
	}
	if want := "Policy doesn't allow identity:get_user to be performed."; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	var fe *ForbiddenError
	if !errors.As(err, &fe) || fe.Rule != "identity:get_user" {
		t.Errorf("not a ForbiddenError for the rule: %#v", err)
	}

	err = e.Authorize("identity:nope", systemAdmin, nil)
	if !errors.Is(err, ErrUnknownRule) || errors.Is(err, ErrForbidden) {
		t.Errorf("got %v, want ErrUnknownRule", err)
	}
	if !strings.Contains(err.Error(), `"identity:nope"`) {
		t.Errorf("error %q should name the rule", err)
	}
	if e.Allowed("identity:nope", systemAdmin, nil) {
		t.Error("unknown rule allowed")
	}

	var nilE *Enforcer
	if err := nilE.Authorize("x", systemAdmin, nil); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("nil enforcer: %v", err)
	}
	if nilE.Allowed("x", systemAdmin, nil) || nilE.Rules() != nil {
		t.Error("nil enforcer should deny")
	}
	if (&ForbiddenError{Rule: "x"}).Error() != "Policy doesn't allow x to be performed." {
		t.Error("zero-msg ForbiddenError message")
	}
}

// Secure-RBAC style defaults, as in recent Keystone/Nova policies.
var srbacDefaults = []Rule{
	{Name: "admin", Check: "role:admin"},
	{Name: "project_reader", Check: "role:reader and project_id:%(project_id)s"},
	{Name: "project_member", Check: "role:member and project_id:%(project_id)s"},
	{Name: "compute:servers:show", Check: "role:admin or (role:reader and project_id:%(project_id)s)"},
	{Name: "compute:servers:delete", Check: "rule:admin or rule:project_member"},
	{Name: "identity:get_user", Check: "(role:reader and system_scope:all) or " +
		"(role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s"},
}

func TestSecureRBAC(t *testing.T) {
	e, err := New(srbacDefaults, nil)
	if err != nil {
		t.Fatal(err)
	}
	p1 := map[string]string{"project_id": "p1"}
	p2 := map[string]string{"project_id": "p2"}
	userInD1 := map[string]string{"target.user.id": "x", "target.user.domain_id": "d1"}
	self := map[string]string{"target.user.id": "u1", "target.user.domain_id": "other"}
	tests := []struct {
		rule   string
		creds  Credentials
		target map[string]string
		want   bool
	}{
		{"compute:servers:show", projectReader, p1, true},
		{"compute:servers:show", projectReader, p2, false},
		{"compute:servers:show", projectReader, nil, false},
		{"compute:servers:show", systemAdmin, p2, true},
		{"compute:servers:show", Credentials{ProjectID: "p1", Roles: []string{"member"}}, p1, false},
		{"compute:servers:delete", projectReader, p1, false},
		{"compute:servers:delete", projectMember, p1, true},
		{"compute:servers:delete", projectMember, p2, false},
		{"compute:servers:delete", domainAdmin, p2, true},
		{"identity:get_user", systemAdmin, userInD1, true},
		{"identity:get_user", domainAdmin, userInD1, true},
		{"identity:get_user", projectMember, userInD1, false},
		{"identity:get_user", projectReader, self, true},
		{"identity:get_user", Credentials{DomainID: "d2", Roles: []string{"reader"}}, userInD1, false},
	}
	for _, tt := range tests {
		err := e.Authorize(tt.rule, tt.creds, tt.target)
		if got := err == nil; got != tt.want {
			t.Errorf("%s for %+v on %v: got %v (%v), want %v", tt.rule, tt.creds, tt.target, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: unexpected error %v", tt.rule, err)
		}
	}
}

func TestAuthorizeDoesNotAllocate(t *testing.T) {
	e, err := New(srbacDefaults, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := map[string]string{"project_id": "p1", "target.user.id": "x", "target.user.domain_id": "d1"}
	for _, tc := range []struct {
		rule  string
		creds Credentials
	}{
		{"compute:servers:show", projectReader},   // allowed
		{"compute:servers:delete", projectReader}, // denied
		{"identity:get_user", domainAdmin},        // allowed, via 2nd branch
	} {
		allocs := testing.AllocsPerRun(100, func() { _ = e.Authorize(tc.rule, tc.creds, target) })
		if allocs != 0 {
			t.Errorf("Authorize(%s) allocates %v times", tc.rule, allocs)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	e, err := New(srbacDefaults, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := map[string]string{"project_id": "p1"}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				if e.Authorize("compute:servers:show", projectReader, target) != nil {
					t.Error("denied")
					return
				}
				if e.Authorize("compute:servers:delete", projectReader, target) == nil {
					t.Error("allowed")
					return
				}
				_ = e.Rules()
			}
		}()
	}
	wg.Wait()
}

func TestLoadOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		file    string
		content string
		want    map[string]string
		wantErr string
	}{
		{"yaml", "policy.yaml", `
# Operator overrides.
"identity:get_user": "role:admin or user_id:%(target.user.id)s"
identity:list_users: role:admin
"always": ""
"never": "!"
"is_admin": "is_admin:True"
`, map[string]string{
			"identity:get_user":   "role:admin or user_id:%(target.user.id)s",
			"identity:list_users": "role:admin",
			"always":              "",
			"never":               "!",
			"is_admin":            "is_admin:True",
		}, ""},
		{"json", "policy.json", "{\n\t\"a\": \"role:admin\",\n\t\"b\": \"@\"\n}\n",
			map[string]string{"a": "role:admin", "b": "@"}, ""},
		{"json in yaml file", "policy.yaml", "{\n\t\"a\": \"role:admin\"\n}", map[string]string{"a": "role:admin"}, ""},
		{"yaml flow mapping", "policy.yaml", "{a: 'role:admin'}", map[string]string{"a": "role:admin"}, ""},
		{"empty", "policy.yaml", "", map[string]string{}, ""},
		{"comments only", "policy.yaml", "# nothing overridden\n", map[string]string{}, ""},
		{"empty json", "policy.json", "{}", map[string]string{}, ""},
		{"yaml null value", "policy.yaml", "a:\n", nil, `rule "a": check must be a string, got null`},
		{"yaml bool value", "policy.yaml", "a: true\n", nil, `rule "a": check must be a string, got a bool`},
		{"yaml list value", "policy.yaml", "a: [[\"role:admin\"]]\n", nil, "legacy list-of-lists"},
		{"yaml duplicate", "policy.yaml", "a: '@'\na: '!'\n", nil, `rule "a" defined more than once`},
		{"yaml not a mapping", "policy.yaml", "- a\n", nil, "top level must be a mapping"},
		{"yaml syntax", "policy.yaml", "a: 'unterminated\n", nil, "invalid YAML"},
		{"json non-string", "policy.json", `{"a": 1}`, nil, `rule "a": check must be a string, got a number`},
		{"json duplicate", "policy.json", `{"a": "@", "a": "!"}`, nil, `rule "a" defined more than once`},
		{"json trailing", "policy.json", `{"a": "@"} {}`, nil, "unexpected data"},
		{"json syntax", "policy.json", `{"a": "@",}`, nil, "invalid JSON"},
		{"json array", "policy.json", `["a"]`, nil, "top level must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.file, tt.content)
			got, err := LoadOverrides(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("got %v, %v; want error containing %q and the path", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	got, err := LoadOverrides(filepath.Join(dir, "missing.yaml"))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("missing file: got %v, %v; want empty map", got, err)
	}
	if _, err := LoadOverrides(dir); err == nil {
		t.Error("reading a directory should fail")
	}
	if m, err := ParseOverrides([]byte("x: role:a")); err != nil || m["x"] != "role:a" {
		t.Errorf("ParseOverrides: %v, %v", m, err)
	}
}

func TestLoadedOverridesCompile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(`"identity:list_users": "role:admin or"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := LoadOverrides(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(identityDefaults, o); !errors.Is(err, ErrInvalidPolicy) ||
		!strings.Contains(err.Error(), "identity:list_users") {
		t.Errorf("bad override from file: %v", err)
	}
}

func BenchmarkAuthorize(b *testing.B) {
	e, err := New(srbacDefaults, nil)
	if err != nil {
		b.Fatal(err)
	}
	target := map[string]string{"project_id": "p1", "target.user.id": "x", "target.user.domain_id": "d1"}
	creds := Credentials{
		UserID: "u1", UserDomainID: "default", ProjectID: "p1", ProjectDomainID: "default",
		Roles: []string{"member", "reader", "load-balancer_member", "creator"},
	}
	for _, bc := range []struct{ name, rule string }{
		{"allow", "compute:servers:show"},
		{"allow-via-rule", "compute:servers:delete"},
		{"deny", "identity:get_user"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.Authorize(bc.rule, creds, target)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(srbacDefaults, nil); err != nil {
			b.Fatal(err)
		}
	}
}
