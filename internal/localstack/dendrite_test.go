package localstack

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestDendriteConfigGolden pins the homeserver configuration the local run and the e2e tests use:
// a change to it shows up in review as a change to the golden files.
func TestDendriteConfigGolden(t *testing.T) {
	cfg, as := dendriteConfig(DendriteConfig{
		Dir: "/data/dendrite", ServerName: "a.localhost", WellKnownClient: "http://127.0.0.1:8480",
	}, "shared-secret", "as-token", "hs-token")
	for name, got := range map[string][]byte{"dendrite.golden.yaml": cfg, "appservice.golden.yaml": as} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs (go test -update):\n%s", name, got)
		}
	}
}
