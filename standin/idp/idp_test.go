package idp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

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
