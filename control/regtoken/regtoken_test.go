package regtoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

const (
	issuer   = "https://reg.example.de/orgadmin/v1/token"
	audience = "https://fhir-directory-ref.vzd.ti-dienste.de/owner-authenticate"
)

func pki(t *testing.T, alg string) *fedlisttest.PKI {
	t.Helper()
	p, err := fedlisttest.NewPKI(alg, fedlisttest.Options{LeafCommonName: "TEST-ONLY C.FD.SIG"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyByHand checks a compact JWS without jwx: header fields, x5c, and the ECDSA signature r||s over
// SHA-256(header.payload) with the given public key. It returns header and claims.
func verifyByHand(t *testing.T, token string, pub *ecdsa.PublicKey) (map[string]any, map[string]any, bool) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("base64url: %v", err)
		}
		return b
	}
	var hdr, claims map[string]any
	if err := json.Unmarshal(dec(parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(dec(parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	sig := dec(parts[2])
	if len(sig) != 64 {
		return hdr, claims, false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	ok := ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	return hdr, claims, ok
}

func TestIssueToken(t *testing.T) {
	for _, alg := range []string{AlgBP256R1, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			p := pki(t, alg)
			now := time.Unix(1_800_000_000, 0)
			s, err := New(Config{Alg: alg, Key: p.Leaf.Key, Cert: p.Leaf.DER, Issuer: issuer, Audience: audience,
				Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.IssueToken(context.Background(), "1.2.276.0.76.4.50", "1-SMC-B-Testkarte-883110000092568")
			if err != nil {
				t.Fatal(err)
			}
			// The verifying key comes from the certificate the token carries, read independently of
			// this package: crypto/x509 for P-256; for brainpool (which crypto/x509 refuses) the
			// test PKI's own key, after checking that x5c is exactly that certificate.
			parts := strings.Split(tok, ".")
			hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
			var h struct {
				X5C []string `json:"x5c"`
			}
			_ = json.Unmarshal(hb, &h)
			if len(h.X5C) != 1 {
				t.Fatalf("x5c = %v, want the signer certificate", h.X5C)
			}
			der, err := base64.StdEncoding.DecodeString(h.X5C[0])
			if err != nil || string(der) != string(p.Leaf.DER) {
				t.Fatalf("x5c[0] is not the C.FD.SIG certificate (std base64 DER)")
			}
			pub := &p.Leaf.Key.PublicKey
			if alg == AlgES256 {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				pub = c.PublicKey.(*ecdsa.PublicKey)
			}
			hdr, claims, ok := verifyByHand(t, tok, pub)
			if !ok {
				t.Fatal("signature does not verify")
			}
			if hdr["alg"] != alg || hdr["typ"] != "JWT" || len(hdr) != 3 {
				t.Fatalf("header = %v, want alg %s, typ JWT, x5c and nothing else", hdr, alg)
			}
			want := map[string]any{
				"sub": "1-SMC-B-Testkarte-883110000092568", "iss": issuer, "aud": audience,
				"professionOID": "1.2.276.0.76.4.50", "idNummer": "1-SMC-B-Testkarte-883110000092568",
				"iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()),
			}
			if len(claims) != len(want) {
				t.Fatalf("claims = %v, want %v", claims, want)
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
				}
			}
			// The hand check can fail: a changed claim no longer verifies.
			forged := strings.Replace(tok, parts[1], base64.RawURLEncoding.EncodeToString([]byte(
				strings.Replace(string(mustDecode(t, parts[1])), "883110000092568", "883110000099999", -1))), 1)
			if _, _, ok := verifyByHand(t, forged, pub); ok {
				t.Fatal("forged token verifies")
			}
			// jwx, with the registered BP256R1 verifier, agrees.
			if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.SignatureAlgorithm(alg), pub)); err != nil {
				t.Fatalf("jwx verify: %v", err)
			}
			if _, err := jws.Verify([]byte(forged), jws.WithKey(jwa.SignatureAlgorithm(alg), pub)); err == nil {
				t.Fatal("jwx verifies a forged token")
			}
		})
	}
}

func mustDecode(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewRefuses(t *testing.T) {
	bp, es := pki(t, AlgBP256R1), pki(t, AlgES256)
	ok := Config{Key: bp.Leaf.Key, Cert: bp.Leaf.DER, Issuer: issuer, Audience: audience}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"lifetime over an hour", func(c *Config) { c.Lifetime = time.Hour + time.Second }, "at most 1h"},
		{"negative lifetime", func(c *Config) { c.Lifetime = -time.Minute }, "must be positive"},
		{"unknown alg", func(c *Config) { c.Alg = "RS256" }, "want BP256R1 or ES256"},
		{"alg of the other curve", func(c *Config) { c.Alg = AlgES256 }, "other curve"},
		{"key of another certificate", func(c *Config) { c.Cert = es.Leaf.DER; c.Key = bp.Leaf.Key; c.Alg = "" }, "does not belong"},
		{"key not matching cert, same curve", func(c *Config) { c.Cert = bp.Root.DER }, "does not belong"},
		{"no certificate", func(c *Config) { c.Cert = nil }, "required"},
		{"garbage certificate", func(c *Config) { c.Cert = []byte("nope") }, "malformed certificate"},
		{"relative issuer", func(c *Config) { c.Issuer = "/token" }, "issuer"},
		{"no audience", func(c *Config) { c.Audience = "" }, "audience"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if s, err := New(ok); err != nil || s.Lifetime() != time.Hour || s.alg != AlgBP256R1 {
		t.Fatalf("defaults: %v, %v", s, err)
	}
}

func TestIssueTokenRefusesEmptyClaims(t *testing.T) {
	p := pki(t, AlgBP256R1)
	s, err := New(Config{Key: p.Leaf.Key, Cert: p.Leaf.DER, Issuer: issuer, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][2]string{{"", "1-x"}, {"1.2.276.0.76.4.50", " "}} {
		if _, err := s.IssueToken(context.Background(), in[0], in[1]); err == nil {
			t.Fatalf("IssueToken(%q, %q) succeeded", in[0], in[1])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.IssueToken(ctx, "1.2.276.0.76.4.50", "1-x"); err == nil {
		t.Fatal("cancelled context: token issued")
	}
}

// Key files round-trip: SEC 1 PEM written by MarshalPrivateKeyPEM, PKCS #8 written by crypto/x509 (P-256),
// and the certificate PEM of the test PKI.
func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{AlgBP256R1, AlgES256} {
		p := pki(t, alg)
		keyPEM, err := MarshalPrivateKeyPEM(p.Leaf.Key)
		if err != nil {
			t.Fatal(err)
		}
		kf, cf := filepath.Join(dir, alg+".key"), filepath.Join(dir, alg+".pem")
		must(t, os.WriteFile(kf, keyPEM, 0o600))
		must(t, os.WriteFile(cf, append(p.Leaf.PEM(), p.Root.PEM()...), 0o644))
		s, err := Open(Files{KeyFile: kf, CertFile: cf, Issuer: issuer, Audience: audience, Lifetime: 30 * time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if s.chain.Len() != 1 || string(s.alg) != alg || s.Lifetime() != 30*time.Minute {
			t.Fatalf("%s: chain %d, alg %s", alg, s.chain.Len(), s.alg)
		}
	}
	es := pki(t, AlgES256)
	der, err := x509.MarshalPKCS8PrivateKey(es.Leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM([]byte("-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END PRIVATE KEY-----\n"))
	if err != nil || !k.Equal(es.Leaf.Key) {
		t.Fatalf("PKCS #8: %v", err)
	}
	if _, err := ParsePrivateKeyPEM([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); err == nil {
		t.Fatal("a certificate was taken for a key")
	}
	if _, err := Open(Files{KeyFile: filepath.Join(dir, "missing"), CertFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing files accepted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
