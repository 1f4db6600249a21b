package compute_test

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-cloud/kumo/internal/compute"
)

func colon(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// sshKey returns an authorized_keys line and its Nova (MD5) fingerprint,
// computed independently of the code under test.
func sshKey(t *testing.T) (string, string) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " me@host"
	blob, _ := base64.StdEncoding.DecodeString(strings.Fields(line)[1])
	sum := md5.Sum(blob)
	return line, colon(sum[:])
}

func x509Cert(t *testing.T) (string, string) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), colon(sum[:])
}

func kpBody(name, pub string, extra ...string) string {
	m := map[string]any{"name": name}
	if pub != "" {
		m["public_key"] = pub
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(map[string]any{"keypair": m})
	return string(b)
}

func TestKeypairImportAndViews(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	pub, fp := sshKey(t)
	// 2.1: 200 on create, no type; 202 on delete.
	r := e.do("alice", "POST", v21+"/os-keypairs", "", kpBody("k1", pub)).Expect(t, 200, "")
	kp := obj(t, r.Body, "keypair")
	if kp["fingerprint"] != fp || kp["user_id"] != "alice" || kp["public_key"] != pub {
		t.Fatalf("created %v", kp)
	}
	if _, ok := kp["type"]; ok {
		t.Fatalf("type at 2.1: %v", kp)
	}
	if _, ok := kp["private_key"]; ok {
		t.Fatal("private key for an imported key")
	}
	e.do("alice", "POST", v21+"/os-keypairs", "", kpBody("k1", pub)).Expect(t, 409, "conflictingRequest")
	// 2.2: 201, type.
	cert, cfp := x509Cert(t)
	r = e.do("alice", "POST", v21+"/os-keypairs", "2.2", kpBody("k2", cert, "type", "x509")).Expect(t, 201, "")
	if kp := obj(t, r.Body, "keypair"); kp["type"] != "x509" || kp["fingerprint"] != cfp {
		t.Fatalf("x509 %v", kp)
	}
	// Show.
	r = e.do("alice", "GET", v21+"/os-keypairs/k1", "2.2", "").Expect(t, 200, "")
	kp = obj(t, r.Body, "keypair")
	for _, k := range []string{"id", "created_at", "deleted", "deleted_at", "updated_at", "user_id", "type", "fingerprint", "public_key", "name"} {
		if _, ok := kp[k]; !ok {
			t.Errorf("show lacks %s: %v", k, kp)
		}
	}
	if kp["deleted"] != false || kp["type"] != "ssh" {
		t.Errorf("show %v", kp)
	}
	// List per version.
	r = e.do("alice", "GET", v21+"/os-keypairs", "", "").Expect(t, 200, "")
	items := list(t, r.Body, "keypairs")
	if len(items) != 2 || fmt.Sprint(len(obj(t, items[0], "keypair"))) != "3" {
		t.Fatalf("list 2.1 %v", items)
	}
	r = e.do("alice", "GET", v21+"/os-keypairs", "2.2", "").Expect(t, 200, "")
	if len(obj(t, list(t, r.Body, "keypairs")[0], "keypair")) != 4 {
		t.Fatalf("list 2.2 %v", r.Body)
	}
	// Others do not see alice's keys.
	if len(list(t, e.do("bob", "GET", v21+"/os-keypairs", "", "").Body, "keypairs")) != 0 {
		t.Fatal("bob sees alice's keys")
	}
	e.do("bob", "GET", v21+"/os-keypairs/k1", "", "").Expect(t, 404, "itemNotFound")
	e.do("bob", "DELETE", v21+"/os-keypairs/k1", "", "").Expect(t, 404, "itemNotFound")
	// 2.10: admin acts on other users; members may not.
	e.do("admin", "GET", v21+"/os-keypairs/k1?user_id=alice", "2.10", "").Expect(t, 200, "")
	if len(list(t, e.do("admin", "GET", v21+"/os-keypairs?user_id=alice", "2.10", "").Body, "keypairs")) != 2 {
		t.Fatal("admin list of alice")
	}
	e.do("bob", "GET", v21+"/os-keypairs?user_id=alice", "2.10", "").Expect(t, 403, "forbidden")
	e.do("bob", "GET", v21+"/os-keypairs/k1?user_id=alice", "2.10", "").Expect(t, 403, "forbidden")
	e.do("bob", "POST", v21+"/os-keypairs", "2.10", kpBody("x", pub, "user_id", "alice")).Expect(t, 403, "forbidden")
	e.do("alice", "POST", v21+"/os-keypairs", "2.9", kpBody("x", pub, "user_id", "alice")).Expect(t, 400, "badRequest")
	r = e.do("admin", "POST", v21+"/os-keypairs", "2.10", kpBody("for-alice", pub, "user_id", "alice")).Expect(t, 201, "")
	if obj(t, r.Body, "keypair")["user_id"] != "alice" {
		t.Fatalf("admin create for alice %v", r.Body)
	}
	// Readers read but do not write.
	e.do("rob", "GET", v21+"/os-keypairs", "", "").Expect(t, 200, "")
	e.do("rob", "POST", v21+"/os-keypairs", "", kpBody("r", pub)).Expect(t, 403, "forbidden")
	// Delete: 204 from 2.2.
	e.do("alice", "DELETE", v21+"/os-keypairs/k2", "2.2", "").Expect(t, 204, "")
	e.do("alice", "DELETE", v21+"/os-keypairs/k1", "", "").Expect(t, 202, "")
	e.do("alice", "DELETE", v21+"/os-keypairs/k1", "", "").Expect(t, 404, "itemNotFound")
	e.do("admin", "DELETE", v21+"/os-keypairs/for-alice?user_id=alice", "2.10", "").Expect(t, 204, "")
}

func TestKeypairGenerateAndNames(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	r := e.do("alice", "POST", v21+"/os-keypairs", "2.91", kpBody("gen", "")).Expect(t, 201, "")
	kp := obj(t, r.Body, "keypair")
	priv, _ := kp["private_key"].(string)
	if !strings.Contains(priv, "PRIVATE KEY") || !strings.HasPrefix(kp["public_key"].(string), "ssh-rsa ") {
		t.Fatalf("generated %v", kp)
	}
	signer, err := ssh.ParsePrivateKey([]byte(priv))
	if err != nil {
		t.Fatal(err)
	}
	if ssh.FingerprintLegacyMD5(signer.PublicKey()) != kp["fingerprint"] {
		t.Fatal("fingerprint does not match the private key")
	}
	// 2.92: public_key required; more name characters.
	pub, _ := sshKey(t)
	e.do("alice", "POST", v21+"/os-keypairs", "2.92", kpBody("gen2", "")).Expect(t, 400, "badRequest")
	e.do("alice", "POST", v21+"/os-keypairs", "2.92", kpBody("me@host.example", pub)).Expect(t, 201, "")
	e.do("alice", "POST", v21+"/os-keypairs", "2.91", kpBody("me@host", pub)).Expect(t, 400, "badRequest")
	for _, body := range []string{
		kpBody("", pub), kpBody(strings.Repeat("a", 256), pub), kpBody(" lead", pub), kpBody("bad/name", pub),
		kpBody("x", "not a key"), kpBody("x", pub, "type", "pgp"), kpBody("x", "garbage", "type", "x509"),
		`{"keypair": {"name": "x", "public_key": "` + pub + `", "extra": 1}}`, `{"keypair": {}}`, `{}`, `{`,
	} {
		e.do("alice", "POST", v21+"/os-keypairs", "2.2", body).Expect(t, 400, "badRequest")
	}
	// 2.75: unknown query parameters are rejected.
	e.do("alice", "GET", v21+"/os-keypairs?foo=1", "2.74", "").Expect(t, 200, "")
	e.do("alice", "GET", v21+"/os-keypairs?foo=1", "2.75", "").Expect(t, 400, "badRequest")
}

func TestKeypairPagination(t *testing.T) {
	e := newEnv(t, nil, compute.Config{})
	pub, _ := sshKey(t)
	for _, n := range []string{"c", "a", "b", "d"} {
		e.do("alice", "POST", v21+"/os-keypairs", "2.35", kpBody(n, pub)).Expect(t, 201, "")
	}
	names := func(r resp) string {
		var out []string
		for _, it := range list(t, r.Body, "keypairs") {
			out = append(out, obj(t, it, "keypair")["name"].(string))
		}
		return strings.Join(out, ",")
	}
	r := e.do("alice", "GET", v21+"/os-keypairs?limit=2", "2.35", "").Expect(t, 200, "")
	if names(r) != "a,b" {
		t.Fatalf("page 1 %s", names(r))
	}
	l := list(t, r.Body, "keypairs_links")[0].(map[string]any)
	if l["href"] != publicURL+"/compute/v2.1/os-keypairs?limit=2&marker=b" {
		t.Fatalf("next %v", l)
	}
	if got := names(e.do("alice", "GET", v21+"/os-keypairs?limit=2&marker=b", "2.35", "")); got != "c,d" {
		t.Fatalf("page 2 %s", got)
	}
	// Before 2.35 limit is ignored.
	if got := names(e.do("alice", "GET", v21+"/os-keypairs?limit=2", "2.34", "")); got != "a,b,c,d" {
		t.Fatalf("2.34 %s", got)
	}
	e.do("alice", "GET", v21+"/os-keypairs?marker=zz", "2.35", "").Expect(t, 400, "badRequest")
	e.do("alice", "GET", v21+"/os-keypairs?limit=-2", "2.35", "").Expect(t, 400, "badRequest")
}
