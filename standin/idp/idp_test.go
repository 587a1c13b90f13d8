package idp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/timfd/fachdienst/internal/brainpooljws"
	"github.com/timfd/fachdienst/standin/idp"
)

// The signing key is configurable; the JWKS publishes its public half with the matching algorithm.
func TestKeysAndDiscovery(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	issuer := "http://" + l.Addr().String()
	s, err := idp.New(idp.Config{Issuer: issuer, SigningKey: key, Clients: []idp.Client{{ID: "c", Secret: "s", RedirectURIs: []string{"http://x/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	srv.Start()
	defer srv.Close()

	var disc struct {
		Issuer  string   `json:"issuer"`
		JWKS    string   `json:"jwks_uri"`
		Methods []string `json:"code_challenge_methods_supported"`
	}
	getJSON(t, issuer+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != issuer || len(disc.Methods) == 0 || disc.Methods[0] != "S256" {
		t.Fatalf("discovery = %+v", disc)
	}
	var jwks struct {
		Keys []struct {
			Kty, Alg, Use, N string
		} `json:"keys"`
	}
	getJSON(t, disc.JWKS, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Use != "sig" {
		t.Fatalf("jwks = %+v", jwks)
	}
	if _, err := idp.New(idp.Config{Issuer: issuer}); err == nil {
		t.Fatal("a provider without clients was built")
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", u, resp, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// With BP256R1 the discovery names it and the JWKS publishes the brainpool key as gematik does.
func TestBrainpoolKeys(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	issuer := "http://" + l.Addr().String()
	s, err := idp.New(idp.Config{Issuer: issuer, Alg: idp.AlgBP256R1, Clients: []idp.Client{{ID: "c", Secret: "s", RedirectURIs: []string{"http://x/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	srv.Start()
	defer srv.Close()
	var disc struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, issuer+"/.well-known/openid-configuration", &disc)
	if len(disc.Algs) != 1 || disc.Algs[0] != "BP256R1" {
		t.Fatalf("algs = %v", disc.Algs)
	}
	var jwks struct {
		Keys []brainpooljws.JWK `json:"keys"`
	}
	getJSON(t, disc.JWKS, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Crv != "BP-256" || jwks.Keys[0].Use != "sig" || jwks.Keys[0].Kid == "" {
		t.Fatalf("jwks = %+v", jwks)
	}
	pub, err := jwks.Keys[0].PublicKey()
	if err != nil || !pub.Equal(s.PublicKey()) {
		t.Fatalf("published key %v is not the signing key", err)
	}
	if _, err := idp.New(idp.Config{Issuer: issuer, Alg: "HS256", Clients: []idp.Client{{ID: "c"}}}); err == nil {
		t.Fatal("HS256 accepted")
	}
}
