// Package keys computes key pair fingerprints the way Nova does (MD5 of
// the SSH wire-format key, SHA-1 of an X.509 certificate's DER, both as
// colon-separated lowercase hex) and generates key pairs for requests
// that do not bring their own public key.
package keys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Key pair types.
const (
	TypeSSH  = "ssh"
	TypeX509 = "x509"
)

// ErrInvalid is a public key that cannot be fingerprinted.
var ErrInvalid = errors.New("invalid public key")

// Fingerprint returns the fingerprint of a public key of the given type.
func Fingerprint(typ, publicKey string) (string, error) {
	if typ == TypeX509 {
		return x509Fingerprint(publicKey)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return "", ErrInvalid
	}
	return ssh.FingerprintLegacyMD5(pub), nil
}

func x509Fingerprint(certPEM string) (string, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(certPEM)))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", ErrInvalid
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", ErrInvalid
	}
	sum := sha1.Sum(block.Bytes)
	return colonHex(sum[:]), nil
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	parts := make([]string, 0, len(b))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Generated is a freshly generated key pair.
type Generated struct {
	PublicKey   string
	PrivateKey  string
	Fingerprint string
}

// Generate creates a key pair of the given type: an RSA-2048 SSH key (the
// public key in authorized_keys format), or an RSA-2048 key with a
// self-signed certificate whose subject is the user (for x509).
func Generate(typ, userID string) (*Generated, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}))
	if typ == TypeX509 {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: userID},
			NotBefore:    time.Now().Add(-time.Minute),
			NotAfter:     time.Now().AddDate(10, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
		if err != nil {
			return nil, err
		}
		sum := sha1.Sum(der)
		return &Generated{
			PublicKey:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			PrivateKey:  privPEM,
			Fingerprint: colonHex(sum[:]),
		}, nil
	}
	pub, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	authorized := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n") + " Generated-by-Nova\n"
	return &Generated{PublicKey: authorized, PrivateKey: privPEM, Fingerprint: ssh.FingerprintLegacyMD5(pub)}, nil
}
