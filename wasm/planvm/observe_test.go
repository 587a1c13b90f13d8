package planvm

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestObservationsSound is the differential test of observe.go: for every
// case of the golden corpus (statements, builtins, the proxy policy), every
// string of the input is made opaque and the case evaluated with Observe.
// Inputs that differ only in those strings are then generated from the
// strings of the case's input, data and plan constants and small changes of
// them; each one that replays the observations must evaluate (as a plain
// input) to the same result as the observed one. The test fails unless
// enough cases were observable and enough changed inputs replayed to show
// it.
func TestObservationsSound(t *testing.T) {
	cases := loadGolden(t)
	rng := rand.New(rand.NewPCG(7, 11))
	progs := map[string]*Program{}
	now := WithNow(time.Unix(1700000000, 0))
	observable, spoiled, replayed, refused := 0, 0, 0, 0
	for i, c := range cases {
		if c.Error || len(c.Input) == 0 {
			continue
		}
		p := progs[c.Plan]
		if p == nil {
			p = loadPlan(t, c.Plan)
			progs[c.Plan] = p
		}
		plain := mustParse(t, string(c.Input))
		data := NewObject()
		if len(c.Data) > 0 {
			data = mustParse(t, string(c.Data))
		}
		// All strings opaque, then each one alone.
		n := 0
		withStrings(plain, func(s string) Value { n++; return String(s) })
		for only := -1; only < n && n > 0; only++ {
			var strs []string
			pos := -1
			in := withStrings(plain, func(s string) Value {
				pos++
				if only >= 0 && pos != only || len(strs) == MaxOpaque {
					return String(s)
				}
				strs = append(strs, s)
				return Opaque(s, len(strs)-1)
			})
			ev := p.NewEvaluator()
			res, defined, err := ev.Eval(c.Entry, in, data, now, Observe)
			if err != nil {
				continue
			}
			want := "undefined"
			if defined {
				want = mustJSON(res)
			}
			obs, ok := ev.Observations()
			if !ok {
				spoiled++
				continue
			}
			observable++
			kept := make([]Observation, len(obs))
			for j, o := range obs {
				kept[j] = o.Detach()
			}
			pool := append(append(append([]string{}, strs...), stringsOf(data)...), p.constStrings()...)
			for v := 0; v < 200; v++ {
				alt := make([]string, len(strs))
				changed := false
				for j, s := range strs {
					alt[j] = s
					if rng.IntN(2) == 0 {
						alt[j] = mutate(rng, s, pool)
						changed = changed || alt[j] != s
					}
				}
				if !changed {
					continue
				}
				if !Replay(kept, alt) {
					refused++
					continue
				}
				replayed++
				k, pos := 0, -1
				variant := withStrings(plain, func(s string) Value {
					pos++
					if only >= 0 && pos != only {
						return String(s)
					}
					k++
					return String(alt[k-1])
				})
				got, gdef, err := p.Eval(c.Entry, variant, data, now)
				g := "undefined"
				if gdef {
					g = mustJSON(got)
				}
				if err != nil || g != want {
					t.Fatalf("case %d (%s): observations %+v replayed for %q (observed %q), but the result is %s (err %v), observed %s",
						i, c.Entry, kept, alt, strs, g, err, want)
				}
			}
		}
	}
	t.Logf("%d cases observable, %d spoiled; %d changed inputs replayed, %d refused", observable, spoiled, replayed, refused)
	if observable < 150 || replayed < 10000 || refused < 5000 {
		t.Errorf("too little shown: %d observable cases, %d replayed and %d refused inputs", observable, replayed, refused)
	}
}

// withStrings is v with every string that is not an object key replaced
// by f's value (in a fixed order: arrays in order, objects by their
// members' order).
func withStrings(v Value, f func(string) Value) Value {
	switch v.k {
	case KindString:
		return f(v.s)
	case KindArray:
		out := make([]Value, len(v.c.elems))
		for i, e := range v.c.elems {
			out[i] = withStrings(e, f)
		}
		return arrayOf(out)
	case KindObject:
		kv := make([]KV, len(v.c.elems))
		for i, k := range v.c.elems {
			kv[i] = KV{Key: k.s, Value: withStrings(v.c.vals[i], f)}
		}
		return NewObject(kv...)
	}
	return v
}

// stringsOf returns the strings in v, keys included.
func stringsOf(v Value) []string {
	var out []string
	var walk func(v Value)
	walk = func(v Value) {
		switch v.k {
		case KindString:
			out = append(out, v.s)
		case KindArray, KindObject, KindSet:
			for _, e := range v.c.elems {
				walk(e)
			}
			for _, e := range v.c.vals {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func (p *Program) constStrings() []string {
	var out []string
	for _, c := range p.consts {
		if c.k == KindString {
			out = append(out, c.s)
		}
	}
	return out
}

// mutate returns a string near s or from the pool.
func mutate(rng *rand.Rand, s string, pool []string) string {
	switch rng.IntN(6) {
	case 0:
		return s + "x"
	case 1:
		if len(s) > 0 {
			return s[:rng.IntN(len(s))]
		}
		return "y"
	case 2:
		return "z" + s
	case 3:
		return ""
	default:
		return pool[rng.IntN(len(pool))]
	}
}
