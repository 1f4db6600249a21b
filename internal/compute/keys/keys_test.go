package keys

import (
	"strings"
	"testing"
)

func TestGenerateAndFingerprint(t *testing.T) {
	for _, typ := range []string{TypeSSH, TypeX509} {
		g, err := Generate(typ, "alice")
		if err != nil {
			t.Fatal(err)
		}
		fp, err := Fingerprint(typ, g.PublicKey)
		if err != nil || fp != g.Fingerprint {
			t.Fatalf("%s: fingerprint %q vs %q (%v)", typ, fp, g.Fingerprint, err)
		}
		want := 16
		if typ == TypeX509 {
			want = 20
		}
		if len(strings.Split(fp, ":")) != want {
			t.Fatalf("%s: fingerprint %s", typ, fp)
		}
	}
	for _, c := range []struct{ typ, key string }{{TypeSSH, "ssh-rsa nope"}, {TypeX509, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, {TypeX509, ""}} {
		if _, err := Fingerprint(c.typ, c.key); err == nil {
			t.Fatalf("%s %q accepted", c.typ, c.key)
		}
	}
}
