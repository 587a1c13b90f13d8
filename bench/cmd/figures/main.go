// Command figures writes the filter's figures into README.md and
// docs/filter.md from one benchmark report, so that the two cannot drift
// from the measurement or from each other:
//
//	go run ./bench/filter -out build/bench/filter.json   # measure
//	go run ./bench/cmd/figures -snapshot                 # copy to docs/figures, rewrite the docs
//
// Without -snapshot it renders docs/figures/filter.json, the committed
// snapshot that TestDocsMatchSnapshot checks the documents against.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", ".", "repository root")
	snapshot := flag.Bool("snapshot", false, "copy build/bench/filter.json to docs/figures/filter.json first")
	flag.Parse()
	if err := run(*root, *snapshot); err != nil {
		fmt.Fprintln(os.Stderr, "figures:", err)
		os.Exit(1)
	}
}

const snapshotPath = "docs/figures/filter.json"

// documents are the files that hold the generated section.
var documents = []string{"README.md", "docs/filter.md"}

func run(root string, snapshot bool) error {
	if snapshot {
		b, err := os.ReadFile(filepath.Join(root, "build/bench/filter.json"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, snapshotPath), b, 0o644); err != nil {
			return err
		}
	}
	rep, err := load(filepath.Join(root, snapshotPath))
	if err != nil {
		return err
	}
	section := render(rep)
	for _, doc := range documents {
		p := filepath.Join(root, doc)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out, err := replaceSection(b, section)
		if err != nil {
			return fmt.Errorf("%s: %w", doc, err)
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// The generated section lies between these lines.
const (
	begin = "<!-- figures:filter begin (go run ./bench/cmd/figures; do not edit) -->\n"
	end   = "<!-- figures:filter end -->\n"
)

// section returns the generated section of a document.
func section(doc []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return nil, errors.New("no figures section")
	}
	return doc[i+len(begin) : j], nil
}

func replaceSection(doc, s []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return nil, errors.New("no figures section")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.Write(s)
	out.Write(doc[j:])
	return out.Bytes(), nil
}
