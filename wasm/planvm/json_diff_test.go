package planvm

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// The plan VM's JSON reader parses the plugin configuration, policies and
// the federation list's JWS header before its signature is verified, so it
// must read every document exactly as encoding/json does: the same
// documents accepted, the same values. The one intended difference is the
// nesting bound (maxJSONDepth against encoding/json's 10 000).

func FuzzParseJSONDifferential(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2.5,"x",null,true]}`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`, `[{"b":{}},[]]`, `1e400`, `-0.0`, `-0`,
		`{"a":1,"a":2}`, `{"a":{"b":1},"a":{"c":2}}`, "\"\xff\"", "\"a\xc3\"", `"\u0000"`, `"\/"`, ` {"x" : [ ] } `,
		`01`, `1.`, `.5`, `+1`, `1e`, `-`, `0x1`, `NaN`, `tru`, `nul`, `{"a":1,}`, `[1,]`, `{,}`, `{"a"}`, "\ufeff{}",
		`123456789012345678901234567890`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775809`, `1E+2`, `1e-400`,
		`{"alg":"BP256R1","x5c":["MIIB"]}`, `{"alg":"ES256","alg":"none"}`, "\"\t\"", `"\x"`, `{}{}`, `[] x`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseJSON(b)
		valid := json.Valid(b)
		switch {
		case err == nil && !valid:
			t.Fatalf("ParseJSON accepts %q, encoding/json refuses it", b)
		case err != nil && valid:
			if depth(b) > maxJSONDepth {
				return
			}
			t.Fatalf("ParseJSON refuses %q (%v), encoding/json accepts it", b, err)
		case err != nil:
			return
		}
		var want any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		out, err := ToJSON(v)
		if err != nil {
			t.Fatalf("ToJSON: %v", err)
		}
		var got any
		d = json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if err := d.Decode(&got); err != nil {
			t.Fatalf("re-reading %s: %v", out, err)
		}
		if why := sameJSON(got, want); why != "" {
			t.Fatalf("%q: ParseJSON read %s, encoding/json %v: %s", b, out, want, why)
		}
	})
}

// depth is the nesting depth of a document (brackets outside strings).
func depth(b []byte) int {
	d, max, in := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == '[' || c == '{'):
			if d++; d > max {
				max = d
			}
		case !in && (c == ']' || c == '}'):
			d--
		}
	}
	return max
}

// sameJSON compares two decoded documents, numbers by value.
func sameJSON(a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return "object differs"
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				return "key " + k + " missing"
			}
			if why := sameJSON(v, w); why != "" {
				return k + ": " + why
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return "array differs"
		}
		for i := range x {
			if why := sameJSON(x[i], y[i]); why != "" {
				return why
			}
		}
		return ""
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return "number versus other"
		}
		if strings.EqualFold(string(x), string(y)) {
			return ""
		}
		p, _, err1 := big.ParseFloat(string(x), 10, 2048, big.ToNearestEven)
		q, _, err2 := big.ParseFloat(string(y), 10, 2048, big.ToNearestEven)
		if err1 != nil || err2 != nil || p.Cmp(q) != 0 {
			return "number " + string(x) + " versus " + string(y)
		}
		return ""
	default:
		if a != b {
			return "value differs"
		}
		return ""
	}
}
