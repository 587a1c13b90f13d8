package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// shapeRecorder returns, when TIM_E2E_SHAPES names a file, a request log that appends one line per
// request through the proxies to it: role, method and path (query included). bench/filter reads
// such a recording to learn which request shapes real homeservers and a real client library send
// (bench/filter/testdata/e2e-shapes.tsv). Without the variable it returns nil: nothing recorded.
func shapeRecorder(t *testing.T) func(role, method, path string) {
	name := os.Getenv("TIM_E2E_SHAPES")
	if name == "" {
		return nil
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var mu sync.Mutex
	return func(role, method, path string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%s\t%s\t%s\n", role, method, path)
	}
}
