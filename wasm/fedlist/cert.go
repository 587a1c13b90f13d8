package fedlist

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"time"

	"github.com/keybase/go-crypto/brainpool"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers the parser understands.
var (
	oidECPublicKey     = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}             // 1.2.840.10045.2.1
	oidP256            = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}       // 1.2.840.10045.3.1.7
	oidBrainpoolP256r1 = []byte{0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07} // 1.3.36.3.3.2.8.1.1.7
	oidECDSAWithSHA256 = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}       // 1.2.840.10045.4.3.2
	oidECDSAWithSHA384 = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}       // 1.2.840.10045.4.3.3
	oidECDSAWithSHA512 = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}       // 1.2.840.10045.4.3.4
	oidExtKeyUsage     = []byte{0x55, 0x1d, 0x0f}                                     // 2.5.29.15
	oidExtBasicConstr  = []byte{0x55, 0x1d, 0x13}                                     // 2.5.29.19
	oidExtCertPolicies = []byte{0x55, 0x1d, 0x20}                                     // 2.5.29.32
	oidExtExtKeyUsage  = []byte{0x55, 0x1d, 0x25}                                     // 2.5.29.37
	oidExtSubjectAlt   = []byte{0x55, 0x1d, 0x11}                                     // 2.5.29.17
	oidExtAdmission    = []byte{0x2b, 0x24, 0x08, 0x03, 0x03}                         // 1.3.36.8.3.3 (TI admission)
)

// Curve names as reported in errors and Header diagnostics.
const (
	CurveP256            = "P-256"
	CurveBrainpoolP256r1 = "brainpoolP256r1"
)

// Key usage bits (RFC 5280 4.2.1.3), counted from the most significant bit.
const (
	kuDigitalSignature = 0
	kuKeyCertSign      = 5
)

// certificate is what the chain check needs from an X.509 certificate.
type certificate struct {
	Raw        []byte
	RawTBS     []byte
	RawIssuer  []byte
	RawSubject []byte
	NotBefore  time.Time
	NotAfter   time.Time
	Curve      string // CurveP256 or CurveBrainpoolP256r1
	Key        *ecdsa.PublicKey
	SigAlg     []byte // signature algorithm OID (DER contents)
	Signature  []byte // DER ECDSA-Sig-Value
	HasBC      bool   // basicConstraints present
	IsCA       bool
	HasKU      bool // keyUsage present
	KeyUsage   []byte
	// UnknownCritical is set when a critical extension is not understood;
	// such a certificate must not be used in a chain (RFC 5280 4.2).
	UnknownCritical bool
}

var errCert = errors.New("certificate")

// parseCertificate reads a DER certificate. Only EC keys on P-256 and
// brainpoolP256r1 are accepted.
func parseCertificate(der []byte) (*certificate, error) {
	c := &certificate{Raw: der}
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, asn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: not a DER SEQUENCE", errCert)
	}
	var rawTBS cryptobyte.String
	if !cert.ReadASN1Element(&rawTBS, asn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: no tbsCertificate", errCert)
	}
	c.RawTBS = rawTBS
	tbs = rawTBS
	if !tbs.ReadASN1(&tbs, asn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: bad tbsCertificate", errCert)
	}
	var sigAlg cryptobyte.String
	if !cert.ReadASN1(&sigAlg, asn1.SEQUENCE) || !sigAlg.ReadASN1(&sigAlg, asn1.OBJECT_IDENTIFIER) {
		return nil, fmt.Errorf("%w: bad signatureAlgorithm", errCert)
	}
	c.SigAlg = sigAlg
	var sig asn1BitString
	if !readBitString(&cert, &sig) || sig.padding != 0 || !cert.Empty() {
		return nil, fmt.Errorf("%w: bad signatureValue", errCert)
	}
	c.Signature = sig.bytes

	// version [0] EXPLICIT INTEGER OPTIONAL
	var version int64
	var verWrap cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&verWrap, &hasVersion, asn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, fmt.Errorf("%w: bad version", errCert)
	}
	if hasVersion && (!verWrap.ReadASN1Int64WithTag(&version, asn1.INTEGER) || !verWrap.Empty()) {
		return nil, fmt.Errorf("%w: bad version", errCert)
	}
	var skip, tbsSigAlg cryptobyte.String
	if !tbs.ReadASN1(&skip, asn1.INTEGER) { // serialNumber
		return nil, fmt.Errorf("%w: bad serial", errCert)
	}
	if !tbs.ReadASN1(&tbsSigAlg, asn1.SEQUENCE) || !tbsSigAlg.ReadASN1(&tbsSigAlg, asn1.OBJECT_IDENTIFIER) ||
		!bytes.Equal(tbsSigAlg, c.SigAlg) {
		return nil, fmt.Errorf("%w: signature algorithms differ", errCert)
	}
	var issuer, subject, validity, spki cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, asn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: bad issuer", errCert)
	}
	c.RawIssuer = issuer
	if !tbs.ReadASN1(&validity, asn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: bad validity", errCert)
	}
	var err error
	if c.NotBefore, err = readTime(&validity); err != nil {
		return nil, err
	}
	if c.NotAfter, err = readTime(&validity); err != nil {
		return nil, err
	}
	if !tbs.ReadASN1Element(&subject, asn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: bad subject", errCert)
	}
	c.RawSubject = subject
	if !tbs.ReadASN1(&spki, asn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: bad subjectPublicKeyInfo", errCert)
	}
	if c.Curve, c.Key, err = parseSPKI(spki); err != nil {
		return nil, err
	}
	// issuerUniqueID [1], subjectUniqueID [2]: skipped.
	for _, tag := range []asn1.Tag{asn1.Tag(1).ContextSpecific(), asn1.Tag(2).ContextSpecific()} {
		if !tbs.SkipOptionalASN1(tag) {
			return nil, fmt.Errorf("%w: bad unique ID", errCert)
		}
	}
	var extWrap cryptobyte.String
	var hasExt bool
	if !tbs.ReadOptionalASN1(&extWrap, &hasExt, asn1.Tag(3).Constructed().ContextSpecific()) {
		return nil, fmt.Errorf("%w: bad extensions", errCert)
	}
	if hasExt {
		if err := c.parseExtensions(extWrap); err != nil {
			return nil, err
		}
	}
	if !tbs.Empty() {
		return nil, fmt.Errorf("%w: trailing data in tbsCertificate", errCert)
	}
	return c, nil
}

func (c *certificate) parseExtensions(w cryptobyte.String) error {
	var exts cryptobyte.String
	if !w.ReadASN1(&exts, asn1.SEQUENCE) || !w.Empty() {
		return fmt.Errorf("%w: bad extensions", errCert)
	}
	for !exts.Empty() {
		var ext, oid, val cryptobyte.String
		critical := false
		if !exts.ReadASN1(&ext, asn1.SEQUENCE) || !ext.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) ||
			!readOptionalBool(&ext, &critical) ||
			!ext.ReadASN1(&val, asn1.OCTET_STRING) || !ext.Empty() {
			return fmt.Errorf("%w: bad extension", errCert)
		}
		switch {
		case bytes.Equal(oid, oidExtBasicConstr):
			var bc cryptobyte.String
			if !val.ReadASN1(&bc, asn1.SEQUENCE) || !readOptionalBool(&bc, &c.IsCA) {
				return fmt.Errorf("%w: bad basicConstraints", errCert)
			}
			c.HasBC = true
		case bytes.Equal(oid, oidExtKeyUsage):
			var ku asn1BitString
			if !readBitString(&val, &ku) {
				return fmt.Errorf("%w: bad keyUsage", errCert)
			}
			c.HasKU, c.KeyUsage = true, ku.bytes
		case bytes.Equal(oid, oidExtCertPolicies), bytes.Equal(oid, oidExtExtKeyUsage),
			bytes.Equal(oid, oidExtSubjectAlt), bytes.Equal(oid, oidExtAdmission):
			// Understood well enough: they restrict uses that do not
			// apply to signing a federation list.
		default:
			if critical {
				c.UnknownCritical = true
			}
		}
	}
	return nil
}

func (c *certificate) hasKeyUsage(bit int) bool {
	if !c.HasKU {
		return true
	}
	i := bit / 8
	return i < len(c.KeyUsage) && c.KeyUsage[i]&(0x80>>(bit%8)) != 0
}

func parseSPKI(spki cryptobyte.String) (string, *ecdsa.PublicKey, error) {
	var alg, algOID, params cryptobyte.String
	var key asn1BitString
	if !spki.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1(&algOID, asn1.OBJECT_IDENTIFIER) ||
		!readBitString(&spki, &key) || !spki.Empty() {
		return "", nil, fmt.Errorf("%w: bad subjectPublicKeyInfo", errCert)
	}
	if !bytes.Equal(algOID, oidECPublicKey) {
		return "", nil, fmt.Errorf("%w: public key is not an EC key", errCert)
	}
	if !alg.ReadASN1(&params, asn1.OBJECT_IDENTIFIER) || !alg.Empty() {
		return "", nil, fmt.Errorf("%w: EC key without named curve", errCert)
	}
	var name string
	var curve elliptic.Curve
	switch {
	case bytes.Equal(params, oidP256):
		name, curve = CurveP256, elliptic.P256()
	case bytes.Equal(params, oidBrainpoolP256r1):
		name, curve = CurveBrainpoolP256r1, brainpool.P256r1()
	default:
		return "", nil, fmt.Errorf("%w: unsupported EC curve", errCert)
	}
	pub, err := uncompressedPoint(curve, key.bytes)
	if err != nil || key.padding != 0 {
		return "", nil, fmt.Errorf("%w: bad EC point", errCert)
	}
	return name, pub, nil
}

// uncompressedPoint decodes 04||X||Y and checks that the point is on the
// curve: the generic curve code behind brainpool does not check it.
func uncompressedPoint(curve elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	size := (curve.Params().BitSize + 7) / 8
	if len(b) != 1+2*size || b[0] != 4 {
		return nil, errCert
	}
	x := new(big.Int).SetBytes(b[1 : 1+size])
	y := new(big.Int).SetBytes(b[1+size:])
	p := curve.Params().P
	if x.Cmp(p) >= 0 || y.Cmp(p) >= 0 || !curve.IsOnCurve(x, y) {
		return nil, errCert
	}
	return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
}

// checkSignatureFrom verifies that issuer's key signed c.
func (c *certificate) checkSignatureFrom(issuer *certificate) bool {
	var h hash.Hash
	switch {
	case bytes.Equal(c.SigAlg, oidECDSAWithSHA256):
		h = sha256.New()
	case bytes.Equal(c.SigAlg, oidECDSAWithSHA384):
		h = sha512.New384()
	case bytes.Equal(c.SigAlg, oidECDSAWithSHA512):
		h = sha512.New()
	default:
		return false
	}
	h.Write(c.RawTBS)
	return ecdsa.VerifyASN1(issuer.Key, h.Sum(nil), c.Signature)
}

type asn1BitString struct {
	bytes   []byte
	padding byte
}

func readBitString(s *cryptobyte.String, out *asn1BitString) bool {
	var b cryptobyte.String
	if !s.ReadASN1(&b, asn1.BIT_STRING) || len(b) == 0 || b[0] > 7 || (len(b) == 1 && b[0] != 0) {
		return false
	}
	out.padding, out.bytes = b[0], b[1:]
	return true
}

func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(asn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, fmt.Errorf("%w: bad UTCTime", errCert)
		}
	case s.PeekASN1Tag(asn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, fmt.Errorf("%w: bad GeneralizedTime", errCert)
		}
	default:
		return t, fmt.Errorf("%w: bad validity time", errCert)
	}
	return t, nil
}

// readOptionalBool reads a BOOLEAN DEFAULT FALSE. (cryptobyte's
// ReadOptionalASN1Boolean expects the element inside an explicit tag.)
func readOptionalBool(s *cryptobyte.String, out *bool) bool {
	*out = false
	if !s.PeekASN1Tag(asn1.BOOLEAN) {
		return true
	}
	return s.ReadASN1Boolean(out)
}
