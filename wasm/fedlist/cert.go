package fedlist

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"math/big"
	"time"

	"github.com/ProtonMail/go-crypto/brainpool"
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
		return nil, fault(errCert, "not a DER SEQUENCE")
	}
	var rawTBS cryptobyte.String
	if !cert.ReadASN1Element(&rawTBS, asn1.SEQUENCE) {
		return nil, fault(errCert, "no tbsCertificate")
	}
	c.RawTBS = rawTBS
	tbs = rawTBS
	if !tbs.ReadASN1(&tbs, asn1.SEQUENCE) {
		return nil, fault(errCert, "bad tbsCertificate")
	}
	var sigAlg cryptobyte.String
	if !cert.ReadASN1(&sigAlg, asn1.SEQUENCE) || !sigAlg.ReadASN1(&sigAlg, asn1.OBJECT_IDENTIFIER) {
		return nil, fault(errCert, "bad signatureAlgorithm")
	}
	c.SigAlg = sigAlg
	var sig asn1BitString
	if !readBitString(&cert, &sig) || sig.padding != 0 || !cert.Empty() {
		return nil, fault(errCert, "bad signatureValue")
	}
	c.Signature = sig.bytes

	// version [0] EXPLICIT INTEGER OPTIONAL
	var version int64
	var verWrap cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&verWrap, &hasVersion, asn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, fault(errCert, "bad version")
	}
	if hasVersion && (!verWrap.ReadASN1Int64WithTag(&version, asn1.INTEGER) || !verWrap.Empty()) {
		return nil, fault(errCert, "bad version")
	}
	var skip, tbsSigAlg cryptobyte.String
	if !tbs.ReadASN1(&skip, asn1.INTEGER) { // serialNumber
		return nil, fault(errCert, "bad serial")
	}
	if !tbs.ReadASN1(&tbsSigAlg, asn1.SEQUENCE) || !tbsSigAlg.ReadASN1(&tbsSigAlg, asn1.OBJECT_IDENTIFIER) ||
		!bytes.Equal(tbsSigAlg, c.SigAlg) {
		return nil, fault(errCert, "signature algorithms differ")
	}
	var issuer, subject, validity, spki cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, asn1.SEQUENCE) {
		return nil, fault(errCert, "bad issuer")
	}
	c.RawIssuer = issuer
	if !tbs.ReadASN1(&validity, asn1.SEQUENCE) {
		return nil, fault(errCert, "bad validity")
	}
	var err error
	if c.NotBefore, err = readTime(&validity); err != nil {
		return nil, err
	}
	if c.NotAfter, err = readTime(&validity); err != nil {
		return nil, err
	}
	if !tbs.ReadASN1Element(&subject, asn1.SEQUENCE) {
		return nil, fault(errCert, "bad subject")
	}
	c.RawSubject = subject
	if !tbs.ReadASN1(&spki, asn1.SEQUENCE) {
		return nil, fault(errCert, "bad subjectPublicKeyInfo")
	}
	if c.Curve, c.Key, err = parseSPKI(spki); err != nil {
		return nil, err
	}
	// issuerUniqueID [1], subjectUniqueID [2]: skipped.
	for _, tag := range []asn1.Tag{asn1.Tag(1).ContextSpecific(), asn1.Tag(2).ContextSpecific()} {
		if !tbs.SkipOptionalASN1(tag) {
			return nil, fault(errCert, "bad unique ID")
		}
	}
	var extWrap cryptobyte.String
	var hasExt bool
	if !tbs.ReadOptionalASN1(&extWrap, &hasExt, asn1.Tag(3).Constructed().ContextSpecific()) {
		return nil, fault(errCert, "bad extensions")
	}
	if hasExt {
		if err := c.parseExtensions(extWrap); err != nil {
			return nil, err
		}
	}
	if !tbs.Empty() {
		return nil, fault(errCert, "trailing data in tbsCertificate")
	}
	return c, nil
}

func (c *certificate) parseExtensions(w cryptobyte.String) error {
	var exts cryptobyte.String
	if !w.ReadASN1(&exts, asn1.SEQUENCE) || !w.Empty() {
		return fault(errCert, "bad extensions")
	}
	for !exts.Empty() {
		var ext, oid, val cryptobyte.String
		critical := false
		if !exts.ReadASN1(&ext, asn1.SEQUENCE) || !ext.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) ||
			!readOptionalBool(&ext, &critical) ||
			!ext.ReadASN1(&val, asn1.OCTET_STRING) || !ext.Empty() {
			return fault(errCert, "bad extension")
		}
		switch {
		case bytes.Equal(oid, oidExtBasicConstr):
			var bc cryptobyte.String
			if !val.ReadASN1(&bc, asn1.SEQUENCE) || !readOptionalBool(&bc, &c.IsCA) {
				return fault(errCert, "bad basicConstraints")
			}
			c.HasBC = true
		case bytes.Equal(oid, oidExtKeyUsage):
			var ku asn1BitString
			if !readBitString(&val, &ku) {
				return fault(errCert, "bad keyUsage")
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
		return "", nil, fault(errCert, "bad subjectPublicKeyInfo")
	}
	if !bytes.Equal(algOID, oidECPublicKey) {
		return "", nil, fault(errCert, "public key is not an EC key")
	}
	if !alg.ReadASN1(&params, asn1.OBJECT_IDENTIFIER) || !alg.Empty() {
		return "", nil, fault(errCert, "EC key without named curve")
	}
	var name string
	var curve elliptic.Curve
	switch {
	case bytes.Equal(params, oidP256):
		name, curve = CurveP256, elliptic.P256()
	case bytes.Equal(params, oidBrainpoolP256r1):
		name, curve = CurveBrainpoolP256r1, brainpool.P256r1()
	default:
		return "", nil, fault(errCert, "unsupported EC curve")
	}
	pub, err := uncompressedPoint(curve, key.bytes)
	if err != nil || key.padding != 0 {
		return "", nil, fault(errCert, "bad EC point")
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

// readTime reads a certificate's notBefore or notAfter in the only forms
// DER allows (X.690 11.7/11.8, RFC 5280 4.1.2.5): UTCTime YYMMDDHHMMSSZ
// (years 1950..2049) or GeneralizedTime YYYYMMDDHHMMSSZ. It is read here
// rather than with cryptobyte's time readers, which go through time.Parse:
// that layout parser alone is 60 KB of the filter module.
func readTime(s *cryptobyte.String) (time.Time, error) {
	var raw cryptobyte.String
	switch {
	case s.PeekASN1Tag(asn1.UTCTime):
		if !s.ReadASN1(&raw, asn1.UTCTime) || len(raw) != len("YYMMDDHHMMSSZ") {
			return time.Time{}, fault(errCert, "bad UTCTime")
		}
		yy, ok := digits(raw[:2])
		year := 2000 + yy
		if yy >= 50 {
			year = 1900 + yy
		}
		if t, good := derTime(year, raw[2:]); ok && good {
			return t, nil
		}
		return time.Time{}, fault(errCert, "bad UTCTime")
	case s.PeekASN1Tag(asn1.GeneralizedTime):
		if !s.ReadASN1(&raw, asn1.GeneralizedTime) || len(raw) != len("YYYYMMDDHHMMSSZ") {
			return time.Time{}, fault(errCert, "bad GeneralizedTime")
		}
		year, ok := digits(raw[:4])
		if t, good := derTime(year, raw[4:]); ok && good {
			return t, nil
		}
		return time.Time{}, fault(errCert, "bad GeneralizedTime")
	}
	return time.Time{}, fault(errCert, "bad validity time")
}

// derTime reads MMDDHHMMSSZ of the given year; every field must be in range
// (no normalisation of 31 April into 1 May).
func derTime(year int, b []byte) (time.Time, bool) {
	if len(b) != len("MMDDHHMMSSZ") || b[10] != 'Z' {
		return time.Time{}, false
	}
	var f [5]int
	for i := range f {
		n, ok := digits(b[2*i : 2*i+2])
		if !ok {
			return time.Time{}, false
		}
		f[i] = n
	}
	month, day, hour, minute, sec := f[0], f[1], f[2], f[3], f[4]
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // day beyond the end of the month
	}
	return t, true
}

// digits reads a decimal number of ASCII digits only.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
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
