package onboarding

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/timfd/fachdienst/internal/brainpooljws"
)

func bpJWK(t *testing.T, k *ecdsa.PrivateKey, kid, use string) map[string]any {
	t.Helper()
	j, err := brainpooljws.PublicJWK(&k.PublicKey, kid, use)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	b, _ := json.Marshal(j)
	json.Unmarshal(b, &m)
	return m
}

func stdJWK(t *testing.T, pub crypto.PublicKey, kid, alg string) map[string]any {
	t.Helper()
	k, err := jwk.FromRaw(pub)
	if err != nil {
		t.Fatal(err)
	}
	k.Set(jwk.KeyIDKey, kid)
	if alg != "" {
		k.Set(jwk.AlgorithmKey, alg)
	}
	var m map[string]any
	b, _ := json.Marshal(k)
	json.Unmarshal(b, &m)
	return m
}

// The JWKS as gematik's IDP publishes it (a signature and an encryption key on brainpoolP256r1)
// and the usual kinds: every signature key is read with the one algorithm it serves; keys for
// encryption, off the curve, too small or claiming another algorithm are left out.
func TestJWKSParse(t *testing.T) {
	bp, _ := brainpooljws.GenerateKey()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	r, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	offCurve := bpJWK(t, bp, "off", "sig")
	offCurve["y"] = offCurve["x"]
	wrongAlg := bpJWK(t, bp, "bp-as-es", "sig")
	wrongAlg["alg"] = "ES256"
	noAlg := bpJWK(t, bp, "bp-no-alg", "")
	delete(noAlg, "alg")
	keys := []any{
		bpJWK(t, bp, "puk_idp_sig", "sig"), bpJWK(t, bp, "puk_idp_enc", "enc"), noAlg,
		stdJWK(t, &p256.PublicKey, "es", ""), stdJWK(t, &r.PublicKey, "rs", "RS256"), stdJWK(t, &r.PublicKey, "ps", "PS256"),
		stdJWK(t, &p384.PublicKey, "p384", ""), stdJWK(t, &small.PublicKey, "small", ""), offCurve, wrongAlg,
		map[string]any{"kty": "oct", "k": "c2VjcmV0"}, "not an object",
	}
	body, _ := json.Marshal(map[string]any{"keys": keys})
	got, err := parseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range got {
		names = append(names, k.kid+":"+k.alg)
	}
	want := "puk_idp_sig:BP256R1 bp-no-alg:BP256R1 es:ES256 rs:RS256 ps:PS256"
	if strings.Join(names, " ") != want {
		t.Fatalf("keys = %v, want %s", names, want)
	}
	for _, bad := range []string{`{"keys":[]}`, `{"keys":[{"kty":"EC","crv":"BP-256","use":"enc","x":"AA","y":"AA"}]}`, `[]`, `{`} {
		if _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

type jwksServer struct {
	mu    sync.Mutex
	keys  []any
	reads int
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
}

func (s *jwksServer) set(keys ...any) { s.mu.Lock(); s.keys = keys; s.mu.Unlock() }
func (s *jwksServer) count() int      { s.mu.Lock(); defer s.mu.Unlock(); return s.reads }

func sign(t *testing.T, alg, kid string, key any, payload string) string {
	t.Helper()
	h := jws.NewHeaders()
	h.Set(jws.KeyIDKey, kid)
	out, err := jws.Sign([]byte(payload), jws.WithKey(jwa.SignatureAlgorithm(alg), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func verify(ks *jwksKeySet, raw string) ([]byte, error) {
	parsed, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{brainpooljws.Alg, jose.ES256, jose.RS256})
	if err != nil {
		return nil, err
	}
	return ks.VerifySignature(withRawToken(context.Background(), raw), parsed)
}

// A token verifies only with the published key of its kid and alg; an unknown kid reads the JWKS
// again, at most once a minute, so a rolled-over key is found.
func TestJWKSKeySetVerify(t *testing.T) {
	bp, _ := brainpooljws.GenerateKey()
	bp2, _ := brainpooljws.GenerateKey()
	other, _ := brainpooljws.GenerateKey()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &jwksServer{}
	srv.set(bpJWK(t, bp, "k1", "sig"), stdJWK(t, &p256.PublicKey, "es", ""))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	now := time.Unix(1_700_000_000, 0)
	ks := newJWKSKeySet(hs.URL, hs.Client(), func() time.Time { return now })

	if p, err := verify(ks, sign(t, brainpooljws.Alg, "k1", bp, `{"a":1}`)); err != nil || string(p) != `{"a":1}` {
		t.Fatalf("BP256R1 token: %q %v", p, err)
	}
	if _, err := verify(ks, sign(t, "ES256", "es", p256, `{"a":1}`)); err != nil {
		t.Fatalf("ES256 token: %v", err)
	}
	refused := map[string]string{
		"signed by another key":         sign(t, brainpooljws.Alg, "k1", other, `{"a":1}`),
		"ES256 under the brainpool kid": sign(t, "ES256", "k1", p256, `{"a":1}`),
		"BP256R1 under the P-256 kid":   sign(t, brainpooljws.Alg, "es", bp, `{"a":1}`),
		"payload changed after signing": tamper(sign(t, brainpooljws.Alg, "k1", bp, `{"a":1}`), `{"a":2}`),
		"signature cut to 63 bytes":     cut(sign(t, brainpooljws.Alg, "k1", bp, `{"a":1}`)),
		"unknown kid":                   sign(t, brainpooljws.Alg, "k2", bp2, `{"a":1}`),
	}
	for name, tok := range refused {
		if _, err := verify(ks, tok); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if n := srv.count(); n != 1 {
		t.Fatalf("JWKS read %d times within a minute, want 1", n)
	}
	// Rollover: the IDP publishes k2; within the minute the set is not read again, after it it is.
	srv.set(bpJWK(t, bp2, "k2", "sig"))
	tok := sign(t, brainpooljws.Alg, "k2", bp2, `{"a":1}`)
	if _, err := verify(ks, tok); err == nil {
		t.Fatal("JWKS read again within the minute")
	}
	now = now.Add(jwksRefetch + time.Second)
	if _, err := verify(ks, tok); err != nil || srv.count() != 2 {
		t.Fatalf("rolled-over key: %v (JWKS read %d times)", err, srv.count())
	}
	if _, err := verify(ks, sign(t, brainpooljws.Alg, "k1", bp, `{"a":1}`)); err == nil {
		t.Fatal("a key withdrawn from the JWKS still verifies")
	}
	// Without the compact token in the context nothing verifies.
	parsed, _ := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{brainpooljws.Alg})
	if _, err := ks.VerifySignature(context.Background(), parsed); err == nil {
		t.Fatal("verified without the compact token")
	}
}

func tamper(tok, payload string) string {
	p := strings.Split(tok, ".")
	p[1] = base64.RawURLEncoding.EncodeToString([]byte(payload))
	return strings.Join(p, ".")
}

func cut(tok string) string {
	p := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(p[2])
	p[2] = base64.RawURLEncoding.EncodeToString(sig[:63])
	return strings.Join(p, ".")
}
