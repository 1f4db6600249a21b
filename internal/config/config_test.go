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

func TestImageImportFiltering(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		check      func(c *Config) bool
	}{
		{"absent: nil lists (Glance's defaults)", "image:\n  direct_io: true\n", func(c *Config) bool {
			o := c.Image.ImportFilteringOpts
			return o.AllowedSchemes == nil && o.AllowedPorts == nil && c.Image.ImportMethods == nil
		}},
		{"empty list stays empty", "image:\n  import_filtering_opts:\n    allowed_ports: []\n    disallowed_ports: [8080]\n", func(c *Config) bool {
			o := c.Image.ImportFilteringOpts
			return o.AllowedPorts != nil && len(o.AllowedPorts) == 0 && len(o.DisallowedPorts) == 1 && o.DisallowedPorts[0] == 8080
		}},
		{"all keys", `image:
  import_methods: [glance-direct]
  import_filtering_opts:
    allowed_schemes: [https]
    disallowed_schemes: [http]
    allowed_hosts: [mirror.example, "::1"]
    disallowed_hosts: [evil.example]
    allowed_ports: [443, 8443]
    disallowed_ports: [22]
    allow_internal_addresses: true
`, func(c *Config) bool {
			o := c.Image.ImportFilteringOpts
			return len(c.Image.ImportMethods) == 1 && o.AllowedSchemes[0] == "https" && o.DisallowedSchemes[0] == "http" &&
				o.AllowedHosts[1] == "::1" && o.DisallowedHosts[0] == "evil.example" && o.AllowedPorts[1] == 8443 &&
				o.DisallowedPorts[0] == 22 && o.AllowInternalAddresses
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "kumo.yaml")
			if err := os.WriteFile(f, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := Default()
			if err := cfg.LoadFile(f, false); err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Fatalf("image config %+v", cfg.Image)
			}
		})
	}
}

// TestExampleConfig keeps docs/kumo.example.yaml loadable: every key it
// shows must exist.
func TestExampleConfig(t *testing.T) {
	c := Default()
	if err := c.LoadFile(filepath.Join("..", "..", "docs", "kumo.example.yaml"), false); err != nil {
		t.Fatal(err)
	}
	o := c.Image.ImportFilteringOpts
	if len(c.Image.ImportMethods) != 2 || len(o.AllowedPorts) != 2 || o.DisallowedPorts == nil || len(o.DisallowedPorts) != 0 {
		t.Fatalf("image: %+v", c.Image)
	}
}
