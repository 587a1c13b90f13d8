package fedlist

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

func TestParseHeader(t *testing.T) {
	no := false
	for _, c := range []struct {
		name, in string
		want     Header
		err      string
	}{
		{name: "VZD header", in: `{"alg":"BP256R1","typ":"JWT","x5c":["AAA","BBB"]}`, want: Header{Alg: "BP256R1", Typ: "JWT", X5C: []string{"AAA", "BBB"}}},
		{name: "unencoded payload", in: `{"alg":"ES256","kid":"k1","x5c":["A"],"b64":false,"crit":["b64"]}`, want: Header{Alg: "ES256", Kid: "k1", X5C: []string{"A"}, B64: &no, Crit: []string{"b64"}}},
		{name: "nulls are absent", in: `{"alg":"ES256","typ":null,"x5c":null,"b64":null}`, want: Header{Alg: "ES256"}},
		{name: "other members ignored", in: `{"alg":"ES256","x5t#S256":"abc","jku":{"a":1}}`, want: Header{Alg: "ES256"}},
		{name: "not an object", in: `["alg"]`, err: "not a JSON object"},
		{name: "alg not a string", in: `{"alg":256}`, err: "alg is not a string"},
		{name: "x5c not an array", in: `{"alg":"ES256","x5c":"AAA"}`, err: "x5c is not an array"},
		{name: "x5c element not a string", in: `{"alg":"ES256","x5c":["A",1]}`, err: "x5c[1] is not a string"},
		{name: "b64 not a boolean", in: `{"alg":"ES256","b64":"false"}`, err: "b64 is not a boolean"},
		{name: "not JSON", in: `{"alg":`, err: "unexpected end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := parseHeader([]byte(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, c.want) {
				t.Fatalf("header %+v, want %+v", h, c.want)
			}
		})
	}
}

func TestParsePayloadErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"version with fraction", `{"version":7.0}`, "version is not an integer"},
		{"version with exponent", `{"version":1e3}`, "version is not an integer"},
		{"version null", `{"version":null}`, "payload has no version"},
		{"not an object", `[1]`, "payload is not a JSON object"},
		{"entry not an object", `{"version":1,"domainList":[{"domain":"a.de"},5]}`, "domainList[1]: not an object"},
		{"domain not a string", `{"version":1,"domainList":[{"domain":1}]}`, "domainList[0]: domain is not a string"},
		{"ik not an array", `{"version":1,"domainList":[{"domain":"a.de","ik":"1"}]}`, "domainList[0]: ik is not an array"},
		{"ik element not a string", `{"version":1,"domainList":[{"domain":"a.de","ik":[1]}]}`, "domainList[0]: ik[0] is not a string"},
		{"isInsurance not a boolean", `{"version":1,"domainList":[{"domain":"a.de","isInsurance":"yes"}]}`, "isInsurance is not a boolean"},
		{"trailing data", `{"version":1} {}`, "trailing data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(c.in))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrMalformed with %q", err, c.want)
			}
		})
	}
	// A null entry has no domain: it is skipped like an entry without one.
	l, err := ParsePayload([]byte(`{"version":1,"domainList":[null,{"domain":"a.de","ik":null,"iks":["9"]}]}`))
	if err != nil || l.Skipped != 1 || !reflect.DeepEqual(l.Domains["a.de"].IKs, []string{"9"}) {
		t.Fatalf("list %+v, err %v", l, err)
	}
}

// TestParsePayloadKeysByDomain: entries are keyed as every check compares
// server names; an entry that is no server name is skipped.
func TestParsePayloadKeysByDomain(t *testing.T) {
	l, err := ParsePayload([]byte(`{"version":1,"domainList":[{"domain":" Kasse.DE:8448 "},{"domain":"b_c.de"},{"domain":"bücher.de"},{"domain":"[::1]:8448"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Domains["kasse.de"]; !ok || l.Skipped != 2 || len(l.Domains) != 2 {
		t.Fatalf("domains %v, skipped %d", l.Domains, l.Skipped)
	}
	for _, d := range []string{"kasse.de", "KASSE.de:443", "[::1]"} {
		if !l.Contains(d) {
			t.Errorf("Contains(%q) = false", d)
		}
	}
	if l.Contains("kasse.de.") || l.Contains("") {
		t.Error("Contains accepts what is no listed domain")
	}
}

// The entry's strings are copies: the list must not keep the parsed payload
// (up to MaxJWSSize) alive.
func TestParsePayloadCopiesStrings(t *testing.T) {
	payload := []byte(`{"version":1,"domainList":[{"domain":"a.de","telematikID":"1-a","timAnbieter":"ORG","ik":["1","2"]}]}`)
	l, err := ParsePayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		payload[i] = 'x'
	}
	e := l.Domains["a.de"]
	if e.Domain != "a.de" || e.TelematikID != "1-a" || e.Provider != "ORG" || !reflect.DeepEqual(e.IKs, []string{"1", "2"}) {
		t.Fatalf("entry %+v", e)
	}
}

func TestReadTime(t *testing.T) {
	der := func(tag byte, s string) []byte { return append([]byte{tag, byte(len(s))}, s...) }
	const utc, gen = 0x17, 0x18
	for _, c := range []struct {
		name string
		in   []byte
		want time.Time // zero: error
	}{
		{"UTCTime", der(utc, "260601120000Z"), time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)},
		{"UTCTime 1950", der(utc, "500101000000Z"), time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"UTCTime 2049", der(utc, "491231235959Z"), time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"GeneralizedTime", der(gen, "20500229120000Z"), time.Time{}}, // 2050 is no leap year
		{"GeneralizedTime leap day", der(gen, "20480229120000Z"), time.Date(2048, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"GeneralizedTime far", der(gen, "99991231235959Z"), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"UTCTime without seconds", der(utc, "2606011200Z"), time.Time{}},
		{"UTCTime with offset", der(utc, "260601120000+0100"), time.Time{}},
		{"UTCTime without Z", der(utc, "2606011200000"), time.Time{}},
		{"month 13", der(utc, "261301120000Z"), time.Time{}},
		{"day 0", der(utc, "260600120000Z"), time.Time{}},
		{"31 April", der(utc, "260431120000Z"), time.Time{}},
		{"hour 24", der(utc, "260601240000Z"), time.Time{}},
		{"second 60", der(utc, "260601235960Z"), time.Time{}},
		{"not digits", der(utc, "26O601120000Z"), time.Time{}},
		{"sign in digits", der(gen, "2026-601120000Z"), time.Time{}},
		{"fractional seconds", der(gen, "20260601120000.5Z"), time.Time{}},
		{"other tag", der(0x04, "260601120000Z"), time.Time{}},
		{"truncated", []byte{utc, 13, '2', '6'}, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := cryptobyte.String(c.in)
			got, err := readTime(&s)
			if c.want.IsZero() {
				if !errors.Is(err, errCert) {
					t.Fatalf("readTime = %v, %v; want an error", got, err)
				}
				return
			}
			if err != nil || !got.Equal(c.want) {
				t.Fatalf("readTime = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// FuzzParsePayload: any payload is a list or ErrMalformed, never a panic;
// every listed domain is trimmed, bounded and found by Contains.
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"version":7,"domainList":[{"domain":"a.de","telematikID":"1-1","timAnbieter":"ORG-1","ik":["1"],"isInsurance":true}]}`))
	f.Add([]byte(`{"domainList":[{"domain":" B.DE "},null,{"iks":["2"],"domain":"c.de"}],"version":1}`))
	f.Add([]byte(`{"version":1,"domainList":[],"domainList":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParsePayload(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		for k, e := range l.Domains {
			if k != strings.ToLower(e.Domain) || e.Domain != strings.TrimSpace(e.Domain) || e.Domain == "" || len(e.Domain) > MaxDomainLength || !l.Contains(e.Domain) {
				t.Fatalf("entry %q: %+v", k, e)
			}
		}
	})
}
