package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDocsMatchSnapshot: the figures section of README.md and
// docs/filter.md is what the committed snapshot (docs/figures/filter.json)
// renders to. A new measurement goes in with `go run ./bench/cmd/figures
// -snapshot`, which rewrites both; an edit by hand fails here.
func TestDocsMatchSnapshot(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	rep, err := load(filepath.Join(root, snapshotPath))
	if err != nil {
		t.Fatal(err)
	}
	want := render(rep)
	for _, doc := range documents {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		got, err := section(b)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the figures section differs from what %s renders; run go run ./bench/cmd/figures\n--- in %s:\n%s\n--- rendered:\n%s", doc, snapshotPath, doc, got, want)
		}
	}
}

// TestRenderShowsEveryFigure: each scenario and mix of the snapshot
// appears, so a renamed scenario is not silently dropped.
func TestRenderShowsEveryFigure(t *testing.T) {
	rep, err := load(filepath.Join("..", "..", "..", snapshotPath))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range scenarioLabels {
		known[s.name] = true
	}
	for _, r := range rep.Results {
		if !known[r.Scenario] {
			t.Errorf("scenario %s has no label", r.Scenario)
		}
	}
	for _, m := range mixLabels {
		known[m.name] = true
	}
	for name := range rep.Mixes {
		if !known[name] {
			t.Errorf("mix %s has no label", name)
		}
	}
}
