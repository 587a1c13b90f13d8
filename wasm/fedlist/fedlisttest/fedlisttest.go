// Package fedlisttest builds what tests and the VZD stand-in need to produce
// federation lists the way the VZD-FHIR-Directory does: a test PKI
// (root → [intermediate →] signer) on brainpoolP256r1 or P-256, and compact
// JWS signing with BP256R1 or ES256 and an x5c header.
//
// Certificates are encoded here rather than with crypto/x509, which refuses
// brainpool keys. The keys and certificates are for tests only.
package fedlisttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/brainpool"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// JWS algorithms.
const (
	AlgBP256R1 = "BP256R1"
	AlgES256   = "ES256"
)

var (
	oidECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidP256            = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidBrainpoolP256r1 = asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidCommonName      = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidBasicConstr     = asn1.ObjectIdentifier{2, 5, 29, 19}
)

// Curve returns the curve of a JWS algorithm.
func Curve(alg string) (elliptic.Curve, asn1.ObjectIdentifier, error) {
	switch alg {
	case AlgBP256R1:
		return brainpool.P256r1(), oidBrainpoolP256r1, nil
	case AlgES256:
		return elliptic.P256(), oidP256, nil
	}
	return nil, nil, fmt.Errorf("fedlisttest: unsupported alg %q", alg)
}

// GenerateKey makes a key on the curve of alg.
func GenerateKey(alg string) (*ecdsa.PrivateKey, error) {
	c, _, err := Curve(alg)
	if err != nil {
		return nil, err
	}
	return ecdsa.GenerateKey(c, rand.Reader)
}

// Template describes a certificate to create.
type Template struct {
	CommonName string
	Serial     int64
	NotBefore  time.Time
	NotAfter   time.Time
	IsCA       bool
	// KeyUsage overrides the default (keyCertSign|cRLSign for a CA,
	// digitalSignature otherwise); the first byte of the BIT STRING.
	KeyUsage byte
}

// Cert is a created certificate with its key.
type Cert struct {
	DER  []byte
	Key  *ecdsa.PrivateKey
	name []byte // DER of the subject Name
}

// PEM returns the certificate as a PEM block.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// CreateCertificate issues a certificate for key, signed by issuer (nil:
// self-signed by key). Signature algorithm ecdsa-with-SHA256 on both curves,
// as the TI's CAs use.
func CreateCertificate(t Template, key *ecdsa.PrivateKey, issuer *Cert) (*Cert, error) {
	name, err := encodeName(t.CommonName)
	if err != nil {
		return nil, err
	}
	spki, err := encodeSPKI(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	issuerName, signer := name, key
	if issuer != nil {
		issuerName, signer = issuer.name, issuer.Key
	}
	ku := t.KeyUsage
	if ku == 0 {
		ku = 0x80 // digitalSignature
		if t.IsCA {
			ku = 0x06 // keyCertSign | cRLSign
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1Int64(t.Serial)
		addAlg(b)
		b.AddBytes(issuerName)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, t.NotBefore)
			addTime(b, t.NotAfter)
		})
		b.AddBytes(name)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidBasicConstr, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						if t.IsCA {
							b.AddASN1Boolean(true)
						}
					})
				})
				addExtension(b, oidKeyUsage, func(b *cryptobyte.Builder) {
					b.AddASN1BitString([]byte{ku})
				})
			})
		})
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, signer, digest[:])
	if err != nil {
		return nil, err
	}
	var cb cryptobyte.Builder
	cb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		addAlg(b)
		b.AddASN1BitString(sig)
	})
	der, err := cb.Bytes()
	if err != nil {
		return nil, err
	}
	return &Cert{DER: der, Key: key, name: name}, nil
}

func addAlg(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidECDSAWithSHA256)
	})
}

func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

func addExtension(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1Boolean(true) // critical
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

func encodeName(cn string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidCommonName)
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(cn)) })
			})
		})
	})
	return b.Bytes()
}

func encodeSPKI(pub *ecdsa.PublicKey) ([]byte, error) {
	var curveOID asn1.ObjectIdentifier
	switch pub.Curve.Params().Name {
	case elliptic.P256().Params().Name:
		curveOID = oidP256
	case brainpool.P256r1().Params().Name:
		curveOID = oidBrainpoolP256r1
	default:
		return nil, fmt.Errorf("fedlisttest: unsupported curve %s", pub.Curve.Params().Name)
	}
	point := make([]byte, 65)
	point[0] = 4
	pub.X.FillBytes(point[1:33])
	pub.Y.FillBytes(point[33:])
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidECPublicKey)
			b.AddASN1ObjectIdentifier(curveOID)
		})
		b.AddASN1BitString(point)
	})
	return b.Bytes()
}

// Options shape a test PKI. Zero times mean: valid from a day before Now
// until a year after it.
type Options struct {
	Now                    time.Time // default time.Now()
	RootNotBefore          time.Time
	RootNotAfter           time.Time
	LeafNotBefore          time.Time
	LeafNotAfter           time.Time
	WithIntermediate       bool // root → intermediate → leaf; the intermediate goes into x5c
	IntermediateNotAfter   time.Time
	LeafKeyUsage           byte // default digitalSignature
	IntermediateIsNotCA    bool // for negative tests
	RootCommonName         string
	IntermediateCommonName string
	LeafCommonName         string
	IntermediateKeyUsage   byte
	IntermediateNotBefore  time.Time
}

// PKI is a test CA hierarchy with its signer certificate.
type PKI struct {
	Alg          string
	Root         *Cert
	Intermediate *Cert // nil unless Options.WithIntermediate
	Leaf         *Cert
}

// NewPKI creates root, optional intermediate and signer for alg.
func NewPKI(alg string, o Options) (*PKI, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	def := func(t, d time.Time) time.Time {
		if t.IsZero() {
			return d
		}
		return t
	}
	from, to := now.Add(-24*time.Hour), now.Add(365*24*time.Hour)
	name := func(n, d string) string {
		if n == "" {
			return d
		}
		return n
	}
	p := &PKI{Alg: alg}
	rootKey, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	if p.Root, err = CreateCertificate(Template{
		CommonName: name(o.RootCommonName, "TEST-ONLY Root CA "+alg), Serial: 1, IsCA: true,
		NotBefore: def(o.RootNotBefore, from), NotAfter: def(o.RootNotAfter, to.Add(24*time.Hour)),
	}, rootKey, nil); err != nil {
		return nil, err
	}
	issuer := p.Root
	if o.WithIntermediate {
		k, err := GenerateKey(alg)
		if err != nil {
			return nil, err
		}
		if p.Intermediate, err = CreateCertificate(Template{
			CommonName: name(o.IntermediateCommonName, "TEST-ONLY Komp-CA "+alg), Serial: 2, IsCA: !o.IntermediateIsNotCA,
			NotBefore: def(o.IntermediateNotBefore, from), NotAfter: def(o.IntermediateNotAfter, to),
			KeyUsage: o.IntermediateKeyUsage,
		}, k, p.Root); err != nil {
			return nil, err
		}
		issuer = p.Intermediate
	}
	leafKey, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	if p.Leaf, err = CreateCertificate(Template{
		CommonName: name(o.LeafCommonName, "TEST-ONLY VZD-FHIR-FList-Signer"), Serial: 3,
		NotBefore: def(o.LeafNotBefore, from), NotAfter: def(o.LeafNotAfter, to),
		KeyUsage: o.LeafKeyUsage,
	}, leafKey, issuer); err != nil {
		return nil, err
	}
	return p, nil
}

// RootPEM is the trust anchor for fedlist.NewTrustStore.
func (p *PKI) RootPEM() []byte { return p.Root.PEM() }

// Chain is the x5c content: signer first, then the intermediate if any.
func (p *PKI) Chain() [][]byte {
	c := [][]byte{p.Leaf.DER}
	if p.Intermediate != nil {
		c = append(c, p.Intermediate.DER)
	}
	return c
}

// Sign signs payload as the VZD does with this PKI's signer.
func (p *PKI) Sign(payload []byte) ([]byte, error) {
	return Sign(payload, p.Alg, p.Leaf.Key, p.Chain())
}

// Sign produces the compact JWS the VZD sends: protected header
// {"alg":alg,"x5c":[...],"typ":"JWT"}, base64url payload, and the ECDSA
// signature as r||s (32 bytes each) over header.payload. alg is not checked
// against the key, so that tests can produce mismatches.
func Sign(payload []byte, alg string, leafKey *ecdsa.PrivateKey, chain [][]byte) ([]byte, error) {
	x5c := make([]string, len(chain))
	for i, der := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(der)
	}
	hdr, err := json.Marshal(struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
		Typ string   `json:"typ"`
	}{alg, x5c, "JWT"})
	if err != nil {
		return nil, err
	}
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, leafKey, digest[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return []byte(input + "." + base64.RawURLEncoding.EncodeToString(sig)), nil
}

// Domain is one entry for Payload.
type Domain struct {
	Domain      string   `json:"domain"`
	TelematikID string   `json:"telematikID"`
	TimAnbieter string   `json:"timAnbieter,omitempty"`
	IK          []string `json:"ik,omitempty"`
	IsInsurance bool     `json:"isInsurance"`
}

// Numbered returns n domains d0.example.de … d<n-1>.example.de with
// Telematik-IDs 1-0 …, as the benchmarks use them.
func Numbered(n int) []Domain {
	ds := make([]Domain, n)
	for i := range ds {
		ds[i] = Domain{Domain: fmt.Sprintf("d%d.example.de", i), TelematikID: fmt.Sprintf("1-%d", i)}
	}
	return ds
}

// Payload encodes a federation list payload as the VZD does.
func Payload(version int64, domains []Domain) []byte {
	if domains == nil {
		domains = []Domain{}
	}
	b, err := json.Marshal(struct {
		Version    int64    `json:"version"`
		DomainList []Domain `json:"domainList"`
	}{version, domains})
	if err != nil {
		panic(err) // cannot happen: plain strings and bools
	}
	return b
}
