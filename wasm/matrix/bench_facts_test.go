package matrix

import "testing"

// Benchmarks of the header facts the filter reads for every request. No build
// tag: they run natively and compiled to wasip1 (where the filter runs).

var benchRoutes = []struct{ name, method, path string }{
	{"sync", "GET", "/_matrix/client/v3/sync"},
	{"send", "PUT", "/_matrix/client/v3/rooms/!abcdefgh:home.example.de/send/m.room.message/txn1234"},
	{"createRoom", "POST", "/_matrix/client/v3/createRoom"},
	{"invite", "POST", "/_matrix/client/v3/rooms/!abcdefgh:home.example.de/invite"},
	{"federation_send", "PUT", "/_matrix/federation/v1/send/1234"},
	{"federation_invite", "PUT", "/_matrix/federation/v2/invite/!abcdefgh:home.example.de/$eventid1234"},
	{"media_download", "GET", "/_matrix/client/v1/media/download/home.example.de/abcdefghijkl"},
}

var sinkRoute Route

// Each benchmark runs the current code ("new") and the code it replaced
// ("old", facts_oracle_test.go) in the same binary, so that the ratio holds
// even on a loaded machine.
var benchImpls = []string{"new", "old"}

var sinkString string

func BenchmarkClientIDs(b *testing.B) {
	for _, c := range []struct{ name, ua, tim, ti string }{
		{"user_agent", "TIM-Client/1.0 (Linux),tim-client-1.0", "", ""},
		{"tim_header", "Mozilla/5.0 (X11; Linux x86_64)", "TIM-Web/2.0,tim-web-2.0", ""},
		{"none", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "", ""},
	} {
		for _, impl := range benchImpls {
			clientID := ClientID
			if impl == "old" {
				clientID = oldClientID
			}
			b.Run(c.name+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					sinkString, _ = clientID(c.ua, c.tim, c.ti)
				}
			})
		}
	}
}

var sinkXM XMatrix

const benchSig = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QA" // 86 bytes, an Ed25519 signature in unpadded base64

// BenchmarkParseXMatrixCommon: the header of the specification's example
// (short sig). "old" is the code before MF14 (the oracle of the
// differential tests); MF15 records the figures of the code in between.
func BenchmarkParseXMatrixCommon(b *testing.B) {
	benchXMatrix(b, []string{`X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`})
}

// BenchmarkParseXMatrixShapes: other spellings homeservers send, and ones
// that take the general path.
func BenchmarkParseXMatrixShapes(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"spec_order_real_sig", `X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a_AbCd",sig="` + benchSig + `"`},
		{"synapse_order_port", `X-Matrix origin="d500.example.de:8448",key="ed25519:a_AbCd",sig="` + benchSig + `",destination="home.example.de:8448"`},
		{"no_destination", `X-Matrix origin="d500.example.de",key="ed25519:a_AbCd",sig="` + benchSig + `"`},
		{"general_unquoted_blanks", `X-Matrix origin=d500.example.de, destination=home.example.de, key="ed25519:a_AbCd", sig="` + benchSig + `"`},
	} {
		b.Run(c.name, func(b *testing.B) { benchXMatrix(b, []string{c.in}) })
	}
}

func benchXMatrix(b *testing.B, in []string) {
	for _, impl := range []string{"new", "old"} {
		parse := ParseXMatrix
		if impl == "old" {
			parse = oldParseXMatrix
		}
		b.Run(impl, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				x, err := parse(in)
				if err != nil {
					b.Fatal(err)
				}
				sinkXM = x
			}
		})
	}
}

var sinkPort int

func BenchmarkParseServerNames(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"dns", "home.example.de"},
		{"dns_port", "home.example.de:8448"},
		{"ipv4", "192.168.10.20"},
		{"ipv6", "[2001:db8::1]:8448"},
	} {
		for _, impl := range benchImpls {
			parse := ParseServerName
			if impl == "old" {
				parse = oldParseServerName
			}
			b.Run(c.name+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					h, p, err := parse(c.in)
					if err != nil {
						b.Fatal(err)
					}
					sinkString, sinkPort = h, p
				}
			})
		}
	}
}

func BenchmarkParseUserIDs(b *testing.B) {
	for _, impl := range benchImpls {
		parse := ParseUserID
		if impl == "old" {
			parse = oldParseUserID
		}
		b.Run(impl, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				l, s, err := parse("@alice.mueller:home.example.de")
				if err != nil {
					b.Fatal(err)
				}
				sinkString, sinkString = l, s
			}
		})
	}
}

func BenchmarkInviteesOne(b *testing.B) {
	r := testRoute("POST", "/_matrix/client/v3/createRoom")
	body := []byte(`{"preset":"private_chat","is_direct":true,"invite":["@bob:other.example.de"]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := Invitees(r, body); err != nil {
			b.Fatal(err)
		}
	}
}
