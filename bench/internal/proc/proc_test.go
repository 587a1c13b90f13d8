package proc

import (
	"testing"
	"time"
)

func TestCPUTimeGrowsWithWork(t *testing.T) {
	before := CPUTime()
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if CPUTime() <= before {
		t.Fatalf("CPU time did not grow: %v", before)
	}
	if LoadAvg() == "" {
		t.Fatal("empty load average")
	}
}
