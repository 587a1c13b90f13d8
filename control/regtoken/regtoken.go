// Package regtoken issues the RegService OpenID token (I_requestToken, gemSpec_TI-Messenger-FD
// 5.1.1.1.2–5.1.1.1.4): a JWT signed with the private key of the provider's C.FD.SIG certificate, which
// an authenticated Org-Admin presents at the VZD-FHIR-Directory's owner-authenticate endpoint to change
// its organisation's entries.
//
//	header  {"alg":"BP256R1","typ":"JWT","x5c":["<C.FD.SIG, base64 DER>"]}   (ES256 configurable)
//	payload {"sub","iss","aud","professionOID","idNummer","iat","exp"}       exp - iat ≤ 1 h
//
// Tokens are built and signed with github.com/lestrrat-go/jwx/v2. jwx knows ES256 but not BP256R1
// (ECDSA on brainpoolP256r1 with SHA-256), so this package registers a signer and a verifier for it.
// Only an authenticated Org-Admin may be given a token; the caller (the portal) enforces that.
package regtoken

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/cert"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/timfd/fachdienst/internal/brainpooljws"
)

// JWS algorithms of the token.
const (
	AlgBP256R1 = brainpooljws.Alg // ECDSA on brainpoolP256r1 with SHA-256; what gematik's VZD expects by default
	AlgES256   = "ES256"
)

// MaxLifetime is the longest validity the specification allows (5.1.1.1.2).
const MaxLifetime = time.Hour

// Config configures a Signer.
type Config struct {
	// Alg is BP256R1 or ES256; empty takes the algorithm of the key's curve.
	Alg string
	// Key is the private key of C.FD.SIG, Cert its certificate (DER): x5c holds exactly that
	// certificate, as 5.1.1.1.3 shows.
	Key  *ecdsa.PrivateKey
	Cert []byte
	// Issuer is the URL of the registration service endpoint that issues the token (iss); Audience
	// the URL of the VZD-FHIR-Directory's owner-authenticate endpoint (aud).
	Issuer   string
	Audience string
	// Lifetime of a token; default and maximum one hour.
	Lifetime time.Duration
	Now      func() time.Time
}

// Signer issues RegService OpenID tokens. It is safe for concurrent use.
type Signer struct {
	alg      jwa.SignatureAlgorithm
	key      *ecdsa.PrivateKey
	chain    cert.Chain
	issuer   string
	audience string
	lifetime time.Duration
	now      func() time.Time
}

// New checks cfg (the key must belong to the first certificate, on the curve of Alg) and returns a Signer.
func New(cfg Config) (*Signer, error) {
	if cfg.Key == nil || len(cfg.Cert) == 0 {
		return nil, errors.New("regtoken: the C.FD.SIG key and certificate are required")
	}
	_, keyAlg, err := curveOfKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Alg == "" {
		cfg.Alg = keyAlg
	}
	if cfg.Alg != AlgBP256R1 && cfg.Alg != AlgES256 {
		return nil, fmt.Errorf("regtoken: alg %q: want %s or %s", cfg.Alg, AlgBP256R1, AlgES256)
	}
	if cfg.Alg != keyAlg {
		return nil, fmt.Errorf("regtoken: alg %s needs a key on the other curve than the configured one (%s)", cfg.Alg, keyAlg)
	}
	pub, err := certPublicKey(cfg.Cert)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(&cfg.Key.PublicKey) {
		return nil, errors.New("regtoken: the private key does not belong to the C.FD.SIG certificate")
	}
	for name, u := range map[string]string{"issuer": cfg.Issuer, "audience": cfg.Audience} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("regtoken: %s %q is not an absolute http(s) URL", name, u)
		}
	}
	switch {
	case cfg.Lifetime == 0:
		cfg.Lifetime = MaxLifetime
	case cfg.Lifetime < 0 || cfg.Lifetime > MaxLifetime:
		return nil, fmt.Errorf("regtoken: lifetime %s: must be positive and at most %s", cfg.Lifetime, MaxLifetime)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Signer{alg: jwa.SignatureAlgorithm(cfg.Alg), key: cfg.Key, issuer: cfg.Issuer, audience: cfg.Audience,
		lifetime: cfg.Lifetime, now: cfg.Now}
	if err := s.chain.AddString(base64.StdEncoding.EncodeToString(cfg.Cert)); err != nil {
		return nil, err
	}
	return s, nil
}

// Files names the PEM files of a Signer and the rest of its configuration, as config.RegToken holds them.
type Files struct {
	Alg      string
	KeyFile  string // PEM: EC PRIVATE KEY or PRIVATE KEY
	CertFile string // PEM: C.FD.SIG (further certificates, e.g. its CA, are ignored)
	Issuer   string
	Audience string
	Lifetime time.Duration
}

// Open reads the key and certificate files and returns a Signer.
func Open(f Files) (*Signer, error) {
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("regtoken: key file: %w", err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("regtoken: certificate file: %w", err)
	}
	certs, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, err
	}
	return New(Config{Alg: f.Alg, Key: key, Cert: certs[0], Issuer: f.Issuer, Audience: f.Audience, Lifetime: f.Lifetime})
}

// Lifetime is the validity of the tokens this Signer issues.
func (s *Signer) Lifetime() time.Duration { return s.lifetime }

// IssueToken returns a signed RegService OpenID token for the organisation with the given
// ProfessionOID and Telematik-ID. The subject is the Telematik-ID: the token speaks for the
// organisation that authenticated with its SMC-B, not for a person.
func (s *Signer) IssueToken(ctx context.Context, professionOID, idNummer string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if strings.TrimSpace(professionOID) == "" || strings.TrimSpace(idNummer) == "" {
		return "", errors.New("regtoken: professionOID and idNummer are required")
	}
	// Whole seconds: iat and exp are NumericDate, and exp - iat must not exceed the lifetime.
	now := s.now().Truncate(time.Second)
	tok, err := jwt.NewBuilder().
		Subject(idNummer).
		Issuer(s.issuer).
		Audience([]string{s.audience}).
		IssuedAt(now).
		Expiration(now.Add(s.lifetime)).
		Claim("professionOID", professionOID).
		Claim("idNummer", idNummer).
		Build()
	if err != nil {
		return "", fmt.Errorf("regtoken: building the token: %w", err)
	}
	// The specification writes aud as a string, not as a one-element array; per token, so that other
	// users of jwx keep its default.
	tok.Options().Enable(jwt.FlattenAudience)
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	chain := s.chain
	if err := hdr.Set(jws.X509CertChainKey, &chain); err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(s.alg, s.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("regtoken: signing the token: %w", err)
	}
	return string(signed), nil
}
