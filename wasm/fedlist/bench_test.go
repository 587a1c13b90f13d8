package fedlist

import (
	"fmt"
	"testing"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

// benchList is a list of n domains, signed with alg.
func benchList(b *testing.B, alg string, n int) ([]byte, *TrustStore) {
	b.Helper()
	p, err := fedlisttest.NewPKI(alg, fedlisttest.Options{Now: testNow, WithIntermediate: true})
	if err != nil {
		b.Fatal(err)
	}
	domains := make([]fedlisttest.Domain, n)
	for i := range domains {
		domains[i] = fedlisttest.Domain{Domain: fmt.Sprintf("tim%05d.example.de", i), TelematikID: fmt.Sprintf("1-%d", i), TimAnbieter: "ORG-0001:BT-0001"}
	}
	jws, err := p.Sign(fedlisttest.Payload(1, domains))
	if err != nil {
		b.Fatal(err)
	}
	ts, err := NewTrustStore(p.RootPEM())
	if err != nil {
		b.Fatal(err)
	}
	return jws, ts
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{AlgBP256R1, AlgES256} {
		for _, n := range []int{300, 10000} {
			jws, ts := benchList(b, alg, n)
			b.Run(fmt.Sprintf("%s/%d-domains", alg, n), func(b *testing.B) {
				b.SetBytes(int64(len(jws)))
				for i := 0; i < b.N; i++ {
					if _, err := Verify(jws, ts, testNow); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkContains(b *testing.B) {
	jws, ts := benchList(b, AlgES256, 10000)
	l, err := Verify(jws, ts, testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !l.Contains("tim04711.example.de") {
			b.Fatal("missing")
		}
	}
}

// BenchmarkParsePayload: reading the list's JSON alone (no signature), for
// list sizes from today's to the size the control plane bounds.
func BenchmarkParsePayload(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		domains := make([]fedlisttest.Domain, n)
		for i := range domains {
			domains[i] = fedlisttest.Domain{Domain: fmt.Sprintf("tim%06d.example.de", i), TelematikID: fmt.Sprintf("1-%d", i), TimAnbieter: "ORG-0001:BT-0001", IK: []string{"109500969"}}
		}
		payload := fedlisttest.Payload(1, domains)
		b.Run(fmt.Sprintf("%d-domains", n), func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := ParsePayload(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
