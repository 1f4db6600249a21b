package identity

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Tokens are self-contained and encrypted, in the spirit of Keystone's
// Fernet tokens: issuing one writes nothing to the database, and
// validating one needs only the key ring in memory. The wire form is
//
//	base64url( version(1) | key id(4, big endian) | nonce(12) | AES-256-GCM(payload JSON) )
//
// The key id selects the decryption key, so keys can rotate while older
// tokens stay valid until they expire. Revocation is by audit id or by
// user, kept in a small table mirrored in memory.

const tokenVersion = 1

// payload is what a token carries. Names are short to keep tokens small.
type payload struct {
	UserID    string   `json:"u"`
	Methods   []string `json:"m"`
	ProjectID string   `json:"p,omitempty"`
	DomainID  string   `json:"d,omitempty"`
	System    bool     `json:"s,omitempty"`
	AppCredID string   `json:"c,omitempty"`
	TrustID   string   `json:"t,omitempty"`
	IssuedAt  int64    `json:"i"` // unix microseconds
	ExpiresAt int64    `json:"e"` // unix microseconds
	AuditIDs  []string `json:"a"`
}

func (p *payload) issued() time.Time  { return time.UnixMicro(p.IssuedAt).UTC() }
func (p *payload) expires() time.Time { return time.UnixMicro(p.ExpiresAt).UTC() }

var errBadToken = errors.New("malformed or unknown token")

// keyRing holds the AEADs by key id; primary encrypts new tokens.
type keyRing struct {
	primary uint32
	aeads   map[uint32]cipher.AEAD
}

func newKeyRing(keys []TokenKey) (*keyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("no token keys")
	}
	kr := &keyRing{aeads: map[uint32]cipher.AEAD{}}
	for i, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("token key %d is not 32 bytes of base64", k.ID)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		kr.aeads[uint32(k.ID)] = aead
		if i == 0 || uint32(k.ID) > kr.primary {
			kr.primary = uint32(k.ID)
		}
	}
	return kr, nil
}

// newKeySecret returns a fresh base64 key.
func newKeySecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func (kr *keyRing) seal(p *payload) (string, error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	aead := kr.aeads[kr.primary]
	buf := make([]byte, 5+aead.NonceSize(), 5+aead.NonceSize()+len(plain)+aead.Overhead())
	buf[0] = tokenVersion
	binary.BigEndian.PutUint32(buf[1:5], kr.primary)
	if _, err := rand.Read(buf[5:]); err != nil {
		return "", err
	}
	hdr := buf[:5]
	out := aead.Seal(buf, buf[5:], plain, hdr)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

func (kr *keyRing) open(tok string) (*payload, error) {
	if len(tok) < 20 || len(tok) > 4096 {
		return nil, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 5 || raw[0] != tokenVersion {
		return nil, errBadToken
	}
	aead, ok := kr.aeads[binary.BigEndian.Uint32(raw[1:5])]
	if !ok || len(raw) < 5+aead.NonceSize()+aead.Overhead() {
		return nil, errBadToken
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[5:5+n], raw[5+n:], raw[:5])
	if err != nil {
		return nil, errBadToken
	}
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, errBadToken
	}
	return &p, nil
}

// newAuditID returns a Keystone-style audit id: 16 random bytes, base64url.
func newAuditID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
