// Command planfixtures regenerates the plan VM's test fixtures: it compiles
// Rego with OPA's planner into wasm/planvm/testdata/<name>.plan.json and
// evaluates every case of cases.json with OPA itself, writing the answers to
// wasm/planvm/testdata/golden.json. The VM's tests then compare against
// OPA's answers without importing OPA.
//
//	go run ./tools/planfixtures
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/timfd/fachdienst/control/plancompile"
)

// fixture is one plan: Rego sources and the entrypoints to plan.
type fixture struct {
	Name    string   `json:"name"`
	Dir     string   `json:"dir"` // relative to the repository root
	Entries []string `json:"entries"`
}

// testCase is one evaluation; Input absent means an undefined input.
type testCase struct {
	Plan     string          `json:"plan"`
	Entry    string          `json:"entry"`
	Input    json.RawMessage `json:"input,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	DataFile string          `json:"data_file,omitempty"` // merged under Data
}

type spec struct {
	Fixtures []fixture  `json:"fixtures"`
	Cases    []testCase `json:"cases"`
}

// golden is what OPA answered for a case.
type golden struct {
	testCase
	Defined bool            `json:"defined"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   bool            `json:"error,omitempty"`
}

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		log.Fatal(err)
	}
}

func run(root string) error {
	raw, err := os.ReadFile(filepath.Join(root, "tools/planfixtures/cases.json"))
	if err != nil {
		return err
	}
	var sp spec
	if err := json.Unmarshal(raw, &sp); err != nil {
		return fmt.Errorf("cases.json: %w", err)
	}
	out := filepath.Join(root, "wasm/planvm/testdata")
	modulesOf := map[string]map[string]string{}
	for _, f := range sp.Fixtures {
		mods, err := readModules(filepath.Join(root, f.Dir))
		if err != nil {
			return err
		}
		modulesOf[f.Name] = mods
		res, err := plancompile.CompileModules(context.Background(), mods, f.Entries...)
		if err != nil {
			return fmt.Errorf("compile %s: %w", f.Name, err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, res.Plan, "", " "); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, f.Name+".plan.json"), pretty.Bytes(), 0o644); err != nil {
			return err
		}
	}
	var goldens []golden
	for i, c := range sp.Cases {
		mods := modulesOf[c.Plan]
		if mods == nil {
			return fmt.Errorf("case %d: unknown plan %q", i, c.Plan)
		}
		g, err := evalOPA(root, mods, c)
		if err != nil {
			return fmt.Errorf("case %d (%s): %w", i, c.Entry, err)
		}
		goldens = append(goldens, g)
	}
	b, err := json.MarshalIndent(goldens, "", " ")
	if err != nil {
		return err
	}
	fmt.Printf("%d fixtures, %d cases\n", len(sp.Fixtures), len(goldens))
	return os.WriteFile(filepath.Join(out, "golden.json"), append(b, '\n'), 0o644)
}

func readModules(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	mods := map[string]string{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".rego") || strings.HasSuffix(e.Name(), "_test.rego") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		mods[e.Name()] = string(src)
	}
	if len(mods) == 0 {
		return nil, errors.New("no modules in " + dir)
	}
	return mods, nil
}

func evalOPA(root string, mods map[string]string, c testCase) (golden, error) {
	g := golden{testCase: c}
	data := map[string]any{}
	if c.DataFile != "" {
		b, err := os.ReadFile(filepath.Join(root, c.DataFile))
		if err != nil {
			return g, err
		}
		if err := util.UnmarshalJSON(b, &data); err != nil {
			return g, err
		}
	}
	if len(c.Data) > 0 {
		var extra map[string]any
		if err := util.UnmarshalJSON(c.Data, &extra); err != nil {
			return g, err
		}
		mergeInto(data, extra)
	}
	// The goldens carry the merged data so that they stay self-contained.
	merged, err := json.Marshal(data)
	if err != nil {
		return g, err
	}
	g.Data, g.DataFile = merged, ""
	opts := []func(*rego.Rego){
		rego.Query("data." + strings.ReplaceAll(c.Entry, "/", ".")),
		rego.Store(inmem.NewFromObject(data)),
		rego.SetRegoVersion(ast.RegoV1),
	}
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		opts = append(opts, rego.Module(n, mods[n]))
	}
	if len(c.Input) > 0 {
		var in any
		if err := util.UnmarshalJSON(c.Input, &in); err != nil {
			return g, err
		}
		opts = append(opts, rego.Input(in))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		g.Error = true
		return g, nil
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return g, nil
	}
	g.Defined = true
	g.Result, err = json.Marshal(rs[0].Expressions[0].Value)
	return g, err
}

// mergeInto merges src into dst recursively; src wins on leaves.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeInto(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}
