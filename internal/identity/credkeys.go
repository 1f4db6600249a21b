package identity

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Credential blobs (EC2 secrets, TOTP seeds, certificates) are encrypted
// at rest, as Keystone does with its credential key repository: the
// database alone does not give them away. The keys live in a file outside
// the database (identity.credential_key_file, by default
// <data-dir>/credential-keys), one base64 key of 32 bytes per line: the
// first line is the primary key, which encrypts; the others only decrypt,
// so that a key can be rotated: `kumo credential rotate-key` puts a new
// key first and re-encrypts every row with it, and a server that meets a
// blob under a key it does not know reads the file again. Every process that serves
// the identity API needs the same file, as every Keystone node needs the
// same key repository.
//
// A stored blob is
//
//	kumo:enc:v1:<key id>:base64url( nonce(12) | AES-256-GCM(blob) )
//
// with the credential id as additional data (a blob cannot be moved to
// another row), key id the first 4 bytes of SHA-256(key) in hex. Blobs
// without the prefix are rows from before encryption; Start encrypts them.

const credPrefix = "kumo:enc:v1:"

// credKeyRing holds the credential keys; the zero ring encrypts nothing.
type credKeyRing struct {
	primary string // key id
	aeads   map[string]cipher.AEAD
}

func credKeyID(key []byte) string {
	h := sha256.Sum256(key)
	return hex.EncodeToString(h[:4])
}

// parseCredKeys reads the key file's content.
func parseCredKeys(data string) (*credKeyRing, error) {
	kr := &credKeyRing{aeads: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(strings.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("line %d: not 32 bytes of base64", n)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := credKeyID(key)
		if kr.primary == "" {
			kr.primary = id
		}
		kr.aeads[id] = aead
	}
	if kr.primary == "" {
		return nil, errors.New("no key")
	}
	return kr, nil
}

func newCredKeyLine() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// LoadCredentialKeys reads the credential key file, creating it with one
// new key (mode 0600) when it does not exist.
func LoadCredentialKeys(path string) (*credKeyRing, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := createCredKeyFile(path); err != nil {
			return nil, fmt.Errorf("create credential key file: %w", err)
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("credential key file: %w", err)
	}
	kr, err := parseCredKeys(string(data))
	if err != nil {
		return nil, fmt.Errorf("credential key file %s: %w", path, err)
	}
	return kr, nil
}

// createCredKeyFile writes a key file with one new key, unless another
// process just did.
func createCredKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s%s\n", credKeyFileHeader, newCredKeyLine())
	return errors.Join(err, f.Sync(), f.Close())
}

const credKeyFileHeader = "# Kumo credential keys: the first encrypts, all decrypt. Keep a copy; without it stored credentials are lost.\n"

// RotateCredentialKey puts a new primary key at the top of the key file,
// keeping the others for decryption. The running servers pick it up at
// their next start, when they also re-encrypt the credentials with it.
func RotateCredentialKey(path string) error {
	if _, err := LoadCredentialKeys(path); err != nil { // creates a missing file
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("credential key file: %w", err)
	}
	if _, err := parseCredKeys(string(old)); err != nil {
		return fmt.Errorf("credential key file %s: %w", path, err)
	}
	var keep []string
	for _, l := range strings.Split(string(old), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			keep = append(keep, t)
		}
	}
	content := credKeyFileHeader + newCredKeyLine() + "\n" + strings.Join(keep, "\n") + "\n"
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// seal encrypts the blob of credential id.
func (kr *credKeyRing) seal(id, blob string) string {
	if kr == nil {
		return blob
	}
	aead := kr.aeads[kr.primary]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	ct := aead.Seal(nonce, nonce, []byte(blob), []byte(id))
	return kr.primaryPrefix() + base64.RawURLEncoding.EncodeToString(ct)
}

// errCredentialKey reports a blob this server cannot decrypt.
var errCredentialKey = errors.New("credential key")

// open decrypts a stored blob of credential id; blobs stored before
// encryption come back as they are.
func (kr *credKeyRing) open(id, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, credPrefix)
	if !ok {
		return stored, nil
	}
	keyID, enc, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%w: credential %s: malformed encrypted blob", errCredentialKey, id)
	}
	if kr == nil {
		return "", fmt.Errorf("%w: credential %s is encrypted but no credential key file is configured", errCredentialKey, id)
	}
	aead, ok := kr.aeads[keyID]
	if !ok {
		return "", fmt.Errorf("%w: credential %s is encrypted with key %s, which is not in this server's credential key file", errCredentialKey, id, keyID)
	}
	ct, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(ct) < aead.NonceSize() {
		return "", fmt.Errorf("%w: credential %s: malformed encrypted blob", errCredentialKey, id)
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(id))
	if err != nil {
		return "", fmt.Errorf("%w: credential %s: decryption failed", errCredentialKey, id)
	}
	return string(pt), nil
}

// primaryPrefix starts every blob encrypted with the primary key.
func (kr *credKeyRing) primaryPrefix() string { return credPrefix + kr.primary + ":" }

// useCredentialKeys loads the credential key file and encrypts blobs
// with it from now on.
func (s *Store) useCredentialKeys(path string) error {
	kr, err := LoadCredentialKeys(path)
	if err != nil {
		return err
	}
	s.credKeyFile = path
	s.credKeys.Store(kr)
	return nil
}

// openCredential decrypts a stored blob. A blob under a key this process
// does not know (another process rotated the key file) makes it read the
// key file again, once.
func (s *Store) openCredential(id, stored string) (string, error) {
	kr := s.credKeys.Load()
	pt, err := kr.open(id, stored)
	if err == nil || kr == nil || s.credKeyFile == "" {
		return pt, err
	}
	if fresh, lerr := LoadCredentialKeys(s.credKeyFile); lerr == nil {
		s.credKeys.CompareAndSwap(kr, fresh)
		return fresh.open(id, stored)
	}
	return pt, err
}

// reencryptCredentials encrypts, with the primary key, every credential
// stored in clear or under an older key. Rows under a key this process
// does not have are left alone (reading them fails with a clear error
// until the key file is completed). It returns how many rows it changed
// and how many it could not read.
func (s *Store) reencryptCredentials(ctx context.Context) (changed, unreadable int, err error) {
	kr := s.credKeys.Load()
	if kr == nil {
		return 0, 0, nil
	}
	type row struct{ id, blob, clear string }
	// Only rows not already under the primary key: a start after the
	// first reads nothing.
	current := kr.primaryPrefix()
	rows, err := s.q().QueryContext(ctx, fmt.Sprintf(`SELECT id, blob FROM credentials WHERE substr(blob, 1, %d) <> $1`, len(current)), current)
	if err != nil {
		return 0, 0, err
	}
	var stale []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.blob); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if r.clear, err = s.openCredential(r.id, r.blob); err != nil {
			unreadable++
			continue
		}
		stale = append(stale, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, 0, err
	}
	if len(stale) == 0 {
		return 0, unreadable, nil
	}
	kr = s.credKeys.Load() // openCredential may have reloaded the file
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range stale {
			// Only if the row is unchanged since it was read.
			if _, err := tx.ExecContext(ctx, `UPDATE credentials SET blob = $1 WHERE id = $2 AND blob = $3`,
				kr.seal(r.id, r.clear), r.id, r.blob); err != nil {
				return err
			}
		}
		return nil
	})
	return len(stale), unreadable, err
}
