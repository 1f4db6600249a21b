package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/kumo-cloud/kumo/internal/auth"
)

// checkS3Signature verifies signature over the base64 string to sign
// token with secret. An AWS signature v4 string to sign is
// "AWS4-HMAC-SHA256\n<time>\n<date>/<region>/<service>/aws4_request\n<hash>"
// and is signed with the key derived from its scope; anything else is a
// v2 string signed with HMAC-SHA1 and sent base64.
func checkS3Signature(secret, token, signature string) bool {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	toSign := string(raw)
	var want string
	if strings.HasPrefix(toSign, "AWS4-HMAC-SHA256\n") {
		lines := strings.Split(toSign, "\n")
		if len(lines) < 4 {
			return false
		}
		scope := strings.Split(lines[2], "/")
		if len(scope) != 4 || scope[3] != "aws4_request" {
			return false
		}
		key := hmacSHA256([]byte("AWS4"+secret), scope[0])
		for _, part := range scope[1:] {
			key = hmacSHA256(key, part)
		}
		want = hex.EncodeToString(hmacSHA256(key, toSign))
	} else {
		m := hmac.New(sha1.New, []byte(secret))
		m.Write(raw)
		want = base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hmac.Equal([]byte(want), []byte(signature))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// issueFor issues a project-scoped token for a user authenticated by
// other means (an EC2 signature), with the given methods.
func (s *Service) issueFor(ctx context.Context, userID, projectID string, methods []string) (string, *auth.Context, error) {
	now := s.now().UTC()
	p := &payload{UserID: userID, ProjectID: projectID, Methods: methods, IssuedAt: now.UnixMicro(),
		ExpiresAt: now.Add(s.cfg.TokenTTL).UnixMicro(), AuditIDs: []string{newAuditID()}}
	sn, err := s.snapshot(ctx)
	if err != nil {
		return "", nil, err
	}
	c, err := s.buildContext(ctx, sn, p)
	if errors.Is(err, errTokenNotFound) {
		return "", nil, errAuth
	}
	if err != nil {
		return "", nil, err
	}
	return s.sealFor(p, c)
}
