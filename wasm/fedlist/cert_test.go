package fedlist

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

func TestParseCertificateGenerated(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, alg := range []string{fedlisttest.AlgBP256R1, fedlisttest.AlgES256} {
		p, err := fedlisttest.NewPKI(alg, fedlisttest.Options{Now: now, WithIntermediate: true})
		if err != nil {
			t.Fatal(err)
		}
		wantCurve := map[string]string{fedlisttest.AlgBP256R1: CurveBrainpoolP256r1, fedlisttest.AlgES256: CurveP256}[alg]
		for _, c := range []struct {
			name          string
			der           []byte
			ca            bool
			sign, certify bool
		}{
			{"root", p.Root.DER, true, false, true},
			{"intermediate", p.Intermediate.DER, true, false, true},
			{"leaf", p.Leaf.DER, false, true, false},
		} {
			cert, err := parseCertificate(c.der)
			if err != nil {
				t.Fatalf("%s %s: %v", alg, c.name, err)
			}
			if cert.Curve != wantCurve || !cert.HasBC || cert.IsCA != c.ca || cert.UnknownCritical ||
				cert.hasKeyUsage(kuDigitalSignature) != c.sign || cert.hasKeyUsage(kuKeyCertSign) != c.certify ||
				!cert.NotBefore.Equal(now.Add(-24*time.Hour)) {
				t.Errorf("%s %s: %+v", alg, c.name, cert)
			}
			if cert.Key.X.Cmp(map[string]*fedlisttest.Cert{"root": p.Root, "intermediate": p.Intermediate, "leaf": p.Leaf}[c.name].Key.X) != 0 {
				t.Errorf("%s %s: wrong key", alg, c.name)
			}
		}
		leaf, _ := parseCertificate(p.Leaf.DER)
		inter, _ := parseCertificate(p.Intermediate.DER)
		root, _ := parseCertificate(p.Root.DER)
		if !leaf.checkSignatureFrom(inter) || !inter.checkSignatureFrom(root) || !root.checkSignatureFrom(root) {
			t.Errorf("%s: chain signatures do not verify", alg)
		}
		if leaf.checkSignatureFrom(root) {
			t.Errorf("%s: leaf verifies under the root", alg)
		}
		// Every truncation is an error, never a panic.
		for i := 0; i < len(p.Leaf.DER); i++ {
			if _, err := parseCertificate(p.Leaf.DER[:i]); err == nil {
				t.Fatalf("%s: truncated certificate (%d bytes) parsed", alg, i)
			}
		}
	}
}

func FuzzParseCertificate(f *testing.F) {
	p, err := fedlisttest.NewPKI(fedlisttest.AlgBP256R1, fedlisttest.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.Leaf.DER)
	f.Add(p.Root.DER)
	if b, err := os.ReadFile(sampleHeader); err == nil {
		var h Header
		if json.Unmarshal(b, &h) == nil && len(h.X5C) > 0 {
			if der, err := base64.StdEncoding.DecodeString(h.X5C[0]); err == nil {
				f.Add(der)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := parseCertificate(der)
		if err != nil {
			return
		}
		if c.Key == nil || !c.Key.Curve.IsOnCurve(c.Key.X, c.Key.Y) {
			t.Fatal("parsed certificate without a valid key")
		}
		c.checkSignatureFrom(c)
	})
}
