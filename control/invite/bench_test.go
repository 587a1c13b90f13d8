package invite_test

import (
	"context"
	"testing"
	"time"
)

func BenchmarkDecideStage3WarmCache(b *testing.B) {
	clock := now
	e := setup(b, "basis", nil, time.Hour, &clock)
	ctx := context.Background()
	e.d.Decide(ctx, "@pract:a.de", "@pract2:b.de")
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := e.d.Decide(ctx, "@pract:a.de", "@pract2:b.de"); !d.Allow {
			b.Fatal(d)
		}
	}
}
