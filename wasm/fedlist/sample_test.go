package fedlist

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The gematik sample list (HOWTO for providers), signed by a TI test CA
// whose root is not ours; kept in testdata as gematik publishes it.
const (
	sampleJWS     = "testdata/federationList_sample_from_HOWTO_Provider.jws"
	samplePayload = "testdata/federationList_sample_payload.json"
	sampleHeader  = "testdata/federationList_sample_header.json"
)

// sampleNow lies inside the signer certificate's validity (2023-01-25 to
// 2028-01-24).
var sampleNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSampleParses(t *testing.T) {
	jws := readSample(t, sampleJWS)
	hdr, list, err := ParseUnverified(jws)
	if err != nil {
		t.Fatalf("ParseUnverified: %v", err)
	}
	if hdr.Alg != AlgBP256R1 || len(hdr.X5C) != 1 || hdr.Typ != "JWT" {
		t.Errorf("header = alg %q, %d x5c, typ %q", hdr.Alg, len(hdr.X5C), hdr.Typ)
	}
	var wantHdr Header
	if err := json.Unmarshal(readSample(t, sampleHeader), &wantHdr); err != nil {
		t.Fatal(err)
	}
	if wantHdr.X5C[0] != hdr.X5C[0] {
		t.Error("x5c differs from federationList_sample_header.json")
	}

	// Count the domains of the payload file independently of ParsePayload.
	var raw struct {
		Version    int64                    `json:"version"`
		DomainList []map[string]interface{} `json:"domainList"`
	}
	if err := json.Unmarshal(readSample(t, samplePayload), &raw); err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, d := range raw.DomainList {
		distinct[strings.ToLower(d["domain"].(string))] = true
	}
	if list.Version != raw.Version || len(list.Domains) != len(distinct) || list.Skipped != 0 {
		t.Errorf("list version %d, %d domains, %d skipped; payload file: version %d, %d domains",
			list.Version, len(list.Domains), list.Skipped, raw.Version, len(distinct))
	}
	if len(distinct) < 200 {
		t.Errorf("only %d domains in the sample payload", len(distinct))
	}
	for d := range distinct {
		if !list.Contains(strings.ToUpper(d)) {
			t.Errorf("%s missing", d)
		}
	}
	golden(t, "sample_list.golden.json", summarize(list))
}

// TestSampleSignature checks the gematik signature with the leaf key from
// x5c: the brainpool ECDSA path verifies a signature made by the TI.
func TestSampleSignature(t *testing.T) {
	jws := readSample(t, sampleJWS)
	p, err := splitJWS(jws)
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(p.header.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := parseCertificate(der)
	if err != nil {
		t.Fatalf("parseCertificate: %v", err)
	}
	if leaf.Curve != CurveBrainpoolP256r1 || !leaf.hasKeyUsage(kuDigitalSignature) || leaf.IsCA {
		t.Errorf("leaf: curve %s, CA %v", leaf.Curve, leaf.IsCA)
	}
	wantFrom := time.Date(2023, 1, 25, 10, 43, 56, 0, time.UTC)
	wantTo := time.Date(2028, 1, 24, 10, 43, 55, 0, time.UTC)
	if !leaf.NotBefore.Equal(wantFrom) || !leaf.NotAfter.Equal(wantTo) {
		t.Errorf("validity %s..%s", leaf.NotBefore, leaf.NotAfter)
	}
	digest := sha256.Sum256(p.signingInput)
	r, s := new(big.Int).SetBytes(p.sig[:32]), new(big.Int).SetBytes(p.sig[32:])
	if !ecdsa.Verify(leaf.Key, digest[:], r, s) {
		t.Fatal("gematik signature does not verify with its x5c key")
	}
	digest[0] ^= 1
	if ecdsa.Verify(leaf.Key, digest[:], r, s) {
		t.Fatal("signature verifies over a different digest")
	}
	// The payload is the published payload file, byte for byte in meaning.
	var a, b interface{}
	if json.Unmarshal(p.payload, &a) != nil || json.Unmarshal(readSample(t, samplePayload), &b) != nil {
		t.Fatal("payloads are not JSON")
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Error("JWS payload differs from federationList_sample_payload.json")
	}
}

// TestSampleUntrusted: with our test anchors (not the TI's root) the
// genuine list must not be accepted, and for the right reason.
func TestSampleUntrusted(t *testing.T) {
	jws := readSample(t, sampleJWS)
	pki, err := fedlisttest.NewPKI(fedlisttest.AlgBP256R1, fedlisttest.Options{Now: sampleNow})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTrustStore(pki.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(jws, ts, sampleNow); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("Verify = %v, want ErrUntrustedChain", err)
	}
	// After the signer certificate expired, expiry is reported first.
	if _, err := Verify(jws, ts, time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrCertExpired", err)
	}
}

// summarize renders a list deterministically for golden files.
func summarize(l *List) []byte {
	type row struct {
		Domain      string   `json:"domain"`
		TelematikID string   `json:"telematikID"`
		Provider    string   `json:"provider"`
		IKs         []string `json:"iks"`
		IsInsurance bool     `json:"isInsurance"`
	}
	out := struct {
		Version int64 `json:"version"`
		Count   int   `json:"count"`
		Skipped int   `json:"skipped"`
		Domains []row `json:"domains"`
	}{Version: l.Version, Count: len(l.Domains), Skipped: l.Skipped, Domains: []row{}}
	keys := make([]string, 0, len(l.Domains))
	for k := range l.Domains {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := l.Domains[k]
		iks := e.IKs
		if iks == nil {
			iks = []string{}
		}
		out.Domains = append(out.Domains, row{k, e.TelematikID, e.Provider, iks, e.IsInsurance})
	}
	b, _ := json.MarshalIndent(out, "", " ")
	return append(b, '\n')
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file; got:\n%s", name, got)
	}
}
