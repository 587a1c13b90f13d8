// Package conformance checks the plan VM (wasm/planvm) against OPA's own
// evaluator (topdown) on a data-driven corpus of Rego cases, and offers the
// pieces the differential fuzz target and the policy benchmark share.
//
// A case names Rego modules, an entrypoint, data and input, and the expected
// result. Every case is evaluated twice: by OPA from the Rego source and by the
// VM from the plan OPA's planner compiled. A case fails when OPA disagrees with
// the expected result (the corpus is wrong) or when the VM disagrees with OPA
// (a conformance mismatch).
package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Case is one corpus entry.
type Case struct {
	// Name is unique within the corpus; File is the corpus file it came from.
	Name string
	File string
	// Modules maps file names to Rego source. When Policies is set the
	// modules are the repository's policies/ directory instead.
	Modules  map[string]string
	Policies bool
	// Entrypoint is a plan entrypoint such as "tim/proxy/decision".
	Entrypoint string
	// Data and Input are JSON documents; Input nil means undefined input.
	Data  []byte
	Input []byte
	Want  Want
}

// Want is the expected outcome of a case.
type Want struct {
	Defined bool
	Result  []byte // JSON; nil when not defined
	// Error marks cases where evaluation must fail (e.g. a conflict between
	// complete rule values). OPA and the VM must both fail.
	Error bool
}

// yamlFile is one corpus file. Modules, Entrypoint and Data at file level
// are defaults for the cases that do not set their own.
type yamlFile struct {
	Modules    map[string]string `yaml:"modules"`
	Entrypoint string            `yaml:"entrypoint"`
	Data       yaml.Node         `yaml:"data"`
	Policies   bool              `yaml:"policies"`
	Cases      []yamlCase        `yaml:"cases"`
}

type yamlCase struct {
	Name       string            `yaml:"name"`
	Modules    map[string]string `yaml:"modules"`
	Policies   bool              `yaml:"policies"`
	Entrypoint string            `yaml:"entrypoint"`
	Data       yaml.Node         `yaml:"data"`
	Input      yaml.Node         `yaml:"input"`
	// InputJSON gives the input as JSON text, for documents YAML cannot
	// express (duplicate keys, lone surrogates).
	InputJSON string `yaml:"input_json"`
	Want      struct {
		Defined *bool     `yaml:"defined"`
		Result  yaml.Node `yaml:"result"`
		Error   bool      `yaml:"error"`
	} `yaml:"want"`
}

// LoadCorpus reads every *.yaml file below dir (a file holds `cases: [...]`
// and optional file-level defaults) and returns the cases sorted by file, in
// file order. A case's data is deep-merged over the file's data; policyData,
// when not nil, is the default data of policies/ (policies/data.json), under
// the data of files and cases marked `policies: true`.
func LoadCorpus(fsys fs.FS, policyData []byte) ([]Case, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Case
	seen := map[string]string{}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var yf yamlFile
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&yf); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		fileData, err := nodeJSON(&yf.Data, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: data: %w", f, err)
		}
		if fileData != nil && policyData != nil && yf.Policies {
			if fileData, err = MergeJSON(policyData, fileData); err != nil {
				return nil, fmt.Errorf("%s: data: %w", f, err)
			}
		} else if fileData == nil && yf.Policies {
			fileData = policyData
		}
		for i, yc := range yf.Cases {
			if yc.Modules == nil && !yc.Policies {
				yc.Modules = yf.Modules
				yc.Policies = yf.Policies
			}
			if yc.Entrypoint == "" {
				yc.Entrypoint = yf.Entrypoint
			}
			base := fileData
			if yc.Policies && !yf.Policies {
				base = policyData
			}
			c, err := yc.toCase(f, base)
			if err != nil {
				return nil, fmt.Errorf("%s: case %d (%q): %w", f, i, yc.Name, err)
			}
			if prev, dup := seen[c.Name]; dup {
				return nil, fmt.Errorf("%s: case name %q already used in %s", f, c.Name, prev)
			}
			seen[c.Name] = f
			out = append(out, c)
		}
	}
	return out, nil
}

// toCase converts one YAML case; its data is deep-merged over base (the
// file's data, itself merged over policies/data.json for policy files).
func (yc yamlCase) toCase(file string, base []byte) (Case, error) {
	c := Case{Name: yc.Name, File: file, Modules: yc.Modules, Policies: yc.Policies, Entrypoint: yc.Entrypoint}
	switch {
	case c.Name == "":
		return c, errors.New("name missing")
	case c.Entrypoint == "":
		return c, errors.New("entrypoint missing")
	case c.Policies == (len(c.Modules) > 0):
		return c, errors.New("exactly one of modules and policies: true is needed")
	}
	var err error
	if c.Data, err = nodeJSON(&yc.Data, []byte("{}")); err != nil {
		return c, fmt.Errorf("data: %w", err)
	}
	if base != nil {
		if c.Data, err = MergeJSON(base, c.Data); err != nil {
			return c, fmt.Errorf("data: %w", err)
		}
	}
	if c.Input, err = nodeJSON(&yc.Input, nil); err != nil {
		return c, fmt.Errorf("input: %w", err)
	}
	if yc.InputJSON != "" {
		if c.Input != nil {
			return c, errors.New("both input and input_json given")
		}
		if !json.Valid([]byte(yc.InputJSON)) {
			return c, fmt.Errorf("input_json is not valid JSON")
		}
		c.Input = []byte(yc.InputJSON)
	}
	if yc.Want.Defined == nil && !yc.Want.Error {
		return c, errors.New("want.defined missing")
	}
	c.Want.Error = yc.Want.Error
	if yc.Want.Defined != nil {
		c.Want.Defined = *yc.Want.Defined
	}
	if c.Want.Result, err = nodeJSON(&yc.Want.Result, nil); err != nil {
		return c, fmt.Errorf("want.result: %w", err)
	}
	if c.Want.Defined && c.Want.Result == nil {
		return c, errors.New("want.result missing for a defined result")
	}
	if !c.Want.Defined && c.Want.Result != nil {
		return c, errors.New("want.result given for an undefined result")
	}
	return c, nil
}

// nodeJSON converts a YAML node to JSON text. Numbers keep their literal text
// so that big and precise numbers reach both evaluators unchanged. An absent
// node yields def.
func nodeJSON(n *yaml.Node, def []byte) ([]byte, error) {
	if n.Kind == 0 {
		return def, nil
	}
	var b bytes.Buffer
	if err := writeNode(&b, n); err != nil {
		return nil, err
	}
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("not valid JSON: %s", b.String())
	}
	return b.Bytes(), nil
}

func writeNode(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		return writeNode(b, n.Content[0])
	case yaml.AliasNode:
		return writeNode(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := writeNode(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, e := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeNode(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			b.WriteString("null")
		case "!!bool":
			v, err := strconv.ParseBool(strings.ToLower(n.Value))
			if err != nil {
				return err
			}
			b.WriteString(strconv.FormatBool(v))
		case "!!int", "!!float":
			if !json.Valid([]byte(n.Value)) {
				return fmt.Errorf("number %q is not a JSON number (line %d)", n.Value, n.Line)
			}
			b.WriteString(n.Value)
		default:
			s, _ := json.Marshal(n.Value)
			b.Write(s)
		}
	default:
		return fmt.Errorf("unsupported YAML node kind %d (line %d)", n.Kind, n.Line)
	}
	return nil
}

// MergeJSON deep-merges overlay over base (objects merge key by key; any
// other value in overlay replaces the one in base).
func MergeJSON(base, overlay []byte) ([]byte, error) {
	var a, b any
	if err := unmarshalNumber(base, &a); err != nil {
		return nil, err
	}
	if err := unmarshalNumber(overlay, &b); err != nil {
		return nil, err
	}
	return json.Marshal(merge(a, b))
}

func merge(a, b any) any {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		return b
	}
	out := make(map[string]any, len(am)+len(bm))
	for k, v := range am {
		out[k] = v
	}
	for k, v := range bm {
		if old, ok := out[k]; ok {
			out[k] = merge(old, v)
		} else {
			out[k] = v
		}
	}
	return out
}

func unmarshalNumber(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// RepoRoot finds the module root (the directory holding go.mod) from the
// working directory upwards, so that the test (run in conformance/) and the
// command (run from the root) find policies/ and testdata alike.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
