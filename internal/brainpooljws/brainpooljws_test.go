package brainpooljws_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/timfd/fachdienst/internal/brainpooljws"
)

// A BP256R1 signature verifies with its key read back from the JWK and with no other key; keys of
// other curves and points off the curve are refused.
func TestSignVerifyAndJWK(t *testing.T) {
	k, err := brainpooljws.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	alg := jwa.SignatureAlgorithm(brainpooljws.Alg)
	tok, err := jws.Sign([]byte("payload"), jws.WithKey(alg, k))
	if err != nil {
		t.Fatal(err)
	}
	j, err := brainpooljws.PublicJWK(&k.PublicKey, "kid-1", "sig")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j)
	var back brainpooljws.JWK
	json.Unmarshal(b, &back)
	if back.Kty != "EC" || back.Crv != "BP-256" || back.Alg != "BP256R1" || back.Kid != "kid-1" || len(back.X) != 43 {
		t.Fatalf("JWK = %s", b)
	}
	pub, err := back.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := jws.Verify(tok, jws.WithKey(alg, pub)); err != nil || string(p) != "payload" {
		t.Fatalf("verify: %q %v", p, err)
	}
	other, _ := brainpooljws.GenerateKey()
	if _, err := jws.Verify(tok, jws.WithKey(alg, &other.PublicKey)); err == nil {
		t.Fatal("verified with another key")
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := jws.Sign([]byte("x"), jws.WithKey(alg, p256)); err == nil {
		t.Fatal("signed BP256R1 with a P-256 key")
	}
	if _, err := jws.Verify(tok, jws.WithKey(alg, &p256.PublicKey)); err == nil {
		t.Fatal("verified BP256R1 with a P-256 key")
	}
	if _, err := brainpooljws.PublicJWK(&p256.PublicKey, "", ""); err == nil {
		t.Fatal("P-256 key written as BP-256")
	}
	off := back
	off.Y = off.X
	if _, err := off.PublicKey(); err == nil {
		t.Fatal("point off the curve accepted")
	}
	short := back
	short.X = short.X[:40]
	if _, err := short.PublicKey(); err == nil {
		t.Fatal("short coordinate accepted")
	}
}
