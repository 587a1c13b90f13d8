// Package providertest runs local stand-ins for APNs, FCM HTTP v1 (with its
// OAuth2 token endpoint) and a Web Push service. They speak the real
// protocols — HTTP/2 over TLS with ES256 provider tokens, the JWT-bearer
// grant, VAPID with RFC 8291 payloads — verify what a real provider would,
// record what they received and answer as scripted. Tests and the benchmark
// use them; nothing in production does.
package providertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
)

// verifyJWT checks a compact JWS signed with ES256 or RS256 and returns its
// header and claims.
func verifyJWT(token string, key crypto.PublicKey) (header, claims map[string]any, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("jwt: not three parts")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, nil, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 64 || !ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil, nil, errors.New("jwt: bad ES256 signature")
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
			return nil, nil, errors.New("jwt: bad RS256 signature")
		}
	default:
		return nil, nil, errors.New("jwt: unsupported key")
	}
	if err := decodePart(parts[0], &header); err != nil {
		return nil, nil, err
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return nil, nil, err
	}
	return header, claims, nil
}

func decodePart(s string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// Reply is a scripted provider answer.
type Reply struct {
	Status     int
	Body       string // JSON error body; empty for success
	RetryAfter string
}

// Script decides the answer to a push for a device token, given how many
// pushes for it the fake has seen (1 for the first).
type Script func(pushKey string, n int) Reply
