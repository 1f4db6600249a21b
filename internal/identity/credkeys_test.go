package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialKeyRing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "credential-keys")
	kr, err := LoadCredentialKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	sealed := kr.seal("cred-1", `{"access":"a","secret":"s3cr3t"}`)
	if !strings.HasPrefix(sealed, kr.primaryPrefix()) || strings.Contains(sealed, "s3cr3t") {
		t.Fatalf("sealed blob %q", sealed)
	}
	for _, tc := range []struct {
		name, id, stored, want string
		wantErr                string
	}{
		{"round trip", "cred-1", sealed, `{"access":"a","secret":"s3cr3t"}`, ""},
		{"clear blob from before encryption", "cred-1", "plain", "plain", ""},
		{"moved to another row", "cred-2", sealed, "", "decryption failed"},
		{"tampered", "cred-1", sealed[:len(sealed)-2] + "AA", "", "decryption failed"},
		{"unknown key", "cred-1", credPrefix + "00000000:AAAA", "", "not in this server's credential key file"},
		{"malformed", "cred-1", credPrefix + "nokey", "", "malformed"},
		{"short", "cred-1", credPrefix + kr.primary + ":AAAA", "", "malformed"},
	} {
		got, err := kr.open(tc.id, tc.stored)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
	// No key ring: clear text passes, encrypted blobs are refused.
	var none *credKeyRing
	if none.seal("x", "b") != "b" {
		t.Fatal("nil ring must store in clear")
	}
	if _, err := none.open("cred-1", sealed); err == nil {
		t.Fatal("nil ring opened an encrypted blob")
	}

	// Rotation: a new primary first, the old key still decrypts.
	if err := RotateCredentialKey(path); err != nil {
		t.Fatal(err)
	}
	kr2, err := LoadCredentialKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if kr2.primary == kr.primary || len(kr2.aeads) != 2 {
		t.Fatalf("after rotation: primary %s (was %s), %d keys", kr2.primary, kr.primary, len(kr2.aeads))
	}
	if got, err := kr2.open("cred-1", sealed); err != nil || !strings.Contains(got, "s3cr3t") {
		t.Fatalf("old blob after rotation: %q %v", got, err)
	}
	if strings.HasPrefix(sealed, kr2.primaryPrefix()) {
		t.Fatal("old blob reported as under the new primary key")
	}

	// Broken files are refused with the file named.
	for _, content := range []string{"", "# only a comment\n", "bm90IDMyIGJ5dGVz\n"} {
		bad := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(bad, []byte(content), 0o600)
		if _, err := LoadCredentialKeys(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("key file %q: %v", content, err)
		}
	}
}
