// Package brainpooljws adds gematik's JWS algorithm BP256R1 (ECDSA over brainpoolP256r1 with
// SHA-256) to lestrrat-go/jwx, and reads and writes brainpool public keys as JWKs of crv "BP-256",
// the form gematik's services publish them in. Importing the package registers the algorithm.
package brainpooljws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/ProtonMail/go-crypto/brainpool"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

const (
	Alg = "BP256R1" // the JWS "alg"
	Crv = "BP-256"  // the JWK "crv"
)

// The signature is the fixed-size r||s of JWS (RFC 7518 3.4), as for ES256.
func init() {
	alg := jwa.SignatureAlgorithm(Alg)
	jws.RegisterSigner(alg, jws.SignerFactoryFn(func() (jws.Signer, error) { return signer{}, nil }))
	jws.RegisterVerifier(alg, jws.VerifierFactoryFn(func() (jws.Verifier, error) { return verifier{}, nil }))
}

const size = 32 // bytes of r, s, x and y

// Curve is brainpoolP256r1.
func Curve() elliptic.Curve { return brainpool.P256r1() }

// IsBrainpool tells whether c is brainpoolP256r1.
func IsBrainpool(c elliptic.Curve) bool {
	return c != nil && c.Params().Name == brainpool.P256r1().Params().Name
}

// GenerateKey makes a key on brainpoolP256r1.
func GenerateKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(Curve(), rand.Reader) }

type signer struct{}

func (signer) Algorithm() jwa.SignatureAlgorithm { return jwa.SignatureAlgorithm(Alg) }

func (signer) Sign(payload []byte, key any) ([]byte, error) {
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || !IsBrainpool(k.Curve) {
		return nil, fmt.Errorf("brainpooljws: BP256R1 needs an *ecdsa.PrivateKey on brainpoolP256r1, got %T", key)
	}
	digest := sha256.Sum256(payload)
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return sig, nil
}

type verifier struct{}

func (verifier) Verify(payload, sig []byte, key any) error {
	var pub *ecdsa.PublicKey
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	default:
		return fmt.Errorf("brainpooljws: BP256R1 needs an *ecdsa.PublicKey, got %T", key)
	}
	if !IsBrainpool(pub.Curve) || !pub.Curve.IsOnCurve(pub.X, pub.Y) {
		return errors.New("brainpooljws: BP256R1 key is not a brainpoolP256r1 point")
	}
	if len(sig) != 2*size {
		return errors.New("brainpooljws: BP256R1 signature must be 64 bytes")
	}
	digest := sha256.Sum256(payload)
	r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errors.New("brainpooljws: BP256R1 signature does not verify")
	}
	return nil
}

// JWK is the public JWK of a brainpoolP256r1 key as gematik publishes it (kty EC, crv BP-256).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

// PublicJWK describes pub (which must be on brainpoolP256r1) as a JWK.
func PublicJWK(pub *ecdsa.PublicKey, kid, use string) (JWK, error) {
	if pub == nil || !IsBrainpool(pub.Curve) {
		return JWK{}, errors.New("brainpooljws: not a brainpoolP256r1 key")
	}
	enc := func(v *big.Int) string { return base64.RawURLEncoding.EncodeToString(v.FillBytes(make([]byte, size))) }
	return JWK{Kty: "EC", Crv: Crv, X: enc(pub.X), Y: enc(pub.Y), Kid: kid, Use: use, Alg: Alg}, nil
}

// PublicKey reads the key of a JWK of crv BP-256; the point must lie on the curve.
func (j JWK) PublicKey() (*ecdsa.PublicKey, error) {
	if j.Kty != "EC" || j.Crv != Crv {
		return nil, fmt.Errorf("brainpooljws: JWK kty %q crv %q, want EC %s", j.Kty, j.Crv, Crv)
	}
	x, errX := base64.RawURLEncoding.DecodeString(j.X)
	y, errY := base64.RawURLEncoding.DecodeString(j.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, errors.New("brainpooljws: JWK x and y must be 32 bytes each, base64url")
	}
	pub := &ecdsa.PublicKey{Curve: Curve(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	if !pub.Curve.IsOnCurve(pub.X, pub.Y) {
		return nil, errors.New("brainpooljws: JWK point is not on brainpoolP256r1")
	}
	return pub, nil
}
