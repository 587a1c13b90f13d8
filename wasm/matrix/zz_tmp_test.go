package matrix

import "testing"

var sinkB bool

func BenchmarkZZ(b *testing.B) {
	p := `origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`
	in := []string{`X-Matrix ` + p}
	b.Run("psn", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sinkB = plainServerName("d500.example.de")
		}
	})
	b.Run("pq", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sinkB = plainQuoted("c2lnbmF0dXJl")
		}
	})
	b.Run("common", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, _, _, sinkString, sinkB = commonParams(p)
		}
	})
	b.Run("parse", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			x, _ := ParseXMatrix(in)
			sinkString = x.Sig
		}
	})
	b.Run("sinkonly", func(b *testing.B) {
		x := XMatrix{"a", "b", "c", "d"}
		for i := 0; i < b.N; i++ {
			sinkXM = x
		}
	})
}
