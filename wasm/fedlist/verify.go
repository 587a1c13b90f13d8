package fedlist

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/timfd/fachdienst/wasm/planvm"
)

// Errors of Verify, distinct so that callers and metrics can tell them apart.
var (
	ErrMalformed      = errors.New("fedlist: malformed federation list")
	ErrUnsupportedAlg = errors.New("fedlist: unsupported signature algorithm")
	ErrBadSignature   = errors.New("fedlist: signature does not verify")
	ErrUntrustedChain = errors.New("fedlist: signer certificate does not chain to a trust anchor")
	ErrCertExpired    = errors.New("fedlist: certificate outside its validity period")
)

// JWS algorithms the VZD uses.
const (
	AlgBP256R1 = "BP256R1" // ECDSA on brainpoolP256r1 with SHA-256 (the VZD default)
	AlgES256   = "ES256"   // ECDSA on P-256 with SHA-256 (sigAlg=ES256)
)

// Limits that keep a hostile list from costing unbounded work.
const (
	MaxJWSSize   = 16 << 20 // bytes of the compact JWS
	MaxX5C       = 4        // certificates in x5c (leaf + intermediates)
	MaxChainSize = 5        // certificates in a path, anchor included
)

// Header is the protected JWS header of the list. The tags name its
// members for encoders on the host side; the filter reads it with the
// reflection-free reader of planvm (see parseHeader).
type Header struct {
	Alg  string   `json:"alg"`
	Typ  string   `json:"typ,omitempty"`
	Kid  string   `json:"kid,omitempty"`
	X5C  []string `json:"x5c"`
	Crit []string `json:"crit,omitempty"`
	// B64 false (RFC 7797) means the payload is not base64url-encoded.
	// The VZD's lists carry no b64 (encoded payload, as in RFC 7515).
	B64 *bool `json:"b64,omitempty"`
}

// TrustStore holds the trust anchors and the CA certificates that may be
// needed to reach them. The VZD's x5c carries only the signer certificate,
// whose issuer (a Komp-CA of the TI) is not in x5c: configure the TI root
// together with that Komp-CA.
//
// Self-signed certificates of the bundle are the anchors; the others are
// intermediates that a path may use but that must themselves chain to an
// anchor. A bundle without any self-signed certificate pins its
// certificates directly: then each of them is an anchor.
type TrustStore struct {
	anchors       []*certificate
	intermediates []*certificate

	// Chains that verified, keyed by the SHA-256 of their x5c
	// certificates, with the time window in which all of their
	// certificates are valid. The VZD signs every list with the same
	// certificates, and a brainpool signature check costs about 150 ms
	// in a Wasm filter (wazero), so a new list costs one check (its own
	// signature) instead of one per certificate. Bounded: the oldest
	// entry goes first. The mutex makes a TrustStore safe for
	// concurrent use by the control plane.
	mu     sync.Mutex
	chains []trustedChain
}

// maxTrustedChains bounds the chain cache of a TrustStore.
const maxTrustedChains = 4

type trustedChain struct {
	key       [sha256.Size]byte
	notBefore time.Time
	notAfter  time.Time
}

func chainKey(x5c []string) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range x5c {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (ts *TrustStore) cachedChain(key [sha256.Size]byte, now time.Time) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.chains {
		if c.key == key && !now.Before(c.notBefore) && !now.After(c.notAfter) {
			return true
		}
	}
	return false
}

func (ts *TrustStore) rememberChain(c trustedChain) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.chains) == maxTrustedChains {
		ts.chains = append(ts.chains[:0], ts.chains[1:]...)
	}
	ts.chains = append(ts.chains, c)
}

// NewTrustStore reads PEM "CERTIFICATE" blocks. Keys must be P-256 or
// brainpoolP256r1; a bundle without a usable certificate is an error.
func NewTrustStore(pemBundle []byte) (*TrustStore, error) {
	ts := &TrustStore{}
	var all []*certificate
	rest := pemBundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := parseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("fedlist: trust bundle certificate %d: %w", len(all)+1, err)
		}
		all = append(all, c)
	}
	if len(all) == 0 {
		return nil, errors.New("fedlist: no certificate in trust bundle")
	}
	for _, c := range all {
		// Self-signed by name; an anchor's own signature proves nothing,
		// it is trusted because it is configured.
		if bytes.Equal(c.RawIssuer, c.RawSubject) {
			ts.anchors = append(ts.anchors, c)
		} else {
			ts.intermediates = append(ts.intermediates, c)
		}
	}
	if len(ts.anchors) == 0 {
		ts.anchors, ts.intermediates = ts.intermediates, nil
	}
	return ts, nil
}

// Len is the number of certificates in the store.
func (ts *TrustStore) Len() int { return len(ts.anchors) + len(ts.intermediates) }

// Anchors is the number of trust anchors.
func (ts *TrustStore) Anchors() int { return len(ts.anchors) }

type parsedJWS struct {
	header       Header
	signingInput []byte
	payload      []byte
	sig          []byte
}

func splitJWS(compact []byte) (*parsedJWS, error) {
	if len(compact) > MaxJWSSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxJWSSize)
	}
	compact = bytes.TrimSpace(compact)
	// Header and signature never contain '.', an unencoded (b64=false)
	// payload may: split at the first and the last dot.
	i := bytes.IndexByte(compact, '.')
	j := bytes.LastIndexByte(compact, '.')
	if i < 0 || i == j {
		return nil, fault(ErrMalformed, "not a compact JWS")
	}
	rawHeader, rawPayload, rawSig := compact[:i], compact[i+1:j], compact[j+1:]
	hdr, err := b64(rawHeader)
	if err != nil {
		return nil, fault(ErrMalformed, "header: "+err.Error())
	}
	p := &parsedJWS{signingInput: compact[:j]}
	if p.header, err = parseHeader(hdr); err != nil {
		return nil, fault(ErrMalformed, "header: "+err.Error())
	}
	if p.sig, err = b64(rawSig); err != nil {
		return nil, fault(ErrMalformed, "signature: "+err.Error())
	}
	encoded := true
	for _, c := range p.header.Crit {
		if c != "b64" {
			return nil, fmt.Errorf("%w: unsupported critical header %q", ErrMalformed, c)
		}
	}
	if p.header.B64 != nil && !*p.header.B64 {
		if !contains(p.header.Crit, "b64") {
			return nil, fault(ErrMalformed, "b64 without crit")
		}
		encoded = false
	}
	if encoded {
		if p.payload, err = b64(rawPayload); err != nil {
			return nil, fault(ErrMalformed, "payload: "+err.Error())
		}
	} else {
		p.payload = rawPayload
	}
	return p, nil
}

// parseHeader reads the protected header. Members of other names are
// ignored (crit lists those that must be understood); null counts as absent.
func parseHeader(b []byte) (Header, error) {
	var h Header
	doc, err := planvm.ParseJSON(b)
	if err != nil {
		return h, err
	}
	if doc.Kind() != planvm.KindObject {
		return h, errors.New("not a JSON object")
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"alg", &h.Alg}, {"typ", &h.Typ}, {"kid", &h.Kid}} {
		if *f.dst, err = stringMember(doc, f.key); err != nil {
			return h, err
		}
	}
	if h.X5C, err = stringsMember(doc, "x5c"); err != nil {
		return h, err
	}
	if h.Crit, err = stringsMember(doc, "crit"); err != nil {
		return h, err
	}
	if v := member(doc, "b64"); v.IsDefined() {
		b, ok := v.AsBool()
		if !ok {
			return h, errors.New("b64 is not a boolean")
		}
		h.B64 = &b
	}
	return h, nil
}

// ParseUnverified parses header and payload without checking anything
// cryptographic. For diagnostics and tests only.
func ParseUnverified(compactJWS []byte) (Header, *List, error) {
	p, err := splitJWS(compactJWS)
	if err != nil {
		return Header{}, nil, err
	}
	l, err := ParsePayload(p.payload)
	return p.header, l, err
}

// Verify checks the compact JWS of a federation list and returns the list:
// alg must be BP256R1 or ES256 with a matching leaf key (anything else,
// "none" included, is ErrUnsupportedAlg); the signature (r||s, RFC 7518
// 3.4) over header.payload must verify with the key of x5c[0]; x5c[0] must
// chain, through the other x5c certificates if needed, to an anchor of ts,
// every certificate signed by the next and valid at now.
func Verify(compactJWS []byte, ts *TrustStore, now time.Time) (*List, error) {
	if ts == nil || len(ts.anchors) == 0 {
		return nil, fault(ErrUntrustedChain, "no trust anchors")
	}
	p, err := splitJWS(compactJWS)
	if err != nil {
		return nil, err
	}
	var wantCurve string
	switch p.header.Alg {
	case AlgBP256R1:
		wantCurve = CurveBrainpoolP256r1
	case AlgES256:
		wantCurve = CurveP256
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, p.header.Alg)
	}
	if len(p.header.X5C) == 0 || len(p.header.X5C) > MaxX5C {
		return nil, fmt.Errorf("%w: x5c must hold 1 to %d certificates", ErrMalformed, MaxX5C)
	}
	chain := make([]*certificate, len(p.header.X5C))
	for i, s := range p.header.X5C {
		der, err := base64.StdEncoding.DecodeString(s) // x5c is standard base64 (RFC 7515 4.1.6)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrMalformed, i, err)
		}
		if chain[i], err = parseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrMalformed, i, err)
		}
	}
	leaf := chain[0]
	if leaf.Curve != wantCurve {
		return nil, fmt.Errorf("%w: alg %s with a %s key", ErrUnsupportedAlg, p.header.Alg, leaf.Curve)
	}
	if len(p.sig) != 64 {
		return nil, fault(ErrBadSignature, "signature must be 64 bytes (r||s)")
	}
	digest := sha256.Sum256(p.signingInput)
	r := new(big.Int).SetBytes(p.sig[:32])
	s := new(big.Int).SetBytes(p.sig[32:])
	if !ecdsa.Verify(leaf.Key, digest[:], r, s) {
		return nil, ErrBadSignature
	}
	if !leaf.hasKeyUsage(kuDigitalSignature) {
		return nil, fault(ErrUntrustedChain, "signer certificate not for digital signatures")
	}
	if key := chainKey(p.header.X5C); !ts.cachedChain(key, now) {
		from, to, err := ts.verifyChain(leaf, chain[1:], now)
		if err != nil {
			return nil, err
		}
		ts.rememberChain(trustedChain{key: key, notBefore: from, notAfter: to})
	}
	l, err := ParsePayload(p.payload)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// verifyChain walks from the leaf towards an anchor, preferring an anchor at
// every step, then the store's intermediates, then those the signer sent
// along in x5c. It returns the window in which every
// certificate of the path is valid.
func (ts *TrustStore) verifyChain(leaf *certificate, intermediates []*certificate, now time.Time) (from, to time.Time, err error) {
	from, to = leaf.NotBefore, leaf.NotAfter
	narrow := func(c *certificate) {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(to) {
			to = c.NotAfter
		}
	}
	cur := leaf
	var expired error
	for depth := 0; depth < MaxChainSize; depth++ {
		if err := checkValidity(cur, now); err != nil {
			return from, to, err
		}
		narrow(cur)
		if cur.UnknownCritical {
			return from, to, fault(ErrUntrustedChain, "unsupported critical extension")
		}
		for _, a := range ts.anchors {
			if bytes.Equal(cur.Raw, a.Raw) {
				return from, to, nil
			}
		}
		for _, a := range ts.anchors {
			if bytes.Equal(cur.RawIssuer, a.RawSubject) && cur.checkSignatureFrom(a) {
				// A trust anchor is trusted for its key; its own validity
				// period still counts, as the TI replaces expired roots.
				if err := checkValidity(a, now); err != nil {
					expired = err
					continue
				}
				narrow(a)
				return from, to, nil
			}
		}
		var next *certificate
		for _, c := range append(ts.intermediates[:len(ts.intermediates):len(ts.intermediates)], intermediates...) {
			if c != cur && bytes.Equal(cur.RawIssuer, c.RawSubject) && c.HasBC && c.IsCA &&
				c.hasKeyUsage(kuKeyCertSign) && cur.checkSignatureFrom(c) {
				next = c
				break
			}
		}
		if next == nil {
			if expired != nil {
				return from, to, expired
			}
			return from, to, ErrUntrustedChain
		}
		cur = next
	}
	return from, to, fmt.Errorf("%w: chain longer than %d", ErrUntrustedChain, MaxChainSize)
}

func checkValidity(c *certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%w: not valid before %s", ErrCertExpired, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: expired %s", ErrCertExpired, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// b64 decodes base64url without padding, tolerating padding.
func b64(s []byte) ([]byte, error) {
	s = bytes.TrimRight(s, "=")
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(s)))
	n, err := base64.RawURLEncoding.Strict().Decode(out, s)
	return out[:n], err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
