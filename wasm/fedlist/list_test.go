package fedlist

import (
	"errors"
	"testing"
	"time"

	"github.com/timfd/fachdienst/wasm/fedlist/fedlisttest"
)

func TestParsePayload(t *testing.T) {
	for _, c := range []struct {
		name, in string
		golden   string // testdata file with the summarized list; "" for errors
	}{
		{"VZD field names", `{"version":7,"domainList":[{"domain":"a.de","telematikID":"1-1","timAnbieter":"ORG-1","ik":["1"],"isInsurance":true}]}`, "payload_vzd.golden.json"},
		{"alternative field names", `{"version":7,"domainList":[{"domain":"a.de","telematikID":"1-1","timProvider":"ORG-1","iks":["1"],"isInsurance":true}]}`, "payload_vzd.golden.json"},
		{"upper-case domain, later duplicate wins", `{"version":8,"domainList":[{"domain":"B.DE","telematikID":"old"},{"domain":"b.de","telematikID":"new"}]}`, "payload_dup.golden.json"},
		{"entries without domain skipped", `{"version":9,"domainList":[{"telematikID":"x"},{"domain":"  ","telematikID":"y"},{"domain":"c.de","telematikID":"z"}]}`, "payload_skip.golden.json"},
		{"empty list", `{"version":0,"domainList":[]}`, "payload_empty.golden.json"},
		{"no domainList", `{"version":0}`, "payload_empty.golden.json"},
		{"missing version", `{"domainList":[]}`, ""},
		{"version not a number", `{"version":"7","domainList":[]}`, ""},
		{"domainList not an array", `{"version":1,"domainList":{}}`, ""},
		{"isInsurance not a bool", `{"version":1,"domainList":[{"domain":"a.de","isInsurance":"yes"}]}`, ""},
		{"not JSON", `version=1`, ""},
		{"empty", ``, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := ParsePayload([]byte(c.in))
			if c.golden == "" {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParsePayload = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.golden, summarize(l))
		})
	}
}

func TestContains(t *testing.T) {
	l, err := ParsePayload([]byte(`{"version":1,"domainList":[{"domain":"Home.Example.DE","telematikID":"1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"home.example.de": true, "HOME.example.de": true, "example.de": false, "": false} {
		if got := l.Contains(d); got != want {
			t.Errorf("Contains(%q) = %v", d, got)
		}
	}
	var none *List
	if none.Contains("home.example.de") {
		t.Error("nil list contains a domain")
	}
}

// FuzzVerify: arbitrary input never panics, and a result is either a list
// or one of the documented errors.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	pki, err := fedlisttest.NewPKI(fedlisttest.AlgBP256R1, fedlisttest.Options{Now: now, WithIntermediate: true})
	if err != nil {
		f.Fatal(err)
	}
	ts, err := NewTrustStore(pki.RootPEM())
	if err != nil {
		f.Fatal(err)
	}
	good, err := pki.Sign(fedlisttest.Payload(3, []fedlisttest.Domain{{Domain: "a.de", TelematikID: "1"}}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("e30.e30."))
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	f.Add([]byte(".."))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Verify(b, ts, now)
		if err == nil {
			if l == nil {
				t.Fatal("nil list without error")
			}
			return
		}
		known := false
		for _, e := range []error{ErrMalformed, ErrUnsupportedAlg, ErrBadSignature, ErrUntrustedChain, ErrCertExpired} {
			known = known || errors.Is(err, e)
		}
		if !known {
			t.Fatalf("undocumented error %v", err)
		}
		_, _, _ = ParseUnverified(b)
	})
}
