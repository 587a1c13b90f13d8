package internalapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The "nothing changed" answer is what every proxy asks for every refresh interval; it must stay cheap.
// Figures are printed (ns/op, req/s), never asserted.

func BenchmarkFederationList204Handler(b *testing.B) {
	s := newStack(b, true)
	h := s.api.Config.Handler
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/internal/v1/federation-list?version=1", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

func BenchmarkFederationList204HTTP(b *testing.B) {
	s := newStack(b, true)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	start := time.Now()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", s.api.URL+"/internal/v1/federation-list?version=1", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
