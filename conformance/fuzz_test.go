package conformance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/timfd/fachdienst/policies"
	"github.com/timfd/fachdienst/wasm/planvm"
)

// The differential fuzz target builds tim.proxy inputs from fuzz bytes, one
// byte per field, each byte choosing from a small pool of values: the values
// the table cases use plus odd ones (empty strings, wrong case, ports,
// unicode, NUL, format verbs, wrong JSON types). Byte 0 leaves a field out.
// The pools are closed under the table cases, so every table case is a seed.

// proxyFields is the order in which bytes fill the input; "invitees" takes a
// count byte and then one byte per invitee, "xmatrix" an origin and a
// destination byte.
var proxyFields = []string{
	"direction", "method", "route", "path", "host", "client_id",
	"xmatrix", "invitees", "invite", "media_server", "federation_list_expired",
	"endpoint", "servers", "invite_3pid",
}

// xmatrixKeys are the members of input.xmatrix, one byte each.
var xmatrixKeys = []string{"origin", "destination", "origin_domain", "destination_domain"}

const maxFuzzInvitees = 4

var oddStrings = []any{"", " ", "%s", "%d%v", "a\u0000b", "\"quoted\"", "ü😀", "A.EXAMPLE.DE", "x:8448", 7, true, nil, []any{"client"}, map[string]any{}}

type fuzzPools struct {
	scalar  map[string][]any // per field; index 0 is "absent"
	domains []any            // xmatrix origin/destination; index 0 is "absent"
	invitee []any            // invitee objects
}

// fuzzData is the data document of the fuzz target: the default policy data
// with federated, own and approved values the pools draw from. The last fuzz
// byte picks one of fuzzVariants merged over it.
const fuzzData = `{
  "federation": {"domains": {"fed.example.de": {"isInsurance": false}, "kasse.example.de": {"isInsurance": true}, "bücher.example.de": {"isInsurance": false}}},
  "config": {
    "own_domains": {"home.example.de": true},
    "client_ids": {"enforce": true, "approved": {"tim-client-1.0": true}, "exempt_routes": {"versions": true, "well_known_client": true}},
    "endpoints": {"client": {"/e": {"GET": true, "HEAD": true, "POST": true, "PUT": true}}, "federation": {"/e": {"GET": true, "POST": true, "PUT": true}}}
  }
}`

var fuzzVariants = []string{
	`{}`,
	`{"config": {"client_ids": {"enforce": false}}}`,
	`{"config": {"exempt_prefixes": {"client": [{"path_prefix": "/_matrix/client/versions"}]}, "exempt_paths": {"/_matrix/client/v3/createRoom": {"client": {"POST": {"*": true}}}}, "messages": {"not_invitable": "%s konnte nicht eingeladen werden: %d"}}}`,
	`{"config": {"own_domains": {}, "messages": {}}, "federation": {"domains": {}}}`,
	`{"config": {"unknown_endpoints": "pass"}}`,
}

type fuzzEnv struct {
	pools    fuzzPools
	seeds    [][]byte
	table    int // tim.proxy table cases with an object input
	vm       *VMProgram
	variants []fuzzVariant
}

// fuzzVariant is one data document, prepared for both evaluators.
type fuzzVariant struct {
	opa  *OPAQuery
	data planvm.Value
}

var (
	fuzzOnce sync.Once
	fuzzE    *fuzzEnv
	fuzzErr  error
)

func setupFuzz(t testing.TB) *fuzzEnv {
	t.Helper()
	fuzzOnce.Do(func() { fuzzE, fuzzErr = newFuzzEnv() })
	if fuzzErr != nil {
		t.Fatal(fuzzErr)
	}
	return fuzzE
}

func newFuzzEnv() (*fuzzEnv, error) {
	ctx := context.Background()
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	mods, err := PolicyModules(os.DirFS(filepath.Join(root, "policies")))
	if err != nil {
		return nil, err
	}
	defaults, err := os.ReadFile(filepath.Join(root, "policies", "data.json"))
	if err != nil {
		return nil, err
	}
	data, err := MergeJSON(defaults, []byte(fuzzData))
	if err != nil {
		return nil, err
	}
	env := &fuzzEnv{}
	for _, v := range fuzzVariants {
		d, err := MergeJSON(data, []byte(v))
		if err != nil {
			return nil, err
		}
		var fv fuzzVariant
		if fv.opa, err = PrepareOPA(ctx, mods, policies.ProxyDecision, d); err != nil {
			return nil, err
		}
		if fv.data, err = planvm.ParseJSON(d); err != nil {
			return nil, err
		}
		env.variants = append(env.variants, fv)
	}
	plan, err := CompilePlan(ctx, mods, policies.ProxyDecision)
	if err != nil {
		return nil, err
	}
	if env.vm, err = LoadVM(plan); err != nil {
		return nil, err
	}

	// Pools: fixed odd values first, then every value of the table cases.
	p := fuzzPools{scalar: map[string][]any{}}
	for _, f := range []string{"direction", "method", "route", "path", "host", "client_id", "media_server", "federation_list_expired", "invite", "endpoint", "servers", "invite_3pid"} {
		p.scalar[f] = append([]any{absent}, oddStrings...)
	}
	p.domains = append([]any{absent}, oddStrings...)
	p.invitee = []any{map[string]any{"mxid": "@x:y"}, map[string]any{"domain": 5}, "not an object"}
	for _, d := range []string{"fed.example.de", "kasse.example.de", "home.example.de", "evil.example", "fed.example.de:8448", "FED.EXAMPLE.DE"} {
		p.domains = addUnique(p.domains, d)
		p.scalar["media_server"] = addUnique(p.scalar["media_server"], d)
		p.scalar["host"] = addUnique(p.scalar["host"], d)
		p.invitee = addUnique(p.invitee, map[string]any{"mxid": "@u:" + d, "domain": d})
	}
	for _, v := range []string{"client", "federation", "egress"} {
		p.scalar["direction"] = addUnique(p.scalar["direction"], v)
	}
	for _, v := range []string{"login", "createRoom", "invite", "federation_invite", "media", "well_known_server", "well_known_client", "openid_userinfo", "key_server", "versions", "client_other", "federation_other", "other", "join", "federation_third_party_invite", "federation_join", "unknown"} {
		p.scalar["route"] = addUnique(p.scalar["route"], v)
	}
	p.scalar["federation_list_expired"] = addUnique(p.scalar["federation_list_expired"], false)

	cases, err := LoadCorpus(os.DirFS(filepath.Join(root, "conformance", "testdata")), defaults)
	if err != nil {
		return nil, err
	}
	var inputs []map[string]any
	for _, c := range cases {
		if !c.Policies || c.Entrypoint != policies.ProxyDecision || c.Input == nil {
			continue
		}
		var in map[string]any
		if err := unmarshalNumber(c.Input, &in); err != nil {
			continue // not an object: the fuzz input is always one
		}
		inputs = append(inputs, in)
		for k, v := range in {
			switch k {
			case "xmatrix":
				if m, ok := v.(map[string]any); ok {
					for _, d := range m {
						p.domains = addUnique(p.domains, d)
					}
				}
			case "invitees":
				if l, ok := v.([]any); ok {
					for _, inv := range l {
						p.invitee = addUnique(p.invitee, inv)
					}
				}
			default:
				p.scalar[k] = addUnique(p.scalar[k], v)
			}
		}
	}
	env.pools = p
	env.table = len(inputs)
	for _, in := range inputs {
		if b, ok := p.encode(in); ok {
			env.seeds = append(env.seeds, b)
		}
	}
	return env, nil
}

// absent marks "leave the field out" in a pool.
var absent = struct{ absent bool }{true}

func addUnique(pool []any, v any) []any {
	key := jsonKey(v)
	for _, e := range pool {
		if e != absent && jsonKey(e) == key {
			return pool
		}
	}
	return append(pool, v)
}

func jsonKey(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func indexOf(pool []any, v any) (byte, bool) {
	key := jsonKey(v)
	for i, e := range pool {
		if e != absent && jsonKey(e) == key && i < 256 {
			return byte(i), true
		}
	}
	return 0, false
}

func pick(pool []any, b byte) any { return pool[int(b)%len(pool)] }

// decode builds an input from fuzz bytes and picks the data variant from
// the byte after the fields; missing bytes count as 0.
func (p fuzzPools) decode(b []byte) (map[string]any, int) {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	in := map[string]any{}
	for _, f := range proxyFields {
		switch f {
		case "xmatrix":
			x := map[string]any{}
			for _, k := range xmatrixKeys {
				if v := pick(p.domains, next()); v != absent {
					x[k] = v
				}
			}
			if len(x) == 0 {
				continue
			}
			in[f] = x
		case "invitees":
			n := next()
			if n == 0 {
				continue
			}
			list := []any{}
			for i := 0; i < int(n-1)%(maxFuzzInvitees+1); i++ {
				list = append(list, pick(p.invitee, next()))
			}
			in[f] = list
		default:
			if v := pick(p.scalar[f], next()); v != absent {
				in[f] = v
			}
		}
	}
	return in, int(next()) % len(fuzzVariants)
}

// encode is the inverse of decode for inputs whose values are in the pools.
func (p fuzzPools) encode(in map[string]any) ([]byte, bool) {
	var out []byte
	for _, f := range proxyFields {
		v, present := in[f]
		switch f {
		case "xmatrix":
			if !present {
				out = append(out, make([]byte, len(xmatrixKeys))...)
				continue
			}
			m, ok := v.(map[string]any)
			if !ok || len(m) == 0 {
				return nil, false
			}
			for _, k := range xmatrixKeys {
				d, ok := m[k]
				if !ok {
					out = append(out, 0)
					continue
				}
				i, ok := indexOf(p.domains, d)
				if !ok {
					return nil, false
				}
				out = append(out, i)
			}
		case "invitees":
			if !present {
				out = append(out, 0)
				continue
			}
			l, ok := v.([]any)
			if !ok || len(l) > maxFuzzInvitees {
				return nil, false
			}
			out = append(out, byte(len(l)+1))
			for _, inv := range l {
				i, ok := indexOf(p.invitee, inv)
				if !ok {
					return nil, false
				}
				out = append(out, i)
			}
		default:
			if !present {
				out = append(out, 0)
				continue
			}
			i, ok := indexOf(p.scalar[f], v)
			if !ok {
				return nil, false
			}
			out = append(out, i)
		}
	}
	return append(out, 0), true // default data
}

func (e *fuzzEnv) check(t *testing.T, b []byte) {
	in, variant := e.pools.decode(b)
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	dv := e.variants[variant]
	want := dv.opa.Eval(context.Background(), raw)
	vin, err := planvm.ParseJSON(raw)
	if err != nil {
		t.Fatalf("planvm cannot parse %s: %v", raw, err)
	}
	got := e.vm.Eval(policies.ProxyDecision, vin, dv.data)
	if d := Diff(want, got); d != "" {
		t.Fatalf("input %s, data variant %d: %s", raw, variant, d)
	}
	if !want.Defined {
		t.Fatalf("input %s, data variant %d: the decision is undefined (OPA %s)", raw, variant, want)
	}
}

func FuzzProxyDecision(f *testing.F) {
	env := setupFuzz(f)
	for _, s := range env.seeds {
		for v := range fuzzVariants {
			seed := append([]byte(nil), s...)
			seed[len(seed)-1] = byte(v)
			f.Add(seed)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env.check(t, b)
	})
}

// TestFuzzSeedsAreTableCases checks that the seed corpus holds every table
// case of tim.proxy: each decodes back to the input it was encoded from.
func TestFuzzSeedsAreTableCases(t *testing.T) {
	env := setupFuzz(t)
	if len(env.seeds) == 0 || len(env.seeds) != env.table {
		t.Fatalf("%d seeds for %d tim.proxy table cases", len(env.seeds), env.table)
	}
	for _, s := range env.seeds {
		in, _ := env.pools.decode(s)
		back, ok := env.pools.encode(in)
		if !ok || string(back) != string(s) {
			t.Errorf("seed %v decodes to %v, which encodes to %v", s, in, back)
		}
	}
}
