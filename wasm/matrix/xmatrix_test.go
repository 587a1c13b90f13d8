package matrix

import (
	"errors"
	"strings"
	"testing"
)

func TestParseXMatrix(t *testing.T) {
	const sig = "ABCDEFabcdef0123+/"
	for _, c := range []struct {
		name string
		in   []string
		want XMatrix
		err  error
	}{
		{"spec example", []string{`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="` + sig + `"`},
			XMatrix{"origin.hs.example.com", "destination.hs.example.com", "ed25519:key1", sig}, nil},
		{"unquoted values and port", []string{`X-Matrix origin=origin.de:8448,key=ed25519:k,sig=` + sig},
			XMatrix{Origin: "origin.de:8448", Key: "ed25519:k", Sig: sig}, nil},
		{"case-insensitive scheme and names, lower-cased servers", []string{`x-matrix ORIGIN="Origin.DE", Destination="Dest.DE" , Key="ed25519:k",SIG="s"`},
			XMatrix{"origin.de", "dest.de", "ed25519:k", "s"}, nil},
		{"escapes in quoted values", []string{`X-Matrix origin="ori\gin.de",key="ed25519:\"k\"",sig="s\\"`},
			XMatrix{Origin: "origin.de", Key: `ed25519:"k"`, Sig: `s\`}, nil},
		{"unknown parameter ignored", []string{`X-Matrix foo="bar,baz",origin=o.de,sig=s,key=k`},
			XMatrix{Origin: "o.de", Key: "k", Sig: "s"}, nil},
		{"IPv6 origin", []string{`X-Matrix origin="[2001:db8::1]:8448",key=k,sig=s`},
			XMatrix{Origin: "[2001:db8::1]:8448", Key: "k", Sig: "s"}, nil},
		{"other schemes skipped", []string{`Bearer abc`, `X-Matrix origin=o.de,key=k,sig=s`},
			XMatrix{Origin: "o.de", Key: "k", Sig: "s"}, nil},
		{"one header per key, same origin", []string{`X-Matrix origin=o.de,destination=d.de,key=k1,sig=s1`, `X-Matrix origin=O.de,destination=d.de,key=k2,sig=s2`},
			XMatrix{Origin: "o.de", Destination: "d.de", Key: "k1", Sig: "s1"}, nil},

		{"no header", nil, XMatrix{}, ErrNoXMatrix},
		{"only bearer", []string{"Bearer syt_abc"}, XMatrix{}, ErrNoXMatrix},
		{"scheme without parameters", []string{"X-Matrix"}, XMatrix{}, ErrNoXMatrix},
		{"scheme prefix only", []string{"X-Matrixorigin=o.de"}, XMatrix{}, ErrNoXMatrix},
		{"no origin", []string{`X-Matrix key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"empty origin", []string{`X-Matrix origin="",key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"invalid origin", []string{`X-Matrix origin="o_o.de",key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"origin with comma", []string{`X-Matrix origin="a.de,b.de",key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"invalid destination", []string{`X-Matrix origin=o.de,destination="",key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"duplicate origin", []string{`X-Matrix origin=a.de,origin=b.de,key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"duplicate origin differing in case", []string{`X-Matrix origin=a.de,Origin=a.de`}, XMatrix{}, ErrBadXMatrix},
		{"headers disagree on origin", []string{`X-Matrix origin=a.de,key=k,sig=s`, `X-Matrix origin=b.de,key=k,sig=s`}, XMatrix{}, ErrBadXMatrix},
		{"headers disagree on destination", []string{`X-Matrix origin=a.de,destination=x.de`, `X-Matrix origin=a.de`}, XMatrix{}, ErrBadXMatrix},
		{"second header broken", []string{`X-Matrix origin=a.de,key=k,sig=s`, `X-Matrix origin=`}, XMatrix{}, ErrBadXMatrix},
		{"unterminated quote", []string{`X-Matrix origin="a.de`}, XMatrix{}, ErrBadXMatrix},
		{"dangling escape", []string{`X-Matrix origin="a.de\`}, XMatrix{}, ErrBadXMatrix},
		{"missing value", []string{`X-Matrix origin=,key=k`}, XMatrix{}, ErrBadXMatrix},
		{"missing name", []string{`X-Matrix =a.de`}, XMatrix{}, ErrBadXMatrix},
		{"no equals", []string{`X-Matrix origin`}, XMatrix{}, ErrBadXMatrix},
		{"garbage after quoted value", []string{`X-Matrix origin="a.de"x,key=k`}, XMatrix{}, ErrBadXMatrix},
		{"quote inside unquoted value", []string{`X-Matrix origin=a"b`}, XMatrix{}, ErrBadXMatrix},
		{"control character", []string{"X-Matrix origin=\"a.de\x01\""}, XMatrix{}, ErrBadXMatrix},
		{"name not a token", []string{`X-Matrix ori(gin=a.de`}, XMatrix{}, ErrBadXMatrix},
		{"oversized header", []string{`X-Matrix origin=a.de,sig=` + strings.Repeat("A", MaxAuthorizationLength)}, XMatrix{}, ErrBadXMatrix},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseXMatrix(c.in)
			if c.err != nil {
				if !errors.Is(err, c.err) || got != (XMatrix{}) {
					t.Fatalf("ParseXMatrix = %+v, %v; want %v", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseXMatrix = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestParseXMatrixAllocs(t *testing.T) {
	in := []string{`X-Matrix origin="origin.example.de",destination="dest.example.de",key="ed25519:key1",sig="ABCDEF"`}
	if n := testing.AllocsPerRun(100, func() { ParseXMatrix(in) }); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}

func TestHasXMatrixScheme(t *testing.T) {
	for v, want := range map[string]bool{
		`X-Matrix origin=o.de`:  true,
		`x-matrix origin=o.de`:  true,
		" \tX-MATRIX\torigin=a": true,
		`X-Matrix`:              false,
		`X-Matrixorigin=o.de`:   false,
		`Bearer abc`:            false,
		`XMatrix origin=o.de`:   false,
		``:                      false,
		` `:                     false,
	} {
		if got := HasXMatrixScheme(v); got != want {
			t.Errorf("HasXMatrixScheme(%q) = %v", v, got)
		}
	}
}

// TestCommonParams checks which spellings take the shortcut and that it
// returns what the general path returns for them.
func TestCommonParams(t *testing.T) {
	const sig = "c2lnbmF0dXJl"
	for _, c := range []struct {
		p    string
		fast bool
	}{
		{`origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="` + sig + `"`, true},
		{`origin="d500.example.de:8448",key="ed25519:a",sig="` + sig + `",destination="home.example.de:443"`, true},
		{`origin="d500.example.de",key="ed25519:a",sig="` + sig + `"`, true},
		{`origin="d500.example.de",key="k",sig="s"`, true},
		{`origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="` + sig + `",`, false},        // trailing comma
		{`origin="d500.example.de",key="ed25519:a",destination="home.example.de",sig="` + sig + `"`, false},         // other order
		{`origin="d500.example.de", key="ed25519:a",sig="` + sig + `"`, false},                                      // blank
		{`origin="D500.example.de",key="ed25519:a",sig="` + sig + `"`, false},                                       // capital
		{`origin="o.de",key="ed25519:a",sig="` + sig + `"`, false},                                                  // short name
		{`origin="10.20.30.40",key="ed25519:a",sig="` + sig + `"`, false},                                           // IPv4
		{`origin="d500.example.de",key="ed25519:a",sig="` + sig + `",destination="home.example.de",foo="x"`, false}, // unknown name
		{`origin="d500.example.de",key="ed\25519:a",sig="` + sig + `"`, false},                                      // escape
	} {
		o, d, k, s, ok := commonParams(c.p)
		if ok != c.fast {
			t.Errorf("commonParams(%q) ok = %v", c.p, ok)
			continue
		}
		ro, rd, rk, rs, rok := parseXMatrixParams(c.p)
		if !rok {
			t.Errorf("parseXMatrixParams(%q) refused", c.p)
		}
		if ok && (o != ro || d != rd || k != rk || s != rs) {
			t.Errorf("commonParams(%q) = %q %q %q %q, general path %q %q %q %q", c.p, o, d, k, s, ro, rd, rk, rs)
		}
	}
}
