package regtoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/ProtonMail/go-crypto/brainpool"
)

// crypto/x509 refuses brainpool keys and certificates, so the few structures the signer needs are read
// here with encoding/asn1: the private key (SEC 1 or PKCS #8) and the public key of the C.FD.SIG
// certificate, to prove that the two belong together.

var (
	oidECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidP256            = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidBrainpoolP256r1 = asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7}
)

// curveOf maps a named-curve OID to the curve and the JWS algorithm that uses it.
func curveOf(oid asn1.ObjectIdentifier) (elliptic.Curve, string, error) {
	switch {
	case oid.Equal(oidBrainpoolP256r1):
		return brainpool.P256r1(), AlgBP256R1, nil
	case oid.Equal(oidP256):
		return elliptic.P256(), AlgES256, nil
	}
	return nil, "", fmt.Errorf("regtoken: unsupported curve %v (want brainpoolP256r1 or P-256)", oid)
}

// oidOf is the inverse of curveOf.
func oidOf(c elliptic.Curve) (asn1.ObjectIdentifier, error) {
	switch c.Params().Name {
	case brainpool.P256r1().Params().Name:
		return oidBrainpoolP256r1, nil
	case elliptic.P256().Params().Name:
		return oidP256, nil
	}
	return nil, fmt.Errorf("regtoken: unsupported curve %s", c.Params().Name)
}

type ecPrivateKey struct {
	Version    int
	PrivateKey []byte
	Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

type pkcs8 struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// ParsePrivateKeyPEM reads the first EC private key of a PEM bundle ("EC PRIVATE KEY" in SEC 1 form or
// "PRIVATE KEY" in PKCS #8 form) on brainpoolP256r1 or P-256.
func ParsePrivateKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("regtoken: no EC PRIVATE KEY or PRIVATE KEY block in the key file")
		}
		switch b.Type {
		case "EC PRIVATE KEY":
			return parseSEC1(b.Bytes, nil)
		case "PRIVATE KEY":
			var p pkcs8
			if rest, err := asn1.Unmarshal(b.Bytes, &p); err != nil || len(rest) > 0 {
				return nil, errors.New("regtoken: malformed PKCS #8 key")
			}
			if !p.Algorithm.Algorithm.Equal(oidECPublicKey) {
				return nil, errors.New("regtoken: the PKCS #8 key is not an EC key")
			}
			var curve asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &curve); err != nil {
				return nil, errors.New("regtoken: the PKCS #8 key names no curve")
			}
			return parseSEC1(p.PrivateKey, curve)
		}
	}
}

func parseSEC1(der []byte, curveOID asn1.ObjectIdentifier) (*ecdsa.PrivateKey, error) {
	var k ecPrivateKey
	if rest, err := asn1.Unmarshal(der, &k); err != nil || len(rest) > 0 || k.Version != 1 {
		return nil, errors.New("regtoken: malformed EC private key")
	}
	if len(k.Curve) > 0 {
		curveOID = k.Curve
	}
	if curveOID == nil {
		return nil, errors.New("regtoken: the EC private key names no curve")
	}
	curve, _, err := curveOf(curveOID)
	if err != nil {
		return nil, err
	}
	d := new(big.Int).SetBytes(k.PrivateKey)
	n := curve.Params().N
	if d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, errors.New("regtoken: EC private key out of range")
	}
	key := &ecdsa.PrivateKey{D: d}
	key.Curve = curve
	key.X, key.Y = curve.ScalarBaseMult(d.FillBytes(make([]byte, (n.BitLen()+7)/8)))
	return key, nil
}

// MarshalPrivateKeyPEM writes key as an "EC PRIVATE KEY" block (SEC 1), for tools and tests that make
// keys on brainpoolP256r1.
func MarshalPrivateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	oid, err := oidOf(key.Curve)
	if err != nil {
		return nil, err
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	pub := elliptic.Marshal(key.Curve, key.X, key.Y) //nolint:staticcheck // brainpool has no crypto/ecdh form
	der, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: key.D.FillBytes(make([]byte, size)), Curve: oid,
		PublicKey: asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

type certificate struct {
	TBS struct {
		Raw       asn1.RawContent
		Version   int `asn1:"optional,explicit,default:0,tag:0"`
		Serial    *big.Int
		SigAlg    pkix.AlgorithmIdentifier
		Issuer    asn1.RawValue
		Validity  asn1.RawValue
		Subject   asn1.RawValue
		PublicKey struct {
			Algorithm pkix.AlgorithmIdentifier
			Key       asn1.BitString
		}
		IssuerUID  asn1.BitString `asn1:"optional,tag:1"`
		SubjectUID asn1.BitString `asn1:"optional,tag:2"`
		Extensions asn1.RawValue  `asn1:"optional,explicit,tag:3"`
	}
	SigAlg pkix.AlgorithmIdentifier
	Sig    asn1.BitString
}

// certPublicKey returns the EC public key of a DER certificate.
func certPublicKey(der []byte) (*ecdsa.PublicKey, error) {
	var c certificate
	if rest, err := asn1.Unmarshal(der, &c); err != nil || len(rest) > 0 {
		return nil, errors.New("regtoken: malformed certificate")
	}
	spki := c.TBS.PublicKey
	if !spki.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, errors.New("regtoken: the certificate does not hold an EC key")
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &oid); err != nil {
		return nil, errors.New("regtoken: the certificate's key names no curve")
	}
	curve, _, err := curveOf(oid)
	if err != nil {
		return nil, err
	}
	x, y := elliptic.Unmarshal(curve, spki.Key.RightAlign()) //nolint:staticcheck // brainpool has no crypto/ecdh form
	if x == nil || !curve.IsOnCurve(x, y) {
		return nil, errors.New("regtoken: the certificate's EC point is not on its curve")
	}
	return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
}

// ParseCertificatesPEM returns the DER of every CERTIFICATE block, in order (signer first).
func ParseCertificatesPEM(data []byte) ([][]byte, error) {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("regtoken: no CERTIFICATE block in the certificate file")
	}
	return out, nil
}
