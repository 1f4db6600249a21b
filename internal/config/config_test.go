package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kumo.yaml")
	if err := os.WriteFile(file, []byte("listen: 0.0.0.0:6000\nregion: FileRegion\nidentity:\n  token_ttl: 2h\ndatabase:\n  dsn: postgres://file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.LoadFile(file, false); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUMO_REGION", "EnvRegion")
	t.Setenv("KUMO_DATA_DIR", dir)
	if err := c.LoadEnv(); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	if c.Region != "EnvRegion" || c.Listen != "0.0.0.0:6000" || c.Database.DSN != "postgres://file" || c.DataDir != dir {
		t.Fatalf("merged config: %+v", c)
	}
	if c.Identity.TokenTTL.Duration != 2*time.Hour || c.Identity.LockoutAttempts != 6 {
		t.Fatalf("identity: %+v", c.Identity)
	}
	// 0.0.0.0 is not an address clients can use: the public URL says 127.0.0.1.
	if c.PublicURL != "http://127.0.0.1:6000" {
		t.Fatalf("public url %q", c.PublicURL)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key":  "listne: x\n",
		"bad duration": "identity:\n  token_ttl: soon\n",
		"bad yaml":     "listen: [\n",
	} {
		f := filepath.Join(dir, "c.yaml")
		_ = os.WriteFile(f, []byte(body), 0o600)
		if err := Default().LoadFile(f, false); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if err := Default().LoadFile(filepath.Join(dir, "missing.yaml"), true); err != nil {
		t.Errorf("optional missing file: %v", err)
	}
	if err := Default().LoadFile(filepath.Join(dir, "missing.yaml"), false); err == nil {
		t.Error("required missing file must fail")
	}
	t.Setenv("KUMO_TOKEN_TTL", "never")
	if err := Default().LoadEnv(); err == nil {
		t.Error("bad env duration must fail")
	}
	c := Default()
	c.LogFormat = "xml"
	if err := c.Finish(); err == nil {
		t.Error("bad log format must fail")
	}
}

func TestImageUseKeystoneLimits(t *testing.T) {
	tests := []struct {
		name, file, env string
		want, wantErr   bool
	}{
		{"default off", "", "", false, false},
		{"file", "image:\n  use_keystone_limits: true\n", "", true, false},
		{"env over file", "image:\n  use_keystone_limits: true\n", "false", false, false},
		{"env", "", "1", true, false},
		{"bad env", "", "sometimes", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			if tc.file != "" {
				f := filepath.Join(t.TempDir(), "kumo.yaml")
				if err := os.WriteFile(f, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := c.LoadFile(f, false); err != nil {
					t.Fatal(err)
				}
			}
			if tc.env != "" {
				t.Setenv("KUMO_IMAGE_USE_KEYSTONE_LIMITS", tc.env)
			}
			err := c.LoadEnv()
			if (err != nil) != tc.wantErr || (err == nil && c.Image.UseKeystoneLimits != tc.want) {
				t.Fatalf("use_keystone_limits %v, err %v; want %v, error %v", c.Image.UseKeystoneLimits, err, tc.want, tc.wantErr)
			}
		})
	}
}
