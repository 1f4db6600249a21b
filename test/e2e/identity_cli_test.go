package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIdentityOpenStackCLI drives kumo with the real python-openstackclient,
// the way an operator would, from the clouds.yaml `kumo serve` writes.
func TestIdentityOpenStackCLI(t *testing.T) {
	t.Parallel()
	bin := openstackCLI(t)
	k := Start(t, Options{})
	cli := newCLI(t, bin, k)
	asAdmin := []string{"--os-cloud", "kumo"}

	var adminTok struct{ ID, ProjectID, UserID string }
	cli.json(&adminTok, append(asAdmin, "token", "issue")...)
	if adminTok.ID == "" || adminTok.ProjectID == "" || adminTok.UserID == "" {
		t.Fatalf("admin token issue = %+v", adminTok)
	}

	var proj struct{ ID, Name, DomainID string }
	cli.json(&proj, append(asAdmin, "project", "create", "--description", "made by the CLI", "cli-project")...)
	if proj.ID == "" || proj.Name != "cli-project" || proj.DomainID != "default" {
		t.Errorf("project create = %+v", proj)
	}
	const password = "cli-secret-pw"
	var user struct{ ID, Name, DefaultProjectID string }
	cli.json(&user, append(asAdmin, "user", "create", "--password", password, "--project", "cli-project", "cli-user")...)
	if user.ID == "" || user.DefaultProjectID != proj.ID {
		t.Errorf("user create = %+v", user)
	}
	cli.run(append(asAdmin, "role", "add", "--project", "cli-project", "--user", "cli-user", "member")...)
	out := cli.run(append(asAdmin, "role", "assignment", "list", "--project", "cli-project", "--names", "-f", "value", "-c", "Role", "-c", "User")...)
	if !strings.Contains(out, "member cli-user@Default") {
		t.Errorf("role assignment list = %q, want member cli-user@Default", out)
	}

	// The new user, by flags rather than clouds.yaml.
	asUser := []string{
		"--os-auth-url", k.URL + "/v3", "--os-identity-api-version", "3",
		"--os-username", "cli-user", "--os-password", password, "--os-user-domain-name", "Default",
		"--os-project-name", "cli-project", "--os-project-domain-name", "Default",
	}
	var ac struct{ ID, Secret, ProjectID, Roles string }
	cli.json(&ac, append(asUser, "application", "credential", "create", "--description", "for the CLI test", "cli-appcred")...)
	if ac.ID == "" || ac.Secret == "" || ac.ProjectID != proj.ID || !strings.Contains(ac.Roles, "member") {
		t.Fatalf("application credential create = %+v", ac)
	}

	asAppCred := []string{
		"--os-auth-type", "v3applicationcredential", "--os-auth-url", k.URL + "/v3",
		"--os-identity-api-version", "3",
		"--os-application-credential-id", ac.ID, "--os-application-credential-secret", ac.Secret,
	}
	var acTok struct{ ID, ProjectID, UserID string }
	cli.json(&acTok, append(asAppCred, "token", "issue")...)
	if acTok.ProjectID != proj.ID || acTok.UserID != user.ID {
		t.Errorf("token issue with the application credential = %+v, want user %s on %s", acTok, user.ID, proj.ID)
	}
	var cat []struct{ Name, Type string }
	cli.json(&cat, append(asAppCred, "catalog", "list")...)
	if !slices.ContainsFunc(cat, func(e struct{ Name, Type string }) bool { return e.Type == "identity" && e.Name == "keystone" }) {
		t.Errorf("catalog list with the application credential = %+v, want keystone (identity) among them", cat)
	}

	var userTok struct{ ID, ProjectID, UserID string }
	cli.json(&userTok, append(asUser, "token", "issue")...)
	if userTok.ProjectID != proj.ID || userTok.UserID != user.ID {
		t.Errorf("token issue as the user = %+v, want user %s on %s", userTok, user.ID, proj.ID)
	}
	out = cli.run(append(asUser, "catalog", "show", "identity", "-f", "value", "-c", "endpoints")...)
	if !strings.Contains(out, k.URL+"/v3") {
		t.Errorf("catalog show identity = %q, want %s/v3", out, k.URL)
	}

	cli.run(append(asAdmin, "token", "revoke", userTok.ID)...)
	// The revoked token is refused for API calls (401) ...
	asRevoked := []string{
		"--os-auth-type", "admin_token", "--os-endpoint", k.URL + "/v3",
		"--os-identity-api-version", "3", "--os-token", userTok.ID,
	}
	if out, err := cli.try(append(asRevoked, "project", "show", proj.ID)...); err == nil || !strings.Contains(out, "HTTP 401") {
		t.Errorf("project show with a revoked token: %v\n%s\nwant a failure with HTTP 401", err, out)
	}
	// ... and is unknown to validation and revocation (404).
	if out, err := cli.try(append(asAdmin, "token", "revoke", userTok.ID)...); err == nil || !strings.Contains(out, "HTTP 404") {
		t.Errorf("revoking a revoked token: %v\n%s\nwant a failure with HTTP 404", err, out)
	}
	// Other tokens of the user still work.
	cli.run(append(asAppCred, "project", "show", proj.ID)...)
}

// cli runs the openstack CLI with a clean environment: no OS_* variables
// from the caller, a private HOME, and OS_CLIENT_CONFIG_FILE pointing at
// kumo's clouds.yaml.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

func newCLI(t *testing.T, bin string, k *Kumo) *cli {
	home := t.TempDir()
	env := append(envWithout("OS_", "KUMO_", "HOME=", "XDG_"),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"OS_CLIENT_CONFIG_FILE="+filepath.Join(k.DataDir, "clouds.yaml"),
		"PYTHONWARNINGS=ignore",
	)
	return &cli{t: t, bin: bin, env: env}
}

// try runs the CLI and returns its combined output.
func (c *cli) try(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	c.t.Logf("openstack %s (%v): %v", redact(args), time.Since(start).Round(time.Millisecond), err)
	return out.String(), err
}

// run runs the CLI and fails the test if it fails.
func (c *cli) run(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("openstack %s: %v\n%s", redact(args), err, out)
	}
	return out
}

// json runs the CLI with -f json and decodes its output into v, matching
// the CLI's snake_case keys to v's field names.
func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	cmd := append(args, "-f", "json")
	out := c.run(cmd...)
	var raw any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		c.t.Fatalf("openstack %s: output is not JSON: %v\n%s", redact(cmd), err, out)
	}
	b, _ := json.Marshal(camelKeys(raw))
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("openstack %s: decode %s: %v", redact(cmd), out, err)
	}
}

// camelKeys drops the underscores of object keys so that encoding/json's
// case-insensitive matching maps "project_id" to a ProjectID field.
func camelKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[strings.ReplaceAll(k, "_", "")] = camelKeys(vv)
		}
		return m
	case []any:
		for i := range x {
			x[i] = camelKeys(x[i])
		}
	}
	return v
}

// redact hides the values of secret flags in logs.
func redact(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if i == 0 {
			continue
		}
		if prev := args[i-1]; strings.HasPrefix(prev, "-") &&
			(strings.Contains(prev, "password") || strings.Contains(prev, "secret") || prev == "--os-token") {
			out[i] = "***"
		}
	}
	return strings.Join(out, " ")
}
