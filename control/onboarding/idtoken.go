package onboarding

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/timfd/fachdienst/internal/brainpooljws"
)

// ID_TOKEN signatures. gematik's central IDP signs with BP256R1 (ECDSA on brainpoolP256r1), which
// go-jose (and so zitadel/oidc's key set) cannot verify. The relying party's verifier therefore
// gets a key set of its own: it reads the IDP's JWKS (keys of kty EC with crv BP-256 or P-256, and
// RSA) and verifies the compact token with jwx, where BP256R1 is registered. Every other check
// (iss, aud, azp, exp, iat, nonce, acr) stays zitadel's, for every algorithm alike.

// SigningAlgs are the ID_TOKEN algorithms accepted; a JWK serves only the one its key is for.
var SigningAlgs = []string{brainpooljws.Alg, "ES256", "RS256", "PS256"}

const (
	maxJWKSBytes    = 256 << 10
	maxJWKSKeys     = 64
	maxIDTokenBytes = 16 << 10
	// jwksRefetch bounds how often an unknown key ID makes the key set be read again (key rollover).
	jwksRefetch = time.Minute
)

type rawTokenKey struct{}

// withRawToken hands the compact ID_TOKEN to the key set: go-jose re-serialises the protected header
// when it parses, so the signed bytes are taken from the token itself.
func withRawToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, rawTokenKey{}, token)
}

type idpKey struct {
	kid string
	alg string // the JWS algorithm this key verifies
	key any    // *ecdsa.PublicKey or *rsa.PublicKey
}

// jwksKeySet is the IDP's JWKS, read on first use and again when a token names a key it lacks.
type jwksKeySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	keys    []idpKey
	fetched time.Time
}

func newJWKSKeySet(url string, client *http.Client, now func() time.Time) *jwksKeySet {
	if client == nil {
		client = http.DefaultClient
	}
	return &jwksKeySet{url: url, client: client, now: now}
}

// VerifySignature implements zitadel's oidc.KeySet.
func (s *jwksKeySet) VerifySignature(ctx context.Context, parsed *jose.JSONWebSignature) ([]byte, error) {
	raw, _ := ctx.Value(rawTokenKey{}).(string)
	if raw == "" || len(raw) > maxIDTokenBytes {
		return nil, errors.New("no compact token to verify")
	}
	msg, err := jws.Parse([]byte(raw))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, errors.New("token is not a compact JWS with one signature")
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	alg, kid := string(h.Algorithm()), h.KeyID()
	if len(parsed.Signatures) != 1 || parsed.Signatures[0].Header.Algorithm != alg || parsed.Signatures[0].Header.KeyID != kid {
		return nil, errors.New("token and parsed signature differ")
	}
	k, err := s.key(ctx, kid, alg)
	if err != nil {
		return nil, err
	}
	return jws.Verify([]byte(raw), jws.WithKey(jwa.SignatureAlgorithm(alg), k.key))
}

// key finds the key for kid and alg, reading the JWKS again (rate-bounded) when it is missing.
func (s *jwksKeySet) key(ctx context.Context, kid, alg string) (idpKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := pick(s.keys, kid, alg); ok {
		return k, nil
	}
	if !s.fetched.IsZero() && s.now().Sub(s.fetched) < jwksRefetch {
		return idpKey{}, fmt.Errorf("no %s key %q in the IDP's JWKS", alg, kid)
	}
	keys, err := s.fetch(ctx)
	if err != nil {
		return idpKey{}, err
	}
	s.keys, s.fetched = keys, s.now()
	if k, ok := pick(s.keys, kid, alg); ok {
		return k, nil
	}
	return idpKey{}, fmt.Errorf("no %s key %q in the IDP's JWKS", alg, kid)
}

// pick returns the key with kid that verifies alg; without kid, the only key for alg.
func pick(keys []idpKey, kid, alg string) (idpKey, bool) {
	var found []idpKey
	for _, k := range keys {
		if k.alg == alg && (kid == "" || k.kid == kid) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return idpKey{}, false
	}
	return found[0], true
}

func (s *jwksKeySet) fetch(ctx context.Context) ([]idpKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", ErrIDP, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil || resp.StatusCode != http.StatusOK || len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("%w: jwks: status %d", ErrIDP, resp.StatusCode)
	}
	return parseJWKS(body)
}

// parseJWKS reads the signature keys of a JWKS; keys for encryption and keys of other kinds are
// skipped, so one odd key does not take the others with it.
func parseJWKS(body []byte) ([]idpKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: %v", err)
	}
	var out []idpKey
	for i, raw := range set.Keys {
		if i >= maxJWKSKeys {
			break
		}
		if k, ok := parseJWK(raw); ok {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("jwks: no signature key")
	}
	return out, nil
}

func parseJWK(raw json.RawMessage) (idpKey, bool) {
	var head brainpooljws.JWK
	if json.Unmarshal(raw, &head) != nil || (head.Use != "" && head.Use != "sig") {
		return idpKey{}, false
	}
	k := idpKey{kid: head.Kid}
	if head.Kty == "EC" && head.Crv == brainpooljws.Crv {
		pub, err := head.PublicKey()
		if err != nil {
			return idpKey{}, false
		}
		k.alg, k.key = brainpooljws.Alg, pub
	} else {
		parsed, err := jwk.ParseKey(raw)
		if err != nil {
			return idpKey{}, false
		}
		var pub any
		if err := parsed.Raw(&pub); err != nil {
			return idpKey{}, false
		}
		switch p := pub.(type) {
		case *ecdsa.PublicKey:
			if p.Curve != elliptic.P256() {
				return idpKey{}, false
			}
			k.alg = "ES256"
		case *rsa.PublicKey:
			if p.N.BitLen() < 2048 {
				return idpKey{}, false
			}
			k.alg = "RS256"
			if head.Alg == "PS256" {
				k.alg = "PS256"
			}
		default:
			return idpKey{}, false
		}
		k.key = pub
	}
	if head.Alg != "" && head.Alg != k.alg {
		return idpKey{}, false
	}
	return k, true
}
