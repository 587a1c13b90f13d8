package regtoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/ProtonMail/go-crypto/brainpool"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// BP256R1 as a jwx signature algorithm: ECDSA over brainpoolP256r1 with SHA-256, the signature the
// fixed-size r||s of JWS (RFC 7518 3.4), as for ES256.
func init() {
	alg := jwa.SignatureAlgorithm(AlgBP256R1)
	jws.RegisterSigner(alg, jws.SignerFactoryFn(func() (jws.Signer, error) { return bpSigner{}, nil }))
	jws.RegisterVerifier(alg, jws.VerifierFactoryFn(func() (jws.Verifier, error) { return bpVerifier{}, nil }))
}

const bpSize = 32 // bytes of r and of s

func curveOfKey(k *ecdsa.PrivateKey) (elliptic.Curve, string, error) {
	oid, err := oidOf(k.Curve)
	if err != nil {
		return nil, "", err
	}
	return curveOf(oid)
}

func isBrainpool(c elliptic.Curve) bool {
	return c != nil && c.Params().Name == brainpool.P256r1().Params().Name
}

type bpSigner struct{}

func (bpSigner) Algorithm() jwa.SignatureAlgorithm { return jwa.SignatureAlgorithm(AlgBP256R1) }

func (bpSigner) Sign(payload []byte, key any) ([]byte, error) {
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || !isBrainpool(k.Curve) {
		return nil, fmt.Errorf("regtoken: BP256R1 needs an *ecdsa.PrivateKey on brainpoolP256r1, got %T", key)
	}
	digest := sha256.Sum256(payload)
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 2*bpSize)
	r.FillBytes(sig[:bpSize])
	s.FillBytes(sig[bpSize:])
	return sig, nil
}

type bpVerifier struct{}

func (bpVerifier) Verify(payload, sig []byte, key any) error {
	var pub *ecdsa.PublicKey
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	default:
		return fmt.Errorf("regtoken: BP256R1 needs an *ecdsa.PublicKey, got %T", key)
	}
	if !isBrainpool(pub.Curve) || !pub.Curve.IsOnCurve(pub.X, pub.Y) {
		return errors.New("regtoken: BP256R1 key is not a brainpoolP256r1 point")
	}
	if len(sig) != 2*bpSize {
		return errors.New("regtoken: BP256R1 signature must be 64 bytes")
	}
	digest := sha256.Sum256(payload)
	r, s := new(big.Int).SetBytes(sig[:bpSize]), new(big.Int).SetBytes(sig[bpSize:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errors.New("regtoken: BP256R1 signature does not verify")
	}
	return nil
}
