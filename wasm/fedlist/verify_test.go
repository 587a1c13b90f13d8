package fedlist

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var testDomains = []fedlisttest.Domain{
	{Domain: "Praxis.Example.de", TelematikID: "1-2345", TimAnbieter: "ORG-0001:BT-0001"},
	{Domain: "kasse.example.de", TelematikID: "8-01-1", IK: []string{"109500969"}, IsInsurance: true},
}

func mustPKI(t *testing.T, alg string, o fedlisttest.Options) *fedlisttest.PKI {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = testNow
	}
	p, err := fedlisttest.NewPKI(alg, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustStore(t *testing.T, pem []byte) *TrustStore {
	t.Helper()
	ts, err := NewTrustStore(pem)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func mustSign(t *testing.T, p *fedlisttest.PKI, payload []byte) string {
	t.Helper()
	jws, err := p.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return string(jws)
}

// leafOnly signs with the PKI's signer but puts only the signer into x5c.
func leafOnly(t *testing.T, p *fedlisttest.PKI, payload []byte) string {
	t.Helper()
	j, err := fedlisttest.Sign(payload, p.Alg, p.Leaf.Key, [][]byte{p.Leaf.DER})
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

func parts(s string) []string { return strings.Split(s, ".") }

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw signs an arbitrary header and payload section with key (r||s).
func signRaw(t *testing.T, key *ecdsa.PrivateKey, header, payloadSection string) string {
	t.Helper()
	input := enc([]byte(header)) + "." + payloadSection
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc(sig)
}

func x5cJSON(p *fedlisttest.PKI) string {
	var s []string
	for _, der := range p.Chain() {
		s = append(s, `"`+base64.StdEncoding.EncodeToString(der)+`"`)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func TestVerify(t *testing.T) {
	payload := fedlisttest.Payload(42, testDomains)
	bp := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{})
	es := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{})
	bpInter := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{WithIntermediate: true})
	esInter := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{WithIntermediate: true})
	other := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{})
	day := 24 * time.Hour
	expiredInter := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{WithIntermediate: true,
		IntermediateNotAfter: testNow.Add(-time.Minute)})
	own0 := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{
		LeafNotBefore: testNow.Add(-30 * day), LeafNotAfter: testNow.Add(-day)})
	own1 := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{
		LeafNotBefore: testNow.Add(day)})
	own2 := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{
		WithIntermediate: true, IntermediateNotAfter: testNow.Add(-time.Hour)})
	own3 := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{
		RootNotBefore: testNow.Add(-60 * day), RootNotAfter: testNow.Add(-time.Second)})
	own4 := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{
		WithIntermediate: true, IntermediateIsNotCA: true})
	own5 := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{
		WithIntermediate: true, IntermediateKeyUsage: 0x80})
	own6 := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{
		LeafKeyUsage: 0x04})

	type tc struct {
		name    string
		jws     string
		anchors []byte
		now     time.Time
		want    error // nil: verifies
	}
	cases := []tc{
		{name: "BP256R1 good", jws: mustSign(t, bp, payload), anchors: bp.RootPEM()},
		{name: "ES256 good", jws: mustSign(t, es, payload), anchors: es.RootPEM()},
		{name: "BP256R1 via intermediate in x5c", jws: mustSign(t, bpInter, payload), anchors: bpInter.RootPEM()},
		{name: "ES256 via intermediate in x5c", jws: mustSign(t, esInter, payload), anchors: esInter.RootPEM()},
		{name: "intermediate as anchor", jws: mustSign(t, bpInter, payload), anchors: bpInter.Intermediate.PEM()},
		{name: "root and Komp-CA in bundle, x5c has only the signer (as the VZD sends)", jws: leafOnly(t, esInter, payload),
			anchors: append(esInter.Intermediate.PEM(), esInter.RootPEM()...)},
		{name: "Komp-CA in bundle but its root is not", jws: leafOnly(t, bpInter, payload),
			anchors: append(bpInter.Intermediate.PEM(), other.RootPEM()...), want: ErrUntrustedChain},
		{name: "expired Komp-CA in bundle", jws: leafOnly(t, expiredInter, payload),
			anchors: append(expiredInter.Intermediate.PEM(), expiredInter.RootPEM()...), want: ErrCertExpired},
		{name: "both roots in bundle", jws: mustSign(t, es, payload), anchors: append(bp.RootPEM(), es.RootPEM()...)},
		{name: "padded base64 and surrounding newline", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			return "\n" + p[0] + "." + p[1] + "." + p[2] + "\n"
		}(), anchors: bp.RootPEM()},
		{name: "unencoded payload (RFC 7797 b64=false)", jws: signRaw(t, bp.Leaf.Key,
			`{"alg":"BP256R1","b64":false,"crit":["b64"],"x5c":`+x5cJSON(bp)+`}`, string(payload)), anchors: bp.RootPEM()},

		{name: "tampered payload", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			return p[0] + "." + enc(fedlisttest.Payload(43, testDomains)) + "." + p[2]
		}(), anchors: bp.RootPEM(), want: ErrBadSignature},
		{name: "tampered header", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			h, _ := base64.RawURLEncoding.DecodeString(p[0])
			h2 := strings.Replace(string(h), `"typ":"JWT"`, `"typ":"JOSE"`, 1)
			return enc([]byte(h2)) + "." + p[1] + "." + p[2]
		}(), anchors: bp.RootPEM(), want: ErrBadSignature},
		{name: "tampered signature", jws: func() string {
			p := parts(mustSign(t, es, payload))
			sig, _ := base64.RawURLEncoding.DecodeString(p[2])
			sig[40] ^= 0x01
			return p[0] + "." + p[1] + "." + enc(sig)
		}(), anchors: es.RootPEM(), want: ErrBadSignature},
		{name: "wrong key", jws: func() string {
			k, _ := fedlisttest.GenerateKey(fedlisttest.AlgBP256R1)
			j, _ := fedlisttest.Sign(payload, fedlisttest.AlgBP256R1, k, bp.Chain())
			return string(j)
		}(), anchors: bp.RootPEM(), want: ErrBadSignature},
		{name: "DER signature instead of r||s", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			d := sha256.Sum256([]byte(p[0] + "." + p[1]))
			der, _ := ecdsa.SignASN1(rand.Reader, bp.Leaf.Key, d[:])
			return p[0] + "." + p[1] + "." + enc(der)
		}(), anchors: bp.RootPEM(), want: ErrBadSignature},
		{name: "unknown alg ES384", jws: signRaw(t, es.Leaf.Key, `{"alg":"ES384","x5c":`+x5cJSON(es)+`}`, enc(payload)),
			anchors: es.RootPEM(), want: ErrUnsupportedAlg},
		{name: "alg HS256", jws: signRaw(t, es.Leaf.Key, `{"alg":"HS256","x5c":`+x5cJSON(es)+`}`, enc(payload)),
			anchors: es.RootPEM(), want: ErrUnsupportedAlg},
		{name: "alg none", jws: enc([]byte(`{"alg":"none","x5c":`+x5cJSON(bp)+`}`)) + "." + enc(payload) + ".",
			anchors: bp.RootPEM(), want: ErrUnsupportedAlg},
		{name: "alg ES256 with brainpool key", jws: func() string {
			j, _ := fedlisttest.Sign(payload, fedlisttest.AlgES256, bp.Leaf.Key, bp.Chain())
			return string(j)
		}(), anchors: bp.RootPEM(), want: ErrUnsupportedAlg},
		{name: "alg BP256R1 with P-256 key", jws: func() string {
			j, _ := fedlisttest.Sign(payload, fedlisttest.AlgBP256R1, es.Leaf.Key, es.Chain())
			return string(j)
		}(), anchors: es.RootPEM(), want: ErrUnsupportedAlg},

		{name: "expired leaf", jws: mustSign(t, own0, payload), anchors: own0.RootPEM(), want: ErrCertExpired},
		{name: "leaf not yet valid", jws: mustSign(t, own1, payload), anchors: own1.RootPEM(), want: ErrCertExpired},
		{name: "expired intermediate", jws: mustSign(t, own2, payload), anchors: own2.RootPEM(), want: ErrCertExpired},
		{name: "expired root", jws: mustSign(t, own3, payload), anchors: own3.RootPEM(), want: ErrCertExpired},
		{name: "checked at a later time", jws: mustSign(t, bp, payload), anchors: bp.RootPEM(),
			now: testNow.Add(400 * day), want: ErrCertExpired},

		{name: "chain to a different root", jws: mustSign(t, bp, payload), anchors: other.RootPEM(), want: ErrUntrustedChain},
		{name: "same root name, different key", jws: mustSign(t, bp, payload), anchors: mustPKI(t, fedlisttest.AlgBP256R1,
			fedlisttest.Options{}).RootPEM(), want: ErrUntrustedChain},
		{name: "intermediate missing from x5c", jws: func() string {
			j, _ := fedlisttest.Sign(payload, bpInter.Alg, bpInter.Leaf.Key, [][]byte{bpInter.Leaf.DER})
			return string(j)
		}(), anchors: bpInter.RootPEM(), want: ErrUntrustedChain},
		{name: "intermediate is not a CA", jws: mustSign(t, own4, payload), anchors: own4.RootPEM(), want: ErrUntrustedChain},
		{name: "intermediate without keyCertSign", jws: mustSign(t, own5, payload), anchors: own5.RootPEM(), want: ErrUntrustedChain},
		{name: "leaf without digitalSignature", jws: mustSign(t, own6, payload), anchors: own6.RootPEM(), want: ErrUntrustedChain},

		{name: "garbled header base64", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			return "!!" + p[0] + "." + p[1] + "." + p[2]
		}(), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "garbled payload base64", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			return p[0] + "." + p[1] + "*" + "." + p[2]
		}(), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "garbled signature base64", jws: func() string {
			p := parts(mustSign(t, bp, payload))
			return p[0] + "." + p[1] + "." + p[2] + "%"
		}(), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "garbled x5c", jws: signRaw(t, bp.Leaf.Key, `{"alg":"BP256R1","x5c":["MIIB!"]}`, enc(payload)),
			anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "x5c not a certificate", jws: signRaw(t, bp.Leaf.Key, `{"alg":"BP256R1","x5c":["MAA="]}`, enc(payload)),
			anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "no x5c", jws: signRaw(t, bp.Leaf.Key, `{"alg":"BP256R1"}`, enc(payload)), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "header not JSON", jws: signRaw(t, bp.Leaf.Key, `{"alg":`, enc(payload)), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "two parts", jws: strings.Join(parts(mustSign(t, bp, payload))[:2], "."), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "empty", jws: "", anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "unknown crit", jws: signRaw(t, bp.Leaf.Key, `{"alg":"BP256R1","crit":["exp"],"exp":1,"x5c":`+x5cJSON(bp)+`}`,
			enc(payload)), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "b64=false without crit", jws: signRaw(t, bp.Leaf.Key, `{"alg":"BP256R1","b64":false,"x5c":`+x5cJSON(bp)+`}`,
			string(payload)), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "signed payload not a list", jws: mustSign(t, bp, []byte(`{"domainList":[]}`)), anchors: bp.RootPEM(), want: ErrMalformed},
		{name: "signed payload not JSON", jws: mustSign(t, bp, []byte(`<xml/>`)), anchors: bp.RootPEM(), want: ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := mustStore(t, c.anchors)
			now := c.now
			if now.IsZero() {
				now = testNow
			}
			l, err := Verify([]byte(c.jws), ts, now)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if l.Version != 42 || len(l.Domains) != 2 {
					t.Fatalf("list = version %d, %d domains", l.Version, len(l.Domains))
				}
				e, ok := l.Domains["praxis.example.de"]
				if !ok || e.Domain != "Praxis.Example.de" || e.TelematikID != "1-2345" || e.Provider != "ORG-0001:BT-0001" {
					t.Fatalf("entry = %+v", e)
				}
				if k := l.Domains["kasse.example.de"]; !k.IsInsurance || len(k.IKs) != 1 || k.IKs[0] != "109500969" {
					t.Fatalf("insurance entry = %+v", k)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
			if l != nil {
				t.Fatal("list returned with an error")
			}
			for _, other := range []error{ErrMalformed, ErrUnsupportedAlg, ErrBadSignature, ErrUntrustedChain, ErrCertExpired} {
				if other != c.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestVerifyNoAnchors(t *testing.T) {
	bp := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{})
	if _, err := Verify([]byte(mustSign(t, bp, fedlisttest.Payload(1, nil))), nil, testNow); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("Verify without trust store = %v", err)
	}
}

func TestNewTrustStore(t *testing.T) {
	bp := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{})
	es := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{})
	inter := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{WithIntermediate: true})
	for _, c := range []struct {
		name           string
		pem            string
		count, anchors int // count 0: error
	}{
		{"one brainpool root", string(bp.RootPEM()), 1, 1},
		{"two roots with text around", "# TI roots\n" + string(bp.RootPEM()) + "\n" + string(es.RootPEM()) + "trailer\n", 2, 2},
		{"root and Komp-CA", string(inter.Intermediate.PEM()) + string(inter.RootPEM()), 2, 1},
		{"Komp-CA only: pinned as anchor", string(inter.Intermediate.PEM()), 1, 1},
		{"other blocks skipped", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" + string(es.RootPEM()), 1, 1},
		{"empty", "", 0, 0},
		{"no PEM", "not a certificate", 0, 0},
		{"garbage in a certificate block", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts, err := NewTrustStore([]byte(c.pem))
			if c.count == 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil || ts.Len() != c.count || ts.Anchors() != c.anchors {
				t.Fatalf("NewTrustStore = %v, %v", ts, err)
			}
		})
	}
}

// TestVerifyChainCache: a trust store remembers verified chains, but only
// within their validity window and only for the same certificates.
func TestVerifyChainCache(t *testing.T) {
	p := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{WithIntermediate: true,
		LeafNotAfter: testNow.Add(48 * time.Hour)})
	ts := mustStore(t, p.RootPEM())
	payload := fedlisttest.Payload(42, testDomains)
	jws := []byte(mustSign(t, p, payload))
	for i := 0; i < 2; i++ {
		if _, err := Verify(jws, ts, testNow); err != nil {
			t.Fatalf("Verify #%d: %v", i+1, err)
		}
	}
	if len(ts.chains) != 1 {
		t.Fatalf("%d cached chains", len(ts.chains))
	}
	if _, err := Verify(jws, ts, testNow.Add(72*time.Hour)); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("cached chain after leaf expiry: %v", err)
	}
	// A cached chain does not excuse a bad list signature.
	parts := strings.Split(string(jws), ".")
	forged := parts[0] + "." + enc(fedlisttest.Payload(43, nil)) + "." + parts[2]
	if _, err := Verify([]byte(forged), ts, testNow); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged payload with cached chain: %v", err)
	}
	// Another signer with the same names but its own root is not covered.
	other := mustPKI(t, fedlisttest.AlgBP256R1, fedlisttest.Options{WithIntermediate: true})
	if _, err := Verify([]byte(mustSign(t, other, payload)), ts, testNow); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("other chain: %v", err)
	}
	// The cache stays bounded.
	for i := 0; i < 2*maxTrustedChains; i++ {
		q := mustPKI(t, fedlisttest.AlgES256, fedlisttest.Options{})
		ts2 := mustStore(t, append(q.RootPEM(), p.RootPEM()...))
		ts2.chains = ts.chains
		if _, err := Verify([]byte(mustSign(t, q, payload)), ts2, testNow); err != nil {
			t.Fatal(err)
		}
		ts.chains = ts2.chains
	}
	if len(ts.chains) != maxTrustedChains {
		t.Fatalf("%d cached chains, want %d", len(ts.chains), maxTrustedChains)
	}
}
