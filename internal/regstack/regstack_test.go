package regstack_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/timfd/fachdienst/control/config"
	"github.com/timfd/fachdienst/internal/regstack"
)

func TestStartConfiguresRegistration(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := regstack.Start(context.Background(), regstack.Options{IDPListener: ln, ControlPublicURL: "http://127.0.0.1:1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	cfg := config.Default()
	cfg.VZD.BaseURL = "http://127.0.0.1:2"
	l.Apply(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("registration config: %v", err)
	}
	// The IDP signs as gematik's does: BP256R1, its key published with crv BP-256.
	var disc struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, l.IDPURL+"/.well-known/openid-configuration", &disc)
	if len(disc.Algs) != 1 || disc.Algs[0] != "BP256R1" {
		t.Fatalf("IDP signs with %v", disc.Algs)
	}
	var jwks struct {
		Keys []struct{ Kty, Crv, Alg string } `json:"keys"`
	}
	getJSON(t, disc.JWKS, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "EC" || jwks.Keys[0].Crv != "BP-256" || jwks.Keys[0].Alg != "BP256R1" {
		t.Fatalf("IDP JWKS = %+v", jwks.Keys)
	}
	if len(l.Endpoints()) != 3 {
		t.Fatalf("endpoints: %v", l.Endpoints())
	}
	if l.Mail != nil && !cfg.Registration.KIM.Enabled {
		t.Fatal("KIM off although Mailpit runs")
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", u, resp, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
